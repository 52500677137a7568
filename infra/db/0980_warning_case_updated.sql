-- The HIS's reminders page through an org's open cases in the order (updated_at, case_id)
-- (docs/warning.md "Reminders"): each page starts after the last case of the previous one, one probe
-- of this index and a short range read. openGauss 5.0-safe: a plain CREATE INDEX (docs/opengauss.md).
CREATE INDEX warning_case_updated ON warning_case (org_code, updated_at, case_id);
