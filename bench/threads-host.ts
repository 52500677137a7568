/**
 * The threads host of bench/threads.ts: each function bundle of a plan in a worker thread of this one
 * process, with the environment its replica has (its own port), as a process per function would run
 * it. Usage: node bench/threads-host.ts <plan.json>; sends "ready" once every worker listens.
 */
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { Worker } from 'node:worker_threads';
import { z } from 'zod';

export const Plan = z.array(z.object({ name: z.string(), bundle: z.string(), port: z.number().int(), env: z.record(z.string(), z.string()) }));
export type Plan = z.infer<typeof Plan>;

const listens = (port: number) =>
  new Promise<boolean>((done) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => done(s.destroy() !== undefined));
    s.once('error', () => done(false));
  });

/** Waits (at most a minute) until every port listens; how many do. */
export async function listeningCount(ports: number[]): Promise<number> {
  for (let i = 0; i < 600; i++) {
    if ((await Promise.all(ports.map(listens))).every(Boolean)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return (await Promise.all(ports.map(listens))).filter(Boolean).length;
}

if (import.meta.main) {
  const plan = Plan.parse(JSON.parse(readFileSync(process.argv[2]!, 'utf8')));
  for (const p of plan) {
    const w = new Worker(p.bundle, { env: { ...p.env, http_port: String(p.port) }, argv: [], stdout: true, stderr: true });
    w.stdout.resume();
    w.stderr.resume();
    w.on('exit', (code) => process.send?.({ exited: p.name, code }));
  }
  process.send?.({ ready: await listeningCount(plan.map((p) => p.port)) });
}
