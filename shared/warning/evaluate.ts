/**
 * What one record says about notifiable disease (docs/warning.md "Triggers"): the evidence it
 * raises, confirms, closes or marks known, for the pending-case layer to gather per (org, patient,
 * disease). Pure: the record as stored (national codes, `_local` holding the hospital's own), the
 * trigger lists and the clock in, evidence out — the same record always gives the same evidence.
 *
 *   evaluate('emrExLabItem', { itemName: 'HBsAg', examinationResultCode: '01', … }, loadTriggers(), now)
 *   // → { evidence: [{ disease: '病毒性肝炎', subtype: '乙肝', kind: 'lab', effect: 'raise', … }] }
 */
import { resources } from '../../schemas/index.js';
import { diseaseOf as cardDiseaseCode } from '../../schemas/report-card.js';
import { parseTime } from '../time/index.js';
import { notifiableDiseases } from '../../schemas/codes/lists.js';
import { diseaseByIcd10, fold, notifiable, type LabTrigger, type NotifiableDisease, type TriggerSet } from './triggers.js';
import { findTerms, namesMatch } from './text.js';

export type EvidenceKind = 'diagnosis' | 'lab' | 'death' | 'drug' | 'keyword' | 'card';

/**
 * raise: a suspected case to confirm and report (待确认); confirm: a case awaiting a diagnosis
 * (待确诊: a screening test, a special drug); close: this source no longer supports the disease (a
 * negative or voided result, a ruled-out or revised diagnosis); known: the patient's history names
 * it (a known case: 全病程管理 notice, not a report prompt); carded: a report card names it.
 */
export type Effect = 'raise' | 'confirm' | 'close' | 'known' | 'carded' | 'snoozed';

/** What the console and the card form call each kind of evidence. */
export const EVIDENCE_KIND_NAME: Record<EvidenceKind, string> = {
  diagnosis: '诊断',
  lab: '检验',
  death: '死亡',
  drug: '用药',
  keyword: '文本',
  card: '报告卡',
};
/** What the console calls each effect of evidence on its case (the states it leads to, docs/warning.md "Cases"). */
export const EFFECT_NAME: Record<Effect, string> = {
  raise: '提示疑似（待确认）',
  confirm: '提示待确诊',
  close: '不再支持（阴性、作废或修正）',
  known: '既往病史（已知病例）',
  carded: '已有报告卡',
  snoozed: '暂不提示',
};

export interface Evidence extends NotifiableDisease {
  subtype?: string;
  syndrome?: string;
  kind: EvidenceKind;
  effect: Effect;
  /** The trigger: 'icd10', a lab test's or drug's id, a keyword list's id, 'card'. */
  trigger: string;
  /** The record's field that carried it. */
  field: string;
  /** What matched, for the doctor: a code, an item name and its result, a clause (no identity data). */
  detail: string;
  /** When the evidence arose (the record's business time), when the record says. */
  at: Date | null;
  /** For a special drug: the diagnoses that would explain it. */
  matches?: string[];
}

export interface Evaluation {
  evidence: Evidence[];
  /** Symptom drugs prescribed (antiviral, antibacterial, antipyretic): syndrome counts, not prompts. */
  symptomDrugs: Array<{ class: string; drug: string }>;
}

type Rec = Record<string, unknown>;

const str = (v: unknown): string | null => (typeof v === 'string' && v.trim() !== '' ? v.trim() : typeof v === 'number' ? String(v) : null);

/** Diagnosis-code fields that state a diagnosis (not a differential, a TCM name or a first-visit flag). */
const DIAGNOSIS_CODE = /(?:diagnosis|disease|cause)Code$/i;
const NOT_A_DIAGNOSIS = /^tcm|Diff|Primary/;
/**
 * Fields named like a diagnosis that are not one, per resource: emrOutpatientObs's initalDiagnosisCode
 * is its first-visit flag (初诊标志代码), while emrOutpatientRecord's field of the same name is the
 * initial diagnosis code (初步诊断代码) and is read (docs/warning.md "Evidence").
 */
const FLAGS: Record<string, string[]> = { emrOutpatientObs: ['initalDiagnosisCode'] };
const notADiagnosis = (resource: string, field: string) => NOT_A_DIAGNOSIS.test(field) || (FLAGS[resource]?.includes(field) ?? false);
/** An initial diagnosis, superseded within the record by a revised or confirmed one. */
const INITIAL = /Inital/;
const LATER = /Revised|Confirmed/;
/** Several codes in one field ("A15.0,B18.1"), as discharge summaries send other diagnoses. */
const CODE_SEPARATOR = /[,，;；|]/;

/** The record names a revised or confirmed diagnosis (by code or by name): its initial one is superseded. */
function revisedInRecord(resource: string, rec: Rec): boolean {
  const r = resources[resource];
  if (!r) return false;
  return Object.keys(r.fields).some((k) => LATER.test(k) && /Diagnosis(?:Code|Name)$/.test(k) && !notADiagnosis(resource, k) && str(rec[k]) !== null);
}

const TIME_ORDER = [
  'examinationReportDate',
  'diagnoseTime',
  'deadDate',
  'reportDate',
  'activityTime',
  'examinationDate',
  'visitDate',
  'admissionDate',
  'dischargeDate',
  'operationTime',
  'createDate',
];

function businessTime(rec: Rec): Date | null {
  for (const k of TIME_ORDER) {
    const v = rec[k];
    if (v instanceof Date) return v;
    const t = parseTime(v);
    if (t) return t;
  }
  return null;
}

function localCode(rec: Rec, field: string): string | null {
  const local = rec._local as Record<string, { code?: unknown }> | undefined;
  return str(local?.[field]?.code);
}

// ---- diagnoses by ICD-10 --------------------------------------------------------------------------

function codedDiagnoses(resource: string, rec: Rec, kind: EvidenceKind, at: Date | null): Evidence[] {
  const r = resources[resource];
  if (!r) return [];
  const fields = Object.keys(r.fields).filter((k) => DIAGNOSIS_CODE.test(k) && !notADiagnosis(resource, k));
  const hasLater = fields.some((k) => LATER.test(k) && str(rec[k]));
  const out: Evidence[] = [];
  const later = new Set<string>();
  const initial: Evidence[] = [];
  for (const field of fields) {
    // The national code as mapped; the hospital's own code as a fallback (a local ICD-10 code).
    const codes = [str(rec[field]), localCode(rec, field)].filter((c): c is string => c !== null);
    // Several codes in one field: each notifiable disease named is evidence of its own, once per
    // field, naming its own code (docs/warning.md "Evidence").
    const found: Array<{ d: NotifiableDisease; code: string }> = [];
    for (const code of codes) {
      const parts = code
        .split(CODE_SEPARATOR)
        .map((c) => c.trim())
        .filter((c) => c !== '');
      for (const part of parts) {
        const d = diseaseByIcd10(part);
        if (d && !found.some((x) => x.d.name === d.name)) found.push({ d, code: parts.length > 1 ? part : codes[0]! });
      }
      // The hospital's own code is read only when the national one names no notifiable disease.
      if (found.length) break;
    }
    if (!found.length) continue;
    for (const { d, code } of found) {
      const e: Evidence = { ...d, kind, effect: 'raise', trigger: 'icd10', field, detail: code, at };
      if (hasLater && INITIAL.test(field)) initial.push(e);
      else {
        if (LATER.test(field)) later.add(d.name);
        out.push(e);
      }
    }
  }
  // An initial diagnosis the revision or confirmation no longer names is closed by it.
  for (const e of initial) out.push(later.has(e.name) ? e : { ...e, effect: 'close', detail: `${e.detail}（已修正 revised）` });
  return out;
}

// ---- free text ------------------------------------------------------------------------------------

function keywordEvidence(resource: string, rec: Rec, set: TriggerSet, at: Date | null, kind: EvidenceKind, onlyFields?: string[]): Evidence[] {
  const r = resources[resource];
  if (!r) return [];
  const textFields =
    onlyFields ??
    Object.entries(r.fields)
      .filter(([k, d]) => d.kind === 'text' || /DiseaseName$|DiagnosisName$|CauseName$/.test(k))
      .map(([k]) => k);
  // The name of an initial diagnosis the record revised or confirmed is superseded, as its code is
  // (codedDiagnoses): the revision speaks for the record, and a revised-away disease is not prompted
  // through its old name (docs/warning.md "Evidence").
  const superseded = onlyFields === undefined && revisedInRecord(resource, rec);
  const out: Evidence[] = [];
  for (const t of set.keywords) {
    for (const field of textFields) {
      if (t.fields && !t.fields.includes(field)) continue;
      if (notADiagnosis(resource, field.replace(/Name$/, 'Code'))) continue;
      if (superseded && INITIAL.test(field) && /DiagnosisName$/.test(field)) continue;
      for (const hit of findTerms(str(rec[field]), t.terms, t.context)) {
        const effect: Effect = hit.negated ? 'close' : hit.history ? 'known' : 'raise';
        out.push({
          ...notifiable(t.disease),
          subtype: t.subtype,
          syndrome: t.syndrome,
          kind,
          effect,
          trigger: t.id,
          field,
          detail: hit.clause.slice(0, 120),
          at,
        });
      }
    }
  }
  return out;
}

// ---- lab results ----------------------------------------------------------------------------------

type Reading = 'positive' | 'negative' | 'unknown';

const POSITIVE_TEXT = /阳性|弱阳|检出(?!限)|reactive|positive|\(\+\)|^\+$/;
const NEGATIVE_TEXT = /阴性|未检出|非反应|nonreactive|negative|\(-\)|^-$/;

function number(v: unknown): number | null {
  const s = str(v);
  if (!s) return null;
  const m = /^[<>≤≥]?\s*(-?\d+(?:\.\d+)?)/.exec(s.normalize('NFKC'));
  return m ? Number(m[1]) : null;
}

function readLab(rec: Rec, t: LabTrigger): Reading {
  const code = str(rec.examinationResultCode);
  if (code === '01') return 'positive';
  if (code === '02' || code === '07') return 'negative';
  for (const v of [rec.examinationResultName, rec.examinationQuantification, rec.sourceExaminationResultName]) {
    const s = str(v);
    if (!s) continue;
    const f = fold(s);
    if (NEGATIVE_TEXT.test(f)) return 'negative';
    if (POSITIVE_TEXT.test(f)) return 'positive';
  }
  const value = number(rec.examinationQuantification);
  if (t.above !== undefined && value !== null) return value > t.above ? 'positive' : 'negative';
  const flag = str(rec.examinationQuantificationRi);
  if (t.flagHigh && flag === '2') return 'positive';
  if (t.flagHigh && flag === '0') return 'negative';
  return 'unknown';
}

function labEvidence(rec: Rec, set: TriggerSet, at: Date | null): Evidence[] {
  const name = str(rec.itemName);
  const code = str(rec.itemCode);
  const out: Evidence[] = [];
  for (const t of set.labTests) {
    if (!(namesMatch(name, t.names) || (code !== null && t.codes.includes(code)))) continue;
    const reading = readLab(rec, t);
    if (reading === 'unknown') continue;
    const result = str(rec.examinationResultName) ?? str(rec.examinationQuantification) ?? str(rec.examinationResultCode) ?? '';
    const effect: Effect = reading === 'negative' ? 'close' : t.screening ? 'confirm' : 'raise';
    out.push({ ...notifiable(t.disease), subtype: t.subtype, kind: 'lab', effect, trigger: t.id, field: 'itemName', detail: `${name ?? code}: ${result}`, at });
    // The first (most specific) test of the list that names the item decides: "HIV抗体确证" is a
    // confirmation, not also a screening.
    break;
  }
  return out;
}

// ---- orders ----------------------------------------------------------------------------------------

function drugEvidence(rec: Rec, set: TriggerSet, at: Date | null): Evaluation {
  const drug = str(rec.drugName);
  const evidence: Evidence[] = [];
  const symptomDrugs: Evaluation['symptomDrugs'] = [];
  if (!drug) return { evidence, symptomDrugs };
  for (const t of set.specialDrugs) {
    if (!namesMatch(drug, t.names)) continue;
    evidence.push({
      ...notifiable(t.suspect),
      subtype: t.subtype,
      kind: 'drug',
      effect: 'confirm',
      trigger: t.id,
      field: 'drugName',
      detail: `${t.class}: ${drug}`,
      at,
      matches: t.matches,
    });
  }
  for (const c of set.symptomDrugs) if (namesMatch(drug, c.names)) symptomDrugs.push({ class: c.class, drug });
  return { evidence, symptomDrugs };
}

// ---- cards ------------------------------------------------------------------------------------------

function cardEvidence(rec: Rec, set: TriggerSet, at: Date | null): Evidence[] {
  const code = cardDiseaseCode(rec);
  // The NNDRS code of a subtype (0302 乙肝) belongs to its disease's row (0300 病毒性肝炎).
  const row = code
    ? (notifiableDiseases.find((n) => n.nndrs.startsWith(code)) ??
      notifiableDiseases.find((n) => /^\d{4}/.test(n.nndrs) && n.nndrs.slice(0, 2) === code.slice(0, 2)))
    : undefined;
  if (row) return [{ ...notifiable(row.name), kind: 'card', effect: 'carded', trigger: 'card', field: 'diseaseCode', detail: code!, at }];
  return keywordEvidence('emrInfReport', rec, set, at, 'card', ['diseaseName'])
    .filter((e) => e.effect === 'raise')
    .map((e) => ({ ...e, effect: 'carded' as const, trigger: 'card' }));
}

// ---- one record -------------------------------------------------------------------------------------

/** The evidence one record gives (see the module comment). */
export function evaluate(resource: string, rec: Rec, set: TriggerSet, now: Date): Evaluation {
  const at = businessTime(rec);
  let result: Evaluation;
  switch (resource) {
    case 'emrExLabItem':
      result = { evidence: labEvidence(rec, set, at), symptomDrugs: [] };
      break;
    case 'emrOrderItem':
      result = drugEvidence(rec, set, at);
      break;
    case 'emrInfReport':
      result = { evidence: cardEvidence(rec, set, at), symptomDrugs: [] };
      break;
    default: {
      const kind: EvidenceKind = resource === 'emrDeathInfo' ? 'death' : 'diagnosis';
      const coded = codedDiagnoses(resource, rec, kind, at);
      // Free text adds what no code said; a coded disease needs no keyword evidence of its own.
      const codedNames = new Set(coded.filter((e) => e.effect === 'raise').map((e) => e.name));
      const words = keywordEvidence(resource, rec, set, at, resource === 'emrDeathInfo' ? 'death' : 'keyword').filter(
        (e) => !(e.effect === 'raise' && codedNames.has(e.name)),
      );
      result = { evidence: [...coded, ...words], symptomDrugs: [] };
    }
  }
  // A voided record closes what it raised; a result older than the window raises nothing.
  if (rec.invalidFlag === 1 || rec.invalidFlag === '1') {
    return {
      evidence: result.evidence.filter((e) => e.effect !== 'close').map((e) => ({ ...e, effect: 'close' as const, detail: `${e.detail}（已作废 voided）` })),
      symptomDrugs: [],
    };
  }
  const windowMs = (days: number) => days * 86_400_000;
  const labWindow = (e: Evidence) => set.labTests.find((t) => t.id === e.trigger)?.windowDays ?? set.windowDays;
  const stale = (e: Evidence) => e.at !== null && now.getTime() - e.at.getTime() > windowMs(e.kind === 'lab' ? labWindow(e) : set.windowDays);
  return { evidence: result.evidence.filter((e) => !((e.effect === 'raise' || e.effect === 'confirm') && stale(e))), symptomDrugs: result.symptomDrugs };
}
