-- The hospital port each function is served on, as the gateway lists it (its com.cdc-front.port
-- annotation, after the deployment's substitution of DATA_PORT, CONFIG_PORT …): recorded by the config
-- function's pass over the gateway (docs/config-bundles.md §5a) for the console's settings page.
-- Replaced whole by every pass.
CREATE TABLE gateway_port (
  function_name varchar(63) PRIMARY KEY,
  port integer NOT NULL,
  root boolean NOT NULL,                      -- the port's root function (sees every path as sent)
  checked_at timestamptz NOT NULL
);
