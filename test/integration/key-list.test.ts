// Looking records up by (org code, id) in batches (shared/db/sql.ts keyList; docs/opengauss.md
// "Key lists"): the right rows for one key, several orgs and repeated keys, and an index scan per
// org even where the table's statistics are missing — a batch's lock must not cost a scan of the
// table.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyList } from '../../shared/db/sql.js';
import { planText, testDb, uniqueId } from '../setup/db.js';

const db = testDb();
const table = `key_list_${uniqueId('t')
  .toLowerCase()
  .replace(/[^a-z0-9]/g, '')}`;

beforeAll(async () => {
  // Filled after its (empty) statistics were taken: the planner knows nothing of its 6 000 rows.
  await db.query(`CREATE TABLE ${table} (org_code varchar(50) NOT NULL, id varchar(80) NOT NULL, pad text, PRIMARY KEY (org_code, id))`);
  await db.query(`ANALYZE ${table}`);
  await db.query(`INSERT INTO ${table} SELECT 'org' || (g % 3), 'id' || g, repeat('x', 300) FROM generate_series(1, 6000) g`);
});
afterAll(async () => {
  await db.query(`DROP TABLE IF EXISTS ${table}`);
});

async function found(keys: Array<[string, string]>): Promise<string[]> {
  const k = keyList(['t.org_code', 't.id'], keys, 1);
  const res = await db.query<{ org_code: string; id: string }>(`SELECT t.org_code, t.id FROM ${table} t WHERE length(t.id) > $1 AND ${k.sql}`, [
    0,
    ...k.params,
  ]);
  return res.rows.map((r) => `${r.org_code}/${r.id}`).sort();
}

describe('a key list', () => {
  it('finds exactly the keys given: one, several orgs, repeated, and absent ones', async () => {
    expect(await found([['org1', 'id1']])).toEqual(['org1/id1']);
    expect(await found([['org1', 'id2']])).toEqual([]); // id2 belongs to org2
    expect(
      await found([
        ['org1', 'id1'],
        ['org2', 'id2'],
        ['org1', 'id4'],
        ['org1', 'id1'],
        ['org0', 'id3'],
        ['org0', 'id4'], // not org0's
        ['org9', 'id9'],
      ]),
    ).toEqual(['org0/id3', 'org1/id1', 'org1/id4', 'org2/id2']);
  });

  it('takes ids as they are, whatever characters an array literal treats specially', async () => {
    const odd = ['a"b', 'c\\d', '{e,f}', 'NULL', ' g ', "h'i"];
    await db.query(`INSERT INTO ${table} (org_code, id) SELECT 'orgX', unnest($1::varchar[])`, [odd]);
    expect(await found(odd.map((id): [string, string] => ['orgX', id]))).toEqual(odd.map((id) => `orgX/${id}`).sort());
    expect(
      await found([
        ['orgX', 'NULL'],
        ['orgX', 'null'],
        ['orgX', '{e'],
      ]),
    ).toEqual(['orgX/NULL']);
  });

  it('is looked up in the key index, not by scanning the table, though its statistics are missing', async () => {
    const keys = Array.from({ length: 50 }, (_, i): [string, string] => [`org${(i * 7) % 3}`, `id${i * 7 + 6000}`]);
    const k = keyList(['t.org_code', 't.id'], keys, 0);
    const text = await planText(db, `SELECT t.org_code FROM ${table} t WHERE ${k.sql} FOR UPDATE`, k.params);
    expect(text).not.toMatch(/Seq Scan/);
    expect(text).toMatch(new RegExp(`Index Scan using ${table}_pkey|Bitmap Index Scan on ${table}_pkey`));
  });
});
