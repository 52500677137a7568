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
  payload: unknown;
}

/** One outbox row per enabled destination, in the record's own transaction. */
export async function enqueue(tx: Tx, e: OutboxEntry): Promise<number> {
  const res = await tx.query(
    `INSERT INTO outbox (destination, resource, org_code, record_id, version, op, deadline_class, test_mode, payload)
     SELECT d.name, $1, $2, $3, $4, $5, $6, $7, $8::jsonb FROM uplink_destination d WHERE d.enabled = true`,
    [e.resource, e.orgCode, e.id, e.version, e.op, e.deadline, e.test, JSON.stringify(e.payload)],
  );
  return res.rowCount ?? 0;
}
