// A typed row looked up by key (a batch's row lock, a child's parent) takes the primary key whatever
// the statistics know (docs/opengauss.md "Key lists"): the (org_code, …) indexes of parents and days,
// costed as its equal while a table or an org is new to the statistics, would read every row of the
// org for each look-up. The look-ups those indexes are for still use them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyList } from '../../shared/db/sql.js';
import { planText, testDb, uniqueId } from '../setup/db.js';

const db = testDb();
// Copies of two typed tables with their indexes as migrated, filled but never analysed.
const tag = uniqueId('t')
  .toLowerCase()
  .replace(/[^a-z0-9]/g, '');
const items = `typed_plan_items_${tag}`;
const reports = `typed_plan_reports_${tag}`;
const plan = (sql: string, params: unknown[]) => planText(db, sql, params);

beforeAll(async () => {
  await db.query(`CREATE TABLE ${items} (LIKE emr_ex_lab_item INCLUDING INDEXES INCLUDING DEFAULTS)`);
  await db.query(`CREATE TABLE ${reports} (LIKE emr_ex_lab INCLUDING INDEXES INCLUDING DEFAULTS)`);
  const cols = async (t: string) =>
    (
      await db.query<{ column_name: string; data_type: string; is_nullable: string }>(
        `SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_name = $1 AND column_name <> ALL($2::varchar[])`,
        [
          t,
          [
            'org_code',
            'id',
            'ex_lab_id',
            'operation_time',
            'report_time',
            'rec_version',
            'rec_hash',
            'rec_raw',
            'rec_retired',
            'rec_test',
            'rec_received_at',
            'rec_updated_at',
          ],
        ],
      )
    ).rows.filter((c) => c.is_nullable === 'NO');
  // Only the columns a row cannot lack are filled, beside the keys and the indexed ones.
  expect(await cols(items)).toEqual([]);
  expect(await cols(reports)).toEqual([]);
  const book = `rec_version, rec_hash, rec_raw, rec_retired, rec_test, rec_received_at, rec_updated_at`;
  const bookVals = `1, 'h', '{}'::jsonb, false, false, now(), now()`;
  await db.query(
    `INSERT INTO ${items} (org_code, id, ex_lab_id, ${book}) SELECT 'ORG1', 'I' || g, 'L' || (g / 10), ${bookVals} FROM generate_series(1, 20000) g`,
  );
  await db.query(`INSERT INTO ${reports} (org_code, id, ${book}) SELECT 'ORG1', 'L' || g, ${bookVals} FROM generate_series(1, 2000) g`);
});
afterAll(async () => {
  await db.query(`DROP TABLE IF EXISTS ${items}`);
  await db.query(`DROP TABLE IF EXISTS ${reports}`);
});

describe('typed rows looked up on tables the statistics do not know', () => {
  it('by key, one or a batch, take the primary key', async () => {
    const keys = Array.from({ length: 50 }, (_, i): [string, string] => ['ORG1', `I${i + 30000}`]);
    for (const [table, ks] of [
      [items, keys],
      [reports, keys.map(([o, id]): [string, string] => [o, id.replace('I', 'L')])],
      [items, keys.slice(0, 1)],
    ] as const) {
      const k = keyList(['t.org_code', 't.id'], ks, 0);
      const p = await plan(`SELECT t.org_code, t.id FROM ${table} t WHERE ${k.sql} FOR UPDATE`, k.params);
      expect(p, p).toMatch(/_pkey/);
      expect(p, p).not.toMatch(/_idx|Seq Scan/);
    }
  });

  it("by a parent's id, take the parent index", async () => {
    const p = await plan(`SELECT id FROM ${items} WHERE org_code = $1 AND ex_lab_id = $2`, ['ORG1', 'L5']);
    expect(p, p).toMatch(/ex_lab_id_idx/);
  });

  it("by a day's range of business times, take the day index", async () => {
    const p = await plan(`SELECT id FROM ${items} WHERE org_code = $1 AND operation_time >= $2 AND operation_time < $3`, [
      'ORG1',
      '2026-12-01T00:00:00+08:00',
      '2026-12-02T00:00:00+08:00',
    ]);
    expect(p, p).toMatch(/operation_time_idx/);
  });
});
