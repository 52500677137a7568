// What a network client can send that no field rule reads, through port 8881 of a running front
// (docs/his-guide.md 请求格式 and 应答): each gets its 4xx naming the problem — never a 500 the HIS
// would retry for ever, never a record stored under the wrong id — and the front goes on serving.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { residentId } from '../../infra/simulators/his.js';
import { sample } from '../../infra/simulators/samples.js';
import { generateApiKey } from '../../shared/http/auth.js';
import { insertCaller } from '../../shared/http/auth-store.js';
import { testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { startStackRuntime, type StackRuntime } from '../setup/stack-runtime.js';

const db = testDb();
let front: StackRuntime;
let data: string;
const PAT = '/hclient/emr/receive/emrPatientInfo';

beforeAll(async () => {
  front = await startStackRuntime('hostile');
  data = front.rt.portUrls.data!;
}, 120_000);

afterAll(async () => {
  await front?.close();
});

type Answer = { result: boolean; desc: string; id: string | null; errorCode: string | null; errors?: { field: string; rule: string }[]; [k: string]: unknown };

/** A request as bytes or text exactly as given (JSON.stringify would round the numbers under test). */
async function send(method: string, path: string, body?: string | Uint8Array<ArrayBuffer>, headers: Record<string, string> = {}) {
  const res = await fetch(`${data}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body,
  });
  const text = await res.text();
  return { status: res.status, text, a: (text ? JSON.parse(text) : null) as Answer, headers: res.headers };
}

/** A patient record's JSON with `id` written as the bare literal given (a number, as a Java long is sent). */
const withBareId = (org: string, literal: string, seed: number) =>
  JSON.stringify(sample('emrPatientInfo', { orgCode: org, id: '@ID@', seed })).replace('"@ID@"', literal);

const stored = async (org: string) =>
  (await db.query<{ id: string }>('SELECT id FROM emr_patient_info WHERE org_code = $1 ORDER BY id', [org])).rows.map((r) => r.id);

async function stillServing(): Promise<void> {
  const org = uniqueOrg();
  const r = await send('POST', PAT, JSON.stringify(sample('emrPatientInfo', { orgCode: org, id: uniqueId('ok'), seed: 1 })));
  expect(r.status, r.text).toBe(200);
}

describe('numbers a double cannot hold', () => {
  it('keeps every digit of an id sent as a bare 19-digit number: two records stay two, a DELETE retires the one it names', async () => {
    const org = uniqueOrg();
    const [a, b] = ['1234567890123456781', '1234567890123456783'];
    // As JavaScript reads them, both are 1234567890123456800.
    expect(Number(a)).toBe(Number(b));
    const first = await send('POST', PAT, withBareId(org, a, 3));
    expect(first.status, first.text).toBe(200);
    expect(first.a).toMatchObject({ id: a, status: 'created' });
    const second = await send('POST', PAT, withBareId(org, b, 4));
    expect(second.status, second.text).toBe(200);
    expect(second.a).toMatchObject({ id: b, status: 'created' });
    expect(await stored(org)).toEqual([a, b]);
    const del = await send('DELETE', PAT, `{"orgCode":"${org}","id":${b}}`);
    expect(del.status, del.text).toBe(200);
    expect(del.a).toMatchObject({ id: b, status: 'retired' });
    const trace = await send('GET', `${PAT}/${a}?orgCode=${org}`);
    expect(trace.status, trace.text).toBe(200);
    expect(trace.text).not.toContain('"retired"');
  });

  it('stores a number out of a double’s range in a text field as it was sent, not as "Infinity"', async () => {
    const org = uniqueOrg();
    const id = uniqueId('inf');
    const body = JSON.stringify(sample('emrPatientInfo', { orgCode: org, id, seed: 5 })).replace(/"orgName":"[^"]*"/, '"orgName":1e400');
    expect(body).toContain('1e400');
    const r = await send('POST', PAT, body);
    expect(r.status, r.text).toBe(200);
    const row = await db.query<{ org_name: string }>('SELECT org_name FROM emr_patient_info WHERE org_code = $1 AND id = $2', [org, id]);
    expect(row.rows[0]!.org_name).toBe('1e400');
  });
});

describe('keys no data set has', () => {
  it('names the first twenty unknown fields and counts the rest in one warning', async () => {
    const org = uniqueOrg();
    const rec: Record<string, unknown> = sample('emrPatientInfo', { orgCode: org, id: uniqueId('uk'), seed: 6 });
    for (let i = 0; i < 50; i++) rec[`HIS_COL_${i}`] = i;
    const r = await send('POST', PAT, JSON.stringify(rec));
    expect(r.status, r.text).toBe(200);
    const unknown = (r.a.warnings as { field: string; rule: string; message: string }[]).filter((w) => w.rule === 'unknownField');
    expect(unknown).toHaveLength(21);
    expect(unknown.slice(0, 20).map((w) => w.field)).toEqual(Array.from({ length: 20 }, (_, i) => `HIS_COL_${i}`));
    expect(unknown[20]!.message).toContain('另有 30 个');
  });

  it('refuses a record of 200 000 keys whole (tooManyFields) with a short answer, and serves the next record', async () => {
    const org = uniqueOrg();
    const id = uniqueId('many');
    const rec: Record<string, unknown> = sample('emrPatientInfo', { orgCode: org, id, seed: 7 });
    for (let i = 0; i < 200_000; i++) rec[`k${i}`] = 1;
    const r = await send('POST', PAT, JSON.stringify(rec));
    expect(r.status, r.text.slice(0, 300)).toBe(400);
    expect(r.a.errors).toEqual([expect.objectContaining({ field: '(record)', rule: 'tooManyFields' })]);
    expect(r.text.length).toBeLessThan(2000);
    expect(await stored(org)).toEqual([]);
    await stillServing();
  });
});

describe('a NUL where no field rule looks', () => {
  it('is 400 in a trace’s id or org, a DELETE, a reconciliation and a reminder query — never 500', async () => {
    const org = uniqueOrg();
    const cases: [string, string, string?][] = [
      ['GET', `${PAT}/a%00b?orgCode=${org}`],
      ['GET', `${PAT}/ab?orgCode=${org}%00`],
      ['DELETE', PAT, `{"orgCode":"${org}","id":"a\\u0000b"}`],
      ['POST', `${PAT}/_reconcile`, `{"orgCode":"${org}","date":"2026-12-01","ids":["a\\u0000b"]}`],
      ['GET', `/function/remind/reminders?orgCode=${org}&dept=%00`],
      ['GET', `/function/remind/reminders/stream?orgCode=${org}&dept=%00`],
    ];
    for (const [method, path, body] of cases) {
      const r = await send(method, path, body);
      expect(r.status, `${method} ${path}: ${r.text}`).toBe(400);
      expect(r.a.result, path).toBe(false);
    }
    await stillServing();
  });

  it('is 400 naming orgCode for a caller bound to one org too, not 403 echoing it', async () => {
    const bound = uniqueOrg();
    const key = generateApiKey();
    await insertCaller(db, { kind: 'apikey', name: '单机构 HIS (NUL)', orgs: [bound], ratePerMin: 0, keyPrefix: key.prefix, keyHash: key.hash });
    for (const org of [`${bound}%00`, `X%00Y`]) {
      const r = await send('GET', `${PAT}/ab?orgCode=${org}`, undefined, { 'x-api-key': key.key });
      expect(r.status, `${org}: ${r.text}`).toBe(400);
      expect(r.a.errors).toEqual([expect.objectContaining({ field: 'orgCode', rule: 'invalidText' })]);
      expect(r.text).not.toContain('\\u0000');
    }
    // Its own org still answers (404: no such record), another org 403.
    expect((await send('GET', `${PAT}/ab?orgCode=${bound}`, undefined, { 'x-api-key': key.key })).status).toBe(404);
    expect((await send('GET', `${PAT}/ab?orgCode=${uniqueOrg()}`, undefined, { 'x-api-key': key.key })).status).toBe(403);
  });
});

describe('what the body itself declares', () => {
  it('reads a birth date sent as a number of eight digits (a NUMBER(8) column) as that day, and as epoch milliseconds before 1970', async () => {
    const org = uniqueOrg();
    const id = uniqueId('n8');
    const sent = sample('emrPatientInfo', { orgCode: org, id, seed: 12 });
    // The day the ID number states, sent as the number yyyyMMdd.
    const digits = String(sent.idCard).slice(6, 14);
    const r = await send('POST', PAT, JSON.stringify({ ...sent, birthDate: Number(digits) }));
    expect(r.status, r.text).toBe(200);
    const row = await db.query<{ d: string }>(
      `SELECT to_char(birth_date AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDD') AS d FROM emr_patient_info WHERE org_code = $1 AND id = $2`,
      [org, id],
    );
    expect(row.rows[0]?.d).toBe(digits);
    // Born 1960-01-01 (Beijing), as Jackson writes a java.util.Date: negative epoch milliseconds.
    const old = sample('emrPatientInfo', { orgCode: org, id: uniqueId('n8'), seed: 14 });
    const card = String(old.idCard);
    const idCard = residentId(card.slice(0, 6), { y: 1960, m: 1, d: 1 }, Number(card[16]) % 2 ? '1' : '2', 7);
    const ms = await send('POST', PAT, JSON.stringify({ ...old, idCard, birthDate: -315648000000 }));
    expect(ms.status, ms.text).toBe(200);
    const born = await db.query<{ d: string }>(
      `SELECT to_char(birth_date AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD') AS d FROM emr_patient_info WHERE org_code = $1 AND id = $2`,
      [org, old.id],
    );
    expect(born.rows[0]?.d).toBe('1960-01-01');
    // A number of eight digits that is no day is refused naming the field.
    const bad = await send('POST', PAT, JSON.stringify({ ...sample('emrPatientInfo', { orgCode: org, id: uniqueId('n8'), seed: 13 }), birthDate: 12345678 }));
    expect(bad.status, bad.text).toBe(400);
    expect(bad.a.errors?.map((e) => e.field)).toContain('birthDate');
  });

  it('reads java.time values sent as Jackson arrays: a LocalDate as that day, a LocalDateTime to the second', async () => {
    const org = uniqueOrg();
    const sent = sample('emrPatientInfo', { orgCode: org, id: uniqueId('ja'), seed: 15 });
    const born = String(sent.idCard).slice(6, 14);
    const birthDate = [Number(born.slice(0, 4)), Number(born.slice(4, 6)), Number(born.slice(6, 8))];
    const r = await send('POST', PAT, JSON.stringify({ ...sent, birthDate, operationTime: [2026, 3, 1, 8, 30] }));
    expect(r.status, r.text).toBe(200);
    const row = await db.query<{ b: string; o: string; raw: string }>(
      `SELECT to_char(birth_date AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDD') AS b,
              to_char(operation_time AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI:SS') AS o, rec_raw->>'operationTime' AS raw
         FROM emr_patient_info WHERE org_code = $1 AND id = $2`,
      [org, sent.id],
    );
    // Stored and forwarded in the notice's form, as the same time sent as text.
    expect(row.rows[0]).toMatchObject({ b: born, o: '2026-03-01 08:30:00', raw: '2026-03-01 08:30:00' });
    // An array that is no java.time value is refused naming the field.
    const bad = await send(
      'POST',
      PAT,
      JSON.stringify({ ...sample('emrPatientInfo', { orgCode: org, id: uniqueId('ja'), seed: 16 }), operationTime: [2026, 3, 1, 8] }),
    );
    expect(bad.status, bad.text).toBe(400);
    expect(bad.a.errors?.map((e) => e.field)).toContain('operationTime');
  });

  it('flags a name that is nothing but bytes no charset decodes (garbledText), as it flags a longer one', async () => {
    const org = uniqueOrg();
    const id = uniqueId('ff');
    const text = JSON.stringify(sample('emrPatientInfo', { orgCode: org, id, seed: 8 })).replace(/"patientName":"[^"]*"/, '"patientName":"@N@"');
    const [head, tail] = text.split('@N@') as [string, string];
    const bytes = new Uint8Array(Buffer.concat([Buffer.from(head), Buffer.from([0xff]), Buffer.from(tail)]));
    const r = await send('POST', PAT, bytes);
    expect(r.status, r.text).toBe(200);
    expect(r.a.warnings).toEqual(expect.arrayContaining([expect.objectContaining({ field: 'patientName', rule: 'garbledText' })]));
  });

  it('refuses a compressed body with 415 naming Content-Encoding, not as broken JSON', async () => {
    const org = uniqueOrg();
    const body = JSON.stringify(sample('emrPatientInfo', { orgCode: org, id: uniqueId('gz'), seed: 9 }));
    const r = await send('POST', PAT, body, { 'content-encoding': 'gzip' });
    expect(r.status, r.text).toBe(415);
    expect(r.a.desc).toContain('Content-Encoding');
    expect(await stored(org)).toEqual([]);
  });

  it('refuses a reconciliation for a day the calendar does not have (400 naming date)', async () => {
    const org = uniqueOrg();
    for (const date of ['2026-02-30', '2026-13-45', '2026-00-00']) {
      const r = await send('POST', `${PAT}/_reconcile`, JSON.stringify({ orgCode: org, date, ids: ['A1'] }));
      expect(r.status, `${date}: ${r.text}`).toBe(400);
      expect(r.a.errors?.map((e) => e.field)).toEqual(['date']);
    }
    const leap = await send('POST', `${PAT}/_reconcile`, JSON.stringify({ orgCode: org, date: '2024-02-29', ids: ['A1'] }));
    expect(leap.status, leap.text).toBe(200);
  });

  it('answers another method on a receive path 405 with the methods it takes; an unknown resource stays 404', async () => {
    for (const method of ['PUT', 'PATCH']) {
      const r = await send(method, PAT, '{}');
      expect(r.status, `${method}: ${r.text}`).toBe(405);
      expect(r.a.errorCode).toBe('METHOD_NOT_ALLOWED');
      expect(r.headers.get('allow')).toBe('POST, DELETE');
    }
    const trace = await send('PUT', `${PAT}/A1?orgCode=${uniqueOrg()}`, '{}');
    expect(trace.status).toBe(405);
    expect(trace.headers.get('allow')).toBe('GET, HEAD');
    expect((await send('PUT', '/hclient/emr/receive/noSuchThing', '{}')).status).toBe(404);
  });

  it('answers a path no route takes in the envelope on every function of the data port', async () => {
    for (const path of ['/function/dbsync', '/function/dbsync/nothing', '/function/remind/nothing']) {
      const r = await send('GET', path);
      expect(r.status, path).toBe(404);
      expect(r.a, path).toMatchObject({ result: false, errorCode: 'NOT_FOUND' });
    }
  });
});
