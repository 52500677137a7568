/**
 * cdc-front's own OpenFaaS-compatible runtime: reads stack.yml, runs every function bundle as child
 * processes behind a watchdog, serves the gateway API on the admin port and the hospital ports,
 * fires cron annotations, autoscales on in-flight requests. See docs/runtime.md.
 *
 *   const rt = await startRuntime({ stackFile: 'stack.yml' });
 *   … rt.gatewayUrl, rt.portUrls.data …
 *   await rt.close();
 */
import { assertPlatform } from '../../shared/platform/index.js';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { projectRoot } from '../root.js';
import { systemApi } from './api.js';
import { AsyncQueue } from './async.js';
import { ensureCredentials, readCredentials, type Credentials } from './auth.js';
import { Autoscaler, type AutoscalerOptions } from './autoscaler.js';
import { CronScheduler } from './cron.js';
import { bodyBudgets, runtimeLimits, type RuntimeLimits } from './limits.js';
import { Listeners } from './listeners.js';
import { RuntimeMetrics } from './metrics.js';
import { LogStore, type RotationOptions, type RuntimeLogger } from './logs.js';
import { declaredOf, type HospitalPortSpec } from './ports.js';
import type { RouterOptions } from './proxy.js';
import { Registry, type BuildPolicy } from './registry.js';
import type { ReplicaState } from './replica.js';
import { loadStack, type FunctionSpec } from './stack.js';
import type { PortTls } from './tls.js';

export type { HospitalPortSpec } from './ports.js';
export type { BuildPolicy } from './registry.js';
export type { Credentials } from './auth.js';
export type { PortTls, ClientCertMode } from './tls.js';
export type { RuntimeLimits } from './limits.js';

export interface RuntimeOptions {
  /** Path to stack.yml. */
  stackFile: string;
  /** Variables for ${VAR} substitution in stack.yml and for the port variables; they override process.env. */
  env?: Record<string, string>;
  /** Where functions/<service> is looked up for deployments through the API. Default: the stack file's folder. */
  projectDir?: string;
  /** Secret files (one file per secret, plus basic-auth-user/-password). Default: <cwd>/.data/secrets. */
  secretsDir?: string;
  /** Log files. Default: <cwd>/.data/logs. */
  logsDir?: string;
  logRotation?: RotationOptions;
  /** Also print the runtime's own events on stdout (default true). */
  logToStdout?: boolean;
  /** Admin gateway. Default 127.0.0.1 and GATEWAY_PORT or 8080; port 0 picks a free one. */
  gateway?: { host?: string; port?: number };
  /** Hospital ports; false opens none. Default host 0.0.0.0, ports from DATA_PORT, CONFIG_PORT, MONITOR_PORT, WEB_PORT. */
  hospital?: false | { host?: string; ports?: HospitalPortSpec[] };
  /** Cron connector; false disables it. Time zone default: CRON_TZ or Asia/Shanghai. */
  cron?: false | { timezone?: string };
  /** Capacity autoscaler; false disables it. Defaults: every 2000 ms, scale down after 30000 ms stable. */
  autoscaler?: false | Partial<AutoscalerOptions>;
  /** Build bundles with infra/build/build.mjs: when missing (default), always, or never (fail naming the bundle). */
  build?: BuildPolicy;
  /** Restart backoff of a dead replica. Defaults: 250 ms doubling to 10 s, reset after 10 s up. */
  backoff?: Partial<{ initialMs: number; maxMs: number; resetAfterMs: number }>;
  /** How often functions with com.openfaas.scale.zero are checked for idleness (ms). Default 5000. */
  idleCheckMs?: number;
  /** How long a request waits for a starting replica. Default 10 s (never beyond the timeout). */
  readyWaitMs?: number;
  /** Wait for every function's replicas to be ready before resolving (default true, bounded by 30 s). */
  waitReady?: boolean;
  /** Async queue: concurrent invocations and queued ones (beyond: 429). Defaults 4 and 1000. */
  async?: { concurrency?: number; maxQueued?: number };
  /** Timeouts and caps of every port; default from the RUNTIME_* variables (limits.ts, docs/runtime.md "Limits"). */
  limits?: Partial<RuntimeLimits>;
}

export interface ReplicaInfo {
  id: string;
  pid: number | undefined;
  port: number;
  state: ReplicaState;
  inflight: number;
  /** Requests dispatched to it so far. */
  served: number;
}

export interface RuntimeHandle {
  /** http://host:port of the admin gateway. */
  gatewayUrl: string;
  /** Hospital ports by key (data, config, monitor, web, or port-<n>): http://host:port, or https:// with TLS. */
  portUrls: Record<string, string>;
  /** TLS of each hospital port that terminates it, by key (<P>_TLS_* variables; docs/runtime.md, "TLS"). */
  portTls: Record<string, { clientCert: PortTls['clientCert']; minVersion: PortTls['minVersion']; files: PortTls['files'] }>;
  /**
   * Re-reads every TLS port's certificate, key and client CA files and applies them to new
   * connections (certificate renewal without a restart; main.ts does it on SIGHUP). All or nothing:
   * on an error nothing changes and the error (naming the port and file) is thrown.
   */
  reloadTls(): void;
  /** The /system basic-auth credentials. */
  credentials: Credentials;
  secretsDir: string;
  logsDir: string;
  timezone: string;
  /** Names of the deployed functions. */
  functions(): string[];
  /** The cron-connector's schedules by function (empty with cron off). */
  schedules(): Record<string, string>;
  /** A function's replicas (for operators and tests). */
  replicas(fn: string): ReplicaInfo[];
  /** Waits until `fn` has exactly its desired number of ready replicas. */
  waitForReplicas(fn: string, timeoutMs?: number): Promise<boolean>;
  /** Drain: stop taking requests, SIGTERM every replica, wait up to write_timeout, SIGKILL, close sockets. */
  close(): Promise<void>;
}

const VERSION = readVersion();

function readVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export async function startRuntime(opts: RuntimeOptions): Promise<RuntimeHandle> {
  // Replicas run on this same node (process.execPath): one that cannot run them is refused here,
  // before anything listens (docs/runtime.md "Node.js and its OpenSSL").
  assertPlatform();
  const vars: Record<string, string | undefined> = { ...process.env, ...opts.env };
  const stackFile = resolve(opts.stackFile);
  const secretsDir = resolve(opts.secretsDir ?? '.data/secrets');
  const logsDir = resolve(opts.logsDir ?? '.data/logs');
  const timezone = (opts.cron ? opts.cron.timezone : undefined) || vars.CRON_TZ || 'Asia/Shanghai';

  const logs = new LogStore(logsDir, { ...(opts.logRotation ? { rotation: opts.logRotation } : {}), stdout: opts.logToStdout ?? true });
  const log = logs.runtime;
  const stack = loadStack(stackFile, vars);
  ensureCredentials(secretsDir, { development: vars.CDC_ENV !== 'production' });
  const creds = readCredentials(secretsDir);
  const hosts = new Map<string, string>();
  const registry = new Registry({
    projectDir: resolve(opts.projectDir ?? dirname(stackFile)),
    build: opts.build ?? 'missing',
    ctx: { logs, secretsDir, baseEnv: vars, hosts, backoff: { initialMs: 250, maxMs: 10_000, resetAfterMs: 10_000, ...opts.backoff } },
  });
  const limits = runtimeLimits(vars, opts.limits);
  const router: RouterOptions = { readyWaitMs: opts.readyWaitMs ?? 10_000 };
  const metrics = new RuntimeMetrics(registry);
  const budgets = bodyBudgets(limits.maxBufferedBytes, limits.maxBufferedBytesPerCaller);
  metrics.watchBodies([budgets.all, budgets.data, budgets.others]);
  const listeners = new Listeners({
    log,
    registry,
    api: systemApi(
      registry,
      () => creds,
      { version: VERSION, sha: process.env.GIT_SHA ?? 'dev', cronTimezone: timezone },
      () => secretsDir,
    ),
    asyncQueue: new AsyncQueue(log, { router, concurrency: opts.async?.concurrency ?? 4, maxQueued: opts.async?.maxQueued ?? 1000 }),
    budgets,
    router,
    limits,
    declared: declaredOf(stack.functions),
    vars,
    secretsDir,
    metrics,
  });

  await bindPorts(listeners, hosts, opts, vars, logs);
  await deployStack(stack.functions, registry, listeners, logs);
  const bg = startBackground(registry, log, { timezone, router, metrics, opts, autoscaleCeiling: limits.autoscaleCeiling });
  const waitForReplicas = (fn: string, timeoutMs = 30_000) => replicasReady(registry, fn, timeoutMs);
  if (opts.waitReady !== false) await awaitReady(registry, log, waitForReplicas);
  log.info('runtime started', { gateway: listeners.gatewayUrl, ports: listeners.portUrls, functions: registry.list().map((s) => s.name), timezone });

  let closed: Promise<void> | null = null;
  const close = () =>
    (closed ??= (async () => {
      listeners.closing = true;
      log.info('runtime draining');
      bg.stop();
      listeners.stopAccepting();
      await registry.stopAll();
      await listeners.drain();
      log.info('runtime stopped');
      logs.close();
    })());

  return {
    gatewayUrl: listeners.gatewayUrl,
    portUrls: listeners.portUrls,
    portTls: listeners.tlsSummary(),
    reloadTls: () => listeners.reloadTls(),
    credentials: creds,
    secretsDir,
    logsDir,
    timezone,
    functions: () => registry.list().map((s) => s.name),
    schedules: () => bg.cron?.list() ?? {},
    replicas: (fn) =>
      (registry.get(fn)?.replicas ?? []).map((r) => ({ id: r.id, pid: r.pid, port: r.port, state: r.state, inflight: r.inflight, served: r.served })),
    waitForReplicas,
    close,
  };
}

/** Binds every port before starting any process: a taken port fails fast, naming itself. */
async function bindPorts(listeners: Listeners, hosts: Map<string, string>, opts: RuntimeOptions, vars: Record<string, string | undefined>, logs: LogStore) {
  try {
    const gwAddr = await listeners.bindGateway(opts.gateway?.host ?? '127.0.0.1', opts.gateway?.port ?? Number(vars.GATEWAY_PORT ?? 8080));
    // The gateway's names on faasd and Kubernetes lead here (service.ts resolveHosts).
    for (const name of ['gateway', 'gateway.openfaas']) hosts.set(name, gwAddr);
    if (opts.hospital !== false) await listeners.bindHospital(opts.hospital?.host ?? '0.0.0.0', opts.hospital?.ports);
  } catch (err) {
    listeners.stopAccepting();
    logs.close();
    throw err;
  }
}

/** Deploys the stack's functions, one after another; a failure stops what started and closes the ports. */
async function deployStack(functions: FunctionSpec[], registry: Registry, listeners: Listeners, logs: LogStore) {
  try {
    for (const spec of functions) await registry.apply(spec);
  } catch (err) {
    listeners.closing = true;
    listeners.stopAccepting();
    await registry.stopAll();
    logs.close();
    throw err;
  }
}

/** The cron-connector, the autoscaler and the idler; stop() ends all three. */
function startBackground(
  registry: Registry,
  log: RuntimeLogger,
  o: { timezone: string; router: RouterOptions; metrics: RuntimeMetrics; opts: RuntimeOptions; autoscaleCeiling: number },
): { cron: CronScheduler | null; stop(): void } {
  const cron =
    o.opts.cron === false
      ? null
      : new CronScheduler(registry, log, { timezone: o.timezone, router: o.router, onFired: (fn, status) => o.metrics.cronFired(fn, status) });
  cron?.sync();
  const autoscaler =
    o.opts.autoscaler === false
      ? null
      : new Autoscaler(registry, { intervalMs: 2000, scaleDownWindowMs: 30_000, ceiling: o.autoscaleCeiling, ...o.opts.autoscaler });
  autoscaler?.start();
  // The idler (OpenFaaS's faas-idler): functions labelled com.openfaas.scale.zero give up their
  // replicas after their zero-duration with nothing invoked; the next call wakes them (proxy.ts).
  const idler = setInterval(() => {
    for (const svc of registry.list()) svc.sleepIfIdle();
  }, o.opts.idleCheckMs ?? 5000);
  idler.unref();
  // Deployments through the API can add or change schedules.
  const cronSync = cron ? setInterval(() => cron.sync(), 1000) : null;
  cronSync?.unref();
  return {
    cron,
    stop() {
      cron?.stop();
      if (cronSync) clearInterval(cronSync);
      autoscaler?.stop();
      clearInterval(idler);
    },
  };
}

/** Waits for every function's replicas; the ones not ready in time are logged, not fatal. */
async function awaitReady(registry: Registry, log: RuntimeLogger, waitForReplicas: (fn: string) => Promise<boolean>) {
  const ok = await Promise.all(registry.list().map((s) => waitForReplicas(s.name)));
  if (ok.includes(false))
    log.warn('some functions are not ready yet', {
      functions: registry
        .list()
        .filter((_, i) => !ok[i])
        .map((s) => s.name),
    });
}

/** Until `fn` has exactly its desired number of replicas, all ready (false after the timeout). */
async function replicasReady(registry: Registry, fn: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const svc = registry.get(fn);
    if (svc && svc.ready().length === svc.desired && svc.live().length === svc.desired) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}
