/**
 * The data layer of the ingest pipeline: SQL for a resource's table, its history and the outbox.
 * Upserts use MERGE (PostgreSQL 15 and openGauss 5.0 both have it; openGauss lacks ON CONFLICT);
 * the key is never updated. Statements are built once per resource from its declaration.
 */
import type { Tx } from '../db/index.js';
import type pg from 'pg';
import { z } from 'zod';
import type { Resource } from '../../schemas/resource.js';
import { sqlType } from '../../schemas/ddl.js';

/** Columns of a statement source: [column, SQL type]. */
type Cols = ReadonlyArray<readonly [string, string]>;

function castOf(t: string): string {
  return t.startsWith('varchar') || t.startsWith('char') ? 'varchar' : t.startsWith('numeric') ? 'numeric' : t;
}

/**
 * A multi-row statement source: `SELECT * FROM (VALUES ($1::t, …), …) AS v(c, …)` — accepted by both
 * dialects as a MERGE or INSERT … SELECT source, and cheap to plan (a UNION ALL of single-row
 * SELECTs costs seconds to plan at a few hundred rows). Every placeholder is typed.
 */
function source(cols: Cols, rows: unknown[][], offset = 0): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  const tuples = rows.map((row, ri) => {
    const parts = cols.map(([, t], ci) => {
      params.push(row[ci]);
      return `$${offset + ri * cols.length + ci + 1}::${castOf(t)}`;
    });
    return `(${parts.join(', ')})`;
  });
  return { sql: `SELECT * FROM (VALUES ${tuples.join(', ')}) AS v(${cols.map(([c]) => c).join(', ')})`, params };
}

/** `(org_code, id) IN (($1, $2), …)` for a list of keys. */
function keyList(cols: [string, string], keys: Array<[string, string]>, offset = 0): { sql: string; params: unknown[] } {
  const params = keys.flat();
  const tuples = keys.map((_, i) => `($${offset + 2 * i + 1}, $${offset + 2 * i + 2})`);
  return { sql: `(${cols[0]}, ${cols[1]}) IN (${tuples.join(', ')})`, params };
}

/**
 * Runs a statement, as a named (prepared, planned once per connection) statement when it has the
 * shape of the single-record path — the hot path — and unnamed otherwise (batch shapes vary).
 */
function exec<R extends pg.QueryResultRow = pg.QueryResultRow>(tx: Tx, text: string, values: unknown[], single: string | false): Promise<pg.QueryResult<R>> {
  return single ? tx.query<R>({ name: single, text, values }) : tx.query<R>(text, values);
}

/** Rows per statement, so that no statement needs more than 60 000 parameters (the protocol allows 65 535). */
export function chunkRows(columns: number): number {
  return Math.max(1, Math.floor(60_000 / columns));
}

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

interface Shape {
  keys: string[];
  cols: Cols;
  updatable: string[];
}

const shapes = new WeakMap<Resource, Shape>();

export function shapeOf(r: Resource): Shape {
  let s = shapes.get(r);
  if (!s) {
    const keys = Object.keys(r.fields);
    const cols: Cols = [...keys.map((k) => [r.fields[k]!.column, sqlType(r.fields[k]!)] as const), ...BOOK];
    s = { keys, cols, updatable: cols.map(([c]) => c).filter((c) => c !== 'org_code' && c !== 'id' && c !== 'rec_received_at') };
    shapes.set(r, s);
  }
  return s;
}

export interface Current {
  version: number;
  hash: string;
  retired: boolean;
}

export const keyOf = (orgCode: string, id: string) => `${orgCode}\u0000${id}`;

/** Locks the current rows of the given keys (FOR UPDATE); absent keys are new records. */
export async function lockMany(tx: Tx, r: Resource, keys: Array<[string, string]>): Promise<Map<string, Current>> {
  const out = new Map<string, Current>();
  if (keys.length === 0) return out;
  const k = keyList(['org_code', 'id'], keys);
  const res = await exec<{ org_code: string; id: string; rec_version: number; rec_hash: string; rec_retired: boolean }>(
    tx,
    `SELECT org_code, id, rec_version, rec_hash, rec_retired FROM ${r.table} WHERE ${k.sql} FOR UPDATE`,
    k.params,
    keys.length === 1 && `lock1_${r.table}`,
  );
  for (const row of res.rows) out.set(keyOf(row.org_code, row.id), { version: row.rec_version, hash: row.rec_hash.trim(), retired: row.rec_retired });
  return out;
}

export async function lockCurrent(tx: Tx, r: Resource, orgCode: string, id: string): Promise<Current | null> {
  return (await lockMany(tx, r, [[orgCode, id]])).get(keyOf(orgCode, id)) ?? null;
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

/** Inserts or updates typed rows with one MERGE per chunk; the key is never updated. */
export async function writeRecords(tx: Tx, r: Resource, items: Array<{ record: Record<string, unknown>; b: Bookkeeping }>): Promise<void> {
  const sh = shapeOf(r);
  const per = chunkRows(sh.cols.length);
  for (let i = 0; i < items.length; i += per) {
    const rows = items.slice(i, i + per).map(({ record, b }) => [
      ...sh.keys.map((k) => record[k] ?? null),
      b.version, b.hash, JSON.stringify(b.raw), b.retired, b.test, b.receivedAt, b.receivedAt, b.latenessS,
    ]);
    const src = source(sh.cols, rows);
    const all = sh.cols.map(([c]) => c);
    await exec(
      tx,
      `MERGE INTO ${r.table} t USING (${src.sql}) s ON (t.org_code = s.org_code AND t.id = s.id) ` +
        `WHEN MATCHED THEN UPDATE SET ${sh.updatable.map((c) => `${c} = s.${c}`).join(', ')} ` +
        `WHEN NOT MATCHED THEN INSERT (${all.join(', ')}) VALUES (${all.map((c) => `s.${c}`).join(', ')})`,
      src.params,
      rows.length === 1 && `merge1_${r.table}`,
    );
  }
}

export async function retire(tx: Tx, r: Resource, orgCode: string, id: string, version: number, hash: string, at: Date): Promise<void> {
  await tx.query(
    `UPDATE ${r.table} SET rec_retired = true, rec_version = $3, rec_hash = $4, rec_updated_at = $5 WHERE org_code = $1 AND id = $2`,
    [orgCode, id, version, hash, at],
  );
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

const HISTORY_COLS: Cols = [
  ['resource', 'varchar'], ['org_code', 'varchar'], ['record_id', 'varchar'], ['version', 'integer'], ['op', 'varchar'],
  ['rec_hash', 'varchar'], ['raw', 'jsonb'], ['call_id', 'varchar'], ['received_at', 'timestamptz'],
];

export async function appendHistory(tx: Tx, entries: HistoryEntry[]): Promise<void> {
  const per = chunkRows(HISTORY_COLS.length);
  for (let i = 0; i < entries.length; i += per) {
    const src = source(
      HISTORY_COLS,
      entries.slice(i, i + per).map((h) => [h.resource, h.orgCode, h.id, h.version, h.op, h.hash, JSON.stringify(h.raw), h.callId, h.at]),
    );
    await exec(tx, `INSERT INTO record_history (${HISTORY_COLS.map(([c]) => c).join(', ')}) ${src.sql}`, src.params, src.params.length === HISTORY_COLS.length && 'history1');
  }
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

const OUTBOX_COLS: Cols = [
  ['resource', 'varchar'], ['org_code', 'varchar'], ['record_id', 'varchar'], ['version', 'integer'], ['op', 'varchar'],
  ['deadline_class', 'varchar'], ['test_mode', 'boolean'], ['payload', 'jsonb'], ['state', 'varchar'], ['seq', 'integer'],
];

/**
 * One outbox row per enabled destination that takes the resource (a provincial platform may take a
 * subset), in the records' own transaction, in the order given (outbox ids follow it, so a
 * platform receives records in that order). Test-mode records go only to destinations that accept
 * them (an acceptance simulator), never to a live platform.
 */
export async function enqueue(tx: Tx, entries: OutboxEntry[]): Promise<number> {
  let n = 0;
  const per = chunkRows(OUTBOX_COLS.length);
  for (let i = 0; i < entries.length; i += per) {
    const src = source(
      OUTBOX_COLS,
      entries.slice(i, i + per).map((e, j) => [e.resource, e.orgCode, e.id, e.version, e.op, e.deadline, e.test, JSON.stringify(e.payload), e.held ? 'held' : 'pending', i + j]),
    );
    const res = await exec(
      tx,
      `INSERT INTO outbox (destination, resource, org_code, record_id, version, op, deadline_class, test_mode, payload, state)
       SELECT d.name, s.resource, s.org_code, s.record_id, s.version, s.op, s.deadline_class, s.test_mode, s.payload, s.state
         FROM (${src.sql}) s, uplink_destination d
        WHERE d.enabled = true AND (d.accepts_test = true OR s.test_mode = false)
          AND (d.resources IS NULL OR (' ' || d.resources || ' ') LIKE ('% ' || s.resource || ' %'))
        ORDER BY s.seq, d.name`,
      src.params,
      src.params.length === OUTBOX_COLS.length && 'outbox1',
    );
    n += res.rowCount ?? 0;
  }
  return n;
}

// ---- receipts, holds, rejections (0005_ingest_state.sql, 0009_record_hold.sql) ------------------

/**
 * Why a record is held back from the platforms: waiting for a parent, or for a code mapping. Stored
 * as rows of record_hold (kind, target, value), never as joined text (docs/faults.md, "Hold storage").
 */
export const HoldSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('parent'), resource: z.string(), id: z.string() }),
  z.object({ kind: z.literal('mapping'), domain: z.string(), code: z.string() }),
]);
export type Hold = z.infer<typeof HoldSchema>;

const HoldRowSchema = z.object({ kind: z.enum(['parent', 'mapping']), target: z.string(), value: z.string() });

/** How a hold reads in answers and receipts (`parent:emrExLab/L1`, `mapping:sex/M`): display only, never parsed. */
export function holdText(h: Hold): string {
  return h.kind === 'parent' ? `parent:${h.resource}/${h.id}` : `mapping:${h.domain}/${encodeURIComponent(h.code)}`;
}

const holdColumns = (h: Hold): [string, string, string] => (h.kind === 'parent' ? ['parent', h.resource, h.id] : ['mapping', h.domain, h.code]);

/** A stable identity of a hold (for sets and counts). */
export const holdKey = (h: Hold) => JSON.stringify(holdColumns(h));

function holdOf(row: unknown): Hold {
  const r = HoldRowSchema.parse(row);
  return r.kind === 'parent' ? { kind: 'parent', resource: r.target, id: r.value } : { kind: 'mapping', domain: r.target, code: r.value };
}

export interface ReceiptRow {
  resource: string;
  orgCode: string;
  id: string;
  version: number;
  state: 'stored' | 'held' | 'retired';
  retired: boolean;
  holds: Hold[];
  flags: string[];
  businessAt: Date | null;
  businessDay: string | null;
  test: boolean;
  at: Date;
}

const RECEIPT_COLS: Cols = [
  ['resource', 'varchar'], ['org_code', 'varchar'], ['record_id', 'varchar'], ['version', 'integer'], ['state', 'varchar'],
  ['retired', 'boolean'], ['flags', 'varchar'], ['business_at', 'timestamptz'],
  ['business_day', 'varchar'], ['test_mode', 'boolean'], ['at', 'timestamptz'],
];

const joinList = (xs: string[]) => (xs.length ? xs.join(' ').slice(0, 500) : null);

/** Writes the receipts and replaces the holds of those records with the ones given. */
export async function writeReceipts(tx: Tx, receipts: ReceiptRow[]): Promise<void> {
  const per = chunkRows(RECEIPT_COLS.length);
  for (let i = 0; i < receipts.length; i += per) {
    const src = source(
      RECEIPT_COLS,
      receipts.slice(i, i + per).map((r) => [r.resource, r.orgCode, r.id, r.version, r.state, r.retired, joinList(r.flags), r.businessAt, r.businessDay, r.test, r.at]),
    );
    await exec(
      tx,
      `MERGE INTO record_receipt t USING (${src.sql}) s
         ON (t.resource = s.resource AND t.org_code = s.org_code AND t.record_id = s.record_id)
       WHEN MATCHED THEN UPDATE SET version = s.version, state = s.state, retired = s.retired,
         flags = s.flags, business_at = s.business_at, business_day = s.business_day, test_mode = s.test_mode, updated_at = s.at
       WHEN NOT MATCHED THEN INSERT (resource, org_code, record_id, version, state, retired, flags, business_at,
         business_day, test_mode, received_at, updated_at)
         VALUES (s.resource, s.org_code, s.record_id, s.version, s.state, s.retired, s.flags, s.business_at,
         s.business_day, s.test_mode, s.at, s.at)`,
      src.params,
      src.params.length === RECEIPT_COLS.length && 'receipt1',
    );
  }
  const byResource = new Map<string, ReceiptRow[]>();
  for (const r of receipts) byResource.set(r.resource, [...(byResource.get(r.resource) ?? []), r]);
  for (const [resource, rs] of byResource) {
    await dropHolds(tx, resource, rs.map((r): [string, string] => [r.orgCode, r.id]));
    await addHolds(tx, resource, rs.flatMap((r) => r.holds.map((hold) => ({ orgCode: r.orgCode, id: r.id, hold, at: r.at }))));
  }
}

const HOLD_COLS: Cols = [
  ['resource', 'varchar'], ['org_code', 'varchar'], ['record_id', 'varchar'], ['kind', 'varchar'], ['target', 'varchar'], ['value', 'varchar'], ['since', 'timestamptz'],
];

/** Adds holds to records (a hold a record already has is not added twice). */
export async function addHolds(tx: Tx, resource: string, holds: Array<{ orgCode: string; id: string; hold: Hold; at: Date }>): Promise<void> {
  const seen = new Set<string>();
  const rows: unknown[][] = [];
  for (const h of holds) {
    const k = `${keyOf(h.orgCode, h.id)}\u0000${holdKey(h.hold)}`;
    if (seen.has(k)) continue;
    seen.add(k);
    rows.push([resource, h.orgCode, h.id, ...holdColumns(h.hold), h.at]);
  }
  const per = chunkRows(HOLD_COLS.length);
  for (let i = 0; i < rows.length; i += per) {
    const src = source(HOLD_COLS, rows.slice(i, i + per));
    await tx.query(
      `INSERT INTO record_hold (${HOLD_COLS.map(([c]) => c).join(', ')}) SELECT s.* FROM (${src.sql}) s
        WHERE NOT EXISTS (SELECT 1 FROM record_hold h WHERE h.resource = s.resource AND h.org_code = s.org_code
          AND h.record_id = s.record_id AND h.kind = s.kind AND h.target = s.target AND h.value = s.value)`,
      src.params,
    );
  }
}

/** Drops the holds of records, all of them or those of one kind (or one hold). */
export async function dropHolds(tx: Tx, resource: string, keys: Array<[string, string]>, only?: { kind: Hold['kind'] } | Hold): Promise<void> {
  if (keys.length === 0) return;
  const k = keyList(['org_code', 'record_id'], keys, 1);
  const params: unknown[] = [resource, ...k.params];
  let extra = '';
  if (only) {
    params.push(only.kind);
    extra = ` AND kind = $${params.length}`;
    if ('resource' in only || 'domain' in only) {
      const [, target, value] = holdColumns(only as Hold);
      params.push(target, value);
      extra += ` AND target = $${params.length - 1} AND value = $${params.length}`;
    }
  }
  await tx.query(`DELETE FROM record_hold WHERE resource = $1 AND ${k.sql}${extra}`, params);
}

/** The current holds of records (by key). */
export async function holdsOf(tx: { query: Tx['query'] }, resource: string, keys: Array<[string, string]>): Promise<Map<string, Hold[]>> {
  const out = new Map<string, Hold[]>();
  if (keys.length === 0) return out;
  const k = keyList(['org_code', 'record_id'], keys, 1);
  const res = await tx.query<{ org_code: string; record_id: string; kind: string; target: string; value: string }>(
    `SELECT org_code, record_id, kind, target, value FROM record_hold WHERE resource = $1 AND ${k.sql} ORDER BY since, kind, target, value`,
    [resource, ...k.params],
  );
  for (const x of res.rows) {
    const key = keyOf(x.org_code, x.record_id);
    out.set(key, [...(out.get(key) ?? []), holdOf(x)]);
  }
  return out;
}

/** The holds of one record. */
export async function recordHolds(tx: Tx, resource: string, orgCode: string, id: string): Promise<Hold[]> {
  return (await holdsOf(tx, resource, [[orgCode, id]])).get(keyOf(orgCode, id)) ?? [];
}

/**
 * Which of the referenced parents are ready: stored and not themselves held (a parent waiting for
 * its own parent or a mapping has not left yet, so neither may its children). One query per parent
 * resource.
 */
export async function existingParents(tx: Tx, parentResource: string, table: string, keys: Array<[string, string]>): Promise<Set<string>> {
  const found = new Set<string>();
  if (keys.length === 0) return found;
  const k = keyList(['p.org_code', 'p.id'], keys, 1);
  const res = await exec<{ org_code: string; id: string }>(
    tx,
    `SELECT p.org_code, p.id FROM ${table} p
       LEFT JOIN record_receipt r ON r.resource = $1 AND r.org_code = p.org_code AND r.record_id = p.id
      WHERE ${k.sql} AND (r.state IS NULL OR r.state <> 'held')`,
    [parentResource, ...k.params],
    keys.length === 1 && `parent1_${table}`,
  );
  for (const row of res.rows) found.add(keyOf(row.org_code, row.id));
  return found;
}

export interface Wait {
  resource: string;
  orgCode: string;
  id: string;
  parentResource: string;
  parentId: string;
}

/** Drops the waits of records being rewritten, then records the waits they have now. */
export async function replaceWaits(tx: Tx, resource: string, rewritten: Array<[string, string]>, waits: Wait[], at: Date): Promise<void> {
  if (rewritten.length) {
    const k = keyList(['org_code', 'record_id'], rewritten, 1);
    await tx.query(`DELETE FROM record_parent_wait WHERE resource = $1 AND ${k.sql}`, [resource, ...k.params]);
  }
  if (waits.length) {
    const cols: Cols = [['resource', 'varchar'], ['org_code', 'varchar'], ['record_id', 'varchar'], ['parent_resource', 'varchar'], ['parent_id', 'varchar'], ['since', 'timestamptz']];
    const src = source(cols, waits.map((w) => [w.resource, w.orgCode, w.id, w.parentResource, w.parentId, at]));
    await tx.query(`INSERT INTO record_parent_wait (${cols.map(([c]) => c).join(', ')}) ${src.sql}`, src.params);
  }
}

/**
 * A parent arrived: its waiting children lose that hold. A child with no hold left is released:
 * its held outbox rows are enqueued again behind the parent's own (new ids), so every platform
 * receives the parent before the child, and the child's versions stay in order.
 */
export async function releaseChildren(
  tx: Tx,
  parentResource: string,
  parents: Array<[string, string]>,
  /** Whether a resource has children of its own: a released child releases its waiting children. */
  hasChildren: (resource: string) => boolean = () => false,
  depth = 0,
): Promise<number> {
  if (parents.length === 0 || depth > 4) return 0;
  const k = keyList(['org_code', 'parent_id'], parents, 1);
  const waiting = await tx.query<{ resource: string; org_code: string; record_id: string; parent_id: string }>(
    `DELETE FROM record_parent_wait WHERE parent_resource = $1 AND ${k.sql} RETURNING resource, org_code, record_id, parent_id`,
    [parentResource, ...k.params],
  );
  let released = 0;
  for (const w of waiting.rows) {
    const orgCode = w.org_code;
    const left = await tx.query('SELECT 1 FROM record_parent_wait WHERE resource = $1 AND org_code = $2 AND record_id = $3', [w.resource, orgCode, w.record_id]);
    const rc = await tx.query<{ retired: boolean }>(
      'SELECT retired FROM record_receipt WHERE resource = $1 AND org_code = $2 AND record_id = $3 FOR UPDATE',
      [w.resource, orgCode, w.record_id],
    );
    const receipt = rc.rows[0];
    if (!receipt) continue;
    // With no wait left, no parent hold is left either; else only this parent's hold goes.
    await dropHolds(tx, w.resource, [[orgCode, w.record_id]], left.rowCount === 0 ? { kind: 'parent' } : { kind: 'parent', resource: parentResource, id: w.parent_id });
    const stillHeld = left.rowCount !== 0 || (await recordHolds(tx, w.resource, orgCode, w.record_id)).length > 0;
    await tx.query('UPDATE record_receipt SET state = $4 WHERE resource = $1 AND org_code = $2 AND record_id = $3', [
      w.resource,
      orgCode,
      w.record_id,
      stillHeld ? 'held' : receipt.retired ? 'retired' : 'stored',
    ]);
    if (!stillHeld) {
      released += await releaseOutbox(tx, w.resource, orgCode, w.record_id);
      // Behind it now: its own children that waited for it (a lab item for its lab report).
      if (hasChildren(w.resource)) released += await releaseChildren(tx, w.resource, [[orgCode, w.record_id]], hasChildren, depth + 1);
    }
  }
  return released;
}

/**
 * A new version that is not held replaces versions still held (for a code since corrected, say):
 * those are never sent — the platform receives the record's current state instead.
 */
export async function supersedeHeld(tx: Tx, resource: string, keys: Array<[string, string]>): Promise<void> {
  if (keys.length === 0) return;
  const k = keyList(['org_code', 'record_id'], keys, 1);
  await tx.query(`UPDATE outbox SET state = 'superseded' WHERE resource = $1 AND ${k.sql} AND state = 'held'`, [resource, ...k.params]);
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

export interface Rejection {
  resource: string;
  orgCode: string | null;
  id: string | null;
  callId: string | null;
  caller: string | null;
  issues: unknown;
  test: boolean;
}

export async function recordRejections(db: { query: Tx['query'] }, list: Rejection[]): Promise<void> {
  if (list.length === 0) return;
  const cols: Cols = [['resource', 'varchar'], ['org_code', 'varchar'], ['record_id', 'varchar'], ['call_id', 'varchar'], ['caller', 'varchar'], ['issues', 'jsonb'], ['test_mode', 'boolean']];
  const src = source(cols, list.map((e) => [e.resource, e.orgCode?.slice(0, 50) ?? null, e.id?.slice(0, 80) ?? null, e.callId, e.caller, JSON.stringify(e.issues), e.test]));
  await db.query(`INSERT INTO ingest_rejection (${cols.map(([c]) => c).join(', ')}) ${src.sql}`, src.params);
}
