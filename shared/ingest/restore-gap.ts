/**
 * Record versions after a restore (docs/backup.md "Versions after a restore"). A restored database counts
 * versions from where its archive was, but the lost front may have sent later versions of the same records
 * to the platforms after the archive was taken; the platform stores each (org, resource, id, version)
 * once (docs/uplink.md §6), so a version handed out again would be answered `duplicate` and its new
 * content never stored. `make restore` therefore adds RESTORE_VERSION_GAP (or more whole gaps, above every
earlier restore's band: shared/backup/version-move.ts) to every record's current
 * version (the typed tables' rec_version and record_receipt.version, in one transaction, before the front
 * starts on the database): the next version of any record is above anything the old front can have sent.
 * The outbox keeps its versions (what was queued and sent stays as it was), so a record not written since
 * the restore has its content queued under its version less whole gaps: queuedVersion.
 *
 * A record the lost front first received after the archive is not in the restored database at all: the
 * HIS resends it, and it must not start again at version 1 (the platform holds 1…N of it already). So
 * the restore also moves the database's version base (`record_version_base`) on by the gap, and a new
 * record starts above it: versionBase.
 */
import type pg from 'pg';

/**
 * Larger than the versions one record can gain between an archive and the loss of its front: a record
 * updated every minute for 69 days. A version is an integer (2^31 - 1): room for 21 000 restores.
 */
export const RESTORE_VERSION_GAP = 100_000;

/**
 * The version under which a record's current content was queued, given the versions the outbox holds
 * of it: the current one itself, or — a record restored and not written since — the newest queued
 * version when it lies below the current one by whole gaps. Otherwise the current one (not queued yet).
 */
export function queuedVersion(current: number, queued: readonly number[]): number {
  if (queued.includes(current)) return current;
  const newest = Math.max(...queued);
  return newest < current && (current - newest) % RESTORE_VERSION_GAP === 0 ? newest : current;
}

/**
 * queuedVersion's rule in SQL, for statements that read deliveries or outbox rows of many records at
 * once: `alias`.version is the content of the record version `current` (a column) — that version, or
 * one below it by whole gaps. A restored database holds no delivery or outbox row of a version the
 * lost front reached after its archive, so the version below by whole gaps is the one queuedVersion
 * would pick (test/integration/restore-gap.test.ts holds the two equal).
 */
export const sameContentSql = (alias: string, current: string): string =>
  `${alias}.version <= ${current} AND mod(${current} - ${alias}.version, ${RESTORE_VERSION_GAP}) = 0`;

/**
 * The table of the version base: one row (id 1), absent until a restore writes it. Created by
 * migration 1050 and, on a restored database of an older release, by the restore itself (the same
 * statement: test/unit/restore-gap-ddl.test.ts).
 */
export const VERSION_BASE_DDL = 'CREATE TABLE IF NOT EXISTS record_version_base (id smallint PRIMARY KEY, base integer NOT NULL)';

/**
 * The table of version moves: one row per move (the archive it was made for, when, the shift and the
 * base it set), by which `move-versions` refuses to move one database twice for one archive. Created
 * by migration 1070 and by the move itself on an older schema (the same statement:
 * test/unit/restore-gap-ddl.test.ts).
 */
export const VERSION_MOVE_DDL =
  'CREATE TABLE IF NOT EXISTS record_version_move (archive_key varchar(1024) NOT NULL, moved_at timestamptz NOT NULL, shift integer NOT NULL, base integer NOT NULL)';

const bases = new WeakMap<object, Promise<number>>();

/**
 * Where a new record's versions start on this database: 0, or the gaps its restores added. Read once
 * per pool (a restore always makes a new database, which a front starts on afresh); a schema without
 * the table (behind this release) reads 0.
 */
export function versionBase(db: Pick<pg.Pool, 'query'>): Promise<number> {
  let b = bases.get(db);
  if (!b) {
    b = db.query<{ base: number }>('SELECT base FROM record_version_base WHERE id = 1').then(
      (r) => r.rows[0]?.base ?? 0,
      (err: { code?: string }) => {
        bases.delete(db);
        if (err.code === '42P01') return 0;
        throw err;
      },
    );
    bases.set(db, b);
  }
  return b;
}
