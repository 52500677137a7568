/**
 * Records as the tests write them: into a staging table as a HIS adapter does (docs/dbsync.md), and a
 * patient sample whose codes the mapping tests can hold without an ID-number rule in the way.
 */
import type pg from 'pg';
import type { Resource } from '../../schemas/resource.js';
import { stagingTable, syncResource, type DbsyncSettings } from '../../shared/dbsync/index.js';
import { sample } from '../../infra/simulators/samples.js';

/** Writes a record into its staging table as a HIS would: every value as text. Its row id. */
export async function stageRecord(db: pg.Pool, r: Resource, rec: Record<string, unknown>): Promise<string> {
  const cols: string[] = [];
  const vals: unknown[] = [];
  for (const [name, v] of Object.entries(rec)) {
    const def = r.fields[name];
    if (!def || v === null || v === undefined) continue;
    cols.push(def.column);
    vals.push(typeof v === 'object' ? JSON.stringify(v) : String(v));
  }
  const res = await db.query<{ row_id: string }>(
    `INSERT INTO ${stagingTable(r)} (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')}) RETURNING row_id`,
    vals,
  );
  return res.rows[0]!.row_id;
}

/**
 * A woman with a resident ID number (its sex digit female): her sex code `genderCode` as sent, so a
 * code mapped to 男 meets the ID-number rule (idConsistency) once mapped.
 */
export const womanWithId = (org: string, id: string, genderCode: string) =>
  passportPatient(org, id, {
    idCardTypeCode: '01',
    idCardTypeName: '居民身份证',
    idCard: '11010519491231002X',
    birthDate: '1949-12-31',
    genderCode,
    genderName: undefined,
  });

/** A patient whose resident ID number is not type 01 (a passport), so a local sex code has no ID rule to meet. */
export const passportPatient = (org: string, id: string, over: Record<string, unknown>) => ({
  ...sample('emrPatientInfo', { orgCode: org, id, seed: 5 }),
  idCardTypeCode: '03',
  idCardTypeName: '护照',
  idCard: 'E1234567',
  ...over,
});

/**
 * A staged row's outcome as the HIS reads it (staging.sync_result), the sync run until it is there
 * (another file's run may hold the table for a moment).
 */
export async function syncedOutcome(
  db: pg.Pool,
  r: Resource,
  rowId: string,
  run: Parameters<typeof syncResource>[2],
): Promise<{ status: string; held: string[] | null }> {
  for (let i = 0; i < 100; i++) {
    await syncResource(db, r, run);
    const res = await db.query(`SELECT status, held FROM staging.sync_result WHERE resource = $1 AND row_id = $2`, [r.name, rowId]);
    if (res.rows[0]) return res.rows[0];
    await new Promise((ok) => setTimeout(ok, 100));
  }
  throw new Error(`row ${rowId} of ${r.name} not taken`);
}

/** A staged row's `held` as the HIS reads it now. */
export const heldNow = async (db: pg.Pool, r: Resource, rowId: string) =>
  (await db.query(`SELECT held FROM staging.sync_result WHERE resource = $1 AND row_id = $2`, [r.name, rowId])).rows[0].held as string[] | null;

/** Database-sync settings of the tests that sync on a database of their own: every org, one batch of 500, no nudges. */
export const syncEveryOrg: DbsyncSettings = {
  batch: 500,
  orgs: '*',
  runMs: 30_000,
  installationOrg: null,
  testOrgs: new Set(),
  pushNudgeUrl: '',
  warningNudgeUrl: '',
};
