-- 1000: where a reminder sweep stands (docs/warning.md "Reminders", paging). `changed_at` is the
-- database's clock when the row last changed its `updated_at` (clock_timestamp(), microseconds, never
-- earlier than the writing transaction's start); the HIS's reminders page through an org's open cases
-- in the order (changed_at, case_id) and each answer's `asOf` is a position in that order. Rows stored
-- before this migration take their `updated_at`, so a sweep interrupted by the upgrade goes on where
-- it was. openGauss 5.0-safe (docs/opengauss.md): plain ALTER TABLE, UPDATE, CREATE INDEX.
ALTER TABLE warning_case ADD COLUMN changed_at timestamptz;
UPDATE warning_case SET changed_at = updated_at;
ALTER TABLE warning_case ALTER COLUMN changed_at SET DEFAULT clock_timestamp();
ALTER TABLE warning_case ALTER COLUMN changed_at SET NOT NULL;
CREATE INDEX warning_case_changed ON warning_case (org_code, changed_at, case_id);
