// Several hospitals on one front (the notice's variant D): a caller's credentials are bound to its
// org codes, and nothing of another org can be written or read with them — through the patient
// receive function on the real database.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { generateApiKey } from '../../shared/http/auth.js';
import { insertCaller } from '../../shared/http/auth-store.js';
import { samplePatient } from '../../infra/simulators/his.js';

process.env.DATABASE_URL = databaseUrl();
process.env.HIS_ALLOW = '127.0.0.1/8';
const { default: patient } = await import('../../functions/patient/handler.js');
const db = testDb();

const mine = uniqueOrg();
const other = uniqueOrg();
const key = generateApiKey();

beforeAll(async () => {
  await insertCaller(db, { kind: 'apikey', name: 'HIS 测试', orgs: [mine], ratePerMin: 0, keyPrefix: key.prefix, keyHash: key.hash });
  await patient.init?.();
});
afterAll(async () => patient.close?.());

const call = (method: string, path: string, body?: unknown) =>
  patient.app.request(path, {
    method,
    headers: { 'content-type': 'application/json', 'x-forwarded-for': '10.9.8.7', 'x-api-key': key.key },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

describe('a key bound to one org', () => {
  it('writes its own org’s records', async () => {
    const res = await call('POST', '/emrPatientInfo', samplePatient({ orgCode: mine, id: uniqueId('p') }));
    expect(res.status).toBe(200);
  });

  it('gets 403 naming the org for another org’s record, and nothing is stored or logged for it', async () => {
    const id = uniqueId('p');
    const res = await call('POST', '/emrPatientInfo', samplePatient({ orgCode: other, id }));
    expect(res.status).toBe(403);
    const body = await res.json();
    expect(body).toMatchObject({ result: false, errorCode: 'FORBIDDEN' });
    expect(body.desc).toContain(other);
    const n = async (sql: string) => Number((await db.query(sql, [other, id])).rows[0].n);
    expect(await n('SELECT count(*) AS n FROM emr_patient_info WHERE org_code = $1 AND id = $2')).toBe(0);
    expect(await n('SELECT count(*) AS n FROM ingest_rejection WHERE org_code = $1 AND record_id = $2')).toBe(0);
  });

  it('in a batch, the other org’s record is refused on its own and the rest are stored', async () => {
    const ok = samplePatient({ orgCode: mine, id: uniqueId('p') });
    const no = samplePatient({ orgCode: other, id: uniqueId('p') });
    const body = await (await call('POST', '/emrPatientInfo', [ok, no])).json();
    expect(body.results.map((r: { result: boolean; errorCode: string | null }) => r.errorCode)).toEqual([null, 'FORBIDDEN']);
  });

  it('cannot delete, look up or reconcile another org’s records', async () => {
    expect((await call('DELETE', '/emrPatientInfo', { orgCode: other, id: 'x' })).status).toBe(403);
    expect((await call('GET', `/emrPatientInfo/x?orgCode=${other}`)).status).toBe(403);
    expect((await call('POST', '/emrPatientInfo/_reconcile', { orgCode: other, date: '2026-11-01', ids: ['x'] })).status).toBe(403);
    expect((await call('POST', '/emrPatientInfo/_reconcile', { orgCode: mine, date: '2026-11-01', ids: ['x'] })).status).toBe(200);
  });

  it('a wrong key is 401, never a fallback to the source address', async () => {
    const res = await patient.app.request('/emrPatientInfo', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': '127.0.0.1', 'x-api-key': generateApiKey().key },
      body: JSON.stringify(samplePatient({ orgCode: mine, id: uniqueId('p') })),
    });
    expect(res.status).toBe(401);
  });
});
