/**
 * The runtime's listening ports: the admin gateway (the OpenFaaS gateway API and /function/<name>)
 * and the hospital ports (docs/runtime.md "Hospital ports", "Limits", "TLS"). Every request listener
 * runs inside one guard, every server is hardened the same way, and the whole set is bound before
 * any function starts, closed together and drained together.
 */
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createSecureContext, type TLSSocket } from 'node:tls';
import { getRequestListener } from '@hono/node-server';
import { API_BODY_BYTES, FUNCTION_NAMESPACE } from './api.js';
import type { AsyncQueue } from './async.js';
import { type bodyBudgets, CallerSlots, type CallerShares, type RuntimeLimits } from './limits.js';
import type { RuntimeLogger } from './logs.js';
import { type declaredOf, defaultHospitalPorts, refusalBody, routeHospital, type HospitalPortSpec } from './ports.js';
import type { PageRequest } from './refusal-page.js';
import {
  answerShape,
  callMeta,
  continueIfExpected,
  errorAnswer,
  hisAnswer,
  malformedPath,
  peerAddress,
  severalHosts,
  readBody,
  refuseBody,
  sendError,
  serveInvocation,
  upstreamHeaders,
  type AnswerShape,
  type RouterOptions,
  type ServeContext,
} from './proxy.js';
import type { RuntimeMetrics } from './metrics.js';
import type { Registry } from './registry.js';
import { hospitalTls, portTls, rejectedClientCert, type PortTls } from './tls.js';

/** How often Node checks headersTimeout and requestTimeout on open connections. */
const CONNECTIONS_CHECK_MS = 1000;

/**
 * Timeouts and connection caps of one listening port (docs/runtime.md, "Limits"), and every error a
 * server or its sockets can raise handled: a malformed request, a connection reset, a failed accept
 * (EMFILE) must never end the runtime.
 */
export function harden(server: Server, role: string, limits: RuntimeLimits, log: RuntimeLogger, answers: AnswerShape): void {
  // A hospital port (any shape but the admin gateway's plain one) is open to the network.
  const perPeer = answers !== 'plain';
  // Idle keep-alive connections are kept longer than a caller's pool keeps them (HIS HTTP clients
  // commonly evict after 30–60 s): a server-side close racing a reuse is a reset the caller sees.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  // A hospital port makes room at its cap (capByEvictingIdle, below); Node's own cap stays as a
  // backstop above it.
  server.maxConnections = perPeer ? 2 * limits.maxConnections : limits.maxConnections;

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
    // On a hospital port in the shape every other answer there has (the HIS envelope, docs/his-guide.md
    // 应答; the configuration port's refusal, docs/config-bundles.md §3); on the gateway as Node does.
    const reason = status === 408 ? 'request not sent in time' : status === 431 ? 'header section over 16 KiB' : 'not an HTTP/1.1 request';
    const answer = perPeer ? errorAnswer(status, reason, {}, answers) : { headers: {}, body: '' };
    const head = Object.entries(answer.headers)
      .map(([k, v]) => `${k}: ${String(v)}\r\n`)
      .join('');
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\n${head}Content-Length: ${Buffer.byteLength(answer.body)}\r\n\r\n${answer.body}`,
    );
    setTimeout(() => socket.destroy(), 1000).unref();
  });

  const due = onceAMinute();
  const note = (what: string, fields: Record<string, unknown>) => {
    if (due(what)) log.warn(what, { role, ...fields });
  };
  server.on('drop', (d?: { remoteAddress?: string }) =>
    note('connection refused: port at its connection cap', { maxConnections: limits.maxConnections, peer: d?.remoteAddress }),
  );

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
    // After the per-peer check: a connection it refused takes no one's room.
    capByEvictingIdle(server, limits.maxConnections, note);
  }
}

/**
 * A hospital port at its connection cap makes room by closing its longest-idle connection — one with
 * no request in progress: a kept-alive connection between requests, or one that has not finished
 * sending its first request's headers — and refuses the newcomer only when every connection it holds
 * is busy with a request (docs/runtime.md "Limits and the guard"). An idle connection costs whoever
 * opened it nothing: held from a few addresses, each under its per-peer cap, they would otherwise
 * shut every HIS out until the headers timeout. Sockets are the TCP ones (a TLS port's requests are
 * traced back to theirs), so a TLS handshake that never ends is idle too.
 */
function capByEvictingIdle(server: Server, max: number, note: (what: string, fields: Record<string, unknown>) => void): void {
  // Every connection the port holds is in one of the two: idle (oldest first: a connection goes to
  // the end whenever it turns idle) or busy (its requests in progress).
  const idle = new Set<Socket>();
  const busy = new Map<Socket, number>();
  const tcp = (s: Socket) => (s as Socket & { _parent?: Socket })._parent ?? s;
  server.on('connection', (socket: Socket) => {
    if (socket.destroyed) return;
    if (idle.size + busy.size >= max) {
      const oldest = idle.values().next().value;
      if (!oldest) {
        note('connection refused: port at its connection cap', { maxConnections: max, peer: socket.remoteAddress });
        socket.destroy();
        return;
      }
      idle.delete(oldest);
      note('connection closed: idle, the port at its connection cap', { maxConnections: max, peer: oldest.remoteAddress });
      oldest.destroy();
    }
    idle.add(socket);
    socket.once('close', () => {
      idle.delete(socket);
      busy.delete(socket);
    });
  });
  // A request with `Expect: 100-continue` comes as checkContinue (the ports listen to it), not request.
  const started = (req: IncomingMessage, res: ServerResponse) => {
    const socket = tcp(req.socket);
    idle.delete(socket);
    busy.set(socket, (busy.get(socket) ?? 0) + 1);
    res.once('close', () => {
      const n = (busy.get(socket) ?? 1) - 1;
      if (n > 0) busy.set(socket, n);
      else {
        busy.delete(socket);
        if (!socket.destroyed) idle.add(socket);
      }
    });
  };
  server.on('request', started);
  server.on('checkContinue', started);
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

export function urlFor(host: string, port: number, scheme = 'http'): string {
  const h = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `${scheme}://${h}:${port}`;
}

export interface ListenerDeps {
  log: RuntimeLogger;
  registry: Registry;
  /** The /system API (api.ts), served on the gateway's other paths. */
  api: { fetch: (req: Request) => Response | Promise<Response> };
  asyncQueue: AsyncQueue;
  /** The body budget and its shares (limits.ts bodyBudgets). */
  budgets: ReturnType<typeof bodyBudgets>;
  router: RouterOptions;
  limits: RuntimeLimits;
  /** What stack.yml declares: a declared function not running yet is answered 503, not 404. */
  declared: ReturnType<typeof declaredOf>;
  vars: Record<string, string | undefined>;
  secretsDir: string;
  metrics: RuntimeMetrics;
}

interface TlsPort {
  spec: HospitalPortSpec;
  server: HttpsServer;
  tls: PortTls;
}

export class Listeners {
  /** Set when the runtime starts draining: new invocations are refused with 503. */
  closing = false;
  gatewayUrl = '';
  readonly portUrls: Record<string, string> = {};
  readonly tlsPorts = new Map<string, TlsPort>();
  private readonly servers: Server[] = [];
  private readonly active = new Set<ServerResponse>();
  private readonly serveCtx: ServeContext;
  /** Each hospital port's context (by key): its own answers in the HIS shape, each caller's share of the port's bodies. */
  private readonly hospitalCtx = new Map<string, ServeContext>();
  private readonly apiListener: ReturnType<typeof getRequestListener>;
  // Bodies refused for want of room, logged at most once a minute per share (bodyBusy); requests
  // refused for an address's share of a function's slots, once a minute per function and address.
  private readonly busyLogged = onceAMinute();
  /** Each address's share of a function's slots on the hospital ports other than the data port. */
  private readonly callerSlots = new CallerSlots();
  // Failed handshakes, logged at most once a minute per peer address and port.
  private readonly tlsFailuresLogged = onceAMinute();

  constructor(private readonly d: ListenerDeps) {
    this.serveCtx = {
      router: d.router,
      answers: 'plain',
      // The admin gateway: the other ports' share, no caller's own (it listens on loopback).
      budgetFor: () => d.budgets.others,
      isClosing: () => this.closing,
      onError: (f) => d.log.warn('invocation failed', f),
      onDone: (fn, status, s) => d.metrics.invoked(fn, status, s),
      onBodyBusy: (share, message, peer) => this.bodyBusy(share, message, peer, 'admin gateway', null),
    };
    this.apiListener = getRequestListener(d.api.fetch);
  }

  /** Binds the admin gateway; returns its host:port (what the names `gateway` and `gateway.openfaas` lead to). */
  async bindGateway(host: string, port: number): Promise<string> {
    const listener = this.guard(this.gatewayHandler);
    const gw = createServer({ connectionsCheckingInterval: CONNECTIONS_CHECK_MS }, listener);
    // A caller that waits for "100 Continue" is answered by the same listener, which sends it only
    // when the body is going to be read (an oversized one gets its 413 without being sent).
    gw.on('checkContinue', listener);
    harden(gw, 'admin gateway', this.d.limits, this.d.log, 'plain');
    this.servers.push(gw);
    const bound = await listen(gw, port, host, 'admin gateway', this.d.log);
    this.gatewayUrl = urlFor(host, bound);
    return new URL(this.gatewayUrl).host;
  }

  /** Binds every hospital port; every certificate and key is read and checked before the first is bound. */
  async bindHospital(host: string, specs: HospitalPortSpec[] = defaultHospitalPorts(this.d.vars)): Promise<void> {
    const tlsByKey = hospitalTls(specs, this.d.vars, this.d.secretsDir);
    for (const spec of specs) await this.bindHospitalPort(host, spec, tlsByKey.get(spec.key));
  }

  private async bindHospitalPort(host: string, spec: HospitalPortSpec, tls: PortTls | undefined): Promise<void> {
    let bound = 0;
    // One caller's share on the data port; one more over the other hospital ports together.
    const callers = spec.key === 'data' ? this.d.budgets.dataCallers : this.d.budgets.otherCallers;
    // The configuration port's callers read its own refusal shape (docs/config-bundles.md §3); the
    // console's people read a page, its scripts the HIS answer (docs/console.md "Errors").
    const answers: AnswerShape = spec.key === 'config' ? 'config' : spec.key === 'web' ? 'console' : 'his';
    this.hospitalCtx.set(spec.key, {
      ...this.serveCtx,
      answers,
      budgetFor: (req, atLeast) => callers.for(req.socket.remoteAddress ?? '', atLeast),
      onBodyBusy: (share, message, peer) => this.bodyBusy(share, message, peer, spec.role, callers),
      ...(spec.key === 'data' ? {} : { callerSlots: this.callerSlots, onSlotsFull: (fn, peer, max) => this.slotsFull(fn, peer, max, spec.role) }),
    });
    const handler = this.guard((req, res) => this.hospitalRequest(spec, tls, bound, req, res), answers);
    let srv: Server;
    if (tls) {
      const https = createHttpsServer(
        { ...tls.options, connectionsCheckingInterval: CONNECTIONS_CHECK_MS, handshakeTimeout: this.d.limits.headersTimeoutMs },
        handler,
      );
      https.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => this.tlsFailure(spec, err, socket));
      this.tlsPorts.set(spec.key, { spec, server: https, tls });
      srv = https;
    } else {
      srv = createServer({ connectionsCheckingInterval: CONNECTIONS_CHECK_MS }, handler);
    }
    srv.on('checkContinue', handler);
    harden(srv, `${spec.role}, port ${spec.port}`, this.d.limits, this.d.log, answers);
    this.servers.push(srv);
    bound = await listen(srv, spec.port, host, spec.role, this.d.log);
    this.portUrls[spec.key] = urlFor(host, bound, tls ? 'https' : 'http');
    if (tls) {
      const log = this.d.log;
      log.info('tls enabled', {
        port: bound,
        role: spec.role,
        clientCert: tls.clientCert,
        minVersion: tls.minVersion,
        ...tls.files,
        certSubject: tls.cert.subject,
        certValidTo: tls.cert.validTo,
      });
      if (tls.cert.expired) log.warn('tls server certificate has expired', { port: bound, cert: tls.files.cert, validTo: tls.cert.validTo });
    }
  }

  private hospitalRequest(spec: HospitalPortSpec, tls: PortTls | undefined, bound: number, req: IncomingMessage, res: ServerResponse): void | Promise<void> {
    if (tls?.clientCert === 'optional') {
      const bad = rejectedClientCert(req.socket as TLSSocket);
      if (bad) {
        res.writeHead(400, { 'content-type': 'application/json', connection: 'close' });
        res.end(
          JSON.stringify({ error: 'client_certificate_invalid', reason: bad, port: spec.port, ...hisAnswer(400, `client certificate refused: ${bad}`) }) + '\n',
        );
        return;
      }
    }
    const ctx = this.hospitalCtx.get(spec.key)!;
    const route = routeHospital(req.url ?? '/', spec, bound, this.d.registry.list(), this.d.declared);
    if ('svc' in route) return serveInvocation(route.svc, route.path, req, res, ctx);
    const shape = answerShape(req, ctx.answers);
    if (typeof shape === 'object') {
      // A browser's page on the console's port: the function still starting (503), a path it does not serve.
      return sendError(res, route.status, route.reason, route.retryAfterS ? { 'retry-after': String(route.retryAfterS) } : {}, shape);
    }
    res.writeHead(route.status, { 'content-type': 'application/json', ...(route.retryAfterS ? { 'retry-after': String(route.retryAfterS) } : {}) });
    res.end(JSON.stringify(refusalBody(spec, route)) + '\n');
  }

  /** /function/<name>[.openfaas-fn]/…, /async-function/<name>/…, and the /system API on every other path. */
  private readonly gatewayHandler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = req.url ?? '/';
    if (malformedPath(url)) return sendError(res, 400, 'malformed percent-escape in the path');
    const m = /^\/(function|async-function)\/([^/?]+)([^?]*)(\?.*)?$/.exec(url);
    if (!m) {
      if (url === '/metrics' && req.method === 'GET') return this.serveMetrics(res);
      if (this.closing && url.startsWith('/system/')) return sendError(res, 503, 'runtime is shutting down', { connection: 'close' });
      // A declared length over the API's limit is refused before reading; a chunked body is cut off as it streams (api.ts).
      if (Number(req.headers['content-length'] ?? 0) > API_BODY_BYTES) return refuseBody(req, res, 413, `request body larger than ${API_BODY_BYTES} bytes`);
      continueIfExpected(req, res);
      return this.apiListener(req, res);
    }
    const [, kind, qualified, rest, query] = m;
    // `<fn>.<namespace>` as faas-cli's `invoke -n` sends it: the one namespace is openfaas-fn.
    const dot = qualified!.indexOf('.');
    const name = dot < 0 ? qualified! : qualified!.slice(0, dot);
    if (dot >= 0 && qualified!.slice(dot + 1) !== FUNCTION_NAMESPACE)
      return sendError(res, 404, `namespace ${qualified!.slice(dot + 1)} not found`, { 'x-openfaas-internal': 'gateway' });
    const svc = this.d.registry.get(name);
    if (!svc) return sendError(res, 404, `function ${name} not found`, { 'x-openfaas-internal': 'gateway' });
    const path = (rest || '/') + (query ?? '');
    if (kind === 'function') return serveInvocation(svc, path, req, res, this.serveCtx);
    return this.enqueueAsync(svc, path, req, res);
  };

  /** Prometheus text, unauthenticated as OpenFaaS's gateway metrics are: the admin gateway listens on loopback. */
  private async serveMetrics(res: ServerResponse): Promise<void> {
    const text = await this.d.metrics.text();
    res.writeHead(200, { 'content-type': this.d.metrics.contentType, 'cache-control': 'no-store' });
    res.end(text);
  }

  private async enqueueAsync(svc: NonNullable<ReturnType<Registry['get']>>, path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.closing) return sendError(res, 503, 'runtime is shutting down', { connection: 'close' });
    const read = await readBody(req, svc.watchdog.maxBodyBytes, this.d.budgets.others, () => continueIfExpected(req, res));
    if (!read.ok && read.status === 503) this.bodyBusy(read.share, read.message, peerAddress(req), 'admin gateway', null);
    if (!read.ok) return refuseBody(req, res, read.status, `${svc.name}: ${read.message}`, { 'x-openfaas-internal': 'gateway' });
    const meta = callMeta(req);
    const cb = req.headers['x-callback-url'];
    const ok = this.d.asyncQueue.enqueue({
      svc,
      callId: meta.callId,
      inv: { method: req.method ?? 'POST', path, headers: upstreamHeaders(req, meta, { gateway: true }), body: read.body },
      release: read.release,
      ...(typeof cb === 'string' && /^https?:\/\//.test(cb) ? { callbackUrl: cb } : {}),
    });
    if (!ok) {
      read.release();
      return sendError(res, 429, 'async queue full', { 'x-call-id': meta.callId, 'x-openfaas-internal': 'gateway' });
    }
    res.writeHead(202, { 'x-call-id': meta.callId, 'x-start-time': meta.startTime });
    res.end();
  }

  /**
   * Every request listener of the runtime runs inside this guard: whatever a handler throws, at once
   * or later, is logged and answered 500, and the request's and response's stream errors (a caller
   * gone mid-body, a write after the socket closed) are handled. Nothing leaves the listener.
   */
  private guard(handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>, shape: AnswerShape = 'plain') {
    return (req: IncomingMessage, res: ServerResponse): void => {
      req.on('error', () => undefined);
      res.on('error', () => undefined);
      this.active.add(res);
      res.once('close', () => this.active.delete(res));
      if (severalHosts(req.rawHeaders)) {
        sendError(res, 400, 'more than one Host header', { connection: 'close' }, answerShape(req, shape));
        return;
      }
      try {
        const p = handler(req, res);
        if (p) p.catch((e: unknown) => this.fail(res, e, answerShape(req, shape)));
      } catch (e) {
        this.fail(res, e, answerShape(req, shape));
      }
    };
  }

  private fail(res: ServerResponse, err: unknown, shape: AnswerShape | PageRequest): void {
    this.d.log.error('request handler failed', { err: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
    try {
      sendError(res, 500, 'internal error', { 'x-openfaas-internal': 'gateway', connection: 'close' }, shape);
    } catch {
      res.destroy();
    }
  }

  /**
   * Bodies refused for want of room: counted (cdc_runtime_request_body_refused_total), and logged at
   * most once a minute per share and port, with the callers of that port's side holding the most —
   * who filled it, not only who met it — without one line per refused request.
   */
  private bodyBusy(share: string, message: string, peer: string, port: string, callers: CallerShares | null): void {
    this.d.metrics.bodyRefused(share);
    if (!this.busyLogged(`${share} ${port}`)) return;
    const holding = callers?.top(5).map((h) => `${h.caller} ${Math.ceil(h.bytes / 2 ** 20)} MiB`);
    this.d.log.warn('request body refused: its share of the body budget is full', {
      share,
      port,
      peer,
      ...(holding ? { holding: holding.join(', ') } : {}),
      reason: message,
    });
  }

  /** A request refused for its address's share of a function's slots: logged once a minute per function and address. */
  private slotsFull(fn: string, peer: string, max: number, port: string): void {
    if (!this.busyLogged(`slots ${fn} ${peer}`)) return;
    this.d.log.warn('request refused: this address holds its share of the function’s slots', { fn, port, peer, max });
  }

  // Failed handshakes (no client certificate on a required port, TLS < 1.2, not TLS at all), logged
  // at most once a minute per peer address and port: a scanner must not flood the log.
  private tlsFailure(spec: HospitalPortSpec, err: NodeJS.ErrnoException, socket: TLSSocket): void {
    const peer = socket.remoteAddress ?? '';
    if (!this.tlsFailuresLogged(`${spec.port} ${peer}`)) return;
    this.d.log.warn('tls handshake failed', { port: spec.port, role: spec.role, peer, code: err.code, err: err.message.split('\n')[0] });
  }

  /** Stops accepting: every server closed, idle keep-alive connections dropped. */
  stopAccepting(): void {
    for (const s of this.servers) {
      s.close();
      s.closeIdleConnections();
    }
  }

  /** After the replicas have stopped: waits up to 2 s for answers in flight, then closes every connection. */
  async drain(): Promise<void> {
    const until = Date.now() + 2000;
    while (this.active.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((r) => {
            s.closeAllConnections();
            if (!s.listening) return r();
            s.close(() => r());
          }),
      ),
    );
  }

  /** The TLS settings of every TLS port, as RuntimeHandle.portTls reports them. */
  tlsSummary(): Record<string, { clientCert: PortTls['clientCert']; minVersion: PortTls['minVersion']; files: PortTls['files'] }> {
    return Object.fromEntries([...this.tlsPorts].map(([k, t]) => [k, { clientCert: t.tls.clientCert, minVersion: t.tls.minVersion, files: t.tls.files }]));
  }

  /** Re-reads every TLS port's files and applies them to new connections, all or nothing (RuntimeHandle.reloadTls). */
  reloadTls(): void {
    const next = [...this.tlsPorts.values()].map((t) => {
      const fresh = portTls(t.spec, this.d.vars, this.d.secretsDir);
      const where = `port ${t.spec.port} (${t.spec.role})`;
      if (!fresh) throw new Error(`${where}: TLS cannot be switched off by a reload (restart the runtime)`);
      // The certificates, key and CA bundle are the secure context; the client certificate mode and
      // the minimum version are read when the server is created.
      if (fresh.clientCert !== t.tls.clientCert)
        throw new Error(`${where}: ${fresh.prefix}_TLS_CLIENT_CERT changed (${t.tls.clientCert} → ${fresh.clientCert}): restart the runtime`);
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
      this.d.log.info('tls reloaded', { port: t.spec.port, ...fresh.files, certSubject: fresh.cert.subject, certValidTo: fresh.cert.validTo });
    }
  }
}

/**
 * Whether a log line about `key` is due: at most once a minute per key, so that a flood of refusals
 * or a scanner cannot flood the log; past 10 000 keys the ones seen are forgotten (bounded memory).
 */
function onceAMinute(): (key: string) => boolean {
  const last = new Map<string, number>();
  return (key) => {
    const now = Date.now();
    if ((last.get(key) ?? 0) > now - 60_000) return false;
    if (last.size > 10_000) last.clear();
    last.set(key, now);
    return true;
  };
}
