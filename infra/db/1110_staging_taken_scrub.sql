-- Database sync (docs/dbsync.md "Taking a row"): a taken staging row keeps no ID number, name, phone or
-- address — the columns of the record's sealed fields (docs/keys.md) are emptied when the row is taken.
-- A release before names were sealed at rest (migration 0990) emptied only the ID number, phone and
-- address, so rows it took still hold the patient's name (and a staff member's, a contact's) in clear
-- until the retention purge (DBSYNC_RETAIN_DAYS; never with 0), in every backup meanwhile. Emptied
-- here once, as a row taken now is. Rows waiting are not touched (the front still reads them).
-- Each UPDATE reads its table once and locks only the rows it changes: HIS inserts go on meanwhile.
-- test/integration/dbsync-scrub-migration.test.ts checks that it names every sealed column of every
-- staging table. openGauss 5.0-safe: plain UPDATE … SET … WHERE (docs/opengauss.md).

UPDATE staging.base_user SET user_name = NULL, id_card = NULL, tel = NULL
  WHERE taken_at IS NOT NULL AND (user_name IS NOT NULL OR id_card IS NOT NULL OR tel IS NOT NULL);
UPDATE staging.emr_patient_info SET patient_name = NULL, id_card = NULL, permanent_addr_name = NULL, permanent_addr_detail = NULL, current_addr_name = NULL, current_addr_detail = NULL, tel = NULL, contacts = NULL, contacts_tel = NULL
  WHERE taken_at IS NOT NULL AND (patient_name IS NOT NULL OR id_card IS NOT NULL OR permanent_addr_name IS NOT NULL OR permanent_addr_detail IS NOT NULL OR current_addr_name IS NOT NULL OR current_addr_detail IS NOT NULL OR tel IS NOT NULL OR contacts IS NOT NULL OR contacts_tel IS NOT NULL);
UPDATE staging.emr_activity_info SET patient_name = NULL, id_card = NULL
  WHERE taken_at IS NOT NULL AND (patient_name IS NOT NULL OR id_card IS NOT NULL);
UPDATE staging.emr_inf_report SET patient_name = NULL, id_card = NULL, afp_addr = NULL, permanent_addr_name = NULL, permanent_addr_detail = NULL, current_addr_name = NULL, current_addr_detail = NULL, tel = NULL, contacts = NULL, contacts_tel = NULL
  WHERE taken_at IS NOT NULL AND (patient_name IS NOT NULL OR id_card IS NOT NULL OR afp_addr IS NOT NULL OR permanent_addr_name IS NOT NULL OR permanent_addr_detail IS NOT NULL OR current_addr_name IS NOT NULL OR current_addr_detail IS NOT NULL OR tel IS NOT NULL OR contacts IS NOT NULL OR contacts_tel IS NOT NULL);
UPDATE staging.emr_ex_lab SET patient_name = NULL, id_card = NULL
  WHERE taken_at IS NOT NULL AND (patient_name IS NOT NULL OR id_card IS NOT NULL);
UPDATE staging.emr_ex_clinical SET patient_name = NULL, id_card = NULL
  WHERE taken_at IS NOT NULL AND (patient_name IS NOT NULL OR id_card IS NOT NULL);
UPDATE staging.emr_order SET patient_name = NULL, id_card = NULL
  WHERE taken_at IS NOT NULL AND (patient_name IS NOT NULL OR id_card IS NOT NULL);
UPDATE staging.emr_death_info SET patient_name = NULL, id_card = NULL
  WHERE taken_at IS NOT NULL AND (patient_name IS NOT NULL OR id_card IS NOT NULL);
UPDATE staging.emr_outpatient_record SET patient_name = NULL, id_card = NULL
  WHERE taken_at IS NOT NULL AND (patient_name IS NOT NULL OR id_card IS NOT NULL);
UPDATE staging.emr_outpatient_obs SET patient_name = NULL, id_card = NULL
  WHERE taken_at IS NOT NULL AND (patient_name IS NOT NULL OR id_card IS NOT NULL);
UPDATE staging.emr_admission_info SET patient_name = NULL, id_card = NULL
  WHERE taken_at IS NOT NULL AND (patient_name IS NOT NULL OR id_card IS NOT NULL);
UPDATE staging.emr_first_course SET patient_name = NULL, id_card = NULL
  WHERE taken_at IS NOT NULL AND (patient_name IS NOT NULL OR id_card IS NOT NULL);
UPDATE staging.emr_daily_course SET patient_name = NULL, id_card = NULL
  WHERE taken_at IS NOT NULL AND (patient_name IS NOT NULL OR id_card IS NOT NULL);
UPDATE staging.emr_admission_record SET patient_name = NULL, id_card = NULL
  WHERE taken_at IS NOT NULL AND (patient_name IS NOT NULL OR id_card IS NOT NULL);
UPDATE staging.emr_discharge_info SET patient_name = NULL, id_card = NULL
  WHERE taken_at IS NOT NULL AND (patient_name IS NOT NULL OR id_card IS NOT NULL);
UPDATE staging.emr_vital_signs_record SET patient_name = NULL, id_card = NULL
  WHERE taken_at IS NOT NULL AND (patient_name IS NOT NULL OR id_card IS NOT NULL);
