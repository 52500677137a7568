// End to end: a HIS push on the data port (8881-style) goes through the runtime's gateway to a
// patient replica (the same bundle OpenFaaS would run), is stored in PostgreSQL, and the push
// function — nudged after commit — delivers it to the national platform simulator.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { startStackRuntime, type StackRuntime } from '../setup/stack-runtime.js';
import { redeployPush } from '../../infra/soak/harness.js';
import type { RuntimeHandle } from '../../infra/runtime/index.js';
import { startPlatformSimulator, type PlatformHandle } from '../../infra/simulators/platform.js';
import { samplePatient } from '../../infra/simulators/his.js';

let rt: RuntimeHandle;
let sim: PlatformHandle;
let front: StackRuntime | undefined;
let data: string;
const db = testDb();
const dest = `hp${Math.random().toString(36).slice(2, 8)}`;

beforeAll(async () => {
  sim = await startPlatformSimulator({ role: 'national' });
  await db.query(`INSERT INTO uplink_destination (name, kind, enabled) VALUES ($1, 'national', true)`, [dest]);
  front = await startStackRuntime(
    'e2e',
    {
      // This file's own national destination (below): the shared test database's `national` rows,
      // written by every other file, stay out of its way (and out of theirs).
      NATIONAL_URL: '',
      // Records nudge the push, as deployed ('' is stack.yml's own: the gateway by name).
      PUSH_NUDGE_URL: '',
    },
    { autoscaler: undefined },
  );
  rt = front.rt;
  await redeployPush(rt, { [`${dest.toUpperCase()}_URL`]: sim.url });
  data = rt.portUrls.data!;
});

afterAll(async () => {
  await db.query('UPDATE uplink_destination SET enabled = false WHERE name = $1', [dest]);
  await front?.close();
  await sim?.close();
});

/**
 * Waits for the platform to have received what `fn` looks for. The nudge starts the push; rows other
 * files write while this one runs also go to this file's destination, and a push run that ends at
 * its deadline with rows left is followed by no other nudge here (the cron is off), so the push is
 * also called every 5 s as its cron would (the nudge alone is tested in test/runtime/nudge.test.ts).
 */
async function until<T>(fn: () => T | undefined, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  let next = Date.now() + 5_000;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    if (Date.now() > next) {
      next = Date.now() + 5_000;
      void fetch(`${rt.gatewayUrl}/function/push`, { method: 'POST', headers: { 'x-topic': 'cron-function' } })
        .then((r) => r.body?.cancel())
        .catch(() => undefined);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('a HIS push on the data port', () => {
  it('reaches the national platform simulator, under the adapters’ path and the function path', { timeout: 90_000 }, async () => {
    const org = uniqueOrg();
    const a = samplePatient({ orgCode: org, id: uniqueId('e2e') });
    const b = samplePatient({ orgCode: org, id: uniqueId('e2e'), seed: 2 });
    const ra = await fetch(`${data}/hclient/emr/receive/emrPatientInfo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(a),
    });
    expect(ra.status).toBe(200);
    expect(await ra.json()).toMatchObject({ result: true, id: a.id, status: 'created' });
    expect(ra.headers.get('x-call-id')).toBeTruthy();
    const rb = await fetch(`${data}/function/patient/emrPatientInfo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(b),
    });
    expect(rb.status).toBe(200);
    const got = await until(() => {
      const mine = sim.records().filter((r) => r.orgCode === org);
      return mine.length >= 2 ? mine : undefined;
    });
    expect(got.map((r) => r.id).sort()).toEqual([a.id, b.id].sort());
    expect(got.find((r) => r.id === a.id)!.payload).toMatchObject({ patientName: a.patientName, operationTime: a.operationTime });
  });

  it('answers a bad record with 400 through the runtime, and it never reaches the platform', { timeout: 90_000 }, async () => {
    const org = uniqueOrg();
    // Longer than any code, national or the hospital's own (a local code up to 64 characters waits for its mapping).
    const bad = { ...samplePatient({ orgCode: org, id: uniqueId('e2e') }), genderCode: 'm'.repeat(65) };
    const res = await fetch(`${data}/hclient/emr/receive/emrPatientInfo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(bad),
    });
    expect(res.status).toBe(400);
    expect((await res.json()).errors).toEqual([expect.objectContaining({ field: 'genderCode', rule: 'maxLength' })]);
    // A later good record of the same org does arrive, so the bad one had its chance to show up.
    const good = samplePatient({ orgCode: org, id: uniqueId('e2e') });
    expect(
      (
        await fetch(`${data}/hclient/emr/receive/emrPatientInfo`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(good),
        })
      ).status,
    ).toBe(200);
    await until(() => (sim.records().some((r) => r.id === good.id) ? true : undefined));
    expect(
      sim
        .records()
        .filter((r) => r.orgCode === org)
        .map((r) => r.id),
    ).toEqual([good.id]);
  });

  it('serves the interface documents at the data port root', async () => {
    const doc = await fetch(`${data}/openapi.json`);
    expect(doc.status).toBe(200);
    expect(Object.keys((await doc.json()).paths)).toContain('/hclient/emr/receive/emrExLabItem');
    const page = await fetch(`${data}/openapi.html`);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
  });

  it('an unknown resource is a 404 naming it', async () => {
    const res = await fetch(`${data}/hclient/emr/receive/emrNoSuchThing`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(404);
  });
});
