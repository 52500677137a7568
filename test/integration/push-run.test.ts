// A push run serves its destinations side by side (shared/uplink/push.ts pushRun, docs/uplink.md §7):
// a platform answering slowly does not hold the other platform's rows back until it is done.
// A database of its own: pushRun serves every enabled destination it finds.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { privateDatabase, uniqueId, uniqueOrg } from '../setup/db.js';
import { startPlatformSimulator, type PlatformHandle } from '../../infra/simulators/platform.js';
import { pushRun } from '../../shared/uplink/push.js';
import { upsertRecord } from '../../shared/ingest/index.js';
import { emrPatientInfo } from '../../schemas/index.js';
import { samplePatient } from '../../infra/simulators/his.js';

let priv: Awaited<ReturnType<typeof privateDatabase>>;
let slow: PlatformHandle;
let fast: PlatformHandle;

beforeAll(async () => {
  priv = await privateDatabase('pushrun');
  [slow, fast] = await Promise.all([startPlatformSimulator({ role: 'national' }), startPlatformSimulator({ role: 'provincial' })]);
  await priv.db.query('UPDATE uplink_destination SET enabled = false');
  // By name the slow one comes first: served one after the other, the fast one would wait for it.
  await priv.db.query(`INSERT INTO uplink_destination (name, kind, enabled) VALUES ('aslow', 'national', true), ('bfast', 'provincial', true)`);
});
afterAll(async () => {
  await Promise.all([slow?.close(), fast?.close()]);
  await priv?.drop();
});

describe('a push run with a slow platform', () => {
  it('delivers to the other platform while the slow one is still answering', { timeout: 60_000 }, async () => {
    const p = samplePatient({ orgCode: uniqueOrg(), id: uniqueId('pr') });
    await upsertRecord(priv.db, emrPatientInfo, p, { callId: null, test: false, now: new Date() });
    await slow.fault({ mode: 'slow', seconds: 4, times: 1 });
    const t0 = Date.now();
    const run = pushRun(priv.db, {
      orphans: false,
      orphanReleaseAfterH: 48,
      env: { ASLOW_URL: slow.url, BFAST_URL: fast.url },
      codes: async () => undefined,
    });
    while (!fast.records().some((r) => r.id === p.id) && Date.now() - t0 < 30_000) await new Promise((ok) => setTimeout(ok, 50));
    const fastAt = Date.now() - t0;
    const r = await run;
    const slowAt = Date.now() - t0;
    expect(r.results.map((x) => [x.destination, x.sent])).toEqual([
      ['aslow', 1],
      ['bfast', 1],
    ]);
    expect(slow.records().some((x) => x.id === p.id)).toBe(true);
    expect(slowAt).toBeGreaterThanOrEqual(4000);
    expect(fastAt).toBeLessThan(3000);
  });
});
