/**
 * cdc-front's own OpenFaaS-compatible runtime: reads stack.yml, runs every function bundle as child
 * processes behind a watchdog, serves the gateway API on the admin port and the hospital ports,
 * fires cron annotations, autoscales on in-flight requests. See docs/runtime.md.
 *
 *   const rt = await startRuntime({ stackFile: 'stack.yml' });
 *   … rt.gatewayUrl, rt.portUrls.data …
 *   await rt.close();
 */
import { readFileSync } from 'node:fs';
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createSecureContext, type TLSSocket } from 'node:tls';
import { dirname, resolve } from 'node:path';
import { getRequestListener } from '@hono/node-server';
import { FUNCTION_NAMESPACE, systemApi } from './api.js';
import { AsyncQueue } from './async.js';
import { ensureCredentials, readCredentials, type Credentials } from './auth.js';
import { Autoscaler, type AutoscalerOptions } from './autoscaler.js';
import { CronScheduler } from './cron.js';
import { BodyBudget, runtimeLimits, type RuntimeLimits } from './limits.js';
import { LogStore, type RuntimeLogger, type RotationOptions } from './logs.js';
import { declaredOf, defaultHospitalPorts, routeHospital, type HospitalPortSpec } from './ports.js';
import { callMeta, continueIfExpected, hisAnswer, malformedPath, readBody, refuseBody, sendError, serveInvocation, upstreamHeaders, type RouterOptions, type ServeContext } from './proxy.js';
import { Registry, type BuildPolicy } from './registry.js';
import type { ReplicaState } from './replica.js';
import { loadStack } from './stack.js';
import { hospitalTls, portTls, rejectedClientCert, type PortTls } from './tls.js';

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
    return (JSON.parse(readFileSync(resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** A /system request body larger than this is refused (413) before Hono reads it. */
const MAX_API_BODY_BYTES = 1024 * 1024;
/** How often Node checks headersTimeout and requestTimeout on open connections. */
const CONNECTIONS_CHECK_MS = 1000;

/**
 * Timeouts and connection caps of one listening port (docs/runtime.md, "Limits"), and every error a
 * server or its sockets can raise handled: a malformed request, a connection reset, a failed accept
 * (EMFILE) must never end the runtime.
 */
function harden(server: Server, role: string, limits: RuntimeLimits, log: RuntimeLogger, perPeer: boolean): void {
  // Idle keep-alive connections are kept longer than a caller's pool keeps them (HIS HTTP clients
  // commonly evict after 30–60 s): a server-side close racing a reuse is a reset the caller sees.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  server.maxConnections = limits.maxConnections;

  // Bytes that are not HTTP, a header section too large, a request that took too long: answered as
  // Node answers them by default (400, 431, 408) and closed.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    socket.on('error', () => undefined);
    const written = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
    if (err.code === 'ECONNRESET' || !socket.writable || written) {
      socket.destroy();
      return;
    }
    const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    setTimeout(() => socket.destroy(), 1000).unref();
  });

  const noted = new Map<string, number>();
  const note = (what: string, fields: Record<string, unknown>) => {
    const now = Date.now();
    if ((noted.get(what) ?? 0) > now - 60_000) return;
    noted.set(what, now);
    log.warn(what, { role, ...fields });
  };
  server.on('drop', (d?: { remoteAddress?: string }) => note('connection refused: port at its connection cap', { maxConnections: limits.maxConnections, peer: d?.remoteAddress }));

  if (perPeer) {
    // A hospital port is open to the network: one peer address cannot hold all its connections.
    const perAddress = new Map<string, number>();
    server.on('connection', (socket: Socket) => {
      const peer = socket.remoteAddress ?? '';
      const n = (perAddress.get(peer) ?? 0) + 1;
      perAddress.set(peer, n);
      socket.once('close', () => {
        const left = (perAddress.get(peer) ?? 1) - 1;
        if (left > 0) perAddress.set(peer, left);
        else perAddress.delete(peer);
      });
      if (n > limits.maxConnectionsPerPeer) {
        note('connection refused: peer at its connection cap', { peer, maxConnectionsPerPeer: limits.maxConnectionsPerPeer });
        socket.destroy();
      }
    });
  }
}

function listen(server: Server, port: number, host: string, role: string, log: RuntimeLogger): Promise<number> {
  return new Promise((resolveListen, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') reject(new Error(`port ${port} (${role}) is already in use`));
      else if (err.code === 'EACCES') reject(new Error(`port ${port} (${role}): permission denied`));
      else reject(new Error(`port ${port} (${role}): ${err.message}`));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      // After the bind, an error is a failed accept (EMFILE: too many open files): logged, never fatal.
      server.on('error', (err: NodeJS.ErrnoException) => log.error('server error', { port, role, code: err.code, err: err.message }));
      resolveListen((server.address() as AddressInfo).port);
    });
  });
}

function urlFor(host: string, port: number, scheme = 'http'): string {
  const h = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `${scheme}://${h}:${port}`;
}

export async function startRuntime(opts: RuntimeOptions): Promise<RuntimeHandle> {
  const vars: Record<string, string | undefined> = { ...process.env, ...opts.env };
  const stackFile = resolve(opts.stackFile);
  const projectDir = resolve(opts.projectDir ?? dirname(stackFile));
  const secretsDir = resolve(opts.secretsDir ?? '.data/secrets');
  const logsDir = resolve(opts.logsDir ?? '.data/logs');
  const timezone = (opts.cron && opts.cron.timezone) || vars.CRON_TZ || 'Asia/Shanghai';

  const logs = new LogStore(logsDir, { ...(opts.logRotation ? { rotation: opts.logRotation } : {}), stdout: opts.logToStdout ?? true });
  const log = logs.runtime;
  const stack = loadStack(stackFile, vars);
  // What stack.yml declares: a declared function not running yet is answered 503, not 404 (ports.ts).
  const declared = declaredOf(stack.functions);
  ensureCredentials(secretsDir);
  let creds = readCredentials(secretsDir);

  const limits = runtimeLimits(vars, opts.limits);
  const budget = new BodyBudget(limits.maxBufferedBytes);
  const router: RouterOptions = { readyWaitMs: opts.readyWaitMs ?? 10_000 };
  const hosts = new Map<string, string>();
  const registry = new Registry({
    projectDir,
    build: opts.build ?? 'missing',
    ctx: {
      logs,
      secretsDir,
      baseEnv: vars,
      hosts,
      backoff: { initialMs: 250, maxMs: 10_000, resetAfterMs: 10_000, ...opts.backoff },
    },
  });

  let closing = false;
  const serveCtx: ServeContext = {
    router,
    budget,
    isClosing: () => closing,
    onError: (f) => log.warn('invocation failed', f),
  };
  const hospitalCtx: ServeContext = { ...serveCtx, his: true };
  const asyncQueue = new AsyncQueue(log, { router, concurrency: opts.async?.concurrency ?? 4, maxQueued: opts.async?.maxQueued ?? 1000 });
  const api = systemApi(registry, () => creds, { version: VERSION, sha: process.env.GIT_SHA ?? 'dev' }, () => secretsDir);
  const apiListener = getRequestListener(api.fetch);

  const active = new Set<ServerResponse>();
  const track = (res: ServerResponse) => {
    active.add(res);
    res.once('close', () => active.delete(res));
  };
  const fail = (res: ServerResponse, err: unknown, his: boolean) => {
    log.error('request handler failed', { err: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
    try {
      sendError(res, 500, 'internal error', { 'x-openfaas-internal': 'gateway', connection: 'close' }, his);
    } catch {
      res.destroy();
    }
  };
  /**
   * Every request listener of the runtime runs inside this guard: whatever a handler throws, at once
   * or later, is logged and answered 500, and the request's and response's stream errors (a caller
   * gone mid-body, a write after the socket closed) are handled. Nothing leaves the listener.
   */
  const guard =
    (handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>, his = false) =>
    (req: IncomingMessage, res: ServerResponse): void => {
      req.on('error', () => undefined);
      res.on('error', () => undefined);
      track(res);
      try {
        const p = handler(req, res);
        if (p) p.catch((e: unknown) => fail(res, e, his));
      } catch (e) {
        fail(res, e, his);
      }
    };

  const gatewayHandler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = req.url ?? '/';
    if (malformedPath(url)) return sendError(res, 400, 'malformed percent-escape in the path');
    const m = /^\/(function|async-function)\/([^/?]+)([^?]*)(\?.*)?$/.exec(url);
    if (!m) {
      if (closing && url.startsWith('/system/')) return sendError(res, 503, 'runtime is shutting down', { connection: 'close' });
      if (Number(req.headers['content-length'] ?? 0) > MAX_API_BODY_BYTES) return refuseBody(req, res, 413, `request body larger than ${MAX_API_BODY_BYTES} bytes`);
      continueIfExpected(req, res);
      return apiListener(req, res);
    }
    const [, kind, qualified, rest, query] = m;
    // `<fn>.<namespace>` as faas-cli's `invoke -n` sends it: the one namespace is openfaas-fn.
    const dot = qualified!.indexOf('.');
    const name = dot < 0 ? qualified! : qualified!.slice(0, dot);
    if (dot >= 0 && qualified!.slice(dot + 1) !== FUNCTION_NAMESPACE) return sendError(res, 404, `namespace ${qualified!.slice(dot + 1)} not found`, { 'x-openfaas-internal': 'gateway' });
    const svc = registry.get(name);
    if (!svc) return sendError(res, 404, `function ${name} not found`, { 'x-openfaas-internal': 'gateway' });
    const path = (rest || '/') + (query ?? '');
    if (kind === 'function') return serveInvocation(svc, path, req, res, serveCtx);
    if (closing) return sendError(res, 503, 'runtime is shutting down', { connection: 'close' });
    const read = await readBody(req, svc.watchdog.maxBodyBytes, budget, () => continueIfExpected(req, res));
    if (!read.ok) return refuseBody(req, res, read.status, `${svc.name}: ${read.message}`, { 'x-openfaas-internal': 'gateway' });
    const meta = callMeta(req);
    const cb = req.headers['x-callback-url'];
    const ok = asyncQueue.enqueue({
      svc,
      callId: meta.callId,
      inv: { method: req.method ?? 'POST', path, headers: upstreamHeaders(req, meta), body: read.body },
      release: read.release,
      ...(typeof cb === 'string' && /^https?:\/\//.test(cb) ? { callbackUrl: cb } : {}),
    });
    if (!ok) {
      read.release();
      return sendError(res, 429, 'async queue full', { 'x-call-id': meta.callId, 'x-openfaas-internal': 'gateway' });
    }
    res.writeHead(202, { 'x-call-id': meta.callId, 'x-start-time': meta.startTime });
    res.end();
  };

  // Failed handshakes (no client certificate on a required port, TLS < 1.2, not TLS at all), logged
  // at most once a minute per peer address and port: a scanner must not flood the log.
  const tlsFailuresLogged = new Map<string, number>();
  const tlsFailure = (spec: HospitalPortSpec, err: NodeJS.ErrnoException, socket: TLSSocket) => {
    const peer = socket.remoteAddress ?? '';
    const k = `${spec.port} ${peer}`;
    const now = Date.now();
    if ((tlsFailuresLogged.get(k) ?? 0) > now - 60_000) return;
    if (tlsFailuresLogged.size > 10_000) tlsFailuresLogged.clear();
    tlsFailuresLogged.set(k, now);
    log.warn('tls handshake failed', { port: spec.port, role: spec.role, peer, code: err.code, err: err.message.split('\n')[0] });
  };

  const servers: Server[] = [];
  const closeServers = () => {
    for (const s of servers) {
      s.close();
      s.closeIdleConnections();
    }
  };

  // Bind every port before starting any process: a taken port fails fast, naming itself.
  let gatewayUrl = '';
  const portUrls: Record<string, string> = {};
  const tlsServers = new Map<string, { spec: HospitalPortSpec; server: HttpsServer; tls: PortTls }>();
  try {
    const gwHost = opts.gateway?.host ?? '127.0.0.1';
    const gwPort = opts.gateway?.port ?? Number(vars.GATEWAY_PORT ?? 8080);
    const gwListener = guard(gatewayHandler);
    const gw = createServer({ connectionsCheckingInterval: CONNECTIONS_CHECK_MS }, gwListener);
    // A caller that waits for "100 Continue" is answered by the same listener, which sends it only
    // when the body is going to be read (an oversized one gets its 413 without being sent).
    gw.on('checkContinue', gwListener);
    harden(gw, 'admin gateway', limits, log, false);
    servers.push(gw);
    const boundGw = await listen(gw, gwPort, gwHost, 'admin gateway', log);
    gatewayUrl = urlFor(gwHost, boundGw);
    // The gateway's names on faasd and Kubernetes lead here (service.ts resolveHosts).
    const gwAddr = new URL(gatewayUrl).host;
    for (const name of ['gateway', 'gateway.openfaas']) hosts.set(name, gwAddr);

    if (opts.hospital !== false) {
      const host = opts.hospital?.host ?? '0.0.0.0';
      const specs = opts.hospital?.ports ?? defaultHospitalPorts(vars);
      // Every certificate and key read and checked before any hospital port is bound.
      const tlsByKey = hospitalTls(specs, vars, secretsDir);
      for (const spec of specs) {
        let bound = 0;
        const tls = tlsByKey.get(spec.key);
        const handler = guard((req: IncomingMessage, res: ServerResponse) => {
          if (tls?.clientCert === 'optional') {
            const bad = rejectedClientCert(req.socket as TLSSocket);
            if (bad) {
              res.writeHead(400, { 'content-type': 'application/json', connection: 'close' });
              res.end(JSON.stringify({ error: 'client_certificate_invalid', reason: bad, port: spec.port, ...hisAnswer(400, `client certificate refused: ${bad}`) }) + '\n');
              return;
            }
          }
          const route = routeHospital(req.url ?? '/', spec, bound, registry.list(), declared);
          if ('svc' in route) return serveInvocation(route.svc, route.path, req, res, hospitalCtx);
          res.writeHead(route.status, { 'content-type': 'application/json', ...(route.retryAfterS ? { 'retry-after': String(route.retryAfterS) } : {}) });
          res.end(JSON.stringify({ error: route.error, ...route.detail }) + '\n');
        }, true);
        let srv: Server;
        if (tls) {
          const https = createHttpsServer({ ...tls.options, connectionsCheckingInterval: CONNECTIONS_CHECK_MS, handshakeTimeout: limits.headersTimeoutMs }, handler);
          https.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => tlsFailure(spec, err, socket));
          tlsServers.set(spec.key, { spec, server: https, tls });
          srv = https;
        } else {
          srv = createServer({ connectionsCheckingInterval: CONNECTIONS_CHECK_MS }, handler);
        }
        srv.on('checkContinue', handler);
        harden(srv, `${spec.role}, port ${spec.port}`, limits, log, true);
        servers.push(srv);
        bound = await listen(srv, spec.port, host, spec.role, log);
        portUrls[spec.key] = urlFor(host, bound, tls ? 'https' : 'http');
        if (tls) {
          log.info('tls enabled', { port: bound, role: spec.role, clientCert: tls.clientCert, minVersion: tls.minVersion, ...tls.files, certSubject: tls.cert.subject, certValidTo: tls.cert.validTo });
          if (tls.cert.expired) log.warn('tls server certificate has expired', { port: bound, cert: tls.files.cert, validTo: tls.cert.validTo });
        }
      }
    }
  } catch (err) {
    closeServers();
    logs.close();
    throw err;
  }

  try {
    for (const spec of stack.functions) await registry.apply(spec);
  } catch (err) {
    closing = true;
    closeServers();
    await registry.stopAll();
    logs.close();
    throw err;
  }

  const cron = opts.cron === false ? null : new CronScheduler(registry, log, { timezone, router });
  cron?.sync();
  const autoscaler = opts.autoscaler === false ? null : new Autoscaler(registry, { intervalMs: 2000, scaleDownWindowMs: 30_000, ...opts.autoscaler });
  autoscaler?.start();
  // Deployments through the API can add or change schedules.
  const cronSync = cron ? setInterval(() => cron.sync(), 1000) : null;
  cronSync?.unref();

  const waitForReplicas = async (fn: string, timeoutMs = 30_000): Promise<boolean> => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const svc = registry.get(fn);
      if (svc && svc.ready().length === svc.desired && svc.live().length === svc.desired) return true;
      await new Promise((r) => setTimeout(r, 25));
    }
    return false;
  };
  if (opts.waitReady !== false) {
    const ok = await Promise.all(registry.list().map((s) => waitForReplicas(s.name)));
    if (ok.includes(false)) log.warn('some functions are not ready yet', { functions: registry.list().filter((_, i) => !ok[i]).map((s) => s.name) });
  }
  log.info('runtime started', { gateway: gatewayUrl, ports: portUrls, functions: registry.list().map((s) => s.name), timezone });

  let closed: Promise<void> | null = null;
  const close = () =>
    (closed ??= (async () => {
      closing = true;
      log.info('runtime draining');
      cron?.stop();
      if (cronSync) clearInterval(cronSync);
      autoscaler?.stop();
      for (const s of servers) s.close();
      for (const s of servers) s.closeIdleConnections();
      await registry.stopAll();
      const until = Date.now() + 2000;
      while (active.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((r) => {
              s.closeAllConnections();
              if (!s.listening) return r();
              s.close(() => r());
            }),
        ),
      );
      log.info('runtime stopped');
      logs.close();
    })());

  const reloadTls = () => {
    const next = [...tlsServers.values()].map((t) => {
      const fresh = portTls(t.spec, vars, secretsDir);
      const where = `port ${t.spec.port} (${t.spec.role})`;
      if (!fresh) throw new Error(`${where}: TLS cannot be switched off by a reload (restart the runtime)`);
      // The certificates, key and CA bundle are the secure context; the client certificate mode and
      // the minimum version are read when the server is created.
      if (fresh.clientCert !== t.tls.clientCert) throw new Error(`${where}: ${fresh.prefix}_TLS_CLIENT_CERT changed (${t.tls.clientCert} → ${fresh.clientCert}): restart the runtime`);
      if (fresh.minVersion !== t.tls.minVersion) throw new Error(`${where}: ${fresh.prefix}_TLS_MIN_VERSION changed: restart the runtime`);
      // Built here once so that OpenSSL's own objections come before any port has changed.
      try {
        createSecureContext(fresh.options);
      } catch (err) {
        throw new Error(`${where}: ${(err as Error).message}`);
      }
      return { t, fresh };
    });
    for (const { t, fresh } of next) {
      t.server.setSecureContext(fresh.options);
      t.tls = fresh;
      log.info('tls reloaded', { port: t.spec.port, ...fresh.files, certSubject: fresh.cert.subject, certValidTo: fresh.cert.validTo });
    }
  };

  return {
    gatewayUrl,
    portUrls,
    portTls: Object.fromEntries([...tlsServers].map(([k, t]) => [k, { clientCert: t.tls.clientCert, minVersion: t.tls.minVersion, files: t.tls.files }])),
    reloadTls,
    get credentials() {
      return creds;
    },
    secretsDir,
    logsDir,
    timezone,
    functions: () => registry.list().map((s) => s.name),
    replicas: (fn) =>
      (registry.get(fn)?.replicas ?? []).map((r) => ({ id: r.id, pid: r.pid, port: r.port, state: r.state, inflight: r.inflight, served: r.served })),
    waitForReplicas,
    close,
  };
}

