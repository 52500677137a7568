-- When the process taking an archive last wrote its progress (every second while it lives;
-- docs/backup.md "Progress and state"): a `running` row whose progress has not been written for
-- 5 minutes belongs to a process that died, and is failed as stalled by the next backup run or
-- status read of the backup function, instead of showing as running for up to 6 hours.
-- NULL on rows written before this column (the 6-hour rule still covers those).
-- openGauss 5.0-safe (docs/opengauss.md): ADD COLUMN, nullable, no default.
ALTER TABLE backup_archive ADD COLUMN progress_at timestamptz;
