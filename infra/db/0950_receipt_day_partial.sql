-- record_receipt's day index serves the day's questions only (docs/opengauss.md "Key lists"): the receipts
-- of an org, resource and business day (day-close, receipts.ts) and the orgs with a business day since
-- a date (shared/dayclose activeOrgs). As a full index on (org_code, resource, …) it was also a
-- candidate for every look-up of one receipt by its key, and where the statistics did not know the
-- org yet (a new installation, a new org, the bench's fresh orgs) the planner costed it as the primary
-- key's equal and chose it: each look-up then read every receipt of that org and resource. Partial on
-- business_day IS NOT NULL, it serves only queries that name a business day, and a key's look-up
-- always takes the primary key. openGauss 5.0-safe: DROP INDEX, CREATE INDEX … WHERE (docs/opengauss.md).
DROP INDEX record_receipt_day;
CREATE INDEX record_receipt_day ON record_receipt (org_code, resource, business_day) WHERE business_day IS NOT NULL;
