-- The front's report of itself to the provincial platform (docs/monitoring.md "Reporting to the
-- province"): one row per report sent or tried, with the faults it named, so that the next report
-- can say which of them were fixed. openGauss 5.0-safe: bigserial, no ON CONFLICT, jsonb stored only.
CREATE TABLE front_report (
  report_id bigserial PRIMARY KEY,
  destination varchar(40) NOT NULL,
  reported_at timestamptz NOT NULL,
  batch_id varchar(120) NOT NULL,
  ok boolean NOT NULL,
  error varchar(500),
  faults jsonb NOT NULL
);
CREATE INDEX front_report_dest ON front_report (destination, reported_at);
