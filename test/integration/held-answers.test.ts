// What the data port tells the HIS about a held record (docs/his-guide.md 应答): the desc names what the
// record waits for — the parent record, a code mapping, or both — never a parent for a code.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, uniqueId, uniqueOrg } from '../setup/db.js';
import { sample } from '../../infra/simulators/samples.js';
import { heldDesc } from '../../shared/ingest/receiver.js';

process.env.DATABASE_URL = databaseUrl();
process.env.HIS_ALLOW = '127.0.0.1/8';
const { default: patient } = await import('../../functions/patient/handler.js');
const { default: diagnosis } = await import('../../functions/diagnosis/handler.js');
beforeAll(async () => Promise.all([patient.init?.(), diagnosis.init?.()]));
afterAll(async () => Promise.all([patient.close?.(), diagnosis.close?.()]));

const post = async (fn: typeof patient, resource: string, body: unknown) =>
  (
    await fn.app.request(`/${resource}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': '127.0.0.1' },
      body: JSON.stringify(body),
    })
  ).json();

const MAPPING = '等待本院代码映射到国家值域';
const PARENT = '等待上级记录';

describe('the answer for a held record', () => {
  it('held for a code: the desc says it waits for the code mapping, not for a parent', async () => {
    const org = uniqueOrg();
    const body = await post(patient, 'emrPatientInfo', {
      ...sample('emrPatientInfo', { orgCode: org, id: uniqueId('P'), seed: 7 }),
      idCardTypeCode: '03',
      idCardTypeName: '护照',
      idCard: 'E7654321',
      genderCode: 'F7',
    });
    expect(body).toMatchObject({ result: true, held: ['mapping:sex/F7'] });
    expect(body.desc).toContain(MAPPING);
    expect(body.desc).toContain('mapping:sex/F7');
    expect(body.desc).not.toContain(PARENT);
    expect(body.warnings).toEqual(expect.arrayContaining([expect.objectContaining({ field: 'genderCode', rule: 'unmapped' })]));
  });

  it('held for its parent and for a code: the desc names both', async () => {
    const org = uniqueOrg();
    const pid = uniqueId('P');
    const body = await post(diagnosis, 'emrActivityInfo', {
      ...sample('emrActivityInfo', { orgCode: org, id: uniqueId('A'), patientId: pid, seed: 7 }),
      activityTypeCode: 'MZ',
    });
    expect(body.held).toEqual(expect.arrayContaining([`parent:emrPatientInfo/${pid}`, 'mapping:activityType/MZ']));
    expect(body.desc).toContain(PARENT);
    expect(body.desc).toContain(MAPPING);
  });
});

describe('heldDesc', () => {
  it('says each kind once, Chinese then English, and a kind it does not know generically', () => {
    expect(heldDesc(['parent:emrExLab/L1'])).toBe('暂缓上报，等待上级记录 (held, waiting for the parent record: parent:emrExLab/L1)');
    expect(heldDesc(['mapping:sex/F', 'mapping:ethnicity/HN'])).toMatch(
      /^暂缓上报，等待本院代码映射到国家值域（代码映射） \(held, waiting for the hospital code/,
    );
    expect(heldDesc(['rule:report/populationAge'])).toContain('等待更正后的记录');
    const other = heldDesc(['later:x/y']);
    expect(other).toBe('暂缓上报，等待处理 (held, waiting: later:x/y)');
    expect(heldDesc(['nokind'])).toBe('暂缓上报，等待处理 (held, waiting: nokind)');
  });
});
