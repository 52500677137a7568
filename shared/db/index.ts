/**
 * The data-access layer's connection handling: one pool per process, opened by a function's init
 * and closed by its close (nothing connects at import time), transactions, and the dialect switch
 * (PostgreSQL in development, openGauss 5.0 in production; docs/opengauss.md).
 */
import pg from 'pg';
import { log } from '../log/index.js';
import { dbFault } from './faults.js';
import { warnIfSchemaDiffers } from './schema.js';

// Return timestamptz as Date (default) and bigint (int8) as string; numeric stays string.
export type Db = pg.Pool;
export type Tx = pg.PoolClient;

let pool: pg.Pool | undefined;

export { dbFault, RETRY_AFTER_S, type DbFault } from './faults.js';

/**
 * Session limits set on every connection (docs/faults.md): a statement running longer than
 * statementTimeoutMs is cancelled (57014 → 503), and a session idle inside a transaction for
 * idleInTxTimeoutMs (whole seconds) is ended, releasing its locks. 0 switches a limit off. Functions
 * take them from their configuration (DB_STATEMENT_TIMEOUT_MS, DB_IDLE_TX_TIMEOUT_MS); the defaults
 * keep a statement below the receive functions' 30 s exec_timeout.
 */
export type SessionLimits = { statementTimeoutMs: number; idleInTxTimeoutMs: number };
export const DEFAULT_SESSION_LIMITS: SessionLimits = { statementTimeoutMs: 20_000, idleInTxTimeoutMs: 60_000 };

// A parameter the server does not know (42704) is reported once per process, then left alone.
const unsupported = new Set<string>();

async function applyLimits(client: pg.ClientBase, limits: SessionLimits): Promise<void> {
  const set = async (name: string, value: string) => {
    if (unsupported.has(name)) return;
    try {
      // A literal, not a bind parameter: SET takes none. The unit is always written out: openGauss
      // counts idle_in_transaction_session_timeout in seconds where PostgreSQL counts milliseconds.
      await client.query(`SET ${name} = '${value}'`);
    } catch (err) {
      const e = err as { code?: string };
      if (e.code !== '42704') throw err;
      unsupported.add(name);
      log('warn', 'database does not support a session limit; left unset', { setting: name });
    }
  };
  await set('statement_timeout', `${Math.floor(limits.statementTimeoutMs)}ms`);
  await set('idle_in_transaction_session_timeout', `${Math.ceil(limits.idleInTxTimeoutMs / 1000)}s`);
}

/**
 * A moment a transaction's work must be over by — a request's time less a margin, so that the
 * transaction is rolled back by the function and answered as such, never still running when the
 * runtime has given the caller up (docs/config-bundles.md "Answers"). `capMs`: the session's own
 * statement_timeout, never raised.
 */
export interface Deadline {
  at: number;
  capMs: number;
}

/** An error read as a statement timeout (57014: dbFault 'timeout'): a deadline passed between two statements. */
export class DeadlinePassed extends Error {
  readonly code = '57014';
}

/**
 * Before a statement of a transaction bounded by `d`: throws DeadlinePassed when its time is over,
 * else bounds the next statements by what is left (`SET LOCAL statement_timeout`, back to the
 * session's at the transaction's end). Nothing without a deadline.
 */
export async function withinDeadline(tx: Tx, d: Deadline | undefined): Promise<void> {
  if (!d) return;
  const left = Math.ceil(d.at - Date.now());
  if (left <= 0) throw new DeadlinePassed('the transaction ran out of its time and was rolled back');
  if (d.capMs > 0 && left >= d.capMs) return;
  await tx.query("SELECT set_config('statement_timeout', $1, true)", [`${left}ms`]);
}

export function openPool(databaseUrl: string, max = 10, limits: SessionLimits = DEFAULT_SESSION_LIMITS): pg.Pool {
  if (pool) return pool;
  pool = new pg.Pool({
    connectionString: databaseUrl,
    max,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 5_000,
    // Statements go out without waiting for the ones before them (withTx `pipelined`): the server
    // runs them in order, so a sequence that awaits each is unchanged (docs/ingest.md "Round trips").
    pipeline: true,
    application_name: process.env.FUNCTION_NAME ?? 'cdc-front',
    // Runs on each new connection before it is handed out (pg-pool awaits it; if it fails, the
    // checkout fails and the connection is closed).
    onConnect: async (client: pg.ClientBase) => {
      // A checked-out client has no pool listener: without its own, a terminated backend between
      // two queries (57P01) is an unhandled 'error' event, which ends the process. The query in
      // flight, if any, fails on its own and is answered 503.
      client.on('error', (err) => log('warn', 'database connection lost', { err: err.message, code: (err as { code?: string }).code }));
      await applyLimits(client, limits);
    },
  });
  // An idle client losing its server (restart, pg_terminate_backend) must not crash the process:
  // the pool drops it and opens another on the next checkout.
  pool.on('error', (err) => log('warn', 'idle database connection lost', { err: err.message, code: (err as { code?: string }).code }));
  // A database that lacks a migration this build needs (new bundles, bin/cdc-migrate not run) is
  // named in the log at start (shared/db/schema.ts, docs/deploy.md "Upgrade").
  warnIfSchemaDiffers(pool);
  return pool;
}

export function getPool(): pg.Pool {
  if (!pool) throw new Error('database pool is not open: call openPool() in the function init');
  return pool;
}

export async function closePool(): Promise<void> {
  const p = pool;
  pool = undefined;
  await p?.end();
}

/**
 * What a pipelined transaction's body may do beyond statements (`withTx`'s `pipelined`; docs/ingest.md
 * "Round trips"). On a connection in pipeline mode (openPool's) statements are sent without waiting
 * for the ones before them, and the server runs them in order; on any other connection these
 * degrade to the plain sequence (BEGIN awaited first, COMMIT after the body).
 */
export interface TxPipeline {
  /**
   * The BEGIN, sent ahead of the body's first statements and not
   * awaited: the body awaits it with its first reads, before it writes anything.
   */
  began: Promise<unknown>;
  /**
   * Sends `last` — a function that sends the transaction's last statement and returns its result —
   * with COMMIT right behind it, in one write. After it the body sends nothing more; withTx waits for
   * the COMMIT before it returns. Should `last` fail, the server turns the COMMIT into a rollback.
   */
  commitWith<R>(last: () => Promise<R>): Promise<R>;
}

type Stream = { cork?: () => void; uncork?: () => void };
/** The client's socket, to send several messages in one write (what pg does for one statement's). */
const streamOf = (client: Tx): Stream | undefined => (client as unknown as { connection?: { stream?: Stream } }).connection?.stream;
const pipelining = (client: Tx): boolean => (client as unknown as { pipeline?: boolean }).pipeline === true;

/**
 * Waits for all the promises and fails with the first failure in their order, not in the order they
 * settle. For statements sent together the order given is the order sent, so the failure reported
 * is the cause (a deadlock, a lock timeout), not a statement behind it that failed because of it
 * ("current transaction is aborted", 25P02), whose promise may settle first when it has fewer
 * steps to go through (docs/opengauss.md "Pipelining").
 */
export async function inOrder<T extends readonly unknown[]>(promises: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const settled = await Promise.allSettled(promises as readonly Promise<unknown>[]);
  const failed = settled.find((x) => x.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((x) => (x as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

/**
 * Sends independent statements together on one connection and waits for all their answers: at once
 * on a connection in pipeline mode (openPool's), one after the other on any other (node-postgres
 * would otherwise queue them itself, which it deprecates). Each function sends its statement when
 * called (docs/opengauss.md "Pipelining"). A failure is the first in the order given (`inOrder`).
 */
export async function together<T extends readonly unknown[]>(client: Tx, sends: { [K in keyof T]: () => Promise<T[K]> }): Promise<T> {
  if (pipelining(client)) return (await inOrder(sends.map((send) => send()))) as unknown as T;
  const out: unknown[] = [];
  for (const send of sends) out.push(await send());
  return out as unknown as T;
}

/**
 * Runs fn in a transaction; retries the whole transaction on serialization failure or a unique race.
 * `pipelined`: BEGIN is not awaited before fn, and the statements fn sends before its first await go
 * out with it in one write; fn gets a TxPipeline to await the BEGIN and to send COMMIT behind its
 * last statement.
 */
export async function withTx<T>(db: pg.Pool, fn: (tx: Tx, pipe: TxPipeline) => Promise<T>, retries = 2, pipelined = false): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const client = await db.connect();
    let broken: Error | undefined;
    const piped = pipelined && pipelining(client);
    let committed: Promise<unknown> | undefined;
    const stream = piped ? streamOf(client) : undefined;
    try {
      stream?.cork?.();
      let began: Promise<unknown>;
      let body: Promise<T>;
      try {
        began = client.query('BEGIN');
        // Settled by the body's first reads; its failure is thrown below, not left unhandled.
        began.catch(() => undefined);
        if (!piped) await began;
        body = fn(client, {
          began,
          commitWith: <R>(last: () => Promise<R>): Promise<R> => {
            if (!piped) return last();
            stream?.cork?.();
            try {
              const out = last();
              committed = client.query('COMMIT');
              committed.catch(() => undefined);
              return out;
            } finally {
              stream?.uncork?.();
            }
          },
        });
      } finally {
        stream?.uncork?.();
      }
      const out = await body;
      await began;
      await (committed ?? client.query('COMMIT'));
      return out;
    } catch (err) {
      // A COMMIT sent behind the last statement ends the transaction whatever failed (a statement
      // before it: as a rollback): a ROLLBACK after it would only earn a warning in the server's log.
      await (committed ?? client.query('ROLLBACK')).catch(() => undefined);
      // A connection that failed is destroyed, not returned to the pool.
      if (dbFault(err) === 'unavailable') broken = err as Error;
      const code = (err as { code?: string }).code;
      if (attempt < retries && (code === '23505' || code === '40001' || code === '40P01')) continue;
      throw err;
    } finally {
      client.release(broken);
    }
  }
}

/** True when the database cannot be reached or takes no more connections (answer 503, not 500). */
export function isUnavailable(err: unknown): boolean {
  const f = dbFault(err);
  return f === 'unavailable' || f === 'too_many_connections';
}

export type Dialect = 'postgresql' | 'opengauss';

/** The server's dialect, from version(): a pool or one client (the migration runner's). */
export async function detectDialect(db: pg.Pool | pg.ClientBase): Promise<Dialect> {
  const r = await db.query<{ v: string }>('SELECT version() AS v');
  return /openGauss/i.test(r.rows[0]?.v ?? '') ? 'opengauss' : 'postgresql';
}
