/**
 * The data layer of the ingest pipeline: SQL for a resource's table, its history and the outbox.
 * Upserts use MERGE (PostgreSQL 15 and openGauss 5.0 both have it; openGauss lacks ON CONFLICT);
 * the key is never updated. Statements are built once per resource from its declaration.
 */
import type { Tx } from '../db/index.js';
import type { Resource } from '../../schemas/resource.js';
import { sqlType } from '../../schemas/ddl.js';

interface Statements {
  lock: string;
  merge: string;
  retire: string;
  columns: string[]; // data set columns in parameter order, then bookkeeping
  keys: string[]; // field keys in the same order as data set columns
}

const cache = new WeakMap<Resource, Statements>();

const BOOK = [
  ['rec_version', 'integer'],
  ['rec_hash', 'char(64)'],
  ['rec_raw', 'jsonb'],
  ['rec_retired', 'boolean'],
  ['rec_test', 'boolean'],
  ['rec_received_at', 'timestamptz'],
  ['rec_updated_at', 'timestamptz'],
  ['rec_lateness_s', 'integer'],
] as const;

function castOf(t: string): string {
  return t.startsWith('varchar') || t.startsWith('char') ? 'varchar' : t.startsWith('numeric') ? 'numeric' : t;
}

export function statements(r: Resource): Statements {
  let s = cache.get(r);
  if (s) return s;
  const keys = Object.keys(r.fields);
  const dataCols = keys.map((k) => [r.fields[k]!.column, sqlType(r.fields[k]!)] as const);
  const all = [...dataCols, ...BOOK];
  const select = all.map(([c, t], i) => `$${i + 1}::${castOf(t)} AS ${c}`).join(', ');
  const updatable = all.filter(([c]) => c !== 'org_code' && c !== 'id' && c !== 'rec_received_at');
  s = {
    keys,
    columns: all.map(([c]) => c),
    lock: `SELECT rec_version, rec_hash, rec_retired FROM ${r.table} WHERE org_code = $1 AND id = $2 FOR UPDATE`,
    merge:
      `MERGE INTO ${r.table} t USING (SELECT ${select}) s ON (t.org_code = s.org_code AND t.id = s.id) ` +
      `WHEN MATCHED THEN UPDATE SET ${updatable.map(([c]) => `${c} = s.${c}`).join(', ')} ` +
      `WHEN NOT MATCHED THEN INSERT (${all.map(([c]) => c).join(', ')}) VALUES (${all.map(([c]) => `s.${c}`).join(', ')})`,
    retire: `UPDATE ${r.table} SET rec_retired = true, rec_version = $3, rec_hash = $4, rec_updated_at = $5 WHERE org_code = $1 AND id = $2`,
  };
  cache.set(r, s);
  return s;
}

export interface Current {
  version: number;
  hash: string;
  retired: boolean;
}

export async function lockCurrent(tx: Tx, r: Resource, orgCode: string, id: string): Promise<Current | null> {
  const res = await tx.query<{ rec_version: number; rec_hash: string; rec_retired: boolean }>({ name: `lock_${r.table}`, text: statements(r).lock, values: [orgCode, id] });
  const row = res.rows[0];
  return row ? { version: row.rec_version, hash: row.rec_hash.trim(), retired: row.rec_retired } : null;
}

export interface Bookkeeping {
  version: number;
  hash: string;
  raw: unknown;
  retired: boolean;
  test: boolean;
  receivedAt: Date;
  latenessS: number | null;
}

export async function writeRecord(tx: Tx, r: Resource, record: Record<string, unknown>, b: Bookkeeping): Promise<void> {
  const st = statements(r);
  const params: unknown[] = st.keys.map((k) => record[k] ?? null);
  params.push(b.version, b.hash, JSON.stringify(b.raw), b.retired, b.test, b.receivedAt, b.receivedAt, b.latenessS);
  await tx.query({ name: `merge_${r.table}`, text: st.merge, values: params });
}

export async function retire(tx: Tx, r: Resource, orgCode: string, id: string, version: number, hash: string, at: Date): Promise<void> {
  await tx.query(statements(r).retire, [orgCode, id, version, hash, at]);
}

export interface HistoryEntry {
  resource: string;
  orgCode: string;
  id: string;
  version: number;
  op: 'upsert' | 'retire';
  hash: string;
  raw: unknown;
  callId: string | null;
  at: Date;
}

export async function appendHistory(tx: Tx, h: HistoryEntry): Promise<void> {
  await tx.query(
    `INSERT INTO record_history (resource, org_code, record_id, version, op, rec_hash, raw, call_id, received_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)`,
    [h.resource, h.orgCode, h.id, h.version, h.op, h.hash, JSON.stringify(h.raw), h.callId, h.at],
  );
}

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

/**
 * One outbox row per enabled destination, in the record's own transaction. Test-mode records go
 * only to destinations that accept them (an acceptance simulator), never to a live platform.
 */
export async function enqueue(tx: Tx, e: OutboxEntry): Promise<number> {
  const res = await tx.query({
    name: 'outbox_enqueue',
    text: `INSERT INTO outbox (destination, resource, org_code, record_id, version, op, deadline_class, test_mode, payload, state)
     SELECT d.name, $1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9 FROM uplink_destination d
      WHERE d.enabled = true AND (d.accepts_test = true OR $7 = false)`,
    values: [e.resource, e.orgCode, e.id, e.version, e.op, e.deadline, e.test, JSON.stringify(e.payload), e.held ? 'held' : 'pending'],
  });
  return res.rowCount ?? 0;
}

// ---- receipts, holds, rejections (0005_ingest_state.sql) ----------------------------------------

export interface ReceiptRow {
  resource: string;
  orgCode: string;
  id: string;
  version: number;
  state: 'stored' | 'held' | 'retired';
  retired: boolean;
  holdReasons: string[];
  flags: string[];
  businessAt: Date | null;
  businessDay: string | null;
  test: boolean;
  at: Date;
}

const RECEIPT_MERGE =
  `MERGE INTO record_receipt t USING (SELECT $1::varchar AS resource, $2::varchar AS org_code, $3::varchar AS record_id,
     $4::integer AS version, $5::varchar AS state, $6::boolean AS retired, $7::varchar AS hold_reasons, $8::varchar AS flags,
     $9::timestamptz AS business_at, $10::varchar AS business_day, $11::boolean AS test_mode, $12::timestamptz AS at) s
   ON (t.resource = s.resource AND t.org_code = s.org_code AND t.record_id = s.record_id)
   WHEN MATCHED THEN UPDATE SET version = s.version, state = s.state, retired = s.retired, hold_reasons = s.hold_reasons,
     flags = s.flags, business_at = s.business_at, business_day = s.business_day, test_mode = s.test_mode, updated_at = s.at
   WHEN NOT MATCHED THEN INSERT (resource, org_code, record_id, version, state, retired, hold_reasons, flags, business_at,
     business_day, test_mode, received_at, updated_at)
     VALUES (s.resource, s.org_code, s.record_id, s.version, s.state, s.retired, s.hold_reasons, s.flags, s.business_at,
     s.business_day, s.test_mode, s.at, s.at)`;

const joinList = (xs: string[]) => (xs.length ? xs.join(' ').slice(0, 500) : null);

export async function writeReceipt(tx: Tx, r: ReceiptRow): Promise<void> {
  await tx.query({
    name: 'receipt_merge',
    text: RECEIPT_MERGE,
    values: [r.resource, r.orgCode, r.id, r.version, r.state, r.retired, joinList(r.holdReasons), joinList(r.flags), r.businessAt, r.businessDay, r.test, r.at],
  });
}

/** Which of the record's parents are not (yet) stored. */
export async function missingParents(
  tx: Tx,
  orgCode: string,
  refs: Array<{ resource: string; table: string; id: string }>,
): Promise<Array<{ resource: string; id: string }>> {
  if (refs.length === 0) return [];
  const parts = refs.map((p, i) => `SELECT ${i} AS i FROM ${p.table} WHERE org_code = $1 AND id = $${i + 2}`);
  const res = await tx.query<{ i: number }>(parts.join(' UNION ALL '), [orgCode, ...refs.map((p) => p.id)]);
  const found = new Set(res.rows.map((x) => Number(x.i)));
  return refs.filter((_, i) => !found.has(i)).map(({ resource, id }) => ({ resource, id }));
}

export async function replaceWaits(
  tx: Tx,
  child: { resource: string; orgCode: string; id: string },
  missing: Array<{ resource: string; id: string }>,
  existed: boolean,
  at: Date,
): Promise<void> {
  if (existed) {
    await tx.query('DELETE FROM record_parent_wait WHERE resource = $1 AND org_code = $2 AND record_id = $3', [child.resource, child.orgCode, child.id]);
  }
  for (const m of missing) {
    await tx.query(
      `INSERT INTO record_parent_wait (resource, org_code, record_id, parent_resource, parent_id, since) VALUES ($1, $2, $3, $4, $5, $6)`,
      [child.resource, child.orgCode, child.id, m.resource, m.id, at],
    );
  }
}

/**
 * A parent arrived: its waiting children lose that hold. A child with no hold left is released:
 * its held outbox rows are enqueued again behind the parent's own (new ids), so every platform
 * receives the parent before the child, and the child's versions stay in order.
 */
export async function releaseChildren(tx: Tx, parentResource: string, orgCode: string, parentId: string): Promise<number> {
  const waiting = await tx.query<{ resource: string; record_id: string }>(
    'DELETE FROM record_parent_wait WHERE parent_resource = $1 AND org_code = $2 AND parent_id = $3 RETURNING resource, record_id',
    [parentResource, orgCode, parentId],
  );
  let released = 0;
  for (const w of waiting.rows) {
    const left = await tx.query('SELECT 1 FROM record_parent_wait WHERE resource = $1 AND org_code = $2 AND record_id = $3', [w.resource, orgCode, w.record_id]);
    const rc = await tx.query<{ hold_reasons: string | null; retired: boolean }>(
      'SELECT hold_reasons, retired FROM record_receipt WHERE resource = $1 AND org_code = $2 AND record_id = $3 FOR UPDATE',
      [w.resource, orgCode, w.record_id],
    );
    const receipt = rc.rows[0];
    if (!receipt) continue;
    const reasons = (receipt.hold_reasons ?? '')
      .split(' ')
      .filter(Boolean)
      .filter((t) => !t.startsWith('parent:') || (left.rowCount !== 0 && t !== `parent:${parentResource}/${parentId}`));
    const stillHeld = left.rowCount !== 0 || reasons.length > 0;
    await tx.query('UPDATE record_receipt SET hold_reasons = $4, state = $5 WHERE resource = $1 AND org_code = $2 AND record_id = $3', [
      w.resource,
      orgCode,
      w.record_id,
      joinList(reasons),
      stillHeld ? 'held' : receipt.retired ? 'retired' : 'stored',
    ]);
    if (!stillHeld) {
      released += await releaseOutbox(tx, w.resource, orgCode, w.record_id);
    }
  }
  return released;
}

/** Moves a record's held outbox rows to the back of the queue as pending. */
export async function releaseOutbox(tx: Tx, resource: string, orgCode: string, id: string): Promise<number> {
  const moved = await tx.query(
    `INSERT INTO outbox (destination, resource, org_code, record_id, version, op, deadline_class, test_mode, payload, created_at)
     SELECT destination, resource, org_code, record_id, version, op, deadline_class, test_mode, payload, created_at
       FROM outbox WHERE resource = $1 AND org_code = $2 AND record_id = $3 AND state = 'held' ORDER BY outbox_id`,
    [resource, orgCode, id],
  );
  await tx.query(`DELETE FROM outbox WHERE resource = $1 AND org_code = $2 AND record_id = $3 AND state = 'held'`, [resource, orgCode, id]);
  return moved.rowCount ?? 0;
}

export async function recordRejection(
  db: { query: Tx['query'] },
  e: { resource: string; orgCode: string | null; id: string | null; callId: string | null; caller: string | null; issues: unknown; test: boolean },
): Promise<void> {
  await db.query(
    `INSERT INTO ingest_rejection (resource, org_code, record_id, call_id, caller, issues, test_mode) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)`,
    [e.resource, e.orgCode?.slice(0, 50) ?? null, e.id?.slice(0, 80) ?? null, e.callId, e.caller, JSON.stringify(e.issues), e.test],
  );
}
