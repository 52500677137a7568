// A receipt looked up by its key takes the primary key whatever the statistics know
// (infra/db/0950_receipt_day_partial.sql; docs/opengauss.md "Key lists"): the day index, costed as
// its equal while a table or an org is new to the statistics, would read every receipt of the org
// and resource for each look-up. The day's own questions still use the day index.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planText, testDb, uniqueId } from '../setup/db.js';

const db = testDb();
// A copy of record_receipt with its indexes as migrated, filled but never analysed: what the planner
// sees in a new installation's first minutes (and in every bench run, whose orgs are new).
const copy = `receipt_plan_${uniqueId('t')
  .toLowerCase()
  .replace(/[^a-z0-9]/g, '')}`;
const plan = (sql: string, params: unknown[]) => planText(db, sql, params);

beforeAll(async () => {
  await db.query(`CREATE TABLE ${copy} (LIKE record_receipt INCLUDING INDEXES INCLUDING DEFAULTS)`);
  await db.query(
    `INSERT INTO ${copy} (resource, org_code, record_id, version, state, business_day, received_at, updated_at)
     SELECT 'emrExLabItem', 'ORG1', 'R' || g, 1, 'stored', '2026-12-01', now(), now() FROM generate_series(1, 20000) g`,
  );
});
afterAll(async () => {
  await db.query(`DROP TABLE IF EXISTS ${copy}`);
});

describe('record_receipt look-ups on a table the statistics do not know', () => {
  it('by key, alone or beside a typed row, use the primary key', async () => {
    const one = await plan(`SELECT state FROM ${copy} WHERE resource = $1 AND org_code = $2 AND record_id = $3`, ['emrExLabItem', 'ORG1', 'R1']);
    expect(one).toMatch(/_pkey/);
    expect(one).not.toMatch(/_day|Seq Scan/);
    const anti = await plan(
      `SELECT s.id FROM (VALUES ('ORG1'::varchar, 'R1'::varchar), ('ORG1', 'R2')) AS s(org, id)
        WHERE NOT EXISTS (SELECT 1 FROM ${copy} t WHERE t.resource = 'emrExLabItem' AND t.org_code = s.org AND t.record_id = s.id)`,
      [],
    );
    expect(anti).not.toMatch(/_day|Seq Scan/);
  });

  it("for a day's receipts, use the day index", async () => {
    const day = await plan(`SELECT record_id FROM ${copy} WHERE resource = $1 AND org_code = $2 AND business_day = $3`, ['emrExLabItem', 'ORG1', '2026-12-01']);
    expect(day).toMatch(/_day/);
  });

  it("for a day's receipts written since a time (the day close's late records), probe the (org, day, updated_at) index", async () => {
    // shared/dayclose/index.ts doneCloses; infra/db/0970_receipt_day_updated.sql
    const late = await plan(`SELECT 1 FROM ${copy} r WHERE r.org_code = $1 AND r.business_day = $2 AND r.updated_at > $3 LIMIT 1`, [
      'ORG1',
      '2026-12-01',
      new Date(),
    ]);
    expect(late).toMatch(/business_day_updated_at_idx/);
    expect(late).toMatch(/Index Cond: .*updated_at >/);
    expect(late).not.toMatch(/Seq Scan|Filter:/);
  });

  it("for a day's records released from a hold since a time (late records too), probe the (org, day, released_at) index", async () => {
    // shared/dayclose/index.ts doneCloses; infra/db/0992_receipt_released.sql
    const released = await plan(`SELECT 1 FROM ${copy} r WHERE r.org_code = $1 AND r.business_day = $2 AND r.released_at > $3 LIMIT 1`, [
      'ORG1',
      '2026-12-01',
      new Date(),
    ]);
    expect(released).toMatch(/business_day_released_at_idx/);
    expect(released).toMatch(/Index Cond: .*released_at >/);
    expect(released).not.toMatch(/Seq Scan/);
  });
});
