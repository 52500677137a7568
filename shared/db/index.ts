/**
 * The data-access layer's connection handling: one pool per process, opened by a function's init
 * and closed by its close (nothing connects at import time), transactions, and the dialect switch
 * (PostgreSQL in development, openGauss 5.0 in production; see docs and opengauss-sql.md).
 */
import pg from 'pg';

// Return timestamptz as Date (default) and bigint (int8) as string; numeric stays string.
export type Db = pg.Pool;
export type Tx = pg.PoolClient;

let pool: pg.Pool | undefined;

export function openPool(databaseUrl: string, max = 10): pg.Pool {
  if (pool) return pool;
  pool = new pg.Pool({
    connectionString: databaseUrl,
    max,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 5_000,
    application_name: process.env.FUNCTION_NAME ?? 'cdc-front',
  });
  // An idle client losing its server (database restart) must not crash the process.
  pool.on('error', () => undefined);
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

/** Runs fn in a transaction; retries the whole transaction on serialization failure or a unique race. */
export async function withTx<T>(db: pg.Pool, fn: (tx: Tx) => Promise<T>, retries = 2): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const client = await db.connect();
    try {
      await client.query('BEGIN');
      const out = await fn(client);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      const code = (err as { code?: string }).code;
      if (attempt < retries && (code === '23505' || code === '40001' || code === '40P01')) continue;
      throw err;
    } finally {
      client.release();
    }
  }
}

/** True when the error means the database cannot be reached or is restarting (answer 503, not 500). */
export function isUnavailable(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  if (!e) return false;
  if (e.code && /^(08|57P0[1-3]|53300)/.test(e.code)) return true;
  if (e.code && ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND'].includes(e.code)) return true;
  return /Connection terminated|timeout exceeded when trying to connect|connect ECONNREFUSED/i.test(e.message ?? '');
}

export type Dialect = 'postgresql' | 'opengauss';

export async function detectDialect(db: pg.Pool): Promise<Dialect> {
  const r = await db.query<{ v: string }>('SELECT version() AS v');
  return /openGauss/i.test(r.rows[0]?.v ?? '') ? 'opengauss' : 'postgresql';
}
