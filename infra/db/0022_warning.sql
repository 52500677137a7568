-- Early warning (docs/warning.md): the evaluation work, the evidence and the pending cases.
-- openGauss 5.0-safe (shared/design/opengauss-sql.md): bigserial, no identity, no ON CONFLICT.

-- The work to evaluate is the record history itself: every version a receive function writes is a
-- record_history row in the same transaction as the record, so a version committed is a version that
-- will be evaluated, even when the process dies right after the commit. New rows are pending (true);
-- the warning function clears the flag (NULL) in the transaction that stores what it found. Rows
-- written before this migration stay NULL: history is not re-evaluated on upgrade.
ALTER TABLE record_history ADD COLUMN warn_pending boolean;
ALTER TABLE record_history ALTER COLUMN warn_pending SET DEFAULT true;
CREATE INDEX record_history_warn ON record_history (warn_pending, hist_id);

-- What each record version said (shared/warning/evaluate.ts), replaced whole when a newer version of
-- the same record is evaluated.
CREATE TABLE warning_evidence (
  org_code varchar(50) NOT NULL,
  source_resource varchar(40) NOT NULL,
  source_id varchar(80) NOT NULL,
  seq integer NOT NULL,
  source_version integer NOT NULL,
  patient_id varchar(80) NOT NULL,           -- '' when the record's patient cannot be told
  dept_code varchar(64),                     -- the department and doctor the record names (who is prompted)
  doctor_id varchar(80),
  disease varchar(100) NOT NULL,             -- notifiable_diseases.csv name
  subtype varchar(40),
  syndrome varchar(40),
  kind varchar(10) NOT NULL,                 -- diagnosis | lab | death | drug | keyword | card
  effect varchar(10) NOT NULL,               -- raise | confirm | close | known | carded
  trigger_id varchar(60) NOT NULL,
  field varchar(60) NOT NULL,
  detail varchar(500) NOT NULL,
  evidence_at timestamptz,
  recorded_at timestamptz NOT NULL,
  trigger_version varchar(40) NOT NULL,
  PRIMARY KEY (org_code, source_resource, source_id, seq)
);
CREATE INDEX warning_evidence_case ON warning_evidence (org_code, patient_id, disease);

-- One pending case per (org, patient, disease) within the case window; a case reported or closed
-- longer ago than the window is followed by a new one.
CREATE TABLE warning_case (
  case_id bigserial PRIMARY KEY,
  org_code varchar(50) NOT NULL,
  patient_id varchar(80) NOT NULL,
  disease varchar(100) NOT NULL,
  nndrs varchar(4),
  class_a boolean NOT NULL,
  deadline_hours integer NOT NULL,
  state varchar(12) NOT NULL,                -- to_confirm | to_diagnose | known | to_verify | reported | excluded | closed
  dept_code varchar(64),                     -- responsible: the department and doctor of the first raising evidence
  doctor_id varchar(80),
  acked_at timestamptz,                      -- the HIS showed the reminder to the doctor (who: warning_case_event)
  filled_at timestamptz,                     -- the HIS says the card was filled in its own form
  confirmed_at timestamptz,                  -- the doctor confirmed the case (who and why: warning_case_event)
  excluded_at timestamptz,                   -- the doctor excluded it (with a reason)
  verified_at timestamptz,                   -- public health verified its card
  missed_at timestamptz,                     -- the daily missed-report self-check found it still without a card
  first_at timestamptz,                      -- the earliest raising evidence (the diagnosis time)
  due_at timestamptz,                        -- first_at + deadline_hours, while the case waits for a card
  evidence_count integer NOT NULL DEFAULT 0,
  overdue_alerted_at timestamptz,            -- when the overdue alert went out (once per case)
  opened_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  CONSTRAINT warning_case_state CHECK (state IN ('to_confirm', 'to_diagnose', 'known', 'to_verify', 'reported', 'excluded', 'closed'))
);
CREATE INDEX warning_case_key ON warning_case (org_code, patient_id, disease);
CREATE INDEX warning_case_open ON warning_case (state, due_at);
CREATE INDEX warning_case_dept ON warning_case (org_code, dept_code, state);

-- Every change of a case's state: who (system, or a person), when, why.
CREATE TABLE warning_case_event (
  event_id bigserial PRIMARY KEY,
  case_id bigint NOT NULL,
  at timestamptz NOT NULL,
  actor varchar(80) NOT NULL,
  from_state varchar(12),
  to_state varchar(12) NOT NULL,
  reason varchar(500) NOT NULL
);
CREATE INDEX warning_case_event_case ON warning_case_event (case_id, event_id);
