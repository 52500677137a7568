/**
 * Forwarding of outbox rows to one destination (a platform), docs/uplink.md.
 *
 * - One push run per destination at a time: a session advisory lock; rows are claimed under it, and
 *   no transaction is open while a batch is on the wire (each outcome is written afterwards).
 * - Order: realtime and 2-hour classes go ahead of T+0 and T+1, but a version of a record is only
 *   sent once every earlier version of the same record (resource, org, id) has left the queue
 *   (sent, or dead), so a later version never overtakes an earlier one. Parents are never of a
 *   lower class than their children (test/unit/envelope.test.ts checks the declarations), so the
 *   classes do not put a child ahead of its parent either.
 * - Batches are cut by record count and by bytes.
 * - Each batch is sealed (SM4 + SM2 wrap + SM2 signature), POSTed over HTTPS with the hospital's
 *   client certificate, and acknowledged only by a receipt whose platform signature verifies.
 *   Every record receipt goes into the delivery ledger (uplink_batch, uplink_delivery); rows the
 *   platform rejected become 'dead' with its reason, for an operator to see, fix and replay.
 * - Failures: network errors, timeouts, 5xx, unexpected 4xx and bad receipts back off
 *   exponentially with jitter and, after K in a row, open the destination's circuit (a single
 *   record probes it when the open time is over); 429 waits for Retry-After; 422/413 (the platform
 *   refuses a batch for its content) isolate the rows and park a row refused N times as dead.
 *   An outage never kills rows: they wait and drain.
 */
import type pg from 'pg';
import { dbFault, type Db, type Tx } from '../db/index.js';
import {
  deferBatch,
  markRejected,
  scrubDelivered,
  markSent,
  markSkipped,
  parkRefused,
  recordRefusal,
  OutboxState,
  requeueDead,
  skipUntaken,
  wakeDestination,
} from '../outbox/index.js';
import { log } from '../log/index.js';
import { sweepOrphans, type SweepResult } from '../ingest/orphans.js';
import { sweepMappingHolds, type MappingSweep } from '../ingest/mapping.js';
import type { CodeCache } from '../codes/index.js';
import { postEnvelope, type SendOutcome } from './client.js';
import type { Destination } from './config.js';
import { ErrorBody, EnvelopeError, sealEnvelope, verifyReceipt, type Receipt, type UplinkRecord } from './envelope.js';
import { keyId, sm3 } from './sm.js';
import { openRecord, PiiKeyError, PiiValueError } from '../pii/index.js';

import { destinations, type Env as DestinationEnv, type Unconfigured } from './config.js';
export type { Destination } from './config.js';
export { destinations } from './config.js';

export interface PushOptions {
  /** Records per batch (default 200). */
  maxRecords?: number;
  /** Bytes of record JSON per batch, before encryption (default 1 MiB); one larger record goes alone. */
  maxBytes?: number;
  /** Stop starting new batches after this long (the function's exec_timeout is the hard stop). */
  budgetMs?: number;
  /** Per HTTP exchange (default 15 s). */
  timeoutMs?: number;
  /** A row refused this many times for its content becomes dead (default 3). */
  maxRefusals?: number;
  /** Consecutive failed batches that open the circuit (default 5). */
  breakerThreshold?: number;
  /** First backoff step (default 2 s); doubles per consecutive failure up to backoffCapMs (default 10 min). */
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** How long the circuit stays open the first time (default 60 s); doubles per reopening, to the cap. */
  openMs?: number;
  /** Longest Retry-After honoured (default 1 h). */
  retryAfterCapMs?: number;
  /** Source of jitter in [0, 1) (tests pin it). */
  random?: () => number;
  /** A batch leases its destination for timeoutMs plus this (default 5 s): the gap between answer and outcome. */
  leaseMarginMs?: number;
}

export interface PushResult {
  destination: string;
  claimed: number;
  /** Rows acknowledged (accepted or duplicate). */
  sent: number;
  /** Rows the platform rejected (now dead). */
  rejected: number;
  /** Rows of a batch that was not acknowledged (they stay pending). */
  failed: number;
  batches: number;
  badReceipts: number;
  /** Rows of resources this destination does not take, marked skipped. */
  skipped: number;
  circuit: 'closed' | 'open' | 'half-open';
  /** Nothing was sent before this time (backoff, Retry-After, open circuit). */
  waitingUntil?: string;
  error?: string;
}

interface Row {
  outbox_id: string;
  resource: string;
  org_code: string;
  record_id: string;
  version: number;
  op: 'upsert' | 'retire';
  deadline_class: UplinkRecord['deadlineClass'];
  test_mode: boolean;
  payload: Record<string, unknown>;
  refusals: number;
  earlier: string;
}

/** A stable advisory-lock key per destination (both PostgreSQL and openGauss take a bigint). */
export function lockKey(destination: string): number {
  let h = 0x5bd1e995;
  for (const ch of `push:${destination}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

/** The deadline classes in the order they leave (the notice's deadlines: seconds, 2 h, same day, next day). */
export const CLASS_ORDER = ['realtime', '2h', 'T+0', 'T+1'] as const;

type Outcome =
  | { kind: 'receipt'; receipt: Receipt }
  | { kind: 'transient'; reason: string; badReceipt?: boolean }
  | { kind: 'rate-limited'; reason: string; waitMs: number }
  | { kind: 'refused'; reason: string };

function classify(o: SendOutcome, dest: Destination, sent: { batchId: string; records: UplinkRecord[] }, retryAfterCapMs: number): Outcome {
  if (o.kind === 'network') return { kind: 'transient', reason: `${dest.name}: ${o.reason}` };
  const err = ErrorBody.safeParse(o.body);
  const why = err.success ? `${err.data.error.code}: ${err.data.error.reason}` : typeof o.body === 'string' ? o.body.slice(0, 200) : '';
  const what = `${dest.name} answered HTTP ${o.status}${why ? ` (${why})` : ''}`;
  if (o.status === 200) {
    try {
      return { kind: 'receipt', receipt: verifyReceipt(o.body, dest.platformKey, sent) };
    } catch (e) {
      if (e instanceof EnvelopeError) return { kind: 'transient', reason: `${dest.name}: receipt not acknowledged: ${e.message}`, badReceipt: true };
      throw e;
    }
  }
  if (o.status === 429) return { kind: 'rate-limited', reason: what, waitMs: Math.min(retryAfterCapMs, o.retryAfterMs ?? 30_000) };
  // The platform read the batch and refused its content: the rows, not the platform, are at fault.
  if (o.status === 422 || o.status === 413) return { kind: 'refused', reason: what };
  // 5xx, 408, and any other 4xx (a signature, key or version problem is ours or the platform's
  // configuration, never a record's): the destination is failing; the rows wait.
  return { kind: 'transient', reason: what };
}

/**
 * The record as the platform receives it: the personal fields the outbox holds sealed are opened
 * here, just before the batch is sealed for the platform (docs/keys.md). A key id the key file no
 * longer holds stops the run with an error naming it (nothing is sent in its place).
 */
const toRecord = (r: Row): UplinkRecord => ({
  resource: r.resource,
  orgCode: r.org_code,
  id: r.record_id,
  version: r.version,
  op: r.op,
  deadlineClass: r.deadline_class,
  test: r.test_mode,
  payload: openRecord(r.resource, r.payload),
});

/**
 * The batch id of this exchange (docs/uplink.md §6): the rows' own (batchIdOf), so a retry after a
 * timeout or a lost answer carries it again and the platform recognises it; but a batch of the same
 * rows whose exchange was answered before — dead rows replayed after the platform fixed its cause —
 * is a new exchange, `<id>-r<n>` (n its answered exchanges so far): under the old id the platform
 * would answer with its first receipt, `rejected` again, and the row would go back to dead.
 */
async function exchangeIdOf(q: Pick<Tx, 'query'>, destination: string, rows: Row[]): Promise<string> {
  const base = batchIdOf(destination, rows);
  for (let n = 0; ; n++) {
    const id = n === 0 ? base : `${base}-r${n}`;
    const seen = await q.query('SELECT 1 FROM uplink_batch WHERE batch_id = $1 AND destination = $2 LIMIT 1', [id, destination]);
    if (seen.rowCount === 0) return id;
  }
}

/** The idempotency key: the same rows give the same id, so a retry is recognised as one. */
export function batchIdOf(destination: string, rows: { outbox_id: string; resource: string; org_code: string; record_id: string; version: number }[]): string {
  const digest = sm3(rows.map((r) => `${r.outbox_id}|${r.resource}|${r.org_code}|${r.record_id}|${r.version}`).join('\n')).toString('hex');
  return `${destination}-${rows[0]!.outbox_id}-${rows.length}-${digest.slice(0, 16)}`;
}

type Options = Required<Omit<PushOptions, 'budgetMs'>>;

function options(opts: PushOptions): Options {
  return {
    maxRecords: opts.maxRecords ?? 200,
    maxBytes: opts.maxBytes ?? 1024 * 1024,
    timeoutMs: opts.timeoutMs ?? 15_000,
    maxRefusals: opts.maxRefusals ?? 3,
    breakerThreshold: opts.breakerThreshold ?? 5,
    backoffBaseMs: opts.backoffBaseMs ?? 2_000,
    backoffCapMs: opts.backoffCapMs ?? 600_000,
    openMs: opts.openMs ?? 60_000,
    retryAfterCapMs: opts.retryAfterCapMs ?? 3_600_000,
    random: opts.random ?? Math.random,
    leaseMarginMs: opts.leaseMarginMs ?? 5_000,
  };
}

/**
 * Forwards a destination's due rows, batch by batch, until none is left, the budget is spent, or
 * the destination fails. One run per destination at a time (a session advisory lock on this
 * connection): that lock, not a transaction, is what makes the claimed rows this run's, so no
 * transaction is open while a batch is on the wire — each batch's outcome is written afterwards in
 * a short transaction of its own. A run killed mid-flight leaves its rows pending; they are sent
 * again with the same batch id, which the platform recognises (docs/uplink.md "Idempotency").
 */
export async function pushDestination(db: Db, dest: Destination, opts: PushOptions = {}): Promise<PushResult> {
  const o = options(opts);
  const deadline = Date.now() + (opts.budgetMs ?? 40_000);
  const out: PushResult = { destination: dest.name, claimed: 0, sent: 0, rejected: 0, failed: 0, batches: 0, badReceipts: 0, skipped: 0, circuit: 'closed' };
  const client = await db.connect();
  let locked = false;
  let broken: Error | undefined;
  try {
    const l = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [lockKey(dest.name)]);
    locked = l.rows[0]?.ok === true;
    if (!locked) return { ...out, error: 'another push run holds this destination' };
    const c = await circuitOf(client, dest.name);
    if (c.waiting) return { ...out, circuit: c.state === 'open' ? 'open' : 'closed', waitingUntil: c.retry_at!.toISOString() };
    const state = { probe: c.state === 'open' }; // the open time is over: half-open, one record probes
    out.circuit = state.probe ? 'half-open' : 'closed';
    if (dest.resources) out.skipped = await skipUntaken(client, dest.name, dest.resources);
    while (Date.now() < deadline) {
      const next = await pushBatch(client, dest, o, state, out);
      if (next === 'stop') break;
    }
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    // A connection that failed is destroyed, not returned to the pool (its session lock goes with it).
    if (dbFault(err) === 'unavailable') broken = err as Error;
    throw err;
  } finally {
    if (locked && !broken) await client.query('SELECT pg_advisory_unlock($1)', [lockKey(dest.name)]).catch(() => undefined);
    client.release(broken);
  }
  return out;
}

/** The destination's circuit row (made on first use: under the advisory lock nobody else writes it). */
async function circuitOf(client: pg.PoolClient, destination: string): Promise<{ state: string; retry_at: Date | null; waiting: boolean }> {
  await client.query(
    `INSERT INTO uplink_circuit (destination) SELECT $1::varchar WHERE NOT EXISTS (SELECT 1 FROM uplink_circuit WHERE destination = $1::varchar)`,
    [destination],
  );
  return (
    await client.query<{ state: string; retry_at: Date | null; waiting: boolean }>(
      `SELECT state, retry_at, coalesce(retry_at > now(), false) AS waiting FROM uplink_circuit WHERE destination = $1`,
      [destination],
    )
  ).rows[0]!;
}

/** In a short transaction of its own on the run's connection. */
async function inTx<T>(client: pg.PoolClient, fn: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  const r = await fn();
  await client.query('COMMIT');
  return r;
}

/** One batch: claim, seal, send (no transaction open), then record the outcome. 'stop' ends the run. */
async function pushBatch(client: pg.PoolClient, dest: Destination, o: Options, state: { probe: boolean }, out: PushResult): Promise<'next' | 'stop'> {
  let rows = await claim(client, dest.name, state.probe ? 1 : o.maxRecords, o.maxBytes);
  // Second guard (enqueue is the first): a test record never leaves for a destination that does not take them.
  const test = dest.acceptsTest ? [] : rows.filter((r) => r.test_mode).map((r) => r.outbox_id);
  if (test.length) {
    await markSkipped(client, test, 'test record: destination takes no test records');
    out.skipped += test.length;
    if ((rows = rows.filter((r) => !r.test_mode)).length === 0) return 'next';
  }
  if (rows.length === 0) return 'stop';
  out.claimed += rows.length;
  // The personal fields are opened here; a row that cannot be (its key id is not in the key file, or
  // the value does not verify) is parked as dead with the reason naming the key id, for an operator
  // to fix the key file and replay (docs/keys.md); the others go on.
  const records: UplinkRecord[] = [];
  const unopened: Array<{ id: string; reason: string }> = [];
  const sendable: Row[] = [];
  for (const r of rows) {
    try {
      records.push(toRecord(r));
      sendable.push(r);
    } catch (err) {
      if (!(err instanceof PiiKeyError || err instanceof PiiValueError)) throw err;
      unopened.push({ id: r.outbox_id, reason: `cannot open the record's personal data: ${err.message}` });
    }
  }
  if (unopened.length) {
    await inTx(client, async () => {
      for (const u of unopened) await markRejected(client, u.id, u.reason);
    });
    out.rejected += unopened.length;
    log('error', 'push: rows parked, their personal data cannot be opened', { destination: dest.name, rows: unopened.length, reason: unopened[0]!.reason });
    if ((rows = sendable).length === 0) return 'next';
  }
  out.batches++;
  // Belt and braces with the advisory lock (docs/uplink.md "Leases"): the destination is leased for
  // as long as the batch may be on the wire, so a run that takes the lock after this run's connection
  // was lost waits — for the whole destination, which keeps the rows' order. Every outcome ends it.
  await client.query(`UPDATE uplink_circuit SET retry_at = now() + $2 * interval '1 millisecond' WHERE destination = $1`, [
    dest.name,
    o.timeoutMs + o.leaseMarginMs,
  ]);
  const batchId = await exchangeIdOf(client, dest.name, rows);
  const { body } = sealEnvelope({ batchId, destination: dest.name, records, sender: dest.sender, recipient: dest.platformKey });
  const sentAt = new Date();
  const answer = await postEnvelope({ url: dest.url, ...(dest.tls ? { tls: dest.tls } : {}) }, batchId, body, o.timeoutMs);
  const outcome = classify(answer, dest, { batchId, records }, o.retryAfterCapMs);
  if (outcome.kind === 'receipt') {
    const { sent, rejected } = await inTx(client, async () => {
      const r = await acknowledge(client, dest, rows, outcome.receipt, batchId, Buffer.byteLength(body), sentAt);
      await client.query(
        `UPDATE uplink_circuit SET state = 'closed', failures = 0, openings = 0, retry_at = NULL, last_error = NULL, updated_at = now() WHERE destination = $1`,
        [dest.name],
      );
      return r;
    });
    out.sent += sent;
    out.rejected += rejected;
    state.probe = false;
    out.circuit = 'closed';
    return 'next';
  }
  out.error = outcome.reason.slice(0, 480);
  const ids = rows.map((r) => r.outbox_id);
  if (outcome.kind === 'refused') {
    // Content refused: count it on the rows; a refused row is sent alone from now on, and parked
    // as dead once refused maxRefusals times on its own. The platform is up: go on with the others.
    await inTx(client, async () => {
      await client.query(`UPDATE uplink_circuit SET retry_at = NULL WHERE destination = $1`, [dest.name]);
      await recordRefusal(client, ids, out.error!);
      if (rows.length === 1 && (await parkRefused(client, ids[0]!, o.maxRefusals, backoff(rows[0]!.refusals + 1, o)))) out.rejected++;
    });
    out.failed += rows.length;
    return 'next';
  }
  const waitMs = await inTx(client, () => recordFailure(client, dest.name, outcome, ids, state.probe, o, out));
  out.failed += rows.length;
  out.waitingUntil = new Date(Date.now() + waitMs).toISOString();
  return 'stop'; // the destination is failing or asked us to wait: let the backoff work
}

/** The destination failed or asked to wait: its circuit and the batch's rows say until when. */
async function recordFailure(
  client: pg.PoolClient,
  destination: string,
  outcome: Extract<Outcome, { kind: 'transient' | 'rate-limited' }>,
  ids: string[],
  probe: boolean,
  o: Options,
  out: PushResult,
): Promise<number> {
  let waitMs: number;
  if (outcome.kind === 'rate-limited') {
    waitMs = outcome.waitMs;
    await client.query(
      `UPDATE uplink_circuit SET retry_at = now() + $2 * interval '1 millisecond', last_error = $3, updated_at = now() WHERE destination = $1`,
      [destination, waitMs, out.error],
    );
  } else {
    if (outcome.badReceipt) out.badReceipts++;
    const cur = (
      await client.query<{ failures: number; openings: number }>(`SELECT failures, openings FROM uplink_circuit WHERE destination = $1`, [destination])
    ).rows[0]!;
    const failures = cur.failures + 1;
    const open = probe || failures >= o.breakerThreshold;
    waitMs = open ? jitter(Math.min(o.backoffCapMs, o.openMs * 2 ** Math.min(cur.openings, 10)), o) : backoff(failures, o);
    await client.query(
      `UPDATE uplink_circuit SET failures = $2, state = $3, openings = openings + $4, retry_at = now() + $5 * interval '1 millisecond',
              bad_receipts = bad_receipts + $6, last_error = $7, updated_at = now()
        WHERE destination = $1`,
      [destination, failures, open ? 'open' : 'closed', open ? 1 : 0, waitMs, outcome.badReceipt ? 1 : 0, out.error],
    );
    // Each opening is kept as an event too (the evaluation counts them per day).
    if (open)
      await client.query('INSERT INTO uplink_circuit_event (destination, failures, error) VALUES ($1, $2, $3)', [
        destination,
        failures,
        out.error?.slice(0, 500) ?? null,
      ]);
    out.circuit = open ? 'open' : 'closed';
  }
  await deferBatch(client, ids, out.error!, waitMs);
  return waitMs;
}

/** Equal jitter: half the delay fixed, half random, so retries of many fronts spread out. */
function jitter(ms: number, o: { random: () => number }): number {
  return Math.round(ms / 2 + (ms / 2) * o.random());
}

function backoff(failures: number, o: { backoffBaseMs: number; backoffCapMs: number; random: () => number }): number {
  return jitter(Math.min(o.backoffCapMs, o.backoffBaseMs * 2 ** Math.max(0, failures - 1)), o);
}

/**
 * Claims the next batch: due pending rows in class order, then id order; keeps a row only when every
 * earlier version of its record is already in the batch (or gone from the queue). No row lock: the
 * run's advisory lock makes the destination's pending rows this run's (nothing else changes a
 * pending row's state), so no transaction need stay open while the batch is sent.
 */
async function claim(tx: Pick<Tx, 'query'>, destination: string, maxRecords: number, maxBytes: number): Promise<Row[]> {
  const res = await tx.query<Row>(
    `SELECT o.outbox_id, o.resource, o.org_code, o.record_id, o.version, o.op, o.deadline_class, o.test_mode, o.payload, o.refusals,
            (SELECT count(*) FROM outbox e
              WHERE e.destination = o.destination AND e.resource = o.resource AND e.org_code = o.org_code
                AND e.record_id = o.record_id AND e.version < o.version AND e.state IN ('pending', 'held')) AS earlier
       FROM outbox o
      WHERE o.destination = $1 AND o.state = 'pending' AND o.next_attempt_at <= now()
      ORDER BY CASE o.deadline_class WHEN 'realtime' THEN 0 WHEN '2h' THEN 1 WHEN 'T+0' THEN 2 ELSE 3 END, o.outbox_id
      LIMIT $2`,
    [destination, maxRecords],
  );
  const chosen: Row[] = [];
  const perKey = new Map<string, number>();
  let bytes = 0;
  for (const r of res.rows) {
    const key = `${r.resource}|${r.org_code}|${r.record_id}`;
    if (Number(r.earlier) !== (perKey.get(key) ?? 0)) continue; // waits behind an earlier version
    if (r.refusals > 0) {
      if (chosen.length === 0) return [r]; // a refused row goes alone
      continue;
    }
    const size = Buffer.byteLength(JSON.stringify(r.payload));
    if (chosen.length > 0 && bytes + size > maxBytes) break;
    chosen.push(r);
    bytes += size;
    perKey.set(key, (perKey.get(key) ?? 0) + 1);
  }
  return chosen;
}

/** Applies a verified receipt: rows sent or dead, the batch and every record receipt in the ledger. */
async function acknowledge(
  tx: Pick<Tx, 'query'>,
  dest: Destination,
  rows: Row[],
  receipt: Receipt,
  batchId: string,
  bytes: number,
  sentAt: Date,
): Promise<{ sent: number; rejected: number }> {
  const ok: string[] = [];
  let rejected = 0;
  for (const [i, r] of rows.entries()) {
    const rc = receipt.receipts[i]!;
    if (rc.status === 'rejected') {
      rejected++;
      await markRejected(tx, r.outbox_id, `rejected by ${dest.name}: ${rc.reason ?? ''}`);
    } else {
      ok.push(r.outbox_id);
    }
  }
  await markSent(tx, ok);
  await tx.query(
    `INSERT INTO uplink_batch (batch_id, destination, records, bytes, replayed, platform_key_id, received_at, sent_at, receipt)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [batchId, dest.name, rows.length, bytes, receipt.replayed, keyId(dest.platformKey), receipt.receivedAt, sentAt, JSON.stringify(receipt)],
  );
  const cols = 11;
  const values: string[] = [];
  const params: unknown[] = [];
  rows.forEach((r, i) => {
    const rc = receipt.receipts[i]!;
    values.push(`(${Array.from({ length: cols }, (_, j) => `$${i * cols + j + 1}`).join(', ')})`);
    params.push(batchId, dest.name, r.outbox_id, r.resource, r.org_code, r.record_id, r.version, rc.status, rc.reason ?? null, receipt.sig.value, sentAt);
  });
  await tx.query(
    `INSERT INTO uplink_delivery (batch_id, destination, outbox_id, resource, org_code, record_id, version, status, reason, receipt_sig, sent_at)
     VALUES ${values.join(', ')}`,
    params,
  );
  return { sent: ok.length, rejected };
}

// ---- the operator's side: dead letters and replay ------------------------------------------------

export interface DeadLetter {
  outboxId: string;
  destination: string;
  resource: string;
  orgCode: string;
  id: string;
  version: number;
  attempts: number;
  reason: string | null;
  deadAt: Date | null;
}

export interface DeadFilter {
  destination?: string;
  resource?: string;
  orgCode?: string;
  outboxIds?: (string | number)[];
}

function filterSql(f: DeadFilter, params: unknown[]): string {
  const where = [`o.state = 'dead'`];
  const add = (sql: string, v: unknown) => {
    params.push(v);
    where.push(sql.replace('?', `$${params.length}`));
  };
  if (f.destination) add('o.destination = ?', f.destination);
  if (f.resource) add('o.resource = ?', f.resource);
  if (f.orgCode) add('o.org_code = ?', f.orgCode);
  if (f.outboxIds) add('o.outbox_id = ANY(?::bigint[])', f.outboxIds.map(String));
  return where.join(' AND ');
}

export async function deadLetters(db: Db, f: DeadFilter = {}, limit = 200): Promise<DeadLetter[]> {
  const params: unknown[] = [];
  const where = filterSql(f, params);
  params.push(limit);
  const res = await db.query<{
    outbox_id: string;
    destination: string;
    resource: string;
    org_code: string;
    record_id: string;
    version: number;
    attempts: number;
    last_error: string | null;
    dead_at: Date | null;
  }>(
    `SELECT o.outbox_id, o.destination, o.resource, o.org_code, o.record_id, o.version, o.attempts, o.last_error, o.dead_at
       FROM outbox o WHERE ${where} ORDER BY o.outbox_id LIMIT $${params.length}`,
    params,
  );
  return res.rows.map((r) => ({
    outboxId: r.outbox_id,
    destination: r.destination,
    resource: r.resource,
    orgCode: r.org_code,
    id: r.record_id,
    version: r.version,
    attempts: r.attempts,
    reason: r.last_error,
    deadAt: r.dead_at,
  }));
}

export interface ReplayResult {
  /** Rows queued again (pending, due now). */
  replayed: string[];
  /** Dead rows left dead: a later version of the same record was already delivered, so sending
   * this one now would put an older version after a newer one. */
  superseded: string[];
}

/**
 * Puts dead rows back in the queue after an operator fixed the cause (at the platform, in the
 * destination's configuration, or by a corrected version from the HIS). Needs a destination and
 * at least one narrowing filter, so a replay is always deliberate.
 */
export async function replay(db: Db, f: DeadFilter & { destination: string }): Promise<ReplayResult> {
  if (!f.destination) throw new Error('replay needs a destination');
  if (!f.outboxIds && !f.resource && !f.orgCode) throw new Error('replay needs outboxIds, resource or orgCode');
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    const params: unknown[] = [];
    const where = filterSql(f, params);
    // Superseded: a later version of the record is delivered, or on its way — queued, held, or in a batch
    // on the wire right now (still pending): sent after it, this one would leave the platform on an older
    // version (docs/uplink.md §7). The later version carries the record's content; a dead later version
    // does not supersede (both are replayed, in order).
    const later = params.push([OutboxState.enum.sent, OutboxState.enum.pending, OutboxState.enum.held]);
    const res = await client.query<{ outbox_id: string; superseded: boolean }>(
      `SELECT o.outbox_id,
              EXISTS (SELECT 1 FROM outbox l
                       WHERE l.destination = o.destination AND l.resource = o.resource AND l.org_code = o.org_code
                         AND l.record_id = o.record_id AND l.version > o.version AND l.state = ANY($${later}::varchar[])) AS superseded
         FROM outbox o WHERE ${where} ORDER BY o.outbox_id FOR UPDATE`,
      params,
    );
    const replayed = res.rows.filter((r) => !r.superseded).map((r) => r.outbox_id);
    const superseded = res.rows.filter((r) => r.superseded).map((r) => r.outbox_id);
    await requeueDead(client, replayed);
    await client.query('COMMIT');
    return { replayed, superseded };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** Clears a destination's backoff and closes its circuit (an operator's "retry now"). */
export async function resetCircuit(db: Db, destination: string): Promise<void> {
  await db.query(`UPDATE uplink_circuit SET state = 'closed', failures = 0, openings = 0, retry_at = NULL, updated_at = now() WHERE destination = $1`, [
    destination,
  ]);
  await wakeDestination(db, destination);
}

export interface CircuitState {
  destination: string;
  state: string;
  failures: number;
  retryAt: Date | null;
  badReceipts: number;
  lastError: string | null;
}

export async function circuits(db: Db): Promise<CircuitState[]> {
  const res = await db.query<{ destination: string; state: string; failures: number; retry_at: Date | null; bad_receipts: number; last_error: string | null }>(
    `SELECT destination, state, failures, retry_at, bad_receipts, last_error FROM uplink_circuit ORDER BY destination`,
  );
  return res.rows.map((r) => ({
    destination: r.destination,
    state: r.state,
    failures: r.failures,
    retryAt: r.retry_at,
    badReceipts: r.bad_receipts,
    lastError: r.last_error,
  }));
}

export interface Lag {
  destination: string;
  resource: string;
  pending: number;
  oldestAgeS: number | null;
}

export async function lag(db: Db): Promise<Lag[]> {
  const res = await db.query<{ destination: string; resource: string; pending: string; oldest: number | null }>(
    `SELECT destination, resource, count(*) AS pending,
            extract(epoch FROM (now() - min(created_at))) AS oldest
       FROM outbox WHERE state = 'pending' GROUP BY destination, resource ORDER BY destination, resource`,
  );
  return res.rows.map((r) => ({
    destination: r.destination,
    resource: r.resource,
    pending: Number(r.pending),
    oldestAgeS: r.oldest === null ? null : Math.round(Number(r.oldest)),
  }));
}

// ---- one push run: the sweeps, then every destination ----------------------------------------

export interface RunStep {
  step: string;
  error: string;
}

export interface PushRun {
  orphans: SweepResult;
  mapping: MappingSweep;
  results: PushResult[];
  unconfigured: Unconfigured[];
  /** Steps that threw (each logged): the others ran all the same. */
  failedSteps: RunStep[];
  /** Delivered rows whose payload was scrubbed in this run. */
  scrubbed: number;
}

/**
 * One run of the push function (docs/uplink.md, docs/faults.md): the orphan sweep (cron runs only),
 * the mapping-hold sweep, then each ready destination. Every step runs on its own: one that throws
 * (a poisoned row, a database fault, a bug) is logged and reported, and the next step runs.
 */
/** Destinations a push run serves side by side. */
const DESTINATIONS_AT_ONCE = 2;

export async function pushRun(
  db: Db,
  o: {
    orphans: boolean;
    /** Hours after which a child whose parent never came is released without it (docs/uplink.md). */
    orphanReleaseAfterH: number;
    /** Days after delivery after which payloads are scrubbed (cron runs; 0 = never). */
    outboxRetentionDays?: number;
    /** The function's configuration variables, for the destinations' URLs and keys. */
    env: DestinationEnv;
    codes: () => Promise<CodeCache | undefined>;
    push?: PushOptions;
  },
): Promise<PushRun> {
  const run: PushRun = {
    orphans: { linked: 0, expired: 0, failed: 0 },
    mapping: { checked: 0, remapped: 0, released: 0, failed: 0 },
    results: [],
    unconfigured: [],
    failedSteps: [],
    scrubbed: 0,
  };
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (err) {
      const error = (err as Error).message ?? String(err);
      run.failedSteps.push({ step: name, error: error.slice(0, 300) });
      log('error', 'push run step failed', { step: name, err: error, code: (err as { code?: string }).code });
      return undefined;
    }
  };
  // Held children whose parent did arrive (concurrent commits) or never will (expiry) go first.
  if (o.orphans) run.orphans = (await step('orphans', () => sweepOrphans(db, o.orphanReleaseAfterH))) ?? run.orphans;
  // Records held for a code whose mapping now exists are re-mapped and released.
  run.mapping =
    (await step('mapping', async () => {
      const codes = await o.codes();
      if (!codes) return undefined;
      await codes.refresh();
      return sweepMappingHolds(db, codes);
    })) ?? run.mapping;
  const dests = await step('destinations', () => destinations(db, o.env));
  run.unconfigured = dests?.unconfigured ?? [];
  // Two destinations at a time, each on its own connection: a platform answering slowly (a batch in
  // 13 s) must not hold the other's rows back for the run (docs/uplink.md §7); two leave the push
  // function's pool of four room for the sweeps and the alert check.
  const ready = dests?.ready ?? [];
  const done: Array<PushResult | undefined> = new Array(ready.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(DESTINATIONS_AT_ONCE, ready.length) }, async () => {
      while (next < ready.length) {
        const i = next++;
        done[i] = await step(`destination ${ready[i]!.name}`, () => pushDestination(db, ready[i]!, o.push));
      }
    }),
  );
  for (const r of done) if (r) run.results.push(r);
  // Delivered payloads past their retention lose the record's content (docs/security.md).
  if (o.orphans && (o.outboxRetentionDays ?? 0) > 0) run.scrubbed = (await step('retention', () => scrubDelivered(db, o.outboxRetentionDays!))) ?? 0;
  return run;
}
