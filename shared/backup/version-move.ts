/**
 * Moving a restored database's record versions above every version any earlier front can have handed
 * out (docs/backup.md "Versions after a restore"), for `make restore` and for `move-versions` on a
 * database restored otherwise (a physical archive). Each move is marked in the backup store
 * (`<prefix>/restores/…json`, naming the archive, its time, the database and the version base it set):
 * the next move sets a base above the highest one marked, so two restores of one archive — or of any
 * two archives — never hand out the same versions.
 */
import pg from 'pg';
import { quoteIdent } from '../db/quote.js';
import { RESTORE_VERSION_GAP, VERSION_BASE_DDL, VERSION_MOVE_DDL } from '../ingest/restore-gap.js';
import { typedTables } from './records.js';
import { listKeys, putSmall, readSmall, type Store } from './store.js';

/** A restore's marker in the store: what was restored where, and the version base it set. */
export interface RestoreMarker {
  /** `restore` (make restore) or `move-versions` (a database restored otherwise). */
  kind: 'restore' | 'move-versions';
  /** The database restored into. */
  target: string;
  /** The archive's object key. */
  archive: string;
  /** When the archive was taken (its manifest's finishedAt), if known. */
  archiveTakenAt: string | null;
  /** When this move began. */
  at: string;
  /** The version base this move set (reserved when it began; settled once the versions moved). */
  base: number;
}

export const markerPrefix = (store: Store): string => `${store.prefix}/restores/`;

/** The highest version base the store's restore markers record (0 without any). */
export async function highestMarkedBase(store: Store): Promise<number> {
  let max = 0;
  for (const k of await listKeys(store, markerPrefix(store))) {
    if (!k.endsWith('.json')) continue;
    const body = await readSmall(store, k);
    if (!body) continue;
    let base: unknown;
    try {
      base = (JSON.parse(body.toString('utf8')) as Partial<RestoreMarker>).base;
    } catch {
      base = undefined;
    }
    // A marker whose base cannot be read could hide the highest band handed out: refused, named.
    if (typeof base !== 'number' || !Number.isInteger(base) || base < 0)
      throw new Error(
        `restore marker ${k} in bucket ${store.bucket} does not record a version base: every restore's versions are placed above those marked there (docs/backup.md "Versions after a restore") — repair or remove it`,
      );
    max = Math.max(max, base);
  }
  return max;
}

/** The band this move takes, written to the store before any version moves: the highest marked + one gap. */
export async function reserveBand(store: Store, m: Omit<RestoreMarker, 'base' | 'at'>): Promise<{ key: string; marker: RestoreMarker }> {
  const at = new Date().toISOString();
  const marker: RestoreMarker = { ...m, at, base: (await highestMarkedBase(store)) + RESTORE_VERSION_GAP };
  const key = `${markerPrefix(store)}${at.replace(/[-:.]/g, '')}-${m.target}.json`;
  await putSmall(store, key, `${JSON.stringify(marker)}\n`).catch((e: Error) => {
    throw new Error(`writing the restore marker ${key} to the backup store failed: ${e.message}`);
  });
  return { key, marker };
}

/** The marker rewritten with the base the move set, when it is above the one reserved. */
export async function settleBand(store: Store, key: string, marker: RestoreMarker, base: number): Promise<void> {
  if (base === marker.base) return;
  await putSmall(store, key, `${JSON.stringify({ ...marker, base })}\n`);
}

export interface VersionMove {
  /** Records whose versions moved. */
  moved: number;
  /** What was added to every version: whole gaps (RESTORE_VERSION_GAP), at least one. */
  shift: number;
  /** The database's version base before and after. */
  from: number;
  base: number;
}

/** The versions of this database were already moved for that archive (move-versions without --force). */
export class AlreadyMoved extends Error {}

/**
 * Moves every record's version numbering on, in one transaction, before any front runs on the database
 * (docs/backup.md "Versions after a restore"): whole gaps are added to the typed tables' rec_version,
 * record_receipt.version and the version base, so that the base becomes at least `atLeast` (the band
 * reserved in the store) and at least one gap above where it was. The move is recorded in
 * record_version_move; a second move for the same archive is refused unless `force`. The outbox and
 * record_history keep their versions. Whole gaps keep queuedVersion and sameContentSql right.
 */
export async function shiftVersions(url: string, o: { atLeast: number; archive: string; force?: boolean }): Promise<VersionMove> {
  const c = new pg.Client({ connectionString: url, application_name: 'cdc-front-restore' });
  await c.connect();
  try {
    const present = await c.query<{ t: string }>(
      `SELECT table_name AS t FROM information_schema.columns
        WHERE table_schema = current_schema() AND column_name = 'rec_version' AND table_name = ANY($1::varchar[]) ORDER BY table_name`,
      [typedTables()],
    );
    const hasReceipts = (await c.query(`SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'record_receipt'`)).rowCount === 1;
    await c.query('BEGIN');
    await c.query(VERSION_BASE_DDL);
    await c.query(VERSION_MOVE_DDL);
    const before = await c.query<{ moved_at: Date; base: number }>(
      'SELECT moved_at, base FROM record_version_move WHERE archive_key = $1 ORDER BY moved_at DESC',
      [o.archive],
    );
    if (before.rowCount && !o.force) {
      const b = before.rows[0]!;
      throw new AlreadyMoved(
        `the versions of this database were already moved for ${o.archive} (at ${b.moved_at.toISOString()}, to base ${b.base}): moving them again is refused — ` +
          'give --force only if this database was restored from that archive once more since (docs/backup.md "Versions after a restore")',
      );
    }
    const from = (await c.query<{ base: number }>('SELECT base FROM record_version_base WHERE id = 1 FOR UPDATE')).rows[0]?.base ?? 0;
    const gaps = Math.max(1, Math.ceil((o.atLeast - from) / RESTORE_VERSION_GAP));
    const shift = gaps * RESTORE_VERSION_GAP;
    let moved = 0;
    for (const { t } of present.rows) moved += (await c.query(`UPDATE ${quoteIdent(t)} SET rec_version = rec_version + $1`, [shift])).rowCount ?? 0;
    if (hasReceipts) await c.query('UPDATE record_receipt SET version = version + $1', [shift]);
    // Records the archive does not hold (first received after it) start above the move too.
    const base = await c.query('UPDATE record_version_base SET base = base + $1 WHERE id = 1', [shift]);
    if (base.rowCount === 0) await c.query('INSERT INTO record_version_base (id, base) VALUES (1, $1)', [shift]);
    await c.query('INSERT INTO record_version_move (archive_key, moved_at, shift, base) VALUES ($1, now(), $2, $3)', [o.archive, shift, from + shift]);
    await c.query('COMMIT');
    return { moved, shift, from, base: from + shift };
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    if (err instanceof AlreadyMoved) throw err;
    throw new Error(`moving the record versions on failed: ${(err as Error).message}`);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** The archive's facts the ledger fix records, as the store holds them. */
export interface LedgerArchive {
  archiveId: string;
  objectKey: string;
  sizeBytes: number | null;
  sha256: string | null;
  rowCounts: Record<string, number> | null | undefined;
}

/**
 * The restored database's ledger (docs/backup.md "The ledger after a restore"): the archive was
 * `running` in its own snapshot — recorded as the store holds it, `good` — and any other backup then in
 * progress never finished there: `failed`. A database without the ledger table is left as it is.
 */
export async function fixLedger(url: string, a: LedgerArchive): Promise<void> {
  const c = new pg.Client({ connectionString: url, application_name: 'cdc-front-restore' });
  await c.connect();
  try {
    if ((await c.query(`SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'backup_archive'`)).rowCount !== 1) return;
    // An archive of a release before migration 1020 has no progress_at: its finish is its start there.
    const progress = await c.query(
      `SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'backup_archive' AND column_name = 'progress_at'`,
    );
    const finished = progress.rowCount === 1 ? 'coalesce(progress_at, started_at)' : 'started_at';
    if (/^\d{1,18}$/.test(a.archiveId))
      await c.query(
        `UPDATE backup_archive SET status = 'good', object_key = $2, size_bytes = $3, bytes_done = coalesce($3, bytes_done), sha256 = $4, row_counts = $5,
                tables_done = tables_total, finished_at = ${finished}, error = NULL
          WHERE archive_id = $1 AND status = 'running'`,
        [a.archiveId, a.objectKey, a.sizeBytes, a.sha256, a.rowCounts ? JSON.stringify(a.rowCounts) : null],
      );
    await c.query(`UPDATE backup_archive SET status = 'failed', error = 'in progress when the restored archive was taken' WHERE status = 'running'`);
  } finally {
    await c.end().catch(() => undefined);
  }
}
