-- Duplicate cards, suppressed prompts and snoozed rules of the early-warning loop (docs/warning.md).
-- openGauss 5.0-safe: bigserial, no ON CONFLICT.

-- A prompt the duplicate-card rules kept back: the case had a card already (this person, this disease).
CREATE TABLE warning_suppressed (
  suppressed_id bigserial PRIMARY KEY,
  org_code varchar(50) NOT NULL,
  patient_id varchar(80) NOT NULL,
  disease varchar(100) NOT NULL,
  rule varchar(20) NOT NULL,                 -- same-id | same-person | chronic-once
  card_org varchar(50) NOT NULL,
  card_id varchar(80) NOT NULL,
  reason varchar(300) NOT NULL,
  at timestamptz NOT NULL
);
CREATE UNIQUE INDEX warning_suppressed_once ON warning_suppressed (org_code, patient_id, disease, card_org, card_id);

-- Two cards for one person and disease: which one wins (the higher diagnosis level; the earlier on a tie).
CREATE TABLE warning_card_duplicate (
  org_code varchar(50) NOT NULL,
  card_id varchar(80) NOT NULL,
  other_org varchar(50) NOT NULL,
  other_id varchar(80) NOT NULL,
  winner_org varchar(50) NOT NULL,
  winner_id varchar(80) NOT NULL,
  rule varchar(20) NOT NULL,
  reason varchar(300) NOT NULL,
  at timestamptz NOT NULL,
  PRIMARY KEY (org_code, card_id, other_org, other_id)
);

-- A rule snoozed by public health: raises nothing new until `until` or until lifted; who, when, why.
CREATE TABLE warning_snooze (
  snooze_id bigserial PRIMARY KEY,
  trigger_id varchar(60) NOT NULL,
  until_at timestamptz NOT NULL,
  reason varchar(300) NOT NULL,
  actor varchar(80) NOT NULL,
  created_at timestamptz NOT NULL,
  lifted_at timestamptz,
  lifted_by varchar(80)
);
CREATE INDEX warning_snooze_trigger ON warning_snooze (trigger_id, until_at);

-- Public health's verification queue per person: the case's verifier, assigned by public health.
ALTER TABLE warning_case ADD COLUMN verifier varchar(80);
CREATE INDEX warning_case_verifier ON warning_case (verifier, state);
