/**
 * The outbox (docs/uplink.md "Outbox states", docs/ingest.md "Who writes what"): one row per record
 * version and destination, written in the record's own transaction, and the only way data leaves.
 * This module is the only writer of outbox rows and their states; ingest, mapping release, orphan
 * release, replay and push call it. States are typed (OutboxState), never bare strings in callers:
 *
 *   held ──(parent arrives, mapping found: releaseHeld)──▶ pending ──(receipt)──▶ sent
 *   held ──(a newer version not held: supersedeHeld)──▶ superseded
 *   pending ──(platform rejects, or refused N times: markRejected, parkRefused)──▶ dead ──(replay)──▶ pending
 *   pending ──(destination does not take the resource or test records)──▶ skipped
 */
import { z } from 'zod';
import type { Tx } from '../db/index.js';
import { chunkRows, exec, keyList, source, statementName, type Cols, type Given, type WritePart } from '../db/sql.js';

export const OutboxState = z.enum(['pending', 'held', 'sent', 'dead', 'skipped', 'superseded']);
export type OutboxState = z.infer<typeof OutboxState>;
const S = OutboxState.enum;

type Query = { query: Tx['query'] };

export interface OutboxEntry {
  resource: string;
  orgCode: string;
  id: string;
  version: number;
  op: 'upsert' | 'retire';
  deadline: string;
  test: boolean;
  /** held: waits for a parent (or a mapping) before it may leave. */
  held: boolean;
  payload: unknown;
}

const OUTBOX_COLS: Cols = [
  ['resource', 'varchar'],
  ['org_code', 'varchar'],
  ['record_id', 'varchar'],
  ['version', 'integer'],
  ['op', 'varchar'],
  ['deadline_class', 'varchar'],
  ['test_mode', 'boolean'],
  ['payload', 'jsonb'],
  ['state', 'varchar'],
  ['seq', 'integer'],
];

/**
 * One outbox row per enabled or paused destination that takes the resource (a provincial platform may
 * take a subset; a paused one keeps its rows until it is enabled again, docs/config-bundles.md §5), in
 * the records' own transaction, in the order given (outbox ids follow it, so a
 * platform receives records in that order). Test-mode records go only to destinations that accept
 * them (an acceptance simulator), never to a live platform.
 */
function enqueueSql(entries: OutboxEntry[], offset: number, seqFrom = 0, only?: string, payloadAt?: Given): { sql: string; params: unknown[] } {
  const src = source(
    OUTBOX_COLS,
    entries.map((e, j) => [
      e.resource,
      e.orgCode,
      e.id,
      e.version,
      e.op,
      e.deadline,
      e.test,
      payloadAt ? null : JSON.stringify(e.payload),
      e.held ? OutboxState.enum.held : OutboxState.enum.pending,
      seqFrom + j,
    ]),
    offset,
    only,
    payloadAt,
  );
  return {
    sql: `INSERT INTO outbox (destination, resource, org_code, record_id, version, op, deadline_class, test_mode, payload, state)
       SELECT d.name, s.resource, s.org_code, s.record_id, s.version, s.op, s.deadline_class, s.test_mode, s.payload, s.state
         FROM (${src.sql}) s, uplink_destination d
        WHERE (d.enabled = true OR d.paused = true) AND (d.accepts_test = true OR s.test_mode = false)
          AND (d.resources IS NULL OR (' ' || d.resources || ' ') LIKE ('% ' || s.resource || ' %'))
        ORDER BY s.seq, d.name`,
    params: src.params,
  };
}

export async function enqueue(tx: Tx, entries: OutboxEntry[]): Promise<number> {
  let n = 0;
  const per = chunkRows(OUTBOX_COLS.length);
  for (let i = 0; i < entries.length; i += per) {
    const part = entries.slice(i, i + per);
    const q = enqueueSql(part, 0, i);
    const res = await exec(tx, q.sql, q.params, statementName(part.length, 'outbox1', q.sql));
    n += res.rowCount ?? 0;
  }
  return n;
}

/**
 * What `enqueue` writes, as one part of a composed write (shared/db/sql.ts composeWrites);
 * `payloadAt`: the entries' payload texts are already in the statement (`{ payload: '$1' }`, in the entries' order).
 */
export function enqueuePart(entries: OutboxEntry[], payloadAt?: Given): WritePart {
  return (offset, only) => {
    const q = enqueueSql(entries, offset, 0, only, payloadAt);
    return { ctes: [{ name: 'outbox_rows', sql: `${q.sql} RETURNING 1` }], params: q.params };
  };
}

/**
 * A new version that is not held replaces versions still held (for a code since corrected, say):
 * those are never sent — the platform receives the record's current state instead.
 */
export async function supersedeHeld(tx: Tx, resource: string, keys: Array<[string, string]>): Promise<void> {
  if (keys.length === 0) return;
  const k = keyList(['org_code', 'record_id'], keys, 1);
  await tx.query(`UPDATE outbox SET state = $${k.params.length + 2} WHERE resource = $1 AND ${k.sql} AND state = $${k.params.length + 3}`, [
    resource,
    ...k.params,
    S.superseded,
    S.held,
  ]);
}

/**
 * Moves a record's held outbox rows to the back of the queue as pending — their created_at kept (the
 * receipt time), their released_at now, from which the backlog alert measures their wait — and stamps
 * its receipt's released_at: a release changes its business day's figures, so the day close takes it
 * as a late record (docs/day-close.md "Late records", "Backlog alerts").
 */
export async function releaseHeld(tx: Tx, resource: string, orgCode: string, id: string): Promise<number> {
  const moved = await tx.query(
    `INSERT INTO outbox (destination, resource, org_code, record_id, version, op, deadline_class, test_mode, payload, created_at, released_at)
     SELECT destination, resource, org_code, record_id, version, op, deadline_class, test_mode, payload, created_at, now()
       FROM outbox WHERE resource = $1 AND org_code = $2 AND record_id = $3 AND state = $4 ORDER BY outbox_id`,
    [resource, orgCode, id, S.held],
  );
  await tx.query(`DELETE FROM outbox WHERE resource = $1 AND org_code = $2 AND record_id = $3 AND state = $4`, [resource, orgCode, id, S.held]);
  await tx.query('UPDATE record_receipt SET released_at = now() WHERE resource = $1 AND org_code = $2 AND record_id = $3', [resource, orgCode, id]);
  return moved.rowCount ?? 0;
}

/**
 * Rewrites the payload of every held row of a record, oldest first (mapping release re-maps each
 * waiting version on its own payload, once for all its destinations). Returns how many rows were held.
 */
export async function rewriteHeldPayloads(
  tx: Tx,
  resource: string,
  orgCode: string,
  id: string,
  rewrite: (payload: Record<string, unknown>) => Record<string, unknown>,
): Promise<number> {
  const rows = await tx.query<{ outbox_id: string; payload: Record<string, unknown> }>(
    `SELECT outbox_id, payload FROM outbox WHERE resource = $1 AND org_code = $2 AND record_id = $3 AND state = $4 ORDER BY outbox_id`,
    [resource, orgCode, id, S.held],
  );
  // One version waits once per destination with the same payload: rewritten once, every row updated.
  const byPayload = new Map<string, { payload: Record<string, unknown>; ids: string[] }>();
  for (const row of rows.rows) {
    const text = JSON.stringify(row.payload);
    const same = byPayload.get(text);
    if (same) same.ids.push(row.outbox_id);
    else byPayload.set(text, { payload: row.payload, ids: [row.outbox_id] });
  }
  for (const { payload, ids } of byPayload.values()) {
    await tx.query('UPDATE outbox SET payload = $2::jsonb WHERE outbox_id = ANY($1::bigint[])', [ids, JSON.stringify(rewrite(payload))]);
  }
  return rows.rows.length;
}

// ---- push's transitions (shared/uplink/push.ts) -------------------------------------------------

/** Pending rows of resources the destination does not take become skipped. */
export async function skipUntaken(db: Query, destination: string, resources: string[]): Promise<number> {
  const r = await db.query(
    `UPDATE outbox SET state = $3, last_error = 'resource not taken by this destination'
      WHERE destination = $1 AND state = $4 AND NOT (resource = ANY($2::varchar[]))`,
    [destination, resources, S.skipped, S.pending],
  );
  return r.rowCount ?? 0;
}

/** Rows that must not leave for this destination (test records for a live platform) become skipped. */
export async function markSkipped(db: Query, ids: string[], reason: string): Promise<void> {
  if (ids.length) await db.query(`UPDATE outbox SET state = $2, last_error = $3 WHERE outbox_id = ANY($1::bigint[])`, [ids, S.skipped, reason]);
}

/** A batch the platform refused for its content: counted on each row. */
export async function recordRefusal(db: Query, ids: string[], error: string): Promise<void> {
  await db.query(`UPDATE outbox SET attempts = attempts + 1, refusals = refusals + 1, last_error = $2 WHERE outbox_id = ANY($1::bigint[])`, [ids, error]);
}

/** A row refused on its own `max` times becomes dead; otherwise it waits `waitMs`. True when parked. */
export async function parkRefused(db: Query, id: string, max: number, waitMs: number): Promise<boolean> {
  const r = await db.query(`UPDATE outbox SET state = $3, dead_at = now() WHERE outbox_id = $1 AND refusals >= $2`, [id, max, S.dead]);
  if (r.rowCount) return true;
  await db.query(`UPDATE outbox SET next_attempt_at = now() + $2 * interval '1 millisecond' WHERE outbox_id = $1`, [id, waitMs]);
  return false;
}

/** A batch that was not acknowledged (the destination failing, or asking to wait): the rows wait. */
export async function deferBatch(db: Query, ids: string[], error: string, waitMs: number): Promise<void> {
  await db.query(
    `UPDATE outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = now() + $3 * interval '1 millisecond' WHERE outbox_id = ANY($1::bigint[])`,
    [ids, error, waitMs],
  );
}

/** A row the platform's receipt rejected: dead, with the platform's reason, for an operator. */
export async function markRejected(db: Query, id: string, reason: string): Promise<void> {
  await db.query(`UPDATE outbox SET state = $3, dead_at = now(), attempts = attempts + 1, last_error = $2 WHERE outbox_id = $1`, [
    id,
    reason.slice(0, 500),
    S.dead,
  ]);
}

/** Rows acknowledged by a verified receipt (accepted or duplicate). */
export async function markSent(db: Query, ids: string[]): Promise<void> {
  if (ids.length)
    await db.query(`UPDATE outbox SET state = $2, sent_at = now(), attempts = attempts + 1, last_error = NULL WHERE outbox_id = ANY($1::bigint[])`, [
      ids,
      S.sent,
    ]);
}

/** Dead rows back in the queue, due now (an operator's replay after fixing the cause). */
export async function requeueDead(db: Query, ids: string[]): Promise<void> {
  if (!ids.length) return;
  await db.query(
    `UPDATE outbox SET state = $2, refusals = 0, dead_at = NULL, next_attempt_at = now(),
            last_error = substr('replayed after: ' || coalesce(last_error, ''), 1, 500)
      WHERE outbox_id = ANY($1::bigint[]) AND state = $3`,
    [ids, S.pending, S.dead],
  );
}

/** A destination's waiting rows due now (an operator's "retry now"); rows refused for content keep their wait. */
export async function wakeDestination(db: Query, destination: string): Promise<void> {
  await db.query(`UPDATE outbox SET next_attempt_at = now() WHERE destination = $1 AND state = $2 AND refusals = 0`, [destination, S.pending]);
}

/**
 * Payloads of rows that are done — sent (acknowledged), skipped or superseded — and older than the
 * retention lose the record's content: the platform has it, and the front keeps the row's keys, state
 * and times (and the delivery ledger its receipts) but no longer the patient's data (docs/security.md
 * "Data at rest"). Dead and pending rows keep theirs: they may still be sent. Bounded per call.
 */
export async function scrubDelivered(db: Query, retentionDays: number, limit = 5000): Promise<number> {
  const r = await db.query(
    `UPDATE outbox SET payload = '{}'::jsonb
      WHERE outbox_id IN (
        SELECT outbox_id FROM outbox
         WHERE state IN ($1, $2, $3) AND coalesce(sent_at, created_at) < now() - $4 * interval '1 day' AND payload <> '{}'::jsonb
         LIMIT $5)`,
    [S.sent, S.skipped, S.superseded, retentionDays, limit],
  );
  return r.rowCount ?? 0;
}

/**
 * Replaces the payloads of the given rows (key rotation re-seals their personal fields, shared/pii
 * rotate.ts; the content is the same once opened). Inside the caller's transaction.
 */
export async function replacePayloads(tx: Pick<Tx, 'query'>, rows: Array<{ outboxId: string; payload: unknown }>): Promise<void> {
  for (const r of rows) await tx.query('UPDATE outbox SET payload = $2::jsonb WHERE outbox_id = $1', [r.outboxId, JSON.stringify(r.payload)]);
}
