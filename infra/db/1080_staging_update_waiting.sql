-- Database sync (docs/dbsync.md "Taking a row"): a HIS role's UPDATE reaches only the rows still
-- waiting (taken_at IS NULL). An UPDATE of a row already taken changed its columns and answered
-- "UPDATE 1", yet nothing took the row again — the change was lost without a word — and it wrote the
-- ID number, name, phone or address the front had emptied back into the row, in plain text until the
-- retention purge. Now such an UPDATE changes no row ("UPDATE 0"), as for another role's row: the
-- HIS corrects a taken row by inserting a new one (rule 2). A role still sees its taken rows (their
-- row_id, taken_at, …) and inserts as before: the restrictive policy governs UPDATE only (and SELECT
-- … FOR UPDATE), ANDed with own_rows (infra/db/0920_staging_roles.sql). The front, the tables' owner,
-- is not subject to either and marks rows taken as before.
-- Idempotent (DROP POLICY IF EXISTS before each CREATE). openGauss 5.0-safe: CREATE [ROW LEVEL
-- SECURITY] POLICY … AS RESTRICTIVE FOR UPDATE USING (…), no WITH CHECK; DROP POLICY IF EXISTS … ON
-- (docs/opengauss.md).

-- base_user
DROP POLICY IF EXISTS waiting_rows ON staging.base_user;
CREATE POLICY waiting_rows ON staging.base_user AS RESTRICTIVE FOR UPDATE USING (taken_at IS NULL);

-- base_dept
DROP POLICY IF EXISTS waiting_rows ON staging.base_dept;
CREATE POLICY waiting_rows ON staging.base_dept AS RESTRICTIVE FOR UPDATE USING (taken_at IS NULL);

-- emr_patient_info
DROP POLICY IF EXISTS waiting_rows ON staging.emr_patient_info;
CREATE POLICY waiting_rows ON staging.emr_patient_info AS RESTRICTIVE FOR UPDATE USING (taken_at IS NULL);

-- emr_activity_info
DROP POLICY IF EXISTS waiting_rows ON staging.emr_activity_info;
CREATE POLICY waiting_rows ON staging.emr_activity_info AS RESTRICTIVE FOR UPDATE USING (taken_at IS NULL);

-- emr_inf_report
DROP POLICY IF EXISTS waiting_rows ON staging.emr_inf_report;
CREATE POLICY waiting_rows ON staging.emr_inf_report AS RESTRICTIVE FOR UPDATE USING (taken_at IS NULL);

-- emr_ex_lab
DROP POLICY IF EXISTS waiting_rows ON staging.emr_ex_lab;
CREATE POLICY waiting_rows ON staging.emr_ex_lab AS RESTRICTIVE FOR UPDATE USING (taken_at IS NULL);

-- emr_ex_lab_item
DROP POLICY IF EXISTS waiting_rows ON staging.emr_ex_lab_item;
CREATE POLICY waiting_rows ON staging.emr_ex_lab_item AS RESTRICTIVE FOR UPDATE USING (taken_at IS NULL);

-- emr_ex_clinical
DROP POLICY IF EXISTS waiting_rows ON staging.emr_ex_clinical;
CREATE POLICY waiting_rows ON staging.emr_ex_clinical AS RESTRICTIVE FOR UPDATE USING (taken_at IS NULL);

-- emr_ex_clinical_item
DROP POLICY IF EXISTS waiting_rows ON staging.emr_ex_clinical_item;
CREATE POLICY waiting_rows ON staging.emr_ex_clinical_item AS RESTRICTIVE FOR UPDATE USING (taken_at IS NULL);

-- emr_order
DROP POLICY IF EXISTS waiting_rows ON staging.emr_order;
CREATE POLICY waiting_rows ON staging.emr_order AS RESTRICTIVE FOR UPDATE USING (taken_at IS NULL);

-- emr_order_item
DROP POLICY IF EXISTS waiting_rows ON staging.emr_order_item;
CREATE POLICY waiting_rows ON staging.emr_order_item AS RESTRICTIVE FOR UPDATE USING (taken_at IS NULL);

-- emr_death_info
DROP POLICY IF EXISTS waiting_rows ON staging.emr_death_info;
CREATE POLICY waiting_rows ON staging.emr_death_info AS RESTRICTIVE FOR UPDATE USING (taken_at IS NULL);

-- emr_outpatient_record
DROP POLICY IF EXISTS waiting_rows ON staging.emr_outpatient_record;
CREATE POLICY waiting_rows ON staging.emr_outpatient_record AS RESTRICTIVE FOR UPDATE USING (taken_at IS NULL);

-- emr_outpatient_obs
DROP POLICY IF EXISTS waiting_rows ON staging.emr_outpatient_obs;
CREATE POLICY waiting_rows ON staging.emr_outpatient_obs AS RESTRICTIVE FOR UPDATE USING (taken_at IS NULL);

-- emr_admission_info
DROP POLICY IF EXISTS waiting_rows ON staging.emr_admission_info;
CREATE POLICY waiting_rows ON staging.emr_admission_info AS RESTRICTIVE FOR UPDATE USING (taken_at IS NULL);

-- emr_first_course
DROP POLICY IF EXISTS waiting_rows ON staging.emr_first_course;
CREATE POLICY waiting_rows ON staging.emr_first_course AS RESTRICTIVE FOR UPDATE USING (taken_at IS NULL);

-- emr_daily_course
DROP POLICY IF EXISTS waiting_rows ON staging.emr_daily_course;
CREATE POLICY waiting_rows ON staging.emr_daily_course AS RESTRICTIVE FOR UPDATE USING (taken_at IS NULL);

-- emr_admission_record
DROP POLICY IF EXISTS waiting_rows ON staging.emr_admission_record;
CREATE POLICY waiting_rows ON staging.emr_admission_record AS RESTRICTIVE FOR UPDATE USING (taken_at IS NULL);

-- emr_discharge_info
DROP POLICY IF EXISTS waiting_rows ON staging.emr_discharge_info;
CREATE POLICY waiting_rows ON staging.emr_discharge_info AS RESTRICTIVE FOR UPDATE USING (taken_at IS NULL);

-- emr_vital_signs_record
DROP POLICY IF EXISTS waiting_rows ON staging.emr_vital_signs_record;
CREATE POLICY waiting_rows ON staging.emr_vital_signs_record AS RESTRICTIVE FOR UPDATE USING (taken_at IS NULL);
