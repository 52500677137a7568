// A child and its parent written at the same moment by two transactions (docs/ingest.md "Parents and
// children"): without a common lock the child can find no parent (held) while the parent finds no
// waiting child to release — a child held forever behind a stored parent, acknowledged and never
// forwarded. The link lock makes one see the other: after every race no child is left held whose
// parent is stored.
import { describe, expect, it } from 'vitest';
import { sample } from '../../infra/simulators/samples.js';
import { resources } from '../../schemas/index.js';
import { upsertMany, type IngestContext } from '../../shared/ingest/index.js';
import { lockLinks } from '../../shared/ingest/store.js';
import { testDb, uniqueId, uniqueOrg } from '../setup/db.js';

const db = testDb({ max: 24 });
const ctx = (): IngestContext => ({ callId: null, test: false, now: new Date() });

describe('a parent and its child at the same moment', () => {
  it('never leaves the child held behind a stored parent, nor a grandchild behind a released parent', { timeout: 120_000 }, async () => {
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
      await cascade(org);
    } finally {
      await db.query(`DROP TRIGGER ${fn} ON record_parent_wait`);
      await db.query(`DROP FUNCTION ${fn}()`);
    }
  });

  it('children of one parent do not wait for each other; the parent waits for them', { timeout: 30_000 }, async () => {
    const org = uniqueOrg();
    const pid = uniqueId('p');
    const dxId = uniqueId('dx');
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    // Another child's transaction in progress, holding the patient's link as a child holds it.
    const holder = await db.connect();
    try {
      await holder.query('BEGIN');
      await lockLinks(holder, [['emrPatientInfo', org, pid, 'shared']]);
      const dx = upsertMany(db, resources.emrActivityInfo!, [sample('emrActivityInfo', { orgCode: org, id: dxId, patientId: pid, seed: 5 })], ctx());
      expect(await Promise.race([dx.then(() => 'written'), sleep(5_000).then(() => 'blocked')])).toBe('written');
      // The patient's writer takes the link exclusively: it waits for the child's transaction.
      const patient = upsertMany(db, resources.emrPatientInfo!, [sample('emrPatientInfo', { orgCode: org, id: pid, seed: 5 })], ctx());
      expect(await Promise.race([patient.then(() => 'written'), sleep(500).then(() => 'waiting')])).toBe('waiting');
      await holder.query('COMMIT');
      const [p] = await patient;
      expect(p!.ok).toBe(true);
    } finally {
      holder.release();
    }
    // The diagnosis, held for its patient, was released by it.
    const receipt = await db.query<{ state: string }>(
      `SELECT state FROM record_receipt WHERE resource = 'emrActivityInfo' AND org_code = $1 AND record_id = $2`,
      [org, dxId],
    );
    expect(receipt.rows).toEqual([{ state: 'stored' }]);
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

/**
 * The same race one level down: a report header held for its patient, its item arriving while the
 * patient's arrival releases the header and, behind it, the header's waiting children. The item
 * finds its header still held (the patient's transaction has not committed), so it waits; the
 * release, unless it takes the header's link lock too, finds no waiting item and leaves it held
 * behind a stored header.
 */
async function cascade(org: string): Promise<void> {
  const chains = Array.from({ length: 8 }, (_, i) => {
    const pid = uniqueId('p');
    const hid = uniqueId('ec');
    return {
      patient: sample('emrPatientInfo', { orgCode: org, id: pid, seed: i + 11 }),
      header: sample('emrExClinical', { orgCode: org, id: hid, patientId: pid, seed: i + 11 }),
      item: sample('emrExClinicalItem', { orgCode: org, id: uniqueId('eci'), patientId: pid, parentId: hid, seed: i + 11 }),
    };
  });
  // The headers first: each is stored and held, waiting for its patient.
  for (const c of chains) expect((await upsertMany(db, resources.emrExClinical!, [c.header], ctx()))[0]!.ok).toBe(true);
  await Promise.all(
    chains.map(async (c, i) => {
      // The item's transaction sleeps on its wait row while the patient arrives and releases the header.
      const item = upsertMany(db, resources.emrExClinicalItem!, [c.item], ctx());
      const patient = new Promise((r) => setTimeout(r, 100 + (i % 3) * 20)).then(() => upsertMany(db, resources.emrPatientInfo!, [c.patient], ctx()));
      const [a, b] = await Promise.all([item, patient]);
      expect(a[0]!.ok && b[0]!.ok).toBe(true);
    }),
  );
  const headers = await db.query<{ n: string }>(`SELECT count(*) AS n FROM outbox WHERE org_code = $1 AND resource = 'emrExClinical' AND state = 'held'`, [
    org,
  ]);
  expect(headers.rows[0]!.n).toBe('0');
  const stuck = await db.query<{ record_id: string }>(
    `SELECT o.record_id FROM outbox o WHERE o.org_code = $1 AND o.resource = 'emrExClinicalItem' AND o.state = 'held'`,
    [org],
  );
  expect(stuck.rows).toEqual([]);
}
