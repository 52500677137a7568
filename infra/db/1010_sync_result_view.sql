-- 1010: a database-sync outcome's `held` is derived when it is read, from its record's holds
-- (record_hold), instead of being stored and rewritten at every change of holds (docs/dbsync.md
-- "Held records"). The outcomes' table becomes staging.sync_outcome — the front writes, takes and
-- purges there — and under the old name staging.sync_result a view shows its rows, the same
-- columns in the same order, with `held` computed at read time. The HIS's queries (docs/dbsync.md
-- "SQL examples") and its grant (`GRANT SELECT ON staging.sync_result`, shared/dbsync/role.ts) keep
-- their text; `held` says why the record waits now, whoever changed its holds: a dbsync run, the
-- API on port 8881, the mapping sweep, a parent's arrival.
--
-- `held`: the record's holds as the API's answer writes them (holdText in shared/holds/index.ts:
-- "parent:<resource>/<id>", "mapping:<domain>/<code URI-encoded as encodeURIComponent does>",
-- "rule:<field>/<rule>"), in holdsOf's order (since, kind, target, value), a JSON array; NULL when
-- nothing holds the record. NULL on a `rejected` row (a refusal names no stored state: rejected rows
-- were always written and kept NULL). The array is built as text[] and turned to JSON by
-- array_to_json (PostgreSQL 9.2's, in openGauss 5.0 too; the jsonb builders are not, docs/opengauss.md),
-- the URI encoding byte by byte of the code's UTF-8 (convert_to, get_byte, to_hex, generate_series).
-- A look-up of record_hold by its primary key's first three columns per row read.
--
-- Which rows a role sees: the table's policy own_rows (infra/db/0920_staging_roles.sql) does not
-- govern a read through the view — a view reads its tables with its owner's rights, and the owner,
-- the front, is exempt from row-level security on both sides. So the view filters as the policy
-- does: rows the reading role wrote (`current_user` in a view is the role that reads it, not the
-- view's owner, on both), rows of no role (written before 0920), and every row for the table's
-- owner and those who act as it (pg_has_role … 'USAGE': its members and superusers — whom
-- row-level security exempts too). `security_barrier` keeps a reader's own conditions and
-- functions (a division by zero, a cast that fails on a value) from running on rows the filter
-- hides: they run after it. PostgreSQL 15's `security_invoker` views (the table's policy applied to
-- the reader) do not exist on openGauss 5.0 and are not used. The HIS reads record_hold only
-- through the view, for its own rows; it has no grant on record_hold nor on staging.sync_outcome
-- (its grant moves from the table to the view in this migration: infra/db/outcomes-1010.ts).
--
-- The stored `held` column (0960) and the index by record (0995) that its rewrites needed go.
-- openGauss 5.0-safe (docs/opengauss.md): ALTER TABLE … RENAME, DROP COLUMN, DROP INDEX, CREATE VIEW
-- WITH (security_barrier); array_to_json, ARRAY(subquery), pg_has_role exist on both.
ALTER TABLE staging.sync_result RENAME TO sync_outcome;
DROP INDEX staging.sync_result_record;
ALTER TABLE staging.sync_outcome DROP COLUMN held;

CREATE VIEW staging.sync_result WITH (security_barrier) AS
SELECT x.resource, x.row_id, x.status, x.org_code, x.record_id, x.version, x.error_code, x.error_msg,
       x.issues, x.warnings, x.processed_at, x.inserted_by,
       CASE WHEN x.status = 'rejected' THEN NULL ELSE
         NULLIF(array_to_json(ARRAY(
           SELECT CASE h.kind
                    WHEN 'parent' THEN 'parent:' || h.target || '/' || h.value
                    WHEN 'mapping' THEN 'mapping:' || h.target || '/' || array_to_string(ARRAY(
                      SELECT CASE WHEN u.b BETWEEN 48 AND 57 OR u.b BETWEEN 65 AND 90 OR u.b BETWEEN 97 AND 122
                                       OR u.b IN (33, 39, 40, 41, 42, 45, 46, 95, 126)
                                  THEN chr(u.b) ELSE '%' || upper(lpad(to_hex(u.b), 2, '0')) END
                        FROM (SELECT n.i, get_byte(convert_to(h.value, 'UTF8'), n.i) AS b
                                FROM generate_series(0, octet_length(convert_to(h.value, 'UTF8')) - 1) AS n(i)) u
                       ORDER BY u.i), '')
                    ELSE 'rule:' || h.target || '/' || h.value
                  END
             FROM record_hold h
            WHERE h.resource = x.resource AND h.org_code = x.org_code AND h.record_id = x.record_id
            ORDER BY h.since, h.kind, h.target, h.value))::text, '[]')::jsonb
       END AS held
  FROM staging.sync_outcome x
 WHERE x.inserted_by IS NULL OR x.inserted_by = current_user
    OR pg_has_role((SELECT c.relowner FROM pg_class c WHERE c.oid = 'staging.sync_outcome'::regclass), 'USAGE');
