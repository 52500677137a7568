// `faas-cli invoke` against the front: it has no path flag and sends text/plain unless told, so a
// receive function takes a record at its root for its primary resource, another of its resources by
// `?resource=` (faas-cli's --query), and says how to set the content type when it gets text/plain.
// Exactly the requests faas-cli sends: POST <gateway>/function/<fn>[.openfaas-fn][?query], no auth.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sample } from '../../infra/simulators/samples.js';
import { testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { startStackRuntime, type StackRuntime } from '../setup/stack-runtime.js';

let front: StackRuntime;
const db = testDb();
beforeAll(async () => {
  front = await startStackRuntime('faas-cli-invoke');
}, 120_000);
afterAll(async () => {
  await front?.close();
});

const invoke = (fn: string, body: unknown, contentType = 'application/json') =>
  fetch(`${front.rt.gatewayUrl}/function/${fn}`, { method: 'POST', headers: { 'content-type': contentType }, body: JSON.stringify(body) });

describe('faas-cli invoke on a receive function', () => {
  it('stores a record of the primary resource posted at the root (faas-cli invoke patient --content-type application/json)', async () => {
    const org = uniqueOrg();
    const id = uniqueId('p');
    const res = await invoke('patient', sample('emrPatientInfo', { orgCode: org, id, seed: 4 }));
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toMatchObject({ result: true, id, status: 'created' });
    expect((await db.query('SELECT count(*) FROM emr_patient_info WHERE org_code = $1 AND id = $2', [org, id])).rows[0].count).toBe('1');
  });

  it('takes another of its resources by ?resource= (faas-cli invoke patient --query resource=baseDept), also as <fn>.openfaas-fn', async () => {
    const org = uniqueOrg();
    const dept = sample('baseDept', { orgCode: org, id: uniqueId('d'), seed: 5 });
    const res = await fetch(`${front.rt.gatewayUrl}/function/patient.openfaas-fn?resource=baseDept`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(dept),
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect((await db.query('SELECT count(*) FROM base_dept WHERE org_code = $1', [org])).rows[0].count).toBe('1');
    const wrong = await fetch(`${front.rt.gatewayUrl}/function/patient?resource=emrExLab`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(dept),
    });
    expect(wrong.status).toBe(404);
    expect(((await wrong.json()) as { desc: string }).desc).toContain('本函数不接收 emrExLab');
  });

  it('answers faas-cli’s default text/plain with 415 saying which flag to add', async () => {
    const res = await invoke('patient', sample('emrPatientInfo', { orgCode: uniqueOrg(), id: uniqueId('p'), seed: 6 }), 'text/plain');
    expect(res.status).toBe(415);
    expect(((await res.json()) as { desc: string }).desc).toContain('--content-type application/json');
  });
});
