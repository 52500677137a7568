// The early-warning triggers (docs/warning.md): which records raise, confirm, close or mark known a
// notifiable disease, with negation in free text, and the trigger list as replaceable, validated data.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { unknownKeys } from '../../shared/config/every-object.js';
import { TriggerSet } from '../../shared/warning/triggers.js';
import builtInTriggers from '../../shared/warning/triggers.json' with { type: 'json' };
import { evaluate, type Evidence } from '../../shared/warning/evaluate.js';
import { evidenceOfReason, evidenceReason } from '../../shared/warning/store.js';
import { findTerms } from '../../shared/warning/text.js';
import { diseaseByIcd10, fold, loadTriggers } from '../../shared/warning/triggers.js';
import { notifiableDiseases } from '../../schemas/codes/lists.js';

const set = loadTriggers();
const now = new Date('2026-03-10T08:00:00Z');
const recent = '2026-03-10 09:00:00';
const brief = (e: Evidence) => `${e.name}${e.subtype ? `/${e.subtype}` : ''}:${e.kind}:${e.effect}:${e.trigger}`;
const ev = (resource: string, rec: Record<string, unknown>) => evaluate(resource, rec, set, now).evidence.map(brief);

describe('notifiable diseases by ICD-10', () => {
  it('categories, ranges and subcodes; the most specific rule wins', () => {
    expect(diseaseByIcd10('A15.0')?.name).toBe('肺结核');
    expect(diseaseByIcd10('B18.1')?.name).toBe('病毒性肝炎');
    expect(diseaseByIcd10('a00.9')?.name).toBe('霍乱');
    expect(diseaseByIcd10('U07.1')?.name).toBe('新型冠状病毒感染');
    expect(diseaseByIcd10('U07.3')).toBeNull();
    // A22.1 pulmonary anthrax is managed as class A (2 h), A22 anthrax is not.
    expect(diseaseByIcd10('A22.1')).toMatchObject({ name: '肺炭疽', classA: true, deadlineHours: 2 });
    expect(diseaseByIcd10('A22.0')).toMatchObject({ name: '炭疽', classA: false, deadlineHours: 24 });
    expect(diseaseByIcd10('A20')).toMatchObject({ name: '鼠疫', classA: true, deadlineHours: 2 });
    expect(diseaseByIcd10('U04.9')).toMatchObject({ classA: true });
    expect(diseaseByIcd10('J18.9')).toBeNull();
    expect(diseaseByIcd10('FR001')).toBeNull();
  });

  it('every disease of the list with an ICD-10 code is reachable by it', () => {
    for (const n of notifiableDiseases) {
      // Codes in brackets explain, they are not the disease's own ("no specific code (A40.8/A49.1)").
      const first = /([A-Z]\d{2}(?:\.\d+)?)/.exec(n.icd10.replace(/\([^)]*\)/g, ''))?.[1];
      if (!first) continue;
      expect(diseaseByIcd10(first)?.name, `${n.name} ${first}`).toBe(n.name);
    }
  });
});

describe('negation in free text', () => {
  const t = (text: string, term: string) => findTerms(text, [fold(term)]).map((h) => (h.negated ? 'neg' : h.history ? 'hist' : 'pos'));
  it.each([
    ['否认肝炎、结核等传染病史', '结核', ['neg']],
    ['无明显诱因出现发热，伴咳嗽', '发热', ['pos']],
    ['无发热', '发热', ['neg']],
    ['乙肝表面抗原阴性', '乙肝', ['neg']],
    ['结核杆菌未检出', '结核', ['neg']],
    ['考虑肺结核', '肺结核', ['pos']],
    ['排除肺结核', '肺结核', ['neg']],
    ['不除外肺结核可能', '肺结核', ['neg']],
    ['既往肺结核病史10年', '肺结核', ['hist']],
    ['未见明显空洞，右上肺见空洞影', '空洞', ['neg', 'pos']],
    ['非结核分枝杆菌感染', '结核', ['neg']],
  ] as const)('%s / %s', (text, term, want) => {
    expect(t(text, term)).toEqual(want);
  });
});

describe('a diagnosis', () => {
  it('raises by its ICD-10 code, national or the hospital’s own', () => {
    expect(ev('emrActivityInfo', { wmDiseaseCode: 'A15.0', wmDiseaseName: '肺结核', diagnoseTime: recent })).toEqual(['肺结核:diagnosis:raise:icd10']);
    expect(ev('emrActivityInfo', { wmDiseaseCode: 'HOSP-77', _local: { diseaseCode: { code: 'B18.1' } }, diagnoseTime: recent })).toEqual([
      '病毒性肝炎:diagnosis:raise:icd10',
    ]);
  });

  it('raises by name when no code says it, and closes when the name rules it out', () => {
    expect(ev('emrActivityInfo', { wmDiseaseCode: 'FR001', wmDiseaseName: '手足口病', diagnoseTime: recent })).toEqual(['手足口病:keyword:raise:kw-hfmd']);
    expect(ev('emrActivityInfo', { wmDiseaseCode: 'X1', wmDiseaseName: '肺部感染（排除肺结核）', diagnoseTime: recent })).toEqual([
      '肺结核:keyword:close:kw-tb',
    ]);
  });

  it('a differential diagnosis or a TCM name raises nothing', () => {
    expect(ev('emrFirstCourse', { wmDiffDiagnosisCode: 'A15.0', wmDiffDiagnosisName: '肺结核', operationTime: recent })).toEqual([]);
  });

  it('a revised diagnosis closes the initial one it replaces', () => {
    const e = ev('emrAdmissionInfo', { wmInitalDiagnosisCode: 'A15.0', wmRevisedDiagnosisCode: 'J18.9', operationTime: recent });
    expect(e).toEqual(['肺结核:diagnosis:close:icd10']);
    const kept = ev('emrAdmissionInfo', { wmInitalDiagnosisCode: 'A15.0', wmConfirmedDiagnosisCode: 'A15.1', operationTime: recent });
    expect(kept.sort()).toEqual(['肺结核:diagnosis:raise:icd10', '肺结核:diagnosis:raise:icd10']);
  });

  it('a field of several codes raises each notifiable disease it names, once each', () => {
    const r = evaluate('emrAdmissionRecord', { wmOtherDiagnosisCode: 'B20.0,B16.9,A15.0', wmOtherDiagnosisName: '其他诊断', operationTime: recent }, set, now);
    expect(r.evidence.map((e) => `${brief(e)}:${e.field}:${e.detail}`).sort()).toEqual([
      '病毒性肝炎:diagnosis:raise:icd10:wmOtherDiagnosisCode:B16.9',
      '肺结核:diagnosis:raise:icd10:wmOtherDiagnosisCode:A15.0',
      '艾滋病(含HIV感染):diagnosis:raise:icd10:wmOtherDiagnosisCode:B20.0',
    ]);
    // Two codes of one disease are one piece of evidence; a code of no notifiable disease adds none.
    expect(ev('emrActivityInfo', { wmDiseaseCode: 'A15.0；A15.1|J18.9', diagnoseTime: recent })).toEqual(['肺结核:diagnosis:raise:icd10']);
  });

  it('the outpatient record’s initial diagnosis code (初步诊断代码) raises; the observation record’s first-visit flag does not', () => {
    expect(ev('emrOutpatientRecord', { initalDiagnosisCode: 'A00.9', outpatientDate: recent })).toEqual(['霍乱:diagnosis:raise:icd10']);
    expect(ev('emrOutpatientObs', { initalDiagnosisCode: '1', observationDate: recent })).toEqual([]);
    expect(ev('emrOutpatientObs', { initalDiagnosisCode: 'A00.9', observationDate: recent })).toEqual([]);
  });

  it('a revised initial diagnosis does not prompt through its name either', () => {
    const revised = {
      wmInitalDiagnosisCode: 'A00.9',
      wmInitalDiagnosisName: '霍乱',
      wmRevisedDiagnosisCode: 'K52.9',
      wmRevisedDiagnosisName: '胃肠炎',
      operationTime: recent,
    };
    expect(ev('emrAdmissionInfo', revised)).toEqual(['霍乱:diagnosis:close:icd10']);
    // Revised by name only (no codes): the initial name is superseded all the same.
    expect(ev('emrAdmissionInfo', { wmInitalDiagnosisName: '霍乱', wmRevisedDiagnosisName: '胃肠炎', operationTime: recent })).toEqual([]);
    // Confirmed as the same disease: it still raises (by code, and no keyword twice).
    expect(ev('emrAdmissionInfo', { ...revised, wmRevisedDiagnosisCode: 'A00.0', wmRevisedDiagnosisName: '霍乱' })).toEqual([
      '霍乱:diagnosis:raise:icd10',
      '霍乱:diagnosis:raise:icd10',
    ]);
    // A disease the record closed by code is not raised by its own superseded name, even in another wording.
    expect(
      ev('emrAdmissionInfo', { wmInitalDiagnosisCode: 'A15.0', wmInitalDiagnosisName: '继发性肺结核', wmRevisedDiagnosisCode: 'J18.9', operationTime: recent }),
    ).toEqual(['肺结核:diagnosis:close:icd10']);
  });

  it('the history in a chief complaint marks a known case', () => {
    expect(ev('emrOutpatientRecord', { chiefComplaint: '咳嗽3天，既往乙型肝炎病史', operationTime: recent })).toEqual(['病毒性肝炎/乙肝:keyword:known:kw-hbv']);
  });

  it('a voided diagnosis closes what it raised; one older than the window raises nothing', () => {
    expect(ev('emrActivityInfo', { wmDiseaseCode: 'A15.0', invalidFlag: 1, diagnoseTime: recent })).toEqual(['肺结核:diagnosis:close:icd10']);
    expect(ev('emrActivityInfo', { wmDiseaseCode: 'A15.0', diagnoseTime: '2025-12-01 09:00:00' })).toEqual([]);
  });
});

describe('a lab result', () => {
  it.each([
    [{ itemName: '乙型肝炎表面抗原定性(HBsAg)测定', examinationResultCode: '01' }, ['病毒性肝炎/乙肝:lab:raise:hbsag']],
    [{ itemName: 'HBsAg', examinationResultName: '阴性' }, ['病毒性肝炎/乙肝:lab:close:hbsag']],
    [{ itemName: 'HBsAg定量', examinationQuantification: '250.3', examinationQuantificationUnit: 'IU/mL' }, ['病毒性肝炎/乙肝:lab:raise:hbsag']],
    [{ itemName: 'HBsAg定量', examinationQuantification: '<0.05' }, ['病毒性肝炎/乙肝:lab:close:hbsag']],
    [{ itemName: 'HIV抗体确证试验', examinationResultName: '阳性' }, ['艾滋病(含HIV感染):lab:raise:hiv-confirm']],
    [{ itemName: 'HIV抗体初筛', examinationResultName: '阳性' }, ['艾滋病(含HIV感染):lab:confirm:hiv-screen']],
    [{ itemName: 'Xpert MTB/RIF', examinationResultName: '检出' }, ['肺结核:lab:raise:tb-xpert']],
    [{ itemName: '结核分枝杆菌核酸', examinationResultName: '未检出' }, ['肺结核:lab:close:tb-xpert']],
    [{ itemName: '甲型流感病毒抗原', examinationResultCode: '01' }, ['流行性感冒:lab:raise:flu']],
    [{ itemName: 'TPPA', examinationResultName: '阳性(+)' }, ['梅毒:lab:raise:syphilis-tppa']],
    [{ itemName: '登革病毒NS1抗原', examinationResultCode: '01' }, ['登革热:lab:raise:dengue']],
    [{ itemName: '谷丙转氨酶', examinationQuantification: '55.6', examinationQuantificationRi: '2' }, []],
    [{ itemName: 'HBsAg' }, []],
  ] as const)('%o', (rec, want) => {
    expect(ev('emrExLabItem', { ...rec, operationTime: recent })).toEqual(want);
  });

  it('a cancelled (voided) positive closes; an old positive raises nothing', () => {
    expect(ev('emrExLabItem', { itemName: 'HBsAg', examinationResultCode: '01', invalidFlag: 1, operationTime: recent })).toEqual([
      '病毒性肝炎/乙肝:lab:close:hbsag',
    ]);
    expect(ev('emrExLabItem', { itemName: 'HBsAg', examinationResultCode: '01', operationTime: '2025-01-01 08:00:00' })).toEqual([]);
  });
});

describe('orders, exams, deaths and cards', () => {
  it('a special drug asks for a diagnosis; symptom drugs are counted, not prompted', () => {
    const r = evaluate('emrOrderItem', { drugName: '异烟肼片', operationTime: recent }, set, now);
    expect(r.evidence.map(brief)).toEqual(['肺结核:drug:confirm:anti-tb']);
    expect(r.evidence[0]!.matches).toEqual(['肺结核']);
    const s = evaluate('emrOrderItem', { drugName: '布洛芬缓释胶囊', operationTime: recent }, set, now);
    expect(s.evidence).toEqual([]);
    expect(s.symptomDrugs).toEqual([{ class: 'antipyretic', drug: '布洛芬缓释胶囊' }]);
    expect(evaluate('emrOrderItem', { drugName: '头孢克肟', operationTime: recent }, set, now).symptomDrugs.map((d) => d.class)).toEqual(['antibacterial']);
  });

  it('a cavity on a chest CT suggests tuberculosis; a cavity elsewhere does not', () => {
    expect(ev('emrExClinical', { examinationObjectiveDesc: '右肺上叶见厚壁空洞，周围见卫星灶。', examinationReportDate: recent })).toEqual([
      '肺结核:keyword:raise:kw-tb-cavity',
    ]);
    expect(ev('emrExClinical', { examinationObjectiveDesc: '鼻窦空洞样改变。', examinationReportDate: recent })).toEqual([]);
    expect(ev('emrExClinical', { examinationObjectiveDesc: '双肺未见空洞。', examinationReportDate: recent })).toEqual(['肺结核:keyword:close:kw-tb-cavity']);
  });

  it('a death from an infectious cause, and an unexplained death', () => {
    expect(ev('emrDeathInfo', { directCauseCode: 'A39.2', directCauseName: '脑膜炎球菌败血症', deadDate: recent })).toEqual([
      '流行性脑脊髓膜炎:death:raise:icd10',
    ]);
    const unexplained = evaluate('emrDeathInfo', { directCauseName: '不明原因死亡', deadDate: recent }, set, now).evidence;
    expect(unexplained.map(brief)).toEqual(['新发传染病/突发原因不明的传染病:death:raise:kw-unexplained-death']);
    expect(unexplained[0]!.syndrome).toBe('不明原因死亡');
  });

  it('a report card marks its disease carded', () => {
    expect(ev('emrInfReport', { diseaseCode: '0302', diseaseName: '乙肝', reportDate: recent })).toEqual(['病毒性肝炎:card:carded:card']);
    expect(ev('emrInfReport', { diseaseCode: '0100', reportDate: recent })).toEqual(['鼠疫:card:carded:card']);
  });
});

describe('the trigger list as data', () => {
  it('is versioned; a hospital’s own file replaces it, validated with each wrong field named', () => {
    expect(set.version).toMatch(/^\d{4}\./);
    const dir = mkdtempSync(join(tmpdir(), 'cdc-triggers-'));
    const own = join(dir, 'own.json');
    writeFileSync(
      own,
      JSON.stringify({ version: 'h-1', labTests: [{ id: 'x', disease: '霍乱', names: ['霍乱快检'] }], specialDrugs: [], symptomDrugs: [], keywords: [] }),
    );
    const mine = loadTriggers(own);
    expect(mine.version).toBe('h-1');
    expect(evaluate('emrExLabItem', { itemName: '霍乱快检', examinationResultCode: '01', operationTime: recent }, mine, now).evidence.map(brief)).toEqual([
      '霍乱:lab:raise:x',
    ]);
    writeFileSync(
      own,
      JSON.stringify({ version: 'h-2', labTests: [{ id: 'x', disease: '感冒', names: [] }], specialDrugs: [], symptomDrugs: [], keywords: [] }),
    );
    expect(() => loadTriggers(own)).toThrow(/labTests\.0\.disease: not a disease of notifiable_diseases\.csv; labTests\.0\.names/);
  });
});

describe('keys a list does not know', () => {
  it('are named at any depth, with their index, and logged once at start for a hospital’s file; the shipped list has none', () => {
    expect(unknownKeys(TriggerSet, builtInTriggers)).toEqual([]);
    const file = {
      version: 'h-3',
      windowDay: 7,
      labTests: [{ id: 'x', disease: '霍乱', names: ['霍乱快检'], codess: ['1'] }],
      specialDrugs: [],
      symptomDrugs: [],
      keywords: [],
    };
    expect(unknownKeys(TriggerSet, file)).toEqual(['labTests.0.codess', 'windowDay']);
    const own = join(mkdtempSync(join(tmpdir(), 'cdc-triggers-')), 'own.json');
    writeFileSync(own, JSON.stringify(file));
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      expect(loadTriggers(own).windowDays).toBe(30);
      const lines = out.mock.calls.map(([l]) => JSON.parse(String(l)) as { level: string; file: string; keys: string[] });
      expect(lines).toEqual([expect.objectContaining({ level: 'warn', file: own, keys: ['labTests.0.codess', 'windowDay'] })]);
    } finally {
      out.mockRestore();
    }
  });
});

describe("a case change's reason (the history's evidence)", () => {
  it("reads back what the warning run wrote, a trigger with / included; a person's reason is not evidence", () => {
    const ev = [
      { kind: 'diagnosis', trigger: 'icd10', effect: 'raise' },
      { kind: 'lab', trigger: 'loinc/5195-3', effect: 'confirm' },
    ];
    expect(evidenceReason(ev)).toBe('evidence: diagnosis/icd10/raise, lab/loinc/5195-3/confirm');
    expect(evidenceOfReason(evidenceReason(ev))).toEqual(ev);
    expect(evidenceOfReason(evidenceReason([]))).toEqual([]);
    expect(evidenceOfReason('医生排除 (excluded)：考虑药疹')).toBeNull();
    expect(evidenceOfReason(null)).toBeNull();
    // Cut at the history's 500 characters: the whole items only.
    const many = Array.from({ length: 40 }, (_, i) => ({ kind: 'text', trigger: `word-${i}`, effect: 'raise' }));
    const cut = evidenceReason(many);
    expect(cut.length).toBe(500);
    const back = evidenceOfReason(cut)!;
    expect(back.length).toBeGreaterThan(10);
    expect(back).toEqual(many.slice(0, back.length));
    expect(evidenceOfReason(`${cut.slice(0, 497)}/ra`)!.at(-1)?.effect).not.toBe('ra');
  });
});
