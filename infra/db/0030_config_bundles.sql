-- Configuration bundles from the national platform (docs/config-bundles.md): every step — a bundle
-- applied, a rollback to an earlier version — is one row, written in the transaction that changed the
-- settings, with the state it replaced so that it can be reverted. openGauss 5.0-safe
-- (docs/opengauss.md): bigserial, no ON CONFLICT, no jsonb builders; JSON is made in TypeScript and
-- stored as text (the bundle exactly as signed, so its signature can be checked again later).
CREATE TABLE config_bundle (
  seq bigserial PRIMARY KEY,
  action varchar(10) NOT NULL,             -- apply | rollback
  version bigint NOT NULL,                 -- apply: the bundle's version; rollback: the version returned to
  issuer varchar(200) NOT NULL,
  issued_at timestamptz NOT NULL,
  bundle text,                             -- apply: the document as signed; rollback: NULL (the target's row has it)
  signature text,                          -- apply: base64 DER SM2 signature of the document
  key_id char(64),                         -- apply: SM3 of the platform key that signed it
  digest char(64),                         -- apply: SM3 of the document
  areas varchar(4000) NOT NULL,            -- what this step changed (space-separated: triggers codeTable:sex …)
  effective text NOT NULL,                 -- JSON: every area managed by bundles → the version whose content is in force
  previous text NOT NULL,                  -- JSON: each changed area → its state before this step (null: none)
  applied_by varchar(200) NOT NULL,        -- the caller (the platform's token, or an operator's command)
  applied_via varchar(200),                -- the caller's address
  applied_at timestamptz NOT NULL DEFAULT now(),
  reason varchar(500),
  CONSTRAINT config_bundle_action CHECK (action IN ('apply', 'rollback')),
  CONSTRAINT config_bundle_signed CHECK (action = 'rollback' OR (bundle IS NOT NULL AND signature IS NOT NULL AND key_id IS NOT NULL))
);
CREATE INDEX config_bundle_version ON config_bundle (version, action);

-- The settings in force that have no table of their own (trigger lists, algorithm parameters,
-- syndrome definitions, platform endpoints, schedules, the announced release): one row per area, the
-- content as JSON text, written only by the bundle steps above. No row: the function's own default
-- (the shipped file or the one its settings name) applies. Code tables go to code_national instead.
CREATE TABLE config_active (
  area varchar(100) PRIMARY KEY,
  version bigint NOT NULL,                 -- the bundle version the content came from
  content text NOT NULL,
  changed_at timestamptz NOT NULL
);
