-- A change counter per national list (docs/code-mapping.md "Refresh"): every change of a domain's
-- current list (an import, a configuration bundle's code table, a rollback that puts a list back)
-- adds one to its row, in the transaction that bumps the '*' map version. When '*' moves, a code cache
-- reloads only the domains whose counter moved, instead of every national list (a full drug list is
-- 200 000 codes). list_version cannot serve: it is the list's own label, the same when a version is
-- imported again, and put back with the list by a rollback. 0 on every row at first: a cache reads
-- every list when it starts. openGauss 5.0-safe (docs/opengauss.md): ADD COLUMN with a constant default.
ALTER TABLE code_domain ADD COLUMN list_seq bigint NOT NULL DEFAULT 0;
