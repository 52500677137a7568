-- Activation (docs/activation.md): every authorization code the front was activated with, newest in
-- force. The network (test | production) of the newest row is the front's; the switch to production
-- is one more row, written only after a passed acceptance self-test, and audited.
CREATE TABLE front_activation (
  seq bigserial PRIMARY KEY,
  org_code varchar(50) NOT NULL,
  front_id varchar(100) NOT NULL,
  network varchar(20) NOT NULL,               -- test | production
  issued_at timestamptz NOT NULL,
  expires_at timestamptz,
  issuer varchar(200) NOT NULL,
  code_text text NOT NULL,                    -- the authorization code as signed
  signature varchar(400) NOT NULL,
  key_id varchar(64) NOT NULL,
  activated_at timestamptz NOT NULL DEFAULT now(),
  activated_by varchar(200) NOT NULL,
  acceptance_run bigint                       -- the passed self-test a production code relied on
);
