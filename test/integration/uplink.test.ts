// The uplink end to end on real sockets and the real database: the push seals batches and sends
// them over HTTPS with the hospital's client certificate to platform simulators (national and
// provincial, each with its own SM2 key and TLS certificate from infra/dev/certs.ts), verifies the
// signed receipts into the delivery ledger, and gets through every fault switch of the simulator.
// Each test has its own destination and inserts its own outbox rows for it (the push's input).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { databaseUrl, testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { ensureDevUplinkFiles, type DevUplinkFiles } from '../../infra/dev/certs.js';
import { startPlatformSimulator, type Fault, type PlatformHandle } from '../../infra/simulators/platform.js';
import { destinationFromEnv, type Destination } from '../../shared/uplink/config.js';
import { deadLetters, pushDestination, replay, type PushOptions } from '../../shared/uplink/push.js';
import { postEnvelope } from '../../shared/uplink/client.js';
import { verifyReceipt } from '../../shared/uplink/envelope.js';
import { keyId, parseSm2PublicKey } from '../../shared/uplink/sm.js';

const db = testDb({ max: 4 });
let dir: string;
let keys: DevUplinkFiles;
let national: PlatformHandle;
let provincial: PlatformHandle;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cdc-uplink-'));
  keys = ensureDevUplinkFiles(join(dir, 'secrets'), 'h-test');
  const tls = { cert: keys.read('uplink-platform-tls-cert'), key: keys.read('uplink-platform-tls-key'), ca: keys.read('uplink-ca') };
  const hospitals = [{ name: 'h-test', publicKeyPem: keys.read('uplink-hospital-pubkey') }];
  national = await startPlatformSimulator({
    role: 'national',
    keyPem: keys.read('uplink-national-key'),
    hospitals,
    tls,
    storeFile: join(dir, 'national.ndjson'),
  });
  provincial = await startPlatformSimulator({ role: 'provincial', keyPem: keys.read('uplink-provincial-key'), hospitals, tls });
});
afterAll(async () => {
  await national?.close();
  await provincial?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A destination row of its own and its configuration from env + secret files, as the function reads them. */
async function destination(kind: 'national' | 'provincial' = 'national', resources: string | null = null): Promise<Destination> {
  const name = uniqueId('up').replace(/-/g, '_').slice(0, 40);
  // Disabled: other test files enqueue for every enabled destination; this one gets only its own rows.
  await db.query(`INSERT INTO uplink_destination (name, kind, enabled, resources) VALUES ($1, $2, false, $3)`, [name, kind, resources]);
  const row = (
    await db.query<{ name: string; kind: string; resources: string | null }>(`SELECT name, kind, resources FROM uplink_destination WHERE name = $1`, [name])
  ).rows[0]!;
  const sim = kind === 'national' ? national : provincial;
  const secret = (s: string) =>
    s === `uplink-${name}-pubkey` ? keys.read(`uplink-${kind}-pubkey`) : s.startsWith(`uplink-${name}-`) ? undefined : safeRead(s);
  return destinationFromEnv(row, { [`${name.toUpperCase()}_URL`]: sim.url, UPLINK_SENDER: 'h-test' }, secret);
}
function safeRead(s: string): string | undefined {
  try {
    return keys.read(s);
  } catch {
    return undefined;
  }
}

interface Row {
  resource?: string;
  org: string;
  id: string;
  version?: number;
  cls?: 'realtime' | '2h' | 'T+0' | 'T+1';
}
async function enqueue(dest: Destination, rows: Row[]): Promise<string[]> {
  const ids: string[] = [];
  for (const r of rows) {
    const res = await db.query<{ outbox_id: string }>(
      `INSERT INTO outbox (destination, resource, org_code, record_id, version, op, deadline_class, test_mode, payload)
       VALUES ($1, $2, $3, $4, $5, 'upsert', $6, false, $7) RETURNING outbox_id`,
      [dest.name, r.resource ?? 'emrPatientInfo', r.org, r.id, r.version ?? 1, r.cls ?? 'realtime', JSON.stringify({ id: r.id, orgCode: r.org, note: '测试' })],
    );
    ids.push(res.rows[0]!.outbox_id);
  }
  return ids;
}
const states = async (dest: Destination) =>
  (
    await db.query<{ record_id: string; version: number; state: string; last_error: string | null }>(
      `SELECT record_id, version, state, last_error FROM outbox WHERE destination = $1 ORDER BY outbox_id`,
      [dest.name],
    )
  ).rows;
const circuitRow = async (dest: Destination) =>
  (
    await db.query<{ state: string; failures: number; retry_at: Date; updated_at: Date; waiting: boolean }>(
      `SELECT state, failures, retry_at, updated_at, retry_at > now() AS waiting FROM uplink_circuit WHERE destination = $1`,
      [dest.name],
    )
  ).rows[0]!;
const at = (sim: PlatformHandle, org: string) => sim.records().filter((r) => r.orgCode === org);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fast: PushOptions = { backoffBaseMs: 200, openMs: 300, random: () => 0, timeoutMs: 5_000 };
async function withFault<T>(sim: PlatformHandle, f: Fault, fn: () => Promise<T>): Promise<T> {
  await sim.fault(f);
  try {
    return await fn();
  } finally {
    await sim.fault({ mode: 'none' });
  }
}

describe('a batch, signed and encrypted, over HTTPS with the client certificate', () => {
  it('reaches the platform and comes back with verified receipts in the delivery ledger', async () => {
    const dest = await destination();
    const org = uniqueOrg();
    await enqueue(dest, [
      { org, id: 'A' },
      { org, id: 'B' },
      { org, id: 'A', version: 2 },
    ]);
    const r = await pushDestination(db, dest, fast);
    expect(r).toMatchObject({ sent: 3, failed: 0, rejected: 0, batches: 1, circuit: 'closed' });
    expect(at(national, org).map((x) => [x.id, x.version, x.sender])).toEqual([
      ['A', 1, 'h-test'],
      ['B', 1, 'h-test'],
      ['A', 2, 'h-test'],
    ]);
    const ledger = (
      await db.query(`SELECT record_id, version, status, reason, receipt_sig FROM uplink_delivery WHERE destination = $1 ORDER BY delivery_id`, [dest.name])
    ).rows;
    expect(ledger.map((x) => [x.record_id, x.version, x.status])).toEqual([
      ['A', 1, 'accepted'],
      ['B', 1, 'accepted'],
      ['A', 2, 'accepted'],
    ]);
    // The stored receipt still verifies with the platform's key: the front can prove delivery.
    const batch = (await db.query(`SELECT batch_id, receipt, replayed FROM uplink_batch WHERE destination = $1`, [dest.name])).rows[0];
    const pub = parseSm2PublicKey(keys.read('uplink-national-pubkey'));
    const sent = { batchId: batch.batch_id, records: ledger.map((x) => ({ resource: 'emrPatientInfo', orgCode: org, id: x.record_id, version: x.version })) };
    expect(verifyReceipt(batch.receipt, pub, sent).receipts).toHaveLength(3);
    expect(ledger[0].receipt_sig).toBe(batch.receipt.sig.value);
    expect((await states(dest)).map((s) => s.state)).toEqual(['sent', 'sent', 'sent']);
  });

  it('is refused by the platform without a client certificate, or with a certificate of another CA', async () => {
    const noCert = await postEnvelope({ url: national.url, tls: { cert: '', key: '', ca: keys.read('uplink-ca') } }, 'x-1', '{}', 3000);
    expect(noCert.kind).toBe('network');
    const other = ensureDevUplinkFiles(join(dir, 'other'), 'stranger');
    const foreign = await postEnvelope(
      { url: national.url, tls: { cert: other.read('uplink-client-cert'), key: other.read('uplink-client-key'), ca: keys.read('uplink-ca') } },
      'x-2',
      '{}',
      3000,
    );
    expect(foreign.kind).toBe('network');
  });

  it('refuses plain http to anything but loopback', () => {
    expect(() => destinationFromEnv({ name: 'national', kind: 'national', resources: null }, { NATIONAL_URL: 'http://10.0.0.8:443' }, () => undefined)).toThrow(
      /only a loopback address may skip TLS/,
    );
    expect(() => destinationFromEnv({ name: 'national', kind: 'national', resources: null }, { NATIONAL_URL: 'https://nat.example' }, () => undefined)).toThrow(
      /uplink-national-pubkey/,
    );
  });
});

describe('fault switches', () => {
  it('a refusal that reopens by itself says so: /sim/faults reads none again once the listener is open', async () => {
    await national.fault({ mode: 'refuse', seconds: 0.3 });
    expect((await (await fetch(`${national.controlUrl}/sim/faults`)).json()).mode).toBe('refuse');
    await expect.poll(async () => (await (await fetch(`${national.controlUrl}/sim/faults`)).json()).mode, { timeout: 5000, interval: 100 }).toBe('none');
  });

  it('refused connections: the rows wait with backoff, then go', async () => {
    const dest = await destination();
    const org = uniqueOrg();
    await enqueue(dest, [{ org, id: 'A' }]);
    await withFault(national, { mode: 'refuse' }, async () => {
      const r = await pushDestination(db, dest, fast);
      expect(r).toMatchObject({ sent: 0, failed: 1, circuit: 'closed' });
      expect(r.error).toMatch(/ECONNREFUSED/);
      expect(r.waitingUntil).toBeDefined();
      expect((await states(dest))[0]).toMatchObject({ state: 'pending' });
      // Still backing off: a run that comes before the destination's retry time takes nothing. How
      // soon the next run comes is the machine's business — a file running beside this one
      // (test/backup, dumping and copying the cluster) has stalled the database past the 100 ms
      // backoff — so a run that came too late is seen for what it is: it tried again, was refused
      // again, and the backoff doubled (recordFailure). The check is then made inside the longer
      // backoff; by the fourth failure (800 ms) it must have been made, the fifth would open the
      // circuit.
      for (let failures = 1; ; failures++) {
        const c = await circuitRow(dest);
        expect(c).toMatchObject({ failures, state: 'closed' });
        expect(c.retry_at.getTime() - c.updated_at.getTime()).toBe(100 * 2 ** (failures - 1));
        expect((await states(dest))[0]).toMatchObject({ state: 'pending' });
        const again = await pushDestination(db, dest, fast);
        if (again.claimed === 0) {
          expect(again).toMatchObject({ sent: 0, failed: 0, waitingUntil: c.retry_at.toISOString() });
          break;
        }
        expect(failures, 'no run came within a backoff of 100, 200, 400 or 800 ms').toBeLessThan(4);
        expect(again).toMatchObject({ sent: 0, failed: 1, circuit: 'closed' });
        expect(again.error).toMatch(/ECONNREFUSED/);
      }
    });
    // Once the backoff is over by the database's clock (the one the push reads), the row goes.
    while ((await circuitRow(dest)).waiting) await sleep(10);
    expect(await pushDestination(db, dest, fast)).toMatchObject({ sent: 1, failed: 0 });
    expect(at(national, org)).toHaveLength(1);
  });

  it('500: exponential backoff, the circuit opens after K failures, a single record probes it, then all drain', async () => {
    const dest = await destination();
    const org = uniqueOrg();
    await enqueue(dest, [
      { org, id: 'A' },
      { org, id: 'B' },
      { org, id: 'C' },
    ]);
    const opts = { ...fast, breakerThreshold: 2, backoffBaseMs: 100, openMs: 400 };
    await withFault(national, { mode: 'down500' }, async () => {
      const r1 = await pushDestination(db, dest, opts);
      expect(r1).toMatchObject({ failed: 3, circuit: 'closed' });
      expect(r1.error).toMatch(/HTTP 500 \(unavailable: simulated outage\)/);
      await sleep(60);
      const r2 = await pushDestination(db, dest, opts);
      expect(r2).toMatchObject({ failed: 3, circuit: 'open' });
      const c = (await db.query(`SELECT state, failures, openings, retry_at - now() AS wait FROM uplink_circuit WHERE destination = $1`, [dest.name])).rows[0];
      expect(c).toMatchObject({ state: 'open', failures: 2, openings: 1 });
      // The opening is kept as an event, with the failure that caused it (the evaluation counts them).
      const events = (await db.query(`SELECT failures, error FROM uplink_circuit_event WHERE destination = $1`, [dest.name])).rows;
      expect(events).toEqual([{ failures: 2, error: expect.stringMatching(/HTTP 500/) }]);
      expect(await pushDestination(db, dest, opts)).toMatchObject({ claimed: 0, circuit: 'open' });
    });
    await sleep(250);
    const probe = await pushDestination(db, dest, opts);
    expect(probe.batches).toBeGreaterThanOrEqual(2); // one record probes, then the rest goes
    expect(probe).toMatchObject({ sent: 3, circuit: 'closed' });
    expect(at(national, org).map((x) => x.id)).toEqual(['A', 'B', 'C']);
    expect((await db.query(`SELECT state, failures FROM uplink_circuit WHERE destination = $1`, [dest.name])).rows[0]).toEqual({
      state: 'closed',
      failures: 0,
    });
  });

  it('429: Retry-After is honoured', async () => {
    const dest = await destination();
    const org = uniqueOrg();
    await enqueue(dest, [{ org, id: 'A' }]);
    await national.fault({ mode: 'rate429', retryAfter: 1, times: 1 });
    const r = await pushDestination(db, dest, fast);
    expect(r).toMatchObject({ sent: 0, failed: 1 });
    const wait = Date.parse(r.waitingUntil!) - Date.now();
    expect(wait).toBeGreaterThan(700);
    expect(wait).toBeLessThanOrEqual(1000);
    expect(await pushDestination(db, dest, fast)).toMatchObject({ claimed: 0 });
    await sleep(1050);
    expect(await pushDestination(db, dest, fast)).toMatchObject({ sent: 1 });
    // 429 is the platform pacing us, not failing: the breaker did not count it.
    expect((await db.query(`SELECT failures FROM uplink_circuit WHERE destination = $1`, [dest.name])).rows[0].failures).toBe(0);
  });

  it('timeout: the front gives up, retries the same batch id, and the platform answers the original outcome once', async () => {
    const dest = await destination();
    const org = uniqueOrg();
    await enqueue(dest, [
      { org, id: 'A' },
      { org, id: 'B' },
    ]);
    await national.fault({ mode: 'timeout', seconds: 1, times: 1 });
    const r = await pushDestination(db, dest, { ...fast, timeoutMs: 300 });
    expect(r).toMatchObject({ sent: 0, failed: 2 });
    expect(r.error).toMatch(/no answer within 300 ms/);
    await sleep(1100); // the held request completes at the platform: it did store the batch
    expect(at(national, org)).toHaveLength(2);
    const again = await pushDestination(db, dest, fast);
    expect(again).toMatchObject({ sent: 2 });
    expect(at(national, org)).toHaveLength(2);
    expect((await db.query(`SELECT replayed FROM uplink_batch WHERE destination = $1`, [dest.name])).rows).toEqual([{ replayed: true }]);
    expect((await db.query(`SELECT status FROM uplink_delivery WHERE destination = $1 ORDER BY delivery_id`, [dest.name])).rows.map((x) => x.status)).toEqual([
      'accepted',
      'accepted',
    ]);
  });

  it('slow answers within the timeout are fine', async () => {
    const dest = await destination();
    const org = uniqueOrg();
    await enqueue(dest, [{ org, id: 'A' }]);
    await withFault(national, { mode: 'slow', seconds: 0.4 }, async () => {
      const t0 = Date.now();
      expect(await pushDestination(db, dest, { ...fast, timeoutMs: 3000 })).toMatchObject({ sent: 1 });
      expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
    });
  });

  it('partial rejection: those rows are dead with the reason, the rest sent; a replay after the fix delivers them', async () => {
    const dest = await destination();
    const org = uniqueOrg();
    await enqueue(
      dest,
      ['A', 'B', 'C', 'D'].map((id) => ({ org, id })),
    );
    await withFault(national, { mode: 'partial', every: 2 }, async () => {
      expect(await pushDestination(db, dest, fast)).toMatchObject({ sent: 2, rejected: 2, failed: 0 });
    });
    const s = await states(dest);
    expect(s.map((x) => [x.record_id, x.state])).toEqual([
      ['A', 'sent'],
      ['B', 'dead'],
      ['C', 'sent'],
      ['D', 'dead'],
    ]);
    expect(s[1]!.last_error).toBe(`rejected by ${dest.name}: simulated rejection: every 2th record of a batch is refused`);
    const dead = await deadLetters(db, { destination: dest.name });
    expect(dead.map((d) => d.id)).toEqual(['B', 'D']);
    const ledger = (
      await db.query(`SELECT record_id, status, reason FROM uplink_delivery WHERE destination = $1 AND status = 'rejected' ORDER BY record_id`, [dest.name])
    ).rows;
    expect(ledger.map((x) => x.record_id)).toEqual(['B', 'D']);
    expect(ledger[0].reason).toMatch(/simulated rejection/);
    // The fault is fixed (switched off): the operator replays.
    const rep = await replay(db, { destination: dest.name, outboxIds: dead.map((d) => d.outboxId) });
    expect(rep).toEqual({ replayed: dead.map((d) => d.outboxId), superseded: [] });
    expect(await pushDestination(db, dest, fast)).toMatchObject({ sent: 2, rejected: 0 });
    expect(
      at(national, org)
        .map((x) => x.id)
        .sort(),
    ).toEqual(['A', 'B', 'C', 'D']);
    expect((await states(dest)).every((x) => x.state === 'sent')).toBe(true);
  });

  it('a partial-reject fault counts only batches it can act on: one-record batches pass untouched and leave it armed', async () => {
    const dest = await destination();
    const org = uniqueOrg();
    await national.fault({ mode: 'partial', every: 2, times: 1 });
    try {
      await enqueue(dest, [{ org, id: 'A' }]);
      expect(await pushDestination(db, dest, fast)).toMatchObject({ sent: 1, rejected: 0 });
      await enqueue(dest, [
        { org, id: 'B' },
        { org, id: 'C' },
      ]);
      expect(await pushDestination(db, dest, fast)).toMatchObject({ sent: 1, rejected: 1 });
      // Used up by the batch it acted on: the next one is whole again.
      await enqueue(dest, [
        { org, id: 'D' },
        { org, id: 'E' },
      ]);
      expect(await pushDestination(db, dest, fast)).toMatchObject({ sent: 2, rejected: 0 });
    } finally {
      await national.fault({ mode: 'none' });
    }
  });

  it('a dead version whose record has since been delivered in a later version is not replayed (order per key)', async () => {
    const dest = await destination();
    const org = uniqueOrg();
    await enqueue(dest, [
      { org, id: 'A', version: 1 },
      { org, id: 'X' },
    ]);
    await withFault(national, { mode: 'partial', every: 1, times: 1 }, () => pushDestination(db, dest, fast));
    await enqueue(dest, [{ org, id: 'A', version: 2 }]);
    expect(await pushDestination(db, dest, fast)).toMatchObject({ sent: 1 });
    const dead = await deadLetters(db, { destination: dest.name, orgCode: org });
    const rep = await replay(db, { destination: dest.name, orgCode: org });
    expect(rep.replayed).toEqual([dead.find((d) => d.id === 'X')!.outboxId]);
    expect(rep.superseded).toEqual([dead.find((d) => d.id === 'A')!.outboxId]);
  });

  it('nor is one whose later version is queued or on the wire (pending): sent after it, the old version would land last', async () => {
    const dest = await destination();
    const org = uniqueOrg();
    await enqueue(dest, [{ org, id: 'A', version: 1 }]);
    await withFault(national, { mode: 'partial', every: 1, times: 1 }, () => pushDestination(db, dest, fast));
    const [dead] = await deadLetters(db, { destination: dest.name, orgCode: org });
    // v2 queued (a push run may have it in a batch this very moment): v1 stays dead.
    await enqueue(dest, [{ org, id: 'A', version: 2 }]);
    expect(await replay(db, { destination: dest.name, orgCode: org })).toEqual({ replayed: [], superseded: [dead!.outboxId] });
    expect(await pushDestination(db, dest, fast)).toMatchObject({ sent: 1 });
    expect(at(national, org).map((x) => [x.id, x.version])).toEqual([['A', 2]]);
  });

  it('a record rejected alone in its batch is delivered by a replay: a new exchange, not the old batch id the platform answers with its first receipt', async () => {
    const dest = await destination();
    const org = uniqueOrg();
    await enqueue(dest, [{ org, id: 'A' }]);
    await withFault(national, { mode: 'partial', every: 1, times: 1 }, async () => {
      expect(await pushDestination(db, dest, fast)).toMatchObject({ sent: 0, rejected: 1 });
    });
    const dead = await deadLetters(db, { destination: dest.name, orgCode: org });
    expect(await replay(db, { destination: dest.name, outboxIds: dead.map((d) => d.outboxId) })).toMatchObject({ replayed: [dead[0]!.outboxId] });
    expect(await pushDestination(db, dest, fast)).toMatchObject({ sent: 1, rejected: 0 });
    expect(at(national, org).map((x) => x.id)).toEqual(['A']);
    const batches = (await db.query<{ batch_id: string }>('SELECT batch_id FROM uplink_batch WHERE destination = $1 ORDER BY batch_seq', [dest.name])).rows;
    expect(batches.map((b) => b.batch_id)).toEqual([batches[0]!.batch_id, `${batches[0]!.batch_id}-r1`]);
  });

  it('bad receipt signature: not acknowledged, counted, retried, and then acknowledged once', async () => {
    const dest = await destination();
    const org = uniqueOrg();
    await enqueue(dest, [{ org, id: 'A' }]);
    await national.fault({ mode: 'badReceiptSig', times: 1 });
    const r = await pushDestination(db, dest, fast);
    expect(r).toMatchObject({ sent: 0, failed: 1, badReceipts: 1 });
    expect(r.error).toMatch(/receipt not acknowledged: bad-receipt-signature/);
    expect((await states(dest))[0]).toMatchObject({ state: 'pending' });
    expect((await db.query(`SELECT bad_receipts FROM uplink_circuit WHERE destination = $1`, [dest.name])).rows[0].bad_receipts).toBe(1);
    expect((await db.query(`SELECT count(*)::int AS n FROM uplink_delivery WHERE destination = $1`, [dest.name])).rows[0].n).toBe(0);
    await sleep(150);
    expect(await pushDestination(db, dest, fast)).toMatchObject({ sent: 1, badReceipts: 0 });
    expect(at(national, org)).toHaveLength(1);
  });

  it('a batch refused for its content (422): rows are isolated, the poison row is dead after N refusals, the others go', async () => {
    const dest = await destination();
    const org = uniqueOrg();
    // version 0 breaks the contract's schema: the platform refuses the whole batch with 422.
    await enqueue(dest, [
      { org, id: 'A' },
      { org, id: 'P', version: 0 },
      { org, id: 'B' },
    ]);
    const opts = { ...fast, maxRefusals: 2, backoffBaseMs: 20 };
    const r1 = await pushDestination(db, dest, opts);
    expect(r1.error).toMatch(/HTTP 422 \(invalid-batch/);
    await sleep(40);
    await pushDestination(db, dest, opts);
    await sleep(40);
    await pushDestination(db, dest, opts);
    const s = await states(dest);
    expect(s.map((x) => [x.record_id, x.state])).toEqual([
      ['A', 'sent'],
      ['P', 'dead'],
      ['B', 'sent'],
    ]);
    expect(s[1]!.last_error).toMatch(/invalid-batch/);
    expect((await db.query(`SELECT failures FROM uplink_circuit WHERE destination = $1`, [dest.name])).rows[0].failures).toBe(0);
  });
});

describe('no transaction across the wire', () => {
  it('while a batch waits for a slow platform no transaction is open, and a second run does not send the same rows', async () => {
    const dest = await destination();
    const org = uniqueOrg();
    await enqueue(dest, [
      { org, id: 'S1' },
      { org, id: 'S2' },
    ]);
    // The run's connections carry a name of their own, so that pg_stat_activity shows exactly them.
    const app = uniqueId('push').replace(/-/g, '_');
    const named = new pg.Pool({ connectionString: databaseUrl(), max: 2, application_name: app });
    try {
      // The age of any transaction the run's connections have open, sampled while the platform holds
      // the batch for 2 s: the outcome's own short transactions last milliseconds (a moment of
      // 'idle in transaction' between their statements is fine); one open across the call would be
      // seen at 2 s.
      const ages: number[] = [];
      const holdsLock = async () =>
        (
          await db.query(
            `SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE a.application_name = $1 AND l.locktype = 'advisory' AND l.granted`,
            [app],
          )
        ).rowCount! > 0;
      await withFault(national, { mode: 'slow', seconds: 2 }, async () => {
        const run = pushDestination(named, dest, fast);
        const second = (async () => {
          // Once the first run holds the destination (its session's advisory lock): its new connection
          // can take a while on a loaded machine (10 s at most).
          const end = Date.now() + 10_000;
          while (!(await holdsLock()) && Date.now() < end) await sleep(20);
          return pushDestination(db, dest, fast);
        })();
        let done = false;
        void run.finally(() => (done = true));
        while (!done) {
          const a = await db.query<{ age: number | null }>(
            `SELECT extract(epoch FROM clock_timestamp() - xact_start)::float8 AS age FROM pg_stat_activity WHERE application_name = $1`,
            [app],
          );
          ages.push(...a.rows.map((x) => x.age ?? 0));
          await new Promise((r) => setTimeout(r, 50));
        }
        expect(await run).toMatchObject({ sent: 2, batches: 1 });
        expect(await second).toMatchObject({ sent: 0, claimed: 0, error: 'another push run holds this destination' });
      });
      expect(ages.length).toBeGreaterThan(10);
      expect(Math.max(...ages)).toBeLessThan(1);
      expect(at(national, org).map((x) => x.id)).toEqual(['S1', 'S2']);
    } finally {
      await named.end();
    }
  });

  it('a run killed after sending (its connection gone) leaves the rows pending and the destination leased; once the lease is over the next run sends them again and the platform knows them', async () => {
    const dest = await destination();
    const org = uniqueOrg();
    await enqueue(dest, [{ org, id: 'K1' }]);
    const leased = { ...fast, timeoutMs: 2000, leaseMarginMs: 0 };
    // The first run's connection is terminated by the database while the platform is answering.
    const app = uniqueId('kill').replace(/-/g, '_');
    const named = new pg.Pool({ connectionString: databaseUrl(), max: 1, application_name: app });
    // As the product's pool does (shared/db): a connection the server ends is an error handled, not thrown.
    named.on('error', () => undefined);
    named.on('connect', (c) => c.on('error', () => undefined));
    try {
      await withFault(national, { mode: 'slow', seconds: 1 }, async () => {
        const run = pushDestination(named, dest, leased).catch((e: Error) => e);
        // Once it has leased the destination, just before it sends (late on a loaded machine; 10 s at most).
        const end = Date.now() + 10_000;
        while ((await circuitRow(dest))?.waiting !== true && Date.now() < end) await sleep(20);
        await db.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, [app]);
        // The first run's lock went with its connection, but the batch may still be on the wire: a
        // second run takes the lock and claims nothing under the lease.
        expect(await pushDestination(db, dest, leased)).toMatchObject({ claimed: 0, sent: 0 });
        expect(await run).toBeInstanceOf(Error);
      });
    } finally {
      await named.end().catch(() => undefined);
    }
    expect((await states(dest)).map((x) => x.state)).toEqual(['pending']);
    // The destination's lease (the exchange's timeout) runs out; then the rows leave again.
    const due = await db.query<{ ms: number }>(
      `SELECT greatest(0, extract(epoch FROM retry_at - now()) * 1000)::float8 AS ms FROM uplink_circuit WHERE destination = $1`,
      [dest.name],
    );
    expect(due.rows[0]!.ms).toBeGreaterThan(0);
    expect(due.rows[0]!.ms).toBeLessThanOrEqual(2000);
    await new Promise((r) => setTimeout(r, due.rows[0]!.ms + 50));
    const again = await pushDestination(db, dest, leased);
    expect(again).toMatchObject({ sent: 1 });
    expect((await states(dest)).map((x) => x.state)).toEqual(['sent']);
    // Received once: the second send was the same batch id, recognised by the platform.
    expect(at(national, org).map((x) => x.id)).toEqual(['K1']);
  });
});

describe('order and classes', () => {
  it('realtime and 2h leave ahead of T+0 and T+1, and a later version never overtakes an earlier one', async () => {
    const dest = await destination();
    const org = uniqueOrg();
    await enqueue(dest, [
      { org, id: 'late-1', cls: 'T+1', resource: 'emrDischargeInfo' },
      { org, id: 'day-1', cls: 'T+0', resource: 'emrOrder' },
      { org, id: 'rt-1', cls: 'realtime' },
      // A released hold re-enqueues an earlier version behind a later one: version 2 is queued first.
      { org, id: 'rt-2', cls: 'realtime', version: 2 },
      { org, id: 'lab-1', cls: '2h', resource: 'emrExLab' },
      { org, id: 'rt-2', cls: 'realtime', version: 1 },
      { org, id: 'late-1', cls: 'T+1', resource: 'emrDischargeInfo', version: 2 },
    ]);
    const r = await pushDestination(db, dest, { ...fast, maxRecords: 2 });
    expect(r).toMatchObject({ sent: 7, failed: 0 });
    const got = at(national, org).map((x) => `${x.id}@${x.version}`);
    expect(got.slice(0, 3).sort()).toEqual(['rt-1@1', 'rt-2@1', 'rt-2@2']);
    expect(got.indexOf('rt-2@1')).toBeLessThan(got.indexOf('rt-2@2'));
    expect(got.slice(3)).toEqual(['lab-1@1', 'day-1@1', 'late-1@1', 'late-1@2']);
  });

  it('batches are cut by bytes as well as by count', async () => {
    const dest = await destination();
    const org = uniqueOrg();
    await enqueue(
      dest,
      ['A', 'B', 'C', 'D', 'E'].map((id) => ({ org, id })),
    );
    const r = await pushDestination(db, dest, { ...fast, maxRecords: 100, maxBytes: 120 });
    expect(r.sent).toBe(5);
    expect(r.batches).toBeGreaterThanOrEqual(3);
    const sizes = (await db.query(`SELECT records FROM uplink_batch WHERE destination = $1 ORDER BY batch_seq`, [dest.name])).rows.map((x) => x.records);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(2);
  });
});

describe('the provincial platform', () => {
  it('takes only its resources, with its own key and endpoint, on the same code path', async () => {
    const dest = await destination('provincial', 'emrInfReport emrPatientInfo');
    expect(dest.resources).toEqual(['emrInfReport', 'emrPatientInfo']);
    const org = uniqueOrg();
    await enqueue(dest, [
      { org, id: 'P1', resource: 'emrPatientInfo' },
      { org, id: 'L1', resource: 'emrExLab', cls: '2h' },
      { org, id: 'C1', resource: 'emrInfReport' },
    ]);
    const r = await pushDestination(db, dest, fast);
    expect(r).toMatchObject({ sent: 2, skipped: 1 });
    expect(
      at(provincial, org)
        .map((x) => x.resource)
        .sort(),
    ).toEqual(['emrInfReport', 'emrPatientInfo']);
    expect(at(national, org)).toEqual([]);
    const s = await states(dest);
    expect(s.find((x) => x.record_id === 'L1')).toMatchObject({ state: 'skipped', last_error: 'resource not taken by this destination' });
    const batch = (await db.query(`SELECT platform_key_id FROM uplink_batch WHERE destination = $1`, [dest.name])).rows[0];
    expect(batch.platform_key_id).toBe(keyId(parseSm2PublicKey(keys.read('uplink-provincial-pubkey'))));
    expect(batch.platform_key_id).not.toBe(keyId(parseSm2PublicKey(keys.read('uplink-national-pubkey'))));
  });
});
