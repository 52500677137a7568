-- A record released from a hold (mapping, rule, parent) changes its business day's figures as much as
-- a new version does, but its receipt time (updated_at) stays the time its version arrived. released_at
-- is when its held versions last left for the platforms (shared/outbox releaseHeld), so the day close
-- re-closes a done T+1 that a release reached (docs/day-close.md "Late records"). Partial on
-- released_at IS NOT NULL: only released records are in it, and the late-record probe is one entry of
-- it per close, as for updated_at (0970). openGauss 5.0-safe: ADD COLUMN without a default, CREATE INDEX … WHERE.
ALTER TABLE record_receipt ADD COLUMN released_at timestamptz;
CREATE INDEX record_receipt_day_released ON record_receipt (org_code, business_day, released_at) WHERE released_at IS NOT NULL AND business_day IS NOT NULL;
