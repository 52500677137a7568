/**
 * The transport of the uplink: one HTTPS POST of a sealed envelope, with the hospital's TLS client
 * certificate, answered by a receipt or an error (docs/uplink.md §Transport). Plain HTTP is only
 * ever used for a loopback address (development and tests); config.ts refuses anything else.
 */
import http from 'node:http';
import https from 'node:https';
import { BATCHES_PATH, UPLINK_VERSION } from './envelope.js';

export interface TlsClient {
  /** The hospital's client certificate and key (PEM). */
  cert: string;
  key: string;
  /** Trust anchors for the platform's server certificate (PEM); the system roots when absent. */
  ca?: string;
}

export interface Transport {
  url: string;
  tls?: TlsClient;
}

export type SendOutcome = { kind: 'answered'; status: number; body: unknown; retryAfterMs?: number } | { kind: 'network'; reason: string };

export function isLoopback(url: URL): boolean {
  const h = url.hostname.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127(?:\.\d{1,3}){3}$/.test(h);
}

/** Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date; undefined when absent or bad. */
export function retryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export function postEnvelope(t: Transport, batchId: string, body: string, timeoutMs: number): Promise<SendOutcome> {
  const url = new URL(BATCHES_PATH, t.url);
  const secure = url.protocol === 'https:';
  if (!secure && !isLoopback(url)) return Promise.resolve({ kind: 'network', reason: `refusing plain HTTP to ${url.host}: only loopback may skip TLS` });
  const payload = Buffer.from(body, 'utf8');
  const options: https.RequestOptions = {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'content-length': payload.length,
      'idempotency-key': batchId,
      'x-uplink-version': String(UPLINK_VERSION),
    },
    agent: false,
    ...(secure && t.tls ? { cert: t.tls.cert, key: t.tls.key, ...(t.tls.ca ? { ca: t.tls.ca } : {}), minVersion: 'TLSv1.2' as const } : {}),
  };
  return new Promise((resolve) => {
    let done = false;
    const finish = (o: SendOutcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(o);
    };
    const req = (secure ? https : http).request(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => finish({ kind: 'network', reason: `answer interrupted: ${err.message}` }));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try {
          parsed = text ? JSON.parse(text) : null;
        } catch {
          // not JSON: kept as text for the error message
        }
        const ra = retryAfterMs(res.headers['retry-after'] as string | undefined);
        finish({ kind: 'answered', status: res.statusCode ?? 0, body: parsed, ...(ra !== undefined ? { retryAfterMs: ra } : {}) });
      });
    });
    // The whole exchange, not just socket inactivity, must end within timeoutMs.
    const timer = setTimeout(() => {
      req.destroy();
      finish({ kind: 'network', reason: `no answer within ${timeoutMs} ms` });
    }, timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => finish({ kind: 'network', reason: `${err.code ?? 'error'}: ${err.message}` }));
    req.end(payload);
  });
}

/** What a probe of a platform learnt (docs/acceptance.md). */
export interface Probe {
  /** An HTTP answer came back over the connection (TLS verified when https). */
  ok: boolean;
  status?: number;
  ms: number;
  /** The platform's clock (its Date header) minus ours at the answer, in ms. */
  clockOffsetMs?: number;
  tls?: { protocol: string | null; subject: string; validTo: string };
  reason?: string;
}

/**
 * The uplink handshake: a GET of the batches path with the hospital's client certificate, no data
 * sent. Any HTTP answer proves the address, the platform's certificate, ours, and the route; the
 * answer's Date header gives the clock offset.
 */
export function probePlatform(t: Transport, timeoutMs: number): Promise<Probe> {
  const url = new URL(BATCHES_PATH, t.url);
  const secure = url.protocol === 'https:';
  const t0 = Date.now();
  if (!secure && !isLoopback(url)) return Promise.resolve({ ok: false, ms: 0, reason: `refusing plain HTTP to ${url.host}: only loopback may skip TLS` });
  const options: https.RequestOptions = {
    method: 'GET',
    headers: { 'x-uplink-version': String(UPLINK_VERSION), 'x-uplink-probe': '1' },
    agent: false,
    ...(secure && t.tls ? { cert: t.tls.cert, key: t.tls.key, ...(t.tls.ca ? { ca: t.tls.ca } : {}), minVersion: 'TLSv1.2' as const } : {}),
  };
  return new Promise((resolve) => {
    let done = false;
    const finish = (p: Omit<Probe, 'ms'>) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ ...p, ms: Date.now() - t0 });
    };
    const req = (secure ? https : http).request(url, options, (res) => {
      const date = Date.parse(String(res.headers.date ?? ''));
      const socket = res.socket as import('node:tls').TLSSocket;
      const cert = secure ? socket.getPeerCertificate?.() : undefined;
      res.resume();
      res.on('end', () =>
        finish({
          ok: true,
          status: res.statusCode ?? 0,
          // The Date header has whole seconds: the offset is known to ±1 s.
          ...(Number.isNaN(date) ? {} : { clockOffsetMs: date - Date.now() }),
          ...(cert?.subject ? { tls: { protocol: socket.getProtocol?.() ?? null, subject: String(cert.subject.CN ?? ''), validTo: cert.valid_to } } : {}),
        }),
      );
    });
    const timer = setTimeout(() => {
      req.destroy();
      finish({ ok: false, reason: `no answer within ${timeoutMs} ms` });
    }, timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, reason: `${err.code ?? 'error'}: ${err.message}` }));
    req.end();
  });
}
