-- People on the web console (docs/console.md): users with a role, sessions, and the audit of every
-- sign-in and change. Separate from the HIS callers (his_caller): a HIS key or an address rule is
-- never a person. openGauss 5.0-safe: bigserial, no identity, no ON CONFLICT, no jsonb builders.
CREATE TABLE console_user (
  user_id bigserial PRIMARY KEY,
  username varchar(64) NOT NULL UNIQUE,
  display_name varchar(100),
  role varchar(20) NOT NULL,                  -- clinician | public_health | operator | admin
  orgs varchar(2000) NOT NULL DEFAULT '*',    -- * or comma-separated org codes
  password_hash varchar(300) NOT NULL,        -- scrypt$N$r$p$salt$hash (base64)
  failed_count integer NOT NULL DEFAULT 0,
  locked_until timestamptz,
  disabled boolean NOT NULL DEFAULT false,
  password_changed_at timestamptz NOT NULL DEFAULT now(),
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT console_user_role CHECK (role IN ('clinician', 'public_health', 'operator', 'admin'))
);

-- A session: the cookie carries a random token; only its SHA-256 is stored. Idle and absolute expiry
-- are checked on every request; sign-out ends it. Kept after it ends, as the audit of who was in.
CREATE TABLE console_session (
  token_hash char(64) PRIMARY KEY,
  user_id bigint NOT NULL REFERENCES console_user (user_id),
  csrf varchar(64) NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  ended_at timestamptz,
  address varchar(64)
);
CREATE INDEX console_session_user ON console_session (user_id, created_at);

-- Every sign-in (and its failure), lockout, sign-out, user change; never a password or a token.
CREATE TABLE console_audit (
  audit_id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now(),
  username varchar(64),
  action varchar(40) NOT NULL,
  detail varchar(1000),
  address varchar(64)
);
CREATE INDEX console_audit_time ON console_audit (at);
