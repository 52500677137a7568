-- Aberration detection (docs/aberration.md): daily counts per disease and syndrome, for the whole
-- hospital (dept_code '') and per department; the days computed (a day without count rows is a day
-- with no cases only when it is listed here); and the signals with the series that raised them.
-- openGauss 5.0-safe: bigserial, no ON CONFLICT (each day's rows are replaced whole in a transaction).

CREATE TABLE aberration_day (
  org_code varchar(50) NOT NULL,
  day date NOT NULL,
  computed_at timestamptz NOT NULL,
  PRIMARY KEY (org_code, day)
);

CREATE TABLE aberration_count (
  org_code varchar(50) NOT NULL,
  day date NOT NULL,
  kind varchar(10) NOT NULL,                 -- disease | syndrome
  key varchar(100) NOT NULL,                 -- notifiable_diseases.csv name, or the syndrome's id
  dept_code varchar(64) NOT NULL,            -- '' = the whole hospital
  n integer NOT NULL,                        -- distinct patients
  PRIMARY KEY (org_code, day, kind, key, dept_code)
);

CREATE TABLE aberration_signal (
  signal_id bigserial PRIMARY KEY,
  org_code varchar(50) NOT NULL,
  day date NOT NULL,
  kind varchar(10) NOT NULL,
  key varchar(100) NOT NULL,
  dept_code varchar(64) NOT NULL,
  algorithm varchar(12) NOT NULL,            -- fixed | mpm | ears-c1 | ears-c2 | ears-c3 | cluster
  observed numeric NOT NULL,
  expected numeric,
  threshold numeric,
  statistic numeric,
  params jsonb NOT NULL,
  series jsonb NOT NULL,                     -- [{day, n}], the last 28 days up to the signal's day
  created_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX aberration_signal_once ON aberration_signal (org_code, day, kind, key, dept_code, algorithm);
CREATE INDEX aberration_signal_day ON aberration_signal (day);
