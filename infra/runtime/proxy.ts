/**
 * The watchdog and router between a caller and a function's replicas: what of-watchdog does in
 * front of one process (exec_timeout → 504, max_inflight → 429, X-Duration-Seconds, streaming) plus
 * what the gateway does in front of several (round robin, no endpoints → 503, unreachable → 502).
 *
 * A request that never reached a replica (the connection was refused or reset before it was
 * established — a replica that just died) is retried on another one; request bodies are buffered
 * (bounded) so that retry is safe. A request already delivered to a replica that dies fails with 502,
 * except one on a reused keep-alive connection reset before any response byte, which is retried when
 * it is idempotent (RFC 9110 §9.2.2, as HTTP clients do) or when the replica is found dead within
 * 250 ms (the request met the socket of a process that had already gone).
 */
import { randomUUID } from 'node:crypto';
import {
  request as httpRequest,
  type ClientRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { parseDuration } from '../../shared/time/duration.js';
import type { BodyBudget, CallerSlots } from './limits.js';
import { pageRequest, refusalPage, type PageRequest } from './refusal-page.js';
import { clientCertHeaders } from './tls.js';
import type { Replica } from './replica.js';
import type { FunctionService } from './service.js';

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
/** Not forwarded in either direction (RFC 9110 §7.6.1), plus what the gateway sets itself. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
]);
// Forwarded and X-Real-IP are dropped too: a caller must not be able to claim another source address.
// Headers a caller may never set: the gateway sets them (or, for the client-certificate headers,
// only a TLS terminator in front of the functions may), so functions can trust them.
const SET_BY_GATEWAY = new Set([
  'host',
  'content-length',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'forwarded',
  'x-real-ip',
  'x-call-id',
  'x-start-time',
  'x-cdc-relayed-for',
  'x-client-cert',
  'x-client-cert-fingerprint',
  'x-client-cert-subject',
  'x-client-verify',
]);

export interface Invocation {
  method: string;
  /** Path and query as the function sees them (the /function/<name> prefix already stripped). */
  path: string;
  headers: OutgoingHttpHeaders;
  body: Buffer;
  /** From the X-Timeout request header: may shorten exec_timeout, never lengthen it. */
  timeoutMs?: number;
  /** Aborted when the caller goes away. */
  signal?: AbortSignal;
}

export type Outcome =
  | { ok: true; status: number; headers: IncomingHttpHeaders; body: IncomingMessage; durationS: number; replica: Replica }
  | { ok: false; status: number; message: string; internal: 'of-watchdog' | 'gateway'; durationS: number };

export interface RouterOptions {
  /** How long a request waits for a replica that is still starting (capped by the timeout). */
  readyWaitMs: number;
}

/**
 * Sockets to replicas that already carry an `error` listener. Node's ClientRequest lets go of its
 * socket's errors once the response has ended, but a replica that answered before reading the whole
 * body (its own 413, a 401) can still make the unfinished write fail (EPIPE, ECONNRESET): without a
 * listener of our own that error would end the runtime.
 */
const guardedSockets = new WeakSet<Socket>();
const ignore = () => undefined;

type Sent = { res: IncomingMessage; req: ClientRequest } | { err: NodeJS.ErrnoException; retryable: boolean; resetOnReused: boolean };

function sendOnce(r: Replica, inv: Invocation, onRequest: (req: ClientRequest) => void): Promise<Sent> {
  return new Promise((resolveSent) => {
    const headers: OutgoingHttpHeaders = { ...inv.headers, host: `127.0.0.1:${r.port}` };
    if (inv.body.length > 0 || !['GET', 'HEAD', 'OPTIONS', 'DELETE'].includes(inv.method)) headers['content-length'] = inv.body.length;
    const req = httpRequest({ host: '127.0.0.1', port: r.port, method: inv.method, path: inv.path, headers, agent: r.agent });
    let connected = false;
    let settled = false;
    req.on('socket', (s) => {
      if (!guardedSockets.has(s)) {
        guardedSockets.add(s);
        s.on('error', ignore);
      }
      if (req.reusedSocket || !s.connecting) connected = true;
      else s.once('connect', () => (connected = true));
    });
    req.once('response', (res) => {
      settled = true;
      // Answered before the body was all written: the rest of the write may fail, and this socket
      // must not be reused for another request.
      if (!req.writableFinished) req.shouldKeepAlive = false;
      resolveSent({ res, req });
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      const resetBeforeResponse = req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE');
      resolveSent({ err, retryable: !connected || (resetBeforeResponse && IDEMPOTENT.has(inv.method)), resetOnReused: resetBeforeResponse });
    });
    onRequest(req);
    req.end(inv.body.length > 0 ? inv.body : undefined);
  });
}

/**
 * One call's clock and caller: exec_timeout (or a shorter X-Timeout) and the caller going away cut
 * the request or response in flight; every outcome carries the call's duration. exec_timeout is the
 * function's time, as of-watchdog's is: its clock starts when the call is first sent to a replica
 * (`startClock`), not while the call waits for one to start — that wait has its own bound,
 * readyWaitMs (docs/runtime.md "Watchdog behaviour"). Counted from the call's arrival, a POST sent to
 * a replica that took 9 s to restart under load ran with what was left, was stored, and its caller
 * was told 504 all the same.
 */
class Call {
  private readonly t0 = process.hrtime.bigint();
  readonly timeoutMs: number;
  /** When exec_timeout cuts the call: Infinity until its clock starts. */
  deadline = Infinity;
  timedOut = false;
  current: ClientRequest | null = null;
  response: IncomingMessage | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly onAbort = () => {
    this.current?.destroy(new Error('caller went away'));
    this.response?.destroy(new Error('caller went away'));
  };

  constructor(
    svc: FunctionService,
    private readonly inv: Invocation,
  ) {
    const exec = svc.watchdog.execTimeoutMs;
    this.timeoutMs = inv.timeoutMs && inv.timeoutMs > 0 ? (exec > 0 ? Math.min(exec, inv.timeoutMs) : inv.timeoutMs) : exec;
    inv.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** The call is sent to a replica: exec_timeout runs from now (once: a retry elsewhere keeps the clock). */
  startClock(): void {
    if (this.timer || this.timeoutMs <= 0) return;
    this.deadline = Date.now() + this.timeoutMs;
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.current?.destroy(new Error('exec_timeout'));
      this.response?.destroy(new Error('exec_timeout'));
    }, this.timeoutMs);
  }

  get aborted(): boolean {
    return this.inv.signal?.aborted === true;
  }

  elapsedS(): number {
    return Number(process.hrtime.bigint() - this.t0) / 1e9;
  }

  /** The call is over (answered, or failed): its timer and its caller's listener go. */
  finish(): void {
    if (this.timer) clearTimeout(this.timer);
    this.inv.signal?.removeEventListener('abort', this.onAbort);
  }

  fail(status: number, message: string, internal: 'of-watchdog' | 'gateway'): Outcome {
    this.finish();
    return { ok: false, status, message, internal, durationS: this.elapsedS() };
  }
}

/**
 * A replica not tried yet for this call. A function scaled to zero is woken by its first call,
 * which waits for the replica, as OpenFaaS's gateway does; a call finding replicas still starting
 * waits for one (opts.readyWaitMs; within exec_timeout once its clock runs: a retry after a replica
 * died). null: the call ran out of time or its caller went away while it waited.
 */
async function pickReplica(svc: FunctionService, tried: Set<Replica>, call: Call, opts: RouterOptions): Promise<ReturnType<FunctionService['pick']> | null> {
  let p = svc.pick(tried);
  if ('none' in p && p.none === 'no-replicas' && tried.size === 0 && svc.wake()) p = { none: 'starting' };
  if (!('none' in p) || p.none !== 'starting') return p;
  const waitMs = Math.min(opts.readyWaitMs, call.deadline - Date.now());
  if (waitMs > 0) {
    // A waiting call keeps the function awake: the idler must not take back the replica it waits for.
    svc.waiting++;
    try {
      await svc.waitReady(waitMs);
    } finally {
      svc.waiting--;
    }
  }
  if (call.timedOut || call.aborted) return null;
  return svc.pick(tried);
}

/** The replica's answer, streamed to the caller: the replica's slot is freed when the response closes. */
function answered(svc: FunctionService, r: Replica, sent: { res: IncomingMessage; req: ClientRequest }, call: Call): Outcome {
  const res = sent.res;
  call.response = res;
  let released = false;
  res.once('close', () => {
    if (!released) {
      released = true;
      svc.release(r);
    }
    call.finish();
  });
  sent.req.on('error', () => undefined);
  if (call.timedOut) res.destroy(new Error('exec_timeout'));
  return { ok: true, status: res.statusCode ?? 502, headers: res.headers, body: res, durationS: call.elapsedS(), replica: r };
}

/**
 * After a send that got no answer: whether another replica may be tried. A kept-alive connection
 * reset before any response byte, by a replica that turns out to have just died, met a socket the
 * dead process no longer read: retried elsewhere. The replica is out of rotation until it answers a
 * probe again (or its exit is seen), so the next requests go elsewhere.
 */
async function mayRetry(r: Replica, sent: { retryable: boolean; resetOnReused: boolean }): Promise<boolean> {
  if (!sent.retryable && sent.resetOnReused) {
    await Promise.race([r.exited, new Promise((w) => setTimeout(w, 250))]);
    if (r.state === 'exited') sent.retryable = true;
  }
  r.suspect();
  return sent.retryable;
}

export async function invoke(svc: FunctionService, inv: Invocation, opts: RouterOptions): Promise<Outcome> {
  const call = new Call(svc, inv);
  svc.invocationCount++;
  const tried = new Set<Replica>();
  let lastError = '';
  for (let attempt = 0; attempt < 6 && !call.timedOut; attempt++) {
    const p = await pickReplica(svc, tried, call, opts);
    if (p === null) break;
    if ('none' in p) {
      if (p.none === 'full') return call.fail(429, `${svc.name}: concurrent request limit (max_inflight=${svc.watchdog.maxInflight}) reached`, 'of-watchdog');
      if (tried.size > 0) return call.fail(502, `${svc.name}: cannot reach a replica: ${lastError}`, 'gateway');
      return call.fail(503, `${svc.name}: no replicas available`, 'gateway');
    }
    const r = p.replica;
    tried.add(r);
    svc.acquire(r);
    call.startClock();
    const sent = await sendOnce(r, inv, (req) => (call.current = req));
    call.current = null;
    if ('res' in sent) return answered(svc, r, sent, call);
    svc.release(r);
    lastError = sent.err.code ?? sent.err.message;
    if (call.timedOut) break;
    if (call.aborted) return call.fail(499, 'caller went away', 'gateway');
    if (!(await mayRetry(r, sent))) return call.fail(502, `${svc.name}: replica ${r.id} failed before answering: ${lastError}`, 'gateway');
  }
  if (call.timedOut) return call.fail(504, `${svc.name}: exec_timeout (${call.timeoutMs} ms) exceeded`, 'of-watchdog');
  if (call.aborted) return call.fail(499, 'caller went away', 'gateway');
  return call.fail(502, `${svc.name}: cannot reach a replica: ${lastError}`, 'gateway');
}

export type BodyResult =
  | { ok: true; body: Buffer /** Gives the body's bytes back to the budget. */; release(): void }
  | { ok: false; status: 400 | 413; message: string }
  /** Refused for want of room: `share` is the label of the budget that was full (BodyBudget.full). */
  | { ok: false; status: 503; message: string; share: string };

/**
 * Reads a request body into memory, bounded twice: by `max` (the target function's body limit) and
 * by `budget` (the share of all in-flight bodies this request may use). A declared Content-Length over `max` is refused
 * before a byte is read (413); a body without one (chunked) is counted as it arrives and cut off as
 * soon as it passes `max` (413). The budget counts bytes as they arrive, not declared ones (a caller
 * cannot hold it by announcing bodies it never sends): past it, 503. `accept` runs once the body is
 * going to be read (it sends "100 Continue" to a caller that waits for it).
 */
export function readBody(req: IncomingMessage, max: number, budget: BodyBudget, accept: () => void = ignore): Promise<BodyResult> {
  const tooLarge: BodyResult = { ok: false, status: 413, message: `request body larger than ${max} bytes` };
  const busy = (n: number): BodyResult => {
    const b = budget.full(n) ?? budget;
    return {
      ok: false,
      status: 503,
      share: b.label,
      message: `too many request bodies in memory (${b.label}: ${Math.round(b.max / 2 ** 20)} MiB), retry later`,
    };
  };
  const cl = req.headers['content-length'];
  const declared = cl === undefined ? null : Number(cl);
  if (declared !== null && declared > max) return Promise.resolve(tooLarge);
  // What this request holds of the budget: the memory its body takes, not only the body's bytes.
  let reserved = 0;
  let released = false;
  budget.holders++;
  const release = () => {
    budget.give(reserved);
    reserved = 0;
    if (!released) budget.holders--;
    released = true;
  };
  return new Promise((resolveBody) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    // Small pieces (a sender writing a byte at a time) are copied into blocks: kept one by one, each
    // would cost some 300 bytes of memory for its one byte, far beyond what the budget counts.
    let block: Buffer | null = null;
    let filled = 0;
    // A block not filled (a large piece came next, or the end) is copied down to what it holds and the
    // rest given back: otherwise a body whose pieces alternate small and large would count a block for
    // each small one and meet its share long before its size.
    const flush = () => {
      if (block && filled === block.length) chunks.push(block);
      else if (block && filled) chunks.push(Buffer.from(block.subarray(0, filled)));
      if (block && filled < block.length) {
        budget.give(block.length - filled);
        reserved -= block.length - filled;
      }
      block = null;
      filled = 0;
    };
    const settle = (r: BodyResult) => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      if (!r.ok) release();
      resolveBody(r);
    };
    const hold = (n: number) => {
      if (!budget.take(n)) return false;
      reserved += n;
      return true;
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > max) return settle(tooLarge);
      if (c.length >= SMALL_PIECE) {
        flush();
        if (!hold(c.length)) return settle(busy(c.length));
        chunks.push(c);
        return;
      }
      if (!block || filled + c.length > block.length) {
        flush();
        // As much as the declared length still needs (a small body: its own size), else a block.
        const n = declared === null ? BLOCK : Math.min(BLOCK, Math.max(declared - (size - c.length), c.length));
        if (!hold(n)) return settle(busy(n));
        block = Buffer.allocUnsafe(n);
      }
      c.copy(block, filled);
      filled += c.length;
    };
    req.on('data', onData);
    req.once('end', () => {
      flush();
      settle({ ok: true, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size), release });
    });
    req.once('error', () => settle({ ok: false, status: 400, message: 'request body interrupted' }));
    req.once('close', () => settle({ ok: false, status: 400, message: 'request body interrupted' }));
    accept();
  });
}

/** Pieces of a body under this size are copied into blocks of BLOCK bytes (readBody). */
const SMALL_PIECE = 16 * 1024;
const BLOCK = 64 * 1024;

/** Sends "100 Continue" to a caller that waits for it before sending its body. */
export function continueIfExpected(req: IncomingMessage, res: ServerResponse): void {
  if (/100-continue/i.test(req.headers.expect ?? '') && !res.headersSent) res.writeContinue();
}

/** How long, and how many bytes, the unread rest of a refused body is read and dropped before the connection is cut. */
const LINGER_MS = 2000;
const LINGER_BYTES = 64 * 1024 * 1024;

/**
 * Refuses a request whose body is not (all) read: 413 or 503 (with Retry-After). The rest of the
 * body is read and dropped, never kept, for at most LINGER_MS and LINGER_BYTES, then the connection is
 * cut: a caller still sending gets to finish its write and read the answer (a connection closed on
 * unread bytes is reset, and the reset can destroy the answer before the caller reads it). The answer
 * is written at once but ended only when the body has ended: Node closes a connection that asked for
 * `Connection: close` as soon as its answer ends, unread bytes or not.
 */
export function refuseBody(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  message: string,
  extra: OutgoingHttpHeaders = {},
  shape: AnswerShape | PageRequest = 'plain',
): void {
  const headers = { ...extra, ...(status === 503 ? { 'retry-after': '1' } : {}) };
  if (req.complete || res.headersSent) {
    sendError(res, status, message, headers, shape);
    return;
  }
  const answer = errorAnswer(status, message, headers, shape);
  res.writeHead(status, { ...answer.headers, 'content-length': Buffer.byteLength(answer.body) });
  res.write(answer.body);
  const socket = req.socket;
  const finish = () => {
    clearTimeout(timer);
    if (!res.writableEnded) res.end();
  };
  const cut = () => {
    clearTimeout(timer);
    socket.destroy();
  };
  const timer = setTimeout(cut, LINGER_MS);
  timer.unref();
  let dropped = 0;
  req.on('data', (c: Buffer) => {
    dropped += c.length;
    if (dropped > LINGER_BYTES) cut();
  });
  req.once('end', finish);
  req.once('close', finish);
  req.resume();
}

/**
 * A request with more than one Host header: answered 400, as OpenFaaS's gateway (Go's HTTP server)
 * answers it. Node keeps the first; a proxy in front might use another, and the console's Host check
 * and the proxy would then judge different names.
 */
export function severalHosts(rawHeaders: string[]): boolean {
  let n = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.length === 4 && rawHeaders[i]!.toLowerCase() === 'host' && ++n > 1) return true;
  return false;
}

/**
 * A path (the query excluded) with a `%` not followed by two hex digits: refused 400 on every port,
 * as OpenFaaS's gateway (Go's url.ParseRequestURI) refuses it, before any routing or decoding.
 */
export function malformedPath(url: string): boolean {
  const q = url.indexOf('?');
  return /%(?![0-9A-Fa-f]{2})/.test(q >= 0 ? url.slice(0, q) : url);
}

/** The TCP peer as functions see it in X-Forwarded-For (IPv4-mapped IPv6 shown as plain IPv4). */
export function peerAddress(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

/** The client addresses a relaying caller claimed: Forwarded for= values, then X-Forwarded-For, then X-Real-IP. */
function relayedFor(req: IncomingMessage): string {
  const list = (v: string | string[] | undefined) =>
    [v]
      .flat()
      .filter((x): x is string => !!x)
      .flatMap((x) => x.split(','))
      .map((x) => x.trim())
      .filter(Boolean);
  const fwd = list(req.headers.forwarded)
    .flatMap((part) => part.split(';'))
    .map((p) => /^\s*for\s*=\s*"?\[?([^"\]]*?)\]?(?::\d+)?"?\s*$/i.exec(p)?.[1] ?? '')
    .filter(Boolean);
  const all = [...fwd, ...list(req.headers['x-forwarded-for']), ...list(req.headers['x-real-ip'])];
  // Anything that is not an address stays visible as a marker ("unknown"), so a relay is never missed.
  return (all.length ? all : ['unknown'])
    .map((a) => a.replace(/[^0-9A-Za-z.:_-]/g, '').slice(0, 64) || 'unknown')
    .slice(0, 20)
    .join(', ');
}

export interface CallMeta {
  callId: string;
  startTime: string;
}

/**
 * Headers the function receives: the caller's, minus hop-by-hop, with X-Forwarded-For set to the TCP
 * peer (replacing whatever the caller sent: functions authenticate HIS callers by source address),
 * X-Forwarded-Proto https on a TLS port, and the X-Client-Cert* / X-Client-Verify headers only from a
 * client certificate this runtime verified (a caller's own copies are always dropped).
 */
export function upstreamHeaders(req: IncomingMessage, meta: CallMeta, opts: { gateway?: boolean } = {}): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined || HOP_BY_HOP.has(k) || SET_BY_GATEWAY.has(k) || k.startsWith('x-client-cert')) continue;
    out[k] = v;
  }
  out['x-forwarded-for'] = peerAddress(req);
  // The relay marker: the caller is itself a proxy (it sent forwarding headers). Functions believe
  // the addresses it claims only when it is a trusted proxy (shared/http/caller.ts, docs/his-auth.md).
  if (req.headers.forwarded || req.headers['x-forwarded-for'] || req.headers['x-real-ip']) out['x-cdc-relayed-for'] = relayedFor(req);
  // On the admin gateway (loopback: nginx in front of it under faasd, faas-cli) an X-Forwarded-Host
  // already set is kept, as OpenFaaS's gateway keeps it, so a function sees the Host its caller used;
  // on a hospital port it is always the Host this runtime received (docs/runtime.md "Host") — empty
  // when the caller sent none (HTTP/1.0) or an empty one, never the replica's own loopback address,
  // which the request to the replica carries as its Host and a console would take for its own name.
  const given = req.headers['x-forwarded-host'];
  if (opts.gateway && typeof given === 'string' && given) out['x-forwarded-host'] = given;
  else out['x-forwarded-host'] = req.headers.host ?? '';
  const tls = (req.socket as Partial<TLSSocket>).encrypted ? (req.socket as TLSSocket) : null;
  out['x-forwarded-proto'] = tls ? 'https' : 'http';
  // Only a hospital port that terminated TLS and verified a client certificate sets these (tls.ts).
  if (tls) Object.assign(out, clientCertHeaders(tls));
  out['x-call-id'] = meta.callId;
  out['x-start-time'] = meta.startTime;
  return out;
}

export function callMeta(req: IncomingMessage): CallMeta {
  const given = req.headers['x-call-id'];
  const callId = typeof given === 'string' && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
  const startTime = (BigInt(Date.now()) * 1_000_000n).toString();
  return { callId, startTime };
}

export function sendError(
  res: ServerResponse,
  status: number,
  message: string,
  extra: OutgoingHttpHeaders = {},
  shape: AnswerShape | PageRequest = 'plain',
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const answer = errorAnswer(status, message, extra, shape);
  res.writeHead(status, answer.headers);
  res.end(answer.body);
}

/**
 * The shape of the runtime's own answers (413, 429, 503, 504, …) on a port: plain text on the admin
 * gateway; on a hospital port the shape its callers read from its functions — the HIS answer
 * (docs/his-guide.md) on the data and monitoring ports (the monitor function refuses in it too,
 * docs/monitoring.md), the platform's `{"error": {"code", "reason"}, "applied": false}` on the
 * configuration port (docs/config-bundles.md §3 "Answers"); on the console's port (`console`) the HIS
 * answer too, except to a browser's own page request, which gets a page (answerShape).
 */
export type AnswerShape = 'plain' | 'his' | 'config' | 'console';

/**
 * What the runtime's own answer to this request is: its port's shape, except on the console's port a
 * browser's page request, answered with a page as the console function answers its own refusals
 * (docs/console.md "Errors"; refusal-page.ts).
 */
export function answerShape(req: IncomingMessage, port: AnswerShape): AnswerShape | PageRequest {
  return port === 'console' ? (pageRequest(req) ?? port) : port;
}

/**
 * The runtime's own answer, in the port's shape (AnswerShape), or as a page for a browser's page
 * request on the console's port (answerShape); `console` without a request (a connection's own
 * error, before any request was read) is the HIS answer.
 */
export function errorAnswer(
  status: number,
  message: string,
  extra: OutgoingHttpHeaders,
  shape: AnswerShape | PageRequest,
): { headers: OutgoingHttpHeaders; body: string } {
  if (typeof shape === 'object') {
    const retry = status === 429 || status >= 500 ? { 'retry-after': String(HIS_RETRY_AFTER_S) } : {};
    return refusalPage(status, message, { ...retry, ...extra }, shape);
  }
  if (shape === 'config') {
    const retry = status === 429 || status >= 500 ? { 'retry-after': String(HIS_RETRY_AFTER_S) } : {};
    return { headers: { 'content-type': 'application/json; charset=utf-8', ...retry, ...extra }, body: JSON.stringify(configAnswer(status, message)) + '\n' };
  }
  if (shape === 'his' || shape === 'console') {
    // A HIS retries 429 and every 5xx after Retry-After (docs/his-guide.md §3): say when.
    const retry = status === 429 || status >= 500 ? { 'retry-after': String(HIS_RETRY_AFTER_S) } : {};
    return { headers: { 'content-type': 'application/json; charset=utf-8', ...retry, ...extra }, body: JSON.stringify(hisAnswer(status, message)) + '\n' };
  }
  return { headers: { 'content-type': 'text/plain; charset=utf-8', ...extra }, body: message + '\n' };
}

/** Seconds a HIS is asked to wait before retrying the runtime's own 429 or 5xx. */
export const HIS_RETRY_AFTER_S = 2;

/** errorCode and errorName of the runtime's own answers on a hospital port, by status (docs/his-guide.md). */
const HIS_CODES: Record<number, [string, string]> = {
  400: ['BAD_REQUEST', '请求格式错误'],
  404: ['NOT_FOUND', '接口不存在，请核对地址'],
  408: ['BAD_REQUEST', '请求未在限定时间内发送完毕'],
  413: ['PAYLOAD_TOO_LARGE', '请求体过大'],
  431: ['BAD_REQUEST', '请求头过大'],
  429: ['RATE_LIMITED', '前置软件繁忙，请稍后重试'],
  500: ['INTERNAL', '前置软件内部错误'],
  502: ['UNAVAILABLE', '前置软件暂不可用，请稍后重试'],
  503: ['UNAVAILABLE', '前置软件暂不可用，请稍后重试'],
  504: ['UNAVAILABLE', '前置软件处理超时，请稍后重试'],
};

/**
 * The runtime's own answer on a hospital port: the shape HIS adapters read from the functions,
 * `{result: false, desc, id: null, errorCode, errorName}` (docs/his-guide.md), the runtime's reason in `desc`.
 */
export function hisAnswer(status: number, message: string): { result: false; desc: string; id: null; errorCode: string; errorName: string } {
  const [errorCode, errorName] = HIS_CODES[status] ?? (status >= 500 ? HIS_CODES[503]! : HIS_CODES[400]!);
  return { result: false, desc: `${errorName} (${message})`, id: null, errorCode, errorName };
}

/** error.code of the runtime's own answers on the configuration port, by status (docs/config-bundles.md §3). */
const CONFIG_CODES: Record<number, string> = {
  400: 'invalid-request',
  404: 'not-found',
  408: 'invalid-request',
  413: 'too-large',
  431: 'invalid-request',
  429: 'busy',
  500: 'internal',
  502: 'unavailable',
  503: 'unavailable',
  504: 'timeout',
};

/**
 * The runtime's own answer on the configuration port, as its function refuses. Nothing was applied
 * — except after a 504 (exec_timeout) or a 502 (a replica gone with the request, or one that could
 * not be told from it): the function had the bundle and its transaction may have committed, or may
 * still. Those say so, `applied: null`, and where to look (docs/config-bundles.md §3 "Answers"): a
 * 235 000-code list whose apply outlived exec_timeout was answered "nothing applied" and was in force
 * a minute later.
 */
export function configAnswer(status: number, message: string): { error: { code: string; reason: string }; applied: false | null } {
  const code = CONFIG_CODES[status] ?? (status >= 500 ? 'unavailable' : 'invalid-request');
  if (status === 502 || status === 504)
    return { error: { code, reason: `${message} (outcome unknown: the bundle may have been applied — GET /bundles/current tells)` }, applied: null };
  return { error: { code, reason: `${message} (nothing applied)` }, applied: false };
}

export interface ServeContext {
  router: RouterOptions;
  /**
   * The share of the body budget (limits.ts bodyBudgets) a request on this port, from its caller, reads
   * its body into: room at least for `atLeast` bytes, the largest body its function takes.
   */
  budgetFor(req: IncomingMessage, atLeast: number): BodyBudget;
  /**
   * The shape of the runtime's own answers on this port (AnswerShape): 'plain' on the admin gateway;
   * on a hospital port 'his' (hisAnswer), on the configuration port 'config' (configAnswer), on the
   * console's 'console' (a page to a browser's page request, else hisAnswer).
   */
  answers: AnswerShape;
  isClosing(): boolean;
  onError?(fields: Record<string, unknown>): void;
  /** A body refused for want of room (503): the share that was full, and the caller's address. */
  onBodyBusy?(share: string, message: string, peer: string): void;
  /** Every invocation that reached the router, with the status the caller got (metrics.ts). */
  onDone?(fn: string, status: number, durationS: number): void;
  /** Each caller's share of a function's slots (limits.ts CallerSlots): the ports other than the data port. */
  callerSlots?: CallerSlots;
  /** A request refused because its caller held its share of the function's slots. */
  onSlotsFull?(fn: string, peer: string, max: number): void;
}

/** One HTTP invocation end to end: body, headers, router, response streamed back. */
export async function serveInvocation(svc: FunctionService, path: string, req: IncomingMessage, res: ServerResponse, ctx: ServeContext): Promise<void> {
  const meta = callMeta(req);
  const common: OutgoingHttpHeaders = { 'x-call-id': meta.callId, 'x-start-time': meta.startTime };
  const shape = answerShape(req, ctx.answers);
  if (ctx.isClosing()) {
    sendError(res, 503, 'runtime is shutting down', { ...common, connection: 'close', 'x-openfaas-internal': 'gateway' }, shape);
    return;
  }
  const bare = path.split('?')[0];
  if (bare === '/_/health' || bare === '/_/ready') {
    // Answered as of-watchdog answers them, never forwarded: health once a replica listens, ready
    // also 429 while every replica is at max_inflight.
    const p = svc.pick();
    const status = 'replica' in p ? 200 : p.none === 'full' ? (bare === '/_/ready' ? 429 : 200) : 503;
    res.writeHead(status, { 'content-type': 'text/plain', ...common });
    res.end(status === 200 ? 'OK\n' : status === 429 ? 'Busy\n' : 'Not ready\n');
    return;
  }
  const slot = ctx.callerSlots?.take(svc.name, peerAddress(req), svc.watchdog.maxInflight * Math.max(1, svc.ready().length));
  if (slot && 'full' in slot) {
    ctx.onSlotsFull?.(svc.name, peerAddress(req), slot.full);
    const message = `${svc.name}: this address has ${slot.full} requests in flight, its share of the function's slots; retry later`;
    refuseBody(req, res, 429, message, { ...common, 'x-openfaas-internal': 'gateway' }, shape);
    return;
  }
  if (slot) res.once('close', slot.release);
  const read = await readBody(req, svc.watchdog.maxBodyBytes, ctx.budgetFor(req, svc.watchdog.maxBodyBytes + BLOCK), () => continueIfExpected(req, res));
  if (!read.ok && read.status === 503) ctx.onBodyBusy?.(read.share, read.message, peerAddress(req));
  if (!read.ok) {
    if (read.status !== 400 || !req.socket.destroyed)
      refuseBody(req, res, read.status, `${svc.name}: ${read.message}`, { ...common, 'x-openfaas-internal': 'gateway' }, shape);
    return;
  }
  res.once('close', read.release);
  const body = read.body;
  const abort = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) abort.abort();
  });
  let timeoutMs: number | undefined;
  const xt = req.headers['x-timeout'];
  if (typeof xt === 'string') {
    try {
      timeoutMs = parseDuration(xt, 0);
    } catch {
      timeoutMs = undefined;
    }
  }
  const out = await invoke(
    svc,
    {
      method: req.method ?? 'GET',
      path,
      headers: upstreamHeaders(req, meta, { gateway: ctx.answers === 'plain' }),
      body,
      signal: abort.signal,
      ...(timeoutMs ? { timeoutMs } : {}),
    },
    ctx.router,
  );
  const duration = out.durationS.toFixed(6);
  ctx.onDone?.(svc.name, out.status, out.durationS);
  if (!out.ok) {
    if (out.status >= 500) ctx.onError?.({ fn: svc.name, callId: meta.callId, status: out.status, msg: out.message });
    if (out.status === 499) return;
    sendError(res, out.status, out.message, { ...common, 'x-duration-seconds': duration, 'x-openfaas-internal': out.internal }, shape);
    return;
  }
  const headers: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(out.headers)) {
    if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
  }
  Object.assign(headers, common, { 'x-duration-seconds': duration });
  res.writeHead(out.status, headers);
  // An answer of known length goes out with its body in one write (docs/runtime.md "Watchdog behaviour"); a
  // stream's headers go at once, before a first event that may be long in coming.
  if (out.headers['content-length'] === undefined) res.flushHeaders();
  out.body.on('error', () => res.destroy());
  out.body.on('aborted', () => res.destroy());
  out.body.pipe(res);
}

/** The whole response in memory, for the runtime's own callers (cron, async). */
export async function invokeBuffered(
  svc: FunctionService,
  inv: Invocation,
  opts: RouterOptions,
): Promise<{ status: number; headers: Record<string, string>; body: Buffer; durationS: number }> {
  const out = await invoke(svc, inv, opts);
  if (!out.ok) return { status: out.status, headers: { 'x-openfaas-internal': out.internal }, body: Buffer.from(out.message), durationS: out.durationS };
  const chunks: Buffer[] = [];
  try {
    for await (const c of out.body) chunks.push(c as Buffer);
  } catch {
    return { status: 504, headers: { 'x-openfaas-internal': 'of-watchdog' }, body: Buffer.from('response interrupted'), durationS: out.durationS };
  }
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(out.headers)) if (typeof v === 'string') headers[k] = v;
  return { status: out.status, headers, body: Buffer.concat(chunks), durationS: out.durationS };
}
