// The database fault classes (docs/faults.md, "Database faults"), read from errors the real
// PostgreSQL returns where one can be provoked here, and from the SQLSTATE table otherwise; and
// the session limits every pooled connection gets.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { databaseUrl, testDb } from '../setup/db.js';
import { freePort } from '../../infra/runtime/replica.js';
import { dbFault } from '../../shared/db/faults.js';
import { closePool, openPool } from '../../shared/db/index.js';
import { databaseError } from '../../shared/http/errors.js';

const db = testDb({ max: 3 });
const caught = async (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => expect.fail('expected an error'),
    (e: unknown) => e,
  );

describe('from the real server', () => {
  it('statement timeout (57014) and lock timeout (55P03) are timeouts', async () => {
    const c = await db.connect();
    try {
      await c.query('SET statement_timeout = 100');
      expect(dbFault(await caught(c.query('SELECT pg_sleep(2)')))).toBe('timeout');
      await c.query('SET statement_timeout = 0');
      await c.query('SET lock_timeout = 100');
      const t = `lk_${randomBytes(4).toString('hex')}`;
      await db.query(`CREATE TABLE ${t} (x int)`);
      const holder = await db.connect();
      try {
        await holder.query('BEGIN');
        await holder.query(`LOCK TABLE ${t} IN ACCESS EXCLUSIVE MODE`);
        expect(dbFault(await caught(c.query(`SELECT * FROM ${t}`)))).toBe('timeout');
      } finally {
        await holder.query('ROLLBACK');
        holder.release();
        await db.query(`DROP TABLE ${t}`);
      }
    } finally {
      c.release();
    }
  });

  it('a server error raised as disk_full (53100) is disk_full, answered 503 with Retry-After 60', async () => {
    const err = await caught(db.query(`DO $$ BEGIN RAISE EXCEPTION 'No space left on device' USING ERRCODE = 'disk_full'; END $$`));
    expect((err as { code: string }).code).toBe('53100');
    expect(dbFault(err)).toBe('disk_full');
    const answer = databaseError(err)!;
    expect(answer.status).toBe(503);
    expect(answer.fault).toEqual({ kind: 'disk_full', retryAfterS: 60, sqlstate: '53100' });
  });

  it('a terminated session (57P01) and a refused connection are unavailable', async () => {
    const c = new pg.Client({ connectionString: databaseUrl() });
    c.on('error', () => undefined);
    await c.connect();
    const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const pending = caught(c.query('SELECT pg_sleep(5)'));
    await new Promise((r) => setTimeout(r, 200));
    await db.query('SELECT pg_terminate_backend($1)', [pid]);
    expect(dbFault(await pending)).toBe('unavailable');
    await c.end().catch(() => undefined);
    const closed = new pg.Client({ connectionString: `postgresql://nobody@127.0.0.1:${await freePort()}/x` });
    expect(dbFault(await caught(closed.connect()))).toBe('unavailable');
  });

  it('a role past its connection limit (53300) is too_many_connections', async () => {
    const role = `full_${randomBytes(4).toString('hex')}`;
    const password = randomBytes(12).toString('hex');
    await db.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}' CONNECTION LIMIT 0`);
    try {
      const u = new URL(databaseUrl());
      u.username = role;
      u.password = password;
      const c = new pg.Client({ connectionString: u.toString() });
      c.on('error', () => undefined);
      const err = await caught(c.connect());
      expect((err as { code: string }).code).toBe('53300');
      expect(dbFault(err)).toBe('too_many_connections');
    } finally {
      await db.query(`DROP ROLE ${role}`);
    }
  });

  it('a syntax error, or any other error, is no fault: it stays a 500', async () => {
    expect(dbFault(await caught(db.query('SELEC 1')))).toBeNull();
    expect(databaseError(new Error('boom'))).toBeNull();
  });
});

describe('the SQLSTATE table', () => {
  it.each([
    ['08006', 'unavailable'],
    ['08001', 'unavailable'],
    ['57P01', 'unavailable'],
    ['57P02', 'unavailable'],
    ['57P03', 'unavailable'],
    ['53100', 'disk_full'],
    ['53200', 'out_of_memory'],
    ['53300', 'too_many_connections'],
    ['53400', 'insufficient_resources'],
    ['57014', 'timeout'],
    ['55P03', 'timeout'],
    ['YY003', 'timeout'], // openGauss's lockwait_timeout
    ['40001', 'conflict'],
    ['40P01', 'conflict'],
    ['ECONNRESET', 'unavailable'],
    ['23505', null],
    ['42601', null],
  ])('%s → %s', (code, kind) => {
    expect(dbFault(Object.assign(new Error('x'), { code }))).toBe(kind);
  });

  it('openGauss’s wording of too many connections, without a code', () => {
    expect(dbFault(new Error('FATAL: too_many_connections: Already too many clients'))).toBe('too_many_connections');
  });
});

describe('session limits', () => {
  afterAll(async () => closePool());

  it('every pooled connection has statement_timeout and idle_in_transaction_session_timeout set', async () => {
    const pool = openPool(databaseUrl(), 2, { statementTimeoutMs: 1234, idleInTxTimeoutMs: 6000 });
    const clients = await Promise.all([pool.connect(), pool.connect()]);
    try {
      for (const c of clients) {
        expect((await c.query('SHOW statement_timeout')).rows[0].statement_timeout).toBe('1234ms');
        expect((await c.query('SHOW idle_in_transaction_session_timeout')).rows[0].idle_in_transaction_session_timeout).toBe('6s');
      }
    } finally {
      for (const c of clients) c.release();
    }
  });
});
