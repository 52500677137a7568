/**
 * Database helpers for integration tests: the real PostgreSQL that test/setup/global.ts started
 * (or TEST_DATABASE_URL), never a mock; unique fixture data per test, never shared mutable rows.
 *
 *   const db = testDb();                 // at the top of a test file or describe block
 *   it('...', async () => {
 *     const org = uniqueOrg();           // '417203958'
 *     await db.query('INSERT ... VALUES ($1, $2)', [org, uniqueId('patient')]);
 *   });
 */
import { randomBytes, randomInt } from 'node:crypto';
import pg from 'pg';
import { afterAll, inject } from 'vitest';
import { migrate } from '../../infra/db/migrate.js';

/** URL of the migrated test database. */
export function databaseUrl(): string {
  const url = inject('databaseUrl') ?? process.env.TEST_DATABASE_URL;
  if (!url) throw new Error('no test database: vitest must run with test/setup/global.ts as globalSetup (see vitest.config.ts)');
  return url;
}

/**
 * A database of the calling file's own beside the test database, migrated: for a test that works on
 * every row there is (a key rotation, a dump) or changes settings every function reads (a
 * configuration bundle). Its URL, a small pool on it, and drop(), which ends the pool and removes it.
 */
/** A new, empty database on the test server (no migration): its URL. `name` is the caller's, unique. */
export async function emptyDatabase(name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: databaseUrl() });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(databaseUrl());
  u.pathname = `/${name}`;
  return u.toString();
}

export async function privateDatabase(prefix: string): Promise<{ url: string; db: pg.Pool; drop: () => Promise<void> }> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const url = await emptyDatabase(name);
  await migrate(url);
  const db = new pg.Pool({ connectionString: url, max: 3 });
  // The drop ends the pool, then forces the database away: a connection still closing is terminated
  // (57P01), which is expected here and must not surface as an unhandled error of the test run.
  db.on('error', () => undefined);
  return {
    url,
    db,
    drop: async () => {
      await db.end();
      const a = new pg.Client({ connectionString: databaseUrl() });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => a.query(`DROP DATABASE IF EXISTS ${name}`));
      await a.end();
    },
  };
}

/** A pg Pool on the test database, ended in afterAll of the calling file or describe block. */
export function testDb(options: Omit<pg.PoolConfig, 'connectionString'> = {}): pg.Pool {
  // As the functions' pool (shared/db openPool): statements pipelined.
  const pool = new pg.Pool({ max: 4, pipeline: true, ...options, connectionString: databaseUrl() });
  afterAll(async () => {
    await pool.end();
  });
  return pool;
}

/** The text of a statement's plan (EXPLAIN, not run), one line per node: which index it takes. */
export async function planText(db: pg.Pool, sql: string, params: unknown[] = []): Promise<string> {
  return (await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, params)).rows.map((r) => r['QUERY PLAN']).join('\n');
}

// Each worker process takes a random starting point and counts up from it, so codes never repeat
// within a process and two processes (or two runs on one kept database) collide only if their
// starting points fall within a few hundred of each other (about 1 in 10^6 per pair).
let orgNext = randomInt(100_000_000, 999_000_000);
const processTag = randomInt(36 ** 5, 36 ** 6).toString(36); // 6 base-36 chars
let idNext = 0;

/** A fresh 9-digit organisation code (机构编码), never starting with 0. */
export function uniqueOrg(): string {
  if (orgNext > 999_999_999) orgNext = 100_000_000;
  return String(orgNext++);
}

/** A fresh identifier `<prefix>-<process tag><counter>`, e.g. `patient-k3j9x21a`. */
export function uniqueId(prefix: string): string {
  return `${prefix}-${processTag}${(idNext++).toString(36)}`;
}

/**
 * Keeps the orgs' cards at "the national platform" as the file made them: only `destination` (the
 * `national` one unless a file has its own) speaks for it. Files running beside it push to national destinations of their own
 * (test/browser/card-form.test.ts, test/integration/push.test.ts), and a record is queued for every
 * destination enabled when it is stored, so their pushes can deliver these orgs' cards and change
 * their status (seen: a card accepted that was to be not yet forwarded). Their rows of these orgs
 * go; nothing of `national` is touched. Call it right before reading a status.
 */
export async function onlyNationalPlatform(db: pg.Pool, orgs: string[], destination = 'national'): Promise<void> {
  await db.query('DELETE FROM uplink_delivery WHERE org_code = ANY($1::varchar[]) AND destination <> $2', [orgs, destination]);
  await db.query('DELETE FROM outbox WHERE org_code = ANY($1::varchar[]) AND destination <> $2', [orgs, destination]);
}

/** A statement on the test server as its administrator, on a connection of its own (ended after). */
export async function adminRows<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: databaseUrl() });
  await c.connect();
  try {
    return (await c.query<T>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

/** Whether the test server has a database of that name. */
export const databaseExists = async (name: string): Promise<boolean> => (await adminRows('SELECT 1 FROM pg_database WHERE datname = $1', [name])).length === 1;
