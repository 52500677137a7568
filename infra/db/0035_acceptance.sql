-- The console's acceptance self-test (docs/acceptance.md): each run's report,
-- kept whole (JSON text, read back through its zod schema) so it can be printed again.
CREATE TABLE console_acceptance (
  run_id bigserial PRIMARY KEY,
  org_code varchar(50) NOT NULL,
  started_at timestamptz NOT NULL,
  finished_at timestamptz NOT NULL,
  by_user varchar(100) NOT NULL,
  ok boolean NOT NULL,
  report text NOT NULL
);
