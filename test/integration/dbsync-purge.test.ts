// The retention purge of the database-sync staging tables (shared/dbsync/purge.ts, docs/dbsync.md
// "Retention") on a real PostgreSQL database of this file's own (it deletes by age, across every
// staging table: the counts it answers are this file's rows alone). Staging rows taken longer ago than
// DBSYNC_RETAIN_DAYS go, with their outcomes; rows waiting, rows taken recently and rows an open
// transaction of another connection holds stay; the batch and the time budget bound one run; a HIS
// inserting meanwhile is neither blocked nor lost; DBSYNC_RETAIN_DAYS=0 keeps everything.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { privateDatabase, uniqueId, uniqueOrg } from '../setup/db.js';
import { resources } from '../../schemas/index.js';
import { syncResource, type DbsyncSettings } from '../../shared/dbsync/index.js';
import {
  dbsyncPurgeConcern,
  purgeStaging,
  purgeTargets,
  RESULTS_DUE_SQL,
  stagingDueSql,
  type PurgeRun,
  type PurgeSettings,
} from '../../shared/dbsync/purge.js';
import { composeConfig } from '../../shared/config/index.js';
import { sample } from '../../infra/simulators/samples.js';

let priv: Awaited<ReturnType<typeof privateDatabase>>;
beforeAll(async () => {
  priv = await privateDatabase('dbsync_purge');
}, 120_000);
afterAll(async () => {
  await priv?.drop();
});

const patient = resources.emrPatientInfo!;
const visit = resources.emrActivityInfo!;
const sync: DbsyncSettings = { batch: 500, orgs: '*', runMs: 30_000, installationOrg: null, testOrgs: new Set(), pushNudgeUrl: '', warningNudgeUrl: '' };
const purgeSettings = (o: Partial<PurgeSettings> = {}): PurgeSettings => ({ retainDays: 7, batch: 1000, budgetMs: 10_000, ...o });

/** Empties every staging table and the outcomes: each test counts its own rows. */
async function clean(): Promise<void> {
  for (const r of Object.values(resources)) await priv.db.query(`DELETE FROM staging.${r.table}`);
  await priv.db.query('DELETE FROM staging.sync_result');
}

/**
 * `n` rows in a staging table as the front leaves them: taken `daysAgo` days ago (null: waiting),
 * with their outcomes written at the same time. Returns their row ids.
 */
async function staged(table: string, resource: string, n: number, daysAgo: number | null): Promise<string[]> {
  const taken = daysAgo === null ? null : `now() - interval '${daysAgo} days'`;
  const res = await priv.db.query<{ row_id: string }>(
    `INSERT INTO staging.${table} (org_code, id, taken_at, inserted_at)
       SELECT '123456789', 'r' || g, ${taken ?? 'NULL'}, ${taken ?? 'now()'} FROM generate_series(1, $1::integer) g RETURNING row_id::text AS row_id`,
    [n],
  );
  const ids = res.rows.map((x) => x.row_id);
  if (taken)
    await priv.db.query(
      `INSERT INTO staging.sync_result (resource, row_id, status, processed_at) SELECT $1, x, 'created', ${taken} FROM unnest($2::bigint[]) x`,
      [resource, ids],
    );
  return ids;
}

const present = async (table: string, ids: string[]): Promise<number> =>
  Number((await priv.db.query(`SELECT count(*) AS n FROM staging.${table} WHERE row_id = ANY($1::bigint[])`, [ids])).rows[0].n);
const outcomes = async (resource: string, ids: string[]): Promise<number> =>
  Number((await priv.db.query(`SELECT count(*) AS n FROM staging.sync_result WHERE resource = $1 AND row_id = ANY($2::bigint[])`, [resource, ids])).rows[0].n);

describe('DBSYNC_RETAIN_DAYS and the purge settings', () => {
  const spec = composeConfig({ purge: dbsyncPurgeConcern });
  it('default to a week, 1000 rows a statement and 5 s a run; 0 keeps forever; a bad value is named', () => {
    expect(spec.parse({}).purge).toEqual({ retainDays: 7, batch: 1000, budgetMs: 5000 });
    expect(spec.parse({ DBSYNC_RETAIN_DAYS: '0' }).purge.retainDays).toBe(0);
    expect(() => spec.parse({ DBSYNC_RETAIN_DAYS: '-1' })).toThrow(/DBSYNC_RETAIN_DAYS/);
    expect(() => spec.parse({ DBSYNC_RETAIN_DAYS: 'week' })).toThrow(/DBSYNC_RETAIN_DAYS/);
    expect(() => spec.parse({ DBSYNC_PURGE_BATCH: '0' })).toThrow(/DBSYNC_PURGE_BATCH/);
  });
});

describe('the purge', () => {
  it('deletes rows the sync took longer ago than the retention, and their outcomes; keeps waiting and recent rows', async () => {
    await clean();
    const org = uniqueOrg();
    const rows: string[] = [];
    for (let i = 0; i < 3; i++) {
      const rec = sample('emrPatientInfo', { orgCode: org, id: uniqueId('p'), seed: 40 + i });
      const r = await priv.db.query<{ row_id: string }>(
        `INSERT INTO staging.emr_patient_info (org_code, id, patient_name, gender_code, birth_date) VALUES ($1, $2, $3, $4, $5) RETURNING row_id::text AS row_id`,
        [org, rec.id, String(rec.patientName), String(rec.genderCode), String(rec.birthDate)],
      );
      rows.push(r.rows[0]!.row_id);
    }
    expect((await syncResource(priv.db, patient, { settings: sync })).taken).toBe(3);
    // Two taken 8 days ago (row and outcome: the same transaction's now()), one taken now.
    const [old1, old2, recent] = rows as [string, string, string];
    await priv.db.query(`UPDATE staging.emr_patient_info SET taken_at = taken_at - interval '8 days' WHERE row_id = ANY($1::bigint[])`, [[old1, old2]]);
    await priv.db.query(`UPDATE staging.sync_result SET processed_at = processed_at - interval '8 days' WHERE resource = $1 AND row_id = ANY($2::bigint[])`, [
      patient.name,
      [old1, old2],
    ]);
    // Waiting rows, however old their receive time, are never purged.
    const waiting = await staged('emr_patient_info', patient.name, 2, null);
    await priv.db.query(`UPDATE staging.emr_patient_info SET inserted_at = now() - interval '400 days' WHERE row_id = ANY($1::bigint[])`, [waiting]);
    const sixDays = await staged('emr_activity_info', visit.name, 2, 6);

    const run = await purgeStaging(priv.db, purgeSettings());
    expect(run).toEqual({ retainDays: 7, purged: { emr_patient_info: 2, sync_result: 2 }, complete: true });
    expect(await present('emr_patient_info', [old1, old2])).toBe(0);
    expect(await outcomes(patient.name, [old1, old2])).toBe(0);
    expect(await present('emr_patient_info', [recent, ...waiting])).toBe(3);
    expect(await outcomes(patient.name, [recent])).toBe(1);
    expect(await present('emr_activity_info', sixDays)).toBe(2);
    expect(await outcomes(visit.name, sixDays)).toBe(2);
  });

  it('purges an outcome by its own time: one older than the retention goes even when its row is already gone', async () => {
    await clean();
    const ids = await staged('emr_ex_lab', 'emrExLab', 3, 10);
    await priv.db.query(`DELETE FROM staging.emr_ex_lab WHERE row_id = $1`, [ids[0]]);
    await priv.db.query(`UPDATE staging.sync_result SET processed_at = now() - interval '2 days' WHERE resource = 'emrExLab' AND row_id = $1`, [ids[1]]);
    const run = await purgeStaging(priv.db, purgeSettings());
    expect(run.purged).toEqual({ emr_ex_lab: 2, sync_result: 2 });
    expect((await priv.db.query(`SELECT row_id::text AS row_id FROM staging.sync_result WHERE resource = 'emrExLab'`)).rows).toEqual([{ row_id: ids[1] }]);
  });

  it('keeps everything with DBSYNC_RETAIN_DAYS=0', async () => {
    await clean();
    const ids = await staged('emr_patient_info', patient.name, 5, 400);
    const run = await purgeStaging(priv.db, purgeSettings({ retainDays: 0 }));
    expect(run).toEqual({ retainDays: 0, purged: {}, complete: true });
    expect(await present('emr_patient_info', ids)).toBe(5);
    expect(await outcomes(patient.name, ids)).toBe(5);
  });

  it('skips a row an open transaction of another connection holds, without waiting; a later run takes it', async () => {
    await clean();
    const ids = await staged('emr_patient_info', patient.name, 3, 30);
    const his = new pg.Client({ connectionString: priv.url });
    await his.connect();
    try {
      await his.query('BEGIN');
      await his.query(`UPDATE staging.emr_patient_info SET patient_name = 'x' WHERE row_id = $1`, [ids[0]]);
      await his.query(`SELECT 1 FROM staging.sync_result WHERE resource = $1 AND row_id = $2 FOR UPDATE`, [patient.name, ids[0]]);
      const started = Date.now();
      const run = await purgeStaging(priv.db, purgeSettings());
      expect(Date.now() - started).toBeLessThan(5000);
      expect(run.purged).toEqual({ emr_patient_info: 2, sync_result: 2 });
      expect(await present('emr_patient_info', ids)).toBe(1);
      await his.query('COMMIT');
    } finally {
      await his.end();
    }
    expect((await purgeStaging(priv.db, purgeSettings())).purged).toEqual({ emr_patient_info: 1, sync_result: 1 });
    expect(await present('emr_patient_info', ids)).toBe(0);
  });

  it('deletes at most a batch per statement and goes on until none is due', async () => {
    await clean();
    const a = await staged('emr_patient_info', patient.name, 250, 9);
    const b = await staged('emr_order', 'emrOrder', 30, 9);
    const run = await purgeStaging(priv.db, purgeSettings({ batch: 100 }));
    expect(run).toEqual({ retainDays: 7, purged: { emr_patient_info: 250, emr_order: 30, sync_result: 280 }, complete: true });
    expect(await present('emr_patient_info', a)).toBe(0);
    expect(await present('emr_order', b)).toBe(0);
  });

  it('stops when its time is spent, reports what it purged, and the next runs finish the backlog', async () => {
    await clean();
    const ids = await staged('emr_patient_info', patient.name, 500, 100);
    // A clock that advances 40 ms at each look (one look before each table's batch): a budget of
    // 1000 ms allows 25 batches of 100, one round of the 22 tables and a few of the tables left.
    let t = 0;
    const clock = () => (t += 40);
    const runs: PurgeRun[] = [];
    for (let i = 0; i < 20; i++) {
      const run = await purgeStaging(priv.db, purgeSettings({ batch: 100, budgetMs: 1000 }), clock);
      runs.push(run);
      if (run.complete) break;
    }
    const first = runs[0]!;
    expect(first.complete).toBe(false);
    expect(first.purged.emr_patient_info).toBeGreaterThan(0);
    expect(first.purged.emr_patient_info).toBeLessThan(500);
    expect(runs.length).toBeGreaterThan(1);
    expect(runs.at(-1)!.complete).toBe(true);
    const sum = (k: string) => runs.reduce((n, r) => n + (r.purged[k] ?? 0), 0);
    expect(sum('emr_patient_info')).toBe(500);
    expect(sum('sync_result')).toBe(500);
    expect(await present('emr_patient_info', ids)).toBe(0);
  });

  it('neither blocks nor loses a HIS inserting meanwhile, committed or in an open transaction', async () => {
    await clean();
    await staged('emr_patient_info', patient.name, 3000, 20);
    const his = new pg.Client({ connectionString: priv.url });
    const open = new pg.Client({ connectionString: priv.url });
    await his.connect();
    await open.connect();
    try {
      await open.query('BEGIN');
      const pending = await open.query<{ row_id: string }>(
        `INSERT INTO staging.emr_patient_info (org_code, id) VALUES ('123456789', 'open') RETURNING row_id::text AS row_id`,
      );
      let done = false;
      const purging = purgeStaging(priv.db, purgeSettings({ batch: 200 })).finally(() => {
        done = true;
      });
      const written: string[] = [];
      let slowest = 0;
      while (!done || written.length < 20) {
        const t0 = Date.now();
        const r = await his.query<{ row_id: string }>(
          `INSERT INTO staging.emr_patient_info (org_code, id) VALUES ('123456789', $1) RETURNING row_id::text AS row_id`,
          [uniqueId('h')],
        );
        slowest = Math.max(slowest, Date.now() - t0);
        written.push(r.rows[0]!.row_id);
      }
      const run = await purging;
      await open.query('COMMIT');
      expect(run.purged.emr_patient_info).toBe(3000);
      expect(slowest).toBeLessThan(1000);
      expect(await present('emr_patient_info', [...written, pending.rows[0]!.row_id])).toBe(written.length + 1);
      const waiting = await priv.db.query(`SELECT count(*) AS n FROM staging.emr_patient_info WHERE taken_at IS NULL`);
      expect(Number(waiting.rows[0].n)).toBe(written.length + 1);
    } finally {
      await his.end();
      await open.end();
    }
  });

  it('chooses the rows due by an index of the rows taken, never reading the waiting rows', async () => {
    const c = await priv.db.connect();
    try {
      await c.query('BEGIN');
      await c.query('SET LOCAL enable_seqscan = off');
      for (const t of purgeTargets().filter((x) => x.name !== 'sync_result')) {
        const plan = (await c.query(`EXPLAIN ${stagingDueSql(t.name)}`, [7, 1000])).rows.map((x) => x['QUERY PLAN']).join('\n');
        expect(plan, t.name).toContain(`${t.name}_taken`);
        expect(plan, t.name).not.toMatch(/Seq Scan|_waiting/);
      }
      const plan = (await c.query(`EXPLAIN ${RESULTS_DUE_SQL}`, [7, 1000])).rows.map((x) => x['QUERY PLAN']).join('\n');
      expect(plan).toContain('sync_result_time');
      await c.query('ROLLBACK');
    } finally {
      c.release();
    }
  });
});
