/**
 * Building blocks of the data layers' SQL (docs/opengauss.md): typed multi-row sources for MERGE and
 * INSERT … SELECT, key lists, named statements for the hot path, and the parameter cap per statement.
 */
import type pg from 'pg';
import type { Tx } from './index.js';

/** Columns of a statement source: [column, SQL type]. */
export type Cols = ReadonlyArray<readonly [string, string]>;

function castOf(t: string): string {
  return t.startsWith('varchar') || t.startsWith('char') ? 'varchar' : t.startsWith('numeric') ? 'numeric' : t;
}

/**
 * A multi-row statement source: `SELECT * FROM (VALUES ($1::t, …), …) AS v(c, …)` — accepted by both
 * dialects as a MERGE or INSERT … SELECT source, and cheap to plan (a UNION ALL of single-row
 * SELECTs costs seconds to plan at a few hundred rows). Every placeholder is typed.
 */
export function source(cols: Cols, rows: unknown[][], offset = 0): { sql: string; params: unknown[] } {
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

/**
 * A condition that the pair of columns is one of the keys (docs/opengauss.md "Key lists"): one key
 * is an equality; several are, per value of the first column (an org code), that value and the
 * second column `= ANY` of an array — one index scan per org whatever the table's statistics say.
 * A literal `(a, b) IN ((…), (…))` let the planner test every key's OR on every row of a
 * sequential scan when it thought the table small (5–8 ms a batch of 50 on a table of 3 000 rows).
 */
export function keyList(cols: [string, string], keys: Array<[string, string]>, offset = 0): { sql: string; params: unknown[] } {
  if (keys.length === 1) return { sql: `(${cols[0]}, ${cols[1]}) = ($${offset + 1}, $${offset + 2})`, params: [...keys[0]!] };
  const byFirst = new Map<string, string[]>();
  for (const [a, b] of keys) byFirst.set(a, [...(byFirst.get(a) ?? []), b]);
  const params: unknown[] = [];
  const terms = [...byFirst].map(([a, bs]) => {
    params.push(a, bs);
    return `(${cols[0]} = $${offset + params.length - 1} AND ${cols[1]} = ANY($${offset + params.length}::varchar[]))`;
  });
  return { sql: `(${terms.join(' OR ')})`, params };
}

/**
 * Runs a statement, as a named (prepared, planned once per connection) statement when it has the
 * shape of the single-record path — the hot path — and unnamed otherwise (batch shapes vary).
 */
export function exec<R extends pg.QueryResultRow = pg.QueryResultRow>(
  tx: { query: Tx['query'] },
  text: string,
  values: unknown[],
  single: string | false,
): Promise<pg.QueryResult<R>> {
  return single ? tx.query<R>({ name: single, text, values }) : tx.query<R>(text, values);
}

/** Rows per statement, so that no statement needs more than 60 000 parameters (the protocol allows 65 535). */
export function chunkRows(columns: number): number {
  return Math.max(1, Math.floor(60_000 / columns));
}

/**
 * One part of a composed write (`composeWrites`): named WITH queries (a data-modifying one ends in
 * RETURNING; a part may also name a plain SELECT its statements share), with placeholders numbered
 * from `offset` + 1. The part is built by
 * the module that owns the table (docs/ingest.md "Who writes what"); only the composing is shared.
 */
export type WritePart = (offset: number) => { ctes: Array<{ name: string; sql: string }>; params: unknown[] };

/**
 * Several owners' writes in one statement, one round trip (docs/opengauss.md "Composed writes"):
 * `WITH a AS (INSERT … RETURNING …), b AS (UPDATE … RETURNING …) SELECT …`. All of them see the
 * snapshot taken at the statement's start, not each other's rows, so only writes to different rows
 * are composed. The statement returns the rows of the WITH query named `outrows` (if a part defines
 * it), and one last row of NULLs that counts every WITH query: each is referenced by the main
 * query, so no dialect may skip one.
 */
export async function composeWrites<R extends pg.QueryResultRow>(tx: Tx, parts: WritePart[], rowsColumns: string[], single: string | false): Promise<R[]> {
  const ctes: Array<{ name: string; sql: string }> = [];
  const params: unknown[] = [];
  for (const part of parts) {
    const p = part(params.length);
    ctes.push(...p.ctes);
    params.push(...p.params);
  }
  if (ctes.length === 0) return [];
  const hasRows = ctes.some((c) => c.name === 'outrows');
  const counted = ctes.map((c) => `(SELECT count(*) FROM ${c.name}) AS n_${c.name}`).join(', ');
  const nulls = rowsColumns.map((c) => `NULL AS ${c}`).join(', ');
  const main =
    (hasRows ? `SELECT ${rowsColumns.join(', ')}, 0 AS n_all FROM outrows UNION ALL ` : '') +
    `SELECT ${nulls}${nulls ? ', ' : ''}1 AS n_all FROM (SELECT ${counted}) counted`;
  const res = await exec<R & { n_all: number }>(tx, `WITH ${ctes.map((c) => `${c.name} AS (${c.sql})`).join(',\n')}\n${main}`, params, single);
  return res.rows.filter((r) => Number(r.n_all) === 0);
}
