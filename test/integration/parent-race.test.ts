// A child and its parent written at the same moment by two transactions (docs/ingest.md "Parents and
// children"): without a common lock the child can find no parent (held) while the parent finds no
// waiting child to release — a child held forever behind a stored parent, acknowledged and never
// forwarded. The link lock makes one see the other: after every race no child is left held whose
// parent is stored.
import { describe, expect, it } from 'vitest';
import { sample } from '../../infra/simulators/samples.js';
import { resources } from '../../schemas/index.js';
import { upsertMany, type IngestContext } from '../../shared/ingest/index.js';
import { testDb, uniqueId, uniqueOrg } from '../setup/db.js';

const db = testDb({ max: 24 });
const ctx = (): IngestContext => ({ callId: null, test: false, now: new Date() });

describe('a parent and its child at the same moment', () => {
  it('never leaves the child held behind a stored parent', { timeout: 120_000 }, async () => {
    const org = uniqueOrg();
    // The window made wide on purpose: the child's transaction pauses 300 ms after writing its wait
    // (a trigger on this org's rows only), while its parent is written and committed meanwhile.
    const fn = `slow_wait_${org}`;
    await db.query(
      `CREATE FUNCTION ${fn}() RETURNS trigger AS $$ BEGIN IF NEW.org_code = '${org}' THEN PERFORM pg_sleep(0.3); END IF; RETURN NEW; END $$ LANGUAGE plpgsql`,
    );
    await db.query(`CREATE TRIGGER ${fn} AFTER INSERT ON record_parent_wait FOR EACH ROW EXECUTE PROCEDURE ${fn}()`);
    try {
      await race(org);
    } finally {
      await db.query(`DROP TRIGGER ${fn} ON record_parent_wait`);
      await db.query(`DROP FUNCTION ${fn}()`);
    }
  });
});

async function race(org: string): Promise<void> {
  {
    const pairs = Array.from({ length: 8 }, (_, i) => {
      const pid = uniqueId('p');
      return {
        pid,
        patient: sample('emrPatientInfo', { orgCode: org, id: pid, seed: i + 1 }),
        visit: sample('emrActivityInfo', { orgCode: org, id: uniqueId('dx'), patientId: pid, seed: i + 1 }),
      };
    });
    // Each pair on its own connections: the child's transaction first, its parent while it sleeps.
    await Promise.all(
      pairs.map(async (p, i) => {
        const child = upsertMany(db, resources.emrActivityInfo!, [p.visit], ctx());
        // The parent arrives while the child's transaction sleeps on its wait row.
        const parent = new Promise((r) => setTimeout(r, 100 + (i % 3) * 20)).then(() => upsertMany(db, resources.emrPatientInfo!, [p.patient], ctx()));
        const [c, q] = await Promise.all([child, parent]);
        expect(c[0]!.ok && q[0]!.ok).toBe(true);
      }),
    );
    const stuck = await db.query<{ record_id: string }>(
      `SELECT o.record_id FROM outbox o WHERE o.org_code = $1 AND o.resource = 'emrActivityInfo' AND o.state = 'held'
          AND EXISTS (SELECT 1 FROM emr_patient_info p WHERE p.org_code = o.org_code AND p.id = o.payload->>'patientId')`,
      [org],
    );
    expect(stuck.rows).toEqual([]);
  }
}
