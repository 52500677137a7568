// Crashes of the whole front under HIS load (docs/faults.md, "Crashes"): `make up`'s own entry
// (dist/runtime/up.mjs, its bundle of infra/dev/up.ts) runs as a child process on free ports with a data folder of its own, the HIS
// generator sends, and then
//   1. PostgreSQL's postmaster is killed with SIGKILL: `make up` must bring it back by itself and the
//      data port must answer 200 again, without anyone's help;
//   2. every process of the front (make up, the runtime, every replica, PostgreSQL, the simulator) is
//      killed with SIGKILL at once, as in a power cut, and `make up` is started again on the same
//      folder and ports, as systemd would.
// After the load, the outbox drains and every record version the HIS was acknowledged with a 2xx is
// at the national platform simulator (its append-only store survives the crash) exactly once, in
// order per record, and nothing else is.
//
// CRASH_SEED picks the traffic; CRASH_SECONDS (default 50) and CRASH_RATE (25/s) the load.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatCounts, observingFetch, pendingRows, reconcile, type HisObservations } from '../../infra/soak/harness.js';
import { runtimeBundle } from '../../infra/root.js';
import { stablePorts } from '../setup/ports.js';
import type { Received } from '../../infra/simulators/platform.js';
import { sample } from '../../infra/simulators/samples.js';
import { runTraffic, type TrafficSummary } from '../../infra/simulators/traffic.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SEED = Number(process.env.CRASH_SEED ?? 20261203);
const SECONDS = Number(process.env.CRASH_SECONDS ?? 50);
const RATE = Number(process.env.CRASH_RATE ?? 25);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

let dir: string;
let env: NodeJS.ProcessEnv;
let dataUrl: string;
let up: ChildProcess | undefined;
const upLog: string[] = [];
const timeline: string[] = [];
const t0 = Date.now();
const event = (what: string) => {
  const line = `t=${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s ${what}`;
  timeline.push(line);
  if (process.env.CRASH_LOG === '1') process.stdout.write(`[crash] ${line}\n`);
};

/** Starts `make up`'s entry and waits until it says the functions are running. */
async function startUp(): Promise<ChildProcess> {
  const child = spawn(process.execPath, [runtimeBundle('up')], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (b: Buffer) => {
    for (const l of b.toString().split('\n')) if (l.trim()) upLog.push(l);
    if (upLog.length > 400) upLog.splice(0, upLog.length - 400);
  };
  child.stderr!.on('data', keep);
  await new Promise<void>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`make up did not start within 150 s:\n${upLog.slice(-40).join('\n')}`)), 150_000);
    child.stdout!.on('data', (b: Buffer) => {
      keep(b);
      if (b.toString().includes('Ctrl-C stops everything')) {
        clearTimeout(timer);
        ok();
      }
    });
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      fail(new Error(`make up exited (${code ?? sig}) while starting:\n${upLog.slice(-40).join('\n')}`));
    });
  });
  return child;
}

/** Every live process below `pid` (children, grandchildren, …), from /proc. */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      // /proc/<pid>/stat: "pid (comm) state ppid ...": comm may hold spaces and parentheses.
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(e), ppid);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [c, pp] of parent) {
      if (pp === p) {
        out.push(c);
        walk(c);
      }
    }
  };
  walk(pid);
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The embedded PostgreSQL's postmaster, from its pid file. */
function postmasterPid(): number {
  return Number(readFileSync(join(dir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
}

let probes = 0;
/** Until a valid record posted to the data port is stored (200), or the deadline. The probes
 * belong to an org of their own, left out of the reconciliation. */
async function dataPortStores(deadlineMs: number): Promise<boolean> {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    try {
      const res = await fetch(`${dataUrl}/hclient/emr/receive/emrPatientInfo`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(sample('emrPatientInfo', { orgCode: '310000999', id: `probe-${probes++}` })),
        signal: AbortSignal.timeout(5_000),
      });
      await res.text();
      if (res.status === 200) return true;
    } catch {
      // not yet
    }
    await sleep(250);
  }
  return false;
}

let db: pg.Pool;
const orgs = ['310000001', '310000002'];
const obs: HisObservations = { unknown: new Map(), unknownRecords: 0, ackAt: new Map() };
let summary: TrafficSummary;
let pgRecovered = false;
let frontRecovered = false;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cdc-crash-'));
  // The restart binds the same ports again: ports outside the ephemeral range.
  const [pgPort, gatewayPort, dataPort, configPort, monitorPort, webPort, simPort, s3Port] = (await stablePorts(8)).map(String);
  env = {
    ...process.env,
    CDC_DATA_DIR: dir,
    PG_PORT: pgPort,
    GATEWAY_PORT: gatewayPort,
    DATA_PORT: dataPort,
    CONFIG_PORT: configPort,
    MONITOR_PORT: monitorPort,
    WEB_PORT: webPort,
    NATIONAL_SIM_PORT: simPort,
    S3_PORT: s3Port,
    HIS_ALLOW: '127.0.0.1/8,::1/128',
    // The bundles are built by the test set-up. make up's default (always) would rebuild all of them
    // at both starts, under the feet of the tests running beside this one that run them
    // (test/runtime/self-test.test.ts saw its compile caches replaced mid-test).
    RUNTIME_BUILD: 'missing',
  };
  delete env.DATABASE_URL;
  delete env.NATIONAL_URL;
  delete env.PROVINCIAL_URL;
  dataUrl = `http://127.0.0.1:${env.DATA_PORT}`;
  up = await startUp();
  event(`make up running (pid ${up.pid}), data port ${dataUrl}`);
  db = new pg.Pool({ connectionString: readFileSync(join(dir, 'secrets', 'cdc-database-url'), 'utf8').trim(), max: 2, connectionTimeoutMillis: 5_000 });
  db.on('error', () => undefined);
}, 200_000);

afterAll(async () => {
  if (up?.pid && alive(up.pid)) {
    up.kill('SIGTERM');
    const end = Date.now() + 30_000;
    while (alive(up.pid) && Date.now() < end) await sleep(200);
  }
  // Whatever is left of a failed run.
  if (up?.pid) for (const p of [up.pid, ...descendants(up.pid)]) if (alive(p)) process.kill(p, 'SIGKILL');
  await db?.end().catch(() => undefined);
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe(`SIGKILL of PostgreSQL and of the whole front under HIS load (seed ${SEED})`, () => {
  it('recovers by itself from each crash, and drains', { timeout: (SECONDS + 400) * 1000 }, async () => {
    const traffic = runTraffic({
      baseUrl: dataUrl,
      rate: RATE,
      durationS: SECONDS,
      seed: SEED,
      orgCodes: orgs,
      idPrefix: `c${SEED}`,
      outOfOrderShare: 0.05,
      updateShare: 0.05,
      invalidShare: 0.01,
      concurrency: 8,
      timeoutMs: 15_000,
      fetch: observingFetch(obs),
    });

    // 1. PostgreSQL killed: make up must restart it by itself.
    await sleep(Math.min(12, SECONDS / 4) * 1000);
    const pmPid = postmasterPid();
    process.kill(pmPid, 'SIGKILL');
    event(`SIGKILL PostgreSQL postmaster (pid ${pmPid})`);
    // Its backends notice the postmaster's death and leave; give them a moment, so that the probe
    // below needs a PostgreSQL that make up started again.
    await sleep(2_000);
    pgRecovered = await dataPortStores(90_000);
    event(
      pgRecovered
        ? `data port answers again (PostgreSQL pid ${existsSync(join(dir, 'pg', 'postmaster.pid')) ? postmasterPid() : '?'})`
        : 'data port did not recover within 90 s',
    );

    // 2. The whole front killed at once, then started again on the same folder and ports.
    await sleep(Math.min(10, SECONDS / 5) * 1000);
    const victims = [up!.pid!, ...descendants(up!.pid!)];
    for (const p of victims) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    event(`SIGKILL of every process of the front (${victims.length} processes)`);
    await sleep(1_000);
    up = await startUp();
    event(`make up started again (pid ${up.pid})`);
    frontRecovered = await dataPortStores(60_000);
    event(frontRecovered ? 'data port answers after the restart' : 'data port did not answer after the restart');

    summary = await traffic;
    event(
      `load over: sent ${summary.sent}, acknowledged ${summary.acknowledged}, rejected ${summary.rejected} ${JSON.stringify(summary.rejectedByStatus)}, unknown ${obs.unknownRecords}`,
    );
    for (const x of [...summary.unexpected.samples, ...summary.errorSamples]) event(`  ${x}`);

    // Drain: the push runs by its cron and the nudges; nothing is done on its behalf.
    let left = NaN;
    const end = Date.now() + 180_000;
    let quiet = 0;
    while (Date.now() < end) {
      left = await pendingRows(db).catch(() => NaN);
      if (left === 0 && ++quiet >= 3) break;
      if (left !== 0) quiet = 0;
      await sleep(2_000);
    }
    event(left === 0 ? 'drained: no pending outbox row' : `drain deadline passed with ${left} rows pending`);
    const why = `seed ${SEED}\n${timeline.join('\n')}\n--- make up ---\n${upLog.slice(-60).join('\n')}`;
    expect(pgRecovered, `PostgreSQL was not brought back by make up; ${why}`).toBe(true);
    expect(frontRecovered, why).toBe(true);
    expect(left, why).toBe(0);
    expect(summary.acknowledged, why).toBeGreaterThan(RATE * SECONDS * 0.2);
  });

  it('delivers every acknowledged version exactly once, in order per record, and nothing else', async () => {
    expect(summary, 'the load ran').toBeDefined();
    const storeFile = join(dir, 'simulators', 'national.ndjson');
    const records = (): Received[] =>
      readFileSync(storeFile, 'utf8')
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as Received);
    const keyV = (x: { resource: string; orgCode: string; id: string; version: number }) => `${x.resource}|${x.orgCode}|${x.id}|${x.version}`;
    const { counts: c, findings } = await reconcile(
      { db, records },
      { orgs, acks: [...new Map(summary.acknowledgedRecords.map((x) => [keyV(x), x])).values()], obs, deadBefore: new Map() },
    );
    const why = (kind: keyof typeof findings) => `seed ${SEED}: ${formatCounts(c)}\n${timeline.join('\n')}\n${kind}:\n${findings[kind].join('\n')}`;
    process.stdout.write(`\n[crash] seed ${SEED}: ${formatCounts(c)}\n${timeline.map((l) => `[crash]   ${l}`).join('\n')}\n`);
    expect(c.lost, why('lost')).toBe(0);
    expect(c.duplicates, why('duplicates')).toBe(0);
    expect(c.outOfOrder, why('outOfOrder')).toBe(0);
    expect(c.childBeforeParent, why('childBeforeParent')).toBe(0);
    expect(c.phantom, why('phantom')).toBe(0);
    expect(c.delivered + c.heldNoParent, why('dead')).toBe(c.acknowledged);
  });
});
