-- Single sign-on from the HIS into the front's popup and card form (docs/card-form.md).
-- openGauss 5.0-safe: no ON CONFLICT (a replayed token is a unique violation, SQLSTATE 23505).

-- Each token's nonce, once: a second use of the same token is refused until it has expired anyway.
CREATE TABLE sso_nonce (
  nonce varchar(64) PRIMARY KEY,
  org_code varchar(50) NOT NULL,
  doctor_id varchar(80) NOT NULL,
  expires_at timestamptz NOT NULL,
  used_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sso_nonce_expiry ON sso_nonce (expires_at);

-- A doctor's session in the popup, opened by one token: the org, doctor and patient it names bound
-- the session. The cookie carries a random value; only its SHA-256 is stored. Kept after expiry as
-- the audit of who signed in from the HIS, when, for which patient.
CREATE TABLE sso_session (
  session_hash varchar(64) PRIMARY KEY,
  org_code varchar(50) NOT NULL,
  doctor_id varchar(80) NOT NULL,
  doctor_name varchar(50),
  dept_code varchar(64),
  patient_id varchar(80) NOT NULL,
  case_id varchar(20),
  csrf varchar(64) NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  last_card_id varchar(80)
);
CREATE INDEX sso_session_doctor ON sso_session (org_code, doctor_id, created_at);
