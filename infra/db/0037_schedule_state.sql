-- Schedules from configuration bundles (docs/config-bundles.md "Schedules"): the outcome of the config
-- function's last pass over the scheduled functions — what fires when, whether a bundle or stack.yml
-- set it, and why a bundle's expression was not applied. Replaced whole by every pass.
CREATE TABLE schedule_state (
  function_name varchar(63) PRIMARY KEY,
  schedule varchar(200),                      -- in force, in the hospital's zone; null: none
  written varchar(200),                       -- as the cron-connector reads it (its zone)
  base_schedule varchar(200),                 -- stack.yml's, while a bundle's is in force
  source varchar(10) NOT NULL,                -- bundle | stack
  bundle_version bigint,
  problem varchar(500),                       -- why the bundle's expression is not in force
  checked_at timestamptz NOT NULL
);
