// The day close on a restored database (docs/backup.md "Versions after a restore"): the lost front
// closed the day again after the archive, so the platform holds the day's documents at versions the
// archive does not know; the restored front's close of that day starts above the database's version
// base, never at those versions again (they would be answered `duplicate` while the ledger says done).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { privateDatabase, uniqueId, uniqueOrg } from '../setup/db.js';
import { upsertMany } from '../../shared/ingest/index.js';
import { resources } from '../../schemas/index.js';
import { sample } from '../../infra/simulators/samples.js';
import { closeDay, SUMMARY_RESOURCE, type CloseOptions } from '../../shared/dayclose/index.js';
import { RESTORE_VERSION_GAP } from '../../shared/ingest/restore-gap.js';

const DAY = '2025-06-10';
const AT = new Date('2025-06-11T08:00:00+08:00');
const opts: CloseOptions = { timeZone: 'Asia/Shanghai', trigger: 'manual' };
let priv: Awaited<ReturnType<typeof privateDatabase>>;

beforeAll(async () => {
  priv = await privateDatabase('dayclose_restored');
}, 60_000);

afterAll(async () => {
  await priv?.drop();
});

/** An outpatient visit of the day for a new patient, through the real pipeline. */
async function visit(db: pg.Pool, org: string, n: number): Promise<void> {
  const patientId = uniqueId('P');
  const patient = sample('emrPatientInfo', { orgCode: org, id: patientId, seed: n, at: AT });
  const act = {
    ...sample('emrActivityInfo', { orgCode: org, id: uniqueId('v'), seed: n, at: AT, patientId }),
    patientId,
    serialNumber: uniqueId('MZ'),
    activityTypeCode: '1',
    activityTime: `${DAY} 10:00:00`,
    diagnoseTime: `${DAY} 10:00:00`,
  };
  for (const [resource, rec] of [
    ['emrPatientInfo', patient],
    ['emrActivityInfo', act],
  ] as const) {
    const res = await upsertMany(db, resources[resource]!, [rec], { callId: null, test: false, now: new Date() });
    expect(res[0]!.ok, JSON.stringify(res[0])).toBe(true);
  }
}

describe('the day close on a restored database', () => {
  it('closes a day the archive holds at v1 as version base + 1, not v2', { timeout: 60_000 }, async () => {
    const org = uniqueOrg();
    // The front before its archive: the day closed once (v1).
    await visit(priv.db, org, 1);
    const archived = await closeDay(priv.db, org, DAY, 'T+1', opts);
    expect(archived).toMatchObject({ status: 'done', summaryVersion: 1 });
    // The restore moves the version base on (shared/backup/restore.ts); the restored front starts on it.
    await priv.db.query('INSERT INTO record_version_base (id, base) VALUES (1, $1)', [RESTORE_VERSION_GAP]);
    const restored = new pg.Pool({ connectionString: priv.url, max: 3 });
    try {
      // The HIS's resend brings a visit the lost front had (its close of the day was v2 at the platform).
      await visit(restored, org, 2);
      const again = await closeDay(restored, org, DAY, 'T+1', opts);
      expect(again).toMatchObject({ status: 'done', changed: { summary: true } });
      expect(again.summaryVersion).toBe(RESTORE_VERSION_GAP + 1);
      const queued = await restored.query<{ version: number }>('SELECT version FROM outbox WHERE resource = $1 AND org_code = $2 ORDER BY version', [
        SUMMARY_RESOURCE,
        org,
      ]);
      expect(queued.rows.map((r) => r.version).at(-1)).toBe(RESTORE_VERSION_GAP + 1);
    } finally {
      await restored.end();
    }
  });
});
