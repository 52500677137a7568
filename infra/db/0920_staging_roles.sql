-- Database sync with several HIS roles (docs/dbsync.md "Several hospitals"): each staging row records
-- the role that wrote it (inserted_by, set by the database: the HIS's grants name the data columns
-- only, shared/dbsync/role.ts), and so does its outcome in sync_result. A role may be bound to the
-- orgs it writes for (dbsync_role_org, bin/cdc-dbsync --orgs; the dbsync function refuses a row of
-- another org); and a role other than the tables' owner (the front, whose user runs the migrations)
-- sees, changes and reads the outcomes of its own rows only (row-level security): one HIS cannot
-- read another's bookkeeping or rewrite its rows before they are taken. Rows written before this
-- migration belong to no role (inserted_by NULL): every role sees them, as before. openGauss
-- 5.0-safe: ADD COLUMN then SET DEFAULT current_user, ENABLE ROW LEVEL SECURITY, CREATE POLICY …
-- USING without FOR INSERT or WITH CHECK (docs/opengauss.md).

CREATE TABLE dbsync_role_org (
  role_name varchar(63) NOT NULL,
  org_code varchar(50) NOT NULL,
  PRIMARY KEY (role_name, org_code)
);

-- The outcomes: the role of the row each one is of (written by the front when it takes the row).
ALTER TABLE staging.sync_result ADD COLUMN inserted_by text;
ALTER TABLE staging.sync_result ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON staging.sync_result USING (inserted_by IS NULL OR inserted_by = current_user);

-- base_user
ALTER TABLE staging.base_user ADD COLUMN inserted_by text;
ALTER TABLE staging.base_user ALTER COLUMN inserted_by SET DEFAULT current_user;
ALTER TABLE staging.base_user ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON staging.base_user USING (inserted_by IS NULL OR inserted_by = current_user);

-- base_dept
ALTER TABLE staging.base_dept ADD COLUMN inserted_by text;
ALTER TABLE staging.base_dept ALTER COLUMN inserted_by SET DEFAULT current_user;
ALTER TABLE staging.base_dept ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON staging.base_dept USING (inserted_by IS NULL OR inserted_by = current_user);

-- emr_patient_info
ALTER TABLE staging.emr_patient_info ADD COLUMN inserted_by text;
ALTER TABLE staging.emr_patient_info ALTER COLUMN inserted_by SET DEFAULT current_user;
ALTER TABLE staging.emr_patient_info ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON staging.emr_patient_info USING (inserted_by IS NULL OR inserted_by = current_user);

-- emr_activity_info
ALTER TABLE staging.emr_activity_info ADD COLUMN inserted_by text;
ALTER TABLE staging.emr_activity_info ALTER COLUMN inserted_by SET DEFAULT current_user;
ALTER TABLE staging.emr_activity_info ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON staging.emr_activity_info USING (inserted_by IS NULL OR inserted_by = current_user);

-- emr_inf_report
ALTER TABLE staging.emr_inf_report ADD COLUMN inserted_by text;
ALTER TABLE staging.emr_inf_report ALTER COLUMN inserted_by SET DEFAULT current_user;
ALTER TABLE staging.emr_inf_report ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON staging.emr_inf_report USING (inserted_by IS NULL OR inserted_by = current_user);

-- emr_ex_lab
ALTER TABLE staging.emr_ex_lab ADD COLUMN inserted_by text;
ALTER TABLE staging.emr_ex_lab ALTER COLUMN inserted_by SET DEFAULT current_user;
ALTER TABLE staging.emr_ex_lab ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON staging.emr_ex_lab USING (inserted_by IS NULL OR inserted_by = current_user);

-- emr_ex_lab_item
ALTER TABLE staging.emr_ex_lab_item ADD COLUMN inserted_by text;
ALTER TABLE staging.emr_ex_lab_item ALTER COLUMN inserted_by SET DEFAULT current_user;
ALTER TABLE staging.emr_ex_lab_item ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON staging.emr_ex_lab_item USING (inserted_by IS NULL OR inserted_by = current_user);

-- emr_ex_clinical
ALTER TABLE staging.emr_ex_clinical ADD COLUMN inserted_by text;
ALTER TABLE staging.emr_ex_clinical ALTER COLUMN inserted_by SET DEFAULT current_user;
ALTER TABLE staging.emr_ex_clinical ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON staging.emr_ex_clinical USING (inserted_by IS NULL OR inserted_by = current_user);

-- emr_ex_clinical_item
ALTER TABLE staging.emr_ex_clinical_item ADD COLUMN inserted_by text;
ALTER TABLE staging.emr_ex_clinical_item ALTER COLUMN inserted_by SET DEFAULT current_user;
ALTER TABLE staging.emr_ex_clinical_item ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON staging.emr_ex_clinical_item USING (inserted_by IS NULL OR inserted_by = current_user);

-- emr_order
ALTER TABLE staging.emr_order ADD COLUMN inserted_by text;
ALTER TABLE staging.emr_order ALTER COLUMN inserted_by SET DEFAULT current_user;
ALTER TABLE staging.emr_order ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON staging.emr_order USING (inserted_by IS NULL OR inserted_by = current_user);

-- emr_order_item
ALTER TABLE staging.emr_order_item ADD COLUMN inserted_by text;
ALTER TABLE staging.emr_order_item ALTER COLUMN inserted_by SET DEFAULT current_user;
ALTER TABLE staging.emr_order_item ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON staging.emr_order_item USING (inserted_by IS NULL OR inserted_by = current_user);

-- emr_death_info
ALTER TABLE staging.emr_death_info ADD COLUMN inserted_by text;
ALTER TABLE staging.emr_death_info ALTER COLUMN inserted_by SET DEFAULT current_user;
ALTER TABLE staging.emr_death_info ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON staging.emr_death_info USING (inserted_by IS NULL OR inserted_by = current_user);

-- emr_outpatient_record
ALTER TABLE staging.emr_outpatient_record ADD COLUMN inserted_by text;
ALTER TABLE staging.emr_outpatient_record ALTER COLUMN inserted_by SET DEFAULT current_user;
ALTER TABLE staging.emr_outpatient_record ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON staging.emr_outpatient_record USING (inserted_by IS NULL OR inserted_by = current_user);

-- emr_outpatient_obs
ALTER TABLE staging.emr_outpatient_obs ADD COLUMN inserted_by text;
ALTER TABLE staging.emr_outpatient_obs ALTER COLUMN inserted_by SET DEFAULT current_user;
ALTER TABLE staging.emr_outpatient_obs ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON staging.emr_outpatient_obs USING (inserted_by IS NULL OR inserted_by = current_user);

-- emr_admission_info
ALTER TABLE staging.emr_admission_info ADD COLUMN inserted_by text;
ALTER TABLE staging.emr_admission_info ALTER COLUMN inserted_by SET DEFAULT current_user;
ALTER TABLE staging.emr_admission_info ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON staging.emr_admission_info USING (inserted_by IS NULL OR inserted_by = current_user);

-- emr_first_course
ALTER TABLE staging.emr_first_course ADD COLUMN inserted_by text;
ALTER TABLE staging.emr_first_course ALTER COLUMN inserted_by SET DEFAULT current_user;
ALTER TABLE staging.emr_first_course ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON staging.emr_first_course USING (inserted_by IS NULL OR inserted_by = current_user);

-- emr_daily_course
ALTER TABLE staging.emr_daily_course ADD COLUMN inserted_by text;
ALTER TABLE staging.emr_daily_course ALTER COLUMN inserted_by SET DEFAULT current_user;
ALTER TABLE staging.emr_daily_course ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON staging.emr_daily_course USING (inserted_by IS NULL OR inserted_by = current_user);

-- emr_admission_record
ALTER TABLE staging.emr_admission_record ADD COLUMN inserted_by text;
ALTER TABLE staging.emr_admission_record ALTER COLUMN inserted_by SET DEFAULT current_user;
ALTER TABLE staging.emr_admission_record ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON staging.emr_admission_record USING (inserted_by IS NULL OR inserted_by = current_user);

-- emr_discharge_info
ALTER TABLE staging.emr_discharge_info ADD COLUMN inserted_by text;
ALTER TABLE staging.emr_discharge_info ALTER COLUMN inserted_by SET DEFAULT current_user;
ALTER TABLE staging.emr_discharge_info ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON staging.emr_discharge_info USING (inserted_by IS NULL OR inserted_by = current_user);

-- emr_vital_signs_record
ALTER TABLE staging.emr_vital_signs_record ADD COLUMN inserted_by text;
ALTER TABLE staging.emr_vital_signs_record ALTER COLUMN inserted_by SET DEFAULT current_user;
ALTER TABLE staging.emr_vital_signs_record ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON staging.emr_vital_signs_record USING (inserted_by IS NULL OR inserted_by = current_user);
