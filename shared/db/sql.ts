/**
 * Building blocks of the data layers' SQL (docs/opengauss.md): typed multi-row sources for MERGE and
 * INSERT … SELECT, key lists, named statements for the hot path, and the parameter cap per statement.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { Tx } from './index.js';

/** Columns of a statement source: [column, SQL type]. */
export type Cols = ReadonlyArray<readonly [string, string]>;

function castOf(t: string): string {
  return t.startsWith('varchar') || t.startsWith('char') ? 'varchar' : t.startsWith('numeric') ? 'numeric' : t;
}

/**
 * A statement source of typed rows, for MERGE and INSERT … SELECT (docs/opengauss.md "Statement
 * sources"): one row as `valuesSource`, several as `columnSource` — whose text does not depend on
 * how many rows there are, so a batch's statement is prepared once per connection (`nameOf`) instead
 * of parsed and planned with a placeholder per value every time.
 *
 * `given` names columns whose values the statement already carries in a placeholder of its own (a
 * composed write's shared values, `composeWrites`): one value for one row, an array of the rows'
 * values, in the rows' order, for several. Such a column takes no parameter of the source's (its
 * place in each row is not read).
 */
export function source(cols: Cols, rows: unknown[][], offset = 0, only?: string, given?: Given): { sql: string; params: unknown[] } {
  const src = rows.length === 1 ? valuesSource(cols, rows, offset, given) : columnSource(cols, rows, offset, given);
  // A guard's condition (composeWrites): the source has its rows only while it holds.
  return only ? { sql: `${src.sql} WHERE ${only}`, params: src.params } : src;
}

/** Columns of a source whose values are already in the statement: column → its placeholder (`$3`). */
export type Given = Readonly<Record<string, string>>;

const givenKeys = new WeakMap<Given, string>();
function givenKey(given?: Given): string {
  if (!given) return '';
  let k = givenKeys.get(given);
  if (k === undefined) givenKeys.set(given, (k = Object.entries(given).join(';')));
  return k;
}

/**
 * `SELECT * FROM (VALUES ($1::t, …), …) AS v(c, …)` — accepted by both dialects as a MERGE or
 * INSERT … SELECT source, every placeholder typed. The single-record path's named statements use it
 * (planned once, a generic plan, whatever the row); for many rows it is a placeholder per value,
 * parsed and planned at every execution.
 */
export function valuesSource(cols: Cols, rows: unknown[][], offset = 0, given?: Given): { sql: string; params: unknown[] } {
  if (given && rows.length !== 1) throw new Error('valuesSource: given columns are for one row (several rows go as columnSource)');
  const params: unknown[] = [];
  for (const row of rows) for (let ci = 0; ci < cols.length; ci++) if (!given?.[cols[ci]![0]]) params.push(row[ci]);
  return {
    sql: textOf(cols, `v${rows.length}:${offset}:${givenKey(given)}`, rows.length === 1, () => valuesText(cols, rows.length, offset, given)),
    params,
  };
}

function valuesText(cols: Cols, rows: number, offset: number, given?: Given): string {
  let n = offset;
  const tuples = Array.from({ length: rows }, () => `(${cols.map(([c, t]) => `${given?.[c] ?? `$${++n}`}::${castOf(t)}`).join(', ')})`);
  return `SELECT * FROM (VALUES ${tuples.join(', ')}) AS v(${cols.map(([c]) => c).join(', ')})`;
}

/**
 * A source's text depends only on its columns, its placeholders' offset, its given columns and (a
 * VALUES list) its row count: the hot path's shapes — one row, or one array per column — are built
 * once per process and kept with their columns (at most TEXTS_PER_COLS of them each).
 */
const texts = new WeakMap<Cols, Map<string, string>>();
const TEXTS_PER_COLS = 32;

function textOf(cols: Cols, key: string, keep: boolean, build: () => string): string {
  let known = texts.get(cols);
  const hit = known?.get(key);
  if (hit !== undefined) return hit;
  const text = build();
  if (!keep) return text;
  if (!known) texts.set(cols, (known = new Map()));
  if (known.size < TEXTS_PER_COLS) known.set(key, text);
  return text;
}

/**
 * `SELECT unnest($1::t[]) AS c, unnest($2::u[]) AS d, …` — one array parameter per column, the rows
 * in step (every array has one element per row). Set-returning functions in the select list run in
 * step on both dialects when the arrays are equally long (openGauss's `unnest` takes one array, so
 * `FROM unnest(a, b)` is not used); jsonb goes as text and is cast per element.
 */
export function columnSource(cols: Cols, rows: unknown[][], offset = 0, given?: Given): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  for (let ci = 0; ci < cols.length; ci++) if (!given?.[cols[ci]![0]]) params.push(rows.map((row) => row[ci] ?? null));
  const sql = textOf(cols, `c:${offset}:${givenKey(given)}`, true, () => {
    let n = offset;
    const list = cols.map(([c, t]) => {
      const cast = castOf(t);
      const p = given?.[c] ?? `$${++n}`;
      return cast === 'jsonb' ? `unnest(${p}::text[])::jsonb AS ${c}` : `unnest(${p}::${cast}[]) AS ${c}`;
    });
    return `SELECT ${list.join(', ')}`;
  });
  return { sql, params };
}

/** Statement texts given a name (at most MAX_NAMED per process, so each connection prepares a bounded set). */
const named = new Map<string, string>();
const MAX_NAMED = 64;

/**
 * The name under which a statement whose text does not depend on its row count (a `columnSource`
 * batch) is prepared once per connection; `false` (sent unnamed) once MAX_NAMED texts have names.
 * PostgreSQL still plans each execution for its own arrays while that is cheaper than a generic
 * plan (a custom plan of a few dozen array parameters, where the VALUES list had thousands).
 */
export function nameOf(text: string): string | false {
  const known = named.get(text);
  if (known) return known;
  if (named.size >= MAX_NAMED) return false;
  const name = `c${named.size}_${createHash('sha1').update(text).digest('hex').slice(0, 16)}`;
  named.set(text, name);
  return name;
}

/**
 * The name of a multi-row statement built on `source`: `one` (the single-record path's own name) for
 * one row, else its text's name (`nameOf`).
 */
export function statementName(rows: number, one: string, text: string): string | false {
  return rows === 1 ? one : nameOf(text);
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
  for (const [a, b] of keys) {
    const ids = byFirst.get(a);
    if (ids) ids.push(b);
    else byFirst.set(a, [b]);
  }
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

/**
 * Rows per statement, for a table of `columns` columns: at most 60 000 values, so that a statement and
 * its arrays stay bounded (it was the parameter cap of the VALUES form, the protocol allowing 65 535;
 * `columnSource` takes one parameter per column).
 */
export function chunkRows(columns: number): number {
  return Math.max(1, Math.floor(60_000 / columns));
}

/**
 * One part of a composed write (`composeWrites`): named WITH queries (a data-modifying one ends in
 * RETURNING; a part may also name a plain SELECT its statements share), with placeholders numbered
 * from `offset` + 1. `only`, when given, is a condition every row source of the part carries
 * (`source`'s last argument): a guard's, so that the part writes nothing unless the guard holds. A
 * part whose writes have no row source (a DELETE by key) is never composed with a guard. The part
 * is built by the module that owns the table (docs/ingest.md "Who writes what"); only the composing
 * is shared.
 */
export type WritePart = (offset: number, only?: string) => { ctes: Array<{ name: string; sql: string; guard?: boolean }>; params: unknown[] };

/**
 * Several owners' writes in one statement, one round trip (docs/opengauss.md "Composed writes"):
 * `WITH a AS (INSERT … RETURNING …), b AS (UPDATE … RETURNING …) SELECT …`. All of them see the
 * snapshot taken at the statement's start, not each other's rows, so only writes to different rows
 * are composed. The statement returns the rows of the WITH query named `outrows` (if a part defines
 * it), and one last row of NULLs that counts every WITH query.
 *
 * `shared` values are the statement's first parameters ($1, $2, …), before any part's: parts that
 * write the same values (a record's payload in its typed row, its history and its outbox rows) are
 * built to read them there (`source`'s `given` columns), so each is stringified, sent and bound
 * once (a batch's jsonb is still cast from text by each part that reads it, docs/opengauss.md).
 *
 * A guard — a plain SELECT marked `guard`, in the first part — returns a row when the write may go
 * ahead: every later part's row sources carry `EXISTS (SELECT 1 FROM <guard>)`, so when it returns
 * none nothing is written and `passed` is false. Its count is in the last row, so it runs.
 */
export async function composeWrites<R extends pg.QueryResultRow>(
  tx: Tx,
  parts: WritePart[],
  rowsColumns: string[],
  single: string | false,
  shared: unknown[] = [],
): Promise<{ rows: R[]; passed: boolean }> {
  const built: Cte[][] = [];
  const params: unknown[] = [...shared];
  let only: string | undefined;
  for (const part of parts) {
    const p = part(params.length, only);
    built.push(p.ctes);
    params.push(...p.params);
    const g = only === undefined ? p.ctes.find((c) => c.guard) : undefined;
    if (g) only = guardCondition(g.name);
  }
  if (built.every((ctes) => ctes.length === 0)) return { rows: [], passed: true };
  // A single-record statement's name stands for one text, as a prepared statement's must: its text
  // is composed, and its parts checked, once per process.
  const known = single ? singleTexts.get(single) : undefined;
  if (known && known.params !== params.length) throw new Error(`composeWrites: ${single} names statements of ${known.params} and ${params.length} parameters`);
  const { text, guarded } = known ?? composedText(built, rowsColumns);
  if (single && !known && singleTexts.size < MAX_SINGLE) singleTexts.set(single, { text, guarded, params: params.length });
  const res = await exec<R & { n_all: number; n_guard?: number | string | null }>(tx, text, params, single || nameOf(text));
  const last = res.rows.find((r) => Number(r.n_all) === 1);
  return { rows: res.rows.filter((r) => Number(r.n_all) === 0), passed: !guarded || Number(last?.n_guard ?? 0) > 0 };
}

type Cte = { name: string; sql: string; guard?: boolean };
const guardCondition = (name: string) => `EXISTS (SELECT 1 FROM ${name})`;
const singleTexts = new Map<string, { text: string; guarded: boolean; params: number }>();
const MAX_SINGLE = 256;

/** composeWrites' statement from its parts' WITH queries (each part's own list), the guard's rules checked. */
function composedText(built: Cte[][], rowsColumns: string[]): { text: string; guarded: boolean } {
  const ctes: Cte[] = [];
  let guard: Cte | undefined;
  let only: string | undefined;
  for (const p of built) {
    ctes.push(...p);
    const g = p.find((c) => c.guard);
    if (g) {
      if (ctes.length !== p.length) throw new Error(`composeWrites: the guard ${g.name} must be in the first part`);
      guard = g;
      only = guardCondition(g.name);
    } else if (only && !p.some((c) => c.sql.includes(only!))) {
      // A part that ignores the guard (a DELETE by key) would write on a miss.
      throw new Error(`composeWrites: ${p.map((c) => c.name).join(', ')} cannot be written behind a guard`);
    }
  }
  const hasRows = ctes.some((c) => c.name === 'outrows');
  const counted = ctes.map((c) => `(SELECT count(*) FROM ${c.name}) AS n_${c.name}`).join(', ');
  const nulls = rowsColumns.map((c) => `NULL AS ${c}`).join(', ');
  const main =
    (hasRows ? `SELECT ${rowsColumns.join(', ')}, 0 AS n_all${guard ? ', NULL AS n_guard' : ''} FROM outrows UNION ALL ` : '') +
    `SELECT ${nulls}${nulls ? ', ' : ''}1 AS n_all${guard ? `, n_${guard.name} AS n_guard` : ''} FROM (SELECT ${counted}) counted`;
  return { text: `WITH ${ctes.map((c) => `${c.name} AS (${c.sql})`).join(',\n')}\n${main}`, guarded: guard !== undefined };
}
