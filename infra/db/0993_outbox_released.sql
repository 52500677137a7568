-- When a held outbox row was released (shared/outbox releaseHeld): the backlog alert measures a row's
-- wait from here, not from created_at — time on hold (for a mapping, a parent, a corrected version) is
-- no transmission backlog (docs/day-close.md "Backlog alerts"). created_at keeps the receipt time the
-- timeliness figures read. NULL for a row never held. openGauss 5.0-safe: ADD COLUMN without a default.
ALTER TABLE outbox ADD COLUMN released_at timestamptz;
