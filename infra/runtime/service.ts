/**
 * A deployed function: its spec, its replicas (each a child process), the desired replica count,
 * round-robin selection with max_inflight per replica, and restarts with exponential backoff.
 */
import { OPTIONAL_SECRETS, secretView } from './secret-view.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { scaleConfig, watchdogConfig, type ScaleConfig, type WatchdogConfig } from './config.js';
import type { LogStore } from './logs.js';
import { Replica } from './replica.js';
import type { FunctionSpec } from './stack.js';

/** Environment a replica inherits from the runtime's own (everything else comes from stack.yml). */
export const INHERITED_ENV = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'NODE_ENV', 'NODE_OPTIONS', 'NODE_EXTRA_CA_CERTS'];

export interface ServiceContext {
  logs: LogStore;
  secretsDir: string;
  /** Environment the runtime runs with (process.env + overrides): the inherited subset is taken from it. */
  baseEnv: Record<string, string | undefined>;
  backoff: { initialMs: number; maxMs: number; resetAfterMs: number };
  /**
   * Names the platform's network gives its own services, mapped to where this runtime serves them
   * (docs/runtime.md "The gateway's name"): on faasd a function reaches the gateway as `gateway:8080`
   * (its shared hosts file), on Kubernetes as `gateway.openfaas:8080`. Here both are the admin
   * gateway on loopback, so an environment value naming them reaches the same place.
   */
  hosts?: Map<string, string>;
}

/** `value` with a URL's `gateway:8080` (or another name in `hosts`) replaced by its address here. */
export function resolveHosts(value: string, hosts: Map<string, string> | undefined): string {
  if (!hosts || hosts.size === 0 || !/^https?:\/\//i.test(value)) return value;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return value;
  }
  const to = hosts.get(url.hostname.toLowerCase());
  if (!to || (url.port !== '' && url.port !== '8080')) return value;
  // Only the scheme-and-authority prefix changes: path, query and fragment are kept as written.
  const authority = value.match(/^https?:\/\/[^/?#]*/i)![0];
  return `http://${to}${value.slice(authority.length)}`;
}

export type Pick = { replica: Replica } | { none: 'no-replicas' | 'starting' | 'full' };

export class FunctionService {
  readonly name: string;
  spec: FunctionSpec;
  watchdog: WatchdogConfig;
  scale: ScaleConfig;
  desired: number;
  /**
   * The count last set by hand (scale API, `cdc-faas scale`), clamped to [min, max]: a floor the
   * autoscaler keeps, as OpenFaaS keeps com.openfaas.scale.min. Starts at min.
   */
  floor: number;
  replicas: Replica[] = [];
  invocationCount = 0;
  readonly createdAt = new Date();
  /**
   * The idler's clock: when a call last took or gave back a replica, a replica became ready, or the
   * service started — idle time is time the function could have served and had nothing to do.
   */
  lastUsedAt = Date.now();
  /** Calls waiting for a replica to be ready (a wake from zero, a restart): never idle while any waits. */
  waiting = 0;
  /** Time-weighted in-flight integral, for the autoscaler. */
  private inflightArea = 0;
  private areaSince = Date.now();
  private lastChange = Date.now();
  private rr = 0;
  private seq = 0;
  private backoffMs: number;
  private restartTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** Replicas that exited without being asked to (a crash, kill -9, out of memory), since the runtime started. */
  unexpectedExits = 0;
  private readyWaiters = new Set<() => void>();

  constructor(
    spec: FunctionSpec,
    private readonly ctx: ServiceContext,
  ) {
    this.name = spec.name;
    this.spec = spec;
    this.watchdog = watchdogConfig(spec);
    this.scale = scaleConfig(spec);
    this.desired = this.scale.min;
    this.floor = this.scale.min;
    this.backoffMs = ctx.backoff.initialMs;
    this.checkDeployable(spec);
  }

  get bundle(): string {
    return join(this.spec.handler, 'dist', 'index.js');
  }

  /** Fails with a message naming what is missing: the bundle, a listed secret file. */
  checkDeployable(spec: FunctionSpec): void {
    const bundle = join(spec.handler, 'dist', 'index.js');
    if (!existsSync(bundle)) throw new Error(`function ${spec.name}: bundle ${bundle} not found (run: npm run build -- ${spec.name})`);
    for (const s of spec.secrets) {
      const path = join(this.ctx.secretsDir, s);
      if (!existsSync(path)) throw new Error(`function ${spec.name}: secret "${s}" not found at ${path}`);
    }
  }

  childEnv(): Record<string, string> {
    const env: Record<string, string> = {};
    for (const k of INHERITED_ENV) {
      const v = this.ctx.baseEnv[k];
      if (v !== undefined) env[k] = v;
    }
    for (const [k, v] of Object.entries(this.spec.environment)) env[k] = resolveHosts(v, this.ctx.hosts);
    const view = secretView(this.ctx.secretsDir, this.name, this.spec.secrets, this.spec.annotations[OPTIONAL_SECRETS]);
    return { ...env, CDC_SECRETS_DIR: view };
  }

  /** Live replicas: counted against the desired number (starting or ready). */
  live(): Replica[] {
    return this.replicas.filter((r) => !r.outdated && !r.retiring && (r.state === 'starting' || r.state === 'ready'));
  }

  ready(): Replica[] {
    return this.replicas.filter((r) => r.state === 'ready' && !r.retiring);
  }

  inflight(): number {
    return this.replicas.reduce((n, r) => n + r.inflight, 0);
  }

  /** Round robin over ready replicas that have a free max_inflight slot. */
  pick(exclude: ReadonlySet<Replica> = new Set()): Pick {
    const ready = this.ready().filter((r) => !exclude.has(r));
    if (ready.length === 0)
      return { none: this.stopped || this.desired === 0 ? 'no-replicas' : this.live().length > 0 || this.restartTimer ? 'starting' : 'no-replicas' };
    const max = this.watchdog.maxInflight;
    for (let i = 0; i < ready.length; i++) {
      const r = ready[(this.rr + i) % ready.length]!;
      if (max === 0 || r.inflight < max) {
        this.rr = (this.rr + i + 1) % ready.length;
        return { replica: r };
      }
    }
    return { none: 'full' };
  }

  /** Waits until some replica is ready (true) or `ms` elapse (false). */
  waitReady(ms: number): Promise<boolean> {
    if (this.ready().length > 0) return Promise.resolve(true);
    return new Promise((resolveWait) => {
      const done = () => {
        clearTimeout(t);
        this.readyWaiters.delete(done);
        resolveWait(this.ready().length > 0);
      };
      const t = setTimeout(done, ms);
      this.readyWaiters.add(done);
    });
  }

  acquire(r: Replica): void {
    this.lastUsedAt = Date.now();
    this.account();
    r.inflight++;
    r.served++;
  }

  release(r: Replica): void {
    this.lastUsedAt = Date.now();
    this.account();
    r.inflight--;
  }

  private account(): void {
    const now = Date.now();
    this.inflightArea += this.inflight() * (now - this.lastChange);
    this.lastChange = now;
  }

  /** Mean in-flight requests since the last call (the autoscaler's signal). */
  takeMeanInflight(): number {
    this.account();
    const now = Date.now();
    const span = now - this.areaSince;
    const mean = span > 0 ? this.inflightArea / span : this.inflight();
    this.inflightArea = 0;
    this.areaSince = now;
    return mean;
  }

  clampReplicas(n: number): number {
    return Math.min(this.scale.max, Math.max(this.scale.min, Math.floor(n)));
  }

  setReplicas(n: number, reason: string): number {
    const next = this.clampReplicas(n);
    if (next !== this.desired) {
      this.ctx.logs.runtime.info('scale', { fn: this.name, from: this.desired, to: next, reason });
      this.desired = next;
    }
    this.reconcile();
    return next;
  }

  /** A scale by hand: sets the count now, and the floor the autoscaler keeps from now on. */
  scaleByHand(n: number): number {
    const next = this.setReplicas(n, 'api');
    this.floor = next;
    return next;
  }

  /** Whether the idler took every replica away (com.openfaas.scale.zero): the next call wakes it. */
  get asleep(): boolean {
    return this.desired === 0 && !this.stopped && this.scale.zeroAfterMs !== undefined;
  }

  /**
   * Scale to zero (docs/runtime.md "Scale to zero"): a function with com.openfaas.scale.zero and
   * nothing in flight or invoked for its zero-duration gives up its replicas. True if it did.
   */
  sleepIfIdle(now = Date.now()): boolean {
    const after = this.scale.zeroAfterMs;
    if (after === undefined || this.stopped || this.desired === 0 || this.inflight() > 0 || this.waiting > 0) return false;
    // A replica still starting has not had its chance to serve: idle time begins when it is ready.
    if (this.live().some((r) => r.state === 'starting')) return false;
    if (now - this.lastUsedAt < after) return false;
    this.ctx.logs.runtime.info('scale', {
      fn: this.name,
      from: this.desired,
      to: 0,
      reason: `idle for ${Math.round((now - this.lastUsedAt) / 1000)} s: scale to zero`,
    });
    this.desired = 0;
    this.reconcile();
    return true;
  }

  /** A call for a function scaled to zero: its floor of replicas starts again. True if it was asleep. */
  wake(): boolean {
    if (!this.asleep) return false;
    this.lastUsedAt = Date.now();
    this.ctx.logs.runtime.info('scale', { fn: this.name, from: 0, to: this.floor, reason: 'called while scaled to zero' });
    this.desired = this.floor;
    this.reconcile();
    return true;
  }

  /** Start missing replicas, retire surplus ones (newest first; out of rotation before SIGTERM). */
  reconcile(): void {
    if (this.stopped || this.restartTimer) return;
    const live = this.live();
    for (let i = live.length; i < this.desired; i++) this.spawnReplica();
    if (live.length > this.desired) {
      const surplus = live
        .slice()
        .sort((a, b) => (a.state === b.state ? b.startedAt - a.startedAt : a.state === 'starting' ? -1 : 1))
        .slice(0, live.length - this.desired);
      for (const r of surplus) void this.retire(r, 'scale down');
    }
  }

  private spawnReplica(): Replica {
    const r = new Replica({
      fn: this.name,
      id: `${this.name}-${++this.seq}`,
      bundle: this.bundle,
      cwd: this.spec.handler,
      env: this.childEnv(),
      logs: this.ctx.logs,
    });
    this.replicas.push(r);
    void r.start().then(
      () => {
        this.ctx.logs.runtime.info('replica started', { fn: this.name, replica: r.id, pid: r.pid, port: r.port });
        void r.whenReady().then((ok) => {
          if (ok) {
            this.lastUsedAt = Date.now();
            this.ctx.logs.runtime.info('replica ready', { fn: this.name, replica: r.id, pid: r.pid, ms: Date.now() - r.startedAt });
            for (const w of [...this.readyWaiters]) w();
          }
        });
      },
      (err: Error) => this.ctx.logs.runtime.error('replica start failed', { fn: this.name, replica: r.id, err: err.message }),
    );
    void r.exited.then((exit) => this.onExit(r, exit.code, exit.signal));
    return r;
  }

  private onExit(r: Replica, code: number | null, signal: NodeJS.Signals | null): void {
    const expected = this.stopped || r.retiring;
    this.replicas = this.replicas.filter((x) => x !== r);
    const upMs = Date.now() - r.startedAt;
    const fields = { fn: this.name, replica: r.id, pid: r.pid, code, signal, upMs, served: r.served, inflight: r.inflight };
    if (expected) {
      this.ctx.logs.runtime.info('replica stopped', fields);
      return;
    }
    this.unexpectedExits++;
    if (upMs >= this.ctx.backoff.resetAfterMs) this.backoffMs = this.ctx.backoff.initialMs;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.ctx.backoff.maxMs, this.backoffMs * 2);
    this.ctx.logs.runtime.warn('replica exited, restarting', { ...fields, restartInMs: delay });
    if (!this.restartTimer) {
      this.restartTimer = setTimeout(() => {
        this.restartTimer = null;
        this.reconcile();
      }, delay);
    }
  }

  async retire(r: Replica, reason: string): Promise<void> {
    if (r.retiring) return r.exited.then(() => undefined);
    r.retiring = true;
    this.ctx.logs.runtime.info('replica stopping', { fn: this.name, replica: r.id, pid: r.pid, reason });
    await r.stop(this.watchdog.writeTimeoutMs);
  }

  /** Replace the spec; replicas are replaced one by one (new one ready, then the old one retired). */
  update(spec: FunctionSpec): void {
    this.checkDeployable(spec);
    if (sameButSchedule(this.spec, spec)) {
      // Only when the cron-connector fires it changed (a configuration bundle's schedule, docs/config-bundles.md):
      // the replicas run the same code with the same settings, so none is replaced.
      this.spec = spec;
      return;
    }
    const watchdog = watchdogConfig(spec);
    const scale = scaleConfig(spec);
    this.spec = spec;
    this.watchdog = watchdog;
    this.scale = scale;
    this.desired = this.clampReplicas(this.desired);
    this.floor = this.clampReplicas(this.floor);
    const old = this.live();
    for (const o of old) o.outdated = true;
    const before = new Set(this.replicas);
    this.reconcile();
    const fresh = this.replicas.filter((r) => !before.has(r));
    void Promise.all(fresh.map((r) => r.whenReady())).then(() => Promise.all(old.map((o) => this.retire(o, 'update'))));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    for (const w of [...this.readyWaiters]) w();
    await Promise.all(this.replicas.map((r) => this.retire(r, 'shutdown')));
  }
}

/** Annotations read by the cron-connector only: changing them changes no replica. */
const CRON_ANNOTATIONS = new Set(['topic', 'schedule', 'com.cdc-front.schedule.base']);

/** The two specs differ at most in the cron-connector's annotations. */
export function sameButSchedule(a: FunctionSpec, b: FunctionSpec): boolean {
  const strip = (s: FunctionSpec) => ({
    ...s,
    annotations: Object.fromEntries(
      Object.entries(s.annotations)
        .filter(([k]) => !CRON_ANNOTATIONS.has(k))
        .sort(([x], [y]) => x.localeCompare(y)),
    ),
    environment: Object.fromEntries(Object.entries(s.environment).sort(([x], [y]) => x.localeCompare(y))),
    labels: Object.fromEntries(Object.entries(s.labels).sort(([x], [y]) => x.localeCompare(y))),
    secrets: [...s.secrets].sort(),
  });
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b));
}
