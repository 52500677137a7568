/**
 * Forwarding of outbox rows to one destination (a platform). Rows are claimed in id order with
 * FOR UPDATE SKIP LOCKED inside a transaction that also holds the destination's advisory lock, so
 * two push runs (the cron and a nudge) never interleave and a later version of a record never
 * overtakes an earlier one. A failed batch stays pending with exponential backoff; the receipt
 * of a delivered batch marks its rows sent.
 * (The signed and encrypted envelope and the delivery ledger arrive with the uplink issue.)
 */
import type { Db } from '../db/index.js';

export interface Destination {
  name: string;
  url: string;
}

export interface PushResult {
  destination: string;
  claimed: number;
  sent: number;
  failed: number;
  batches: number;
  error?: string;
}

export interface PushOptions {
  batchSize?: number;
  /** Stop starting new batches after this long (the function's exec_timeout is the hard stop). */
  budgetMs?: number;
  timeoutMs?: number;
}

interface Row {
  outbox_id: string;
  resource: string;
  org_code: string;
  record_id: string;
  version: number;
  op: string;
  payload: unknown;
  due: boolean;
}

/** A stable advisory-lock key per destination (both PostgreSQL and openGauss take a bigint). */
export function lockKey(destination: string): number {
  let h = 0x5bd1e995;
  for (const ch of `push:${destination}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

export async function pushDestination(db: Db, dest: Destination, opts: PushOptions = {}): Promise<PushResult> {
  const batchSize = opts.batchSize ?? 200;
  const deadline = Date.now() + (opts.budgetMs ?? 40_000);
  const out: PushResult = { destination: dest.name, claimed: 0, sent: 0, failed: 0, batches: 0 };
  const client = await db.connect();
  let locked = false;
  try {
    const l = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [lockKey(dest.name)]);
    locked = l.rows[0]?.ok === true;
    if (!locked) return { ...out, error: 'another push run holds this destination' };
    while (Date.now() < deadline) {
      await client.query('BEGIN');
      const res = await client.query<Row>(
        `SELECT outbox_id, resource, org_code, record_id, version, op, payload, next_attempt_at <= now() AS due
           FROM outbox
          WHERE destination = $1 AND state = 'pending'
          ORDER BY outbox_id LIMIT $2 FOR UPDATE SKIP LOCKED`,
        [dest.name, batchSize],
      );
      // Backoff is per destination, in order: rows behind a row that is waiting wait too, so a
      // later version never overtakes an earlier one that failed.
      const firstWaiting = res.rows.findIndex((r) => !r.due);
      const rows = firstWaiting < 0 ? res.rows : res.rows.slice(0, firstWaiting);
      if (rows.length === 0) {
        await client.query('COMMIT');
        break;
      }
      out.claimed += rows.length;
      out.batches++;
      const ids = rows.map((r) => r.outbox_id);
      const batchId = `${dest.name}-${ids[0]}-${ids.at(-1)}-${rows.length}`;
      try {
        await send(dest, batchId, rows, opts.timeoutMs ?? 15_000);
        await client.query(`UPDATE outbox SET state = 'sent', sent_at = now(), attempts = attempts + 1, last_error = NULL WHERE outbox_id = ANY($1::bigint[])`, [ids]);
        await client.query('COMMIT');
        out.sent += rows.length;
      } catch (err) {
        const msg = (err as Error).message.slice(0, 480);
        await client.query(
          `UPDATE outbox SET attempts = attempts + 1, last_error = $2,
                  next_attempt_at = now() + least(600, 2 * power(2, least(attempts, 12))) * interval '1 second'
            WHERE outbox_id = ANY($1::bigint[])`,
          [ids, msg],
        );
        await client.query('COMMIT');
        out.failed += rows.length;
        out.error = msg;
        break; // the destination is failing: let backoff work instead of hammering it
      }
    }
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    if (locked) await client.query('SELECT pg_advisory_unlock($1)', [lockKey(dest.name)]).catch(() => undefined);
    client.release();
  }
  return out;
}

async function send(dest: Destination, batchId: string, rows: Row[], timeoutMs: number): Promise<void> {
  const body = JSON.stringify({
    batchId,
    records: rows.map((r) => ({ resource: r.resource, orgCode: r.org_code, id: r.record_id, version: r.version, op: r.op, payload: r.payload })),
  });
  const res = await fetch(new URL('/uplink/v1/batches', dest.url), {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': batchId },
    body,
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (!res.ok) throw new Error(`${dest.name} answered HTTP ${res.status}`);
  const receipt = (await res.json()) as { receipts?: Array<{ status: string }> };
  if (!Array.isArray(receipt.receipts) || receipt.receipts.length !== rows.length) {
    throw new Error(`${dest.name} returned a receipt that does not cover the batch`);
  }
}

/** Enabled destinations with a configured URL (<NAME>_URL, e.g. NATIONAL_URL). */
export async function destinations(db: Db, env: NodeJS.ProcessEnv = process.env): Promise<{ ready: Destination[]; unconfigured: string[] }> {
  const res = await db.query<{ name: string }>('SELECT name FROM uplink_destination WHERE enabled = true ORDER BY name');
  const ready: Destination[] = [];
  const unconfigured: string[] = [];
  for (const { name } of res.rows) {
    const url = env[`${name.toUpperCase()}_URL`];
    if (url) ready.push({ name, url });
    else unconfigured.push(name);
  }
  return { ready, unconfigured };
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
  return res.rows.map((r) => ({ destination: r.destination, resource: r.resource, pending: Number(r.pending), oldestAgeS: r.oldest === null ? null : Math.round(Number(r.oldest)) }));
}
