-- Where new records' versions start after a restore (docs/backup.md "Versions after a restore",
-- shared/ingest/restore-gap.ts versionBase): one row, written by the restore, which moves it on by the
-- version gap; absent (0) on a database never restored. IF NOT EXISTS: a restore of an archive made
-- before this migration creates the table itself, with this same statement. openGauss 5.0-safe
-- (docs/opengauss.md).
CREATE TABLE IF NOT EXISTS record_version_base (id smallint PRIMARY KEY, base integer NOT NULL);
