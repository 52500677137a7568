-- HIS callers (接入认证): who may push, and for which organisations (docs/his-auth.md).
-- openGauss 5.0-safe (shared/design/opengauss-sql.md): bigserial, no identity, no ON CONFLICT, no jsonb.
--
-- One row per identity. kind decides which identifying column is set:
--   apikey  : key_prefix (random, public, for lookup) + key_hash (SHA-256 hex of the whole key;
--             the key itself is shown once by `cdc-callers create-key` and never stored)
--   cert    : cert_fingerprint (SHA-256 of the DER client certificate, 64 lowercase hex)
--   address : cidr (source addresses of adapters that send no credentials)
-- org_codes is '*' (every org: a single-hospital install) or a comma-separated list of org codes
-- (机构编码). It is only ever read whole into the in-process cache, never joined, so a list in one
-- column is enough; a child table would add a join and nothing else.
CREATE TABLE his_caller (
  id bigserial PRIMARY KEY,
  name varchar(100) NOT NULL,
  kind varchar(10) NOT NULL,
  key_prefix varchar(16),
  key_hash char(64),
  cert_fingerprint char(64),
  cidr varchar(50),
  org_codes varchar(4000) NOT NULL,
  rate_per_min integer NOT NULL DEFAULT 600,      -- requests per minute per replica; 0 = unlimited
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz,
  last_used_at timestamptz,                        -- updated at most once a minute per caller
  CONSTRAINT his_caller_kind CHECK (kind IN ('apikey', 'cert', 'address')),
  CONSTRAINT his_caller_identity CHECK (
    (kind = 'apikey' AND key_prefix IS NOT NULL AND key_hash IS NOT NULL AND cert_fingerprint IS NULL AND cidr IS NULL)
    OR (kind = 'cert' AND cert_fingerprint IS NOT NULL AND key_prefix IS NULL AND key_hash IS NULL AND cidr IS NULL)
    OR (kind = 'address' AND cidr IS NOT NULL AND key_prefix IS NULL AND key_hash IS NULL AND cert_fingerprint IS NULL)
  ),
  CONSTRAINT his_caller_orgs CHECK (length(org_codes) > 0),
  CONSTRAINT his_caller_rate CHECK (rate_per_min >= 0)
);
-- Several NULLs are allowed in a unique index on both PostgreSQL and openGauss.
CREATE UNIQUE INDEX his_caller_key_prefix ON his_caller (key_prefix);
CREATE INDEX his_caller_cert ON his_caller (cert_fingerprint);
