/**
 * Holds (docs/faults.md "Hold storage", docs/ingest.md "Who writes what"): why a record is held back
 * from the platforms — waiting for a parent, for a code mapping, or for a corrected version when its
 * mapped codes break a data-set rule — as rows of record_hold (kind,
 * target, value), never as joined text. This module is the only writer of record_hold; ingest,
 * mapping release and the orphan sweep call it. Nothing else follows a change of holds: the HIS's
 * database-sync outcomes (the view staging.sync_result) read a record's holds from record_hold when
 * they are read, in holdsOf's order and holdText's form (infra/db/1010_sync_result_view.sql,
 * docs/dbsync.md "Held records").
 */
import { z } from 'zod';
import type { Tx } from '../db/index.js';
import { chunkRows, keyList, source, type Cols } from '../db/sql.js';

const keyOf = (orgCode: string, id: string) => `${orgCode}\u0000${id}`;

/** The kinds of hold, typed: no bare strings in callers. */
export const HoldKind = z.enum(['parent', 'mapping', 'rule']);
export type HoldKind = z.infer<typeof HoldKind>;

/**
 * Why a record is held back from the platforms: waiting for a parent, for a code mapping, or — once its
 * codes were mapped — breaking a rule of the data set (field and rule; released only by a corrected
 * version, docs/code-mapping.md "Checked again when released"). Stored as rows of record_hold (kind,
 * target, value), never as joined text (docs/faults.md, "Hold storage").
 */
export const HoldSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('parent'), resource: z.string(), id: z.string() }),
  z.object({ kind: z.literal('mapping'), domain: z.string(), code: z.string() }),
  z.object({ kind: z.literal('rule'), field: z.string(), rule: z.string() }),
]);
export type Hold = z.infer<typeof HoldSchema>;

const HoldRowSchema = z.object({ kind: HoldKind, target: z.string(), value: z.string() });

/**
 * How a hold reads in answers and receipts (`parent:emrExLab/L1`, `mapping:sex/M`, `rule:genderCode/idConsistency`): display only, never parsed.
 * The view of database-sync outcomes writes the same text in SQL, in holdsOf's order
 * (infra/db/1010_sync_result_view.sql; test/integration/dbsync-held.test.ts compares the two): a change
 * here is a new migration replacing that view.
 */
export function holdText(h: Hold): string {
  if (h.kind === 'parent') return `parent:${h.resource}/${h.id}`;
  return h.kind === 'mapping' ? `mapping:${h.domain}/${encodeURIComponent(h.code)}` : `rule:${h.field}/${h.rule}`;
}

const holdColumns = (h: Hold): [string, string, string] =>
  h.kind === 'parent' ? ['parent', h.resource, h.id] : h.kind === 'mapping' ? ['mapping', h.domain, h.code] : ['rule', h.field, h.rule];

/** A stable identity of a hold (for sets and counts). */
export const holdKey = (h: Hold) => JSON.stringify(holdColumns(h));

function holdOf(row: unknown): Hold {
  const r = HoldRowSchema.parse(row);
  if (r.kind === 'parent') return { kind: 'parent', resource: r.target, id: r.value };
  return r.kind === 'mapping' ? { kind: 'mapping', domain: r.target, code: r.value } : { kind: 'rule', field: r.target, rule: r.value };
}

const HOLD_COLS: Cols = [
  ['resource', 'varchar'],
  ['org_code', 'varchar'],
  ['record_id', 'varchar'],
  ['kind', 'varchar'],
  ['target', 'varchar'],
  ['value', 'varchar'],
  ['since', 'timestamptz'],
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
    if ('resource' in only || 'domain' in only || 'field' in only) {
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

/** How many records of an org wait for a mapping in a value domain (any resource). */
export async function heldForDomain(db: { query: Tx['query'] }, orgCode: string, domain: string): Promise<number> {
  const r = await db.query<{ n: string }>(
    `SELECT count(*) AS n FROM (SELECT DISTINCT resource, record_id FROM record_hold WHERE kind = $1 AND org_code = $2 AND target = $3) x`,
    [HoldKind.enum.mapping, orgCode, domain],
  );
  return Number(r.rows[0]?.n ?? 0);
}
