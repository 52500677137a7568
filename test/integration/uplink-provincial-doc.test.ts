// docs/uplink.md "Enabling the provincial platform": the SQL it gives a hospital's operator runs as written
// and makes records accepted afterwards queue for the provincial platform — in a transaction rolled back, so
// the shared test database keeps its destinations.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { enqueue } from '../../shared/outbox/index.js';
import type { Tx } from '../../shared/db/index.js';

const db = testDb();

describe('enabling the provincial platform by hand (docs/uplink.md §8)', () => {
  it('the documented INSERT (or UPDATE, when the row exists) enables it, and the next record is queued for it', async () => {
    const doc = readFileSync('docs/uplink.md', 'utf8');
    const block = /### Enabling the provincial platform[\s\S]*?```sql\n([\s\S]*?)```/.exec(doc)![1]!;
    const [insert, update] = block
      .split(/;\s*\n/)
      .map((x) => x.replace(/^\s*--.*$/gm, '').trim())
      .filter(Boolean);
    expect(insert).toMatch(/^INSERT INTO uplink_destination/);
    expect(update).toMatch(/^UPDATE uplink_destination/);

    const client = await db.connect();
    try {
      await client.query('BEGIN');
      const before = await client.query(`SELECT 1 FROM uplink_destination WHERE name = 'provincial'`);
      if (before.rowCount) {
        await client.query(`UPDATE uplink_destination SET enabled = false WHERE name = 'provincial'`);
        await client.query(update!);
      } else await client.query(insert!);
      expect((await client.query(`SELECT kind, enabled, resources, accepts_test FROM uplink_destination WHERE name = 'provincial'`)).rows).toEqual([
        { kind: 'provincial', enabled: true, resources: null, accepts_test: false },
      ]);
      const org = uniqueOrg();
      const id = uniqueId('P');
      await enqueue(client as unknown as Tx, [
        { resource: 'emrPatientInfo', orgCode: org, id, version: 1, op: 'upsert', deadline: 'realtime', test: false, held: false, payload: { id } },
      ]);
      const rows = await client.query(`SELECT destination FROM outbox WHERE org_code = $1 AND record_id = $2 ORDER BY destination`, [org, id]);
      expect(rows.rows.map((r) => r.destination)).toEqual(expect.arrayContaining(['national', 'provincial']));
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });
});
