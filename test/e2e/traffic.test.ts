// End to end under realistic traffic: the generator's default mix (some parents late on purpose,
// some invalid records, some updates) through the runtime's data port into every receive function,
// PostgreSQL, and — by the push function invoked through the gateway — to a platform simulator.
//
// Isolation: the test database is shared with other test files that run their own runtimes, whose
// push functions forward the `national` destination's rows to their own simulators. So this test
// forwards through a destination of its own (enabled for the test, its URL known only to this
// runtime's push function) and this runtime's push leaves `national` alone (no NATIONAL_URL).
// Nudges and the cron are off: the test invokes the push itself until its rows have drained.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomInt } from 'node:crypto';
import { testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import type { RuntimeHandle } from '../../infra/runtime/index.js';
import { startStackRuntime, type StackRuntime } from '../setup/stack-runtime.js';
import { startPlatformSimulator, type PlatformHandle } from '../../infra/simulators/platform.js';
import { runTraffic, type TrafficSummary } from '../../infra/simulators/traffic.js';
import { resources } from '../../schemas/index.js';
import { basicAuthHeader } from '../../shared/http/basic.js';

const SEED = Number(process.env.TRAFFIC_SEED ?? 20261126);
const COUNT = 300;
const dest = `trf${randomInt(36 ** 5, 36 ** 6).toString(36)}`;
const orgs = [uniqueOrg(), uniqueOrg(), uniqueOrg()];
const db = testDb();

let rt: RuntimeHandle;
let sim: PlatformHandle;
let front: StackRuntime | undefined;
let summary: TrafficSummary;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  sim = await startPlatformSimulator({ role: 'national' });
  await db.query(`INSERT INTO uplink_destination (name, kind, enabled) VALUES ($1, 'simulator', true)`, [dest]);
  // The test drives the push (nudges go to a closed port); the autoscaler keeps its defaults.
  front = await startStackRuntime('traffic', { NATIONAL_URL: sim.url }, { autoscaler: undefined });
  rt = front.rt;
  // The push function, redeployed through the gateway API with this test's destination and without
  // the shared national one (faas-cli's PUT /system/functions).
  const auth = basicAuthHeader(rt.credentials);
  const current = (await (await fetch(`${rt.gatewayUrl}/system/function/push`, { headers: { authorization: auth } })).json()) as {
    image: string;
    envVars: Record<string, string>;
    labels: Record<string, string>;
    annotations: Record<string, string>;
  };
  const envVars = { ...current.envVars, NATIONAL_URL: '', [`${dest.toUpperCase()}_URL`]: sim.url };
  const put = await fetch(`${rt.gatewayUrl}/system/functions`, {
    method: 'PUT',
    headers: { authorization: auth, 'content-type': 'application/json' },
    body: JSON.stringify({
      service: 'push',
      image: current.image,
      envVars,
      labels: current.labels,
      annotations: current.annotations,
      // stack.yml's secrets for push, the personal-data keys among them (docs/keys.md).
      secrets: ['cdc-database-url', 'basic-auth-user', 'basic-auth-password', 'pii-field-keys', 'pii-hash-key'],
    }),
  });
  expect(put.status, await put.text()).toBe(202);
}, 180_000);

afterAll(async () => {
  await db.query(`UPDATE uplink_destination SET enabled = false WHERE name = $1`, [dest]).catch(() => undefined);
  await front?.close();
  await sim?.close();
});

describe(`generated HIS traffic through the data port (seed ${SEED})`, () => {
  it('answers every valid record 2xx and every invalid one 4xx, never 5xx', { timeout: 120_000 }, async () => {
    summary = await runTraffic({
      baseUrl: rt.portUrls.data!,
      rate: 60,
      count: COUNT,
      seed: SEED,
      orgCodes: orgs,
      idPrefix: uniqueId('trf'),
      outOfOrderShare: 0.05,
      invalidShare: 0.03,
      updateShare: 0.02,
      concurrency: 8,
    });
    const { acknowledgedRecords: _list, ...brief } = summary;
    const why = `seed ${SEED}: ${JSON.stringify(brief)}`;
    expect(summary.sent, why).toBe(COUNT);
    expect(summary.errors, why).toBe(0);
    expect(summary.unexpected, why).toMatchObject({ validRejected: 0, invalidAccepted: 0 });
    expect(summary.rejected, why).toBeGreaterThan(0);
    expect(summary.acknowledged + summary.rejected, why).toBe(COUNT);
    // The late parents made the front hold children.
    expect(summary.held, why).toBeGreaterThan(0);
  });

  it('stores every acknowledged record as a row, at its version or later', async () => {
    expect(summary, 'the traffic ran').toBeDefined();
    const byResource = new Map<string, typeof summary.acknowledgedRecords>();
    for (const a of summary.acknowledgedRecords) byResource.set(a.resource, [...(byResource.get(a.resource) ?? []), a]);
    for (const [name, acks] of byResource) {
      const table = resources[name]!.table;
      const rows = await db.query<{ org_code: string; id: string; rec_version: number }>(
        `SELECT org_code, id, rec_version FROM ${table} WHERE org_code = ANY($1::varchar[]) AND id = ANY($2::varchar[])`,
        [orgs, acks.map((a) => a.id)],
      );
      const stored = new Map(rows.rows.map((r) => [`${r.org_code}|${r.id}`, r.rec_version]));
      for (const a of acks) {
        const v = stored.get(`${a.orgCode}|${a.id}`);
        expect(v, `seed ${SEED}: ${name} ${a.orgCode}/${a.id} acknowledged (v${a.version}) but not stored`).toBeDefined();
        expect(v!).toBeGreaterThanOrEqual(a.version);
      }
    }
  });

  it('delivers every acknowledged record version that was not held to the platform exactly once', { timeout: 120_000 }, async () => {
    expect(summary, 'the traffic ran').toBeDefined();
    const waiting = async () =>
      Number(
        (await db.query(`SELECT count(*) AS n FROM outbox WHERE destination = $1 AND org_code = ANY($2::varchar[]) AND state = 'pending'`, [dest, orgs]))
          .rows[0].n,
      );
    const end = Date.now() + 90_000;
    let left = await waiting();
    let runs = 0;
    let last = '';
    while (left > 0) {
      if (Date.now() > end) throw new Error(`seed ${SEED}: ${left} outbox rows of ${dest} still pending after ${runs} push runs; last answer: ${last}`);
      const res = await fetch(`${rt.gatewayUrl}/function/push`, { method: 'POST', body: '' }).catch(() => undefined);
      runs++;
      last = res ? `HTTP ${res.status} ${(await res.text()).slice(0, 600)}` : 'no answer';
      // The redeployed replica may still be starting (or the old one answering without our destination).
      if (!res?.ok || !last.includes(`"destination":"${dest}"`)) await sleep(300);
      left = await waiting();
    }
    const got = new Map<string, number>();
    for (const r of sim.records()) {
      if (!orgs.includes(r.orgCode)) continue;
      const k = `${r.resource}|${r.orgCode}|${r.id}|${r.version}`;
      got.set(k, (got.get(k) ?? 0) + 1);
    }
    const notHeld = summary.acknowledgedRecords.filter((a) => !a.held);
    expect(notHeld.length).toBeGreaterThan(COUNT / 2);
    for (const a of notHeld) {
      const k = `${a.resource}|${a.orgCode}|${a.id}|${a.version}`;
      expect(got.get(k), `seed ${SEED}: ${k} acknowledged, reached the platform ${got.get(k) ?? 0} times`).toBe(1);
    }
    // Held children whose parent came later were released and delivered too, once.
    const released = (
      await db.query<{ resource: string; org_code: string; record_id: string; version: number }>(
        `SELECT resource, org_code, record_id, version FROM outbox WHERE destination = $1 AND org_code = ANY($2::varchar[]) AND state = 'sent'`,
        [dest, orgs],
      )
    ).rows;
    for (const a of summary.acknowledgedRecords.filter((x) => x.held)) {
      const sent = released.some((r) => r.resource === a.resource && r.org_code === a.orgCode && r.record_id === a.id && r.version === a.version);
      if (sent) expect(got.get(`${a.resource}|${a.orgCode}|${a.id}|${a.version}`), `held ${a.resource} ${a.id}`).toBe(1);
    }
    // Nothing arrived that the front did not acknowledge (no invalid record, no phantom version).
    const acked = new Set(summary.acknowledgedRecords.map((a) => `${a.resource}|${a.orgCode}|${a.id}|${a.version}`));
    for (const k of got.keys()) expect(acked.has(k), `seed ${SEED}: ${k} reached the platform but was never acknowledged`).toBe(true);
    // The simulator answers queries on its control listener when it has one (on its main URL otherwise).
    const control = (sim as { url: string; controlUrl?: string }).controlUrl ?? sim.url;
    const stats = (await (await fetch(`${control}/uplink/v1/stats`)).json()) as { duplicates: number };
    expect(stats.duplicates).toBe(0);
  });
});
