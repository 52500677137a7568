/**
 * The headline figures of `make bench` in one table (docs/bench.md "Headline"), each against its
 * baseline in the same run:
 *   P1  single records through 8881 at 16 and 64 clients vs bare pg single transactions (bench/port.ts)
 *   P2  batches of 50 through 8881 vs bare multi-row statements (bench/port.ts)
 *   P3  the runtime's proxy on a no-op (a path the function answers 404 without any work): through the
 *       gateway and through the hospital port, each against the same request straight to the replica
 *   P6  RSS of the runtime and every function process at load: their sum sampled every 250 ms while
 *       records go through the port, the highest of any phase; beside it the PSS read when the run
 *       that reached it ended (node's shared code counted once), the goal judged on the RSS
 *   P7  replica start to ready: the bundle spawned as the runtime spawns it until its port accepts,
 *       beside a bare Node HTTP server spawned the same way (node's own start on this machine)
 */
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { compileCache, freePort } from '../infra/runtime/replica.js';
import { median, table } from './common.js';

export interface NoopRun {
  perS: number;
  p50Ms: number;
  p99Ms: number;
}

/** `count` GETs of `path` on 127.0.0.1:port by `clients` closed-loop clients over keep-alive sockets. */
export async function noopLoad(port: number, path: string, count: number, clients: number): Promise<NoopRun> {
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  const lat: number[] = [];
  let next = 0;
  const one = () =>
    new Promise<void>((ok, fail) => {
      const t0 = performance.now();
      const req = request({ host: '127.0.0.1', port, path, agent, method: 'GET' }, (res) => {
        res.resume();
        res.on('end', () => {
          lat.push(performance.now() - t0);
          ok();
        });
      });
      req.on('error', fail);
      req.end();
    });
  const t0 = performance.now();
  try {
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (next++ < count) await one();
      }),
    );
  } finally {
    agent.destroy();
  }
  const ms = performance.now() - t0;
  lat.sort((a, b) => a - b);
  const q = (p: number) => Number(lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!.toFixed(2));
  return { perS: Math.round((count / ms) * 1000), p50Ms: q(0.5), p99Ms: q(0.99) };
}

export interface ProxyOverhead {
  path: string;
  clients: number;
  requests: number;
  direct: NoopRun;
  gateway: NoopRun;
  port: NoopRun;
  /** The same requests through a minimal Node proxy (bench/minimal-proxy.ts) in front of the same replica: a Node hop's own cost. */
  minimal?: NoopRun;
  minimalFactor?: number;
  /** direct rate ÷ proxied rate: 1.0 is no overhead; the goal is ≤ 1.3. */
  gatewayFactor: number;
  portFactor: number;
}

/** P3: rounds alternate which path goes first; the median round of each is compared. */
export async function proxyOverhead(o: {
  replicaPort: number;
  gatewayPort: number;
  dataPort: number;
  fn: string;
  count: number;
  clients: number;
  rounds: number;
  /** A minimal Node proxy's port (bench/minimal-proxy.ts) in front of the same replica: measured too, for reference. */
  minimalPort?: number;
}): Promise<ProxyOverhead> {
  const noop = '/__bench_noop__';
  const via = { direct: [] as NoopRun[], gateway: [] as NoopRun[], port: [] as NoopRun[], minimal: [] as NoopRun[] };
  const runs: Array<[keyof typeof via, number, string]> = [
    ['direct', o.replicaPort, noop],
    ['gateway', o.gatewayPort, `/function/${o.fn}${noop}`],
    ['port', o.dataPort, `/function/${o.fn}${noop}`],
    ...(o.minimalPort ? [['minimal', o.minimalPort, noop] as [keyof typeof via, number, string]] : []),
  ];
  for (const [, port, path] of runs) await noopLoad(port, path, Math.min(2000, o.count), o.clients); // warm each path
  for (let r = 0; r < o.rounds; r++) {
    const order = r % 2 === 0 ? runs : [...runs].reverse();
    for (const [k, port, path] of order) via[k].push(await noopLoad(port, path, o.count, o.clients));
  }
  const med = (xs: NoopRun[]): NoopRun => {
    const m = median(xs.map((x) => x.perS));
    return xs.find((x) => x.perS === m)!;
  };
  const direct = med(via.direct);
  const gateway = med(via.gateway);
  const port = med(via.port);
  return {
    path: noop,
    clients: o.clients,
    requests: o.count,
    direct,
    gateway,
    port,
    gatewayFactor: Number((direct.perS / gateway.perS).toFixed(2)),
    portFactor: Number((direct.perS / port.perS).toFixed(2)),
    ...(via.minimal.length ? { minimal: med(via.minimal), minimalFactor: Number((direct.perS / med(via.minimal).perS).toFixed(2)) } : {}),
  };
}

/** One spawn of `script` as the runtime spawns a replica, timed until its port accepts a connection (ms). */
async function timedStart(script: string, cwd: string, env: Record<string, string>): Promise<number> {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(process.execPath, [script], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env, http_port: String(port), http_host: '127.0.0.1' },
    stdio: 'ignore',
  });
  try {
    for (;;) {
      const up = await new Promise<boolean>((r) => {
        const s = createConnection({ host: '127.0.0.1', port });
        s.once('connect', () => {
          s.destroy();
          r(true);
        });
        s.once('error', () => r(false));
      });
      if (up) return Number((performance.now() - t0).toFixed(1));
      if (child.exitCode !== null) throw new Error(`bench: ${script} exited (${child.exitCode}) before it was ready`);
      if (performance.now() - t0 > 30_000) throw new Error(`bench: ${script} not ready within 30 s`);
      await new Promise((r) => setTimeout(r, 2));
    }
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
  }
}

export interface StartToReady {
  msMedian: number;
  msMax: number;
  starts: number[];
  /** The baseline, started alternately in the same loop: a bare Node HTTP server (bench/bare-server.mjs). */
  bare: { msMedian: number; msMax: number; starts: number[] };
}

/**
 * P7: the bundle started as the runtime starts a replica (node dist/index.js, its port, secrets and
 * compile cache), timed until its port accepts; alternated with a bare Node HTTP server started the
 * same way, so the part of a start that is node's own on this machine, now, is read off the same run.
 */
export async function startToReady(o: {
  projectDir: string;
  fn: string;
  secretsDir: string;
  env: Record<string, string>;
  starts: number;
}): Promise<StartToReady> {
  const bundle = join(o.projectDir, 'functions', o.fn, 'dist', 'index.js');
  const bareScript = join(o.projectDir, 'bench', 'bare-server.mjs');
  const starts: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < o.starts; i++) {
    // Which goes first alternates, so neither always starts right after the other's exit.
    const one = () => timedStart(bundle, join(o.projectDir, 'functions', o.fn), { ...compileCache(bundle), ...o.env, CDC_SECRETS_DIR: o.secretsDir });
    const base = () => timedStart(bareScript, o.projectDir, {});
    if (i % 2 === 0) {
      starts.push(await one());
      bare.push(await base());
    } else {
      bare.push(await base());
      starts.push(await one());
    }
  }
  return { msMedian: median(starts), msMax: Math.max(...starts), starts, bare: { msMedian: median(bare), msMax: Math.max(...bare), starts: bare } };
}

interface PhaseResult {
  rateRatio: number;
  subject: { recordsPerS: number; p50Ms: number; p99Ms: number };
  baseline: { recordsPerS: number; p50Ms: number; p99Ms: number };
  /** The stricter reference kept beside it: the typed row alone, INSERTed into an unindexed copy. */
  insertOnly?: { recordsPerS: number };
  rateRatioInsertOnly?: number;
  rssAtEnd?: Rss;
  rssPeak?: Rss | null;
}

interface Rss {
  runtimeMiB: number | null;
  functionsTotalMiB: number;
  replicas?: number;
  /** Proportional set size, read when the run that reached the peak ended (absent in results from before it was measured). */
  pss?: { runtimeMiB: number; functionsTotalMiB: number; totalMiB: number } | null;
}

/** The one table: every headline figure, its baseline, its goal, whether it is met. */
export function headline(phases: Record<string, PhaseResult> | undefined, p3: ProxyOverhead | null, p7: StartToReady | null) {
  const rows: Array<Record<string, string | number>> = [];
  const p = (key: string, name: string, goal: string, met: (x: PhaseResult) => boolean) => {
    const x = phases?.[key];
    if (!x) return;
    rows.push({
      figure: name,
      subject: `${x.subject.recordsPerS} rec/s, p50 ${x.subject.p50Ms} / p99 ${x.subject.p99Ms} ms`,
      baseline: `same writes ${x.baseline.recordsPerS} rec/s, p50 ${x.baseline.p50Ms} / p99 ${x.baseline.p99Ms} ms`,
      ratio: x.rateRatio,
      'vs INSERT only': x.insertOnly ? `${x.rateRatioInsertOnly} (${x.insertOnly.recordsPerS} rec/s)` : '-',
      goal,
      met: met(x) ? 'yes' : 'no',
    });
  };
  p('single-c16', 'P1 single, 16 clients', '≥ 0.5, p99 < 50 ms', (x) => x.rateRatio >= 0.5 && x.subject.p99Ms < 50);
  p('single-c64', 'P1 single, 64 clients', '≥ 0.5', (x) => x.rateRatio >= 0.5);
  p('batch50-c16', 'P2 batches of 50, 16 clients', '≥ 0.5', (x) => x.rateRatio >= 0.5);
  if (p3) {
    for (const [k, run, factor] of [
      ['gateway', p3.gateway, p3.gatewayFactor],
      ['hospital port', p3.port, p3.portFactor],
    ] as const) {
      rows.push({
        figure: `P3 proxy on a no-op, ${k}`,
        subject: `${run.perS} req/s, p50 ${run.p50Ms} / p99 ${run.p99Ms} ms`,
        baseline: `${p3.direct.perS} req/s straight to the replica, p50 ${p3.direct.p50Ms} / p99 ${p3.direct.p99Ms} ms${
          p3.minimal ? `; a minimal Node proxy in front of it ${p3.minimal.perS} req/s (${p3.minimalFactor}×)` : ''
        }`,
        ratio: factor,
        goal: '≤ 1.3× (direct ÷ proxied)',
        met: factor <= 1.3 ? 'yes' : 'no',
      });
    }
  }
  const sum = (r: Rss) => (r.runtimeMiB ?? 0) + r.functionsTotalMiB;
  let rss: Rss | undefined;
  let during = '';
  for (const [key, x] of Object.entries(phases ?? {})) {
    const r = x.rssPeak ?? x.rssAtEnd;
    if (r && (!rss || sum(r) > sum(rss))) [rss, during] = [r, key];
  }
  if (rss) {
    // Judged on the RSS, as the goal states it; the PSS beside it (read when that run ended) counts
    // each shared page once among its sharers (docs/bench.md "Headline", P6).
    const total = sum(rss);
    const pss = rss.pss
      ? `; PSS ${rss.pss.totalMiB} MiB (runtime ${rss.pss.runtimeMiB}, function processes ${rss.pss.functionsTotalMiB}): node's shared code counted once`
      : '';
    rows.push({
      figure: 'P6 RSS at load',
      subject: `${total} MiB (runtime ${rss.runtimeMiB}, ${rss.replicas ?? '?'} function processes ${rss.functionsTotalMiB}; peak, during ${during})${pss}`,
      baseline: '-',
      ratio: '-',
      goal: '≤ 1024 MiB',
      met: total <= 1024 ? 'yes' : 'no',
      // the two totals as numbers for the JSON (the text table shows the first row's columns only)
      rssMiB: total,
      ...(rss.pss ? { pssMiB: rss.pss.totalMiB } : {}),
    });
  }
  if (p7)
    rows.push({
      figure: 'P7 replica start to ready',
      subject: `median ${p7.msMedian} ms, max ${p7.msMax} ms`,
      baseline: `a bare Node HTTP server started the same way: median ${p7.bare.msMedian} ms, max ${p7.bare.msMax} ms`,
      ratio: p7.bare.msMedian > 0 ? Number((p7.msMedian / p7.bare.msMedian).toFixed(2)) : '-',
      goal: '≤ 300 ms',
      met: p7.msMax <= 300 ? 'yes' : 'no',
    });
  return { rows, text: table(rows) };
}
