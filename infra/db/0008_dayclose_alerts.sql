-- Closing the day (docs/day-close.md) and backlog alerts (shared/alerts).
-- openGauss 5.0-safe (shared/design/opengauss-sql.md): bigserial, no identity, no ON CONFLICT, jsonb
-- only stored (figures are built in TypeScript), days as local 'yyyy-MM-dd' text (never a DATE,
-- which openGauss's A mode gives a time).

-- One row per close of a day: (organisation, local day, T+0 | T+1). A re-run recomputes and
-- replaces the figures; the forwarded records (dailySummary, dayCompleteness) get a new version only
-- when their content changed.
CREATE TABLE day_close (
  org_code varchar(50) NOT NULL,
  business_day varchar(10) NOT NULL,         -- local day, yyyy-MM-dd, in the hospital's zone
  kind varchar(4) NOT NULL,                  -- T+0 (late evening, same day) | T+1 (early morning, next day)
  status varchar(10) NOT NULL,               -- done | failed
  trigger varchar(10) NOT NULL,              -- cron | manual
  runs integer NOT NULL DEFAULT 0,           -- how often this close was computed
  started_at timestamptz NOT NULL,
  finished_at timestamptz,
  test_mode boolean NOT NULL DEFAULT false,
  gap_count integer NOT NULL DEFAULT 0,      -- completeness gaps found (all checks)
  summary jsonb,                             -- the dailySummary record as forwarded
  completeness jsonb,                        -- the dayCompleteness record as forwarded
  summary_version integer NOT NULL DEFAULT 0,
  summary_hash char(64),
  completeness_version integer NOT NULL DEFAULT 0,
  completeness_hash char(64),
  error varchar(500),
  CONSTRAINT day_close_kind CHECK (kind IN ('T+0', 'T+1')),
  PRIMARY KEY (org_code, business_day, kind)
);
CREATE INDEX day_close_day ON day_close (business_day, kind);

-- The day's business times, per organisation: what the close's range queries read.
CREATE INDEX emr_activity_info_day ON emr_activity_info (org_code, activity_time);
CREATE INDEX emr_admission_info_day ON emr_admission_info (org_code, admission_date);
CREATE INDEX emr_admission_record_day ON emr_admission_record (org_code, discharge_date);
CREATE INDEX emr_discharge_info_day ON emr_discharge_info (org_code, discharge_date);
CREATE INDEX emr_death_info_day ON emr_death_info (org_code, dead_date);
CREATE INDEX emr_inf_report_day ON emr_inf_report (org_code, report_date);
CREATE INDEX emr_ex_lab_item_day ON emr_ex_lab_item (org_code, operation_time);
CREATE INDEX emr_ex_clinical_item_day ON emr_ex_clinical_item (org_code, operation_time);
CREATE INDEX emr_order_day ON emr_order (org_code, prescription_issuance_date);

-- Backlog alert state, one row per destination, so that replicas and restarts raise an alert once
-- and clear it once. A message is "owed" to the channels that have not taken it yet; each push run
-- retries them, never more than what is owed.
CREATE TABLE backlog_alert (
  destination varchar(40) PRIMARY KEY,
  state varchar(10) NOT NULL DEFAULT 'ok',   -- ok | raised
  raised_at timestamptz,
  cleared_at timestamptz,
  pending integer NOT NULL DEFAULT 0,        -- as seen by the last check
  oldest_age_s integer,
  peak_pending integer NOT NULL DEFAULT 0,   -- while raised
  peak_age_s integer NOT NULL DEFAULT 0,
  owed_event bigint,                         -- alert_event of the message still owed
  owed_channels varchar(100),                -- space-separated: webhook mail
  attempts integer NOT NULL DEFAULT 0,       -- delivery attempts of the owed message
  last_error varchar(500),
  checked_at timestamptz NOT NULL DEFAULT now()
);

-- Every alert raised or cleared, with its text and delivery, for the console.
CREATE TABLE alert_event (
  event_id bigserial PRIMARY KEY,
  destination varchar(40) NOT NULL,
  kind varchar(10) NOT NULL,                 -- raise | clear
  pending integer NOT NULL,
  oldest_age_s integer,
  message varchar(2000) NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  channels varchar(100),                     -- channels that took it
  delivered_at timestamptz,                  -- every configured channel took it
  last_error varchar(500)
);
CREATE INDEX alert_event_dest ON alert_event (destination, created_at);
