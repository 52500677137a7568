// The org of a record that names none comes from its parent, looked up by the parent's id alone
// (shared/ingest/resolve.ts): every parent table has an index on id, so the look-up does not read the
// whole table (infra/db/0041_parent_ids.sql), and the planner takes it.
import { describe, expect, it } from 'vitest';
import { resources } from '../../schemas/index.js';
import { testDb } from '../setup/db.js';

const db = testDb();
const parentTables = [...new Set(Object.values(resources).flatMap((r) => r.parents.map((p) => resources[p.resource]!.table)))].sort();

describe('the look-up of a parent by its id', () => {
  it('has an index led by id on every parent table', async () => {
    expect(parentTables).toEqual(['emr_ex_clinical', 'emr_ex_lab', 'emr_order', 'emr_patient_info']);
    for (const table of parentTables) {
      const defs = (await db.query<{ indexdef: string }>('SELECT indexdef FROM pg_indexes WHERE tablename = $1', [table])).rows.map((r) => r.indexdef);
      expect(
        defs.some((d) => /\(id\)$/.test(d)),
        `${table}: ${defs.join('; ')}`,
      ).toBe(true);
    }
  });

  it('is planned on that index, not on a read of the whole table or key', async () => {
    const c = await db.connect();
    try {
      await c.query('BEGIN');
      // On a test table of a few rows a scan is cheapest; what matters is that an index on id is usable.
      await c.query('SET LOCAL enable_seqscan = off');
      for (const table of parentTables) {
        const plan = (await c.query(`EXPLAIN SELECT org_code, id FROM ${table} WHERE id = ANY($1::varchar[])`, [['x', 'y']])).rows
          .map((r) => r['QUERY PLAN'])
          .join('\n');
        expect(plan, table).toContain(`${table}_id`);
      }
    } finally {
      await c.query('ROLLBACK');
      c.release();
    }
  });
});
