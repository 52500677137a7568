-- Backups to an S3-compatible store (MinIO) and the checks that prove them (docs/backup.md).
-- openGauss 5.0-safe: bigserial, no ON CONFLICT; row counts kept as text (JSON built and read in
-- TypeScript), never queried with jsonb operators.

-- One row per archive: a nightly logical dump, a weekly physical base backup, the system data or
-- the software. Only 'good' rows name an object that is complete in the store; a failed or running
-- row's object is removed (or never completed), so no half-recorded archive is ever trusted.
CREATE TABLE backup_archive (
  archive_id bigserial PRIMARY KEY,
  kind varchar(10) NOT NULL,                 -- logical | physical | system | software
  status varchar(10) NOT NULL,               -- running | good | failed | removed
  trigger varchar(10) NOT NULL,              -- cron | manual
  bucket varchar(100) NOT NULL,
  object_key varchar(300) NOT NULL,
  dialect varchar(12) NOT NULL,              -- postgresql | opengauss
  tool varchar(40) NOT NULL,                 -- pg_dump | gs_dump | pg_basebackup | gs_basebackup | tar
  encryption varchar(10),                    -- NULL | sm4-ctr
  started_at timestamptz NOT NULL,
  finished_at timestamptz,
  size_bytes bigint,                         -- bytes stored (after encryption)
  sha256 char(64),                           -- of the bytes stored
  bytes_done bigint NOT NULL DEFAULT 0,      -- progress while running
  tables_total integer NOT NULL DEFAULT 0,
  tables_done integer NOT NULL DEFAULT 0,
  row_counts text,                           -- {"table": rows} at backup time (logical, system)
  error varchar(500),
  removed_at timestamptz,
  CONSTRAINT backup_archive_kind CHECK (kind IN ('logical', 'physical', 'system', 'software'))
);
CREATE INDEX backup_archive_kind_started ON backup_archive (kind, started_at);

-- Every check of an archive (or of freshness), newest last: what the console and monitor show.
CREATE TABLE backup_check (
  check_id bigserial PRIMARY KEY,
  archive_id bigint,                         -- NULL for freshness
  check_kind varchar(12) NOT NULL,           -- integrity | listing | drill | verify | freshness
  ok boolean NOT NULL,
  message varchar(1000) NOT NULL,
  duration_ms integer NOT NULL DEFAULT 0,
  checked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX backup_check_archive ON backup_check (archive_id, checked_at);
CREATE INDEX backup_check_at ON backup_check (checked_at);
