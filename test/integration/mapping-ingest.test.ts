// Code mapping in the pipeline (docs/code-mapping.md): per policy, held and released by themselves, the map
// version stamped — through the patient function on the real database.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { sample } from '../../infra/simulators/samples.js';
import { createCodeCache, MappingInputSchema, saveMapping, setPolicy, type CodeCache } from '../../shared/codes/index.js';
import { sweepMappingHolds } from '../../shared/ingest/mapping.js';

process.env.DATABASE_URL = databaseUrl();
process.env.HIS_ALLOW = '127.0.0.1/8';
process.env.CODE_REFRESH_MS = '100';
const { default: patient } = await import('../../functions/patient/handler.js');
const db = testDb({ max: 4 });
let codes: CodeCache;
const actor = { by: '测试员' };

beforeAll(async () => {
  await patient.init?.();
  codes = await createCodeCache(db, { refreshMs: 100 });
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
const outbox = async (org: string, id: string) =>
  (await db.query(`SELECT state, payload FROM outbox WHERE destination = 'national' AND org_code = $1 AND record_id = $2 ORDER BY outbox_id`, [org, id])).rows;
const map = (org: string, domain: string, localCode: string, nationalCode: string, localName?: string) =>
  saveMapping(db, MappingInputSchema.parse({ org, domain, localCode, nationalCode, localName }), actor);
const waitFor = async <T>(f: () => Promise<T | undefined>, ms = 5000): Promise<T> => {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('not in time');
    await new Promise((r) => setTimeout(r, 50));
  }
};
// A patient whose resident ID number is not type 01, so a local sex code has no ID rule to meet.
const patientOf = (org: string, id: string, over: Record<string, unknown>) => ({
  ...sample('emrPatientInfo', { orgCode: org, id, seed: 5 }),
  idCardTypeCode: '03',
  idCardTypeName: '护照',
  idCard: 'E1234567',
  ...over,
});

describe('policy auto (the default)', () => {
  it('holds a record with an unmapped local code, queues the code, and releases it re-mapped once a mapping exists', async () => {
    const org = uniqueOrg();
    const id = uniqueId('p');
    const body = await post(patientOf(org, id, { genderCode: 'M', genderName: '男' }));
    expect(body).toMatchObject({ result: true, status: 'created', held: ['mapping:sex/M'] });
    expect(body.warnings).toEqual(expect.arrayContaining([expect.objectContaining({ field: 'genderCode', rule: 'unmapped' })]));
    expect((await outbox(org, id)).map((o) => o.state)).toEqual(['held']);
    const observed = await waitFor(async () => {
      const r = await db.query(`SELECT local_name, records_held FROM code_observed WHERE org_code = $1 AND domain = 'sex' AND local_code = 'M'`, [org]);
      return r.rows[0]?.records_held === 1 ? r.rows[0] : undefined;
    });
    expect(observed.local_name).toBe('男');

    await map(org, 'sex', 'M', '1', '男');
    await codes.refresh();
    const swept = await sweepMappingHolds(db, codes);
    expect(swept.released).toBeGreaterThanOrEqual(1);
    const rows = await outbox(org, id);
    expect(rows.map((o) => o.state)).toEqual(['pending']);
    expect(rows[0].payload).toMatchObject({ genderCode: '1', _local: { genderCode: { code: 'M', name: '男' } } });
    expect(rows[0].payload._mapVersion).toBeGreaterThanOrEqual(1);
    const row = (await db.query('SELECT gender_code, gender_name FROM emr_patient_info WHERE org_code = $1 AND id = $2', [org, id])).rows[0];
    expect(row.gender_code).toBe('1');
    expect((await db.query(`SELECT state FROM record_receipt WHERE org_code = $1 AND record_id = $2`, [org, id])).rows[0].state).toBe('stored');
    await codes.flush();
    await waitFor(async () => {
      const r = await db.query(`SELECT records_held FROM code_observed WHERE org_code = $1 AND domain = 'sex' AND local_code = 'M'`, [org]);
      return r.rows[0]?.records_held === 0 ? true : undefined;
    });
  });

  it('maps a local code that has a mapping on the way in, keeps what was sent, and stamps the map version', async () => {
    const org = uniqueOrg();
    await map(org, 'sex', 'F', '2', '女');
    // The receive function's own cache polls every 100 ms here; on a loaded machine a poll can come
    // late, so records are sent (each its own id) until one finds the mapping — at most 5 s.
    const { id, body } = await waitFor(async () => {
      const id = uniqueId('p');
      const body = await post(patientOf(org, id, { genderCode: 'F', genderName: '女' }));
      return body.held === undefined ? { id, body } : undefined;
    });
    expect(body.held).toBeUndefined();
    const [row] = await outbox(org, id);
    expect(row.state).toBe('pending');
    expect(row.payload).toMatchObject({ genderCode: '2', genderName: '女性', _local: { genderCode: { code: 'F', name: '女' } } });
    expect(row.payload._mapVersion).toBeGreaterThanOrEqual(1);
  });

  it('a national code is kept as it is, and an unrelated mapping change is no new version', async () => {
    const org = uniqueOrg();
    const id = uniqueId('p');
    const rec = patientOf(org, id, { genderCode: '1', genderName: '男性' });
    expect((await post(rec)).status).toBe('created');
    await map(org, 'ethnicity', 'HAN', '01');
    await new Promise((r) => setTimeout(r, 300));
    expect((await post(rec)).status).toBe('unchanged');
  });
});

// A policy or mapping just saved reaches the receive function's cache at its next poll (every 100 ms
// here, later on a loaded machine): records are sent, each its own id, until one is judged by it — at most 5 s.
const sentOnceSeen = (org: string, over: Record<string, unknown>, seen: (body: { held?: string[]; warnings?: Array<{ rule: string }> }) => boolean) =>
  waitFor(async () => {
    const body = await post(patientOf(org, uniqueId('p'), over));
    return seen(body) ? body : undefined;
  });

describe('policies national and local', () => {
  it('national: a code outside the national list is held as unknown', async () => {
    const org = uniqueOrg();
    await setPolicy(db, org, 'sex', 'national', actor);
    // Under the default policy the same code is held as unmapped: the policy is seen once it is not.
    const body = await sentOnceSeen(org, { genderCode: 'M' }, (b) => !b.warnings?.some((w) => w.rule === 'unmapped'));
    expect(body.held).toEqual(['mapping:sex/M']);
    expect(body.warnings).toEqual(expect.arrayContaining([expect.objectContaining({ field: 'genderCode', rule: 'unknownCode' })]));
    expect((await post(patientOf(org, uniqueId('p'), { genderCode: '2', genderName: '女性' }))).held).toBeUndefined();
  });

  it('local: even a national-looking code must be mapped', async () => {
    const org = uniqueOrg();
    await setPolicy(db, org, 'sex', 'local', actor);
    // Under the default policy a national code is not held: the policy is seen once it is.
    expect((await sentOnceSeen(org, { genderCode: '1' }, (b) => b.held !== undefined)).held).toEqual(['mapping:sex/1']);
    await map(org, 'sex', '1', '1');
    expect((await sentOnceSeen(org, { genderCode: '1' }, (b) => b.held === undefined)).held).toBeUndefined();
  });
});
