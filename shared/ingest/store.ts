/**
 * The data layer of the ingest pipeline: SQL for a resource's table, its history and the outbox.
 * No ON CONFLICT (openGauss 5.0 lacks it): a record's typed row is INSERTed or UPDATEd in the
 * composed write, which knows which from the row lock taken before it; the key is never updated.
 * Statements are built once per resource from its declaration.
 */
import { createHash } from 'node:crypto';
import { together, type Tx } from '../db/index.js';
import { chunkRows, exec, keyList, source, statementName, type Cols, type Given, type WritePart } from '../db/sql.js';
import { addHolds, dropHolds, recordHolds, type Hold } from '../holds/index.js';
import { releaseHeld } from '../outbox/index.js';
export { HoldSchema, holdText, holdKey, holdsOf, recordHolds, type Hold } from '../holds/index.js';
import type { Resource } from '../../schemas/resource.js';
import { HMAC_TYPE, hmacColumnsOf, sqlType } from '../../schemas/ddl.js';

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
  /** The HMAC columns of the hashed fields (shared/pii), written from each record's hashes. */
  hmacs: string[];
  cols: Cols;
  /** recordsPart's INSERT of new rows and UPDATE of stored ones, from their WITH sources. */
  insert: string;
  update: string;
}

const shapes = new WeakMap<Resource, Shape>();

export function shapeOf(r: Resource): Shape {
  let s = shapes.get(r);
  if (!s) {
    const keys = Object.keys(r.fields);
    const hmacs = hmacColumnsOf(r);
    const cols: Cols = [...keys.map((k) => [r.fields[k]!.column, sqlType(r.fields[k]!)] as const), ...hmacs.map((c) => [c, HMAC_TYPE] as const), ...BOOK];
    const all = cols.map(([c]) => c);
    const updatable = all.filter((c) => c !== 'org_code' && c !== 'id' && c !== 'rec_received_at');
    s = {
      keys,
      hmacs,
      cols,
      insert: `INSERT INTO ${r.table} (${all.join(', ')}) SELECT ${all.map((c) => `s.${c}`).join(', ')} FROM rec_new_src s RETURNING 1`,
      update: `UPDATE ${r.table} t SET ${updatable.map((c) => `${c} = s.${c}`).join(', ')} FROM rec_old_src s WHERE t.org_code = s.org_code AND t.id = s.id RETURNING 1`,
    };
    shapes.set(r, s);
  }
  return s;
}

export interface Current {
  version: number;
  hash: string;
  retired: boolean;
  /**
   * False only when the receipt of this very version says it is stored or retired: then the record
   * has no holds and no parent waits (both are written with the receipt, docs/ingest.md "Who writes
   * what"), and rewriting it need not look for them. The receipt is read in the row lock's statement
   * but not locked: a version committed while the lock was awaited is seen in the row and not in the
   * receipt, and the versions differing keeps this true.
   */
  mayBeHeld: boolean;
}

export const keyOf = (orgCode: string, id: string) => `${orgCode}\u0000${id}`;

/**
 * Up to this many keys (a group commit's few records) are looked up one statement each, all sent
 * together in one round trip: each an equality on the whole primary key, a prepared statement that
 * every plan serves with one index probe. More keys (a batch) go in one statement (`keyList`),
 * planned for its own values at each execution — prepared once with an array of unknown length, its
 * generic plan scanned a whole org's rows whenever the statistics thought the org small
 * (docs/opengauss.md "Key lists").
 */
const KEYWISE = 8;

/**
 * Keys in one order for every group, so two groups locking rows one key at a time never deadlock
 * each other. A batch locks in its index's order, which under a collation other than C may differ:
 * a deadlock between a group and a batch sharing keys is detected by the server and retried (withTx).
 */
const keyOrder = ([a, b]: [string, string], [c, d]: [string, string]): number => (a < c ? -1 : a > c ? 1 : b < d ? -1 : b > d ? 1 : 0);

/** The keys without repeats (several children of one parent name it once each). */
const distinct = (keys: Array<[string, string]>): Array<[string, string]> =>
  keys.length < 2 ? keys : [...new Map(keys.map((k) => [keyOf(...k), k])).values()];

/**
 * The rows a look-up by key finds (docs/opengauss.md "Key lists"), each distinct key asked once:
 * `ask` of one key, or of all of them (a batch), or — for 2 to KEYWISE keys — of each key alone, all
 * sent together in key order.
 */
async function byKeys<T>(tx: Tx, given: Array<[string, string]>, ask: (keys: Array<[string, string]>) => Promise<T[]>): Promise<T[]> {
  const keys = distinct(given);
  if (keys.length === 0) return [];
  if (keys.length === 1 || keys.length > KEYWISE) return ask(keys);
  const parts = await together(
    tx,
    [...keys].sort(keyOrder).map((k) => () => ask([k])),
  );
  return parts.flat();
}

/**
 * Locks the current rows of the given keys (FOR UPDATE); absent keys are new records. Each comes
 * with its receipt's state and version, read in the same statement but not locked (what that read
 * may miss, and why it is safe: Current.mayBeHeld).
 */
export async function lockMany(tx: Tx, r: Resource, given: Array<[string, string]>): Promise<Map<string, Current>> {
  const receipt = (col: string) => `(SELECT c.${col} FROM record_receipt c WHERE c.resource = $1 AND c.org_code = t.org_code AND c.record_id = t.id)`;
  const rows = await byKeys(tx, given, async (keys) => {
    const k = keyList(['t.org_code', 't.id'], keys, 1);
    const text = `SELECT t.org_code, t.id, t.rec_version, t.rec_hash, t.rec_retired, ${receipt('state')} AS receipt_state, ${receipt('version')} AS receipt_version
       FROM ${r.table} t WHERE ${k.sql} FOR UPDATE`;
    const res = await exec<{
      org_code: string;
      id: string;
      rec_version: number;
      rec_hash: string;
      rec_retired: boolean;
      receipt_state: string | null;
      receipt_version: number | null;
    }>(tx, text, [r.name, ...k.params], keys.length === 1 && `lock1_${r.table}`);
    return res.rows;
  });
  return new Map(
    rows.map((row): [string, Current] => [
      keyOf(row.org_code, row.id),
      {
        version: row.rec_version,
        hash: row.rec_hash.trim(),
        retired: row.rec_retired,
        mayBeHeld: row.receipt_version !== row.rec_version || (row.receipt_state !== 'stored' && row.receipt_state !== 'retired'),
      },
    ]),
  );
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

/** A typed row to write: the record's columns, its personal fields' HMACs by column, its bookkeeping. */
export interface RecordItem {
  record: Record<string, unknown>;
  hashes?: Record<string, string | null>;
  b: Bookkeeping;
}

/** A typed row's values in the order of shapeOf(r).cols (rec_raw's text left out when the statement carries it). */
function typedRow(sh: Shape, { record, hashes, b }: RecordItem, rawGiven: boolean): unknown[] {
  return [
    ...sh.keys.map((k) => record[k] ?? null),
    ...sh.hmacs.map((c) => hashes?.[c] ?? null),
    b.version,
    b.hash,
    rawGiven ? null : JSON.stringify(b.raw),
    b.retired,
    b.test,
    b.receivedAt,
    b.receivedAt,
    b.latenessS,
  ];
}

/**
 * The typed rows as part of a composed write (docs/ingest.md "Round trips"): records not yet stored
 * are INSERTed, stored ones UPDATEd. Which is which is known before the statement — the stored rows
 * are locked by lockMany in the same transaction — so no MERGE has to find out (and MERGE cannot be
 * a WITH query, docs/opengauss.md). The record's personal fields come sealed (shared/pii
 * sealRecord), with their HMACs by column in `hashes`. Rows go as one array per column
 * (docs/opengauss.md "Statement sources"), so a batch of any width takes one parameter per column.
 */
export function recordsPart(r: Resource, fresh: RecordItem[], stored: RecordItem[], rawAt?: Given): WritePart {
  if (rawAt && fresh.length > 0 && stored.length > 0) throw new Error('recordsPart: a given rec_raw is for the rows of one source');
  const sh = shapeOf(r);
  const writes = [
    { items: fresh, src: 'rec_new_src', name: 'rec_new', sql: sh.insert },
    { items: stored, src: 'rec_old_src', name: 'rec_old', sql: sh.update },
  ];
  return (offset, only) => {
    const ctes: Array<{ name: string; sql: string }> = [];
    const params: unknown[] = [];
    for (const w of writes) {
      if (w.items.length === 0) continue;
      const src = source(
        sh.cols,
        w.items.map((it) => typedRow(sh, it, rawAt !== undefined)),
        offset + params.length,
        only,
        rawAt,
      );
      params.push(...src.params);
      ctes.push({ name: w.src, sql: src.sql }, { name: w.name, sql: w.sql });
    }
    return { ctes, params };
  };
}

export async function retire(tx: Tx, r: Resource, orgCode: string, id: string, version: number, hash: string, at: Date): Promise<void> {
  await tx.query(`UPDATE ${r.table} SET rec_retired = true, rec_version = $3, rec_hash = $4, rec_updated_at = $5 WHERE org_code = $1 AND id = $2`, [
    orgCode,
    id,
    version,
    hash,
    at,
  ]);
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
  /**
   * Whether the warning loop reads this version (record_history.warn_pending): not a record stored
   * in test mode, which raises no case (docs/warning.md "Evidence": what it reads).
   */
  warn: boolean;
}

const HISTORY_COLS: Cols = [
  ['resource', 'varchar'],
  ['org_code', 'varchar'],
  ['record_id', 'varchar'],
  ['version', 'integer'],
  ['op', 'varchar'],
  ['rec_hash', 'varchar'],
  ['raw', 'jsonb'],
  ['call_id', 'varchar'],
  ['received_at', 'timestamptz'],
  ['warn_pending', 'boolean'],
];

function historySql(entries: HistoryEntry[], offset: number, only?: string, rawAt?: Given): { sql: string; params: unknown[] } {
  const src = source(
    HISTORY_COLS,
    entries.map((h) => [h.resource, h.orgCode, h.id, h.version, h.op, h.hash, rawAt ? null : JSON.stringify(h.raw), h.callId, h.at, h.warn ? true : null]),
    offset,
    only,
    rawAt,
  );
  return { sql: `INSERT INTO record_history (${HISTORY_COLS.map(([c]) => c).join(', ')}) ${src.sql}`, params: src.params };
}

export async function appendHistory(tx: Tx, entries: HistoryEntry[]): Promise<void> {
  const per = chunkRows(HISTORY_COLS.length);
  for (let i = 0; i < entries.length; i += per) {
    const part = entries.slice(i, i + per);
    const q = historySql(part, 0);
    await exec(tx, q.sql, q.params, statementName(part.length, 'history1', q.sql));
  }
}

/**
 * What `appendHistory` writes, as one part of a composed write (shared/db/sql.ts composeWrites);
 * `rawAt`: the entries' raw texts are already in the statement (`{ raw: '$1' }`, in the entries' order).
 */
export function historyPart(entries: HistoryEntry[], rawAt?: Given): WritePart {
  return (offset, only) => {
    const q = historySql(entries, offset, only, rawAt);
    return { ctes: [{ name: 'history_rows', sql: `${q.sql} RETURNING 1` }], params: q.params };
  };
}

/**
 * Key rotation (shared/pii rotate.ts): a typed row's sealed columns, HMAC columns and rec_raw
 * rewritten with the same content re-sealed; its version, hash and times are unchanged.
 */
export async function rewriteSealed(tx: Tx, r: Resource, orgCode: string, id: string, columns: Record<string, unknown>, raw: unknown): Promise<void> {
  const params: unknown[] = [orgCode, id, JSON.stringify(raw)];
  const sets = ['rec_raw = $3::jsonb'];
  for (const [c, v] of Object.entries(columns)) {
    if (!/^[a-z][a-z0-9_]*$/.test(c)) throw new Error(`not a column name: ${c}`);
    params.push(v);
    sets.push(`${c} = $${params.length}`);
  }
  await tx.query(`UPDATE ${r.table} SET ${sets.join(', ')} WHERE org_code = $1 AND id = $2`, params);
}

/** Key rotation: history entries' raw copies rewritten with the same content re-sealed. */
export async function rewriteHistoryRaw(tx: Tx, rows: Array<{ histId: string; raw: unknown }>): Promise<void> {
  for (const h of rows) await tx.query('UPDATE record_history SET raw = $2::jsonb WHERE hist_id = $1', [h.histId, JSON.stringify(h.raw)]);
}

// ---- receipts, holds, rejections (0005_ingest_state.sql, 0009_record_hold.sql) ------------------

export interface ReceiptRow {
  resource: string;
  orgCode: string;
  id: string;
  version: number;
  state: 'stored' | 'held' | 'retired';
  retired: boolean;
  holds: Hold[];
  /**
   * false when the record is known to have held nothing before this write (a new record, or one
   * whose holds were read under its row lock in this transaction): no old holds to drop.
   */
  hadHolds?: boolean;
  flags: string[];
  businessAt: Date | null;
  businessDay: string | null;
  test: boolean;
  at: Date;
}

const RECEIPT_COLS: Cols = [
  ['resource', 'varchar'],
  ['org_code', 'varchar'],
  ['record_id', 'varchar'],
  ['version', 'integer'],
  ['state', 'varchar'],
  ['retired', 'boolean'],
  ['flags', 'varchar'],
  ['business_at', 'timestamptz'],
  ['business_day', 'varchar'],
  ['test_mode', 'boolean'],
  ['at', 'timestamptz'],
];

const joinList = (xs: string[]) => (xs.length ? xs.join(' ').slice(0, 500) : null);

const receiptValues = (receipts: ReceiptRow[], offset: number, only?: string) =>
  source(
    RECEIPT_COLS,
    receipts.map((r) => [r.resource, r.orgCode, r.id, r.version, r.state, r.retired, joinList(r.flags), r.businessAt, r.businessDay, r.test, r.at]),
    offset,
    only,
  );

/**
 * Replaces the holds of those records with the ones given (after their receipts are written): no
 * statement for a record that had none and has none.
 */
export async function replaceHolds(tx: Tx, receipts: ReceiptRow[]): Promise<void> {
  const byResource = new Map<string, ReceiptRow[]>();
  for (const r of receipts) byResource.set(r.resource, [...(byResource.get(r.resource) ?? []), r]);
  for (const [resource, rs] of byResource) {
    await dropHolds(
      tx,
      resource,
      rs.filter((r) => r.hadHolds !== false).map((r): [string, string] => [r.orgCode, r.id]),
    );
    await addHolds(
      tx,
      resource,
      rs.flatMap((r) => r.holds.map((hold) => ({ orgCode: r.orgCode, id: r.id, hold, at: r.at }))),
    );
  }
}

/** Writes the receipts and replaces the holds of those records with the ones given. */
export async function writeReceipts(tx: Tx, receipts: ReceiptRow[]): Promise<void> {
  const per = chunkRows(RECEIPT_COLS.length);
  for (let i = 0; i < receipts.length; i += per) {
    const part = receipts.slice(i, i + per);
    const src = receiptValues(part, 0);
    const text = `MERGE INTO record_receipt t USING (${src.sql}) s
         ON (t.resource = s.resource AND t.org_code = s.org_code AND t.record_id = s.record_id)
       WHEN MATCHED THEN UPDATE SET version = s.version, state = s.state, retired = s.retired,
         flags = s.flags, business_at = s.business_at, business_day = s.business_day, test_mode = s.test_mode, updated_at = s.at
       WHEN NOT MATCHED THEN INSERT (resource, org_code, record_id, version, state, retired, flags, business_at,
         business_day, test_mode, received_at, updated_at)
         VALUES (s.resource, s.org_code, s.record_id, s.version, s.state, s.retired, s.flags, s.business_at,
         s.business_day, s.test_mode, s.at, s.at)`;
    await exec(tx, text, src.params, statementName(part.length, 'receipt1', text));
  }
  await replaceHolds(tx, receipts);
}

const RECEIPT_INSERT = `INSERT INTO record_receipt (resource, org_code, record_id, version, state, retired, flags, business_at,
                  business_day, test_mode, received_at, updated_at)
                SELECT s.resource, s.org_code, s.record_id, s.version, s.state, s.retired, s.flags, s.business_at,
                  s.business_day, s.test_mode, s.at, s.at`;

/**
 * The receipts as one part of a composed write. A record not stored yet (no typed row under the
 * row lock) has no receipt either — both are written in one transaction and neither is ever deleted
 * (docs/ingest.md "Who writes what") — so its receipt is a plain INSERT: no statement looks for
 * what is known to be absent. A stored record's receipt is an UPDATE and, should it lack one, an
 * INSERT of the rows that do not exist: MERGE cannot be a WITH query (on either dialect), and both
 * are judged on the statement's snapshot, so each receipt is written once. Two writers of one new
 * record meet on the unique key and the transaction is retried (withTx), as with MERGE. The holds
 * are not part of it: `replaceHolds` replaces them after the statement.
 */
export function receiptPart(fresh: ReceiptRow[], stored: ReceiptRow[]): WritePart {
  return (offset, only) => {
    const ctes: Array<{ name: string; sql: string }> = [];
    const params: unknown[] = [];
    if (fresh.length) {
      const src = receiptValues(fresh, offset, only);
      params.push(...src.params);
      ctes.push({ name: 'receipt_new_src', sql: src.sql }, { name: 'receipt_new', sql: `${RECEIPT_INSERT} FROM receipt_new_src s RETURNING 1` });
    }
    if (stored.length) {
      const src = receiptValues(stored, offset + params.length, only);
      params.push(...src.params);
      const match = 't.resource = s.resource AND t.org_code = s.org_code AND t.record_id = s.record_id';
      ctes.push(
        { name: 'receipt_src', sql: src.sql },
        {
          name: 'receipt_upd',
          sql: `UPDATE record_receipt t SET version = s.version, state = s.state, retired = s.retired, flags = s.flags,
                  business_at = s.business_at, business_day = s.business_day, test_mode = s.test_mode, updated_at = s.at
                  FROM receipt_src s WHERE ${match} RETURNING 1`,
        },
        { name: 'receipt_ins', sql: `${RECEIPT_INSERT} FROM receipt_src s WHERE NOT EXISTS (SELECT 1 FROM record_receipt t WHERE ${match}) RETURNING 1` },
      );
    }
    return { ctes, params };
  };
}

/**
 * Which of the referenced parents are ready: stored and not themselves held (a parent waiting for
 * its own parent or a mapping has not left yet, so neither may its children). One query per parent
 * resource.
 */
export async function existingParents(tx: Tx, parentResource: string, table: string, given: Array<[string, string]>): Promise<Set<string>> {
  const rows = await byKeys(tx, given, async (keys) => {
    const k = keyList(['p.org_code', 'p.id'], keys, 1);
    const text = storedParentsSql(table, '$1', k.sql);
    return (await exec<{ org_code: string; id: string }>(tx, text, [parentResource, ...k.params], keys.length === 1 && `parent1_${table}`)).rows;
  });
  return new Set(rows.map((row) => keyOf(row.org_code, row.id)));
}

/** The stored parents among `keys` (an SQL condition on p.org_code, p.id): in `table`, and not held. */
const storedParentsSql = (table: string, resource: string, keys: string) => `SELECT p.org_code, p.id FROM ${table} p
       LEFT JOIN record_receipt r ON r.resource = ${resource} AND r.org_code = p.org_code AND r.record_id = p.id
      WHERE ${keys} AND (r.state IS NULL OR r.state <> 'held')`;

/** The waits of children for the parents among `keys` (an SQL condition on org_code, parent_id). */
const waitsForSql = (resource: string, keys: string) =>
  `SELECT DISTINCT org_code, parent_id FROM record_parent_wait WHERE parent_resource = ${resource} AND ${keys}`;

/**
 * The guard of records written as new without being looked for first (docs/ingest.md "New records
 * in one round trip"): a WITH query that returns a row only when none of the records is stored or
 * has a receipt, every parent named is stored and not held, for a parent resource no child waits for
 * any of the records, and (records validated before their patients' stored birth dates were read) no
 * patient was born after a record's first event day. It goes first in the composed write, whose other parts then write
 * nothing unless it returned its row (composeWrites). Read after the transaction's link locks, like
 * the look-ups it replaces, so what it says of parents and waits holds until COMMIT; a record
 * created by another transaction after the statement began fails the INSERT on its key (23505).
 * With the part, the shape its text depends on (for the statement's name).
 */
export function newRecordsGuardPart(
  r: { name: string; table: string },
  keys: Array<[string, string]>,
  parents: Array<{ resource: string; table: string; orgCode: string; id: string }>,
  isParent: boolean,
  /** Records validated before their patients' stored birth dates were read: none may be born on or after `bornFrom`. */
  births: Array<{ orgCode: string; patientId: string; bornFrom: Date }> = [],
): { part: WritePart; shape: string } {
  // A wave holds each key once. One condition per record's parent, repeated parents too: the text then depends on the records'
  // shape alone (a few texts per resource, each prepared once per connection), not on which of them
  // share a parent. What it depends on: how many records, whether waits are checked, the parents'
  // tables in order (one table: how many), the birth checks — the statement's name stands for its
  // text (docs/opengauss.md "Composed writes").
  const tables = parents.map((p) => p.table);
  const one = tables.every((t) => t === tables[0]);
  const parentsShape = one ? `${tables[0] ?? ''}${parents.length > keys.length ? `x${parents.length}` : ''}` : tables.join('.');
  const shape = `${keys.length}${isParent ? 'w' : ''}_${parentsShape}${births.length ? `_b${births.length}` : ''}`;
  const part: WritePart = (offset) => {
    const params: unknown[] = [];
    const $ = (v: unknown) => `$${offset + params.push(v)}`;
    const resource = $(r.name);
    const checks = [
      ...keys.flatMap(([org, id]) => {
        const [o, i] = [$(org), $(id)];
        return [
          `NOT EXISTS (SELECT 1 FROM ${r.table} t WHERE (t.org_code, t.id) = (${o}, ${i}))`,
          `NOT EXISTS (SELECT 1 FROM record_receipt c WHERE c.resource = ${resource} AND (c.org_code, c.record_id) = (${o}, ${i}))`,
          ...(isParent ? [`NOT EXISTS (${waitsForSql(resource, `(org_code, parent_id) = (${o}, ${i})`)})`] : []),
        ];
      }),
      ...parents.map((p) => `EXISTS (${storedParentsSql(p.table, $(p.resource), `(p.org_code, p.id) = (${$(p.orgCode)}, ${$(p.id)})`)})`),
      // The same rows storedBirthDays reads (shared/ingest/resolve.ts).
      ...births.map(
        (b) =>
          `NOT EXISTS (SELECT 1 FROM emr_patient_info b WHERE (b.org_code, b.id) = (${$(b.orgCode)}, ${$(b.patientId)}) AND b.birth_date >= ${$(b.bornFrom)})`,
      ),
    ];
    return { ctes: [{ name: 'new_guard', sql: `SELECT 1 AS ok WHERE ${checks.join('\n  AND ')}`, guard: true }], params };
  };
  return { part, shape };
}

/**
 * Which of these parents have children waiting for them. Read under the parents' link locks, which a
 * child takes before it adds a wait (docs/ingest.md "Parents and children"), so the answer holds until
 * the transaction ends: a parent with none need not take waits away in its write.
 */
export async function awaitedParents(tx: Tx, parentResource: string, given: Array<[string, string]>): Promise<Set<string>> {
  const rows = await byKeys(tx, given, async (parents) => {
    const k = keyList(['org_code', 'parent_id'], parents, 1);
    const text = waitsForSql('$1', k.sql);
    return (await exec<{ org_code: string; parent_id: string }>(tx, text, [parentResource, ...k.params], parents.length === 1 && 'awaited1')).rows;
  });
  return new Set(rows.map((row) => keyOf(row.org_code, row.parent_id)));
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
    const cols: Cols = [
      ['resource', 'varchar'],
      ['org_code', 'varchar'],
      ['record_id', 'varchar'],
      ['parent_resource', 'varchar'],
      ['parent_id', 'varchar'],
      ['since', 'timestamptz'],
    ];
    const src = source(
      cols,
      waits.map((w) => [w.resource, w.orgCode, w.id, w.parentResource, w.parentId, at]),
    );
    await tx.query(`INSERT INTO record_parent_wait (${cols.map(([c]) => c).join(', ')}) ${src.sql}`, src.params);
  }
}

/** A 64-bit advisory-lock key for a (resource, org, id): the link between a parent and its children. */
function linkKey(resource: string, orgCode: string, id: string): string {
  return BigInt.asIntN(64, BigInt('0x' + createHash('sha256').update(`${resource}\u0000${orgCode}\u0000${id}`).digest('hex').slice(0, 16))).toString();
}

/**
 * A link between a parent and its children, locked by a transaction that writes either side
 * (docs/ingest.md "Parents and children"): `shared` by a child (children of one parent do not
 * exclude each other), `exclusive` by the parent's writer and by whoever releases its children.
 */
export type Link = [resource: string, orgCode: string, id: string, mode: 'shared' | 'exclusive'];

/**
 * The link locks' statement: every key and its mode as two arrays in key order, so its text is one
 * for any number of links and it is prepared once per connection (`link_locks`). Shared and
 * exclusive locks are taken in one pass in key order, so no two such statements deadlock. The keys
 * are numbers this module computed from a hash, never text from a request.
 */
const LINK_LOCKS =
  'SELECT count(CASE WHEN s.x THEN pg_advisory_xact_lock(s.k) ELSE pg_advisory_xact_lock_shared(s.k) END) FROM (SELECT unnest($1::bigint[]) AS k, unnest($2::boolean[]) AS x ORDER BY 1) s';

/**
 * Takes the transaction locks on parent links, all in one statement in key order (docs/ingest.md
 * "Parents and children"). A lock the transaction already holds is taken again at no cost. A wave
 * sends it first among its reads, in one round trip with them (docs/ingest.md "Round trips").
 */
export async function lockLinks(tx: { query: Tx['query'] }, links: Link[]): Promise<void> {
  const keys = linkKeys(links);
  if (keys.length === 0) return;
  await tx.query({ name: 'link_locks', text: LINK_LOCKS, values: [keys.map(([k]) => k), keys.map(([, x]) => x)] });
}

/** The links' lock keys in key order, each exclusive when any of its links is. */
function linkKeys(links: Link[]): Array<[string, boolean]> {
  const keys = new Map<string, boolean>();
  for (const [resource, orgCode, id, mode] of links) {
    const k = linkKey(resource, orgCode, id);
    keys.set(k, keys.get(k) === true || mode === 'exclusive');
  }
  return [...keys].sort(([a], [b]) => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0));
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
  // The parents' link locks before their waits are read: a child being written at this moment
  // (which found its parent still held, as this transaction has not committed) has either committed
  // its wait, seen below, or waits for this transaction and then finds its parent stored. The
  // writer of a parent holds these already; a release by mapping, by the orphan sweep or one level
  // down (a header released with its patient) takes them here.
  await lockLinks(
    tx,
    parents.map(([orgCode, id]): Link => [parentResource, orgCode, id, 'exclusive']),
  );
  const q = waitsSql(parentResource, parents, 0);
  const waiting = await tx.query<WaitingRow>(q.sql, q.params);
  return releaseWaiting(tx, parentResource, waiting.rows, hasChildren, depth);
}

/** A child's wait for a parent, as the release takes it away. */
export interface WaitingRow {
  resource: string;
  org_code: string;
  record_id: string;
  parent_id: string;
}
export const WAITING_COLUMNS = ['resource', 'org_code', 'record_id', 'parent_id'];

function waitsSql(parentResource: string, parents: Array<[string, string]>, offset: number): { sql: string; params: unknown[] } {
  const k = keyList(['org_code', 'parent_id'], parents, offset + 1);
  return {
    sql: `DELETE FROM record_parent_wait WHERE parent_resource = $${offset + 1} AND ${k.sql} RETURNING ${WAITING_COLUMNS.join(', ')}`,
    params: [parentResource, ...k.params],
  };
}

/**
 * The waits for these parents taken away, as one part of a composed write (its rows are the
 * statement's `outrows`); `releaseWaiting` then releases the children. The caller holds the
 * parents' link locks already (the writer of a parent takes them first: docs/ingest.md).
 */
export function releaseWaitsPart(parentResource: string, parents: Array<[string, string]>): WritePart {
  return (offset) => {
    const q = waitsSql(parentResource, parents, offset);
    return { ctes: [{ name: 'outrows', sql: q.sql }], params: q.params };
  };
}

/** The children whose waits for a parent were taken away lose that hold; those with none left are released. */
export async function releaseWaiting(
  tx: Tx,
  parentResource: string,
  waiting: WaitingRow[],
  hasChildren: (resource: string) => boolean = () => false,
  depth = 0,
): Promise<number> {
  let released = 0;
  for (const w of waiting) {
    const orgCode = w.org_code;
    const left = await tx.query('SELECT 1 FROM record_parent_wait WHERE resource = $1 AND org_code = $2 AND record_id = $3', [
      w.resource,
      orgCode,
      w.record_id,
    ]);
    const rc = await tx.query<{ retired: boolean }>('SELECT retired FROM record_receipt WHERE resource = $1 AND org_code = $2 AND record_id = $3 FOR UPDATE', [
      w.resource,
      orgCode,
      w.record_id,
    ]);
    const receipt = rc.rows[0];
    if (!receipt) continue;
    // With no wait left, no parent hold is left either; else only this parent's hold goes.
    await dropHolds(
      tx,
      w.resource,
      [[orgCode, w.record_id]],
      left.rowCount === 0 ? { kind: 'parent' } : { kind: 'parent', resource: parentResource, id: w.parent_id },
    );
    const stillHeld = left.rowCount !== 0 || (await recordHolds(tx, w.resource, orgCode, w.record_id)).length > 0;
    await tx.query('UPDATE record_receipt SET state = $4 WHERE resource = $1 AND org_code = $2 AND record_id = $3', [
      w.resource,
      orgCode,
      w.record_id,
      stillHeld ? 'held' : receipt.retired ? 'retired' : 'stored',
    ]);
    if (!stillHeld) {
      released += await releaseHeld(tx, w.resource, orgCode, w.record_id);
      // Behind it now: its own children that waited for it (a lab item for its lab report).
      if (hasChildren(w.resource)) released += await releaseChildren(tx, w.resource, [[orgCode, w.record_id]], hasChildren, depth + 1);
    }
  }
  return released;
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
  const cols: Cols = [
    ['resource', 'varchar'],
    ['org_code', 'varchar'],
    ['record_id', 'varchar'],
    ['call_id', 'varchar'],
    ['caller', 'varchar'],
    ['issues', 'jsonb'],
    ['test_mode', 'boolean'],
  ];
  const src = source(
    cols,
    list.map((e) => [e.resource, e.orgCode?.slice(0, 50) ?? null, e.id?.slice(0, 80) ?? null, e.callId, e.caller, JSON.stringify(e.issues), e.test]),
  );
  await db.query(`INSERT INTO ingest_rejection (${cols.map(([c]) => c).join(', ')}) ${src.sql}`, src.params);
}
