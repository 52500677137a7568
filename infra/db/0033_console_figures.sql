-- The console's figures (docs/console.md "The dashboard"): what the dashboard, data-quality and
-- delivery pages read without scanning the large tables. openGauss 5.0-safe (docs/opengauss.md):
-- plain CREATE TABLE/INDEX, no ON CONFLICT, days as local 'yyyy-MM-dd' text.

-- Rows delivered in a time range (今日已发送, the 30-day trend): without it a count of the day's
-- deliveries reads the whole outbox. sent_at is set once, when the receipt arrives.
CREATE INDEX outbox_sent ON outbox (sent_at);

-- The 30-day trends: one row per finished local day, organisation and resource, counted once after
-- the day ended (shared/console/figures.ts is its only writer). A row with org_code '*' and resource
-- '*' marks a day as counted. org_code '-' holds rejections that named no organisation.
CREATE TABLE console_day_figure (
  fig_day varchar(10) NOT NULL,
  org_code varchar(50) NOT NULL,
  resource varchar(40) NOT NULL,
  received integer NOT NULL DEFAULT 0,   -- records whose current version arrived that day
  held integer NOT NULL DEFAULT 0,       -- of those, held (parent or mapping) when counted
  rejected integer NOT NULL DEFAULT 0,   -- records refused (ingest_rejection)
  sent integer NOT NULL DEFAULT 0,       -- outbox rows delivered that day (every platform)
  failed integer NOT NULL DEFAULT 0,     -- outbox rows that became dead letters that day
  timely integer NOT NULL DEFAULT 0,     -- arrivals within the resource's deadline class
  timed integer NOT NULL DEFAULT 0,      -- arrivals with a business time (timely's denominator)
  computed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (fig_day, org_code, resource)
);
