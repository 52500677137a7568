-- The fate of every record, as the HIS can query it (receipts and reconciliation), holds, and
-- rejections. openGauss-safe: no ON CONFLICT, no identity, dates as local 'yyyy-MM-dd' text.

-- One row per record (resource, org, id): its current version and state, why it is held, and its
-- data-quality flags. `business_day` is the local date of the record's business time (report
-- time, order time, ...): the day a reconcile call names.
CREATE TABLE record_receipt (
  resource varchar(40) NOT NULL,
  org_code varchar(50) NOT NULL,
  record_id varchar(80) NOT NULL,
  version integer NOT NULL,
  state varchar(12) NOT NULL,            -- stored | held | retired (held wins while a hold lasts)
  retired boolean NOT NULL DEFAULT false,
  hold_reasons varchar(500),             -- e.g. parent:emrExLab/L123 (space-separated)
  flags varchar(500),                    -- data-quality warnings, e.g. garbledText:patientName
  business_at timestamptz,
  business_day varchar(10),
  test_mode boolean NOT NULL DEFAULT false,
  received_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  PRIMARY KEY (resource, org_code, record_id)
);
CREATE INDEX record_receipt_day ON record_receipt (org_code, resource, business_day);
CREATE INDEX record_receipt_held ON record_receipt (state, updated_at);

-- A child record waiting for its parent (lab item for its lab report, order item for its order,
-- anything keyed to a patient or visit). Never dropped: released when the parent arrives.
CREATE TABLE record_parent_wait (
  resource varchar(40) NOT NULL,
  org_code varchar(50) NOT NULL,
  record_id varchar(80) NOT NULL,
  parent_resource varchar(40) NOT NULL,
  parent_id varchar(80) NOT NULL,
  since timestamptz NOT NULL,
  PRIMARY KEY (resource, org_code, record_id, parent_resource)
);
CREATE INDEX record_parent_wait_parent ON record_parent_wait (parent_resource, org_code, parent_id);
CREATE INDEX record_parent_wait_since ON record_parent_wait (since);

-- Records refused with 400: what was wrong (fields, rules, masked values), never the record itself.
CREATE TABLE ingest_rejection (
  rej_id bigserial PRIMARY KEY,
  resource varchar(40) NOT NULL,
  org_code varchar(50),
  record_id varchar(80),
  call_id varchar(64),
  caller varchar(80),
  issues jsonb NOT NULL,
  test_mode boolean NOT NULL DEFAULT false,
  received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ingest_rejection_key ON ingest_rejection (org_code, resource, record_id);
CREATE INDEX ingest_rejection_time ON ingest_rejection (received_at);

-- Test-mode records reach only destinations that accept them (an acceptance simulator), never a
-- live platform.
ALTER TABLE uplink_destination ADD COLUMN accepts_test boolean NOT NULL DEFAULT false;
