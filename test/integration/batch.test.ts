// The batch form: set-based writes, one answer per record, in order.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { sample } from '../../infra/simulators/samples.js';
import { keyIdOf, pii } from '../../shared/pii/index.js';

process.env.DATABASE_URL = databaseUrl();
process.env.HIS_ALLOW = '127.0.0.1/8';
const { default: patient } = await import('../../functions/patient/handler.js');
const { default: card } = await import('../../functions/card/handler.js');
const db = testDb();
beforeAll(async () => Promise.all([patient.init?.(), card.init?.()]));
afterAll(async () => Promise.all([patient.close?.(), card.close?.()]));

const post = (fn: typeof patient, path: string, body: unknown) =>
  fn.app.request(path, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': '127.0.0.1' }, body: JSON.stringify(body) });

describe('a batch', () => {
  it('with the same record twice stores both versions in order, and an identical repeat as unchanged', async () => {
    const org = uniqueOrg();
    const id = uniqueId('p');
    const v1 = sample('emrPatientInfo', { orgCode: org, id, seed: 1 });
    const v2 = { ...v1, tel: '13700000000' };
    const body = await (await post(patient, '/emrPatientInfo', [v1, v2, v2])).json();
    expect(body.results.map((r: { status: string; version: number }) => [r.status, r.version])).toEqual([
      ['created', 1],
      ['updated', 2],
      ['unchanged', 2],
    ]);
    const versions = (
      await db.query(`SELECT version FROM outbox WHERE destination = 'national' AND org_code = $1 AND record_id = $2 ORDER BY outbox_id`, [org, id])
    ).rows;
    expect(versions.map((v) => v.version)).toEqual([1, 2]);
    const tel = (await db.query('SELECT tel FROM emr_patient_info WHERE org_code = $1 AND id = $2', [org, id])).rows[0].tel;
    expect(keyIdOf(tel)).not.toBeNull();
    expect(pii().open(tel)).toBe('13700000000');
  });

  it('of 500 report cards (over 100 columns each) is written in chunks under the parameter limit', async () => {
    const org = uniqueOrg();
    const pid = uniqueId('p');
    await post(patient, '/emrPatientInfo', sample('emrPatientInfo', { orgCode: org, id: pid, seed: 2 }));
    const cards = Array.from({ length: 500 }, (_, i) => sample('emrInfReport', { orgCode: org, id: uniqueId('c'), seed: i + 1, patientId: pid }));
    const res = await post(card, '/emrInfReport', cards);
    const body = await res.json();
    expect(res.status).toBe(200);
    expect(body.results.filter((r: { result: boolean }) => !r.result)).toEqual([]);
    expect(Number((await db.query('SELECT count(*) AS n FROM emr_inf_report WHERE org_code = $1', [org])).rows[0].n)).toBe(500);
    expect(Number((await db.query('SELECT count(*) AS n FROM record_receipt WHERE org_code = $1 AND resource = $2', [org, 'emrInfReport'])).rows[0].n)).toBe(
      500,
    );
  });

  it('over the limit is refused whole with 413', async () => {
    const res = await post(
      patient,
      '/emrPatientInfo',
      Array.from({ length: 501 }, () => ({})),
    );
    expect(res.status).toBe(413);
  });
});
