/**
 * P6 beside the process model (docs/bench.md "P6 with the functions as threads"): the running
 * replicas' bundles, each with its replica's own environment, started afresh twice, idle — as worker
 * threads of one process (bench/threads-host.ts) and as processes, one each, as the runtime starts
 * them — and their RSS and PSS read at the same time, beside the running replicas' (which have carried
 * the load). Not how the front runs: a measurement for the choice of process model.
 */
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pssMiB, rssMiB } from './common.js';
import { freePort } from '../infra/runtime/replica.js';
import { listeningCount, type Plan } from './threads-host.js';

export interface ThreadsBeside {
  /** The running replicas, after the load. */
  replicas: { count: number; rssMiB: number; pssMiB: number };
  /** The same bundles started afresh: one process each, and worker threads of one process. */
  processes: { count: number; listening: number; rssMiB: number; pssMiB: number };
  threads: { workers: number; listening: number; rssMiB: number; pssMiB: number };
}

export async function threadsBeside(replicaPids: Array<{ fn: string; pid: number }>): Promise<ThreadsBeside> {
  const plan: Plan = [];
  for (const r of replicaPids) {
    const argv = readFileSync(`/proc/${r.pid}/cmdline`, 'utf8').split('\0');
    const bundle = argv.find((a) => a.endsWith('/dist/index.js'));
    if (!bundle) throw new Error(`bench: replica ${r.pid} of ${r.fn} runs no bundle (${argv.join(' ')})`);
    const env = Object.fromEntries(
      readFileSync(`/proc/${r.pid}/environ`, 'utf8')
        .split('\0')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    plan.push({ name: r.fn, bundle, port: await freePort(), env });
  }
  const fresh = await Promise.all(
    plan.map(async (p) => {
      const port = await freePort();
      return { port, child: spawn(process.execPath, [p.bundle], { env: { ...p.env, http_port: String(port) }, stdio: 'ignore' }) };
    }),
  );
  const dir = mkdtempSync(join(tmpdir(), 'bench-threads-'));
  const file = join(dir, 'plan.json');
  writeFileSync(file, JSON.stringify(plan), { mode: 0o600 });
  // Node's own type stripping, not tsx: the workers inherit the host's execArgv and would each load it.
  const host = fork('bench/threads-host.ts', [file], { execArgv: [], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  try {
    const listening = await new Promise<number>((done, fail) => {
      host.on('message', (m: { ready?: number }) => m.ready !== undefined && done(m.ready));
      host.once('exit', () => fail(new Error('bench/threads-host.ts exited before its workers listened')));
    });
    const processesListening = await listeningCount(fresh.map((f) => f.port));
    // Settled as the replicas are: their start's garbage collected.
    await new Promise((r) => setTimeout(r, 3000));
    const sum = (pids: number[], f: (pid: number) => number | null) => Math.round(pids.reduce((a, pid) => a + (f(pid) ?? 0), 0));
    const running = replicaPids.map((r) => r.pid);
    const freshPids = fresh.map((f) => f.child.pid!);
    return {
      replicas: { count: running.length, rssMiB: sum(running, rssMiB), pssMiB: sum(running, pssMiB) },
      processes: { count: freshPids.length, listening: processesListening, rssMiB: sum(freshPids, rssMiB), pssMiB: sum(freshPids, pssMiB) },
      threads: { workers: plan.length, listening, rssMiB: sum([host.pid!], rssMiB), pssMiB: sum([host.pid!], pssMiB) },
    };
  } finally {
    for (const f of fresh) f.child.kill('SIGKILL');
    host.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
