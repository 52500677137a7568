// Statement sources of several rows as one array per column (shared/db/sql.ts columnSource;
// docs/opengauss.md "Statement sources"): every value comes back as the VALUES form gives it, the
// text does not depend on the row count, and a composed write of any size is one prepared
// statement per connection.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cols, columnSource, composeWrites, nameOf, source, valuesSource } from '../../shared/db/sql.js';
import { testDb, uniqueId } from '../setup/db.js';

const db = testDb();
const table = `col_src_${uniqueId('t')
  .toLowerCase()
  .replace(/[^a-z0-9]/g, '')}`;

const COLS: Cols = [
  ['name', 'varchar(80)'],
  ['n', 'integer'],
  ['amount', 'numeric(10,2)'],
  ['flag', 'boolean'],
  ['at', 'timestamptz'],
  ['day', 'date'],
  ['doc', 'jsonb'],
];

/** Values an array literal treats specially, beside plain ones and NULLs in every column. */
const ROWS: unknown[][] = [
  ['plain', 1, '12.50', true, new Date('2026-12-05T01:02:03.456Z'), '2026-12-05', JSON.stringify({ a: 1 })],
  ['a"b', -2, '0.01', false, new Date('2026-01-01T00:00:00Z'), '2026-01-01', JSON.stringify({ q: 'say "hi"', b: 'c\\d', u: '传染病' })],
  ['c\\d', 0, null, null, null, null, null],
  ['{e,f}', null, '99999999.99', true, new Date('2026-06-30T16:00:00Z'), '2026-06-30', JSON.stringify([1, '{x,y}', null])],
  ['NULL', 7, '1', false, new Date('2026-12-05T23:59:59.999Z'), '2026-12-31', JSON.stringify('NULL')],
  ['', 8, '2', true, new Date('2026-12-05T00:00:00Z'), '2026-12-05', JSON.stringify({})],
  [null, 9, '3', true, new Date('2026-12-05T00:00:00Z'), '2026-12-05', JSON.stringify({ s: " g 'h' " })],
  [" g 'h' ", 10, '4', true, new Date('2026-12-05T00:00:00Z'), '2026-12-05', JSON.stringify({ nl: 'a\nb\tc' })],
];

const select = (src: { sql: string }) => `SELECT name, n, amount::text AS amount, flag, at, day::text AS day, doc FROM (${src.sql}) s`;

beforeAll(async () => {
  await db.query(`CREATE TABLE ${table} (k serial PRIMARY KEY, ${COLS.map(([c, t]) => `${c} ${t}`).join(', ')})`);
});
afterAll(async () => {
  await db.query(`DROP TABLE IF EXISTS ${table}`);
});

describe('a statement source of several rows', () => {
  it('gives back every value, in order, as the VALUES form does', async () => {
    const asColumns = columnSource(COLS, ROWS);
    const asValues = valuesSource(COLS, ROWS);
    const a = (await db.query(select(asColumns), asColumns.params)).rows;
    const b = (await db.query(select(asValues), asValues.params)).rows;
    expect(a).toHaveLength(ROWS.length);
    expect(a).toEqual(b);
    expect(a.map((r) => r.name)).toEqual(ROWS.map((r) => r[0]));
    expect(a[1]!.doc).toEqual({ q: 'say "hi"', b: 'c\\d', u: '传染病' });
    expect(a[2]!.doc).toBeNull();
    expect(a[4]!.doc).toBe('NULL');
    expect((a[0]!.at as Date).toISOString()).toBe('2026-12-05T01:02:03.456Z');
  });

  it('has one text whatever the row count; one row keeps the VALUES form', () => {
    expect(source(COLS, ROWS.slice(0, 2)).sql).toBe(source(COLS, ROWS).sql);
    expect(source(COLS, ROWS.slice(0, 2)).params).toHaveLength(COLS.length);
    expect(source(COLS, ROWS.slice(0, 1)).sql).toContain('VALUES');
    expect(source(COLS, ROWS).sql).not.toContain('VALUES');
    // Numbered from the offset, as a composed write's later parts are.
    expect(columnSource(COLS, ROWS, 4).sql).toContain('unnest($5::varchar[]) AS name');
  });

  it('reads a given column from a placeholder the statement already has, in both forms, the rest numbered after it', async () => {
    // The docs column given as $1 (an array of the rows' docs for several rows, one doc for one).
    const docs = ROWS.map((r) => r[6]);
    const cols = columnSource(COLS, ROWS, 1, { doc: '$1' });
    expect(cols.params).toHaveLength(COLS.length - 1);
    expect(cols.sql).toContain('unnest($1::text[])::jsonb AS doc');
    expect(cols.sql).toContain('unnest($2::varchar[]) AS name');
    const one = valuesSource(COLS, ROWS.slice(1, 2), 1, { doc: '$1' });
    expect(one.params).toEqual(ROWS[1]!.slice(0, 6));
    expect(one.sql).toContain('$6::timestamptz, $7::date, $1::jsonb');
    const a = (await db.query(select(cols), [docs, ...cols.params])).rows;
    const b = (await db.query(select(valuesSource(COLS, ROWS)), valuesSource(COLS, ROWS).params)).rows;
    expect(a).toEqual(b);
    const c = (await db.query(select(one), [docs[1], ...one.params])).rows;
    expect(c).toEqual([b[1]]);
    expect(() => valuesSource(COLS, ROWS, 1, { doc: '$1' })).toThrow(/one row/);
  });

  it('is written by a composed write of any size as one prepared statement per connection', async () => {
    const client = await db.connect();
    try {
      const tag = uniqueId('w');
      const write = (rows: unknown[][]) =>
        composeWrites(
          client,
          [
            (offset) => {
              const src = columnSource(COLS, rows, offset);
              return {
                ctes: [
                  { name: 'w_src', sql: src.sql },
                  { name: 'w_rows', sql: `INSERT INTO ${table} (${COLS.map(([c]) => c).join(', ')}) SELECT * FROM w_src RETURNING 1` },
                ],
                params: src.params,
              };
            },
          ],
          [],
          false,
        );
      const tagged = (n: number) => ROWS.slice(0, n).map((r) => [`${tag}-${r[0]}`, ...r.slice(1)]);
      for (const n of [2, 5, 8, 3]) await write(tagged(n));
      const written = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE name LIKE $1`, [`${tag}-%`]);
      expect(written.rows[0]!.n).toBe(2 + 5 + 8 + 3);
      const prepared = await client.query<{ name: string }>(`SELECT name FROM pg_prepared_statements WHERE statement LIKE $1`, [`%INSERT INTO ${table}%`]);
      expect(prepared.rows.map((r) => r.name)).toHaveLength(1);
    } finally {
      client.release();
    }
  });

  it("composes a single-record statement's text once for its name, and refuses a name given to another shape", async () => {
    const client = await db.connect();
    try {
      const tag = uniqueId('s');
      const one = (row: unknown[], extra = false) =>
        composeWrites(
          client,
          [
            (offset) => {
              const src = valuesSource(COLS, [row], offset);
              return {
                ctes: [
                  { name: 's_src', sql: src.sql },
                  { name: 's_rows', sql: `INSERT INTO ${table} (${COLS.map(([c]) => c).join(', ')}) SELECT * FROM s_src RETURNING 1` },
                  ...(extra ? [{ name: 's_more', sql: `SELECT $${offset + COLS.length + 1}::int AS x` }] : []),
                ],
                params: extra ? [...src.params, 1] : src.params,
              };
            },
          ],
          [],
          `colsrc_one_${tag.replace(/\W/g, '_')}`,
        );
      for (const r of ROWS.slice(0, 3)) await one([`${tag}-${r[0]}`, ...r.slice(1)]);
      const written = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE name LIKE $1`, [`${tag}-%`]);
      expect(written.rows[0]!.n).toBe(3);
      // The same name for a statement of another shape would run the first text with the wrong values.
      await expect(one([`${tag}-x`, ...ROWS[0]!.slice(1)], true)).rejects.toThrow(/names statements of \d+ and \d+ parameters/);
    } finally {
      client.release();
    }
  });

  it('names at most a bounded number of texts per process', () => {
    const first = nameOf('SELECT 1 AS col_src_bound_0');
    expect(first).toMatch(/^c\d+_[0-9a-f]{16}$/);
    expect(nameOf('SELECT 1 AS col_src_bound_0')).toBe(first);
    const names = Array.from({ length: 300 }, (_, i) => nameOf(`SELECT 1 AS col_src_bound_${i + 1}`));
    expect(names.filter((n) => n === false).length).toBeGreaterThan(0);
    expect(new Set(names.filter(Boolean)).size).toBe(names.filter(Boolean).length);
  });
});
