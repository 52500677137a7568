-- Database sync (docs/dbsync.md "Fair shares"): each run's batch of a staging table is shared between
-- the HIS roles (inserted_by) that have rows waiting, so one role's bulk load no longer keeps another
-- role's few rows waiting until it is through. Two partial indexes of the waiting rows (taken_at IS
-- NULL: small in steady state, as the one of infra/db/0900_staging_taken.sql):
-- - <table>_waiting_by (inserted_by, row_id): the roles that have rows waiting (one index descent per
--   role) and each role's next rows in row order, whatever the other roles staged before them;
-- - <table>_waiting_key (the id as the pipeline reads it, trimmed, an empty one as none): whether an
--   earlier row of the same record written by another role, not yet reached in that role's share,
--   still waits — a record's later row never overtakes it.
-- CREATE INDEX blocks the table's writes while it is built: it reads the table once (the rows kept
-- for the retention, DBSYNC_RETAIN_DAYS) and indexes only the waiting ones. openGauss 5.0-safe: CREATE INDEX IF NOT EXISTS … WHERE, an index on an
-- expression (docs/opengauss.md).

-- baseUser
CREATE INDEX IF NOT EXISTS base_user_waiting_by ON staging.base_user (inserted_by, row_id) WHERE taken_at IS NULL;
CREATE INDEX IF NOT EXISTS base_user_waiting_key ON staging.base_user ((nullif(btrim(id), ''))) WHERE taken_at IS NULL;

-- baseDept
CREATE INDEX IF NOT EXISTS base_dept_waiting_by ON staging.base_dept (inserted_by, row_id) WHERE taken_at IS NULL;
CREATE INDEX IF NOT EXISTS base_dept_waiting_key ON staging.base_dept ((nullif(btrim(id), ''))) WHERE taken_at IS NULL;

-- emrPatientInfo
CREATE INDEX IF NOT EXISTS emr_patient_info_waiting_by ON staging.emr_patient_info (inserted_by, row_id) WHERE taken_at IS NULL;
CREATE INDEX IF NOT EXISTS emr_patient_info_waiting_key ON staging.emr_patient_info ((nullif(btrim(id), ''))) WHERE taken_at IS NULL;

-- emrActivityInfo
CREATE INDEX IF NOT EXISTS emr_activity_info_waiting_by ON staging.emr_activity_info (inserted_by, row_id) WHERE taken_at IS NULL;
CREATE INDEX IF NOT EXISTS emr_activity_info_waiting_key ON staging.emr_activity_info ((nullif(btrim(id), ''))) WHERE taken_at IS NULL;

-- emrInfReport
CREATE INDEX IF NOT EXISTS emr_inf_report_waiting_by ON staging.emr_inf_report (inserted_by, row_id) WHERE taken_at IS NULL;
CREATE INDEX IF NOT EXISTS emr_inf_report_waiting_key ON staging.emr_inf_report ((nullif(btrim(id), ''))) WHERE taken_at IS NULL;

-- emrExLab
CREATE INDEX IF NOT EXISTS emr_ex_lab_waiting_by ON staging.emr_ex_lab (inserted_by, row_id) WHERE taken_at IS NULL;
CREATE INDEX IF NOT EXISTS emr_ex_lab_waiting_key ON staging.emr_ex_lab ((nullif(btrim(id), ''))) WHERE taken_at IS NULL;

-- emrExLabItem
CREATE INDEX IF NOT EXISTS emr_ex_lab_item_waiting_by ON staging.emr_ex_lab_item (inserted_by, row_id) WHERE taken_at IS NULL;
CREATE INDEX IF NOT EXISTS emr_ex_lab_item_waiting_key ON staging.emr_ex_lab_item ((nullif(btrim(id), ''))) WHERE taken_at IS NULL;

-- emrExClinical
CREATE INDEX IF NOT EXISTS emr_ex_clinical_waiting_by ON staging.emr_ex_clinical (inserted_by, row_id) WHERE taken_at IS NULL;
CREATE INDEX IF NOT EXISTS emr_ex_clinical_waiting_key ON staging.emr_ex_clinical ((nullif(btrim(id), ''))) WHERE taken_at IS NULL;

-- emrExClinicalItem
CREATE INDEX IF NOT EXISTS emr_ex_clinical_item_waiting_by ON staging.emr_ex_clinical_item (inserted_by, row_id) WHERE taken_at IS NULL;
CREATE INDEX IF NOT EXISTS emr_ex_clinical_item_waiting_key ON staging.emr_ex_clinical_item ((nullif(btrim(id), ''))) WHERE taken_at IS NULL;

-- emrOrder
CREATE INDEX IF NOT EXISTS emr_order_waiting_by ON staging.emr_order (inserted_by, row_id) WHERE taken_at IS NULL;
CREATE INDEX IF NOT EXISTS emr_order_waiting_key ON staging.emr_order ((nullif(btrim(id), ''))) WHERE taken_at IS NULL;

-- emrOrderItem
CREATE INDEX IF NOT EXISTS emr_order_item_waiting_by ON staging.emr_order_item (inserted_by, row_id) WHERE taken_at IS NULL;
CREATE INDEX IF NOT EXISTS emr_order_item_waiting_key ON staging.emr_order_item ((nullif(btrim(id), ''))) WHERE taken_at IS NULL;

-- emrDeathInfo
CREATE INDEX IF NOT EXISTS emr_death_info_waiting_by ON staging.emr_death_info (inserted_by, row_id) WHERE taken_at IS NULL;
CREATE INDEX IF NOT EXISTS emr_death_info_waiting_key ON staging.emr_death_info ((nullif(btrim(id), ''))) WHERE taken_at IS NULL;

-- emrOutpatientRecord
CREATE INDEX IF NOT EXISTS emr_outpatient_record_waiting_by ON staging.emr_outpatient_record (inserted_by, row_id) WHERE taken_at IS NULL;
CREATE INDEX IF NOT EXISTS emr_outpatient_record_waiting_key ON staging.emr_outpatient_record ((nullif(btrim(id), ''))) WHERE taken_at IS NULL;

-- emrOutpatientObs
CREATE INDEX IF NOT EXISTS emr_outpatient_obs_waiting_by ON staging.emr_outpatient_obs (inserted_by, row_id) WHERE taken_at IS NULL;
CREATE INDEX IF NOT EXISTS emr_outpatient_obs_waiting_key ON staging.emr_outpatient_obs ((nullif(btrim(id), ''))) WHERE taken_at IS NULL;

-- emrAdmissionInfo
CREATE INDEX IF NOT EXISTS emr_admission_info_waiting_by ON staging.emr_admission_info (inserted_by, row_id) WHERE taken_at IS NULL;
CREATE INDEX IF NOT EXISTS emr_admission_info_waiting_key ON staging.emr_admission_info ((nullif(btrim(id), ''))) WHERE taken_at IS NULL;

-- emrFirstCourse
CREATE INDEX IF NOT EXISTS emr_first_course_waiting_by ON staging.emr_first_course (inserted_by, row_id) WHERE taken_at IS NULL;
CREATE INDEX IF NOT EXISTS emr_first_course_waiting_key ON staging.emr_first_course ((nullif(btrim(id), ''))) WHERE taken_at IS NULL;

-- emrDailyCourse
CREATE INDEX IF NOT EXISTS emr_daily_course_waiting_by ON staging.emr_daily_course (inserted_by, row_id) WHERE taken_at IS NULL;
CREATE INDEX IF NOT EXISTS emr_daily_course_waiting_key ON staging.emr_daily_course ((nullif(btrim(id), ''))) WHERE taken_at IS NULL;

-- emrAdmissionRecord
CREATE INDEX IF NOT EXISTS emr_admission_record_waiting_by ON staging.emr_admission_record (inserted_by, row_id) WHERE taken_at IS NULL;
CREATE INDEX IF NOT EXISTS emr_admission_record_waiting_key ON staging.emr_admission_record ((nullif(btrim(id), ''))) WHERE taken_at IS NULL;

-- emrDischargeInfo
CREATE INDEX IF NOT EXISTS emr_discharge_info_waiting_by ON staging.emr_discharge_info (inserted_by, row_id) WHERE taken_at IS NULL;
CREATE INDEX IF NOT EXISTS emr_discharge_info_waiting_key ON staging.emr_discharge_info ((nullif(btrim(id), ''))) WHERE taken_at IS NULL;

-- emrVitalSignsRecord
CREATE INDEX IF NOT EXISTS emr_vital_signs_record_waiting_by ON staging.emr_vital_signs_record (inserted_by, row_id) WHERE taken_at IS NULL;
CREATE INDEX IF NOT EXISTS emr_vital_signs_record_waiting_key ON staging.emr_vital_signs_record ((nullif(btrim(id), ''))) WHERE taken_at IS NULL;
