// Master data keyed by another field: baseDept is keyed by deptCode (its id), in POST and DELETE.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { databaseUrl, testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { sample } from '../../infra/simulators/samples.js';

process.env.DATABASE_URL = databaseUrl();
process.env.HIS_ALLOW = '127.0.0.1/8';
const { default: patient } = await import('../../functions/patient/handler.js');
const db = testDb();
beforeAll(async () => patient.init?.());
afterAll(async () => patient.close?.());

const req = (method: string, body: unknown) =>
  patient.app.request('/baseDept', { method, headers: { 'content-type': 'application/json', 'x-forwarded-for': '127.0.0.1' }, body: JSON.stringify(body) });

it('a department is stored under its deptCode and retired by {orgCode, deptCode}', async () => {
  const org = uniqueOrg();
  const code = uniqueId('d').slice(0, 20);
  const rec = { ...sample('baseDept', { orgCode: org, id: code, seed: 1 }), deptCode: code };
  delete (rec as Record<string, unknown>).id;
  const res = await req('POST', rec);
  expect(res.status).toBe(200);
  expect(await res.json()).toMatchObject({ id: code, status: 'created' });
  const del = await req('DELETE', { orgCode: org, deptCode: code });
  expect(del.status).toBe(200);
  expect(await del.json()).toMatchObject({ id: code, status: 'retired', version: 2 });
  const row = (await db.query('SELECT rec_retired FROM base_dept WHERE org_code = $1 AND id = $2', [org, code])).rows[0];
  expect(row.rec_retired).toBe(true);
});
