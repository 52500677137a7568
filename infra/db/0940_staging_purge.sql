-- Database sync retention (docs/dbsync.md "Retention"): the dbsync function deletes staging rows taken
-- more than DBSYNC_RETAIN_DAYS ago (shared/dbsync/purge.ts), choosing them by taken_at. A partial index
-- of the rows taken, by taken_at, lets that choice read only the rows due: never the waiting rows
-- (taken_at NULL, the other partial index, infra/db/0900_staging_taken.sql) nor every row ever
-- written. The outcomes (staging.sync_result) are chosen by processed_at, which sync_result_time
-- already indexes. openGauss 5.0-safe: CREATE INDEX … WHERE (docs/opengauss.md).

-- baseUser
CREATE INDEX base_user_taken ON staging.base_user (taken_at) WHERE taken_at IS NOT NULL;

-- baseDept
CREATE INDEX base_dept_taken ON staging.base_dept (taken_at) WHERE taken_at IS NOT NULL;

-- emrPatientInfo
CREATE INDEX emr_patient_info_taken ON staging.emr_patient_info (taken_at) WHERE taken_at IS NOT NULL;

-- emrActivityInfo
CREATE INDEX emr_activity_info_taken ON staging.emr_activity_info (taken_at) WHERE taken_at IS NOT NULL;

-- emrInfReport
CREATE INDEX emr_inf_report_taken ON staging.emr_inf_report (taken_at) WHERE taken_at IS NOT NULL;

-- emrExLab
CREATE INDEX emr_ex_lab_taken ON staging.emr_ex_lab (taken_at) WHERE taken_at IS NOT NULL;

-- emrExLabItem
CREATE INDEX emr_ex_lab_item_taken ON staging.emr_ex_lab_item (taken_at) WHERE taken_at IS NOT NULL;

-- emrExClinical
CREATE INDEX emr_ex_clinical_taken ON staging.emr_ex_clinical (taken_at) WHERE taken_at IS NOT NULL;

-- emrExClinicalItem
CREATE INDEX emr_ex_clinical_item_taken ON staging.emr_ex_clinical_item (taken_at) WHERE taken_at IS NOT NULL;

-- emrOrder
CREATE INDEX emr_order_taken ON staging.emr_order (taken_at) WHERE taken_at IS NOT NULL;

-- emrOrderItem
CREATE INDEX emr_order_item_taken ON staging.emr_order_item (taken_at) WHERE taken_at IS NOT NULL;

-- emrDeathInfo
CREATE INDEX emr_death_info_taken ON staging.emr_death_info (taken_at) WHERE taken_at IS NOT NULL;

-- emrOutpatientRecord
CREATE INDEX emr_outpatient_record_taken ON staging.emr_outpatient_record (taken_at) WHERE taken_at IS NOT NULL;

-- emrOutpatientObs
CREATE INDEX emr_outpatient_obs_taken ON staging.emr_outpatient_obs (taken_at) WHERE taken_at IS NOT NULL;

-- emrAdmissionInfo
CREATE INDEX emr_admission_info_taken ON staging.emr_admission_info (taken_at) WHERE taken_at IS NOT NULL;

-- emrFirstCourse
CREATE INDEX emr_first_course_taken ON staging.emr_first_course (taken_at) WHERE taken_at IS NOT NULL;

-- emrDailyCourse
CREATE INDEX emr_daily_course_taken ON staging.emr_daily_course (taken_at) WHERE taken_at IS NOT NULL;

-- emrAdmissionRecord
CREATE INDEX emr_admission_record_taken ON staging.emr_admission_record (taken_at) WHERE taken_at IS NOT NULL;

-- emrDischargeInfo
CREATE INDEX emr_discharge_info_taken ON staging.emr_discharge_info (taken_at) WHERE taken_at IS NOT NULL;

-- emrVitalSignsRecord
CREATE INDEX emr_vital_signs_record_taken ON staging.emr_vital_signs_record (taken_at) WHERE taken_at IS NOT NULL;
