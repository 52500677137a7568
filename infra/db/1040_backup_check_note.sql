-- A check's result as the console's 备份 page says it, in Chinese (docs/backup.md "Checks"), written by
-- the check beside its message (English, for the operator's command line and the logs): the page no
-- longer shows the English line. NULL on checks recorded before this column (the page shows their message).
-- openGauss 5.0-safe (docs/opengauss.md): ADD COLUMN, nullable, no default.
ALTER TABLE backup_check ADD COLUMN note varchar(1000);
