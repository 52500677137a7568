/**
 * The national / provincial platform simulator: the other end of the uplink contract
 * (docs/uplink.md), used by `make up`, the tests and hospital acceptance runs.
 *
 * It verifies the hospital's SM2 signature, unwraps the SM4 batch key with its own SM2 key,
 * decrypts, validates the batch with the contract's zod schemas, removes duplicates by
 * (org, resource, id, version), keeps what it received (in memory, and appended to an ndjson file
 * when one is given, so a restart keeps it), answers queries, and signs a receipt per record.
 * A batch id seen before is answered with the original outcome (idempotency); the same id with
 * other records is refused (409).
 *
 * Keys: its SM2 private key and the hospitals' public keys come from PEM (files, for the CLI);
 * without them it plays with the well-known development keys (shared/uplink/dev-keys.ts). With
 * `tls` it serves HTTPS and requires a client certificate issued by the given CA.
 *
 * Fault switches (POST /sim/faults, on the main and the control listener): refuse connections,
 * answer 500, 429 with Retry-After, time out (hold the request), answer slowly, reject every Nth
 * record, sign a receipt badly. The control listener (plain HTTP on loopback) stays up while the
 * main one refuses connections, so a test can switch the fault off again.
 */
import { Hono } from 'hono';
import { getRequestListener } from '@hono/node-server';
import http from 'node:http';
import https from 'node:https';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { EnvelopeError, openEnvelope, signReceipt, type KnownSender, type RecordReceipt, type UplinkRecord } from '../../shared/uplink/envelope.js';
import { DEV_SENDER, devKey } from '../../shared/uplink/dev-keys.js';
import { keyId, parseSm2PrivateKey, parseSm2PublicKey, sm3, type Sm2PrivateKey } from '../../shared/uplink/sm.js';

export type Received = UplinkRecord & { receivedAt: string; batchId: string; sender: string };

export const Fault = z.object({
  mode: z.enum(['none', 'refuse', 'down500', 'rate429', 'timeout', 'slow', 'partial', 'badReceiptSig']),
  /** refuse: how long (then open again); timeout: how long to hold; slow: the delay. */
  seconds: z.number().nonnegative().optional(),
  /** rate429: the Retry-After value in seconds (default 1). */
  retryAfter: z.number().int().nonnegative().optional(),
  /** partial: every Nth record of a batch is rejected (default 2). */
  every: z.number().int().positive().optional(),
  /** Apply to this many batch requests only, then switch off by itself. */
  times: z.number().int().positive().optional(),
});
export type Fault = z.infer<typeof Fault>;

export interface HospitalKey {
  name: string;
  publicKeyPem: string;
  orgCodes?: string[];
}

export interface PlatformOptions {
  role?: 'national' | 'provincial';
  port?: number;
  host?: string;
  /** ndjson file the received records are appended to (and reloaded from on start). */
  storeFile?: string;
  /** The platform's SM2 private key (PEM); the role's development key when absent. */
  keyPem?: string;
  /** Hospital fronts allowed to send; the development hospital when absent. */
  hospitals?: HospitalKey[];
  /** Serve HTTPS, requiring a client certificate issued by `ca`. */
  tls?: { cert: string; key: string; ca: string };
  /** Port of the plain-HTTP loopback control listener (0 = any free port). */
  controlPort?: number;
}

export interface PlatformStats {
  received: number;
  duplicates: number;
  rejected: number;
  batches: number;
  replays: number;
  refused: Record<string, number>;
  badReceiptsSent: number;
}

export interface PlatformHandle {
  url: string;
  port: number;
  /** Plain HTTP on loopback: queries and fault switches, up even while the main listener refuses. */
  controlUrl: string;
  records: () => Received[];
  stats: () => PlatformStats;
  fault: (f: Fault) => Promise<void>;
  close: () => Promise<void>;
}

interface Seen {
  digest: string;
  receivedAt: string;
  receipts: RecordReceipt[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const STATUS: Record<string, 400 | 401 | 403 | 409 | 422> = {
  'unsupported-version': 400,
  'invalid-envelope': 400,
  'wrong-recipient': 400,
  'unwrap-failed': 400,
  'decrypt-failed': 400,
  'batch-mismatch': 400,
  'unknown-sender': 401,
  'bad-signature': 401,
  'foreign-org': 403,
  'idempotency-conflict': 409,
  'invalid-batch': 422,
};

export function platformApp(opts: PlatformOptions = {}, hooks: { onFault?: (f: Fault) => Promise<void> } = {}) {
  const role = opts.role ?? 'national';
  const key: Sm2PrivateKey = opts.keyPem ? parseSm2PrivateKey(opts.keyPem) : devKey(role);
  const senders = new Map<string, KnownSender>();
  for (const h of opts.hospitals ?? []) {
    const pub = parseSm2PublicKey(h.publicKeyPem);
    senders.set(keyId(pub), { name: h.name, key: pub, ...(h.orgCodes ? { orgCodes: h.orgCodes } : {}) });
  }
  if (!opts.hospitals) senders.set(keyId(devKey('hospital').pub), { name: DEV_SENDER, key: devKey('hospital').pub });
  const received: Received[] = [];
  const seenRecords = new Set<string>();
  const seenBatches = new Map<string, Seen>();
  const stats: PlatformStats = { received: 0, duplicates: 0, rejected: 0, batches: 0, replays: 0, refused: {}, badReceiptsSent: 0 };
  let fault: Fault = { mode: 'none' };
  const keyOf = (r: { orgCode: string; resource: string; id: string; version: number }) => `${r.orgCode}|${r.resource}|${r.id}|${r.version}`;
  if (opts.storeFile && existsSync(opts.storeFile)) {
    for (const line of readFileSync(opts.storeFile, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const r = JSON.parse(line) as Received;
      if (!seenRecords.has(keyOf(r))) {
        seenRecords.add(keyOf(r));
        received.push(r);
      }
    }
    stats.received = received.length;
  }

  const setFault = async (f: Fault) => {
    fault = f;
    await hooks.onFault?.(f);
  };
  /** Counts one use of the current fault down (`times`). */
  const consume = (f: Fault): void => {
    if (f.mode === 'none' || f.times === undefined || fault !== f) return;
    if (f.times <= 1) void setFault({ mode: 'none' });
    else fault = { ...f, times: f.times - 1 };
  };
  /**
   * The fault for this batch request, counting down `times` — except a partial reject, which counts
   * only the batches it could act on (at least `every` records, not a replay): under a light load a
   * run of one-record batches would otherwise use it up without rejecting anything.
   */
  const take = (): Fault => {
    const f = fault;
    if (f.mode !== 'partial') consume(f);
    return f;
  };
  const refuse = (code: string, reason: string) => {
    stats.refused[code] = (stats.refused[code] ?? 0) + 1;
    return { error: { code, reason } };
  };

  const app = new Hono();
  app.get('/healthz', (c) => c.json({ ok: true, role, keyId: keyId(key.pub) }));

  app.post('/uplink/v1/batches', async (c) => {
    const f = take();
    if (f.mode === 'down500') return c.json(refuse('unavailable', 'simulated outage'), 500);
    if (f.mode === 'rate429') {
      c.header('retry-after', String(f.retryAfter ?? 1));
      return c.json(refuse('rate-limited', 'simulated rate limit'), 429);
    }
    if (f.mode === 'timeout') await sleep((f.seconds ?? 30) * 1000);
    if (f.mode === 'slow') await sleep((f.seconds ?? 2) * 1000);
    const body = await c.req.json().catch(() => null);
    let opened: ReturnType<typeof openEnvelope>;
    try {
      opened = openEnvelope(body, { key, senders: (id) => senders.get(id) });
      if (c.req.header('idempotency-key') !== opened.envelope.batchId) {
        throw new EnvelopeError('invalid-envelope', 'the Idempotency-Key header must equal the envelope batchId');
      }
    } catch (err) {
      if (!(err instanceof EnvelopeError)) throw err;
      return c.json(refuse(err.code, err.reason), STATUS[err.code] ?? 400);
    }
    const { batch, sender } = opened;
    stats.batches++;
    const digest = sm3(batch.records.map(keyOf).join('\n')).toString('hex');
    let seen = seenBatches.get(batch.batchId);
    let replayed = false;
    if (seen) {
      if (seen.digest !== digest) {
        return c.json(refuse('idempotency-conflict', `batch id ${batch.batchId} was used before for other records`), 409);
      }
      replayed = true;
      stats.replays++;
    } else {
      const receivedAt = new Date().toISOString();
      const every = f.mode === 'partial' ? (f.every ?? 2) : 0;
      if (every && batch.records.length >= every) consume(f);
      const receipts = batch.records.map((r, i): RecordReceipt => {
        const base = { resource: r.resource, orgCode: r.orgCode, id: r.id, version: r.version };
        if (every && (i + 1) % every === 0) {
          stats.rejected++;
          return { ...base, status: 'rejected', reason: `simulated rejection: every ${every}th record of a batch is refused` };
        }
        const k = keyOf(r);
        if (seenRecords.has(k)) {
          stats.duplicates++;
          return { ...base, status: 'duplicate' };
        }
        seenRecords.add(k);
        const rec: Received = { ...r, receivedAt, batchId: batch.batchId, sender: sender.name };
        received.push(rec);
        stats.received++;
        if (opts.storeFile) appendFileSync(opts.storeFile, JSON.stringify(rec) + '\n');
        return { ...base, status: 'accepted' };
      });
      seen = { digest, receivedAt, receipts };
      seenBatches.set(batch.batchId, seen);
    }
    const receipt = signReceipt(
      { v: 1, batchId: batch.batchId, platform: { role, keyId: keyId(key.pub) }, receivedAt: seen.receivedAt, replayed, receipts: seen.receipts },
      key,
    );
    if (f.mode === 'badReceiptSig') {
      const sig = Buffer.from(receipt.sig.value, 'base64');
      sig[sig.length - 1]! ^= 0x01;
      receipt.sig.value = sig.toString('base64');
      stats.badReceiptsSent++;
    }
    return c.json(receipt);
  });

  const query = new Hono();
  query.get('/uplink/v1/records', (c) => {
    const q = c.req.query();
    const rows = received.filter((r) => (!q.resource || r.resource === q.resource) && (!q.orgCode || r.orgCode === q.orgCode) && (!q.id || r.id === q.id));
    return c.json({ count: rows.length, records: rows });
  });
  query.get('/uplink/v1/stats', (c) => c.json(stats));
  query.get('/sim/faults', (c) => c.json(fault));
  query.post('/sim/faults', async (c) => {
    const f = Fault.safeParse(await c.req.json().catch(() => null));
    if (!f.success) return c.json({ error: { code: 'invalid-fault', reason: `mode must be one of ${Fault.shape.mode.options.join(' | ')}` } }, 400);
    await setFault(f.data);
    return c.json(fault);
  });
  app.route('/', query);
  return { app, control: query, records: () => received, stats: () => stats, setFault };
}

export async function startPlatformSimulator(opts: PlatformOptions = {}): Promise<PlatformHandle> {
  const host = opts.host ?? '127.0.0.1';
  let main: http.Server | https.Server | undefined;
  let port = opts.port ?? 0;
  let refuseTimer: NodeJS.Timeout | undefined;
  let refusing = false;

  const listen = (s: http.Server, p: number, h: string, what: string) =>
    new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) =>
        reject(err.code === 'EADDRINUSE' ? new Error(`port ${p} (${opts.role ?? 'national'} platform simulator ${what}) is already in use`) : err);
      s.once('error', onError);
      s.listen(p, h, () => {
        s.off('error', onError);
        resolve();
      });
    });
  const closeServer = (s: http.Server) =>
    new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });

  const onFault = async (f: Fault) => {
    clearTimeout(refuseTimer);
    if (f.mode === 'refuse' && !refusing && main) {
      refusing = true;
      await closeServer(main);
      // Through setFault: GET /sim/faults then says `none`, as the listener is open again.
      if (f.seconds !== undefined) refuseTimer = setTimeout(() => void sim.setFault({ mode: 'none' }), f.seconds * 1000);
    } else if (f.mode !== 'refuse' && refusing && main) {
      refusing = false;
      await listen(main, port, host, 'listener');
    }
  };
  const sim = platformApp(opts, { onFault });
  const listener = getRequestListener(sim.app.fetch);
  main = opts.tls
    ? https.createServer(
        { cert: opts.tls.cert, key: opts.tls.key, ca: opts.tls.ca, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' },
        listener,
      )
    : http.createServer(listener);
  await listen(main, port, host, 'listener');
  port = (main.address() as AddressInfo).port;
  const control = http.createServer(getRequestListener(sim.control.fetch));
  await listen(control, opts.controlPort ?? 0, '127.0.0.1', 'control listener');
  const controlPort = (control.address() as AddressInfo).port;
  return {
    url: `${opts.tls ? 'https' : 'http'}://${host}:${port}`,
    port,
    controlUrl: `http://127.0.0.1:${controlPort}`,
    records: sim.records,
    stats: sim.stats,
    fault: (f) => sim.setFault(Fault.parse(f)),
    close: async () => {
      clearTimeout(refuseTimer);
      await Promise.all([refusing ? Promise.resolve() : closeServer(main!), closeServer(control)]);
    },
  };
}
