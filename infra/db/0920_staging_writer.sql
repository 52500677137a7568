-- Database sync with several HIS roles (docs/dbsync.md "Several hospitals"): each staging row records
-- the role that wrote it (inserted_by, set by the database: the HIS's grants name the data columns
-- only, shared/dbsync/role.ts), a role may be bound to the orgs it writes for (dbsync_role_org,
-- bin/cdc-dbsync --orgs; the dbsync function refuses a row of another org), and a row may be changed
-- only by the role that wrote it or by the table's owner, the front (staging_row_writer: one HIS
-- cannot rewrite another's rows before they are taken). Rows written before this migration count as
-- written by the migrating user. openGauss 5.0-safe: ADD COLUMN … DEFAULT current_user, a PL/pgSQL
-- trigger function, CREATE TRIGGER … EXECUTE PROCEDURE (docs/opengauss.md).

CREATE TABLE dbsync_role_org (
  role_name varchar(63) NOT NULL,
  org_code varchar(50) NOT NULL,
  PRIMARY KEY (role_name, org_code)
);

CREATE FUNCTION staging_row_writer() RETURNS trigger AS $$
BEGIN
  IF OLD.inserted_by IS DISTINCT FROM current_user
     AND current_user <> (SELECT pg_get_userbyid(c.relowner) FROM pg_class c WHERE c.oid = TG_RELID) THEN
    RAISE EXCEPTION 'staging row % was written by another role: only that role may change it', OLD.row_id
      USING ERRCODE = '42501';
  END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

-- base_user
ALTER TABLE staging.base_user ADD COLUMN inserted_by text DEFAULT current_user;
CREATE TRIGGER base_user_writer BEFORE UPDATE ON staging.base_user FOR EACH ROW EXECUTE PROCEDURE staging_row_writer();

-- base_dept
ALTER TABLE staging.base_dept ADD COLUMN inserted_by text DEFAULT current_user;
CREATE TRIGGER base_dept_writer BEFORE UPDATE ON staging.base_dept FOR EACH ROW EXECUTE PROCEDURE staging_row_writer();

-- emr_patient_info
ALTER TABLE staging.emr_patient_info ADD COLUMN inserted_by text DEFAULT current_user;
CREATE TRIGGER emr_patient_info_writer BEFORE UPDATE ON staging.emr_patient_info FOR EACH ROW EXECUTE PROCEDURE staging_row_writer();

-- emr_activity_info
ALTER TABLE staging.emr_activity_info ADD COLUMN inserted_by text DEFAULT current_user;
CREATE TRIGGER emr_activity_info_writer BEFORE UPDATE ON staging.emr_activity_info FOR EACH ROW EXECUTE PROCEDURE staging_row_writer();

-- emr_inf_report
ALTER TABLE staging.emr_inf_report ADD COLUMN inserted_by text DEFAULT current_user;
CREATE TRIGGER emr_inf_report_writer BEFORE UPDATE ON staging.emr_inf_report FOR EACH ROW EXECUTE PROCEDURE staging_row_writer();

-- emr_ex_lab
ALTER TABLE staging.emr_ex_lab ADD COLUMN inserted_by text DEFAULT current_user;
CREATE TRIGGER emr_ex_lab_writer BEFORE UPDATE ON staging.emr_ex_lab FOR EACH ROW EXECUTE PROCEDURE staging_row_writer();

-- emr_ex_lab_item
ALTER TABLE staging.emr_ex_lab_item ADD COLUMN inserted_by text DEFAULT current_user;
CREATE TRIGGER emr_ex_lab_item_writer BEFORE UPDATE ON staging.emr_ex_lab_item FOR EACH ROW EXECUTE PROCEDURE staging_row_writer();

-- emr_ex_clinical
ALTER TABLE staging.emr_ex_clinical ADD COLUMN inserted_by text DEFAULT current_user;
CREATE TRIGGER emr_ex_clinical_writer BEFORE UPDATE ON staging.emr_ex_clinical FOR EACH ROW EXECUTE PROCEDURE staging_row_writer();

-- emr_ex_clinical_item
ALTER TABLE staging.emr_ex_clinical_item ADD COLUMN inserted_by text DEFAULT current_user;
CREATE TRIGGER emr_ex_clinical_item_writer BEFORE UPDATE ON staging.emr_ex_clinical_item FOR EACH ROW EXECUTE PROCEDURE staging_row_writer();

-- emr_order
ALTER TABLE staging.emr_order ADD COLUMN inserted_by text DEFAULT current_user;
CREATE TRIGGER emr_order_writer BEFORE UPDATE ON staging.emr_order FOR EACH ROW EXECUTE PROCEDURE staging_row_writer();

-- emr_order_item
ALTER TABLE staging.emr_order_item ADD COLUMN inserted_by text DEFAULT current_user;
CREATE TRIGGER emr_order_item_writer BEFORE UPDATE ON staging.emr_order_item FOR EACH ROW EXECUTE PROCEDURE staging_row_writer();

-- emr_death_info
ALTER TABLE staging.emr_death_info ADD COLUMN inserted_by text DEFAULT current_user;
CREATE TRIGGER emr_death_info_writer BEFORE UPDATE ON staging.emr_death_info FOR EACH ROW EXECUTE PROCEDURE staging_row_writer();

-- emr_outpatient_record
ALTER TABLE staging.emr_outpatient_record ADD COLUMN inserted_by text DEFAULT current_user;
CREATE TRIGGER emr_outpatient_record_writer BEFORE UPDATE ON staging.emr_outpatient_record FOR EACH ROW EXECUTE PROCEDURE staging_row_writer();

-- emr_outpatient_obs
ALTER TABLE staging.emr_outpatient_obs ADD COLUMN inserted_by text DEFAULT current_user;
CREATE TRIGGER emr_outpatient_obs_writer BEFORE UPDATE ON staging.emr_outpatient_obs FOR EACH ROW EXECUTE PROCEDURE staging_row_writer();

-- emr_admission_info
ALTER TABLE staging.emr_admission_info ADD COLUMN inserted_by text DEFAULT current_user;
CREATE TRIGGER emr_admission_info_writer BEFORE UPDATE ON staging.emr_admission_info FOR EACH ROW EXECUTE PROCEDURE staging_row_writer();

-- emr_first_course
ALTER TABLE staging.emr_first_course ADD COLUMN inserted_by text DEFAULT current_user;
CREATE TRIGGER emr_first_course_writer BEFORE UPDATE ON staging.emr_first_course FOR EACH ROW EXECUTE PROCEDURE staging_row_writer();

-- emr_daily_course
ALTER TABLE staging.emr_daily_course ADD COLUMN inserted_by text DEFAULT current_user;
CREATE TRIGGER emr_daily_course_writer BEFORE UPDATE ON staging.emr_daily_course FOR EACH ROW EXECUTE PROCEDURE staging_row_writer();

-- emr_admission_record
ALTER TABLE staging.emr_admission_record ADD COLUMN inserted_by text DEFAULT current_user;
CREATE TRIGGER emr_admission_record_writer BEFORE UPDATE ON staging.emr_admission_record FOR EACH ROW EXECUTE PROCEDURE staging_row_writer();

-- emr_discharge_info
ALTER TABLE staging.emr_discharge_info ADD COLUMN inserted_by text DEFAULT current_user;
CREATE TRIGGER emr_discharge_info_writer BEFORE UPDATE ON staging.emr_discharge_info FOR EACH ROW EXECUTE PROCEDURE staging_row_writer();

-- emr_vital_signs_record
ALTER TABLE staging.emr_vital_signs_record ADD COLUMN inserted_by text DEFAULT current_user;
CREATE TRIGGER emr_vital_signs_record_writer BEFORE UPDATE ON staging.emr_vital_signs_record FOR EACH ROW EXECUTE PROCEDURE staging_row_writer();
