-- Forwarding to the platforms (docs/uplink.md): which resources a destination takes, the outbox's
-- dead-letter fields, the circuit breaker per destination, and the delivery ledger (every batch's
-- signed receipt and one row per record receipt). openGauss 5.0-safe: bigserial, no ON CONFLICT,
-- jsonb only stored (the receipt is built in TypeScript), each ALTER runs once (migration ledger).

-- Space-separated wire names of the resources this platform takes (a provincial platform may take
-- a subset); NULL = all. Rows of other resources are marked 'skipped' by the push.
ALTER TABLE uplink_destination ADD COLUMN resources varchar(2000);

-- outbox.state gains 'dead' (rejected by the platform, or refused N times: an operator can see,
-- fix and replay it) and 'skipped' (a resource the destination does not take).
-- refusals: how often the platform refused a batch holding this row for its content (HTTP 422/413);
-- a row with refusals > 0 is sent alone, so one poison row cannot block the others.
ALTER TABLE outbox ADD COLUMN refusals integer NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN dead_at timestamptz;
CREATE INDEX outbox_dead ON outbox (destination, state, dead_at);

-- The circuit breaker and backoff of each destination: nothing is sent before retry_at.
CREATE TABLE uplink_circuit (
  destination varchar(40) PRIMARY KEY,
  state varchar(10) NOT NULL DEFAULT 'closed',  -- closed | open (half-open = open with retry_at past)
  failures integer NOT NULL DEFAULT 0,          -- consecutive failed batches
  openings integer NOT NULL DEFAULT 0,          -- consecutive openings (the open time doubles)
  retry_at timestamptz,
  bad_receipts integer NOT NULL DEFAULT 0,      -- receipts whose platform signature did not verify
  last_error varchar(500),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per acknowledged batch: the platform's signed receipt as received (non-repudiation).
CREATE TABLE uplink_batch (
  batch_seq bigserial PRIMARY KEY,
  batch_id varchar(120) NOT NULL,
  destination varchar(40) NOT NULL,
  records integer NOT NULL,
  bytes integer NOT NULL,
  replayed boolean NOT NULL,
  platform_key_id char(64) NOT NULL,
  received_at timestamptz NOT NULL,             -- the platform's receivedAt
  sent_at timestamptz NOT NULL,
  answered_at timestamptz NOT NULL DEFAULT now(),
  receipt jsonb NOT NULL
);
CREATE INDEX uplink_batch_id ON uplink_batch (batch_id);
CREATE INDEX uplink_batch_dest ON uplink_batch (destination, answered_at);

-- The delivery ledger: one row per record receipt (accepted | duplicate | rejected).
CREATE TABLE uplink_delivery (
  delivery_id bigserial PRIMARY KEY,
  batch_id varchar(120) NOT NULL,
  destination varchar(40) NOT NULL,
  outbox_id bigint NOT NULL,
  resource varchar(40) NOT NULL,
  org_code varchar(50) NOT NULL,
  record_id varchar(80) NOT NULL,
  version integer NOT NULL,
  status varchar(12) NOT NULL,
  reason varchar(500),
  receipt_sig varchar(200) NOT NULL,
  sent_at timestamptz NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX uplink_delivery_key ON uplink_delivery (destination, resource, org_code, record_id, version);
CREATE INDEX uplink_delivery_outbox ON uplink_delivery (outbox_id);
