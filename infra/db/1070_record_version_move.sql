-- Each move of a database's record versions after a restore (docs/backup.md "Versions after a restore",
-- shared/backup/version-move.ts): the archive it was made for, when, the shift and the version base it
-- set. `move-versions` refuses a second move for the same archive unless forced. IF NOT EXISTS: a move
-- on a database of an older release creates the table itself, with this same statement. openGauss
-- 5.0-safe (docs/opengauss.md).
CREATE TABLE IF NOT EXISTS record_version_move (archive_key varchar(1024) NOT NULL, moved_at timestamptz NOT NULL, shift integer NOT NULL, base integer NOT NULL);
