/**
 * Restoring a logical archive into a new database (docs/backup.md): the restore drill (a scratch
 * database, dropped afterwards) and `make restore` (a database the front is then pointed at).
 * The object is downloaded from the store (decrypted when encrypted at rest) into a private temporary
 * file, its size, SHA-256 and MAC checked on the way, and only then is the database made and the tool
 * given the file's path — gs_restore reads no archive from its stdin (docs/opengauss.md "Clients and
 * tools"); then the row count of every table is compared with the one recorded at backup time.
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import pg from 'pg';
import type { Db, Dialect } from '../db/index.js';
import { quoteIdent, quoteLiteral } from '../db/quote.js';
import { archiveFile, downloadArchive, leftoverRemoved, sweepLeftovers, workDir } from './archive-file.js';
import type { BackupConfig } from './config.js';
import type { Archive, RowCounts } from './ledger.js';
import type { Store } from './store.js';
import { fixLedger, reserveBand, settleBand, shiftVersions, type VersionMove } from './version-move.js';
import { pgEnv, runTool, sm4Fingerprint, toolFailure, toolsOf, withDatabase } from './tools.js';

/**
 * A restore's progress (the command prints it every second): `bytes` of the stored object downloaded
 * into the archive file, then `tablesDone` as the tool loads them, from `downloadedAt` on.
 */
export interface RestoreProgress {
  bytes: number;
  totalBytes: number | null;
  tablesDone: number;
  tablesTotal: number;
  startedAt: Date;
  /** When the download ended and the tool started: null while downloading. */
  downloadedAt: Date | null;
}

export interface RestoreOptions {
  /** A URL on the server to restore to (its user must be allowed to create databases). */
  databaseUrl: string;
  /** A scratch database, dropped afterwards (the drill). */
  scratch?: boolean;
  /** The new database's name (not scratch); it must not exist. */
  target?: string;
  onProgress?: (p: RestoreProgress) => void;
  /**
   * Aborted (the operator's Ctrl-C, SIGTERM, SIGHUP): a download is stopped (no database is made yet);
   * a running pg_restore is stopped and the unfinished database dropped. The archive file is removed.
   */
  signal?: AbortSignal;
  /** What the restore found and did on its way (a leftover unfinished database, or archive file, removed). */
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

/** The abort reason of the operator's command (infra/backup/cli.ts): the signal that stopped it. */
export interface Interrupt {
  signal: NodeJS.Signals;
}

/**
 * What an interrupted restore says (docs/backup.md "An interrupted restore"): before its database was
 * made only the download had begun; after, pg_restore was stopped and the database dropped.
 */
export function interruptMessage(reason: unknown, made: boolean): string {
  const sig = (reason as Partial<Interrupt> | null)?.signal;
  if (!sig) return String(reason ?? 'restore interrupted');
  return made
    ? `restore interrupted by ${sig}: pg_restore stopped, the unfinished database dropped, nothing restored — run make restore again`
    : `restore interrupted by ${sig} while downloading the archive: no database made, the archive file removed, nothing restored — run make restore again`;
}

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

/**
 * The client sessions connected to a database: their application names (pg_restore, psql, …). Not the
 * server's own workers: PostgreSQL lists an autovacuum worker on a database with no user (usesysid
 * NULL) — and a database just restored is what autoanalyze goes to first —, openGauss never has a
 * NULL one (docs/opengauss.md).
 */
const sessionsOn = async (url: string, name: string): Promise<string[]> =>
  (
    await adminRows<{ app: string | null }>(
      url,
      'SELECT application_name AS app FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND usesysid IS NOT NULL',
      [name],
    )
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
  // Whether this restore made the database `name`: only then is there one to drop, and a tool to stop.
  let made = false;
  const aborted = () => {
    if (opts.signal?.aborted) throw new Error(interruptMessage(opts.signal.reason, made));
  };
  // Every check that can fail before any data moves comes first: no archive downloaded, no database
  // made (docs/backup.md "Restore").
  if (a.encryption && !cfg.sm4Key) throw new Error(`${a.objectKey} is encrypted (${a.encryption}) but the secret file backup-sm4-key is missing`);
  const wrongKey = keyMismatch(a, cfg.sm4Key);
  if (wrongKey) throw new Error(wrongKey);
  const say = opts.say ?? (() => undefined);
  if (!opts.scratch) {
    if (await databaseExists(opts.databaseUrl, target))
      throw new Error(`cannot create database ${target}: database "${target}" already exists — make restore makes a new database: name another TARGET`);
    await clearLeftover(opts.databaseUrl, target, say);
  }
  // The restore's marker goes to the store before any data moves: its band of versions is taken, above
  // every band an earlier restore took, even if this one is stopped (docs/backup.md "Versions after a restore").
  const band = opts.scratch ? null : await reserveBand(store, { kind: 'restore', target, archive: a.objectKey, archiveTakenAt: opts.archiveTakenAt ?? null });
  aborted();
  const targetUrl = withDatabase(opts.databaseUrl, name);
  const expected = a.rowCounts ?? {};
  const progress: RestoreProgress = {
    bytes: 0,
    totalBytes: a.sizeBytes,
    tablesDone: 0,
    tablesTotal: Object.keys(expected).length,
    startedAt: new Date(),
    downloadedAt: null,
  };
  const seen = new Set<string>();
  const timer = opts.onProgress ? setInterval(() => opts.onProgress!({ ...progress }), 1000) : undefined;
  let child: ReturnType<typeof runTool> | undefined;
  let dir: string | undefined;
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
    // The archive file of a restore or drill killed before it removed its own (docs/backup.md "Restore").
    for (const d of await sweepLeftovers()) say(leftoverRemoved(d));
    // The stored bytes are read in full and checked — size, SHA-256, MAC — before the database is made
    // and the tool started: a damaged archive leaves nothing behind. An interrupt meanwhile stops the
    // download; no database exists yet.
    dir = await workDir();
    const file = archiveFile(dir);
    await downloadArchive(store, a, cfg.sm4Key, file, { signal: opts.signal, onBytes: (n) => (progress.bytes += n) }).catch((e: unknown) => {
      aborted();
      throw e;
    });
    aborted();
    const create = createDatabaseSql(name, dialect, await databaseLocale(opts.databaseUrl));
    await adminQuery(opts.databaseUrl, create).catch((e: Error) => {
      throw new Error(`cannot create database ${name}: ${e.message}`);
    });
    made = true;
    aborted();
    progress.downloadedAt = new Date();
    const toolArgs = ['-d', name, '--no-owner', '--no-privileges', '--exit-on-error', '--verbose', file];
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
      },
      // The operator's restore: pg_restore must not outlive the command (docs/backup.md "An interrupted restore").
      { dieWithParent: !opts.scratch },
    );
    // The archive is the file named last: the tool reads nothing on its stdin.
    child.stdin.on('error', () => undefined);
    child.stdin.end();
    const r = await child.done;
    // The plain archive is needed no longer: removed now rather than after the counts.
    await rm(dir, { recursive: true, force: true }).then(
      () => (dir = undefined),
      () => undefined,
    );
    aborted();
    if (r.code !== 0) throw new Error(toolFailure('pg_restore', r, child.tail()));
    // The data is in; the row counts are compared next (long on a big database): said as it stands.
    opts.onProgress?.({ ...progress });
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
    // A pg_restore still running (an interrupt, an error of ours) is stopped, never left behind.
    if (child && child.exitCode === null && child.signalCode === null) {
      stopTool();
      await child.done;
    }
    if (!opts.scratch && made) await dropUnfinished(opts.databaseUrl, name).catch(() => undefined);
    throw err;
  } finally {
    opts.signal?.removeEventListener('abort', stopTool);
    clearInterval(timer);
    if (opts.scratch && made) await adminQuery(opts.databaseUrl, `DROP DATABASE IF EXISTS "${name}"`).catch(() => undefined);
    // The plain archive holds clinical text in clear: never left behind (docs/backup.md "Restore").
    if (dir) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}
