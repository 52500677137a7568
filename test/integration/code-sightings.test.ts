// Sightings of a local code (docs/code-mapping.md, the unmapped queue): one record with a code is one
// sighting, held or not; holding and releasing it change the records held, never the count — through the
// patient function, the push run's mapping sweep and the real database.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { sample } from '../../infra/simulators/samples.js';
import { createCodeCache, MappingInputSchema, saveMapping, type CodeCache } from '../../shared/codes/index.js';
import { sweepMappingHolds } from '../../shared/ingest/mapping.js';

process.env.DATABASE_URL = databaseUrl();
process.env.HIS_ALLOW = '127.0.0.1/8';
process.env.CODE_REFRESH_MS = '100';
process.env.CODE_FLUSH_MS = '100';
const { default: patient } = await import('../../functions/patient/handler.js');
const db = testDb({ max: 4 });
let codes: CodeCache;

beforeAll(async () => {
  await patient.init?.();
  codes = await createCodeCache(db, { refreshMs: 100, flushMs: 100 });
});
afterAll(async () => {
  await codes.close();
  await patient.close?.();
});

const post = async (body: unknown) =>
  (
    await patient.app.request('/emrPatientInfo', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': '127.0.0.1' },
      body: JSON.stringify(body),
    })
  ).json();
// A patient whose ID document is a passport, so a local sex code has no ID-number rule to meet.
const patientOf = (org: string, id: string, over: Record<string, unknown>) => ({
  ...sample('emrPatientInfo', { orgCode: org, id, seed: 5 }),
  idCardTypeCode: '03',
  idCardTypeName: '护照',
  idCard: 'E1234567',
  ...over,
});
const observed = async (org: string, code: string) =>
  (await db.query(`SELECT seen_count, records_held FROM code_observed WHERE org_code = $1 AND domain = 'sex' AND local_code = $2`, [org, code])).rows[0] as
    | { seen_count: string; records_held: number }
    | undefined;
const until = async <T>(f: () => Promise<T>, ok: (v: T) => boolean, ms = 8000): Promise<T> => {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe('code sightings', () => {
  it('one held record is one sighting and one record held; five are five; the release changes only the records held', async () => {
    const org = uniqueOrg();
    const body = await post(patientOf(org, uniqueId('p'), { genderCode: 'F9', genderName: '女' }));
    expect(body.held).toEqual(['mapping:sex/F9']);
    expect(
      await until(
        () => observed(org, 'F9'),
        (r) => r?.records_held === 1,
      ),
    ).toEqual({ seen_count: '1', records_held: 1 });
    // Quiet for a few flushes: nothing more is written for the one record.
    await new Promise((r) => setTimeout(r, 400));
    expect(await observed(org, 'F9')).toEqual({ seen_count: '1', records_held: 1 });

    for (let i = 0; i < 4; i++) await post(patientOf(org, uniqueId('p'), { genderCode: 'F9' }));
    expect(
      await until(
        () => observed(org, 'F9'),
        (r) => r?.records_held === 5,
      ),
    ).toEqual({ seen_count: '5', records_held: 5 });

    await saveMapping(db, MappingInputSchema.parse({ org, domain: 'sex', localCode: 'F9', nationalCode: '2' }), { by: '测试员' });
    await codes.refresh();
    expect((await sweepMappingHolds(db, codes)).released).toBeGreaterThanOrEqual(5);
    await codes.flush();
    expect(
      await until(
        () => observed(org, 'F9'),
        (r) => r?.records_held === 0,
      ),
    ).toEqual({ seen_count: '5', records_held: 0 });
  });

  it('a record held, then replaced by a version with a national code: one sighting of the local code, released', async () => {
    const org = uniqueOrg();
    const id = uniqueId('p');
    expect((await post(patientOf(org, id, { genderCode: 'M9' }))).held).toEqual(['mapping:sex/M9']);
    expect((await post(patientOf(org, id, { genderCode: '1', genderName: '男性' }))).held).toBeUndefined();
    expect(
      await until(
        () => observed(org, 'M9'),
        (r) => r !== undefined && r.records_held === 0 && r.seen_count === '1',
      ),
    ).toEqual({
      seen_count: '1',
      records_held: 0,
    });
  });
});
