-- The day close's late records (docs/day-close.md "Late records"): each tick asks, per done T+1 close
-- of the catch-up window, whether a receipt of that organisation and business day was written
-- (a new record, a new version, a retirement: updated_at) after the close started. On
-- (org_code, business_day, updated_at) that is one probe of this index per close: the first entry
-- past the time answers it. record_receipt_day leads with the resource, which the question does not
-- name, so it would read every receipt of the org. Partial on business_day IS NOT NULL as the day
-- index (infra/db/0950_receipt_day_partial.sql, docs/opengauss.md "Key lists"): a look-up of one
-- receipt by its key never takes it. openGauss 5.0-safe: CREATE INDEX … WHERE (docs/opengauss.md).
CREATE INDEX record_receipt_day_updated ON record_receipt (org_code, business_day, updated_at) WHERE business_day IS NOT NULL;
