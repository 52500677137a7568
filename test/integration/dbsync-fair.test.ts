// Database sync shares a run among the staging tables (docs/dbsync.md "Fair shares"): a backlog in one
// table — one hospital's flood of staged patients — no longer keeps a report card staged in a later
// table waiting run after run; the rest of the run then goes on with the backlog. A private database,
// the real sync.
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { sample } from '../../infra/simulators/samples.js';
import { resources } from '../../schemas/index.js';
import { syncAll } from '../../shared/dbsync/index.js';
import { privateDatabase, uniqueId, uniqueOrg } from '../setup/db.js';
import { stageRecord, syncEveryOrg } from '../setup/records.js';

const priv = await privateDatabase('dbsync_fair');
const db = new pg.Pool({ connectionString: priv.url, max: 6 });

afterAll(async () => {
  await db.end();
  await priv.drop();
});

const waiting = async (table: string) => Number((await db.query(`SELECT count(*) AS n FROM staging.${table} WHERE taken_at IS NULL`)).rows[0].n);

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
  });
});
