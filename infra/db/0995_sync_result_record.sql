-- Database sync outcomes follow their record's holds (docs/dbsync.md "Held records"): when a record's
-- holds change (released, re-held for a data-set rule after mapping, newly held) its outcome rows'
-- `held` is rewritten in the same transaction, found by record through this index — without it every
-- hold change, the API's too, would scan the outcomes of DBSYNC_RETAIN_DAYS.
-- openGauss 5.0-safe: a plain CREATE INDEX (docs/opengauss.md).
CREATE INDEX sync_result_record ON staging.sync_result (resource, org_code, record_id);
