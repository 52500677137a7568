/**
 * Restoring a logical archive into a new database (docs/backup.md): the restore drill (a scratch
 * database, dropped afterwards) and `make restore` (a database the front is then pointed at).
 * The object streams from the store (decrypted when encrypted at rest) into pg_restore; the SHA-256
 * of the stored bytes is computed on the way and compared; then the row count of every table is
 * compared with the one recorded at backup time.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import type { Db, Dialect } from '../db/index.js';
import { quoteIdent, quoteLiteral } from '../db/quote.js';
import type { BackupConfig } from './config.js';
import type { Archive, RowCounts } from './ledger.js';
import { readArchive, type Store } from './store.js';
import { fixLedger, reserveBand, settleBand, shiftVersions, type VersionMove } from './version-move.js';
import { archiveMac, MAC_ALTERED, pgEnv, runTool, sm4Decryptor, sm4Fingerprint, toolFailure, toolsOf, withDatabase } from './tools.js';

export interface RestoreProgress {
  bytes: number;
  totalBytes: number | null;
  tablesDone: number;
  tablesTotal: number;
  startedAt: Date;
}

export interface RestoreOptions {
  /** A URL on the server to restore to (its user must be allowed to create databases). */
  databaseUrl: string;
  /** A scratch database, dropped afterwards (the drill). */
  scratch?: boolean;
  /** The new database's name (not scratch); it must not exist. */
  target?: string;
  onProgress?: (p: RestoreProgress) => void;
  /** Aborted (the operator's Ctrl-C, SIGTERM, SIGHUP): pg_restore is stopped and the unfinished database dropped. */
  signal?: AbortSignal;
  /** What the restore found and did on its way (a leftover unfinished database dropped). */
  say?: (s: string) => void;
  /** When the archive was taken (its manifest's finishedAt): written in the restore's marker. */
  archiveTakenAt?: string | null;
}

export interface RestoreResult {
  ok: boolean;
  message: string;
  database: string;
  tables: number;
  rows: number;
  mismatches: string[];
  /** The records' version move (a restore, not the drill): docs/backup.md "Versions after a restore". */
  versions?: VersionMove;
}

export type Restorable = Pick<Archive, 'archiveId' | 'objectKey' | 'encryption' | 'rowCounts' | 'sizeBytes' | 'sha256' | 'dialect'> & {
  /** The backup key's fingerprint the manifest recorded (sm4Fingerprint); absent for older archives and the ledger's. */
  keyFingerprint?: string | null;
  /** The stored bytes' MAC the manifest recorded (archiveMac); absent for older archives and the ledger's. */
  mac?: string | null;
};

/** An encrypted archive's recorded key fingerprint against this server's key: the refusal, or null. */
export function keyMismatch(a: Pick<Restorable, 'encryption' | 'keyFingerprint'>, key: Buffer | null): string | null {
  if (!a.encryption || !a.keyFingerprint || !key) return null;
  const mine = sm4Fingerprint(key);
  return mine === a.keyFingerprint
    ? null
    : `archive encrypted under another backup key (fingerprint ${a.keyFingerprint}); this server's backup-sm4-key is ${mine} — ` +
        'put the backup-sm4-key kept apart from the store into the secrets folder (docs/backup.md "Restore")';
}

const NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * A restore works under `<target>__restoring` and renames it to the target only once everything
 * succeeded — data, row counts, ledger, versions (docs/backup.md "An interrupted restore"): a
 * database under the target's name is always a finished one, and one under this name never is.
 */
export const RESTORING_SUFFIX = '__restoring';
export const restoringName = (target: string): string => `${target}${RESTORING_SUFFIX}`;

async function adminRows<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url, application_name: 'cdc-front-restore' });
  await c.connect();
  try {
    return (await c.query<T>(sql, params)).rows;
  } finally {
    await c.end().catch(() => undefined);
  }
}

const databaseExists = async (url: string, name: string): Promise<boolean> =>
  (await adminRows(url, 'SELECT 1 FROM pg_database WHERE datname = $1', [name])).length === 1;

/** The sessions connected to a database: their application names (pg_restore, psql, …). */
const sessionsOn = async (url: string, name: string): Promise<string[]> =>
  (
    await adminRows<{ app: string | null }>(url, 'SELECT application_name AS app FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name])
  ).map((r) => r.app || '?');

/**
 * Drops the unfinished database of this restore. The server session of a pg_restore just stopped may
 * still be ending its statement: ended first (pg_terminate_backend, on PostgreSQL and openGauss), and
 * the drop tried again for a while.
 */
async function dropUnfinished(url: string, name: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await adminQuery(url, 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
      await adminQuery(url, `DROP DATABASE IF EXISTS ${quoteIdent(name)}`);
      return;
    } catch (err) {
      if (i >= 20) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/**
 * `<target>__restoring` left on the server: an earlier restore into the same target that was killed
 * (SIGKILL, a reboot) before it finished. Nobody connected: dropped, and said. Still in use: another
 * restore into that target is running now — refused, saying what it is and how to drop it.
 */
async function clearLeftover(url: string, target: string, say: (s: string) => void): Promise<void> {
  const left = restoringName(target);
  if (!(await databaseExists(url, left))) return;
  const sessions = await sessionsOn(url, left);
  if (sessions.length > 0)
    throw new Error(
      `database ${left} is the unfinished work of a restore into ${target}, and ${sessions.length} session(s) (${[...new Set(sessions)].join(', ')}) are connected to it: ` +
        `another make restore TARGET=${target} is running now. If none is, stop what is connected and drop it: DROP DATABASE ${left} (docs/backup.md "An interrupted restore")`,
    );
  await dropUnfinished(url, left);
  say(
    `dropped ${left}: the unfinished database of an earlier restore into ${target} that was stopped before it finished (killed, or its terminal closed); restoring anew (docs/backup.md "An interrupted restore")`,
  );
}

async function adminQuery(url: string, sql: string, params: unknown[] = []): Promise<void> {
  await adminRows(url, sql, params);
}

async function countTables(url: string, tables: string[]): Promise<RowCounts> {
  const c = new pg.Client({ connectionString: url, application_name: 'cdc-front-restore' });
  await c.connect();
  try {
    const out: RowCounts = {};
    for (const t of tables) {
      const r = await c.query<{ n: string }>(`SELECT count(*) AS n FROM "${t.replace(/"/g, '""')}"`).catch(() => null);
      out[t] = r ? Number(r.rows[0]!.n) : -1;
    }
    return out;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** A database's encoding and locale, as pg_database records them. */
export interface DatabaseLocale {
  encoding: string;
  collate: string;
  ctype: string;
}

/** The encoding and locale of the database at `url` (the front's own: a restore is made like it). */
async function databaseLocale(url: string): Promise<DatabaseLocale> {
  const c = new pg.Client({ connectionString: url, application_name: 'cdc-front-restore' });
  await c.connect();
  try {
    const r = await c.query<DatabaseLocale>(
      'SELECT pg_encoding_to_char(encoding) AS encoding, datcollate AS collate, datctype AS ctype FROM pg_database WHERE datname = current_database()',
    );
    return r.rows[0]!;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * The restored (or scratch) database is made like the front's own — its encoding and locale, from
 * template0 (on PostgreSQL, template1 would give the cluster's default encoding and whatever was added
 * to it; openGauss takes template0 only) — and on openGauss in PostgreSQL compatibility
 * (docs/opengauss.md).
 */
export function createDatabaseSql(name: string, dialect: Dialect, like: DatabaseLocale): string {
  const compat = dialect === 'opengauss' ? " DBCOMPATIBILITY 'PG'" : '';
  return `CREATE DATABASE ${quoteIdent(name)} TEMPLATE template0 ENCODING ${quoteLiteral(like.encoding)} LC_COLLATE ${quoteLiteral(like.collate)} LC_CTYPE ${quoteLiteral(like.ctype)}${compat}`;
}

export async function restoreInto(_db: Db | null, store: Store, cfg: BackupConfig, a: Restorable, opts: RestoreOptions): Promise<RestoreResult> {
  const dialect = (a.dialect === 'opengauss' ? 'opengauss' : 'postgresql') as Dialect;
  const tools = toolsOf(dialect, cfg.pgBin);
  const target = opts.scratch ? `cdc_drill_${a.archiveId}_${randomBytes(3).toString('hex')}` : (opts.target ?? '');
  if (!NAME.test(target)) throw new Error(`target database name "${target}" must be lower-case letters, digits and _`);
  if (!opts.scratch && target.length > 63 - RESTORING_SUFFIX.length)
    throw new Error(
      `target database name "${target}" is longer than ${63 - RESTORING_SUFFIX.length} characters: the restore works under the name <target>${RESTORING_SUFFIX} until it is complete`,
    );
  // The database the restore fills: the target's own name only once it is complete.
  const name = opts.scratch ? target : restoringName(target);
  const aborted = () => {
    if (opts.signal?.aborted) throw new Error(String(opts.signal.reason ?? 'restore interrupted'));
  };
  // Every check that can fail before any data moves comes before the database is made and pg_restore
  // is spawned: a pg_restore already started waits on its stdin for ever when nothing is piped to it
  // (docs/backup.md "Restore").
  if (a.encryption && !cfg.sm4Key) throw new Error(`${a.objectKey} is encrypted (${a.encryption}) but the secret file backup-sm4-key is missing`);
  const wrongKey = keyMismatch(a, cfg.sm4Key);
  if (wrongKey) throw new Error(wrongKey);
  if (!opts.scratch) {
    if (await databaseExists(opts.databaseUrl, target))
      throw new Error(`cannot create database ${target}: database "${target}" already exists — make restore makes a new database: name another TARGET`);
    await clearLeftover(opts.databaseUrl, target, opts.say ?? (() => undefined));
  }
  // The restore's marker goes to the store before any data moves: its band of versions is taken, above
  // every band an earlier restore took, even if this one is stopped (docs/backup.md "Versions after a restore").
  const band = opts.scratch ? null : await reserveBand(store, { kind: 'restore', target, archive: a.objectKey, archiveTakenAt: opts.archiveTakenAt ?? null });
  aborted();
  const create = createDatabaseSql(name, dialect, await databaseLocale(opts.databaseUrl));
  await adminQuery(opts.databaseUrl, create).catch((e: Error) => {
    throw new Error(`cannot create database ${name}: ${e.message}`);
  });
  const targetUrl = withDatabase(opts.databaseUrl, name);
  const expected = a.rowCounts ?? {};
  const progress: RestoreProgress = { bytes: 0, totalBytes: a.sizeBytes, tablesDone: 0, tablesTotal: Object.keys(expected).length, startedAt: new Date() };
  const seen = new Set<string>();
  const timer = opts.onProgress ? setInterval(() => opts.onProgress!({ ...progress }), 1000) : undefined;
  let child: ReturnType<typeof runTool> | undefined;
  // Stops pg_restore and everything it started (its own process group) at once.
  const stopTool = () => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.stdin.destroy();
    try {
      process.kill(opts.scratch ? child.pid! : -child.pid!, 'SIGTERM');
    } catch {
      // Already gone.
    }
  };
  opts.signal?.addEventListener('abort', stopTool);
  try {
    // The object is opened first: a store that fails here leaves no pg_restore behind.
    const raw = await readArchive(store, a.objectKey);
    aborted();
    opts.signal?.addEventListener('abort', () => raw.destroy(new Error('restore interrupted')));
    const toolArgs = ['-d', name, '--no-owner', '--no-privileges', '--exit-on-error', '--verbose'];
    child = runTool(
      tools.restore,
      toolArgs,
      pgEnv(opts.databaseUrl, name),
      (line) => {
        // Counted: the tables the archive recorded a row count for (those of the front's own schema);
        // pg_restore also loads the staging schema and its partitions, which the total leaves out,
        // and counting those showed "tables 92/71" (docs/backup.md "Restore").
        const m = /processing data for table "(?:[^"]*\.)?([^".]+)"/.exec(line);
        if (m && m[1]! in expected) {
          seen.add(m[1]!);
          progress.tablesDone = seen.size;
        }
        // The operator's restore: pg_restore must not outlive the command (docs/backup.md "An interrupted restore").
      },
      { dieWithParent: !opts.scratch },
    );
    const hash = createHash('sha256');
    const mac = a.mac && cfg.sm4Key ? archiveMac(cfg.sm4Key) : null;
    const tap = new Transform({
      transform(chunk: Buffer, _e, cb) {
        hash.update(chunk);
        mac?.update(chunk);
        progress.bytes += chunk.length;
        cb(null, chunk);
      },
    });
    const stages: NodeJS.ReadableStream[] = [raw, tap];
    if (a.encryption) stages.push(sm4Decryptor(cfg.sm4Key!));
    let streamError: Error | undefined;
    await pipeline([...stages, child.stdin]).catch((e: Error) => (streamError = e));
    const r = await child.done;
    aborted();
    // An object shorter than recorded ends the tool's input early: said as what it is, before the
    // tool's own "end of file".
    if (!streamError && a.sizeBytes !== null && a.sizeBytes !== undefined && progress.bytes < a.sizeBytes)
      throw new Error(`${a.objectKey} is truncated: the store gave ${progress.bytes} of the ${a.sizeBytes} bytes recorded`);
    if (r.code !== 0) throw new Error(toolFailure('pg_restore', r, child.tail()));
    // The data is in; the row counts are compared next (long on a big database): said as it stands.
    opts.onProgress?.({ ...progress });
    if (streamError) throw new Error(`reading ${a.objectKey} from the store failed: ${streamError.message}`);
    const sha = hash.digest('hex');
    if (a.sha256 && sha !== a.sha256) throw new Error(`content altered: the bytes read hash to ${sha.slice(0, 12)}…, ${a.sha256.slice(0, 12)}… was recorded`);
    // The SHA-256 beside the archive can be rewritten with it; the MAC cannot without the backup key.
    if (mac && mac.digest() !== a.mac) throw new Error(MAC_ALTERED);
    const got = await countTables(targetUrl, Object.keys(expected));
    const mismatches = Object.entries(expected)
      .filter(([t, n]) => got[t] !== n)
      .map(([t, n]) => `${t} ${got[t] === -1 ? 'missing' : got[t]} ≠ ${n}`);
    const rows = Object.values(got).reduce((s, n) => s + Math.max(0, n), 0);
    // The archive's own ledger row (and any other backup then in progress) was `running` in the
    // snapshot (docs/backup.md "The ledger after a restore").
    if (!opts.scratch && 'backup_archive' in expected)
      await fixLedger(targetUrl, { archiveId: a.archiveId, objectKey: a.objectKey, sizeBytes: a.sizeBytes, sha256: a.sha256, rowCounts: a.rowCounts });
    aborted();
    const versions = band ? await shiftVersions(targetUrl, { atLeast: band.marker.base, archive: a.objectKey }) : undefined;
    if (band && versions) await settleBand(store, band.key, band.marker, versions.base);
    aborted();
    // Complete: under the target's name now, and only now. A restore whose counts differ stays
    // under the unfinished name, for a look (the next restore into the target drops it).
    const ok = mismatches.length === 0;
    if (!opts.scratch && ok)
      await adminQuery(opts.databaseUrl, `ALTER DATABASE ${quoteIdent(name)} RENAME TO ${quoteIdent(target)}`).catch((e: Error) => {
        throw new Error(`renaming the restored ${name} to ${target} failed: ${e.message}`);
      });
    opts.signal?.removeEventListener('abort', stopTool);
    progress.tablesDone = progress.tablesTotal;
    opts.onProgress?.({ ...progress });
    return {
      ...(versions ? { versions } : {}),
      ok,
      message: mismatches.length
        ? `row counts differ from those recorded at backup time in ${mismatches.length} table(s): ${mismatches.slice(0, 10).join('; ')}` +
          (opts.scratch ? '' : `; kept as ${name} for a look, not as ${target}: the next restore into ${target} drops it`)
        : `restored ${Object.keys(expected).length} tables, ${rows} rows, every count as recorded`,
      database: opts.scratch || !ok ? name : target,
      tables: Object.keys(expected).length,
      rows,
      mismatches,
    };
  } catch (err) {
    // A pg_restore still running (an error before its input ended, an interrupt) is stopped, never left waiting.
    if (child && child.exitCode === null && child.signalCode === null) {
      stopTool();
      await child.done;
    }
    if (!opts.scratch) await dropUnfinished(opts.databaseUrl, name).catch(() => undefined);
    throw err;
  } finally {
    opts.signal?.removeEventListener('abort', stopTool);
    clearInterval(timer);
    if (opts.scratch) await adminQuery(opts.databaseUrl, `DROP DATABASE IF EXISTS "${name}"`).catch(() => undefined);
  }
}
