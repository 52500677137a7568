/**
 * HIS traffic whose truth is known, for measuring early warning (docs/warning.md "Measured against
 * ground truth"; bench/ground-truth.ts, test/e2e/warning-truth.test.ts). Each patient is one
 * archetype: a true notifiable case caught by one rule (a class A diagnosis, another notifiable
 * diagnosis, a positive pathogen test, an infectious death, a keyword in an exam report), or a decoy
 * that must raise no prompt (a negative test, a denied history, a normal exam, a chronic case already
 * carded coming back, an ordinary illness). Every free text is written for its archetype — no record
 * carries the generic samples' positive or suspicious wording — so a prompt is a finding, not noise.
 * Deterministic from the seed.
 */
import { codedDiagnosis, sample } from './samples.js';

export type Rule = 'icd10-class-a' | 'icd10' | 'lab' | 'death' | 'keyword';
export type Decoy = 'lab-negative' | 'denied-history' | 'exam-normal' | 'chronic-known' | 'ordinary';

export interface TruthPatient {
  orgCode: string;
  patientId: string;
  /** A true case: the disease (notifiable_diseases.csv name) and the rule that must catch it. */
  case: { disease: string; rule: Rule } | null;
  /** A decoy: what it looks like. */
  decoy: Decoy | null;
}

export interface TruthRecord {
  resource: string;
  body: Record<string, unknown>;
  patientId: string;
  /** The record whose 2xx starts the clock to the reminder (the case's raising record). */
  raises: boolean;
}

const ARCHETYPES: Array<{ case?: { disease: string; rule: Rule }; decoy?: Decoy }> = [
  { case: { disease: '霍乱', rule: 'icd10-class-a' } },
  { case: { disease: '肺结核', rule: 'icd10' } },
  { case: { disease: '流行性感冒', rule: 'icd10' } },
  { case: { disease: '病毒性肝炎', rule: 'lab' } },
  { case: { disease: '肺结核', rule: 'death' } },
  { case: { disease: '肺结核', rule: 'keyword' } },
  { decoy: 'lab-negative' },
  { decoy: 'denied-history' },
  { decoy: 'exam-normal' },
  { decoy: 'chronic-known' },
  { decoy: 'ordinary' },
  { decoy: 'ordinary' },
];

const DX: Record<string, [string, string]> = {
  霍乱: ['A00.9', '霍乱'],
  肺结核: ['A15.0', '肺结核，经显微镜下痰检查证实'],
  流行性感冒: ['J10.1', '甲型流行性感冒'],
};
const ORDINARY: Array<[string, string]> = [
  ['I10', '原发性高血压'],
  ['E11.9', '2型糖尿病'],
  ['K29.7', '胃炎'],
  ['M54.5', '腰痛'],
];

/** Local "yyyy-MM-dd HH:mm:ss" minutes ago. */
function ago(minutes: number): string {
  const d = new Date(Date.now() - minutes * 60_000);
  const p = (n: number) => String(n).padStart(2, '0');
  const local = new Date(d.getTime() + 8 * 3_600_000);
  return `${local.getUTCFullYear()}-${p(local.getUTCMonth() + 1)}-${p(local.getUTCDate())} ${p(local.getUTCHours())}:${p(local.getUTCMinutes())}:${p(local.getUTCSeconds())}`;
}

/** The patients and their records, parents first; `patients` rounds up to whole sets of archetypes. */
export function truthTraffic(o: { orgCode: string; patients: number; seed?: number; prefix?: string }): { patients: TruthPatient[]; records: TruthRecord[] } {
  const seed = o.seed ?? 1;
  const prefix = o.prefix ?? 'gt';
  const patients: TruthPatient[] = [];
  const records: TruthRecord[] = [];
  const sets = Math.ceil(o.patients / ARCHETYPES.length);
  let n = 0;
  for (let s = 0; s < sets; s++) {
    for (const a of ARCHETYPES) {
      n++;
      const pid = `${prefix}-${seed}-${n}`;
      // Adults (the sample's birth years by seed), a different person for every patient.
      const ps = seed * 1000 + n;
      const person = sample('emrPatientInfo', { orgCode: o.orgCode, id: pid, seed: ps });
      patients.push({ orgCode: o.orgCode, patientId: pid, case: a.case ?? null, decoy: a.decoy ?? null });
      const push = (resource: string, body: Record<string, unknown>, raises = false) => records.push({ resource, body, patientId: pid, raises });
      push('emrPatientInfo', person);
      const id = (kind: string) => `${pid}-${kind}`;
      const dx = (code: string, name: string, raises: boolean) => {
        const at = ago(15);
        push('emrActivityInfo', codedDiagnosis({ orgCode: o.orgCode, id: id('dx'), patientId: pid, seed: ps, code, name, diagnosedAt: at }), raises);
      };
      const lab = (itemName: string, result: [string, string], raises: boolean) => {
        push('emrExLab', { ...sample('emrExLab', { orgCode: o.orgCode, id: id('lab'), patientId: pid, seed: ps }), examinationObjectiveDesc: '详见检验明细' });
        push(
          'emrExLabItem',
          {
            ...sample('emrExLabItem', { orgCode: o.orgCode, id: id('lab-1'), parentId: id('lab'), seed: ps }),
            itemName,
            examinationResultCode: result[0],
            examinationResultName: result[1],
          },
          raises,
        );
      };
      const exam = (objective: string, subjective: string, raises: boolean) => {
        push(
          'emrExClinical',
          {
            ...sample('emrExClinical', { orgCode: o.orgCode, id: id('exam'), patientId: pid, seed: ps }),
            chiefComplaint: '体检',
            symptomDesc: '无不适',
            examinationObjectiveDesc: objective,
            examinationSubjectiveDesc: subjective,
          },
          raises,
        );
      };
      if (a.case) {
        const c = a.case;
        if (c.rule === 'icd10-class-a' || c.rule === 'icd10') dx(...DX[c.disease]!, true);
        if (c.rule === 'lab') lab('乙型肝炎病毒表面抗原', ['01', '阳性'], true);
        if (c.rule === 'death') {
          push(
            'emrDeathInfo',
            {
              ...sample('emrDeathInfo', { orgCode: o.orgCode, id: id('death'), patientId: pid, seed: ps }),
              deathDiagnosisCode: 'A15.0',
              deathDiagnosisName: '肺结核',
              directCauseCode: 'J96.9',
              directCauseName: '呼吸衰竭',
            },
            true,
          );
        }
        if (c.rule === 'keyword') exam('右上肺见斑片状高密度影，内见厚壁空洞。', '继发性肺结核，建议痰检。', true);
      } else {
        switch (a.decoy) {
          case 'lab-negative':
            lab('乙型肝炎病毒表面抗原', ['02', '阴性'], false);
            break;
          case 'denied-history':
            push('emrOutpatientRecord', {
              ...sample('emrOutpatientRecord', { orgCode: o.orgCode, id: id('op'), patientId: pid, seed: ps }),
              chiefComplaint: '头痛2天',
              presentIllnessHis: '2天前出现头痛，无发热。',
              pastIllnessHis: '否认肝炎、结核病史。否认传染病接触史。',
              wmDiagnosisCode: 'R51',
              wmDiagnosisName: '头痛',
            });
            break;
          case 'exam-normal':
            exam('双肺纹理清晰，未见空洞及实变影。', '胸部CT未见明显异常，未见结核征象。', false);
            break;
          case 'chronic-known': {
            // Carded for tuberculosis 10 days ago; today another visit with the same diagnosis.
            const card = sample('emrInfReport', { orgCode: o.orgCode, id: id('card'), patientId: pid, seed: ps });
            push('emrInfReport', {
              ...card,
              diseaseCode: '2606',
              diseaseName: '病原学阳性',
              diagnoseStateCode: '2',
              diagnoseStateName: '确诊病例',
              caseTypeCode: '3',
              caseTypeName: '未分型',
              onsetDate: ago(12 * 1440).slice(0, 10),
              diagnoseTime: ago(10 * 1440 + 60),
              reportDate: ago(10 * 1440),
              operationTime: ago(10 * 1440),
            });
            dx(...DX.肺结核!, false);
            break;
          }
          default: {
            const [code, name] = ORDINARY[n % ORDINARY.length]!;
            dx(code, name, false);
          }
        }
      }
    }
  }
  return { patients, records };
}
