// The org of a record that names none, and the records that are really wrong, through port 8881 of a
// running front (docs/his-guide.md "机构", "应答"): an item takes its header's org, a card its
// reportOrgCode, a department its caller's one bound org; with none of these the record is refused
// naming orgCode; DELETE by id finds its org the same way. Keys with whitespace, quotes or control
// characters, an org code that is not letters and digits, and events before the patient's birth are
// refused, each naming its rule.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sample } from '../../infra/simulators/samples.js';
import { residentId } from '../../infra/simulators/his.js';
import { generateApiKey } from '../../shared/http/auth.js';
import { insertCaller } from '../../shared/http/auth-store.js';
import { testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { startStackRuntime, type StackRuntime } from '../setup/stack-runtime.js';

const db = testDb();
let front: StackRuntime;
let data: string;
const bound = uniqueOrg();
const key = generateApiKey();

beforeAll(async () => {
  await insertCaller(db, { kind: 'apikey', name: '单机构 HIS', orgs: [bound], ratePerMin: 0, keyPrefix: key.prefix, keyHash: key.hash });
  front = await startStackRuntime('orgs');
  data = front.rt.portUrls.data!;
}, 120_000);

afterAll(async () => {
  await front?.close();
});

type Answer = {
  result: boolean;
  id: string | null;
  errorCode: string | null;
  status?: string;
  errors?: Array<{ field: string; rule: string; message: string }>;
};

async function call(method: string, resource: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; a: Answer }> {
  const res = await fetch(`${data}/hclient/emr/receive/${resource}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, a: (await res.json()) as Answer };
}
const rules = (a: Answer) => (a.errors ?? []).map((e) => `${e.field}/${e.rule}`);
const orgOf = async (table: string, id: string) =>
  (await db.query<{ org_code: string }>(`SELECT org_code FROM ${table} WHERE id = $1`, [id])).rows.map((r) => r.org_code);

describe('the org of a record that names none', () => {
  it('an item takes its header’s org; DELETE by id finds it the same way', async () => {
    const org = uniqueOrg();
    const lab = uniqueId('lab');
    expect((await call('POST', 'emrExLab', sample('emrExLab', { orgCode: org, id: lab, patientId: uniqueId('p'), seed: 1 }))).status).toBe(200);
    const item = sample('emrExLabItem', { orgCode: 'x', id: `${lab}-1`, parentId: lab, seed: 1 });
    delete item.orgCode;
    const { status, a } = await call('POST', 'emrExLabItem', item);
    expect(status, JSON.stringify(a)).toBe(200);
    expect(await orgOf('emr_ex_lab_item', `${lab}-1`)).toEqual([org]);
    const del = await call('DELETE', 'emrExLabItem', { id: `${lab}-1`, exLabId: lab });
    expect(del.status, JSON.stringify(del.a)).toBe(200);
    expect(del.a.status).toBe('retired');
  });

  it('a report card takes its reportOrgCode', async () => {
    const org = uniqueOrg();
    const card = sample('emrInfReport', { orgCode: org, id: uniqueId('card'), patientId: uniqueId('p'), seed: 2 });
    delete card.orgCode;
    const { status, a } = await call('POST', 'emrInfReport', { ...card, reportOrgCode: org });
    expect(status, JSON.stringify(a)).toBe(200);
    expect(await orgOf('emr_inf_report', String(card.id))).toEqual([org]);
  });

  it('a department takes the one org its caller is bound to; with a caller of every org it is refused naming orgCode', async () => {
    const dept = uniqueId('D');
    const rec = { deptCode: dept, deptName: '感染科' };
    const byKey = await call('POST', 'baseDept', rec, { 'x-api-key': key.key });
    expect(byKey.status, JSON.stringify(byKey.a)).toBe(200);
    expect(await orgOf('base_dept', dept)).toEqual([bound]);
    const refused = await call('POST', 'baseDept', { deptCode: uniqueId('D'), deptName: '内科' });
    expect(refused.status).toBe(400);
    expect(rules(refused.a)).toEqual(['orgCode/required']);
    expect(refused.a.errors![0]!.message).toContain('FRONT_ORG_CODE');
    // DELETE by its key alone, with the bound caller.
    const del = await call('DELETE', 'baseDept', { deptCode: dept }, { 'x-api-key': key.key });
    expect(del.status, JSON.stringify(del.a)).toBe(200);
  });

  it('a parent held by an org the caller may not see does not decide', async () => {
    const other = uniqueOrg();
    const lab = uniqueId('lab');
    expect((await call('POST', 'emrExLab', sample('emrExLab', { orgCode: other, id: lab, patientId: uniqueId('p'), seed: 1 }))).status).toBe(200);
    const item = sample('emrExLabItem', { orgCode: 'x', id: `${lab}-1`, parentId: lab, seed: 1 });
    delete item.orgCode;
    // The key sees only its own org: the item is that org's (held for its header), not the other's.
    const { status, a } = await call('POST', 'emrExLabItem', item, { 'x-api-key': key.key });
    expect(status, JSON.stringify(a)).toBe(200);
    expect(await orgOf('emr_ex_lab_item', `${lab}-1`)).toEqual([bound]);
  });
});

describe('what is really wrong is refused, naming its rule', () => {
  it('keys with whitespace inside, quotes or control characters, or a URL dot segment; an org code that is not letters and digits; padding is trimmed', async () => {
    const org = uniqueOrg();
    const p = (over: Record<string, unknown>) =>
      call('POST', 'emrPatientInfo', { ...sample('emrPatientInfo', { orgCode: org, id: uniqueId('p'), seed: 3 }), ...over });
    expect(rules((await p({ id: 'P 001' })).a)).toEqual(['id/keyFormat']);
    expect(rules((await p({ id: "P'001" })).a)).toEqual(['id/keyFormat']);
    expect(rules((await p({ id: 'P\u0001001' })).a)).toEqual(['id/keyFormat']);
    // A URL's dot segments: GET or DELETE …/emrPatientInfo/.. would never reach the record.
    expect(rules((await p({ id: '..' })).a)).toEqual(['id/keyFormat']);
    expect(rules((await p({ id: ' . ' })).a)).toEqual(['id/keyFormat']);
    expect((await p({ id: `${uniqueId('p')}..x` })).status).toBe(200);
    expect(rules((await p({ orgCode: '4401-06' })).a)).toEqual(['orgCode/orgCodeFormat']);
    const padded = await p({ id: `  ${uniqueId('p')}  ` });
    expect(padded.status).toBe(200);
    expect(padded.a.id).not.toMatch(/^\s|\s$/);
    const item = sample('emrExLabItem', { orgCode: org, id: uniqueId('i'), parentId: 'L 1', seed: 1 });
    expect(rules((await call('POST', 'emrExLabItem', item)).a)).toEqual(['exLabId/keyFormat']);
  });

  it('a visit, a diagnosis, a death or a card before the patient’s birth: stored patient, else the ID number', async () => {
    const org = uniqueOrg();
    const pid = uniqueId('p');
    expect(
      (
        await call('POST', 'emrPatientInfo', {
          ...sample('emrPatientInfo', { orgCode: org, id: pid, seed: 4 }),
          idCardTypeCode: '99',
          idCard: 'X',
          birthDate: '2000-05-01',
        })
      ).status,
    ).toBe(200);
    const visit = (t: string) => ({
      ...sample('emrActivityInfo', { orgCode: org, id: uniqueId('a'), patientId: pid, seed: 4 }),
      idCardTypeCode: '99',
      idCard: 'X',
      activityTime: t,
      diagnoseTime: t,
    });
    const before = await call('POST', 'emrActivityInfo', visit('2000-04-30 23:00:00'));
    expect(before.status).toBe(400);
    expect(rules(before.a)).toEqual(['activityTime/beforeBirth', 'diagnoseTime/beforeBirth']);
    // Born that day: fine.
    expect((await call('POST', 'emrActivityInfo', visit('2000-05-01 08:00:00'))).status).toBe(200);
    const death = {
      ...sample('emrDeathInfo', { orgCode: org, id: uniqueId('d'), patientId: pid, seed: 4 }),
      idCardTypeCode: '99',
      idCard: 'X',
      deadDate: '1999-01-01 10:00:00',
    };
    expect(rules((await call('POST', 'emrDeathInfo', death)).a)).toContain('deadDate/beforeBirth');
    // No stored patient: the resident ID number says when they were born.
    const id = residentId('110101', { y: 2010, m: 6, d: 15 }, '1', 7);
    const lone = {
      ...sample('emrActivityInfo', { orgCode: org, id: uniqueId('a'), patientId: uniqueId('p'), seed: 5 }),
      idCardTypeCode: '01',
      idCard: id,
      activityTime: '2010-06-14 09:00:00',
      diagnoseTime: '2010-06-14 09:00:00',
    };
    expect(rules((await call('POST', 'emrActivityInfo', lone)).a)).toEqual(['activityTime/beforeBirth', 'diagnoseTime/beforeBirth']);
  });
});
