/**
 * Holds (docs/faults.md "Hold storage", docs/ingest.md "Who writes what"): why a record is held back
 * from the platforms — waiting for a parent, for a code mapping, or for a corrected version when its
 * mapped codes break a data-set rule — as rows of record_hold (kind,
 * target, value), never as joined text. This module is the only writer of record_hold; ingest,
 * mapping release and the orphan sweep call it. Every change of a record's holds also rewrites the
 * `held` of its database-sync outcome rows (staging.sync_result), in the same transaction: the HIS's
 * database account can read nothing else, and must learn that a record was released or now waits for
 * a corrected version (docs/dbsync.md "Held records").
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

/** How a hold reads in answers and receipts (`parent:emrExLab/L1`, `mapping:sex/M`, `rule:genderCode/idConsistency`): display only, never parsed. */
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
export async function addHolds(
  tx: Tx,
  resource: string,
  holds: Array<{ orgCode: string; id: string; hold: Hold; at: Date }>,
  o: FollowResults = {},
): Promise<void> {
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
  if (o.results !== false)
    await syncResultHeld(
      tx,
      resource,
      holds.map((h): [string, string] => [h.orgCode, h.id]),
    );
}

/** Drops the holds of records, all of them or those of one kind (or one hold). */
export async function dropHolds(
  tx: Tx,
  resource: string,
  keys: Array<[string, string]>,
  only?: { kind: Hold['kind'] } | Hold,
  o: FollowResults = {},
): Promise<void> {
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
  const gone = await tx.query(`DELETE FROM record_hold WHERE resource = $1 AND ${k.sql}${extra}`, params);
  if (gone.rowCount && o.results !== false) await syncResultHeld(tx, resource, keys);
}

/**
 * Whether a change of holds also rewrites the records' database-sync outcome rows (default yes). A
 * record written through the API (port 8881) says `no`: the write path's statements stay what they
 * were (docs/ingest.md), and a record that came by staging has its outcome rows followed when dbsync
 * writes its next version, when it is released and when it is re-held (docs/dbsync.md "Held records").
 */
export interface FollowResults {
  results?: boolean;
}

const RESULT_COLS: Cols = [
  ['org_code', 'varchar'],
  ['record_id', 'varchar'],
  ['held', 'jsonb'],
];

/**
 * The database-sync outcome rows of these records say their holds as they are now (docs/dbsync.md
 * "Held records"): `held` is the record's current reasons, as the API's answer writes them, or NULL
 * once nothing holds it. A refusal's row names no record state and is left as it is; a record that
 * came by the API alone has no rows, and the index by record (infra/db/0995) finds none at once.
 */
async function syncResultHeld(tx: Tx, resource: string, keys: Array<[string, string]>): Promise<void> {
  const unique = [...new Map(keys.map((k) => [keyOf(k[0], k[1]), k])).values()];
  if (unique.length === 0) return;
  const now = await holdsOf(tx, resource, unique);
  const rows = unique.map(([org, id]) => {
    const hs = now.get(keyOf(org, id)) ?? [];
    return [org, id, hs.length ? JSON.stringify(hs.map(holdText)) : null];
  });
  const per = chunkRows(RESULT_COLS.length + 1);
  for (let i = 0; i < rows.length; i += per) {
    const src = source(RESULT_COLS, rows.slice(i, i + per), 1);
    await tx.query(
      `UPDATE staging.sync_result x SET held = s.held FROM (${src.sql}) s
        WHERE x.resource = $1 AND x.org_code = s.org_code AND x.record_id = s.record_id
          AND x.status <> 'rejected' AND x.held IS DISTINCT FROM s.held`,
      [resource, ...src.params],
    );
  }
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
