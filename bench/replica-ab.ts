/**
 * One receive replica's CPU per record, variant against variant in one run (docs/bench.md "A/B of
 * one replica"). Each variant is a function bundle with its NODE_OPTIONS, started as the runtime starts a
 * replica (its own process and port, a private PostgreSQL shared by all); single records go to each
 * in turn, round after round, each round starting with the next variant, so the machine's drift hits every variant alike. The figure is the
 * replica's own CPU (utime + stime from /proc) per record, median over the rounds — and the
 * database's (the postmaster and its backends, bench/common.ts treeCpuS, while only that variant runs): on a shared machine a rate
 * moves with the neighbours, CPU per record much less.
 *
 *   AB_VARIANTS='before|/tmp/lab-before.js|--max-semi-space-size=1;after|functions/lab/dist/index.js|--max-semi-space-size=1' \
 *   AB_RESOURCES=emrExLab,emrExLabItem AB_CLIENTS=16 node --import tsx bench/replica-ab.ts
 *
 * AB_RECORDS (2000) per round and variant, AB_ROUNDS (5), AB_CLIENTS (4: concurrent keep-alive
 * clients), AB_RESOURCES (emrExLab; the records are the interface documents' examples with fresh ids,
 * whose parents are stored before the first round: the path a HIS's records take, not the waiting one).
 * AB_GAP_MS (0): each client waits this long after an answer before its next record — a replica that
 * sees a record now and then, as one of eight does in the whole front, instead of one driven flat out.
 * AB_BATCH (1): records per POST; over 1, each POST is a JSON array of that many records (the batch path).
 * AB_PROFILE=<dir>: each replica also writes a V8 CPU profile there (`--cpu-prof`), stopped with SIGTERM
 * at the end so the profile is written (open it in Chrome's DevTools or `bench/profile-top.ts`).
 * AB_STATEMENTS=<n>: the private PostgreSQL runs with pg_stat_statements, and the n statements that took
 * the most of its time during the rounds are printed and kept in the result (calls, rows, ms per call;
 * parameters only, never values): how the planner served a change, beside the CPU it cost.
 * Writes bench/results/<date>-replica-ab[-AB_NAME].json.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { migrate } from '../infra/db/migrate.js';
import { startPostgres } from '../infra/dev/postgres.js';
import { freePort } from '../infra/runtime/replica.js';
import { closePool, openPool } from '../shared/db/index.js';
import { exampleRecord } from '../shared/ingest/examples.js';
import { upsertRecord } from '../shared/ingest/index.js';
import { resources as registry } from '../schemas/index.js';
import { median, procStat, treeCpuS } from './common.js';

const Settings = z.object({
  AB_VARIANTS: z.string().min(1, 'AB_VARIANTS is required: label|bundle|node options;…'),
  AB_RECORDS: z.coerce.number().int().positive().default(2000),
  AB_ROUNDS: z.coerce.number().int().positive().default(5),
  AB_CLIENTS: z.coerce.number().int().positive().default(4),
  AB_RESOURCES: z.string().default('emrExLab'),
  AB_NAME: z
    .string()
    .regex(/^[a-z0-9-]*$/, 'lower-case letters, digits and dashes')
    .default(''),
  AB_PROFILE: z.string().default(''),
  AB_GAP_MS: z.coerce.number().nonnegative().default(0),
  AB_BATCH: z.coerce.number().int().positive().default(1),
  AB_STATEMENTS: z.coerce.number().int().nonnegative().default(0),
});
const s = Settings.parse(process.env);

interface Variant {
  label: string;
  bundle: string;
  nodeOptions: string;
  /** More environment for this variant's replica (`$PGUNIX`: the private cluster's URL over its Unix socket). */
  env: Record<string, string>;
  port: number;
  child?: ChildProcess;
  msPerRecord: number[];
  sysMsPerRecord: number[];
  pgMsPerRecord: number[];
}

/** The replica's own CPU seconds, and the kernel's part of them. */
function cpuOf(pid: number): { all: number; sys: number } {
  const st = procStat(pid);
  if (!st) throw new Error(`process ${pid} is gone`);
  return { all: st.selfS, sys: st.sysS };
}

async function waitListening(port: number, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`replica on ${port} exited with ${child.exitCode}`);
    const up = await new Promise<boolean>((ok) => {
      const q = request({ port, path: '/', method: 'GET' }, (r) => {
        r.resume();
        ok(true);
      });
      q.on('error', () => ok(false));
      q.end();
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`replica on ${port} did not listen`);
}

function stopGracefully(child: ChildProcess): Promise<void> {
  return new Promise((done) => {
    if (child.exitCode !== null) return done();
    child.once('exit', () => done());
    child.kill('SIGTERM');
  });
}

/**
 * Stores the examples the posted records name as parents — the resources' ancestors and the
 * resources' own examples (an item's header), parents first — so each posted record is written as a
 * HIS's usually is, its parents already stored, not held for them.
 */
async function storeParents(url: string, names: string[]): Promise<void> {
  const order: string[] = [];
  const visit = (name: string) => {
    if (order.includes(name)) return;
    for (const p of registry[name]?.parents ?? []) visit(p.resource);
    order.push(name);
  };
  for (const n of names) visit(n);
  const db = openPool(url, 2);
  try {
    for (const name of order) {
      const r = registry[name]!;
      const out = await upsertRecord(db, r, exampleRecord(name), { callId: null, test: false, now: new Date() });
      if (out.status !== 'created' || out.held.length) throw new Error(`${name}'s example not stored: ${out.status} ${out.held.join(', ')}`);
    }
  } finally {
    await closePool();
  }
}

async function main(): Promise<void> {
  const resources = s.AB_RESOURCES.split(',').map((x) => x.trim());
  const examples = resources.map((r) => {
    const e = exampleRecord(r);
    if (!e) throw new Error(`no example record for ${r}`);
    return e;
  });
  const dir = mkdtempSync(join(tmpdir(), 'cdc-ab-'));
  const pg = await startPostgres({
    dataDir: join(dir, 'pg'),
    ...(s.AB_STATEMENTS
      ? { settings: { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track': 'top', 'pg_stat_statements.track_planning': 'on' } }
      : {}),
  });
  const variants: Variant[] = [];
  try {
    await migrate(pg.url);
    await storeParents(pg.url, resources);
    if (s.AB_STATEMENTS) await resetStatements(pg.url);
    const unixUrl = `postgresql://${encodeURIComponent(pg.user)}:${encodeURIComponent(pg.password)}@localhost:${pg.port}/${encodeURIComponent(pg.database)}?host=${encodeURIComponent(pg.dataDir)}`;
    for (const v of s.AB_VARIANTS.split(';')) {
      const [label, bundle, nodeOptions, extraEnv] = v.split('|');
      if (!label || !bundle) throw new Error(`AB_VARIANTS entry "${v}": label|bundle|node options`);
      variants.push({
        label,
        bundle: resolve(bundle),
        nodeOptions: nodeOptions ?? '',
        env: Object.fromEntries(
          (extraEnv ?? '')
            .split(' ')
            .filter(Boolean)
            .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1).replaceAll('$PGUNIX', unixUrl)]),
        ),
        port: await freePort(),
        msPerRecord: [],
        sysMsPerRecord: [],
        pgMsPerRecord: [],
      });
    }
    for (const v of variants) {
      // As a replica gets it from the runtime: the database, loopback callers, no nudges, no grace at stop.
      const env = {
        PATH: process.env.PATH ?? '',
        DATABASE_URL: pg.url,
        HIS_ALLOW: '127.0.0.1/8',
        LOG_LEVEL: 'warn',
        PUSH_NUDGE_URL: '',
        WARNING_NUDGE_URL: '',
        http_port: String(v.port),
        healthcheck_interval: '0s',
        NODE_OPTIONS: v.nodeOptions,
        ...v.env,
      };
      const prof = s.AB_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${resolve(s.AB_PROFILE)}`, `--cpu-prof-name=${v.label}.cpuprofile`] : [];
      v.child = spawn(process.execPath, [...prof, v.bundle], { env, stdio: ['ignore', 'ignore', 'inherit'] });
      await waitListening(v.port, v.child);
    }
    const agent = new Agent({ keepAlive: true, maxSockets: s.AB_CLIENTS });
    let seq = 0;
    const post = (port: number, tag: string) => {
      const i = seq++ % resources.length;
      // A batch is a JSON array of records of one resource, as the batch path takes it (docs/ingest.md).
      const one = () => ({ ...examples[i], id: `${tag}-${seq++}` });
      const body = JSON.stringify(s.AB_BATCH > 1 ? Array.from({ length: s.AB_BATCH }, one) : one());
      return new Promise<number>((ok, fail) => {
        const q = request(
          { agent, port, path: `/${resources[i]}`, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
          (r) => {
            r.resume();
            r.on('end', () => ok(r.statusCode ?? 0));
          },
        );
        q.on('error', fail);
        q.end(body);
      });
    };
    const drive = async (v: Variant, tag: string, n: number) => {
      let sent = 0;
      await Promise.all(
        Array.from({ length: s.AB_CLIENTS }, async () => {
          while ((sent += s.AB_BATCH) <= n) {
            const status = await post(v.port, tag);
            if (status !== 200) throw new Error(`${v.label}: status ${status}`);
            if (s.AB_GAP_MS > 0) await new Promise((r) => setTimeout(r, s.AB_GAP_MS));
          }
        }),
      );
    };
    // Every variant warmed (optimised by V8) before the first measured round.
    for (const v of variants) await drive(v, `warm-${v.label}`, s.AB_RECORDS);
    for (let round = 0; round < s.AB_ROUNDS; round++) {
      // Each round starts with the next variant: the one going first in a round was favoured (two
      // runs of one pair, each order once: the first won 3 of 5 and 5 of 8 rounds).
      for (const v of [...variants.slice(round % variants.length), ...variants.slice(0, round % variants.length)]) {
        const a = cpuOf(v.child!.pid!);
        const pa = treeCpuS(pg.pid) ?? 0;
        const t0 = performance.now();
        await drive(v, `r${round}-${v.label}`, s.AB_RECORDS);
        const t1 = performance.now();
        const b = cpuOf(v.child!.pid!);
        const pgMs = (1000 * ((treeCpuS(pg.pid) ?? 0) - pa)) / s.AB_RECORDS;
        v.pgMsPerRecord.push(pgMs);
        const ms = (1000 * (b.all - a.all)) / s.AB_RECORDS;
        v.msPerRecord.push(ms);
        v.sysMsPerRecord.push((1000 * (b.sys - a.sys)) / s.AB_RECORDS);
        console.log(
          `${v.label.padEnd(16)} round ${round}: ${ms.toFixed(3)} ms/record (PostgreSQL ${pgMs.toFixed(3)}), ${(s.AB_RECORDS / ((t1 - t0) / 1000)).toFixed(0)} records/s`,
        );
      }
    }
    agent.destroy();
    const first = median(variants[0]!.msPerRecord);
    const rows = variants.map((v) => ({
      variant: v.label,
      bundle: v.bundle,
      nodeOptions: v.nodeOptions,
      msPerRecord: Number(median(v.msPerRecord).toFixed(3)),
      sysMsPerRecord: Number(median(v.sysMsPerRecord).toFixed(3)),
      postgresMsPerRecord: Number(median(v.pgMsPerRecord).toFixed(3)),
      vsFirst: Number((median(v.msPerRecord) / first).toFixed(2)),
      rounds: v.msPerRecord.map((x) => Number(x.toFixed(3))),
    }));
    console.table(rows.map(({ rounds: _r, bundle: _b, ...r }) => r));
    const top = s.AB_STATEMENTS ? await topStatements(pg.url, s.AB_STATEMENTS) : undefined;
    if (top) console.table(top.map((t) => ({ ...t, query: t.query.slice(0, 100) })));
    mkdirSync('bench/results', { recursive: true });
    const file = `bench/results/${new Date().toISOString().slice(0, 10)}-replica-ab${s.AB_NAME ? `-${s.AB_NAME}` : ''}.json`;
    writeFileSync(
      file,
      `${JSON.stringify({ scenario: 'replica-ab', date: new Date().toISOString(), records: s.AB_RECORDS, rounds: s.AB_ROUNDS, clients: s.AB_CLIENTS, resources, rows, ...(top ? { statements: top } : {}) }, null, 2)}\n`,
    );
    console.log(`written ${file}`);
    // A profile is written at a graceful exit: SIGTERM, and wait for it.
    if (s.AB_PROFILE) await Promise.all(variants.map((v) => stopGracefully(v.child!)));
  } finally {
    for (const v of variants) v.child?.kill('SIGKILL');
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** AB_STATEMENTS: pg_stat_statements created, and what came before the rounds forgotten. */
async function resetStatements(url: string): Promise<void> {
  const db = openPool(url, 1);
  try {
    await db.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await db.query('SELECT pg_stat_statements_reset()');
  } finally {
    await closePool();
  }
}

/** AB_STATEMENTS: the n statements that took most of PostgreSQL's time, executing and planning. */
async function topStatements(url: string, n: number) {
  const db = openPool(url, 1);
  try {
    const res = await db.query<{ ms: string; plan: string; calls: string; rows: string; query: string }>(
      `SELECT total_exec_time AS ms, total_plan_time AS plan, calls, rows, query FROM pg_stat_statements ORDER BY total_exec_time + total_plan_time DESC LIMIT $1`,
      [n],
    );
    return res.rows.map((r) => ({
      ms: Math.round(Number(r.ms)),
      calls: Number(r.calls),
      rows: Number(r.rows),
      msPerCall: Number((Number(r.ms) / Math.max(1, Number(r.calls))).toFixed(3)),
      planMsPerCall: Number((Number(r.plan) / Math.max(1, Number(r.calls))).toFixed(3)),
      query: r.query.replace(/\s+/g, ' ').slice(0, 400),
    }));
  } finally {
    await closePool();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
