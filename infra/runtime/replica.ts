/**
 * One replica: the function bundle as its own child process (never inside the gateway), on a port
 * the runtime chose, supervised as of-watchdog supervises its fprocess. Ready once its port
 * accepts connections; stopped by SIGTERM, a drain of up to write_timeout, then SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Agent } from 'node:http';
import { createConnection, createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { lineSplitter, type LogStore } from './logs.js';

/**
 * NODE_COMPILE_CACHE for a replica of this bundle: the cache infra/build/build.mjs primed beside it
 * (`dist/compile-cache`), when there is one — the replica starts from compiled code (docs/runtime.md
 * "Bundles"). A function's own NODE_COMPILE_CACHE in stack.yml wins.
 */
export function compileCache(bundle: string): { NODE_COMPILE_CACHE?: string } {
  const dir = join(dirname(bundle), 'compile-cache');
  return existsSync(dir) ? { NODE_COMPILE_CACHE: dir } : {};
}

export type ReplicaState = 'starting' | 'ready' | 'stopping' | 'exited';

export interface ReplicaOptions {
  fn: string;
  id: string;
  bundle: string;
  cwd: string;
  env: Record<string, string>;
  logs: LogStore;
}

export interface ReplicaExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

export class Replica {
  readonly id: string;
  readonly fn: string;
  state: ReplicaState = 'starting';
  inflight = 0;
  /** Requests dispatched to it so far. */
  served = 0;
  /** Set when the runtime stops it on purpose (scale down, update, shutdown): no restart. */
  retiring = false;
  /** Replaced by an update: still serves until its successors are ready. */
  outdated = false;
  port = 0;
  pid: number | undefined;
  startedAt = Date.now();
  // Idle sockets to the replica are dropped after 30 s, well before its server's 65 s keep-alive
  // timeout: the replica never closes a socket this agent is about to reuse.
  readonly agent = new Agent({ keepAlive: true, maxSockets: Infinity, keepAliveMsecs: 1000, timeout: 30_000 });
  /** Resolves when the child has exited (for whatever reason). */
  readonly exited: Promise<ReplicaExit>;
  private child: ChildProcess | null = null;
  private resolveExit!: (e: ReplicaExit) => void;
  private readyWaiters: Array<(ok: boolean) => void> = [];

  constructor(private readonly opts: ReplicaOptions) {
    this.id = opts.id;
    this.fn = opts.fn;
    this.exited = new Promise((r) => (this.resolveExit = r));
  }

  async start(): Promise<void> {
    this.port = await freePort();
    // healthcheck_interval 0: this runtime takes a replica out of rotation before its SIGTERM, so the
    // function has no window of routed requests to wait out (under of-watchdog it has: docs/runtime.md).
    const env = { ...compileCache(this.opts.bundle), ...this.opts.env, http_port: String(this.port), http_host: '127.0.0.1', healthcheck_interval: '0s' };
    const child = spawn(process.execPath, [this.opts.bundle], { cwd: this.opts.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.pid = child.pid;
    this.startedAt = Date.now();
    for (const stream of ['stdout', 'stderr'] as const) {
      const split = lineSplitter((line) => this.opts.logs.replicaLine(this.fn, this.id, stream, line));
      child[stream]!.on('data', (c: Buffer) => split.push(c));
      child[stream]!.on('error', () => undefined);
      child[stream]!.on('end', () => split.end());
    }
    child.once('error', (err) => {
      this.opts.logs.runtime.error('replica spawn failed', { fn: this.fn, replica: this.id, err: err.message });
      if (child.pid === undefined) this.markExited({ code: null, signal: null });
    });
    child.once('exit', (code, signal) => this.markExited({ code, signal }));
    void this.probe();
  }

  private markExited(exit: ReplicaExit): void {
    if (this.state === 'exited') return;
    this.state = 'exited';
    this.agent.destroy();
    this.settleReady(false);
    this.resolveExit(exit);
  }

  /** Polls the port until it accepts a connection (ready) or the child exits. */
  async probe(): Promise<void> {
    while (this.state === 'starting') {
      const ok = await new Promise<boolean>((r) => {
        const s = createConnection({ host: '127.0.0.1', port: this.port });
        s.once('connect', () => {
          s.destroy();
          r(true);
        });
        s.once('error', () => r(false));
      });
      if (ok && this.state === 'starting') {
        this.state = 'ready';
        this.settleReady(true);
        return;
      }
      if (!ok) await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Back out of rotation after an undeliverable request; the exit handler or the probe decides what comes next. */
  suspect(): void {
    if (this.state !== 'ready') return;
    this.state = 'starting';
    void this.probe();
  }

  whenReady(): Promise<boolean> {
    if (this.state === 'ready') return Promise.resolve(true);
    if (this.state !== 'starting') return Promise.resolve(false);
    return new Promise((r) => this.readyWaiters.push(r));
  }

  private settleReady(ok: boolean): void {
    const w = this.readyWaiters;
    this.readyWaiters = [];
    for (const f of w) f(ok);
  }

  /** SIGTERM, then SIGKILL after `drainMs` if the child is still there. Resolves once it has exited. */
  async stop(drainMs: number): Promise<ReplicaExit> {
    if (this.state !== 'exited') {
      this.state = 'stopping';
      this.settleReady(false);
      this.child?.kill('SIGTERM');
      const timer = setTimeout(() => {
        this.opts.logs.runtime.warn('replica did not drain in time, killing', { fn: this.fn, replica: this.id, pid: this.pid, drainMs });
        this.child?.kill('SIGKILL');
      }, drainMs + 500);
      const exit = await this.exited;
      clearTimeout(timer);
      return exit;
    }
    return this.exited;
  }

  kill(): void {
    this.child?.kill('SIGKILL');
  }
}
