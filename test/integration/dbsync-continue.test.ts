// The dbsync function's runs (docs/dbsync.md "Runs back to back"): a run that ends with rows still
// waiting starts the next one at once, instead of leaving the tables idle until the next cron minute,
// and never two at once; a table whose part of a run failed is named in the run's answer, not only in
// the log. The real function module on a database of its own.
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { privateDatabase, uniqueOrg } from '../setup/db.js';

// A database of its own: another file's sync run (orgs '*') would take these staging rows.
const priv = await privateDatabase('dbsync_continue');
process.env.DATABASE_URL = priv.url;
process.env.HIS_ALLOW = '127.0.0.1/8';
process.env.DBSYNC_BATCH = '25';
process.env.DBSYNC_RUN_MS = '1000';
process.env.DB_STATEMENT_TIMEOUT_MS = '1500';
const { default: dbsync } = await import('../../functions/dbsync/handler.js');
const db = priv.db;
await dbsync.init?.();
afterAll(async () => {
  await dbsync.close?.();
  await priv.drop();
});

const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));
const cron = async () => {
  const res = await dbsync.app.request('/', { method: 'POST', headers: { 'x-topic': 'cron-function' } });
  expect(res.status).toBe(200);
  return (await res.json()) as { runs: Array<{ resource: string; taken: number; failed?: string }>; failed: unknown[]; more: boolean };
};

describe('the dbsync function', () => {
  it('names in its answer a table whose part of the run failed; the other tables are taken', { timeout: 60_000 }, async () => {
    const org = uniqueOrg();
    await db.query(`INSERT INTO staging.emr_order (org_code, id) VALUES ($1, 'o1')`, [org]);
    await db.query(
      `INSERT INTO staging.emr_patient_info (org_code, id, patient_name, gender_code, birth_date, id_card_type_code, operation_time)
       VALUES ($1, 'p1', '测试', '2', '1949-12-31', '01', '2026-12-07 08:00:00')`,
      [org],
    );
    // Another session holds the orders' table: that part of the run waits past the statement timeout.
    const holder = new pg.Client({ connectionString: priv.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE staging.emr_order IN ACCESS EXCLUSIVE MODE');
      const answer = await cron();
      expect(answer.failed).toEqual([{ resource: 'emrOrder', fault: 'timeout' }]);
      expect(answer.runs).toContainEqual(expect.objectContaining({ resource: 'emrOrder', failed: 'timeout', taken: 0 }));
      expect(answer.runs).toContainEqual(expect.objectContaining({ resource: 'emrPatientInfo', taken: 1 }));
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    // The orders' row waits for the next run, whole.
    expect((await cron()).failed).toEqual([]);
    const taken = await db.query(`SELECT count(*)::int AS n FROM staging.sync_outcome WHERE resource = 'emrOrder' AND org_code = $1`, [org]);
    expect(taken.rows[0].n).toBe(1);
  });

  it('starts the next run at once when one ends with rows still waiting, until none waits', { timeout: 120_000 }, async () => {
    const org = uniqueOrg();
    await db.query(
      `INSERT INTO staging.emr_patient_info (org_code, id, patient_name, gender_code, birth_date, id_card_type_code, operation_time)
       SELECT $1, 'MANY-' || g, '洪' || g, '2', '1949-12-31', '01', '2026-12-07 10:00:00' FROM generate_series(1, 3000) g`,
      [org],
    );
    const waiting = async () =>
      Number((await db.query('SELECT count(*) AS n FROM staging.emr_patient_info WHERE org_code = $1 AND taken_at IS NULL', [org])).rows[0].n);
    // One run of 1 s in batches of 25 cannot take them all.
    const started = Date.now();
    const answer = await cron();
    expect(answer.more).toBe(true);
    expect(Date.now() - started).toBeLessThan(10_000);
    const left = await waiting();
    expect(left).toBeGreaterThan(0);
    // No cron, no nudge: the next runs follow by themselves until every row is taken.
    const end = Date.now() + 90_000;
    let seen = left;
    while (seen > 0 && Date.now() < end) {
      await sleep(250);
      seen = await waiting();
    }
    expect(seen).toBe(0);
    // Every row once.
    const outcomes = await db.query(
      `SELECT count(*)::int AS n, count(DISTINCT row_id)::int AS d FROM staging.sync_outcome WHERE resource = 'emrPatientInfo' AND org_code = $1`,
      [org],
    );
    expect(outcomes.rows[0]).toEqual({ n: 3000, d: 3000 });
  });
});
