-- The daily comparison with the direct-report system (每日比对, docs/console.md "The comparison page"):
-- one row per uploaded export, holding its summary and never the file itself (the export names
-- patients). openGauss 5.0-safe (docs/opengauss.md): bigserial, no ON CONFLICT, no jsonb builders;
-- the counts per cause are JSON made in TypeScript and stored as text; days as local 'yyyy-MM-dd' text.
CREATE TABLE compare_run (
  compare_id bigserial PRIMARY KEY,
  uploaded_by varchar(64) NOT NULL,          -- the signed-in console user
  uploaded_at timestamptz NOT NULL DEFAULT now(),
  file_name varchar(200),
  encoding varchar(10) NOT NULL,             -- utf-8 | gbk | utf-16le | utf-16be
  orgs varchar(2000) NOT NULL,               -- * or comma-separated org codes compared
  period_from varchar(10) NOT NULL,          -- the report days compared, local
  period_to varchar(10) NOT NULL,
  export_rows integer NOT NULL,
  front_cards integer NOT NULL,
  matched integer NOT NULL,
  differing integer NOT NULL,                -- matched, but some field differs
  export_only integer NOT NULL,
  front_only integer NOT NULL,
  causes text NOT NULL                       -- JSON: cause → count
);
CREATE INDEX compare_run_time ON compare_run (uploaded_at);
