// Database sync through the running front (stack.yml's dbsync function under the runtime): a row
// written into a staging table is taken after the HIS's nudge on the data port, and its outcome is
// readable; the lag route answers on the data port too.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { startStackRuntime, type StackRuntime } from '../setup/stack-runtime.js';
import { sample } from '../../infra/simulators/samples.js';
import { until } from './helpers.js';

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

  it('the scheduled run purges what is past the retention and answers it per table; its log line has counts only', { timeout: 60_000 }, async () => {
    const org = uniqueOrg();
    const id = uniqueId('p');
    const name = `留存测试${id.slice(-6)}`;
    const ins = await db.query<{ row_id: string }>(
      `INSERT INTO staging.emr_patient_info (org_code, id, patient_name, gender_code, birth_date) VALUES ($1, $2, $3, '1', '1980-01-01') RETURNING row_id`,
      [org, id, name],
    );
    const rowId = ins.rows[0]!.row_id;
    const run = () => fetch(`${front.rt.gatewayUrl}/function/dbsync`, { method: 'POST', headers: { 'x-topic': 'cron-function' } });
    // The staging tables are shared by every test file's front: another front's run may have taken
    // the row (FOR UPDATE SKIP LOCKED) while this one skipped it. Run again until its outcome is in.
    const outcomeOf = () => db.query(`SELECT status FROM staging.sync_result WHERE resource = 'emrPatientInfo' AND row_id = $1`, [rowId]);
    let outcome = await outcomeOf();
    for (let i = 0; i < 50 && outcome.rows.length === 0; i++) {
      expect((await run()).status).toBe(200);
      outcome = await outcomeOf();
      if (outcome.rows.length === 0) await new Promise((r) => setTimeout(r, 200));
    }
    expect(outcome.rows).toEqual([{ status: 'created' }]);
    // Taken eight days ago, as far as the purge can tell (the default DBSYNC_RETAIN_DAYS is 7).
    await db.query(`UPDATE staging.emr_patient_info SET taken_at = taken_at - interval '8 days' WHERE row_id = $1`, [rowId]);
    await db.query(`UPDATE staging.sync_result SET processed_at = processed_at - interval '8 days' WHERE resource = 'emrPatientInfo' AND row_id = $1`, [rowId]);
    const res = await run();
    expect(res.status).toBe(200);
    const body = (await res.json()) as { purge: { retainDays: number; purged: Record<string, number>; complete: boolean } };
    expect(body.purge).toMatchObject({ retainDays: 7, complete: true });
    expect(body.purge.purged.emr_patient_info).toBeGreaterThanOrEqual(1);
    expect(body.purge.purged.sync_result).toBeGreaterThanOrEqual(1);
    expect((await db.query('SELECT 1 FROM staging.emr_patient_info WHERE row_id = $1', [rowId])).rows).toEqual([]);
    expect((await db.query(`SELECT 1 FROM staging.sync_result WHERE resource = 'emrPatientInfo' AND row_id = $1`, [rowId])).rows).toEqual([]);
    // The record it became stays.
    expect((await db.query('SELECT count(*)::int AS n FROM emr_patient_info WHERE org_code = $1 AND id = $2', [org, id])).rows[0].n).toBe(1);
    // This run's purge line (its counts) reaches the files through the replica's output pipe and the
    // runtime's batched writes: waited for (10 s at most), not a fixed time. The replica's earlier
    // lines are in before it.
    const read = () =>
      readdirSync(join(front.dir, 'logs'))
        .map((f) => readFileSync(join(front.dir, 'logs', f), 'utf8'))
        .join('\n');
    await until(() => read().includes(`"purged":${JSON.stringify(body.purge.purged)}`));
    const logs = read();
    expect(logs).toMatch(/"msg":"dbsync purge"/);
    expect(logs).not.toContain(name);
  });
});
