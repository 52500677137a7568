-- Core tables of the front: destinations, the outbox, the record history, the push ledger.
-- openGauss 5.0-safe (see docs/opengauss.md): bigserial, no identity, no ON CONFLICT, jsonb read-only.

-- Platforms the front forwards to (national, provincial, ...). Every accepted record gets one
-- outbox row per enabled destination, in the same transaction as the record.
CREATE TABLE uplink_destination (
  name varchar(40) PRIMARY KEY,
  kind varchar(20) NOT NULL,            -- national | provincial
  enabled boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO uplink_destination (name, kind, enabled) VALUES ('national', 'national', true);

-- Every version of every record as received (the raw JSON the HIS sent, after key normalisation).
CREATE TABLE record_history (
  hist_id bigserial PRIMARY KEY,
  resource varchar(40) NOT NULL,
  org_code varchar(50) NOT NULL,
  record_id varchar(80) NOT NULL,
  version integer NOT NULL,
  op varchar(10) NOT NULL,               -- upsert | retire
  rec_hash char(64) NOT NULL,
  raw jsonb NOT NULL,
  call_id varchar(64),
  received_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX record_history_key ON record_history (resource, org_code, record_id, version);

-- The transactional outbox: what each destination still has to receive.
CREATE TABLE outbox (
  outbox_id bigserial PRIMARY KEY,
  destination varchar(40) NOT NULL,
  resource varchar(40) NOT NULL,
  org_code varchar(50) NOT NULL,
  record_id varchar(80) NOT NULL,
  version integer NOT NULL,
  op varchar(10) NOT NULL,
  deadline_class varchar(10) NOT NULL,
  test_mode boolean NOT NULL DEFAULT false,
  payload jsonb NOT NULL,
  state varchar(12) NOT NULL DEFAULT 'pending',   -- pending | sent | dead
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_error varchar(500),
  created_at timestamptz NOT NULL DEFAULT now(),
  sent_at timestamptz
);
CREATE INDEX outbox_due ON outbox (destination, state, next_attempt_at, outbox_id);
CREATE INDEX outbox_key ON outbox (destination, resource, org_code, record_id, version);

-- One row per push run, for the console ("scheduled work leaves a row behind").
CREATE TABLE push_run (
  run_id bigserial PRIMARY KEY,
  started_at timestamptz NOT NULL,
  finished_at timestamptz,
  trigger varchar(20) NOT NULL,          -- cron | nudge | manual
  claimed integer NOT NULL DEFAULT 0,
  sent integer NOT NULL DEFAULT 0,
  failed integer NOT NULL DEFAULT 0,
  note varchar(500)
);
