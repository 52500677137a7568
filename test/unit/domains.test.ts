// Value domains (national code lists) and the report-card rules, on typed records: pure, no database.
import { describe, expect, it } from 'vitest';
import { checkDomains, domainLabel, lookup } from '../../schemas/domains.js';
import { f, fields } from '../../schemas/fields.js';
import { resources } from '../../schemas/index.js';
import { validateRecord } from '../../shared/ingest/validate.js';
import { normalizeKeys } from '../../shared/ingest/normalize.js';
import { sample } from '../../infra/simulators/samples.js';
import { residentId } from '../../infra/simulators/his.js';
import * as card from '../../schemas/report-card.js';

const now = new Date();
const d = (s: string) => new Date(`${s}T00:00:00+08:00`);

describe('value domains', () => {
  const defs = fields({
    genderCode: f.str(2, '性别代码', { domain: 'sex' }),
    genderName: f.str(10, '性别名称'),
    diagnoseStateCode: f.str(2, '病例分类', { domain: 'diagnosisStatus' }),
    caseTypeCode: f.str(2, '病例分类2', { domain: 'caseType' }),
  });

  it('accept a code of the list and name the domain and standard when the code is not in it', () => {
    expect(checkDomains(defs, { genderCode: '1' })).toEqual({ issues: [], warnings: [] });
    const { issues } = checkDomains(defs, { genderCode: '3' });
    expect(issues).toEqual([expect.objectContaining({ field: 'genderCode', rule: 'domain', value: '3' })]);
    expect(issues[0]!.message).toContain('性别代码 GB/T 2261.1');
    expect(issues[0]!.message).toContain('3');
    expect(domainLabel('idType')).toBe('身份证件类别代码 WS 364.3 CV02.01.101');
  });

  it('warn (nameMismatch), not refuse, when xxxName disagrees with the list; "男" for 男性 is no disagreement', () => {
    expect(checkDomains(defs, { genderCode: '1', genderName: '男' }).warnings).toEqual([]);
    const r = checkDomains(defs, { genderCode: '1', genderName: '女性' });
    expect(r.issues).toEqual([]);
    expect(r.warnings).toEqual([expect.objectContaining({ field: 'genderName', rule: 'nameMismatch', value: '女性' })]);
  });

  it('follow the code files for 病例分类: diagnoseStateCode is 确诊/临床/疑似..., caseTypeCode is 急性/慢性/未分型', () => {
    expect(lookup('diagnosisStatus', '2')?.name).toBe('确诊病例');
    expect(lookup('caseType', '2')?.name).toBe('慢性');
    expect(checkDomains(defs, { diagnoseStateCode: '6', caseTypeCode: '4' }).issues.map((i) => i.field)).toEqual(['caseTypeCode']);
  });

  it('are checked by the pipeline for every declared domain field of every resource', () => {
    const withDomains = Object.values(resources).flatMap((r) =>
      Object.entries(r.fields)
        .filter(([, x]) => x.domain)
        .map(([k, x]) => `${r.name}.${k}:${x.domain}`),
    );
    for (const k of [
      'emrPatientInfo.genderCode:sex',
      'emrInfReport.caseTypeCode:caseType',
      'emrDischargeInfo.diseaseProgressionCode:outcome',
      'baseUser.idCardTypeCode:idType',
    ]) {
      expect(withDomains).toContain(k);
    }
    const r = resources.emrPatientInfo!;
    const rec = { ...sample(r.name, { orgCode: '123456789', id: 'p1', seed: 2 }), educationCode: '25', nultitudeTypeCode: '18', nultitudeTypeName: '农民' };
    const v = validateRecord(r, normalizeKeys(r, rec).known, now);
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.issues.map((i) => `${i.field}:${i.rule}`)).toEqual(['educationCode:domain']);
    expect(v.warnings.map((i) => `${i.field}:${i.rule}`)).toEqual(['nultitudeTypeName:nameMismatch']);
  });
});

describe('disease identity of a card', () => {
  it('is the NNDRS code (3- or 4-digit), else ICD-10, else the name', () => {
    expect(card.diseaseOf({ diseaseCode: '302' })).toBe('0302');
    expect(card.diseaseOf({ diseaseCode: '0302' })).toBe('0302');
    expect(card.diseaseOf({ diseaseCode: 'B18.1' })).toBe('0302');
    expect(card.diseaseOf({ diseaseCode: 'A01.1' })).toBe('0502');
    expect(card.diseaseOf({ diseaseCode: 'X', diseaseName: '副伤寒' })).toBe('0502');
    expect(card.diseaseOf({ diseaseName: '乙型病毒性肝炎' })).toBe('0302');
    expect(card.diseaseOf({ diseaseName: '感冒' })).toBeNull();
  });
});

/** A valid adult card (typed, as rules see it) to vary. */
function adult(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    patientName: '王伟',
    genderCode: '1',
    idCardTypeCode: '01',
    idCard: residentId('440103', { y: 1980, m: 5, d: 6 }, '1', 3),
    birthDate: d('1980-05-06'),
    onsetDate: d('2025-01-01'),
    diagnoseTime: new Date('2025-01-02T10:00:00+08:00'),
    reportDate: d('2025-01-02'),
    diseaseCode: '3500',
    diseaseName: '流行性感冒',
    diagnoseStateCode: '1',
    caseTypeCode: '3',
    nultitudeTypeCode: '12',
    currentAddrCode: '440103001',
    fillDoctor: '张医生',
    reportZoneCode: '440103',
    ...over,
  };
}
const child = (over: Record<string, unknown> = {}) =>
  adult({
    birthDate: d('2018-03-04'),
    idCard: residentId('440103', { y: 1985, m: 1, d: 2 }, '2', 5),
    nultitudeTypeCode: '2',
    contacts: '李娜',
    tel: '13800000000',
    ...over,
  });
const run = (rec: Record<string, unknown>) =>
  card.reportCardRules
    .flatMap((r) => r(rec, now))
    .map((i) => `${i.field}:${i.rule}`)
    .sort();

describe('report-card rules (report_card_rules.md)', () => {
  it('pass a valid adult card and a valid child card (a parent’s ID is allowed at 14 or younger)', () => {
    expect(run(adult())).toEqual([]);
    expect(run(child())).toEqual([]);
  });

  it('names: 2–20 characters, not starting with a digit; STD/AIDS cards may use a code name', () => {
    expect(run(adult({ patientName: '王' }))).toEqual(['patientName:cardName']);
    expect(run(adult({ patientName: '1王伟' }))).toEqual(['patientName:cardName']);
    expect(run(adult({ patientName: '12345', diseaseCode: '0700', diagnoseStateCode: '2' }))).toEqual([]);
  });

  it('guardian and phone at 14 or younger; phone digits only', () => {
    expect(run(child({ contacts: undefined, tel: undefined }))).toEqual(['contacts:guardianRequired', 'tel:guardianRequired']);
    expect(run(adult({ tel: '020-1234567' }))).toEqual(['tel:phoneFormat']);
  });

  it('sex 1/2 only; own ID over 14 (birth, sex, province); unknown ID placeholder accepted', () => {
    expect(run(adult({ genderCode: '0' }))).toEqual(['genderCode:cardSex']);
    expect(run(adult({ birthDate: d('1980-05-07') }))).toEqual(['birthDate:idConsistency']);
    expect(run(adult({ idCard: residentId('990103', { y: 1980, m: 5, d: 6 }, '1', 3) }))).toEqual(['idCard:idProvince']);
    expect(run(adult({ idCard: '00000000000000000X' }))).toEqual([]);
    expect(run(adult({ idCard: undefined }))).toEqual(['idCard:required']);
  });

  it('population class against age; "其他" needs a text; work unit for teachers', () => {
    expect(run(adult({ nultitudeTypeCode: '1' }))).toEqual(['nultitudeTypeCode:populationAge', 'workunit:workunitRequired']);
    expect(run(child({ nultitudeTypeCode: '12' }))).toEqual(['nultitudeTypeCode:populationAge']);
    expect(run(adult({ nultitudeTypeCode: '99' }))).toEqual(['nultitudeTypeOther:otherRequired']);
    expect(run(adult({ nultitudeTypeCode: '4' }))).toEqual(['workunit:workunitRequired']);
  });

  it('address to township level', () => {
    expect(run(adult({ currentAddrCode: '440103000' }))).toEqual(['currentAddrCode:addrTownship']);
  });

  it('carriers only for the listed diseases; acute/chronic only hepatitis B/C and schistosomiasis', () => {
    expect(run(adult({ diagnoseStateCode: '4' }))).toEqual(['diagnoseStateCode:diagnosisState']);
    expect(run(adult({ diseaseCode: '0200', diseaseName: '霍乱', diagnoseStateCode: '4' }))).toEqual([]);
    expect(run(adult({ diseaseCode: '0302', caseTypeCode: '3' }))).toEqual(['caseTypeCode:caseType']);
    expect(run(adult({ diseaseCode: '0302', caseTypeCode: '1' }))).toEqual([]);
    expect(run(adult({ caseTypeCode: '2' }))).toEqual(['caseTypeCode:caseType']);
  });

  it('per-disease case classification: syphilis not clinical, HIV not suspected, AFP not confirmed, TB sub-types', () => {
    expect(run(adult({ diseaseCode: '0801', diagnoseStateCode: '1' }))).toEqual(['diagnoseStateCode:diagnosisState']);
    expect(run(adult({ diseaseCode: '9825', diagnoseStateCode: '2' }))).toEqual(['diagnoseStateCode:diagnosisState']);
    expect(run(adult({ diseaseCode: '2606', diagnoseStateCode: '1' }))).toEqual(['diagnoseStateCode:diagnosisState']);
    expect(run(adult({ diseaseCode: '2607', diagnoseStateCode: '2' }))).toEqual(['diagnoseStateCode:diagnosisState']);
    expect(run(adult({ diagnoseStateCode: '6' }))).toEqual(['diagnoseStateCode:diagnosisState']);
  });

  it('parent categories must be sub-typed; "其他" needs a short name', () => {
    expect(run(adult({ diseaseCode: '0800', diagnoseStateCode: '2' }))).toEqual(['diseaseCode:diseaseSubtype']);
    expect(run(adult({ diseaseCode: '9899' }))).toEqual(['diseaseOther:otherRequired']);
    expect(run(adult({ diseaseCode: '9899', diseaseOther: '一二三四五六七八九十一二三四五' }))).toEqual(['diseaseOther:maxLength']);
    expect(run(adult({ diseaseCode: '9899', diseaseOther: '猫抓病' }))).toEqual([]);
  });

  it('dates: birth ≤ onset ≤ diagnosis ≤ report and death ≤ report, by calendar day; neonatal tetanus within 28 days', () => {
    expect(run(adult({ onsetDate: d('2025-01-03') }))).toEqual(['diagnoseTime:timeOrder']);
    expect(run(adult({ deadDate: d('2025-01-03') }))).toEqual(['reportDate:timeOrder']);
    expect(run(adult({ deadDate: d('2025-01-02') }))).toEqual([]);
    const baby = {
      birthDate: d('2024-11-01'),
      idCard: '00000000000000000X',
      nultitudeTypeCode: '2',
      contacts: '李娜',
      tel: '13800000000',
      diseaseCode: '2500',
      diagnoseStateCode: '1',
    };
    expect(run(adult(baby))).toEqual(['birthDate:neonatalAge']);
    expect(run(adult({ ...baby, birthDate: d('2024-12-20') }))).toEqual([]);
  });

  it('AIDS/HIV cards need demographics and a township-level registered address', () => {
    const hiv = adult({ diseaseCode: '0601', diagnoseStateCode: '2' });
    expect(run(hiv)).toEqual([
      'educationCode:hivRequired',
      'maritalStatusCode:hivRequired',
      'nationCode:hivRequired',
      'permanentAddrCode:hivRequired',
      'permanentAddrDetail:hivRequired',
    ]);
    expect(
      run({ ...hiv, nationCode: '01', maritalStatusCode: '20', educationCode: '20', permanentAddrCode: '440103002', permanentAddrDetail: '某路1号' }),
    ).toEqual([]);
  });

  it('reporter 2–20 characters and reporting area required; notes at most 50 characters', () => {
    expect(run(adult({ fillDoctor: undefined, reportZoneCode: undefined, notes: 'x'.repeat(51) }))).toEqual([
      'fillDoctor:required',
      'notes:maxLength',
      'reportZoneCode:required',
    ]);
  });
});
