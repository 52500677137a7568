/**
 * uplink — forwarding to the platform (docs/bench.md), two measurements in one run:
 *
 * 1. Throughput with batching. Per round the outbox of a bench destination is pre-filled with N
 *    records (the traffic generator's default mix, version 1, realtime class), and
 *    `pushDestination` drains it to a platform simulator over HTTPS with the hospital's client
 *    certificate: claim (FOR UPDATE SKIP LOCKED) in batches of 200, seal (SM4 + SM2 key wrap + SM2
 *    signature), POST, verify the signed receipt, ledger (uplink_batch, uplink_delivery), mark sent.
 *    Baseline, "bare ingest": the simulator's own work on the same records in the same batches of
 *    200 over the same HTTPS + client-certificate connection setup, with the envelopes sealed before
 *    the clock starts and the receipts not checked — i.e. per batch: TLS handshake, POST, the
 *    platform's signature check, key unwrap, SM4 decrypt, schema validation, de-duplication,
 *    storing, receipt signing. Subject and baseline alternate within each round (fresh records each,
 *    so nothing is a duplicate). rate ratio = push records/s ÷ bare ingest records/s: what the
 *    front adds on top of what the platform needs anyway.
 * 2. End-to-end latency of the realtime class: the runtime (stack.yml: receive functions on the
 *    data port, push nudged after each commit, its per-minute cron as the safety net) on this
 *    database, the generator at its default rate (50 records/s, the traffic CLI's default) for
 *    `latencySeconds`; per realtime record from the HIS's 2xx acknowledgement (the moment the
 *    answer reached the generator) to the platform's `receivedAt` (same clock). Target p99 < 5 s.
 *
 * Uses its own destinations (a disabled one for 1; one enabled only during 2, so the receive
 * functions enqueue for it), never `national`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { ensureDevUplinkFiles, type DevUplinkFiles } from '../infra/dev/certs.js';
import { startPlatformSimulator, type PlatformHandle } from '../infra/simulators/platform.js';
import { generate, percentile, runTraffic } from '../infra/simulators/traffic.js';
import { bootStack } from '../infra/runtime/boot.js';
import type { RuntimeHandle } from '../infra/runtime/index.js';
import { freePort } from '../infra/runtime/replica.js';
import { observingFetch, redeployPush, type HisObservations } from '../infra/soak/harness.js';
import { resources } from '../schemas/index.js';
import { destinationFromEnv, type Destination } from '../shared/uplink/config.js';
import { postEnvelope } from '../shared/uplink/client.js';
import { sealEnvelope, type UplinkRecord } from '../shared/uplink/envelope.js';
import { pushDestination } from '../shared/uplink/push.js';
import { compare, memory, timed, writeResult } from './common.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const SENDER = 'bench-front';
const BATCH = 200;

export interface BenchUplinkOptions {
  db: pg.Pool;
  /** The database the pool points at (for the runtime's functions); default: the pool's connectionString. */
  databaseUrl?: string;
  /** Records per round (default 2000). */
  records?: number;
  /** Rounds (default 3). */
  rounds?: number;
  /** The traffic generator's seed (default 1). */
  seed?: number;
  /** How long the HIS sends for the latency measurement (default 30 s); 0 skips it. */
  latencySeconds?: number;
  /** HIS records/s for the latency measurement (default 50, the generator CLI's default). */
  rate?: number;
}

/** N records of the generator's default mix as the outbox holds them (valid ones, version 1). */
function recordsFor(n: number, seed: number, tag: string, orgs: string[]): UplinkRecord[] {
  const out: UplinkRecord[] = [];
  for (const it of generate({ seed, count: n * 2, orgCodes: orgs, idPrefix: tag })) {
    // Master data (departments, staff) keeps the hospital's own codes, the same in every run:
    // left out, so every record of the bench is new to the platform.
    if (!it.valid || !String(it.record.id).startsWith(tag)) continue;
    out.push({
      resource: it.resource,
      orgCode: String(it.record.orgCode),
      id: String(it.record.id),
      version: 1,
      op: 'upsert',
      deadlineClass: 'realtime',
      test: false,
      payload: it.record,
    });
    if (out.length === n) break;
  }
  return out;
}

async function fillOutbox(db: pg.Pool, dest: string, recs: UplinkRecord[]): Promise<void> {
  for (let i = 0; i < recs.length; i += 500) {
    const part = recs.slice(i, i + 500);
    const params: unknown[] = [];
    const values = part.map((r, j) => {
      params.push(dest, r.resource, r.orgCode, r.id, r.version, r.op, r.deadlineClass, r.test, JSON.stringify(r.payload));
      const b = j * 9;
      return `($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}, $${b + 6}, $${b + 7}, $${b + 8}, $${b + 9})`;
    });
    await db.query(
      `INSERT INTO outbox (destination, resource, org_code, record_id, version, op, deadline_class, test_mode, payload) VALUES ${values.join(', ')}`,
      params,
    );
  }
}

function secretReader(keys: DevUplinkFiles, dest: string): (name: string) => string | undefined {
  return (name) => {
    const file = name === `uplink-${dest}-pubkey` ? 'uplink-national-pubkey' : name;
    if (name.startsWith(`uplink-${dest}-`) && file === name) return undefined;
    try {
      return keys.read(file);
    } catch {
      return undefined;
    }
  };
}

export async function benchUplink(o: BenchUplinkOptions) {
  const db = o.db;
  const N = o.records ?? 2000;
  const rounds = o.rounds ?? 3;
  const seed = o.seed ?? 1;
  const databaseUrl = o.databaseUrl ?? (db as unknown as { options: { connectionString?: string } }).options.connectionString;
  const dir = mkdtempSync(join(tmpdir(), 'cdc-bench-uplink-'));
  const keys = ensureDevUplinkFiles(join(dir, 'keys'), SENDER);
  const tls = { cert: keys.read('uplink-platform-tls-cert'), key: keys.read('uplink-platform-tls-key'), ca: keys.read('uplink-ca') };
  const hospitals = [{ name: SENDER, publicKeyPem: keys.read('uplink-hospital-pubkey') }];
  const sims: PlatformHandle[] = [];
  const tag = randomInt(36 ** 4, 36 ** 5).toString(36);
  const before = memory();
  try {
    // ---- 1. throughput: push vs the platform's bare ingest ----
    const sim = await startPlatformSimulator({ role: 'national', keyPem: keys.read('uplink-national-key'), hospitals, tls });
    sims.push(sim);
    const destName = `bup${tag}`;
    await db.query(`INSERT INTO uplink_destination (name, kind, enabled) VALUES ($1, 'national', false)`, [destName]);
    const dest: Destination = destinationFromEnv(
      { name: destName, kind: 'national', resources: null },
      { [`${destName.toUpperCase()}_URL`]: sim.url, UPLINK_SENDER: SENDER },
      secretReader(keys, destName),
    );
    const orgs = ['440106201', '440106202', '440106203'];
    const subject: number[] = [];
    const baseline: number[] = [];
    const batches: number[] = [];
    // Warm-up, untimed: one batch each way (JIT, TLS session code, the claim's plan).
    await fillOutbox(db, destName, recordsFor(BATCH, seed + 1000, `bw${tag}`, orgs));
    await pushDestination(db, dest, { budgetMs: 60_000 });
    const warm = recordsFor(BATCH, seed + 1000, `bv${tag}`, orgs);
    await postEnvelope(
      { url: sim.url, tls: dest.tls! },
      `warm-${tag}`,
      sealEnvelope({ batchId: `warm-${tag}`, destination: destName, records: warm, sender: dest.sender, recipient: dest.platformKey }).body,
      30_000,
    );
    for (let round = 0; round < rounds; round++) {
      // Subject: the outbox pre-filled, then drained by the push.
      await fillOutbox(db, destName, recordsFor(N, seed + round, `bu${tag}r${round}`, orgs));
      await db.query('ANALYZE outbox');
      let sent = 0;
      subject.push(
        await timed(async () => {
          for (;;) {
            const r = await pushDestination(db, dest, { budgetMs: 600_000 });
            if (r.error || r.failed) throw new Error(`push failed: ${JSON.stringify(r)}`);
            sent += r.sent;
            batches.push(r.batches);
            if (r.claimed === 0) break;
          }
        }),
      );
      if (sent !== N) throw new Error(`push sent ${sent} of ${N}`);
      // Baseline: the same batches of fresh records, sealed ahead, POSTed straight to the platform.
      const recs = recordsFor(N, seed + round, `bb${tag}r${round}`, orgs);
      const bodies: Array<{ batchId: string; body: string }> = [];
      for (let i = 0; i < recs.length; i += BATCH) {
        const batchId = `bare-${tag}-${round}-${i}`;
        bodies.push({
          batchId,
          body: sealEnvelope({ batchId, destination: destName, records: recs.slice(i, i + BATCH), sender: dest.sender, recipient: dest.platformKey }).body,
        });
      }
      baseline.push(
        await timed(async () => {
          for (const b of bodies) {
            const a = await postEnvelope({ url: sim.url, tls: dest.tls! }, b.batchId, b.body, 30_000);
            if (a.kind !== 'answered' || a.status !== 200) throw new Error(`bare ingest: ${JSON.stringify(a).slice(0, 300)}`);
          }
        }),
      );
    }
    const stats = sim.stats();
    if (stats.duplicates !== 0) throw new Error(`the platform saw ${stats.duplicates} duplicates`);
    await db.query(`DELETE FROM outbox WHERE destination = $1`, [destName]);
    const cmp = compare(N, subject, baseline, {
      subject: `push: outbox claim + seal (SM4, SM2 wrap, SM2 sign) + HTTPS POST + receipt verify + ledger, batches of ${BATCH}`,
      baseline: `bare ingest: the simulator's verify + unwrap + decrypt + validate + store + sign receipt over the same HTTPS, envelopes sealed ahead, batches of ${BATCH}`,
    });

    // ---- 2. end-to-end latency, realtime class ----
    const latency =
      (o.latencySeconds ?? 30) > 0 ? await latencyRun(db, databaseUrl!, keys, hospitals, tls, tag, o.rate ?? 50, o.latencySeconds ?? 30, seed, sims) : null;

    const result = {
      scenario: 'uplink',
      date: new Date().toISOString(),
      records: N,
      rounds,
      batchSize: BATCH,
      ...cmp,
      batchesPerRound: batches.filter((b) => b > 0),
      latency,
      memory: { before, after: memory() },
      note:
        'rateRatio = push records/s ÷ bare ingest records/s (median rounds): the share of the platform-only rate the whole front-side path keeps. ' +
        'latency: realtime-class records, HIS 2xx acknowledgement → platform receivedAt, nudge on, cron every minute',
    };
    const file = writeResult('uplink', result);
    return { result, file };
  } finally {
    for (const s of sims) await s.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function latencyRun(
  db: pg.Pool,
  databaseUrl: string,
  keys: DevUplinkFiles,
  hospitals: Array<{ name: string; publicKeyPem: string }>,
  tls: { cert: string; key: string; ca: string },
  tag: string,
  rate: number,
  seconds: number,
  seed: number,
  sims: PlatformHandle[],
) {
  const sim = await startPlatformSimulator({ role: 'national', keyPem: keys.read('uplink-national-key'), hospitals, tls });
  sims.push(sim);
  const destName = `bul${tag}`;
  const secrets: Record<string, string> = { [`uplink-${destName}-pubkey`]: keys.read('uplink-national-pubkey') };
  for (const s of ['uplink-hospital-key', 'uplink-client-cert', 'uplink-client-key', 'uplink-ca']) secrets[s] = keys.read(s);
  let rt: RuntimeHandle | undefined;
  const orgs = ['440106301', '440106302', '440106303'];
  await db.query(`INSERT INTO uplink_destination (name, kind, enabled) VALUES ($1, 'national', true)`, [destName]);
  try {
    // infra/runtime/boot.ts, with this run's keys, the cron on and the autoscaler's defaults.
    ({ rt } = await bootStack({
      name: 'bench-uplink',
      databaseUrl,
      secrets,
      nudge: true,
      env: {
        // The shared `national` destination stays unconfigured for this runtime's push (other
        // scenarios' rows wait there); only this run's destination is sent.
        NATIONAL_URL: '',
        // Early warning is measured on its own (BENCH_SCENARIOS=warning): not nudged here.
        WARNING_NUDGE_URL: `http://127.0.0.1:${await freePort()}/async-function/warning`,
      },
      stackFile: join(root, 'stack.yml'),
      runtime: { cron: { timezone: 'Asia/Shanghai' }, autoscaler: undefined },
    }));
    await redeployPush(rt, { [`${destName.toUpperCase()}_URL`]: sim.url, UPLINK_SENDER: SENDER });
    const obs: HisObservations = { unknown: new Map(), unknownRecords: 0, ackAt: new Map() };
    const summary = await runTraffic({
      baseUrl: rt.portUrls.data!,
      rate,
      durationS: seconds,
      seed,
      orgCodes: orgs,
      idPrefix: `bl${tag}`,
      fetch: observingFetch(obs),
    });
    // Let the last records arrive (nudged: seconds), then match.
    const end = Date.now() + 30_000;
    const pending = async () =>
      Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM outbox WHERE destination = $1 AND state = 'pending'`, [destName])).rows[0]!.n);
    while ((await pending()) > 0 && Date.now() < end) await sleep(250);
    const realtime = new Set(
      Object.entries(resources)
        .filter(([, r]) => r.deadline === 'realtime')
        .map(([n]) => n),
    );
    const lat: number[] = [];
    let unmatched = 0;
    const byClass: Record<string, number> = {};
    for (const r of sim.records()) {
      byClass[r.deadlineClass] = (byClass[r.deadlineClass] ?? 0) + 1;
      if (!realtime.has(r.resource)) continue;
      const ack = obs.ackAt.get(`${r.resource}|${r.orgCode}|${r.id}|${r.version}`);
      if (ack === undefined) {
        unmatched++;
        continue;
      }
      lat.push(Date.parse(r.receivedAt) - ack);
    }
    lat.sort((a, b) => a - b);
    const p99 = percentile(lat, 99);
    return {
      rate,
      seconds,
      sent: summary.sent,
      acknowledged: summary.acknowledged,
      hisLatencyMs: summary.latencyMs,
      deliveredByClass: byClass,
      realtimeRecords: lat.length,
      unmatched,
      p50Ms: percentile(lat, 50),
      p90Ms: percentile(lat, 90),
      p99Ms: p99,
      maxMs: lat.at(-1) ?? 0,
      minMs: lat[0] ?? 0,
      targetP99Ms: 5000,
      met: lat.length > 0 && p99 < 5000,
      pushRuns: Object.fromEntries(
        (
          await db.query<{ trigger: string; n: string }>(
            `SELECT trigger, count(*) AS n FROM push_run WHERE started_at > now() - ($1 * interval '1 second') GROUP BY trigger`,
            [seconds + 60],
          )
        ).rows.map((x) => [x.trigger, Number(x.n)]),
      ),
    };
  } finally {
    await db.query(`UPDATE uplink_destination SET enabled = false WHERE name = $1`, [destName]).catch(() => undefined);
    await rt?.close();
  }
}
