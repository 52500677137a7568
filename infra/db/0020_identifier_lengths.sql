-- Identifier-like strings admit what real senders send (docs/data-set.md "Lengths"): visit numbers,
-- codes of the hospital's own, report and prescription numbers, doctors' ids take 64 characters
-- (32-character hex is common); above the documented length the record is accepted with a
-- longerThanUsual warning. Widening a varchar is a catalogue change on PostgreSQL 15 and openGauss 5.0.
-- Generated from the declarations (schemas/fields.ts IDENTIFIER_MAX).
-- baseUser
ALTER TABLE base_user ALTER COLUMN physician_no TYPE varchar(64);
ALTER TABLE base_user ALTER COLUMN dept_code TYPE varchar(64);
ALTER TABLE base_user ALTER COLUMN user_type_code TYPE varchar(64);
-- baseDept
ALTER TABLE base_dept ALTER COLUMN dept_code TYPE varchar(64);
ALTER TABLE base_dept ALTER COLUMN target_dept_code TYPE varchar(64);
-- emrPatientInfo
ALTER TABLE emr_patient_info ALTER COLUMN nationality_code TYPE varchar(64);
ALTER TABLE emr_patient_info ALTER COLUMN permanent_addr_code TYPE varchar(64);
ALTER TABLE emr_patient_info ALTER COLUMN current_addr_code TYPE varchar(64);
ALTER TABLE emr_patient_info ALTER COLUMN operator_id TYPE varchar(64);
-- emrActivityInfo
ALTER TABLE emr_activity_info ALTER COLUMN serial_number TYPE varchar(64);
ALTER TABLE emr_activity_info ALTER COLUMN disease_code TYPE varchar(64);
ALTER TABLE emr_activity_info ALTER COLUMN wm_disease_code TYPE varchar(64);
ALTER TABLE emr_activity_info ALTER COLUMN tcm_disease_code TYPE varchar(64);
ALTER TABLE emr_activity_info ALTER COLUMN tcm_syndrome_code TYPE varchar(64);
ALTER TABLE emr_activity_info ALTER COLUMN dept_code TYPE varchar(64);
ALTER TABLE emr_activity_info ALTER COLUMN operator_id TYPE varchar(64);
ALTER TABLE emr_activity_info ALTER COLUMN report_disease_code TYPE varchar(64);
-- emrInfReport
ALTER TABLE emr_inf_report ALTER COLUMN serial_number TYPE varchar(64);
ALTER TABLE emr_inf_report ALTER COLUMN is_dead_by_this_code TYPE varchar(64);
ALTER TABLE emr_inf_report ALTER COLUMN symptoms_code TYPE varchar(64);
ALTER TABLE emr_inf_report ALTER COLUMN disease_code TYPE varchar(64);
ALTER TABLE emr_inf_report ALTER COLUMN laboratory_detection_verdict_code TYPE varchar(64);
ALTER TABLE emr_inf_report ALTER COLUMN afp_areatype2_code TYPE varchar(64);
ALTER TABLE emr_inf_report ALTER COLUMN afp_addrcode_code TYPE varchar(64);
ALTER TABLE emr_inf_report ALTER COLUMN discovery_mode_code TYPE varchar(64);
ALTER TABLE emr_inf_report ALTER COLUMN venereal_dis_code TYPE varchar(64);
ALTER TABLE emr_inf_report ALTER COLUMN bs_transmission_code TYPE varchar(64);
ALTER TABLE emr_inf_report ALTER COLUMN contact_type_code TYPE varchar(64);
ALTER TABLE emr_inf_report ALTER COLUMN sinfect_code TYPE varchar(64);
ALTER TABLE emr_inf_report ALTER COLUMN serverity_code TYPE varchar(64);
ALTER TABLE emr_inf_report ALTER COLUMN lab_result_code TYPE varchar(64);
ALTER TABLE emr_inf_report ALTER COLUMN hbsag_code TYPE varchar(64);
ALTER TABLE emr_inf_report ALTER COLUMN hbcig_result_code TYPE varchar(64);
ALTER TABLE emr_inf_report ALTER COLUMN hbliver_puncture_code TYPE varchar(64);
ALTER TABLE emr_inf_report ALTER COLUMN hbsag_change_code TYPE varchar(64);
ALTER TABLE emr_inf_report ALTER COLUMN contactflag_code TYPE varchar(64);
ALTER TABLE emr_inf_report ALTER COLUMN foreign_type_code TYPE varchar(64);
ALTER TABLE emr_inf_report ALTER COLUMN place_code TYPE varchar(64);
ALTER TABLE emr_inf_report ALTER COLUMN report_zone_code TYPE varchar(64);
ALTER TABLE emr_inf_report ALTER COLUMN report_org_code TYPE varchar(64);
ALTER TABLE emr_inf_report ALTER COLUMN operator_id TYPE varchar(64);
ALTER TABLE emr_inf_report ALTER COLUMN nationality_code TYPE varchar(64);
ALTER TABLE emr_inf_report ALTER COLUMN permanent_addr_code TYPE varchar(64);
ALTER TABLE emr_inf_report ALTER COLUMN current_addr_code TYPE varchar(64);
ALTER TABLE emr_inf_report ALTER COLUMN dept_code TYPE varchar(64);
-- emrExLab
ALTER TABLE emr_ex_lab ALTER COLUMN serial_number TYPE varchar(64);
ALTER TABLE emr_ex_lab ALTER COLUMN ward_no TYPE varchar(64);
ALTER TABLE emr_ex_lab ALTER COLUMN bed_no TYPE varchar(64);
ALTER TABLE emr_ex_lab ALTER COLUMN application_form_no TYPE varchar(64);
ALTER TABLE emr_ex_lab ALTER COLUMN apply_org_code TYPE varchar(64);
ALTER TABLE emr_ex_lab ALTER COLUMN apply_dept_code TYPE varchar(64);
ALTER TABLE emr_ex_lab ALTER COLUMN specimen_no TYPE varchar(64);
ALTER TABLE emr_ex_lab ALTER COLUMN examination_report_no TYPE varchar(64);
ALTER TABLE emr_ex_lab ALTER COLUMN dept_code TYPE varchar(64);
ALTER TABLE emr_ex_lab ALTER COLUMN operator_id TYPE varchar(64);
ALTER TABLE emr_ex_lab ALTER COLUMN specimen_category_code TYPE varchar(64);
-- emrExLabItem
ALTER TABLE emr_ex_lab_item ALTER COLUMN item_code TYPE varchar(64);
ALTER TABLE emr_ex_lab_item ALTER COLUMN examination_result_code TYPE varchar(64);
ALTER TABLE emr_ex_lab_item ALTER COLUMN operator_id TYPE varchar(64);
ALTER TABLE emr_ex_lab_item ALTER COLUMN source_examination_result_code TYPE varchar(64);
-- emrExClinical
ALTER TABLE emr_ex_clinical ALTER COLUMN serial_number TYPE varchar(64);
ALTER TABLE emr_ex_clinical ALTER COLUMN ward_no TYPE varchar(64);
ALTER TABLE emr_ex_clinical ALTER COLUMN bed_no TYPE varchar(64);
ALTER TABLE emr_ex_clinical ALTER COLUMN application_form_no TYPE varchar(64);
ALTER TABLE emr_ex_clinical ALTER COLUMN apply_org_code TYPE varchar(64);
ALTER TABLE emr_ex_clinical ALTER COLUMN apply_dept_code TYPE varchar(64);
ALTER TABLE emr_ex_clinical ALTER COLUMN special_examination_code TYPE varchar(64);
ALTER TABLE emr_ex_clinical ALTER COLUMN examination_report_no TYPE varchar(64);
ALTER TABLE emr_ex_clinical ALTER COLUMN dept_code TYPE varchar(64);
ALTER TABLE emr_ex_clinical ALTER COLUMN operator_id TYPE varchar(64);
ALTER TABLE emr_ex_clinical ALTER COLUMN examination_type_code TYPE varchar(64);
-- emrExClinicalItem
ALTER TABLE emr_ex_clinical_item ALTER COLUMN examination_result_code TYPE varchar(64);
ALTER TABLE emr_ex_clinical_item ALTER COLUMN item_code TYPE varchar(64);
ALTER TABLE emr_ex_clinical_item ALTER COLUMN operator_id TYPE varchar(64);
-- emrOrder
ALTER TABLE emr_order ALTER COLUMN serial_number TYPE varchar(64);
ALTER TABLE emr_order ALTER COLUMN prescription_no TYPE varchar(64);
ALTER TABLE emr_order ALTER COLUMN prescription_type_code TYPE varchar(64);
ALTER TABLE emr_order ALTER COLUMN dept_code TYPE varchar(64);
ALTER TABLE emr_order ALTER COLUMN operator_id TYPE varchar(64);
-- emrOrderItem
ALTER TABLE emr_order_item ALTER COLUMN drug_code TYPE varchar(64);
ALTER TABLE emr_order_item ALTER COLUMN drug_dosage_code TYPE varchar(64);
ALTER TABLE emr_order_item ALTER COLUMN drug_dosage_unit_code TYPE varchar(64);
ALTER TABLE emr_order_item ALTER COLUMN operator_id TYPE varchar(64);
-- emrDeathInfo
ALTER TABLE emr_death_info ALTER COLUMN serial_number TYPE varchar(64);
ALTER TABLE emr_death_info ALTER COLUMN direct_cause_code TYPE varchar(64);
ALTER TABLE emr_death_info ALTER COLUMN death_diagnosis_code TYPE varchar(64);
ALTER TABLE emr_death_info ALTER COLUMN dept_code TYPE varchar(64);
ALTER TABLE emr_death_info ALTER COLUMN operator_id TYPE varchar(64);
-- emrOutpatientRecord
ALTER TABLE emr_outpatient_record ALTER COLUMN serial_number TYPE varchar(64);
ALTER TABLE emr_outpatient_record ALTER COLUMN inital_diagnosis_code TYPE varchar(64);
ALTER TABLE emr_outpatient_record ALTER COLUMN wm_diagnosis_code TYPE varchar(64);
ALTER TABLE emr_outpatient_record ALTER COLUMN tcm_inital_diagnosis_code TYPE varchar(64);
ALTER TABLE emr_outpatient_record ALTER COLUMN tcm_inital_syndrome_code TYPE varchar(64);
ALTER TABLE emr_outpatient_record ALTER COLUMN dept_code TYPE varchar(64);
ALTER TABLE emr_outpatient_record ALTER COLUMN operator_id TYPE varchar(64);
-- emrOutpatientObs
ALTER TABLE emr_outpatient_obs ALTER COLUMN serial_number TYPE varchar(64);
ALTER TABLE emr_outpatient_obs ALTER COLUMN inital_diagnosis_code TYPE varchar(64);
ALTER TABLE emr_outpatient_obs ALTER COLUMN wm_diagnosis_code TYPE varchar(64);
ALTER TABLE emr_outpatient_obs ALTER COLUMN tcm_inital_diagnosis_code TYPE varchar(64);
ALTER TABLE emr_outpatient_obs ALTER COLUMN tcm_inital_syndrome_code TYPE varchar(64);
ALTER TABLE emr_outpatient_obs ALTER COLUMN dept_code TYPE varchar(64);
ALTER TABLE emr_outpatient_obs ALTER COLUMN operator_id TYPE varchar(64);
-- emrAdmissionInfo
ALTER TABLE emr_admission_info ALTER COLUMN serial_number TYPE varchar(64);
ALTER TABLE emr_admission_info ALTER COLUMN ward_no TYPE varchar(64);
ALTER TABLE emr_admission_info ALTER COLUMN bed_no TYPE varchar(64);
ALTER TABLE emr_admission_info ALTER COLUMN health_status_code TYPE varchar(64);
ALTER TABLE emr_admission_info ALTER COLUMN infection_code TYPE varchar(64);
ALTER TABLE emr_admission_info ALTER COLUMN wm_inital_diagnosis_code TYPE varchar(64);
ALTER TABLE emr_admission_info ALTER COLUMN tcm_inital_diagnosis_code TYPE varchar(64);
ALTER TABLE emr_admission_info ALTER COLUMN tcm_inital_syndrome_code TYPE varchar(64);
ALTER TABLE emr_admission_info ALTER COLUMN wm_revised_diagnosis_code TYPE varchar(64);
ALTER TABLE emr_admission_info ALTER COLUMN tcm_revised_diagnosis_code TYPE varchar(64);
ALTER TABLE emr_admission_info ALTER COLUMN tcm_revised_syndrome_code TYPE varchar(64);
ALTER TABLE emr_admission_info ALTER COLUMN wm_confirmed_diagnosis_code TYPE varchar(64);
ALTER TABLE emr_admission_info ALTER COLUMN tcm_confirmed_diagnosis_code TYPE varchar(64);
ALTER TABLE emr_admission_info ALTER COLUMN tcm_confirmed_syndrome_code TYPE varchar(64);
ALTER TABLE emr_admission_info ALTER COLUMN complementary_diagnosis_code TYPE varchar(64);
ALTER TABLE emr_admission_info ALTER COLUMN dept_code TYPE varchar(64);
ALTER TABLE emr_admission_info ALTER COLUMN operator_id TYPE varchar(64);
-- emrFirstCourse
ALTER TABLE emr_first_course ALTER COLUMN serial_number TYPE varchar(64);
ALTER TABLE emr_first_course ALTER COLUMN ward_no TYPE varchar(64);
ALTER TABLE emr_first_course ALTER COLUMN bed_no TYPE varchar(64);
ALTER TABLE emr_first_course ALTER COLUMN wm_inital_diagnosis_code TYPE varchar(64);
ALTER TABLE emr_first_course ALTER COLUMN tcm_inital_diagnosis_code TYPE varchar(64);
ALTER TABLE emr_first_course ALTER COLUMN tcm_inital_syndrome_code TYPE varchar(64);
ALTER TABLE emr_first_course ALTER COLUMN wm_diff_diagnosis_code TYPE varchar(64);
ALTER TABLE emr_first_course ALTER COLUMN tcm_primary_diagnosis_code TYPE varchar(64);
ALTER TABLE emr_first_course ALTER COLUMN tcm_primary_syndrome_code TYPE varchar(64);
ALTER TABLE emr_first_course ALTER COLUMN dept_code TYPE varchar(64);
ALTER TABLE emr_first_course ALTER COLUMN operator_id TYPE varchar(64);
-- emrDailyCourse
ALTER TABLE emr_daily_course ALTER COLUMN serial_number TYPE varchar(64);
ALTER TABLE emr_daily_course ALTER COLUMN ward_no TYPE varchar(64);
ALTER TABLE emr_daily_course ALTER COLUMN bed_no TYPE varchar(64);
ALTER TABLE emr_daily_course ALTER COLUMN dept_code TYPE varchar(64);
ALTER TABLE emr_daily_course ALTER COLUMN operator_id TYPE varchar(64);
-- emrAdmissionRecord
ALTER TABLE emr_admission_record ALTER COLUMN serial_number TYPE varchar(64);
ALTER TABLE emr_admission_record ALTER COLUMN pay_method_code TYPE varchar(64);
ALTER TABLE emr_admission_record ALTER COLUMN health_card_no TYPE varchar(64);
ALTER TABLE emr_admission_record ALTER COLUMN reg_no TYPE varchar(64);
ALTER TABLE emr_admission_record ALTER COLUMN admission_dept_code TYPE varchar(64);
ALTER TABLE emr_admission_record ALTER COLUMN ward_no TYPE varchar(64);
ALTER TABLE emr_admission_record ALTER COLUMN discharge_dept_code TYPE varchar(64);
ALTER TABLE emr_admission_record ALTER COLUMN wm_outpatient_diagnosis_code TYPE varchar(64);
ALTER TABLE emr_admission_record ALTER COLUMN discharge_diagnosis_code TYPE varchar(64);
ALTER TABLE emr_admission_record ALTER COLUMN external_causes_code TYPE varchar(64);
ALTER TABLE emr_admission_record ALTER COLUMN pathological_diagnosis_code TYPE varchar(64);
ALTER TABLE emr_admission_record ALTER COLUMN pathological_no TYPE varchar(64);
ALTER TABLE emr_admission_record ALTER COLUMN allergy_code TYPE varchar(64);
ALTER TABLE emr_admission_record ALTER COLUMN autopsy_code TYPE varchar(64);
ALTER TABLE emr_admission_record ALTER COLUMN accept_org_code TYPE varchar(64);
ALTER TABLE emr_admission_record ALTER COLUMN dept_code TYPE varchar(64);
ALTER TABLE emr_admission_record ALTER COLUMN operator_id TYPE varchar(64);
-- emrDischargeInfo
ALTER TABLE emr_discharge_info ALTER COLUMN serial_number TYPE varchar(64);
ALTER TABLE emr_discharge_info ALTER COLUMN ward_no TYPE varchar(64);
ALTER TABLE emr_discharge_info ALTER COLUMN bed_no TYPE varchar(64);
ALTER TABLE emr_discharge_info ALTER COLUMN admission_diagnosis_code TYPE varchar(64);
ALTER TABLE emr_discharge_info ALTER COLUMN discharge_diagnosis_code TYPE varchar(64);
ALTER TABLE emr_discharge_info ALTER COLUMN tcm_discharge_diagnosis_code TYPE varchar(64);
ALTER TABLE emr_discharge_info ALTER COLUMN tcm_discharge_syndrome_code TYPE varchar(64);
ALTER TABLE emr_discharge_info ALTER COLUMN dept_code TYPE varchar(64);
ALTER TABLE emr_discharge_info ALTER COLUMN operator_id TYPE varchar(64);
-- emrVitalSignsRecord
ALTER TABLE emr_vital_signs_record ALTER COLUMN serial_number TYPE varchar(64);
ALTER TABLE emr_vital_signs_record ALTER COLUMN ventilatorused_code TYPE varchar(64);
ALTER TABLE emr_vital_signs_record ALTER COLUMN critical_care_code TYPE varchar(64);
ALTER TABLE emr_vital_signs_record ALTER COLUMN dept_code TYPE varchar(64);
ALTER TABLE emr_vital_signs_record ALTER COLUMN operator_id TYPE varchar(64);
