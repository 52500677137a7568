/**
 * What a close computes for one organisation and one local day: the completeness checks and the
 * daily summary. Read-only SQL on the resource tables (parameterised, openGauss-safe; the figures
 * are assembled in TypeScript, never with jsonb builders). Retired records (作废) count neither as an
 * event nor as the record that answers one; test-mode records only in a test-mode close.
 *
 * Visits are keyed by (patientId, serialNumber): serialNumber is the visit number (门诊号/住院号)
 * shared by every record of the visit (docs/data-set.md "Parents"), so it is what ties a discharge
 * to its front page and its discharge record, and an admission to its admission record.
 */
import type { Tx } from '../db/index.js';
import { lists } from '../../schemas/codes/lists.js';
import { icdRules } from '../codes/similarity.js';

export interface DayScope {
  orgCode: string;
  /** [from, to): the local day's instants (day.ts dayBounds). */
  from: Date;
  to: Date;
  /** Count test-mode records (a test-mode close) or live ones. */
  test: boolean;
  /** Gaps listed per check (the counts are always complete). */
  listLimit: number;
}

export type CheckName = 'discharge' | 'admission' | 'labItem' | 'examItem' | 'order';

/** One gap: the records that are there (ids only, no personal data) and what is missing. */
export interface Gap {
  check: CheckName;
  /** The visit (discharge, admission checks). */
  patientId?: string;
  serialNumber?: string;
  /** The parent a child names but which is missing (lab and exam items). */
  parentId?: string;
  present: Array<{ resource: string; id: string }>;
  missing: string[];
}

export interface CheckResult {
  /** Events of the day the check looked at (discharges, admissions, items, orders). */
  total: number;
  gaps: number;
  /** Per missing resource, how many events lack it. */
  missing: Record<string, number>;
  list: Gap[];
  truncated: boolean;
}

export interface Completeness {
  checks: Record<CheckName, CheckResult>;
  gapCount: number;
}

export interface Summary {
  outpatientVisits: number;
  emergencyVisits: number;
  admissions: number;
  infectiousAdmissions: number;
  infectiousAdmissionsByDisease: Array<{ disease: string; count: number }>;
  discharges: number;
  deaths: number;
  reportCards: number;
  reportCardsByDisease: Array<{ diseaseCode: string | null; count: number }>;
  /** Every activity type of the day (前置软件值域25): distinct visits and activity records. */
  activityTypes: Array<{ code: string | null; name: string | null; visits: number; activities: number }>;
}

const live = (alias: string) => `${alias}.rec_retired = false AND ${alias}.rec_test = $4`;
const inDay = (col: string) => `${col} >= $2 AND ${col} < $3`;
const params = (s: DayScope) => [s.orgCode, s.from, s.to, s.test];
const visitKey = (p: string | null, s: string | null) => `${p ?? ''}\u0000${s ?? ''}`;

function limited(list: Gap[], limit: number): { list: Gap[]; truncated: boolean } {
  return { list: list.slice(0, limit), truncated: list.length > limit };
}

/**
 * Discharges of the day — a discharge activity (活动类型 9 出院), a discharge record (emrDischargeInfo)
 * or a front page (emrAdmissionRecord, 病案首页) whose discharge time lies in the day — each need
 * their front page and their discharge record (of any date: a differing date is another problem).
 */
async function dischargeCheck(tx: Tx, s: DayScope): Promise<{ result: CheckResult; visits: number }> {
  const res = await tx.query<{
    src: string;
    id: string;
    patient_id: string | null;
    serial_number: string | null;
    has_front_page: boolean;
    has_discharge: boolean;
  }>(
    `SELECT e.src, e.id, e.patient_id, e.serial_number,
            EXISTS (SELECT 1 FROM emr_admission_record r
                     WHERE r.org_code = $1 AND r.patient_id = e.patient_id AND r.serial_number = e.serial_number AND ${live('r')}) AS has_front_page,
            EXISTS (SELECT 1 FROM emr_discharge_info d
                     WHERE d.org_code = $1 AND d.patient_id = e.patient_id AND d.serial_number = e.serial_number AND ${live('d')}) AS has_discharge
       FROM (SELECT CAST('emrActivityInfo' AS varchar(40)) AS src, x.id, x.patient_id, x.serial_number FROM emr_activity_info x
              WHERE x.org_code = $1 AND x.activity_type_code = '9' AND ${inDay('x.activity_time')} AND ${live('x')}
             UNION ALL
             SELECT CAST('emrDischargeInfo' AS varchar(40)), d.id, d.patient_id, d.serial_number FROM emr_discharge_info d
              WHERE d.org_code = $1 AND ${inDay('d.discharge_date')} AND ${live('d')}
             UNION ALL
             SELECT CAST('emrAdmissionRecord' AS varchar(40)), r.id, r.patient_id, r.serial_number FROM emr_admission_record r
              WHERE r.org_code = $1 AND ${inDay('r.discharge_date')} AND ${live('r')}) e
      ORDER BY e.patient_id, e.serial_number, e.src, e.id`,
    params(s),
  );
  const visits = new Map<string, Gap & { ok: boolean }>();
  for (const r of res.rows) {
    const k = visitKey(r.patient_id, r.serial_number);
    let v = visits.get(k);
    if (!v) {
      const missing = [...(r.has_front_page ? [] : ['emrAdmissionRecord']), ...(r.has_discharge ? [] : ['emrDischargeInfo'])];
      v = { check: 'discharge', patientId: r.patient_id ?? '', serialNumber: r.serial_number ?? '', present: [], missing, ok: missing.length === 0 };
      visits.set(k, v);
    }
    v.present.push({ resource: r.src, id: r.id });
  }
  const gaps = [...visits.values()].filter((v) => !v.ok).map(({ ok: _ok, ...g }) => g);
  const missing: Record<string, number> = { emrAdmissionRecord: 0, emrDischargeInfo: 0 };
  for (const g of gaps) for (const m of g.missing) missing[m] = (missing[m] ?? 0) + 1;
  return { result: { total: visits.size, gaps: gaps.length, missing, ...limited(gaps, s.listLimit) }, visits: visits.size };
}

interface AdmissionRows {
  activities: Array<{
    id: string;
    patient_id: string | null;
    serial_number: string | null;
    disease_code: string | null;
    wm_disease_code: string | null;
    has_record: boolean;
  }>;
  records: Array<{ id: string; patient_id: string | null; serial_number: string | null; codes: Array<string | null> }>;
}

/**
 * Admissions of the day: admission activities (活动类型 5 入院) of the day, and admission records
 * (emrAdmissionInfo, 入院记录) whose admission time lies in the day. The data set has no other
 * admission event: the admission record is the thing checked, so the activity is the event.
 */
async function admissionRows(tx: Tx, s: DayScope): Promise<AdmissionRows> {
  const acts = await tx.query<AdmissionRows['activities'][number]>(
    `SELECT x.id, x.patient_id, x.serial_number, x.disease_code, x.wm_disease_code,
            EXISTS (SELECT 1 FROM emr_admission_info i
                     WHERE i.org_code = $1 AND i.patient_id = x.patient_id AND i.serial_number = x.serial_number AND ${live('i')}) AS has_record
       FROM emr_activity_info x
      WHERE x.org_code = $1 AND x.activity_type_code = '5' AND ${inDay('x.activity_time')} AND ${live('x')}
      ORDER BY x.patient_id, x.serial_number, x.id`,
    params(s),
  );
  const cols =
    'i.id, i.patient_id, i.serial_number, i.wm_inital_diagnosis_code, i.wm_revised_diagnosis_code, i.wm_confirmed_diagnosis_code, i.complementary_diagnosis_code';
  const recs = await tx.query<{
    id: string;
    patient_id: string | null;
    serial_number: string | null;
    wm_inital_diagnosis_code: string | null;
    wm_revised_diagnosis_code: string | null;
    wm_confirmed_diagnosis_code: string | null;
    complementary_diagnosis_code: string | null;
  }>(
    `SELECT ${cols} FROM emr_admission_info i
      WHERE i.org_code = $1 AND ${inDay('i.admission_date')} AND ${live('i')}
     UNION
     SELECT ${cols} FROM emr_admission_info i
       JOIN emr_activity_info x ON x.org_code = i.org_code AND x.patient_id = i.patient_id AND x.serial_number = i.serial_number
      WHERE x.org_code = $1 AND x.activity_type_code = '5' AND ${inDay('x.activity_time')} AND ${live('x')} AND ${live('i')}`,
    params(s),
  );
  return {
    activities: acts.rows,
    records: recs.rows.map((r) => ({
      id: r.id,
      patient_id: r.patient_id,
      serial_number: r.serial_number,
      codes: [r.wm_inital_diagnosis_code, r.wm_revised_diagnosis_code, r.wm_confirmed_diagnosis_code, r.complementary_diagnosis_code],
    })),
  };
}

function admissionCheck(rows: AdmissionRows, limit: number): CheckResult {
  const visits = new Map<string, Gap & { ok: boolean }>();
  for (const a of rows.activities) {
    const k = visitKey(a.patient_id, a.serial_number);
    let v = visits.get(k);
    if (!v) {
      v = {
        check: 'admission',
        patientId: a.patient_id ?? '',
        serialNumber: a.serial_number ?? '',
        present: [],
        missing: a.has_record ? [] : ['emrAdmissionInfo'],
        ok: a.has_record,
      };
      visits.set(k, v);
    }
    v.present.push({ resource: 'emrActivityInfo', id: a.id });
  }
  const gaps = [...visits.values()].filter((v) => !v.ok).map(({ ok: _ok, ...g }) => g);
  return { total: visits.size, gaps: gaps.length, missing: { emrAdmissionInfo: gaps.length }, ...limited(gaps, limit) };
}

/** Children of the day whose parent is not stored (or retired): lab items without their report, exam items without theirs. */
async function orphanCheck(
  tx: Tx,
  s: DayScope,
  c: { check: CheckName; resource: string; table: string; ref: string; parent: string; parentTable: string },
): Promise<CheckResult> {
  const where = `c.org_code = $1 AND ${inDay('c.operation_time')} AND ${live('c')}`;
  const orphan = `NOT EXISTS (SELECT 1 FROM ${c.parentTable} p WHERE p.org_code = c.org_code AND p.id = c.${c.ref} AND p.rec_retired = false)`;
  const counts = await tx.query<{ total: string; gaps: string | null }>(
    `SELECT count(*) AS total, sum(CASE WHEN ${orphan} THEN 1 ELSE 0 END) AS gaps FROM ${c.table} c WHERE ${where}`,
    params(s),
  );
  const list = await tx.query<{ id: string; parent_id: string | null }>(
    `SELECT c.id, c.${c.ref} AS parent_id FROM ${c.table} c WHERE ${where} AND ${orphan} ORDER BY c.id LIMIT $5`,
    [...params(s), s.listLimit],
  );
  const gaps = Number(counts.rows[0]?.gaps ?? 0);
  return {
    total: Number(counts.rows[0]?.total ?? 0),
    gaps,
    missing: { [c.parent]: gaps },
    list: list.rows.map((r) => ({ check: c.check, parentId: r.parent_id ?? '', present: [{ resource: c.resource, id: r.id }], missing: [c.parent] })),
    truncated: gaps > list.rows.length,
  };
}

/** Orders (医嘱处方) of the day with no item (emrOrderItem) naming them. */
async function orderCheck(tx: Tx, s: DayScope): Promise<CheckResult> {
  const where = `o.org_code = $1 AND ${inDay('o.prescription_issuance_date')} AND ${live('o')}`;
  const itemless = `NOT EXISTS (SELECT 1 FROM emr_order_item i WHERE i.org_code = o.org_code AND i.order_id = o.id AND i.rec_retired = false)`;
  const counts = await tx.query<{ total: string; gaps: string | null }>(
    `SELECT count(*) AS total, sum(CASE WHEN ${itemless} THEN 1 ELSE 0 END) AS gaps FROM emr_order o WHERE ${where}`,
    params(s),
  );
  const list = await tx.query<{ id: string }>(`SELECT o.id FROM emr_order o WHERE ${where} AND ${itemless} ORDER BY o.id LIMIT $5`, [
    ...params(s),
    s.listLimit,
  ]);
  const gaps = Number(counts.rows[0]?.gaps ?? 0);
  return {
    total: Number(counts.rows[0]?.total ?? 0),
    gaps,
    missing: { emrOrderItem: gaps },
    list: list.rows.map((r) => ({ check: 'order' as const, present: [{ resource: 'emrOrder', id: r.id }], missing: ['emrOrderItem'] })),
    truncated: gaps > list.rows.length,
  };
}

// ---- notifiable diagnoses -------------------------------------------------------------------------

let rules: ReturnType<typeof icdRules> | undefined;

/**
 * The statutory notifiable disease (schemas/codes notifiable_diseases.csv) an ICD-10 code belongs
 * to, or null. Categories by range ("B15-B19"), sub-codes by prefix ("U07.1"). Codes that are not
 * ICD-10 (NNDRS exchange codes, local hub codes) are not matched: see docs/day-close.md.
 */
export function notifiableByIcd10(code: string | null | undefined): string | null {
  if (!code) return null;
  rules ??= icdRules();
  const c = code.normalize('NFKC').toUpperCase().replace(/\s/g, '');
  const m = /^([A-Z]\d{2})(\.[0-9A-Z]+)?/.exec(c);
  if (!m) return null;
  const cat = m[1]!;
  for (const r of rules) {
    if (r.prefix ? c.startsWith(r.from) : cat >= r.from && cat <= r.to) return r.disease;
  }
  return null;
}

function infectiousAdmissions(rows: AdmissionRows): { admissions: number; infectious: Map<string, string> } {
  const keys = new Set<string>();
  const infectious = new Map<string, string>(); // visit → disease
  const note = (k: string, codes: Array<string | null>) => {
    keys.add(k);
    if (infectious.has(k)) return;
    for (const code of codes) {
      const d = notifiableByIcd10(code);
      if (d) {
        infectious.set(k, d);
        return;
      }
    }
  };
  for (const a of rows.activities) note(visitKey(a.patient_id, a.serial_number), [a.wm_disease_code, a.disease_code]);
  for (const r of rows.records) note(visitKey(r.patient_id, r.serial_number), r.codes);
  return { admissions: keys.size, infectious };
}

const activityName = (code: string | null) => lists.activityType.codes.find((c) => c.code === code)?.name ?? null;

export async function computeDay(tx: Tx, s: DayScope): Promise<{ completeness: Completeness; summary: Summary }> {
  const discharge = await dischargeCheck(tx, s);
  const adm = await admissionRows(tx, s);
  const checks: Record<CheckName, CheckResult> = {
    discharge: discharge.result,
    admission: admissionCheck(adm, s.listLimit),
    labItem: await orphanCheck(tx, s, {
      check: 'labItem',
      resource: 'emrExLabItem',
      table: 'emr_ex_lab_item',
      ref: 'ex_lab_id',
      parent: 'emrExLab',
      parentTable: 'emr_ex_lab',
    }),
    examItem: await orphanCheck(tx, s, {
      check: 'examItem',
      resource: 'emrExClinicalItem',
      table: 'emr_ex_clinical_item',
      ref: 'ex_clinical_id',
      parent: 'emrExClinical',
      parentTable: 'emr_ex_clinical',
    }),
    order: await orderCheck(tx, s),
  };
  const gapCount = Object.values(checks).reduce((n, c) => n + c.gaps, 0);

  const acts = await tx.query<{ code: string | null; activities: string; visits: string }>(
    `SELECT x.activity_type_code AS code, count(*) AS activities,
            count(DISTINCT x.patient_id || '|' || x.serial_number) AS visits
       FROM emr_activity_info x
      WHERE x.org_code = $1 AND ${inDay('x.activity_time')} AND ${live('x')}
      GROUP BY x.activity_type_code ORDER BY x.activity_type_code`,
    params(s),
  );
  const activityTypes = acts.rows.map((r) => ({ code: r.code, name: activityName(r.code), visits: Number(r.visits), activities: Number(r.activities) }));
  const visitsOf = (code: string) => activityTypes.find((a) => a.code === code)?.visits ?? 0;
  const deaths = await tx.query<{ n: string }>(
    `SELECT count(*) AS n FROM emr_death_info d WHERE d.org_code = $1 AND ${inDay('d.dead_date')} AND ${live('d')}`,
    params(s),
  );
  const cards = await tx.query<{ disease_code: string | null; n: string }>(
    `SELECT c.disease_code, count(*) AS n FROM emr_inf_report c
      WHERE c.org_code = $1 AND ${inDay('c.report_date')} AND ${live('c')}
      GROUP BY c.disease_code ORDER BY c.disease_code`,
    params(s),
  );
  const inf = infectiousAdmissions(adm);
  const byDisease = new Map<string, number>();
  for (const d of inf.infectious.values()) byDisease.set(d, (byDisease.get(d) ?? 0) + 1);
  const summary: Summary = {
    outpatientVisits: visitsOf('1'),
    emergencyVisits: visitsOf('2'),
    admissions: inf.admissions,
    infectiousAdmissions: inf.infectious.size,
    infectiousAdmissionsByDisease: [...byDisease].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([disease, count]) => ({ disease, count })),
    discharges: discharge.visits,
    deaths: Number(deaths.rows[0]?.n ?? 0),
    reportCards: cards.rows.reduce((n, r) => n + Number(r.n), 0),
    reportCardsByDisease: cards.rows.map((r) => ({ diseaseCode: r.disease_code, count: Number(r.n) })),
    activityTypes,
  };
  return { completeness: { checks, gapCount }, summary };
}
