/**
 * Migration runner. Migrations are the numbered *.sql files of infra/db (beside this module); each runs once, in
 * its own transaction, and is recorded in the ledger table `schema_migration` (openGauss 5.0 has no
 * `ADD COLUMN IF NOT EXISTS`, so a ledger — not idempotent DDL — is what makes re-runs safe).
 * An advisory lock (present on both PostgreSQL and openGauss) serialises concurrent runners.
 *
 * Before applying anything the runner refuses a database migrated by a newer release (the ledger holds
 * names this code's infra/db lacks): an older release on an upgraded database is not run silently.
 * Each migration waits for its table locks at most `lockTimeoutMs` (PostgreSQL's lock_timeout,
 * openGauss's lockwait_timeout where the migrating user may set it: docs/opengauss.md "Lock waits"): a session holding them (a HIS transaction left open)
 * is named in the log — pid, application, user, state, never its query text, which can hold personal
 * data — and the migration is tried again, `attempts` times, then fails saying whom it waited for. A
 * migration waiting on a lock makes every later statement on that table wait behind it, so the wait
 * is kept short (docs/deploy.md "Upgrade").
 *
 * On openGauss a database not created `DBCOMPATIBILITY 'PG'` is refused before anything is applied
 * (docs/opengauss.md: the code relies on PostgreSQL's reading of '' and of varchar lengths).
 *
 * As a command: bin/cdc-migrate (make migrate) against DATABASE_URL, the file DATABASE_URL_FILE, or the
 * secret cdc-database-url found as the other operator commands find it (CDC_DATA_DIR, CDC_SECRETS_DIR).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { findDatabase } from '../cli/locate.js';
import { projectRoot } from '../root.js';
import { convertHoldReasons } from './holds-0009.js';
import { moveOutcomeGrants } from './outcomes-1010.js';
import { MIGRATION_FILE, compareSchema, schemaAdvice, schemaState } from '../../shared/db/schema.js';
import { LOCK_TIMEOUT_CODES } from '../../shared/db/faults.js';
import { detectDialect, type Dialect } from '../../shared/db/index.js';

const here = join(projectRoot, 'infra/db');
const LOCK_KEY = 7_204_311; // arbitrary, fixed: "cdc-front migrations"

/** Data conversions SQL alone cannot do, run after a migration's SQL in its transaction. */
const FOLLOW_UPS: Record<string, (client: pg.ClientBase) => Promise<void>> = {
  '0009_record_hold.sql': convertHoldReasons,
  '1010_sync_result_view.sql': moveOutcomeGrants,
};

export interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

export function listMigrations(dir = here): Migration[] {
  return readdirSync(dir)
    .filter((f) => MIGRATION_FILE.test(f))
    .sort()
    .map((name) => {
      const sql = readFileSync(join(dir, name), 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    });
}

export interface MigrateOptions {
  /** The folder of the migrations (default: infra/db beside this module). */
  dir?: string;
  /** Progress lines: each migration with its duration, lock waits, retries. */
  log?: (line: string) => void;
  /** How long one attempt waits for a lock (MIGRATE_LOCK_TIMEOUT_MS, default 5000). */
  lockTimeoutMs?: number;
  /** Attempts per migration before it fails (MIGRATE_ATTEMPTS, default 4). */
  attempts?: number;
  /** Pause between attempts (default: the lock timeout). */
  retryPauseMs?: number;
  /**
   * Bound lock waits by cancelling them from the lock watcher instead of a session setting: what an
   * openGauss user who may not set lockwait_timeout gets by itself (docs/opengauss.md "Lock waits");
   * tests ask for it on PostgreSQL.
   */
  boundByCancel?: boolean;
}

/** A session holding a lock the migration waits for: what pg_stat_activity says of it, never its query. */
export interface LockHolder {
  pid: string;
  application: string;
  user: string;
  client: string | null;
  state: string | null;
  transactionS: number | null;
}

/**
 * The statement bounding a migration's wait for its table locks (docs/opengauss.md "Lock waits"):
 * PostgreSQL's lock_timeout; openGauss 5.0 has none, its own is lockwait_timeout (a sysadmin's setting).
 * A literal: SET takes no bind parameter.
 */
export function lockBoundSql(dialect: Dialect, ms: number): string {
  return `SET LOCAL ${dialect === 'opengauss' ? 'lockwait_timeout' : 'lock_timeout'} = '${Math.floor(ms)}ms'`;
}

/**
 * Why an openGauss database cannot be migrated, from its DBCOMPATIBILITY; null when it is 'PG' — in
 * any case: openGauss stores the mode as it was typed (`DBCOMPATIBILITY 'pg'` reads back `pg`).
 */
export function compatibilityRefusal(database: string, compatibility: string | undefined): string | null {
  if (compatibility?.toUpperCase() === 'PG') return null;
  return (
    `refusing to migrate: openGauss database ${database} was created with DBCOMPATIBILITY '${compatibility ?? 'unknown'}'; ` +
    `cdc-front needs 'PG' (it reads '' and varchar lengths as PostgreSQL does): create it with CREATE DATABASE ${database} DBCOMPATIBILITY 'PG' (README "openGauss", docs/opengauss.md)`
  );
}

/**
 * Why a database's encoding will not do: the front stores Chinese text (names, diagnoses, notes) and
 * sizes its varchar columns in characters, so it needs UTF8. A new database is refused; one already
 * migrated is only warned about, never stopped at an upgrade (`fresh` false: the message is a warning).
 */
export function encodingProblem(encoding: string | undefined, fresh: boolean): string | null {
  if (encoding === 'UTF8') return null;
  const why = `database encoding is ${encoding ?? 'unknown'}: cdc-front stores Chinese text and needs UTF8 (CREATE DATABASE … ENCODING 'UTF8' TEMPLATE template0, README "Pointing it at openGauss")`;
  return fresh ? `refusing to migrate: ${why}` : `warning: ${why}; text may be cut short or refused`;
}

/** A statement cancelled (by the lock watcher, when it keeps the bound). */
const QUERY_CANCELED = '57014';

const positive = (v: string | undefined, dflt: number) => (v && Number(v) > 0 ? Number(v) : dflt);

/** Applies every pending migration; returns the names applied. */
export async function migrate(databaseUrl: string, dirOrOptions: string | MigrateOptions = {}): Promise<string[]> {
  const o = typeof dirOrOptions === 'string' ? { dir: dirOrOptions } : dirOrOptions;
  const dir = o.dir ?? here;
  const say = o.log ?? (() => undefined);
  const lockTimeoutMs = o.lockTimeoutMs ?? positive(process.env.MIGRATE_LOCK_TIMEOUT_MS, 5000);
  const attempts = o.attempts ?? positive(process.env.MIGRATE_ATTEMPTS, 4);
  const pauseMs = o.retryPauseMs ?? lockTimeoutMs;
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'cdc-migrate' });
  // A lost connection fails the statement in flight (and so the run); without a listener it would
  // also be an unhandled 'error' event that ends the process.
  client.on('error', () => undefined);
  await client.connect();
  const applied: string[] = [];
  let watch: ReturnType<typeof watchLocks> | undefined;
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
    const dialect = await detectDialect(client);
    if (dialect === 'opengauss') {
      const db = (
        await client.query<{ n: string; c: string }>('SELECT datname AS n, datcompatibility AS c FROM pg_database WHERE datname = current_database()')
      ).rows[0];
      const refusal = compatibilityRefusal(db?.n ?? '(current)', db?.c);
      if (refusal) throw new Error(refusal);
    }
    const fresh = (await client.query(`SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_migration'`)).rowCount === 0;
    const encoding = encodingProblem((await client.query<{ server_encoding: string }>('SHOW server_encoding')).rows[0]?.server_encoding, fresh);
    if (encoding && fresh) throw new Error(encoding);
    if (encoding) say(encoding);
    let unbounded = false;
    // As pg_locks names it (openGauss's are thread ids, wider than the protocol's process id). Read
    // after the session advisory lock above, and it must stay so: under openGauss's thread pool a
    // session changes worker thread between statements unless it holds a session-level lock, and the
    // watcher matches and cancels this id (docs/opengauss.md "Lock waits").
    const backendPid = (await client.query<{ pid: string }>('SELECT pg_backend_pid()::text AS pid')).rows[0]?.pid;
    await client.query(
      `CREATE TABLE IF NOT EXISTS schema_migration (
         name varchar(200) PRIMARY KEY,
         checksum char(64) NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const done = new Map<string, string>(
      (await client.query<{ name: string; checksum: string }>('SELECT name, checksum FROM schema_migration')).rows.map((r) => [r.name, r.checksum.trim()]),
    );
    const migrations = listMigrations(dir);
    // A database a newer release migrated: refused before anything is applied (shared/db/schema.ts).
    const state = compareSchema(
      done.keys(),
      migrations.map((m) => m.name),
    );
    if (state.unknown.length) throw new Error(`refusing to migrate: ${schemaAdvice({ ...state, state: 'ahead' })}`);
    // One watcher for the run, connected now: under load a connection made at the first wait could
    // come after a short lock timeout, and the error would not name the session in the way.
    watch = watchLocks(databaseUrl, backendPid, say, Math.min(1000, Math.max(100, lockTimeoutMs / 3)));
    for (const m of migrations) {
      const seen = done.get(m.name);
      if (seen !== undefined) {
        if (seen !== m.checksum) {
          throw new Error(`migration ${m.name} was changed after it was applied (checksum differs); add a new migration instead`);
        }
        continue;
      }
      watch.watching(m.name);
      for (let attempt = 1; ; attempt++) {
        const t0 = Date.now();
        watch.attempt();
        try {
          await client.query('BEGIN');
          if (o.boundByCancel) watch.cancelAfter(lockTimeoutMs);
          else if (dialect === 'postgresql') await client.query(lockBoundSql(dialect, lockTimeoutMs));
          else if (!unbounded) {
            // Only a sysadmin may set lockwait_timeout: another user's migrations wait up to the
            // server's own (default 20 min), and are told so once.
            await client.query('SAVEPOINT lock_bound');
            try {
              await client.query(lockBoundSql(dialect, lockTimeoutMs));
              await client.query('RELEASE SAVEPOINT lock_bound');
            } catch (err) {
              if ((err as { code?: string }).code !== '42501') throw err;
              await client.query('ROLLBACK TO SAVEPOINT lock_bound');
              unbounded = true;
              say(`openGauss: only a sysadmin may set lockwait_timeout; a wait for a table lock is cancelled by the runner after ${lockTimeoutMs} ms instead`);
            }
          }
          if (unbounded) watch.cancelAfter(lockTimeoutMs);
          await client.query(m.sql);
          await FOLLOW_UPS[m.name]?.(client);
          await client.query('INSERT INTO schema_migration (name, checksum) VALUES ($1, $2)', [m.name, m.checksum]);
          await client.query('COMMIT');
          applied.push(m.name);
          say(`migration ${m.name} applied in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
          break;
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          const holders = await watch.holders();
          const code = (err as { code?: string }).code ?? '';
          if (LOCK_TIMEOUT_CODES.has(code) || (code === QUERY_CANCELED && watch.cancelled())) {
            const who = holders.length ? `held by ${holders.map(describeHolder).join('; ')}` : 'held by another session';
            if (attempt < attempts) {
              say(
                `migration ${m.name}: a table lock it needs is ${who}; gave up after ${lockTimeoutMs} ms (attempt ${attempt} of ${attempts}), trying again in ${pauseMs} ms`,
              );
              await new Promise((r) => setTimeout(r, pauseMs));
              continue;
            }
            throw new Error(
              `migration ${m.name} failed: could not take its table locks in ${attempts} attempts of ${lockTimeoutMs} ms — ${who}. ` +
                'Have that session end its transaction (or end it: SELECT pg_terminate_backend(<pid>)), then migrate again, in a quiet hour (docs/deploy.md "Upgrade")',
            );
          }
          throw new Error(`migration ${m.name} failed: ${(err as Error).message}`);
        }
      }
      watch.watching(undefined);
    }
  } finally {
    await watch?.stop();
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]).catch(() => undefined);
    await client.end();
  }
  return applied;
}

export function describeHolder(h: LockHolder): string {
  // What the server hides from the migrating user (another role's session on openGauss) is left out.
  const parts = [`pid ${h.pid}`];
  if (h.application) parts.push(`application "${h.application}"`);
  if (h.user) parts.push(`user ${h.user}`);
  if (h.client) parts.push(`from ${h.client}`);
  if (h.state) parts.push(h.state);
  if (h.transactionS !== null) parts.push(`in a transaction for ${h.transactionS} s`);
  return parts.join(', ');
}

// The sessions holding a lock that `pid` waits for: pg_locks and pg_stat_activity, which PostgreSQL
// and openGauss both have (pg_blocking_pids is PostgreSQL's only).
// The holder's pid is pg_locks' own: openGauss's pg_stat_activity has no row at all for another
// role's session unless the reader is a sysadmin or monitor admin (PostgreSQL's shows it, its details
// hidden), so the activity is joined LEFT and what it does not show stays unknown (docs/opengauss.md).
const HOLDERS_SQL = `SELECT DISTINCT h.pid::text AS pid, coalesce(a.application_name, '') AS application, coalesce(a.usename::text, '') AS user_name,
        host(a.client_addr) AS client, a.state, floor(extract(epoch FROM now() - a.xact_start))::int AS transaction_s
   FROM pg_locks w
   JOIN pg_locks h ON h.granted AND h.pid <> w.pid AND h.locktype = w.locktype
                  AND h.database IS NOT DISTINCT FROM w.database AND h.relation IS NOT DISTINCT FROM w.relation
                  AND h.transactionid IS NOT DISTINCT FROM w.transactionid
   LEFT JOIN pg_stat_activity a ON a.pid = h.pid
  WHERE w.pid::text = $1 AND NOT w.granted`;

/**
 * While migrations run: every second (more often under a short lock timeout), on a connection of its own, who holds what the
 * migration being applied waits for — named once in the log, and kept across its attempts for the error if they all end in
 * lock_timeout. Best effort: a failing look is left unsaid.
 */
function watchLocks(databaseUrl: string, migratingPid: string | undefined, say: (line: string) => void, everyMs: number) {
  let name: string | undefined;
  let last: LockHolder[] = [];
  const named = new Set<string>();
  let stopped = false;
  // This attempt's bound, when the watcher keeps it: since when the wait was seen, and whether it was ended.
  let limitMs: number | undefined;
  let waitingSince: number | undefined;
  let cancelled = false;
  const watcher = new pg.Client({ connectionString: databaseUrl, application_name: 'cdc-migrate-watch', connectionTimeoutMillis: 5000 });
  watcher.on('error', () => undefined);
  let connected = false;
  let busy: Promise<void> = watcher.connect().then(
    () => {
      connected = true;
    },
    () => undefined,
  );
  const look = async () => {
    const current = name;
    if (stopped || !connected || current === undefined || migratingPid === undefined) return;
    try {
      const r = await watcher.query<{
        pid: string;
        application: string;
        user_name: string;
        client: string | null;
        state: string | null;
        transaction_s: number | null;
      }>(HOLDERS_SQL, [migratingPid]);
      const holders = r.rows.map((x) => ({
        pid: x.pid,
        application: x.application,
        user: x.user_name,
        client: x.client,
        state: x.state,
        transactionS: x.transaction_s,
      }));
      if (current !== name) return;
      if (holders.length) last = holders;
      // The bound counts one wait: a wait that ended (the lock granted) starts it afresh at the next.
      if (!holders.length) waitingSince = undefined;
      if (holders.length && limitMs !== undefined && !cancelled) {
        waitingSince ??= Date.now();
        if (Date.now() - waitingSince >= limitMs) {
          // Only while the migration still waits, in the same statement: a lock granted since the look
          // above leaves nothing to cancel, never the migration's next statement. pg_locks.pid and
          // pg_cancel_backend's argument are an integer on PostgreSQL, a bigint (a thread id) on
          // openGauss: compared as text, passed as the view's own type (docs/opengauss.md).
          const sent = await watcher.query<{ sent: boolean }>(
            'SELECT pg_cancel_backend(w.pid) AS sent FROM pg_locks w WHERE w.pid::text = $1 AND NOT w.granted LIMIT 1',
            [migratingPid],
          );
          if (sent.rows[0]?.sent) cancelled = true;
        }
      }
      for (const h of holders)
        if (!named.has(h.pid)) {
          named.add(h.pid);
          say(`migration ${current} is waiting for a table lock held by ${describeHolder(h)}`);
        }
    } catch {
      // best effort
    }
  };
  const timer = setInterval(() => {
    busy = busy.then(look);
  }, everyMs);
  return {
    /** The migration now applied (undefined between them): what was seen for the one before is forgotten. */
    watching(migration: string | undefined): void {
      name = migration;
      last = [];
      named.clear();
    },
    /** An attempt begins: no bound kept by the watcher until cancelAfter says so. */
    attempt(): void {
      limitMs = undefined;
      waitingSince = undefined;
      cancelled = false;
    },
    /** The watcher bounds this attempt's lock wait: cancelled once seen waiting `ms`. */
    cancelAfter(ms: number): void {
      limitMs = ms;
    },
    /** Whether the watcher cancelled this attempt's wait (its 57014 is then a lock timeout). */
    cancelled(): boolean {
      return cancelled;
    },
    /** The holders last seen in any of this migration's attempts, once the look under way has ended. */
    async holders(): Promise<LockHolder[]> {
      await busy;
      return last;
    },
    async stop(): Promise<void> {
      stopped = true;
      clearInterval(timer);
      await busy;
      await watcher.end().catch(() => undefined);
    },
  };
}

// import.meta.main: false inside the runtime's bundle, which holds this module (infra/build/build.mjs).
if (import.meta.main) {
  let url = process.env.DATABASE_URL;
  if (!url && process.env.DATABASE_URL_FILE) url = readFileSync(process.env.DATABASE_URL_FILE, 'utf8').trim();
  // As the other operator commands find it (infra/cli/locate.ts): the secret file cdc-database-url in
  // the folder of CDC_SECRETS_DIR, CDC_DATA_DIR or make up's default.
  if (!url) {
    try {
      url = findDatabase().url;
    } catch (err) {
      console.error(`${(err as Error).message}; or DATABASE_URL_FILE to a file holding it`);
      process.exit(2);
    }
  }
  const line = (s: string) => console.log(`[cdc-migrate] ${s}`);
  if (process.argv.includes('--check')) {
    // Applies nothing: says whether the database is this release's; exit 1 when it is not.
    const c = new pg.Client({ connectionString: url, application_name: 'cdc-migrate' });
    c.connect()
      .then(() => schemaState(c))
      .then(
        (s) => {
          line(s.state === 'current' ? `database schema is current (${listMigrations().length} migrations)` : schemaAdvice(s));
          process.exitCode = s.state === 'current' ? 0 : 1;
        },
        (err) => {
          console.error(`[cdc-migrate] ${(err as Error).message}`);
          process.exitCode = 1;
        },
      )
      .finally(() => c.end().catch(() => undefined));
  } else {
    migrate(url, { log: line }).then(
      (names) => line(names.length ? `applied: ${names.join(', ')}` : 'database schema is up to date'),
      (err) => {
        console.error(`[cdc-migrate] ${(err as Error).message}`);
        process.exit(1);
      },
    );
  }
}
