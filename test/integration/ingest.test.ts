// The ingest pipeline through the patient function's Hono app (no port), on the real test database.
import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import { databaseUrl, testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { samplePatient } from '../../infra/simulators/his.js';
import { keyIdOf, pii } from '../../shared/pii/index.js';

process.env.DATABASE_URL = databaseUrl();
process.env.HIS_ALLOW = '127.0.0.1/8,::1/128';
const { default: patient } = await import('../../functions/patient/handler.js');

const db = testDb();
const LOOPBACK = { 'x-forwarded-for': '127.0.0.1' };

beforeAll(async () => patient.init?.());
afterAll(async () => patient.close?.());

function post(body: unknown, headers: Record<string, string> = {}, path = '/emrPatientInfo') {
  return patient.app.request(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...LOOPBACK, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function counts(org: string, id: string) {
  const q = async (sql: string) => Number((await db.query(sql, [org, id])).rows[0].n);
  return {
    rows: await q('SELECT count(*) AS n FROM emr_patient_info WHERE org_code = $1 AND id = $2'),
    history: await q(`SELECT count(*) AS n FROM record_history WHERE resource = 'emrPatientInfo' AND org_code = $1 AND record_id = $2`),
    // Only the national platform's rows: other test files enable destinations of their own meanwhile.
    outbox: await q(`SELECT count(*) AS n FROM outbox WHERE destination = 'national' AND resource = 'emrPatientInfo' AND org_code = $1 AND record_id = $2`),
  };
}

describe('a valid record', () => {
  it('is stored with its history and an outbox row, and answered in the adapters’ shape', async () => {
    const org = uniqueOrg();
    const id = uniqueId('p');
    const rec = samplePatient({ orgCode: org, id, seed: 7 });
    const res = await post(rec);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ result: true, id, errorCode: null, errorName: null, status: 'created', version: 1 });
    expect(await counts(org, id)).toEqual({ rows: 1, history: 1, outbox: 1 });
    const row = (
      await db.query('SELECT patient_name, id_card, birth_date, operation_time, rec_lateness_s FROM emr_patient_info WHERE org_code = $1 AND id = $2', [
        org,
        id,
      ])
    ).rows[0];
    // Stored sealed under a key id (docs/keys.md), the same value once opened.
    expect(keyIdOf(row.patient_name)).not.toBeNull();
    expect(pii().open(row.patient_name)).toBe(rec.patientName);
    expect(keyIdOf(row.id_card)).not.toBeNull();
    expect(pii().open(row.id_card)).toBe(rec.idCard);
    // "yyyy-MM-dd HH:mm:ss" is the hospital's local time (Asia/Shanghai, UTC+8).
    const [d, t] = String(rec.operationTime).split(' ');
    expect(row.operation_time.toISOString()).toBe(new Date(`${d}T${t}+08:00`).toISOString());
    expect(row.rec_lateness_s).toBeGreaterThanOrEqual(59);
  });

  it('accepts UPPER_SNAKE keys, empty strings as null and reports unknown fields as warnings', async () => {
    const org = uniqueOrg();
    const id = uniqueId('p');
    const rec = samplePatient({ orgCode: org, id, seed: 8 });
    const upper: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(rec)) upper[k.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase()] = v;
    upper.WORKUNIT = '';
    upper.HIS_INTERNAL_FLAG = 'x';
    const res = await post(upper);
    const body = await res.json();
    expect(res.status).toBe(200);
    expect(body.warnings).toEqual([expect.objectContaining({ field: 'HIS_INTERNAL_FLAG', rule: 'unknownField' })]);
    const row = (await db.query('SELECT workunit, gender_code, rec_raw FROM emr_patient_info WHERE org_code = $1 AND id = $2', [org, id])).rows[0];
    expect(row.workunit).toBeNull();
    expect(row.gender_code).toBe(rec.genderCode);
    expect(row.rec_raw._extra).toEqual({ HIS_INTERNAL_FLAG: 'x' });
  });
});

describe('the same record twice', () => {
  it('stores one row and one history entry per real change', async () => {
    const org = uniqueOrg();
    const id = uniqueId('p');
    const rec = samplePatient({ orgCode: org, id, seed: 9 });
    expect((await (await post(rec)).json()).status).toBe('created');
    expect((await (await post(rec)).json()).status).toBe('unchanged');
    expect(await counts(org, id)).toEqual({ rows: 1, history: 1, outbox: 1 });
    const changed = { ...rec, tel: '13900000000' };
    const second = await (await post(changed)).json();
    expect(second).toMatchObject({ status: 'updated', version: 2 });
    expect(await counts(org, id)).toEqual({ rows: 1, history: 2, outbox: 2 });
    const row = (await db.query('SELECT tel, rec_version FROM emr_patient_info WHERE org_code = $1 AND id = $2', [org, id])).rows[0];
    expect({ ...row, tel: pii().open(row.tel) }).toEqual({ tel: '13900000000', rec_version: 2 });
    expect(keyIdOf(row.tel)).not.toBeNull();
  });
});

describe('DELETE', () => {
  it('retires the record as a new version that is forwarded too', async () => {
    const org = uniqueOrg();
    const id = uniqueId('p');
    await post(samplePatient({ orgCode: org, id }));
    const res = await patient.app.request('/emrPatientInfo', {
      method: 'DELETE',
      headers: { 'content-type': 'application/json', ...LOOPBACK },
      body: JSON.stringify({ orgCode: org, id }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ result: true, status: 'retired', version: 2 });
    const row = (await db.query('SELECT rec_retired FROM emr_patient_info WHERE org_code = $1 AND id = $2', [org, id])).rows[0];
    expect(row.rec_retired).toBe(true);
    const ops = (
      await db.query(`SELECT op FROM outbox WHERE destination = 'national' AND org_code = $1 AND record_id = $2 ORDER BY version`, [org, id])
    ).rows.map((r) => r.op);
    expect(ops).toEqual(['upsert', 'retire']);
  });

  it('answers 404 for a record it never received, and 400 without the key', async () => {
    const del = (body: unknown) =>
      patient.app.request('/emrPatientInfo', { method: 'DELETE', headers: { 'content-type': 'application/json', ...LOOPBACK }, body: JSON.stringify(body) });
    expect((await del({ orgCode: uniqueOrg(), id: uniqueId('nope') })).status).toBe(404);
    const bad = await del({ orgCode: uniqueOrg() });
    expect(bad.status).toBe(400);
    expect((await bad.json()).errors).toEqual([expect.objectContaining({ field: 'id', rule: 'required' })]);
  });

  it('invalidFlag=1 on POST retires the record as well', async () => {
    const org = uniqueOrg();
    const id = uniqueId('p');
    const rec = samplePatient({ orgCode: org, id });
    await post(rec);
    expect(await (await post({ ...rec, invalidFlag: '1' })).json()).toMatchObject({ status: 'retired', version: 2 });
  });
});

describe('validation errors', () => {
  it('name each failing field and rule, mask personal values, and store nothing', async () => {
    const org = uniqueOrg();
    const id = uniqueId('p');
    const rec = samplePatient({ orgCode: org, id, seed: 3 });
    const idCard = String(rec.idCard);
    const wrongCheck = idCard.slice(0, 17) + (idCard[17] === '0' ? '1' : '0');
    const res = await post({ ...rec, idCard: wrongCheck, birthDate: 'yesterday', patientName: 'x'.repeat(101), genderCode: '' });
    expect(res.status).toBe(400);
    const body = await res.json();
    expect(body).toMatchObject({ result: false, id, errorCode: 'VALIDATION_FAILED' });
    const got = body.errors.map((e: { field: string; rule: string }) => `${e.field}:${e.rule}`).sort();
    expect(got).toEqual(['birthDate:datetime', 'genderCode:required', 'idCard:checksum', 'patientName:maxLength']);
    const shown = JSON.stringify(body);
    expect(shown).not.toContain(wrongCheck);
    expect(shown).not.toContain('x'.repeat(20));
    expect(await counts(org, id)).toEqual({ rows: 0, history: 0, outbox: 0 });
  });

  it('checks birth date and sex against the resident ID number', async () => {
    const rec = samplePatient({ orgCode: uniqueOrg(), id: uniqueId('p'), seed: 4 });
    const res = await post({ ...rec, genderCode: rec.genderCode === '1' ? '2' : '1', birthDate: '2001-01-01' });
    const rules = (await res.json()).errors.map((e: { field: string; rule: string }) => `${e.field}:${e.rule}`).sort();
    expect(rules).toEqual(['birthDate:idConsistency', 'genderCode:idConsistency']);
  });

  it('refuses times in the future beyond five minutes', async () => {
    const future = new Date(Date.now() + 10 * 60_000);
    const rec = samplePatient({ orgCode: uniqueOrg(), id: uniqueId('p'), at: future });
    const res = await post(rec);
    expect(res.status).toBe(400);
    expect((await res.json()).errors).toEqual([expect.objectContaining({ field: 'operationTime', rule: 'notFuture' })]);
    const soon = samplePatient({ orgCode: uniqueOrg(), id: uniqueId('p'), at: new Date(Date.now() + 60_000) });
    expect((await post(soon)).status).toBe(200);
  });
});

describe('the request itself', () => {
  it('415 for a body that is not JSON, 400 for broken JSON', async () => {
    expect((await post('a=b', { 'content-type': 'application/x-www-form-urlencoded' })).status).toBe(415);
    const broken = await post('{"id": ');
    expect(broken.status).toBe(400);
    expect((await broken.json()).errorCode).toBe('BAD_REQUEST');
  });

  it('413 for a body over the limit', async () => {
    const res = await post({ id: 'x', pad: 'y'.repeat(9 * 1024 * 1024) });
    expect(res.status).toBe(413);
    expect((await res.json()).errorCode).toBe('PAYLOAD_TOO_LARGE');
  });

  it('401 for a source address not on the allow-list', async () => {
    const res = await post(samplePatient({ orgCode: uniqueOrg(), id: uniqueId('p') }), { 'x-forwarded-for': '10.1.2.3' });
    expect(res.status).toBe(401);
    expect((await res.json()).errorCode).toBe('UNAUTHENTICATED');
  });

  it('a batch stores the valid records even when others fail', async () => {
    const org = uniqueOrg();
    const good = samplePatient({ orgCode: org, id: uniqueId('p') });
    const badId = uniqueId('p');
    const bad = { ...samplePatient({ orgCode: org, id: badId }), birthDate: 'no' };
    const res = await post([good, bad]);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.result).toBe(false);
    expect(body.results.map((r: { result: boolean }) => r.result)).toEqual([true, false]);
    expect((await counts(org, String(good.id))).rows).toBe(1);
    expect((await counts(org, badId)).rows).toBe(0);
  });
});
