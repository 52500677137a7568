// The push function's forwarding against the platform simulator on loopback, on the real database.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { startPlatformSimulator, type PlatformHandle } from '../../infra/simulators/platform.js';
import { pushDestination, lockKey, resetCircuit } from '../../shared/uplink/push.js';
import { destinationFromEnv, type Destination } from '../../shared/uplink/config.js';
import { upsertRecord, retireRecord } from '../../shared/ingest/index.js';
import { emrPatientInfo } from '../../schemas/index.js';
import { samplePatient } from '../../infra/simulators/his.js';

const db = testDb({ max: 6 });
let sim: PlatformHandle;
// Each test pushes to its own destination and asserts on its own org's rows only: other test files
// write to every enabled destination at the same time.
async function destination(): Promise<string> {
  const name = uniqueId('dest').replace(/-/g, '_').slice(0, 40);
  await db.query(`UPDATE uplink_destination SET enabled = false WHERE name LIKE 'dest_%'`);
  await db.query(`INSERT INTO uplink_destination (name, kind, enabled) VALUES ($1, 'national', true)`, [name]);
  return name;
}
const ctx = () => ({ callId: null, test: false, now: new Date() });
// Plain http to the loopback simulator with no key secrets: the development keys (config.ts).
const to = (name: string): Destination =>
  destinationFromEnv({ name, kind: 'national', resources: null }, { [`${name.toUpperCase()}_URL`]: sim.url }, () => undefined);

beforeAll(async () => {
  sim = await startPlatformSimulator({ role: 'national' });
});
afterAll(async () => {
  await db.query(`UPDATE uplink_destination SET enabled = false WHERE name LIKE 'dest_%'`);
  await sim.close();
});

async function fault(mode: 'none' | 'down500') {
  await fetch(`${sim.url}/sim/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ mode }) });
}

describe('push', () => {
  it('delivers every version of a record in order and marks the rows sent', async () => {
    const dest = await destination();
    const org = uniqueOrg();
    const id = uniqueId('p');
    const rec = samplePatient({ orgCode: org, id });
    await upsertRecord(db, emrPatientInfo, rec, ctx());
    await upsertRecord(db, emrPatientInfo, { ...rec, tel: '13800000001' }, ctx());
    await retireRecord(db, emrPatientInfo, { orgCode: org, id }, ctx());
    const r = await pushDestination(db, to(dest));
    expect(r).toMatchObject({ failed: 0 });
    expect(r.sent).toBeGreaterThanOrEqual(3);
    const got = sim.records().filter((x) => x.orgCode === org && x.id === id);
    expect(got.map((x) => [x.version, x.op])).toEqual([
      [1, 'upsert'],
      [2, 'upsert'],
      [3, 'retire'],
    ]);
    const q = await fetch(`${sim.url}/uplink/v1/records?orgCode=${org}&id=${id}`);
    expect((await q.json()).count).toBe(3);
    const states = (await db.query(`SELECT state FROM outbox WHERE destination = $1 AND org_code = $2`, [dest, org])).rows.map((x) => x.state);
    expect(states).toEqual(['sent', 'sent', 'sent']);
  });

  it('keeps rows pending with backoff while the platform fails, then delivers them once', async () => {
    const dest = await destination();
    const org = uniqueOrg();
    const id = uniqueId('p');
    await upsertRecord(db, emrPatientInfo, samplePatient({ orgCode: org, id }), ctx());
    await fault('down500');
    try {
      const r = await pushDestination(db, to(dest));
      expect(r).toMatchObject({ sent: 0 });
      expect(r.failed).toBeGreaterThanOrEqual(1);
      const row = (
        await db.query(`SELECT state, attempts, next_attempt_at > now() AS later, last_error FROM outbox WHERE destination = $1 AND org_code = $2`, [dest, org])
      ).rows[0];
      expect(row).toMatchObject({ state: 'pending', attempts: 1, later: true });
      expect(row.last_error).toContain('500');
      // Nothing is due yet: a second run sends nothing, and a later version waits behind it.
      await upsertRecord(db, emrPatientInfo, { ...samplePatient({ orgCode: org, id }), tel: '13800000002' }, ctx());
      await pushDestination(db, to(dest));
      expect(sim.records().filter((x) => x.orgCode === org)).toEqual([]);
    } finally {
      await fault('none');
    }
    await resetCircuit(db, dest); // the operator's "retry now": clears the backoff of the destination and its rows
    expect(await pushDestination(db, to(dest))).toMatchObject({ failed: 0 });
    const got = sim.records().filter((x) => x.orgCode === org && x.id === id);
    expect(got.map((x) => x.version)).toEqual([1, 2]);
  });

  it('does not run twice at once for one destination', async () => {
    const dest = await destination();
    const holder = await db.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [lockKey(dest)]);
      const r = await pushDestination(db, to(dest));
      expect(r.error).toMatch(/another push run/);
    } finally {
      await holder.query('SELECT pg_advisory_unlock($1)', [lockKey(dest)]);
      holder.release();
    }
  });
});
