// A pipelined transaction (docs/opengauss.md "Pipelining"): statements sent without waiting for the
// answers before them must keep a transaction's promises — a COMMIT sent behind a statement that
// fails commits nothing, a first read that failed (a wave's link locks) lets nothing be written and is
// the error reported, not the aborted reads behind it, and on a connection that does
// not pipeline the same code runs its statements one after another.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { together, withTx } from '../../shared/db/index.js';
import { databaseUrl, testDb } from '../setup/db.js';

const db = testDb();
const table = `pipeline_probe_${process.pid}`;
let next = 1;

beforeAll(async () => {
  await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY)`);
});
afterAll(async () => {
  await db.query(`DROP TABLE ${table}`);
});

/** withTx with the BEGIN pipelined, no retry. */
const pipelined = (fn: Parameters<typeof withTx<void>>[1]) => withTx(db, fn, 0, true);
const stored = async (id: number) => (await db.query(`SELECT 1 FROM ${table} WHERE id = $1`, [id])).rowCount;

describe('a pipelined transaction', () => {
  it('commits the last statement sent with COMMIT behind it', async () => {
    const a = next++;
    const b = next++;
    await pipelined(async (tx, pipe) => {
      await Promise.all([pipe.began, tx.query(`INSERT INTO ${table} VALUES ($1)`, [a])]);
      await pipe.commitWith(() => tx.query(`INSERT INTO ${table} VALUES ($1)`, [b]));
    });
    expect([await stored(a), await stored(b)]).toEqual([1, 1]);
  });

  it('commits nothing when the statement COMMIT was sent behind fails, and reports that statement', async () => {
    const a = next++;
    const failed = pipelined(async (tx, pipe) => {
      await Promise.all([pipe.began, tx.query(`INSERT INTO ${table} VALUES ($1)`, [a])]);
      // The same key again: a unique violation, with COMMIT already on the wire behind it.
      await pipe.commitWith(() => tx.query(`INSERT INTO ${table} VALUES ($1)`, [a]));
    });
    await expect(failed).rejects.toMatchObject({ code: '23505' });
    expect(await stored(a)).toBe(0);
  });

  it('writes nothing when the first of the statements sent with BEGIN fails, and reports its error', async () => {
    const a = next++;
    let wrote = false;
    const failed = pipelined(async (tx, pipe) => {
      // As a wave's first round trip: the statement that fails (the link locks' place), reads sent
      // behind it (aborted by its failure), then the write the body would do after them.
      await Promise.all([pipe.began, together(tx, [() => tx.query('SELECT 1 / 0'), () => tx.query('SELECT 1'), () => tx.query('SELECT 2')])]);
      wrote = true;
      await tx.query(`INSERT INTO ${table} VALUES ($1)`, [a]);
    });
    await expect(failed).rejects.toMatchObject({ code: '22012' });
    expect(wrote).toBe(false);
    expect(await stored(a)).toBe(0);
  });
});

describe('together', () => {
  it('sends at once on a pipelined connection, one after another on a plain one', async () => {
    const order = async (client: pg.ClientBase) => {
      const events: string[] = [];
      const send = (name: string) => () => {
        events.push(`send ${name}`);
        return client.query('SELECT pg_sleep(0.05)').then(() => events.push(`answer ${name}`));
      };
      await together(client as pg.PoolClient, [send('a'), send('b')]);
      return events;
    };
    const piped = await db.connect();
    try {
      expect(await order(piped)).toEqual(['send a', 'send b', 'answer a', 'answer b']);
    } finally {
      piped.release();
    }
    const plain = new pg.Client({ connectionString: databaseUrl() });
    await plain.connect();
    try {
      expect(await order(plain)).toEqual(['send a', 'answer a', 'send b', 'answer b']);
    } finally {
      await plain.end();
    }
  });

  it('fails with the first failure in the order sent, though the statements behind it settle first', async () => {
    const a = next++;
    const failed = pipelined(async (tx, pipe) => {
      // The cause goes first but reaches its caller late (as a group's row lock does through more
      // awaits than the single look-ups behind it); the statements behind it fail as aborted (25P02)
      // and settle at once.
      const late = () =>
        tx.query('SELECT 1 / 0').catch(async (err: unknown) => {
          await new Promise((r) => setTimeout(r, 30));
          throw err;
        });
      await Promise.all([pipe.began, together(tx, [late, () => tx.query('SELECT 1'), () => tx.query(`INSERT INTO ${table} VALUES ($1)`, [a])])]);
    });
    await expect(failed).rejects.toMatchObject({ code: '22012' });
    expect(await stored(a)).toBe(0);
  });
});
