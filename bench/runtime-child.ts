/**
 * The bench's runtime, in a child process of its own (bench/port.ts starts it): the runtime with
 * stack.yml (infra/runtime/boot.ts), answering the parent's questions over IPC. It runs from a
 * bundle, as `make up` and the systemd unit run the runtime (docs/runtime.md "The runtime's own
 * bundle"), so its RSS and start are what a server's are; this module is only ever that bundle's entry.
 */
import { bootStack } from '../infra/runtime/boot.js';
import type { ReplicaInfo } from '../infra/runtime/index.js';

export interface ChildOptions {
  databaseUrl: string;
  /** Over infra/runtime/boot.ts's defaults. */
  env: Record<string, string>;
  /** PUSH_NUDGE_URL at the runtime's own gateway (else a closed port: pushes do not compete). */
  nudge: boolean;
  logsDir: string;
}

export type ToChild = { type: 'replicas'; id: number } | { type: 'wait'; id: number; fn: string } | { type: 'close' };
export type FromChild =
  | { type: 'ready'; gatewayUrl: string; portUrls: Record<string, string>; secretsDir: string; user: string; password: string; pid: number }
  | { type: 'replicas'; id: number; replicas: Record<string, ReplicaInfo[]> }
  | { type: 'wait'; id: number; ok: boolean }
  | { type: 'error'; message: string };

async function runtimeChild(): Promise<void> {
  const o = JSON.parse(process.env.BENCH_PORT_CHILD ?? '{}') as ChildOptions;
  const send = (m: FromChild) => process.send?.(m);
  try {
    const { rt, secretsDir } = await bootStack({ name: 'bench-port', databaseUrl: o.databaseUrl, nudge: o.nudge, env: o.env, runtime: { logsDir: o.logsDir } });
    let closing = false;
    const close = async () => {
      if (closing) return;
      closing = true;
      await rt.close();
      process.exit(0);
    };
    process.on('disconnect', () => void close());
    process.on('message', (m: ToChild) => {
      if (m.type === 'replicas') send({ type: 'replicas', id: m.id, replicas: Object.fromEntries(rt.functions().map((f) => [f, rt.replicas(f)])) });
      else if (m.type === 'wait') void rt.waitForReplicas(m.fn, 60_000).then((ok) => send({ type: 'wait', id: m.id, ok }));
      else if (m.type === 'close') void close();
    });
    send({
      type: 'ready',
      gatewayUrl: rt.gatewayUrl,
      portUrls: rt.portUrls,
      secretsDir,
      user: rt.credentials.user,
      password: rt.credentials.password,
      pid: process.pid,
    });
  } catch (err) {
    send({ type: 'error', message: (err as Error).stack ?? String(err) });
    process.exit(1);
  }
}

await runtimeChild();
