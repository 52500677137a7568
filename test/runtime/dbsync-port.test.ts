// Database sync through the running front (stack.yml's dbsync function under the runtime): a row
// written into a staging table is taken after the HIS's nudge on the data port, and its outcome is
// readable; the lag route answers on the data port too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { startStackRuntime, type StackRuntime } from '../setup/stack-runtime.js';
import { sample } from '../../infra/simulators/samples.js';

const db = testDb();
let front: StackRuntime;

beforeAll(async () => {
  front = await startStackRuntime('dbsync-port');
}, 120_000);
afterAll(async () => {
  await front?.close();
});

describe('dbsync on the data port', () => {
  it('a staged row is taken after the nudge and its outcome is readable', async () => {
    const org = uniqueOrg();
    const id = uniqueId('p');
    const rec = sample('emrPatientInfo', { orgCode: org, id, seed: 21 });
    const ins = await db.query<{ row_id: string }>(
      `INSERT INTO staging.emr_patient_info (org_code, id, patient_name, gender_code, birth_date) VALUES ($1, $2, $3, $4, $5) RETURNING row_id`,
      [org, id, String(rec.patientName), String(rec.genderCode), String(rec.birthDate)],
    );
    const nudge = await fetch(`${front.rt.portUrls.data}/function/dbsync/nudge`, { method: 'POST' });
    expect(nudge.status).toBe(202);
    let result: { status: string; version: number } | undefined;
    for (let i = 0; i < 100 && !result; i++) {
      result = (await db.query(`SELECT status, version FROM staging.sync_result WHERE resource = 'emrPatientInfo' AND row_id = $1`, [ins.rows[0]!.row_id]))
        .rows[0];
      if (!result) await new Promise((r) => setTimeout(r, 100));
    }
    expect(result).toEqual({ status: 'created', version: 1 });
    expect((await db.query(`SELECT rec_version FROM emr_patient_info WHERE org_code = $1 AND id = $2`, [org, id])).rows).toEqual([{ rec_version: 1 }]);
    const lag = await fetch(`${front.rt.portUrls.data}/function/dbsync/lag`);
    expect(lag.status).toBe(200);
    const body = (await lag.json()) as { lag: Array<{ resource: string; waiting: number }> };
    expect(body.lag.map((l) => l.resource)).toContain('emrPatientInfo');
  });
});
