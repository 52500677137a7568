-- A platform a configuration bundle names with `enabled: false` is paused, not retired
-- (docs/config-bundles.md §5): records keep being queued for it and wait, and leave in order when a
-- later bundle or a rollback enables it again, so a mistaken bundle and its undo lose nothing. A
-- destination no platforms section names is retired: nothing is queued for it (a platform named again
-- later receives the records written from then on). Push sends to enabled destinations only.
-- openGauss 5.0-safe (docs/opengauss.md): ADD COLUMN boolean with a constant default.
ALTER TABLE uplink_destination ADD COLUMN paused boolean NOT NULL DEFAULT false;
