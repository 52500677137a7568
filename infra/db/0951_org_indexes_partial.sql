-- A typed table's (org_code, column) indexes — a parent's id, the business day's time, an ID
-- number's HMAC — hold only the rows that have the column (docs/opengauss.md "Key lists"). As full
-- indexes they were candidates for every look-up by key (org_code, id), and on a table or org the
-- statistics did not know yet (a new installation's first minutes, each bench run's fresh orgs)
-- the planner costed them as the primary key's equal and took them: a batch's row lock or its
-- parents' look-up then read every row of the org. Partial, only a query naming the column (a
-- parent's children, a day's range, an ID number) can use them; a key's look-up takes the primary
-- key. schemas/ddl.ts makes new tables' indexes the same way. Re-creating them takes a few seconds
-- per million rows, once, when the front is upgraded. openGauss 5.0-safe: DROP INDEX, CREATE
-- INDEX … WHERE (docs/opengauss.md).

-- emrPatientInfo
DROP INDEX emr_patient_info_id_card_hmac;
CREATE INDEX emr_patient_info_id_card_hmac ON emr_patient_info (org_code, id_card_hmac) WHERE id_card_hmac IS NOT NULL;

-- emrActivityInfo
DROP INDEX emr_activity_info_patient_id;
CREATE INDEX emr_activity_info_patient_id ON emr_activity_info (org_code, patient_id) WHERE patient_id IS NOT NULL;
DROP INDEX emr_activity_info_day;
CREATE INDEX emr_activity_info_day ON emr_activity_info (org_code, activity_time) WHERE activity_time IS NOT NULL;

-- emrInfReport
DROP INDEX emr_inf_report_patient_id;
CREATE INDEX emr_inf_report_patient_id ON emr_inf_report (org_code, patient_id) WHERE patient_id IS NOT NULL;
DROP INDEX emr_inf_report_id_card_hmac;
CREATE INDEX emr_inf_report_id_card_hmac ON emr_inf_report (org_code, id_card_hmac) WHERE id_card_hmac IS NOT NULL;
DROP INDEX emr_inf_report_day;
CREATE INDEX emr_inf_report_day ON emr_inf_report (org_code, report_date) WHERE report_date IS NOT NULL;

-- emrExLab
DROP INDEX emr_ex_lab_patient_id;
CREATE INDEX emr_ex_lab_patient_id ON emr_ex_lab (org_code, patient_id) WHERE patient_id IS NOT NULL;

-- emrExLabItem
DROP INDEX emr_ex_lab_item_ex_lab_id;
CREATE INDEX emr_ex_lab_item_ex_lab_id ON emr_ex_lab_item (org_code, ex_lab_id) WHERE ex_lab_id IS NOT NULL;
DROP INDEX emr_ex_lab_item_day;
CREATE INDEX emr_ex_lab_item_day ON emr_ex_lab_item (org_code, operation_time) WHERE operation_time IS NOT NULL;

-- emrExClinical
DROP INDEX emr_ex_clinical_patient_id;
CREATE INDEX emr_ex_clinical_patient_id ON emr_ex_clinical (org_code, patient_id) WHERE patient_id IS NOT NULL;

-- emrExClinicalItem
DROP INDEX emr_ex_clinical_item_ex_clinical_id;
CREATE INDEX emr_ex_clinical_item_ex_clinical_id ON emr_ex_clinical_item (org_code, ex_clinical_id) WHERE ex_clinical_id IS NOT NULL;
DROP INDEX emr_ex_clinical_item_day;
CREATE INDEX emr_ex_clinical_item_day ON emr_ex_clinical_item (org_code, operation_time) WHERE operation_time IS NOT NULL;

-- emrOrder
DROP INDEX emr_order_patient_id;
CREATE INDEX emr_order_patient_id ON emr_order (org_code, patient_id) WHERE patient_id IS NOT NULL;
DROP INDEX emr_order_day;
CREATE INDEX emr_order_day ON emr_order (org_code, prescription_issuance_date) WHERE prescription_issuance_date IS NOT NULL;

-- emrOrderItem
DROP INDEX emr_order_item_order_id;
CREATE INDEX emr_order_item_order_id ON emr_order_item (org_code, order_id) WHERE order_id IS NOT NULL;

-- emrDeathInfo
DROP INDEX emr_death_info_patient_id;
CREATE INDEX emr_death_info_patient_id ON emr_death_info (org_code, patient_id) WHERE patient_id IS NOT NULL;
DROP INDEX emr_death_info_day;
CREATE INDEX emr_death_info_day ON emr_death_info (org_code, dead_date) WHERE dead_date IS NOT NULL;

-- emrOutpatientRecord
DROP INDEX emr_outpatient_record_patient_id;
CREATE INDEX emr_outpatient_record_patient_id ON emr_outpatient_record (org_code, patient_id) WHERE patient_id IS NOT NULL;

-- emrOutpatientObs
DROP INDEX emr_outpatient_obs_patient_id;
CREATE INDEX emr_outpatient_obs_patient_id ON emr_outpatient_obs (org_code, patient_id) WHERE patient_id IS NOT NULL;

-- emrAdmissionInfo
DROP INDEX emr_admission_info_patient_id;
CREATE INDEX emr_admission_info_patient_id ON emr_admission_info (org_code, patient_id) WHERE patient_id IS NOT NULL;
DROP INDEX emr_admission_info_day;
CREATE INDEX emr_admission_info_day ON emr_admission_info (org_code, admission_date) WHERE admission_date IS NOT NULL;

-- emrFirstCourse
DROP INDEX emr_first_course_patient_id;
CREATE INDEX emr_first_course_patient_id ON emr_first_course (org_code, patient_id) WHERE patient_id IS NOT NULL;

-- emrDailyCourse
DROP INDEX emr_daily_course_patient_id;
CREATE INDEX emr_daily_course_patient_id ON emr_daily_course (org_code, patient_id) WHERE patient_id IS NOT NULL;

-- emrAdmissionRecord
DROP INDEX emr_admission_record_patient_id;
CREATE INDEX emr_admission_record_patient_id ON emr_admission_record (org_code, patient_id) WHERE patient_id IS NOT NULL;
DROP INDEX emr_admission_record_day;
CREATE INDEX emr_admission_record_day ON emr_admission_record (org_code, discharge_date) WHERE discharge_date IS NOT NULL;

-- emrDischargeInfo
DROP INDEX emr_discharge_info_patient_id;
CREATE INDEX emr_discharge_info_patient_id ON emr_discharge_info (org_code, patient_id) WHERE patient_id IS NOT NULL;
DROP INDEX emr_discharge_info_day;
CREATE INDEX emr_discharge_info_day ON emr_discharge_info (org_code, discharge_date) WHERE discharge_date IS NOT NULL;

-- emrVitalSignsRecord
DROP INDEX emr_vital_signs_record_patient_id;
CREATE INDEX emr_vital_signs_record_patient_id ON emr_vital_signs_record (org_code, patient_id) WHERE patient_id IS NOT NULL;

