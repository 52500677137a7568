// A chain of holds: a lab item under a lab report that waits for its patient. Every platform must
// receive patient, report, item — in that order — however they arrive (the fault suite's finding).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { sample } from '../../infra/simulators/samples.js';

process.env.DATABASE_URL = databaseUrl();
process.env.HIS_ALLOW = '127.0.0.1/8';
const { default: patient } = await import('../../functions/patient/handler.js');
const { default: lab } = await import('../../functions/lab/handler.js');
const db = testDb();
beforeAll(async () => Promise.all([patient.init?.(), lab.init?.()]));
afterAll(async () => Promise.all([patient.close?.(), lab.close?.()]));

const post = async (fn: typeof patient, resource: string, body: unknown) =>
  (
    await fn.app.request(`/${resource}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': '127.0.0.1' },
      body: JSON.stringify(body),
    })
  ).json();
const queue = async (org: string) =>
  (await db.query(`SELECT resource, record_id, version, state FROM outbox WHERE destination = 'national' AND org_code = $1 ORDER BY outbox_id`, [org])).rows;

describe('a child of a held parent', () => {
  it('is held too, and leaves after its parent, which leaves after the grandparent', async () => {
    const org = uniqueOrg();
    const pid = uniqueId('P');
    const lid = uniqueId('L');
    const iid = uniqueId('LI');
    const report = await post(lab, 'emrExLab', sample('emrExLab', { orgCode: org, id: lid, patientId: pid, seed: 1 }));
    expect(report.held).toEqual([`parent:emrPatientInfo/${pid}`]);
    const item = await post(lab, 'emrExLabItem', sample('emrExLabItem', { orgCode: org, id: iid, parentId: lid, patientId: pid, seed: 1 }));
    expect(item.held).toEqual([`parent:emrExLab/${lid}`]);
    expect((await queue(org)).map((q) => q.state)).toEqual(['held', 'held']);

    await post(patient, 'emrPatientInfo', sample('emrPatientInfo', { orgCode: org, id: pid, seed: 1 }));
    const q = await queue(org);
    expect(q.map((x) => [x.resource, x.state])).toEqual([
      ['emrPatientInfo', 'pending'],
      ['emrExLab', 'pending'],
      ['emrExLabItem', 'pending'],
    ]);
  });
});

describe('a new version that is not held', () => {
  it('replaces held versions of the record: they are superseded, never sent', async () => {
    const org = uniqueOrg();
    const pid = uniqueId('P');
    const base = { ...sample('emrPatientInfo', { orgCode: org, id: pid, seed: 2 }), idCardTypeCode: '03', idCardTypeName: '护照', idCard: 'E7654321' };
    expect((await post(patient, 'emrPatientInfo', { ...base, genderCode: 'X9' })).held).toEqual(['mapping:sex/X9']);
    const v2 = await post(patient, 'emrPatientInfo', { ...base, genderCode: '1', genderName: '男性' });
    expect(v2).toMatchObject({ version: 2 });
    expect(v2.held).toBeUndefined();
    expect((await queue(org)).map((x) => [x.version, x.state])).toEqual([
      [1, 'superseded'],
      [2, 'pending'],
    ]);
  });
});
