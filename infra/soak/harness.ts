/**
 * The fault harness behind `test/e2e/faults.test.ts` (short) and `make soak` (long): a private
 * PostgreSQL, the runtime with stack.yml (every receive function, push with a fast cron and the
 * nudges on), and the national platform simulator over HTTPS with the hospital's client
 * certificate; HIS traffic from the generator while a fault schedule runs; then a drain, a replay
 * of the dead letters, and the reconciliation of what the HIS was told against what the platform
 * holds. docs/faults.md explains the counts.
 *
 *   const stack = await startStack({ dir });
 *   const report = await runFaultScenario(stack, { seed: 1, durationS: 70, rate: 40 });
 *   await stack.close();
 *
 * Nothing here fixes or retries anything on the front's behalf except what an operator would do
 * (POST /circuits/reset when the open circuit would outlast the drain, POST /replay of dead letters).
 */
import { join, resolve } from 'node:path';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startPostgres, type RunningPostgres } from '../dev/postgres.js';
import { migrate } from '../db/migrate.js';
import { ensureDevUplinkFiles } from '../dev/certs.js';
import { bootStack } from '../runtime/boot.js';
import type { RuntimeHandle } from '../runtime/index.js';
import { startPlatformSimulator, type Fault, type PlatformHandle, type Received } from '../simulators/platform.js';
import { runTraffic, type Acknowledged, type TrafficSummary } from '../simulators/traffic.js';
import { resources } from '../../schemas/index.js';
import { basicAuthHeader } from '../../shared/http/basic.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The hospital's name at the platform (the sender name in every envelope). */
export const SENDER = 'fault-front';
/** Receive functions (stack.yml) whose replicas the schedule kills, and push. */
export const RECEIVE_FUNCTIONS = ['patient', 'diagnosis', 'card', 'lab', 'exam', 'order', 'death', 'record'] as const;
/** Records the front makes itself (day close): not HIS records, left out of the reconciliation. */
const FRONT_MADE = new Set(['dailySummary', 'dayCompleteness']);

export interface StackOptions {
  /** A fresh working folder: PostgreSQL cluster, secrets, logs, the simulator's store. */
  dir: string;
  /** The push function's cron schedule (redeployed through the gateway API). Default `@every 3s`. */
  pushSchedule?: string;
  /** Receive functions nudge the push after each commit. Default true. */
  nudge?: boolean;
  log?: (line: string) => void;
}

export interface Stack {
  dir: string;
  pg: RunningPostgres;
  /** A pool of the harness's own (for reconciliation); survives PostgreSQL restarts. */
  db: pg.Pool;
  rt: RuntimeHandle;
  sim: PlatformHandle;
  dataUrl: string;
  /** Fast shutdown of PostgreSQL, `downMs` without it, start on the same dir and port. */
  restartPostgres(downMs?: number): Promise<void>;
  /** POST /function/push through the gateway (as a manual run, or as the cron with `cron`). */
  push(cron?: boolean): Promise<{ status: number; text: string }>;
  /** Calls one of push's operator routes through the gateway. */
  pushApi(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: unknown }>;
  close(): Promise<void>;
}

export async function startStack(o: StackOptions): Promise<Stack> {
  const log = o.log ?? (() => undefined);
  const dir = o.dir;
  const pgDir = join(dir, 'pg');
  let pgServer = await startPostgres({ dataDir: pgDir, fsync: false });
  await migrate(pgServer.url);
  const db = new pg.Pool({ connectionString: pgServer.url, max: 3, connectionTimeoutMillis: 5_000 });
  db.on('error', () => undefined);

  // Keys and certificates: the platform's in keys/, only what the front may hold in its secrets.
  const keys = ensureDevUplinkFiles(join(dir, 'keys'), SENDER);
  const secrets: Record<string, string> = {};
  for (const s of ['uplink-national-pubkey', 'uplink-hospital-key', 'uplink-client-cert', 'uplink-client-key', 'uplink-ca']) secrets[s] = keys.read(s);

  const sim = await startPlatformSimulator({
    role: 'national',
    keyPem: keys.read('uplink-national-key'),
    hospitals: [{ name: SENDER, publicKeyPem: keys.read('uplink-hospital-pubkey') }],
    tls: { cert: keys.read('uplink-platform-tls-cert'), key: keys.read('uplink-platform-tls-key'), ca: keys.read('uplink-ca') },
    storeFile: join(dir, 'national.ndjson'),
  });

  // infra/runtime/boot.ts: pushes nudged through this runtime's gateway (with nudge: false, at a
  // closed port: only the cron pushes), the cron and the autoscaler on, the logs in the working folder.
  const { rt } = await bootStack({
    name: 'soak',
    databaseUrl: pgServer.url,
    secrets,
    stackFile: join(root, 'stack.yml'),
    nudge: o.nudge !== false,
    env: { NATIONAL_URL: sim.url },
    runtime: { logsDir: join(dir, 'logs'), cron: { timezone: 'Asia/Shanghai' }, autoscaler: undefined },
  });
  await redeployPush(rt, { UPLINK_SENDER: SENDER }, { schedule: o.pushSchedule ?? '@every 3s' });
  log(`stack up: postgres ${pgServer.port}, gateway ${rt.gatewayUrl}, data ${rt.portUrls.data}, platform ${sim.url} (control ${sim.controlUrl})`);

  const push = async (cron = false) => {
    try {
      const res = await fetch(`${rt.gatewayUrl}/function/push`, {
        method: 'POST',
        body: '',
        headers: cron ? { 'x-topic': 'cron-function', 'x-connector': 'cron-connector' } : {},
        signal: AbortSignal.timeout(70_000),
      });
      return { status: res.status, text: await res.text() };
    } catch (err) {
      return { status: 0, text: (err as Error).message };
    }
  };
  const pushApi = async (method: 'GET' | 'POST', path: string, body?: unknown) => {
    try {
      const res = await fetch(`${rt.gatewayUrl}/function/push${path}`, {
        method,
        // Operator routes: the gateway's basic-auth credentials (docs/his-auth.md).
        headers: {
          authorization: basicAuthHeader(rt.credentials),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await res.text();
      let json: unknown = text;
      try {
        json = JSON.parse(text);
      } catch {
        // kept as text
      }
      return { status: res.status, json };
    } catch (err) {
      return { status: 0, json: (err as Error).message };
    }
  };

  let closed = false;
  return {
    dir,
    get pg() {
      return pgServer;
    },
    db,
    rt,
    sim,
    dataUrl: rt.portUrls.data!,
    async restartPostgres(downMs = 2_000) {
      const port = pgServer.port;
      await pgServer.stop();
      await sleep(downMs);
      pgServer = await startPostgres({ dataDir: pgDir, port, fsync: false });
    },
    push,
    pushApi,
    async close() {
      if (closed) return;
      closed = true;
      await rt.close().catch(() => undefined);
      await sim.close().catch(() => undefined);
      await db.end().catch(() => undefined);
      await pgServer.stop().catch(() => undefined);
    },
  };
}

/**
 * Redeploys the push function through the gateway API (faas-cli's PUT /system/functions) with extra
 * environment and annotations, and waits until the replica that answers runs with them.
 */
export async function redeployPush(rt: RuntimeHandle, env: Record<string, string>, annotations: Record<string, string> = {}): Promise<void> {
  const auth = basicAuthHeader(rt.credentials);
  const current = (await (await fetch(`${rt.gatewayUrl}/system/function/push`, { headers: { authorization: auth } })).json()) as {
    image: string;
    envVars: Record<string, string>;
    labels: Record<string, string>;
    annotations: Record<string, string>;
  };
  const put = await fetch(`${rt.gatewayUrl}/system/functions`, {
    method: 'PUT',
    headers: { authorization: auth, 'content-type': 'application/json' },
    body: JSON.stringify({
      service: 'push',
      image: current.image,
      envVars: { ...current.envVars, ...env },
      labels: current.labels,
      annotations: { ...current.annotations, ...annotations },
      // stack.yml's secrets for push, the personal-data keys among them (docs/keys.md).
      secrets: ['cdc-database-url', 'basic-auth-user', 'basic-auth-password', 'pii-field-keys', 'pii-hash-key'],
    }),
  });
  if (put.status !== 202) throw new Error(`redeploying push answered ${put.status}: ${await put.text()}`);
  const end = Date.now() + 30_000;
  for (;;) {
    const st = (await (await fetch(`${rt.gatewayUrl}/system/function/push`, { headers: { authorization: auth } })).json()) as {
      envVars: Record<string, string>;
    };
    if (Object.entries(env).every(([k, v]) => st.envVars[k] === v) && (await rt.waitForReplicas('push', 5_000))) {
      // The old replica drains after the new one is ready: give it a moment to leave the rotation.
      await sleep(500);
      return;
    }
    if (Date.now() > end) throw new Error('push was not redeployed within 30 s');
    await sleep(200);
  }
}

// ---- the fault schedule ------------------------------------------------------------------------

/** mulberry32: a small seeded PRNG, so one seed gives one schedule. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type FaultStep =
  | { kind: 'kill'; fn: string }
  | { kind: 'sim'; fault: Fault; label: string }
  | { kind: 'refuse'; seconds: number }
  | { kind: 'pg-restart'; downMs: number };

/**
 * One cycle of the schedule: every fault once. The order is fixed within a cycle (so a short run
 * sees each one), the killed functions are drawn from the seed. A platform fault given `times`
 * switches itself off after that many batch requests.
 */
export function faultCycle(r: () => number, outageS: number): FaultStep[] {
  const anyReceive = () => RECEIVE_FUNCTIONS[Math.floor(r() * RECEIVE_FUNCTIONS.length)]!;
  const anyFn = () => (r() < 0.3 ? 'push' : anyReceive());
  return [
    { kind: 'kill', fn: 'patient' },
    { kind: 'sim', fault: { mode: 'down500', times: 3 }, label: '500 ×3' },
    { kind: 'kill', fn: 'push' },
    { kind: 'refuse', seconds: outageS },
    { kind: 'pg-restart', downMs: 2_000 },
    { kind: 'sim', fault: { mode: 'rate429', retryAfter: 2, times: 2 }, label: '429 Retry-After 2 ×2' },
    { kind: 'kill', fn: 'lab' },
    // Held longer than the push's 15 s client timeout: the platform stores the batch after the
    // front gave up on it, so the retry meets the batch id (or the versions) again.
    { kind: 'sim', fault: { mode: 'timeout', seconds: 17, times: 1 }, label: 'timeout 17 s ×1' },
    { kind: 'sim', fault: { mode: 'slow', seconds: 3, times: 3 }, label: 'slow 3 s ×3' },
    { kind: 'kill', fn: anyReceive() },
    { kind: 'sim', fault: { mode: 'partial', every: 2, times: 3 }, label: 'partial reject every 2nd ×3' },
    { kind: 'sim', fault: { mode: 'badReceiptSig', times: 2 }, label: 'bad receipt signature ×2' },
    { kind: 'kill', fn: anyFn() },
  ];
}

// ---- observing the HIS side --------------------------------------------------------------------

/** What the HIS saw per request, beyond runTraffic's summary: answers it never got (5xx, network). */
export interface HisObservations {
  /** `${resource}|${org}|${id}` → records in requests that failed with 5xx or a network error. */
  unknown: Map<string, number>;
  unknownRecords: number;
  /** `${resource}|${org}|${id}|${version}` → when the 2xx acknowledgement arrived (ms). */
  ackAt: Map<string, number>;
}

export function observingFetch(obs: HisObservations): typeof fetch {
  return async (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    const resource = url.split('?')[0]!.split('/').pop()!;
    let items: Array<Record<string, unknown>> = [];
    try {
      const body = JSON.parse(String(init?.body ?? 'null')) as unknown;
      items = (Array.isArray(body) ? body : [body]).filter((x): x is Record<string, unknown> => !!x && typeof x === 'object');
    } catch {
      items = [];
    }
    const unknown = () => {
      for (const it of items) {
        const k = `${resource}|${String(it.orgCode)}|${String(it.id)}`;
        obs.unknown.set(k, (obs.unknown.get(k) ?? 0) + 1);
        obs.unknownRecords++;
      }
    };
    let res: Response;
    try {
      res = await fetch(input, init);
    } catch (err) {
      unknown();
      throw err;
    }
    if (res.status >= 500) {
      unknown();
      return res;
    }
    if (res.status >= 200 && res.status < 300) {
      const at = Date.now();
      try {
        const a = JSON.parse(await res.clone().text()) as {
          result?: boolean;
          id?: string;
          version?: number;
          results?: Array<{ result?: boolean; id?: string; version?: number }>;
        };
        const list = Array.isArray(a.results) ? a.results : [a];
        list.forEach((x, i) => {
          if (x?.result === true) obs.ackAt.set(`${resource}|${String(items[i]?.orgCode)}|${String(x.id ?? items[i]?.id)}|${Number(x.version)}`, at);
        });
      } catch {
        // The answer could not be read: the HIS did not see an acknowledgement either.
        unknown();
      }
    }
    return res;
  };
}

// ---- the scenario ------------------------------------------------------------------------------

export interface ScenarioOptions {
  seed: number;
  /** How long the HIS sends (s). The fault schedule is spread over this time. */
  durationS: number;
  /** Records per second. */
  rate: number;
  concurrency?: number;
  /** How long the drain may take after the load (s). Default 90. */
  drainS?: number;
  /** Pause before each fault step (s); default 2. */
  gapS?: number;
  /** How long the platform is down in the outage step (s); default 6. */
  outageS?: number;
  /** How long a platform fault step waits to be used up, and for the push to get through again (s); default 30. */
  stepS?: number;
  /** Fault cycles at most (default: as many as the load lasts, at least one). */
  maxCycles?: number;
  orgCodes?: string[];
  outOfOrderShare?: number;
  updateShare?: number;
  invalidShare?: number;
  /** Replay the dead letters after the drain and drain again (default true). */
  replayDead?: boolean;
  log?: (line: string) => void;
  /** Every `progressEveryS` seconds during the load and the drain (default 10). */
  progressEveryS?: number;
}

export interface Counts {
  /** Records the HIS generator sent. */
  sent: number;
  /** Answered 2xx with result true (the front said: stored). */
  acknowledged: number;
  /** Answered 4xx (deliberately invalid records). */
  rejected: number;
  /** In requests answered 5xx or not at all: stored or not, the HIS cannot know. */
  unknown: number;
  /** Acknowledged versions the platform holds exactly once. */
  delivered: number;
  /** Versions the platform stored more than once, or two versions with the same content. */
  duplicates: number;
  /** Acknowledged versions neither at the platform nor accounted for (dead, held). */
  lost: number;
  /** Versions that reached the platform after a later version of the same record. */
  outOfOrder: number;
  /** Records whose first version reached the platform before their parent's first version (unless
   * that parent was dead-lettered by the platform and arrived with the replay). */
  childBeforeParent: number;
  /** Acknowledged versions in the dead-letter state with the platform's reason (before the replay). */
  dead: number;
  /** Dead letters still dead after the replay: a later version was delivered (superseded). */
  deadAfterReplay: number;
  /** Acknowledged children still held because their parent was never stored (its request was unknown). */
  heldNoParent: number;
  /** Versions at the platform the HIS was not acknowledged for and no unknown request explains. */
  phantom: number;
  /** Unknown-request versions that did reach the platform (the request had committed). */
  unknownDelivered: number;
  /** Re-sends the platform absorbed (receipt `duplicate`, or a replayed batch id): harmless by design. */
  resentAbsorbed: number;
  /** Records the front made itself (day close) that reached the platform; not compared. */
  frontMade: number;
}

export interface ScenarioReport {
  seed: number;
  counts: Counts;
  timeline: string[];
  /** Up to 50 examples per kind, each with the key, version and what was found. */
  findings: { lost: string[]; duplicates: string[]; outOfOrder: string[]; childBeforeParent: string[]; phantom: string[]; dead: string[] };
  drained: boolean;
  pendingLeft: number;
  circuitResets: number;
  replay: { replayed: number; superseded: number };
  traffic: Omit<TrafficSummary, 'acknowledgedRecords'>;
  platform: ReturnType<PlatformHandle['stats']>;
  pushRuns: Record<string, number>;
  durationS: number;
  faultCycles: number;
}

const keyV = (r: { resource: string; orgCode: string; id: string; version: number }) => `${r.resource}|${r.orgCode}|${r.id}|${r.version}`;
const keyR = (r: { resource: string; orgCode: string; id: string }) => `${r.resource}|${r.orgCode}|${r.id}`;

export async function pendingRows(db: pg.Pool): Promise<number> {
  const r = await db.query<{ n: string }>(`SELECT count(*) AS n FROM outbox WHERE destination = 'national' AND state = 'pending'`);
  return Number(r.rows[0]!.n);
}

export async function runFaultScenario(stack: Stack, o: ScenarioOptions): Promise<ScenarioReport> {
  const log = o.log ?? (() => undefined);
  const t0 = Date.now();
  const timeline: string[] = [];
  const at = () => ((Date.now() - t0) / 1000).toFixed(1).padStart(6);
  const event = (what: string) => {
    const line = `t=${at()}s ${what}`;
    timeline.push(line);
    log(line);
  };
  const r = prng(o.seed);
  const orgs = o.orgCodes ?? ['440106101', '440106102', '440106103'];
  const obs: HisObservations = { unknown: new Map(), unknownRecords: 0, ackAt: new Map() };
  const sim = stack.sim;

  // Progress (and the soak's periodic counts).
  let phase = 'load';
  let sentSoFar = 0;
  let ackedSoFar = 0;
  const progressTimer = setInterval(
    () => {
      void (async () => {
        const pending = await pendingRows(stack.db).catch(() => NaN);
        const st = sim.stats();
        log(
          `t=${at()}s [${phase}] sent ${sentSoFar} acknowledged ${ackedSoFar} unknown ${obs.unknownRecords} | platform received ${st.received} duplicates-absorbed ${st.duplicates} replays ${st.replays} rejected ${st.rejected} | outbox pending ${pending}`,
        );
      })();
    },
    (o.progressEveryS ?? 10) * 1000,
  );
  progressTimer.unref();

  try {
    // ---- load and faults ----
    const gapS = o.gapS ?? 2;
    const outageS = o.outageS ?? 6;
    const stepS = o.stepS ?? 30;
    event(
      `load: ${o.rate} records/s for ${o.durationS} s (seed ${o.seed}); fault steps ${gapS} s apart, each platform fault waited for up to ${stepS} s, outages of ${outageS} s`,
    );
    let loadOver = false;
    let cyclesRun = 0;

    const faultNow = async (): Promise<Fault['mode'] | 'unknown'> => {
      try {
        return ((await (await fetch(`${sim.controlUrl}/sim/faults`)).json()) as Fault).mode;
      } catch {
        return 'unknown';
      }
    };
    /** Until the platform fault switched itself off (its `times` used up by batch requests). */
    const consumed = async (label: string) => {
      const end = Date.now() + stepS * 1000;
      while ((await faultNow()) !== 'none') {
        if (Date.now() > end) {
          await sim.fault({ mode: 'none' });
          return event(`${label}: not used up by the push within ${stepS} s, switched off`);
        }
        await sleep(100);
      }
    };
    const acknowledgedBatches = async (): Promise<number> => {
      try {
        return Number((await stack.db.query<{ n: string }>(`SELECT count(*) AS n FROM uplink_batch WHERE destination = 'national'`)).rows[0]!.n);
      } catch {
        return NaN;
      }
    };
    /** Until the push got a verified receipt again after the fault ended (a new uplink_batch row). */
    const recovered = async (label: string) => {
      const end = Date.now() + stepS * 1000;
      let base = await acknowledgedBatches();
      for (;;) {
        const n = await acknowledgedBatches();
        if (Number.isNaN(base)) base = n;
        else if (n > base) return event(`${label}: the push is through again`);
        if (Date.now() > end) return event(`${label}: no batch acknowledged within ${stepS} s after the fault; going on`);
        await sleep(200);
      }
    };
    const runStep = async (s: FaultStep) => {
      if (s.kind === 'kill') {
        // Preferably a replica with requests in flight (up to 3 s of looking), else any.
        const alive = () => stack.rt.replicas(s.fn).filter((x) => x.pid && x.state !== 'exited');
        const lookUntil = Date.now() + 3_000;
        let busy = alive().filter((x) => x.inflight > 0);
        while (busy.length === 0 && Date.now() < lookUntil) {
          await sleep(20);
          busy = alive().filter((x) => x.inflight > 0);
        }
        const reps = busy.length ? busy : alive();
        const victim = reps[Math.floor(r() * reps.length)];
        if (!victim?.pid) return event(`kill ${s.fn}: no replica running`);
        try {
          process.kill(victim.pid, 'SIGKILL');
          event(`SIGKILL ${s.fn} replica ${victim.id} (pid ${victim.pid}, ${victim.inflight} in flight)`);
        } catch (err) {
          event(`SIGKILL ${s.fn} pid ${victim.pid} failed: ${(err as Error).message}`);
        }
      } else if (s.kind === 'sim') {
        await sim.fault(s.fault);
        event(`platform fault: ${s.label}`);
        await consumed(s.label);
        await recovered(s.label);
      } else if (s.kind === 'refuse') {
        await sim.fault({ mode: 'refuse' });
        event(`platform down (connections refused) for ${s.seconds} s`);
        await sleep(s.seconds * 1000);
        await sim.fault({ mode: 'none' });
        event('platform back');
        await recovered('outage');
      } else {
        event(`PostgreSQL: fast shutdown, ${s.downMs} ms down, restart on port ${stack.pg.port}`);
        await stack.restartPostgres(s.downMs);
        event('PostgreSQL back');
      }
    };
    // Steps one after the other, `gapS` apart, each platform fault until it has hit and the push is
    // through again; cycles repeat while the load runs (at most `maxCycles`), at least one whole.
    const schedule = (async () => {
      for (;;) {
        for (const s of faultCycle(r, outageS)) {
          // After the load, only the first cycle is finished (a short load still sees every fault).
          if (loadOver && cyclesRun > 0) return event('load over: the rest of this fault cycle is skipped');
          await sleep(gapS * 1000);
          await runStep(s).catch((err) => event(`fault step ${s.kind} failed: ${(err as Error).message}`));
        }
        cyclesRun++;
        if (loadOver || cyclesRun >= (o.maxCycles ?? Infinity)) return;
      }
    })();

    // The load: `durationS`, then 10 s segments more while the first fault cycle is still running,
    // so that every fault meets traffic (a segment has a seed and id prefix of its own).
    let summary: TrafficSummary | undefined;
    let firstCycleDone = false;
    void schedule.then(() => (firstCycleDone = true));
    for (let seg = 0; ; seg++) {
      const left = o.durationS - (Date.now() - t0) / 1000;
      if (seg > 0 && left <= 0 && (firstCycleDone || cyclesRun > 0)) break;
      if (seg > 0 && left <= 0) event(`load extended by 10 s: the first fault cycle is still running (segment ${seg})`);
      const before = summary;
      const part = await runTraffic({
        baseUrl: stack.dataUrl,
        rate: o.rate,
        durationS: left > 1 ? left : 10,
        seed: o.seed + seg,
        orgCodes: orgs,
        idPrefix: seg === 0 ? `f${o.seed}` : `f${o.seed}s${seg}`,
        outOfOrderShare: o.outOfOrderShare ?? 0.05,
        updateShare: o.updateShare ?? 0.05,
        invalidShare: o.invalidShare ?? 0.01,
        concurrency: o.concurrency ?? 8,
        timeoutMs: 20_000,
        fetch: observingFetch(obs),
        onProgress: (p) => {
          sentSoFar = (before?.sent ?? 0) + p.sent;
          ackedSoFar = (before?.acknowledged ?? 0) + p.acknowledged;
        },
      });
      summary = before ? mergeSummaries(before, part) : part;
      sentSoFar = summary.sent;
      ackedSoFar = summary.acknowledged;
    }
    if (!summary) throw new Error('no traffic ran');
    // Only a later cycle can still be running (it is cut short); then the faults are cleared.
    loadOver = true;
    await schedule;
    await sim.fault({ mode: 'none' });
    event(`load over: sent ${summary.sent}, acknowledged ${summary.acknowledged}, rejected ${summary.rejected}, unknown ${obs.unknownRecords}; faults cleared`);

    // ---- drain ----
    phase = 'drain';
    let circuitResets = 0;
    const drain = async (label: string, seconds: number): Promise<{ drained: boolean; left: number }> => {
      const end = Date.now() + seconds * 1000;
      let left = NaN;
      let quiet = 0;
      for (;;) {
        left = await pendingRows(stack.db).catch(() => NaN);
        if (left === 0) {
          // Two empty looks a cron run apart: a held child released by the sweep shows up as pending.
          if (++quiet >= 2) return { drained: true, left: 0 };
          await stack.push(true);
          continue;
        }
        quiet = 0;
        if (Date.now() > end) return { drained: false, left };
        // An open circuit whose wait would outlast the drain: the operator's "retry now".
        const c = await stack.db
          .query<{ wait_s: number | null }>(`SELECT extract(epoch FROM (retry_at - now())) AS wait_s FROM uplink_circuit WHERE destination = 'national'`)
          .catch(() => ({ rows: [] as Array<{ wait_s: number | null }> }));
        const wait = Number(c.rows[0]?.wait_s ?? 0);
        if (wait > (end - Date.now()) / 1000 - 10) {
          await stack.pushApi('POST', '/circuits/reset', { destination: 'national' });
          circuitResets++;
          event(`${label}: circuit would wait ${wait.toFixed(0)} s more: POST /circuits/reset`);
        }
        await stack.push(false);
        await sleep(500);
      }
    };
    let d = await drain('drain', o.drainS ?? 90);
    event(d.drained ? 'drained: no pending outbox row' : `drain deadline passed with ${d.left} rows pending`);

    // ---- dead letters, then the operator's replay ----
    const outboxNow = async () =>
      (
        await stack.db.query<{
          outbox_id: string;
          resource: string;
          org_code: string;
          record_id: string;
          version: number;
          state: string;
          last_error: string | null;
        }>(`SELECT outbox_id, resource, org_code, record_id, version, state, last_error FROM outbox WHERE destination = 'national' ORDER BY outbox_id`)
      ).rows;
    const deadBefore = new Map<string, string>();
    for (const row of await outboxNow()) {
      if (row.state === 'dead')
        deadBefore.set(keyV({ resource: row.resource, orgCode: row.org_code, id: row.record_id, version: row.version }), row.last_error ?? '');
    }
    const replay = { replayed: 0, superseded: 0 };
    if ((o.replayDead ?? true) && deadBefore.size > 0) {
      phase = 'replay';
      for (const org of orgs) {
        const res = await stack.pushApi('POST', '/replay', { destination: 'national', orgCode: org });
        const j = res.json as { replayed?: string[]; superseded?: string[] };
        replay.replayed += j.replayed?.length ?? 0;
        replay.superseded += j.superseded?.length ?? 0;
        if (res.status !== 200) event(`replay ${org} answered ${res.status}: ${JSON.stringify(res.json).slice(0, 200)}`);
      }
      event(`replayed ${replay.replayed} dead letters (${replay.superseded} superseded by a delivered later version, left dead)`);
      d = await drain('replay drain', Math.max(30, (o.drainS ?? 90) / 2));
      event(d.drained ? 'replay drained' : `replay drain deadline passed with ${d.left} rows pending`);
    }

    // ---- reconciliation ----
    phase = 'reconcile';
    const report = await reconcile(
      { db: stack.db, records: () => sim.records(), resentAbsorbed: () => sim.stats().duplicates + sim.stats().replays },
      { orgs, acks: [...new Map(summary.acknowledgedRecords.map((x) => [keyV(x), x])).values()], obs, deadBefore },
    );
    const pushRuns = Object.fromEntries(
      (await stack.db.query<{ trigger: string; n: string }>(`SELECT trigger, count(*) AS n FROM push_run GROUP BY trigger`)).rows.map((x) => [
        x.trigger,
        Number(x.n),
      ]),
    );
    const { acknowledgedRecords: _a, ...traffic } = summary;
    report.counts.sent = summary.sent;
    report.counts.rejected = summary.rejected;
    return {
      seed: o.seed,
      counts: report.counts,
      timeline,
      findings: report.findings,
      drained: d.drained,
      pendingLeft: d.left,
      circuitResets,
      replay,
      traffic,
      platform: sim.stats(),
      pushRuns,
      durationS: Math.round((Date.now() - t0) / 1000),
      faultCycles: cyclesRun,
    };
  } finally {
    clearInterval(progressTimer);
    await sim.fault({ mode: 'none' }).catch(() => undefined);
  }
}

/** Two runs of the generator as one (counts added, lists joined, latency of the worse). */
function mergeSummaries(a: TrafficSummary, b: TrafficSummary): TrafficSummary {
  const add = (x: Record<string, number>, y: Record<string, number>) => {
    const out = { ...x };
    for (const [k, v] of Object.entries(y)) out[k] = (out[k] ?? 0) + v;
    return out;
  };
  return {
    sent: a.sent + b.sent,
    requests: a.requests + b.requests,
    acknowledged: a.acknowledged + b.acknowledged,
    acknowledgedByResource: add(a.acknowledgedByResource, b.acknowledgedByResource),
    held: a.held + b.held,
    rejected: a.rejected + b.rejected,
    rejectedByStatus: add(a.rejectedByStatus, b.rejectedByStatus),
    errors: a.errors + b.errors,
    errorSamples: [...a.errorSamples, ...b.errorSamples].slice(0, 20),
    unexpected: {
      validRejected: a.unexpected.validRejected + b.unexpected.validRejected,
      invalidAccepted: a.unexpected.invalidAccepted + b.unexpected.invalidAccepted,
      samples: [...a.unexpected.samples, ...b.unexpected.samples].slice(0, 20),
    },
    latencyMs: {
      p50: Math.max(a.latencyMs.p50, b.latencyMs.p50),
      p99: Math.max(a.latencyMs.p99, b.latencyMs.p99),
      max: Math.max(a.latencyMs.max, b.latencyMs.max),
    },
    durationS: a.durationS + b.durationS,
    recordsPerS: Math.round((a.sent + b.sent) / Math.max(1, a.durationS + b.durationS)),
    acknowledgedRecords: [...a.acknowledgedRecords, ...b.acknowledgedRecords],
  };
}

interface OutboxRow {
  resource: string;
  org_code: string;
  record_id: string;
  version: number;
  state: string;
  last_error: string | null;
  holds: string | null;
}

/** Where the reconciliation reads: the front's database and what the platform holds. */
export interface ReconcileSource {
  db: pg.Pool;
  /** Every record the platform stored, in order of arrival. */
  records(): Received[];
  /** Re-sends the platform absorbed (receipt `duplicate` or a replayed batch id), when it counts them. */
  resentAbsorbed?(): number;
}

/**
 * What the HIS was told against what the platform holds. Per acknowledged version: at the platform
 * once (delivered), or dead with the platform's reason (a partial reject: dead, or still dead after
 * the replay because a later version was delivered: superseded), or still held because its parent
 * was never stored; anything else is lost. Per platform record: an acknowledged version, or one a
 * request with an unknown outcome may have stored (at most as many unacknowledged versions of a
 * record as it had unknown requests); anything else is a phantom. Per record: versions in
 * increasing order of arrival at the platform.
 */
export async function reconcile(
  stack: ReconcileSource,
  a: { orgs: string[]; acks: Acknowledged[]; obs: HisObservations; deadBefore: Map<string, string> },
): Promise<{ counts: Counts; findings: ScenarioReport['findings'] }> {
  const orgSet = new Set(a.orgs);
  const findings: ScenarioReport['findings'] = { lost: [], duplicates: [], outOfOrder: [], childBeforeParent: [], phantom: [], dead: [] };
  const note = (list: string[], s: string) => {
    if (list.length < 50) list.push(s);
  };
  const all = stack.records().filter((x) => orgSet.has(x.orgCode));
  const frontMade = all.filter((x) => FRONT_MADE.has(x.resource)).length;
  const got = all.filter((x) => !FRONT_MADE.has(x.resource));

  // At the platform: how often each version, and per record the versions in order of arrival.
  const times = new Map<string, Received[]>();
  const arrival = new Map<string, Received[]>();
  for (const x of got) {
    times.set(keyV(x), [...(times.get(keyV(x)) ?? []), x]);
    arrival.set(keyR(x), [...(arrival.get(keyR(x)) ?? []), x]);
  }
  let duplicates = 0;
  for (const [k, list] of times) {
    if (list.length > 1) {
      duplicates++;
      note(findings.duplicates, `${k} stored ${list.length} times (batches ${list.map((x) => x.batchId).join(', ')})`);
    }
  }
  let outOfOrder = 0;
  const strip = (p: Record<string, unknown>) => JSON.stringify({ ...p, _mapVersion: undefined });
  for (const [k, list] of arrival) {
    for (let i = 1; i < list.length; i++) {
      if (list[i]!.version <= list[i - 1]!.version) {
        outOfOrder++;
        note(
          findings.outOfOrder,
          `${k}: v${list[i]!.version} (${list[i]!.receivedAt}, ${list[i]!.batchId}) arrived after v${list[i - 1]!.version} (${list[i - 1]!.receivedAt}, ${list[i - 1]!.batchId})`,
        );
      } else if (strip(list[i]!.payload) === strip(list[i - 1]!.payload)) {
        // Two versions with the same content: a retried request stored twice as two versions.
        duplicates++;
        note(findings.duplicates, `${k}: v${list[i - 1]!.version} and v${list[i]!.version} carry the same payload`);
      }
    }
  }

  // Parents before children: the first arrival of a record after the first arrival of each parent it names.
  const firstAt = new Map<string, number>();
  got.forEach((x, i) => {
    if (!firstAt.has(keyR(x))) firstAt.set(keyR(x), i);
  });
  const deadParent = new Set([...a.deadBefore.keys()].map((k) => k.split('|').slice(0, 3).join('|')));
  let childBeforeParent = 0;
  for (const [k, i] of firstAt) {
    const x = got[i]!;
    for (const p of resources[x.resource]?.parents ?? []) {
      const pid = x.payload[p.field];
      if (typeof pid !== 'string' || !pid) continue;
      const pk = `${p.resource}|${x.orgCode}|${pid}`;
      const j = firstAt.get(pk);
      if (j !== undefined && j > i && !deadParent.has(pk)) {
        childBeforeParent++;
        note(
          findings.childBeforeParent,
          `${k} v${x.version} (${x.receivedAt}, ${x.batchId}) arrived before its parent ${pk} v${got[j]!.version} (${got[j]!.receivedAt}, ${got[j]!.batchId})`,
        );
      }
    }
  }

  const outbox = (
    await stack.db.query<OutboxRow>(
      `SELECT o.resource, o.org_code, o.record_id, o.version, o.state, o.last_error,
              (SELECT string_agg(h.kind || ':' || h.target || '/' || h.value, ', ') FROM record_hold h
                WHERE h.resource = o.resource AND h.org_code = o.org_code AND h.record_id = o.record_id) AS holds
         FROM outbox o
        WHERE o.destination = 'national' AND o.org_code = ANY($1::varchar[])`,
      [a.orgs],
    )
  ).rows;
  const rowsOf = new Map<string, OutboxRow[]>();
  for (const x of outbox) {
    const k = keyV({ resource: x.resource, orgCode: x.org_code, id: x.record_id, version: x.version });
    rowsOf.set(k, [...(rowsOf.get(k) ?? []), x]);
  }
  /** Whether every parent a held child waits for is absent from the front's tables and was only
   * ever sent in requests of unknown outcome (an acknowledged parent that is absent is a loss). */
  // A parent that is stored but itself held for a parent that never came counts as absent too:
  // its children wait behind it (a lab item under a report whose patient never arrived).
  const parentsAbsent = async (child: { resource: string; id: string }, orgCode: string, depth = 0): Promise<boolean> => {
    const parents = (
      await stack.db.query<{ target: string; value: string }>(
        `SELECT target, value FROM record_hold WHERE resource = $1 AND org_code = $2 AND record_id = $3 AND kind = 'parent'`,
        [child.resource, orgCode, child.id],
      )
    ).rows;
    if (parents.length === 0 || depth > 4) return false;
    for (const { target: res, value: id } of parents) {
      const def = resources[res];
      if (!def) return false;
      const found = await stack.db.query(`SELECT 1 FROM ${def.table} WHERE org_code = $1 AND id = $2`, [orgCode, id]);
      if (found.rowCount) {
        const rc = await stack.db.query<{ state: string }>('SELECT state FROM record_receipt WHERE resource = $1 AND org_code = $2 AND record_id = $3', [
          res,
          orgCode,
          id,
        ]);
        const r0 = rc.rows[0];
        if (r0?.state === 'held' && (await parentsAbsent({ resource: res, id }, orgCode, depth + 1))) continue;
        return false;
      }
      if (!a.obs.unknown.has(`${res}|${orgCode}|${id}`)) return false;
      if (a.acks.some((x) => x.resource === res && x.orgCode === orgCode && x.id === id)) return false;
    }
    return true;
  };

  const acked = new Set<string>();
  let delivered = 0;
  let lost = 0;
  let dead = 0;
  let deadAfterReplay = 0;
  let heldNoParent = 0;
  for (const ack of a.acks) {
    const k = keyV(ack);
    acked.add(k);
    const n = times.get(k)?.length ?? 0;
    const rows = rowsOf.get(k) ?? [];
    if (a.deadBefore.has(k)) {
      dead++;
      if (!/^rejected by national: /.test(a.deadBefore.get(k)!)) note(findings.dead, `${k}: dead without the platform's reason: ${a.deadBefore.get(k)}`);
    }
    if (n >= 1) {
      delivered++;
      continue;
    }
    const deadRow = rows.find((x) => x.state === 'dead');
    if (deadRow && a.deadBefore.has(k) && /^(replayed after: )?rejected by national: /.test(deadRow.last_error ?? '')) {
      deadAfterReplay++;
      note(findings.dead, `${k}: dead (${deadRow.last_error})`);
      continue;
    }
    const heldRow = rows.find((x) => x.state === 'held');
    if (heldRow && (await parentsAbsent({ resource: heldRow.resource, id: heldRow.record_id }, ack.orgCode))) {
      heldNoParent++;
      continue;
    }
    lost++;
    note(
      findings.lost,
      `${k}: acknowledged${ack.held ? ' (held at ack)' : ''}, not at the platform; outbox ${rows.map((x) => `${x.state}${x.last_error ? ` (${x.last_error.slice(0, 120)})` : ''}${x.holds ? ` holds ${x.holds}` : ''}`).join(', ') || 'none'}`,
    );
  }

  // Nothing else: versions the HIS was not told about, unless a request with an unknown outcome explains them.
  let phantom = 0;
  let unknownDelivered = 0;
  const unackedPerRecord = new Map<string, string[]>();
  for (const k of times.keys()) {
    if (acked.has(k)) continue;
    const rec = k.split('|').slice(0, 3).join('|');
    unackedPerRecord.set(rec, [...(unackedPerRecord.get(rec) ?? []), k]);
  }
  for (const [rec, list] of unackedPerRecord) {
    const allowed = a.obs.unknown.get(rec) ?? 0;
    unknownDelivered += Math.min(allowed, list.length);
    if (list.length > allowed) {
      phantom += list.length - allowed;
      note(findings.phantom, `${list.join(', ')}: at the platform, never acknowledged (${allowed} request(s) of unknown outcome for ${rec})`);
    }
  }

  return {
    counts: {
      sent: 0,
      acknowledged: a.acks.length,
      rejected: 0,
      unknown: a.obs.unknownRecords,
      delivered,
      duplicates,
      lost,
      outOfOrder,
      childBeforeParent,
      dead,
      deadAfterReplay,
      heldNoParent,
      phantom,
      unknownDelivered,
      resentAbsorbed: stack.resentAbsorbed?.() ?? 0,
      frontMade,
    },
    findings,
  };
}

export function formatCounts(c: Counts): string {
  return [
    `sent ${c.sent}`,
    `acknowledged ${c.acknowledged}`,
    `delivered ${c.delivered}`,
    `duplicates ${c.duplicates}`,
    `lost ${c.lost}`,
    `out of order ${c.outOfOrder}`,
    `child before parent ${c.childBeforeParent}`,
    `dead ${c.dead} (after replay ${c.deadAfterReplay})`,
    `unknown ${c.unknown} (of which reached the platform ${c.unknownDelivered})`,
    `rejected 4xx ${c.rejected}`,
    `held, parent never stored ${c.heldNoParent}`,
    `phantom ${c.phantom}`,
    `re-sends absorbed by the platform ${c.resentAbsorbed}`,
  ].join(' | ');
}
