// Code mapping in the pipeline (docs/code-mapping.md): per policy, held and released by themselves, the map
// version stamped — through the patient function on the real database.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { createCodeCache, MappingInputSchema, saveMapping, setPolicy, type CodeCache } from '../../shared/codes/index.js';
import { sweepMappingHolds } from '../../shared/ingest/mapping.js';
import { passportPatient, womanWithId } from '../setup/records.js';

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
const patientOf = passportPatient;

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

  it('a record whose codes, once mapped, break a rule of the data set stays held, named, until a corrected version comes', async () => {
    const org = uniqueOrg();
    const id = uniqueId('p');
    // A woman's resident ID number; "NN" is the hospital's own sex code, mapped below to 1 (男).
    const woman = (genderCode: string) => womanWithId(org, id, genderCode);
    expect((await post(woman('1'))).errors).toEqual([expect.objectContaining({ field: 'genderCode', rule: 'idConsistency' })]);
    expect(await post(woman('NN'))).toMatchObject({ result: true, status: 'created', held: ['mapping:sex/NN'] });

    await map(org, 'sex', 'NN', '1');
    await codes.refresh();
    const swept = await sweepMappingHolds(db, codes);
    expect(swept.remapped).toBeGreaterThanOrEqual(1);
    const holds = await db.query(`SELECT kind, target, value FROM record_hold WHERE org_code = $1 AND record_id = $2`, [org, id]);
    expect(holds.rows).toEqual([{ kind: 'rule', target: 'genderCode', value: 'idConsistency' }]);
    expect((await outbox(org, id)).map((o) => o.state)).toEqual(['held']);
    expect((await db.query(`SELECT state FROM record_receipt WHERE org_code = $1 AND record_id = $2`, [org, id])).rows[0].state).toBe('held');
    // Another sweep leaves it as it is: only a new version of the record can release it.
    await sweepMappingHolds(db, codes);
    expect((await outbox(org, id)).map((o) => o.state)).toEqual(['held']);

    const corrected = await post(woman('2'));
    expect(corrected).toMatchObject({ result: true });
    expect(corrected.held).toBeUndefined();
    const rows = await outbox(org, id);
    expect(rows.filter((o) => o.state === 'pending').map((o) => o.payload.genderCode)).toEqual(['2']);
    expect(rows.filter((o) => o.payload.genderCode === '1').map((o) => o.state)).not.toContain('pending');
    expect((await db.query(`SELECT count(*)::int AS n FROM record_hold WHERE org_code = $1 AND record_id = $2`, [org, id])).rows[0].n).toBe(0);
  });

  it('a hospital code longer than the national code is held for its mapping, not refused, and released mapped', async () => {
    const org = uniqueOrg();
    const id = uniqueId('p');
    // 民族: national codes have two digits; this hospital writes HAN.
    const body = await post(patientOf(org, id, { nationCode: 'HAN', nationName: '汉' }));
    expect(body).toMatchObject({ result: true, status: 'created', held: ['mapping:ethnicity/HAN'] });
    const typed = async () => (await db.query('SELECT nation_code, rec_raw FROM emr_patient_info WHERE org_code = $1 AND id = $2', [org, id])).rows[0];
    expect((await typed()).nation_code).toBeNull();
    expect((await typed()).rec_raw.nationCode).toBe('HAN');
    // Longer than any code (IDENTIFIER_MAX) is refused as before, naming the field and both limits.
    expect((await post(patientOf(org, uniqueId('p'), { nationCode: 'H'.repeat(65) }))).errors).toEqual([
      expect.objectContaining({ field: 'nationCode', rule: 'maxLength', message: expect.stringContaining('本院代码长度不能超过 64，国家代码长度不能超过 2') }),
    ]);

    await map(org, 'ethnicity', 'HAN', '01', '汉');
    await codes.refresh();
    await sweepMappingHolds(db, codes);
    const rows = await outbox(org, id);
    expect(rows.map((o) => o.state)).toEqual(['pending']);
    expect(rows[0].payload).toMatchObject({ nationCode: '01', _local: { nationCode: { code: 'HAN', name: '汉' } } });
    expect((await typed()).nation_code).toBe('01');
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
  it('national: a code outside the national list is refused (rule domain): no mapping could release it', async () => {
    const org = uniqueOrg();
    await setPolicy(db, org, 'sex', 'national', actor);
    // Under the default policy the same code is held as unmapped: the policy is seen once it is not.
    const { id, body } = await waitFor(async () => {
      const id = uniqueId('p');
      const b = await post(patientOf(org, id, { genderCode: 'M' }));
      return b.warnings?.some((w: { rule: string }) => w.rule === 'unmapped') ? undefined : { id, body: b };
    });
    expect(body).toMatchObject({ result: false });
    expect(body.errors).toEqual([expect.objectContaining({ field: 'genderCode', rule: 'domain', value: 'M' })]);
    expect(await outbox(org, id)).toEqual([]);
    // A code longer than the national one is refused the same way under this policy.
    expect((await post(patientOf(org, uniqueId('p'), { genderCode: 'MALE' }))).errors).toEqual([
      expect.objectContaining({ field: 'genderCode', rule: 'domain', value: 'MALE' }),
    ]);
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
