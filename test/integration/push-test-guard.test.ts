// The push path's own guard (shared/uplink/push.ts): a test-mode row is never sent to a destination
// that takes no test records, even when one sits in its queue (enqueue is the first guard; this
// one holds when a destination stopped taking test records after rows were queued).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { startPlatformSimulator, type PlatformHandle } from '../../infra/simulators/platform.js';
import { pushDestination } from '../../shared/uplink/push.js';
import { destinationFromEnv, type Destination } from '../../shared/uplink/config.js';
import { upsertRecord } from '../../shared/ingest/index.js';
import { emrPatientInfo } from '../../schemas/index.js';
import { samplePatient } from '../../infra/simulators/his.js';

const db = testDb();
let sim: PlatformHandle;
const names: string[] = [];

async function destination(acceptsTest: boolean): Promise<string> {
  const name = uniqueId('tg').replace(/-/g, '_').slice(0, 40);
  await db.query(`INSERT INTO uplink_destination (name, kind, enabled, accepts_test) VALUES ($1, 'national', true, $2)`, [name, acceptsTest]);
  names.push(name);
  return name;
}
const to = (name: string, acceptsTest: boolean): Destination =>
  destinationFromEnv({ name, kind: 'national', resources: null, accepts_test: acceptsTest }, { [`${name.toUpperCase()}_URL`]: sim.url }, () => undefined);
const ctx = (test: boolean) => ({ callId: null, test, now: new Date() });

beforeAll(async () => {
  sim = await startPlatformSimulator({ role: 'national' });
});
afterAll(async () => {
  await db.query(`UPDATE uplink_destination SET enabled = false WHERE name = ANY($1::varchar[])`, [names]);
  await sim.close();
});

describe('a test record and a destination that takes none', () => {
  it('is skipped, never sent, while the live record of the same batch goes', async () => {
    // Queued while the destination still took test records, then it became a live platform.
    const dest = await destination(true);
    const org = uniqueOrg();
    const test = samplePatient({ orgCode: org, id: uniqueId('t') });
    const live = samplePatient({ orgCode: org, id: uniqueId('l') });
    await upsertRecord(db, emrPatientInfo, test, ctx(true));
    await upsertRecord(db, emrPatientInfo, live, ctx(false));
    await db.query(`UPDATE uplink_destination SET accepts_test = false WHERE name = $1`, [dest]);

    // Other test files write to every enabled destination meanwhile: counts are at least ours.
    const r = await pushDestination(db, to(dest, false));
    expect(r).toMatchObject({ failed: 0 });
    expect(r.sent).toBeGreaterThanOrEqual(1);
    expect(r.skipped).toBeGreaterThanOrEqual(1);
    expect(
      sim
        .records()
        .filter((x) => x.orgCode === org)
        .map((x) => x.id),
    ).toEqual([live.id]);
    const rows = await db.query<{ record_id: string; state: string; test_mode: boolean }>(
      `SELECT record_id, state, test_mode FROM outbox WHERE destination = $1 AND org_code = $2 ORDER BY outbox_id`,
      [dest, org],
    );
    expect(rows.rows).toEqual([
      { record_id: test.id, state: 'skipped', test_mode: true },
      { record_id: live.id, state: 'sent', test_mode: false },
    ]);
  });

  it('is sent, marked test, to a destination that takes test records', async () => {
    const dest = await destination(true);
    const org = uniqueOrg();
    const test = samplePatient({ orgCode: org, id: uniqueId('t') });
    await upsertRecord(db, emrPatientInfo, test, ctx(true));
    const r = await pushDestination(db, to(dest, true));
    expect(r).toMatchObject({ failed: 0, skipped: 0 });
    expect(sim.records().filter((x) => x.orgCode === org)).toEqual([expect.objectContaining({ id: test.id, test: true })]);
  });
});
