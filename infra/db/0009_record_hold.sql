-- Holds as rows (docs/faults.md, "Hold storage"): why a record is held back from the platforms, one
-- row per reason, each field in its own column. They replace record_receipt.hold_reasons, whose
-- space-joined tokens an id holding a space (or a "mapping:" inside) could split into reasons that
-- were never given. openGauss-safe: no ON CONFLICT, no jsonb function.
--   kind 'parent':  target = the parent's resource, value = the parent's id (as the HIS sent it)
--   kind 'mapping': target = the code domain,       value = the code (as the HIS sent it)
CREATE TABLE record_hold (
  resource varchar(40) NOT NULL,
  org_code varchar(50) NOT NULL,
  record_id varchar(80) NOT NULL,
  kind varchar(10) NOT NULL,
  target varchar(40) NOT NULL,
  value varchar(200) NOT NULL,
  since timestamptz NOT NULL,
  PRIMARY KEY (resource, org_code, record_id, kind, target, value)
);
-- The mapping sweep reads the distinct (org, domain, code) held, then the records of the resolvable ones.
CREATE INDEX record_hold_target ON record_hold (kind, org_code, target, value);

-- Existing parent holds: record_parent_wait already holds them, structured. The mapping holds in
-- hold_reasons are converted by infra/db/holds-0009.ts in this migration's transaction (the codes
-- are URI-encoded in the tokens; decoding is done in TypeScript), which then drops the column.
INSERT INTO record_hold (resource, org_code, record_id, kind, target, value, since)
SELECT w.resource, w.org_code, w.record_id, 'parent', w.parent_resource, w.parent_id, w.since
  FROM record_parent_wait w;
