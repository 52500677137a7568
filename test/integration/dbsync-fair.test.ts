// Database sync shares a run among the staging tables, and each batch of a table among the HIS roles
// with rows waiting (docs/dbsync.md "Fair shares"): a backlog in one table — one hospital's flood of
// staged patients — no longer keeps a report card staged in a later table waiting run after run, nor
// another hospital's few patients staged behind it in the same table; a record written by two roles
// still has its versions in row order; the lag names the roles whose rows wait. A private database,
// real HIS roles, the real sync.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { sample } from '../../infra/simulators/samples.js';
import { resources } from '../../schemas/index.js';
import { claim, stagingLag, syncAll, syncResource } from '../../shared/dbsync/index.js';
import { components } from '../../shared/monitor/components.js';
import { bindStatements, createRoleStatements, rolePassword } from '../../shared/dbsync/role.js';
import { privateDatabase, testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { stageRecord, syncEveryOrg } from '../setup/records.js';

const priv = await privateDatabase('dbsync_fair');
const db = new pg.Pool({ connectionString: priv.url, max: 6 });
const patients = resources.emrPatientInfo!;
type His = { name: string; client: pg.Client };
const made: His[] = [];

/** A HIS role as bin/cdc-dbsync makes it (bound to its orgs, or unbound), with a connection of its own. */
const hisRole = async (orgs: string[] | '*'): Promise<His> => {
  const name = `his_${randomBytes(4).toString('hex')}`;
  const pw = rolePassword('x');
  for (const s of [...createRoleStatements(name, pw), ...bindStatements(name, orgs)]) await priv.db.query(s);
  const u = new URL(priv.url);
  u.username = name;
  u.password = pw;
  const client = new pg.Client({ connectionString: u.toString() });
  await client.connect();
  const his = { name, client };
  made.push(his);
  return his;
};

afterAll(async () => {
  for (const m of made) await m.client.end().catch(() => undefined);
  await db.end();
  await priv.drop();
  const admin = testDb();
  for (const m of made) await admin.query(`DROP ROLE ${m.name}`);
});

const waiting = async (table: string) => Number((await db.query(`SELECT count(*) AS n FROM staging.${table} WHERE taken_at IS NULL`)).rows[0].n);

/** `n` patients staged by one role in one statement (a bulk load), ids `<prefix>-1` … */
const flood = (his: His, org: string, prefix: string, n: number) =>
  his.client.query(
    `INSERT INTO staging.emr_patient_info (org_code, id, patient_name, gender_code, birth_date, id_card_type_code, operation_time, operator_id)
     SELECT $1, $2 || '-' || g, '洪' || g, '2', '1949-12-31', '01', '2026-12-07 10:00:00', 'flood' FROM generate_series(1, $3::int) g`,
    [org, prefix, n],
  );
const stagePatient = async (his: His, org: string, id: string, operator: string) =>
  (
    await his.client.query<{ row_id: string }>(
      `INSERT INTO staging.emr_patient_info (org_code, id, patient_name, gender_code, birth_date, id_card_type_code, operation_time, operator_id)
       VALUES ($1, $2, '测试', '2', '1949-12-31', '01', '2026-12-07 08:00:00', $3) RETURNING row_id`,
      [org, id, operator],
    )
  ).rows[0]!.row_id;
const outcomesOf = async (rowIds: string[]) =>
  new Map(
    (
      await db.query<{ row_id: string; status: string; version: number | null }>(
        `SELECT row_id::text, status, version FROM staging.sync_outcome WHERE resource = 'emrPatientInfo' AND row_id = ANY($1::bigint[])`,
        [rowIds],
      )
    ).rows.map((x) => [x.row_id, x]),
  );
/** Options that let a run take at most `n` batches (one wave each: every record of these batches is a new one). */
const batches = (n: number) => {
  let waves = 0;
  return {
    beforeCommit: async () => {
      waves++;
    },
    stopping: () => waves >= n,
  };
};

describe('a run of the database sync', () => {
  it('gives every table its share: a card staged behind a flood of patients in another table is taken in the same run', { timeout: 120_000 }, async () => {
    const flood = uniqueOrg();
    await db.query(
      `INSERT INTO staging.emr_patient_info (org_code, id, patient_name, gender_code, birth_date, id_card_type_code, operation_time)
       SELECT $1, 'FLOOD-' || g, '洪' || g, '2', '1949-12-31', '01', '2026-12-07 10:00:00' FROM generate_series(1, 20000) g`,
      [flood],
    );
    const org = uniqueOrg();
    const card = await stageRecord(db, resources.emrInfReport!, sample('emrInfReport', { orgCode: org, id: uniqueId('card'), seed: 3 }));
    const runs = await syncAll(db, { settings: { ...syncEveryOrg, batch: 100, runMs: 2000 } });
    // The card has its outcome (taken, whatever it was: refused or stored) …
    const outcome = await db.query(`SELECT 1 FROM staging.sync_outcome WHERE resource = 'emrInfReport' AND row_id = $1`, [card]);
    expect(outcome.rowCount).toBe(1);
    // … while the flood's table had more than the run could take, and was given what was left of it.
    const patients = runs.find((r) => r.resource === 'emrPatientInfo')!;
    expect(patients.taken).toBeGreaterThan(0);
    expect(patients.more).toBe(true);
    expect(await waiting('emr_patient_info')).toBeGreaterThan(0);
    // The rest of the flood is not the tests' below.
    await db.query('DELETE FROM staging.emr_patient_info WHERE org_code = $1 AND taken_at IS NULL', [flood]);
  });
});

describe('the HIS roles of one table', () => {
  it('share each batch: a few patients of one hospital staged behind another’s flood are taken in the first batch', { timeout: 120_000 }, async () => {
    const orgA = uniqueOrg();
    const orgB = uniqueOrg();
    const a = await hisRole([orgA]);
    const b = await hisRole([orgB]);
    await flood(a, orgA, uniqueId('FLOOD'), 3000);
    const few: string[] = [];
    for (let i = 0; i < 5; i++) few.push(await stagePatient(b, orgB, uniqueId('FEW'), 'b1'));
    // One batch of 100: role B's five rows are in it, beside 95 of A's.
    const run = await syncResource(db, patients, { settings: { ...syncEveryOrg, batch: 100 }, ...batches(1) });
    expect(run.taken).toBe(100);
    const done = await outcomesOf(few);
    expect(few.map((x) => done.get(x)?.status)).toEqual(few.map(() => 'created'));
    expect(await waiting('emr_patient_info')).toBe(2905);
    // Still every row of A's once, in row order.
    while ((await syncResource(db, patients, { settings: { ...syncEveryOrg, batch: 500 } })).more);
    expect(await waiting('emr_patient_info')).toBe(0);
  });

  it('are named in the lag with the rows each has waiting, most first: who is flooding (role names and counts only)', async () => {
    const orgA = uniqueOrg();
    const orgB = uniqueOrg();
    const a = await hisRole([orgA]);
    const b = await hisRole([orgB]);
    await flood(a, orgA, uniqueId('FLOOD'), 300);
    await stagePatient(b, orgB, uniqueId('FEW'), 'b1');
    const lag = (await stagingLag(db)).find((l) => l.resource === 'emrPatientInfo')!;
    expect(lag.waiting).toBe(301);
    expect(lag.roles).toEqual([
      { role: a.name, waiting: 300, oldestAgeS: expect.any(Number) },
      { role: b.name, waiting: 1, oldestAgeS: expect.any(Number) },
    ]);
    expect(JSON.stringify(lag)).not.toMatch(/FLOOD|FEW|洪/);
    // The components the monitoring port and the province report carry show the shares, never the role
    // names (the hospital's database logins).
    const comp = await components(db, { platforms: {}, diskPath: '/', probe: false });
    expect(comp.components.find((c) => c.name === 'dbsync')?.detail).toMatch(/by role: 300, 1 \(2 roles\)$/);
    expect(comp.staging?.find((l) => l.resource === 'emrPatientInfo')?.roles).toEqual([
      { waiting: 300, oldestAgeS: expect.any(Number) },
      { waiting: 1, oldestAgeS: expect.any(Number) },
    ]);
    expect(JSON.stringify(comp)).not.toContain(a.name);
    expect(JSON.stringify(comp)).not.toContain(b.name);
    while ((await syncResource(db, patients, { settings: syncEveryOrg })).more);
    expect((await stagingLag(db)).find((l) => l.resource === 'emrPatientInfo')).toMatchObject({ waiting: 0, oldestAgeS: null, roles: [] });
  });

  it('cost a claim the rows it hands over, not the flood staged before them (the indexes of migration 1090)', { timeout: 120_000 }, async () => {
    const orgA = uniqueOrg();
    const orgB = uniqueOrg();
    const a = await hisRole([orgA]);
    const b = await hisRole([orgB]);
    await flood(a, orgA, uniqueId('FLOOD'), 5000);
    const id = uniqueId('FEW');
    for (let i = 0; i < 5; i++) await stagePatient(b, orgB, id, `b${i}`);
    // The rows earlier tests took or deleted are dead in the indexes of the waiting rows until vacuumed: not this claim's cost.
    await db.query('VACUUM ANALYZE staging.emr_patient_info');
    const client = await db.connect();
    try {
      // The rows every statement of the claim read from the table: its counters not yet reported (this backend's).
      const read = async () =>
        Number(
          (
            await client.query<{ n: string }>(
              `SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) AS n FROM pg_stat_xact_user_tables WHERE schemaname = 'staging' AND relname = 'emr_patient_info'`,
            )
          ).rows[0]!.n,
        );
      await client.query('BEGIN');
      const before = await read();
      const c = await claim(client, patients, 100);
      const after = await read();
      await client.query('ROLLBACK');
      expect(c.rows.filter((x) => x.inserted_by === b.name)).toHaveLength(5);
      expect(c.rows).toHaveLength(100);
      // About 300 (each row handed over is read three times: found, compared, read whole), not the flood's 5000.
      expect(after - before).toBeLessThan(1000);
    } finally {
      client.release();
    }
    while ((await syncResource(db, patients, { settings: syncEveryOrg })).more);
  });

  it('share a batch cut short by its bytes too', { timeout: 120_000 }, async () => {
    const orgA = uniqueOrg();
    const orgB = uniqueOrg();
    const a = await hisRole([orgA]);
    const b = await hisRole([orgB]);
    await flood(a, orgA, uniqueId('FLOOD'), 400);
    const few = [await stagePatient(b, orgB, uniqueId('FEW'), 'b1'), await stagePatient(b, orgB, uniqueId('FEW'), 'b1')];
    // A patient row here is about 70 bytes of values: 2 KiB is a batch of about thirty.
    const run = await syncResource(db, patients, { settings: { ...syncEveryOrg, batch: 500 }, batchBytes: 2048, ...batches(1) });
    expect(run.taken).toBeLessThan(50);
    const done = await outcomesOf(few);
    expect(few.map((x) => done.get(x)?.status)).toEqual(['created', 'created']);
    expect(await waiting('emr_patient_info')).toBeGreaterThan(350);
    while ((await syncResource(db, patients, { settings: syncEveryOrg })).more);
  });

  it('keep a record written by both in row order: a role’s later row waits for the other role’s earlier one in its flood', { timeout: 120_000 }, async () => {
    // One hospital, two HIS systems (unbound roles) writing the same patient.
    const org = uniqueOrg();
    const a = await hisRole('*');
    const b = await hisRole('*');
    const id = uniqueId('BOTH');
    await flood(a, org, uniqueId('FLOOD'), 300);
    const first = await stagePatient(a, org, id, 'a1');
    await flood(a, org, uniqueId('FLOOD'), 300);
    const second = await stagePatient(b, org, ` ${id} `, 'b2');
    // Batches of 100: B's row comes in the first, A's in the fourth.
    let runs = 0;
    while ((await syncResource(db, patients, { settings: { ...syncEveryOrg, batch: 100 } })).more) runs++;
    expect(runs).toBeLessThan(20);
    const done = await outcomesOf([first, second]);
    expect([done.get(first)?.version, done.get(second)?.version]).toEqual([1, 2]);
    const stored = await db.query('SELECT operator_id FROM emr_patient_info WHERE org_code = $1 AND id = $2', [org, id]);
    expect(stored.rows[0]?.operator_id).toBe('b2');
  });
});
