// The warning loop through the running front: a class-A diagnosis posted on port 8881 becomes a
// pending case with its 2-hour clock once the warning function runs (the cron's call, made here by
// hand through the gateway), listed for operators only.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sample } from '../../infra/simulators/samples.js';
import { formatLocal } from '../../shared/time/index.js';
import { uniqueId, uniqueOrg } from '../setup/db.js';
import { startStackRuntime, type StackRuntime } from '../setup/stack-runtime.js';

let front: StackRuntime;

beforeAll(async () => {
  front = await startStackRuntime('warning');
}, 120_000);

afterAll(async () => {
  await front?.close();
});

const auth = () => ({ authorization: 'Basic ' + Buffer.from(`${front.rt.credentials.user}:${front.rt.credentials.password}`).toString('base64') });

async function his(resource: string, body: unknown) {
  const res = await fetch(`${front.rt.portUrls.data}/hclient/emr/receive/${resource}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status, await res.clone().text()).toBe(200);
}

describe('warning through the running front', () => {
  it('a plague diagnosis on 8881 becomes a class-A case due 2 hours after the diagnosis', { timeout: 60_000 }, async () => {
    const org = uniqueOrg();
    const p = uniqueId('p');
    await his('emrPatientInfo', sample('emrPatientInfo', { orgCode: org, id: p, seed: 1 }));
    const at = formatLocal(new Date(Date.now() - 600_000));
    await his('emrActivityInfo', { ...sample('emrActivityInfo', { orgCode: org, id: uniqueId('dx'), patientId: p, seed: 2 }), wmDiseaseCode: 'A20.0', wmDiseaseName: '腺鼠疫', diseaseCode: '', diseaseName: '', diagnoseTime: at, activityTime: at });

    const gw = front.rt.gatewayUrl;
    for (let i = 0; i < 20; i++) {
      const run = await fetch(`${gw}/function/warning`, { method: 'POST', headers: { 'x-topic': 'cron-function' } });
      expect(run.status).toBe(200);
      const body = (await run.json()) as { evaluated: number; skipped?: string };
      if (!body.skipped && body.evaluated === 0) break;
    }
    expect((await fetch(`${gw}/function/warning/cases?org=${org}`)).status).toBe(401);
    const list = (await (await fetch(`${gw}/function/warning/cases?org=${org}`, { headers: auth() })).json()) as { cases: Array<{ caseId: string; patientId: string; disease: string; state: string; classA: boolean; firstAt: string; dueAt: string }> };
    expect(list.cases.map((c) => [c.patientId, c.disease, c.state, c.classA])).toEqual([[p, '鼠疫', 'to_confirm', true]]);
    const c = list.cases[0]!;
    expect(new Date(c.dueAt).getTime() - new Date(c.firstAt).getTime()).toBe(2 * 3_600_000);
    const detail = (await (await fetch(`${gw}/function/warning/cases/${c.caseId}`, { headers: auth() })).json()) as { evidence: Array<{ kind: string; effect: string; trigger_id: string; detail: string }>; events: Array<{ to_state: string }> };
    expect(detail.evidence.map((e) => `${e.kind}/${e.effect}/${e.trigger_id}/${e.detail}`)).toEqual(['diagnosis/raise/icd10/A20.0']);
    expect(detail.events.map((e) => e.to_state)).toEqual(['to_confirm']);
  });
});
