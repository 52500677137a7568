-- Refusals on the configuration port worth a security review (docs/config-bundles.md §3 "Refusals
-- kept"): a bundle whose signature failed (unknown key, altered, none, another algorithm) and a
-- request with no or a wrong token. Counted, not one row per request: one row per hour, code, caller
-- and address (a flood of bad requests adds to a count; past 100 rows in an hour the address is
-- folded into '*'), with the last attempt's claimed version, key id and SM3 digest — never the bundle.
-- Read with config_bundle as the console's audit (shared/console/audit.ts). openGauss 5.0-safe
-- (docs/opengauss.md): bigserial, MERGE, no ON CONFLICT.
CREATE TABLE config_refusal (
  seq bigserial PRIMARY KEY,
  hour timestamptz NOT NULL,               -- the hour the attempts fall in
  code varchar(40) NOT NULL,               -- unknown-key | bad-signature | missing-signature | unsupported-algorithm | unauthenticated
  caller varchar(200) NOT NULL,            -- the token's label (platform-token:1a2b3c4d); '' when no token was accepted
  address varchar(200) NOT NULL,           -- the caller's address; '*' once the hour's rows are full
  path varchar(100) NOT NULL,              -- the route asked (POST /bundles, POST /activation, GET /bundles …)
  attempts bigint NOT NULL,
  first_at timestamptz NOT NULL,
  last_at timestamptz NOT NULL,
  version bigint,                          -- the last attempt's version as the document claimed it (not trusted)
  key_id varchar(64),                      -- the last attempt's sig.keyId as sent
  digest char(64)                          -- SM3 of the last attempt's document
);
CREATE UNIQUE INDEX config_refusal_key ON config_refusal (hour, code, caller, address, path);
CREATE INDEX config_refusal_last ON config_refusal (last_at);
