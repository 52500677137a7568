-- Database sync outcomes say what the API's answer says of a record held back from the platforms
-- (docs/dbsync.md "How it works"): `held`, the reasons as the API gives them ("parent:emrExLab/L001",
-- a code waiting for its mapping), NULL when the record goes on at once. A `created` row alone would
-- tell the HIS nothing of a record that never reaches the platform until its parent or mapping comes.
-- openGauss 5.0-safe: ADD COLUMN of a nullable jsonb, no default to rewrite (docs/opengauss.md).
ALTER TABLE staging.sync_result ADD COLUMN held jsonb;
