-- A record that names no org (lab, exam and order items as the adapters send them; any record of a
-- caller bound to every org, as a single-hospital install is) takes its org from its parent, looked
-- up by the parent's id alone (shared/ingest/resolve.ts; docs/his-guide.md 机构). The parents' key
-- is (org_code, id): without an index on id the look-up reads the whole parent table.
-- At an upgrade of a large installation the four indexes are built in the migration's transaction:
-- writes to these tables wait until it ends (minutes for tens of millions of rows).
CREATE INDEX emr_patient_info_id ON emr_patient_info (id);
CREATE INDEX emr_ex_lab_id ON emr_ex_lab (id);
CREATE INDEX emr_ex_clinical_id ON emr_ex_clinical (id);
CREATE INDEX emr_order_id ON emr_order (id);
