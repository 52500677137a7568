/**
 * What a close computes for one organisation and one local day: the completeness checks and the
 * daily summary. Read-only SQL on the resource tables (parameterised, openGauss-safe; the figures
 * are assembled in TypeScript, never with jsonb builders). Retired records (作废) count neither as an
 * event nor as the record that answers one; test-mode records only in a test-mode close.
 *
 * Visits are keyed by (patientId, serialNumber): serialNumber is the visit number (门诊号/住院号)
 * shared by every record of the visit (docs/data-set.md "Parents"), so it is what ties a discharge
 * to its front page and its discharge record, and an admission to its admission record.
 *
 * Held records (a record_hold row: waiting for a mapping, a parent, or a corrected version) have not
 * reached the platforms: the summary does not count them, and both documents say how many of the day
 * are held, by kind (docs/day-close.md "Held records"). The summary never carries a code that is not
 * national: an activity type outside the national list counts under the code null.
 */
import type { Tx } from '../db/index.js';
import { lists } from '../../schemas/codes/lists.js';
import { icdRules } from '../codes/similarity.js';

export interface DayScope {
  orgCode: string;
  /** The local day (yyyy-MM-dd): the business day of the receipts whose holds are counted. */
  day: string;
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
  /** Of the events, those whose own record (or, for a visit, any of its records) is held. */
  held: number;
  /** Per missing resource, how many events lack it. */
  missing: Record<string, number>;
  list: Gap[];
  truncated: boolean;
}

export interface Completeness {
  checks: Record<CheckName, CheckResult>;
  gapCount: number;
  held: HeldFigures;
}

/**
 * The records of the day (record_receipt.business_day) held back from the platforms: how many,
 * per kind of hold (a record with holds of two kinds counts in both), and per resource and kind.
 */
export interface HeldFigures {
  records: number;
  byKind: { mapping: number; rule: number; parent: number };
  byResource: Array<{ resource: string; kind: string; count: number }>;
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
  /** Report cards of the day held back (not in reportCards: the platforms have not received them). */
  reportCardsHeld: number;
  reportCardsByDisease: Array<{ diseaseCode: string | null; count: number }>;
  /** Every activity type of the day (前置软件值域25): distinct visits and activity records. */
  activityTypes: Array<{ code: string | null; name: string | null; visits: number; activities: number }>;
  held: HeldFigures;
}

const live = (alias: string) => `${alias}.rec_retired = false AND ${alias}.rec_test = $4`;
const inDay = (col: string) => `${col} >= $2 AND ${col} < $3`;
const params = (s: DayScope) => [s.orgCode, s.from, s.to, s.test];
const visitKey = (p: string | null, s: string | null) => `${p ?? ''}\u0000${s ?? ''}`;
/** The record (alias.org_code, alias.id) of a resource is held (record_hold's key leads with these). Resource names are the registry's, never input. */
const heldSql = (alias: string, resource: string) =>
  `EXISTS (SELECT 1 FROM record_hold h WHERE h.resource = '${resource}' AND h.org_code = ${alias}.org_code AND h.record_id = ${alias}.id)`;

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
    is_held: boolean;
    has_front_page: boolean;
    has_discharge: boolean;
  }>(
    `SELECT e.src, e.id, e.patient_id, e.serial_number, e.is_held,
            EXISTS (SELECT 1 FROM emr_admission_record r
                     WHERE r.org_code = $1 AND r.patient_id = e.patient_id AND r.serial_number = e.serial_number AND ${live('r')}) AS has_front_page,
            EXISTS (SELECT 1 FROM emr_discharge_info d
                     WHERE d.org_code = $1 AND d.patient_id = e.patient_id AND d.serial_number = e.serial_number AND ${live('d')}) AS has_discharge
       FROM (SELECT CAST('emrActivityInfo' AS varchar(40)) AS src, x.id, x.patient_id, x.serial_number, ${heldSql('x', 'emrActivityInfo')} AS is_held
               FROM emr_activity_info x
              WHERE x.org_code = $1 AND x.activity_type_code = '9' AND ${inDay('x.activity_time')} AND ${live('x')}
             UNION ALL
             SELECT CAST('emrDischargeInfo' AS varchar(40)), d.id, d.patient_id, d.serial_number, ${heldSql('d', 'emrDischargeInfo')} FROM emr_discharge_info d
              WHERE d.org_code = $1 AND ${inDay('d.discharge_date')} AND ${live('d')}
             UNION ALL
             SELECT CAST('emrAdmissionRecord' AS varchar(40)), r.id, r.patient_id, r.serial_number, ${heldSql('r', 'emrAdmissionRecord')} FROM emr_admission_record r
              WHERE r.org_code = $1 AND ${inDay('r.discharge_date')} AND ${live('r')}) e
      ORDER BY e.patient_id, e.serial_number, e.src, e.id`,
    params(s),
  );
  const visits = new Map<string, Gap & { ok: boolean; held: boolean; reported: boolean }>();
  for (const r of res.rows) {
    const k = visitKey(r.patient_id, r.serial_number);
    let v = visits.get(k);
    if (!v) {
      const missing = [...(r.has_front_page ? [] : ['emrAdmissionRecord']), ...(r.has_discharge ? [] : ['emrDischargeInfo'])];
      v = {
        check: 'discharge',
        patientId: r.patient_id ?? '',
        serialNumber: r.serial_number ?? '',
        present: [],
        missing,
        ok: missing.length === 0,
        held: false,
        reported: false,
      };
      visits.set(k, v);
    }
    v.present.push({ resource: r.src, id: r.id });
    if (r.is_held) v.held = true;
    else v.reported = true;
  }
  const all = [...visits.values()];
  const gaps = all.filter((v) => !v.ok).map(({ ok: _ok, held: _held, reported: _reported, ...g }) => g);
  const missing: Record<string, number> = { emrAdmissionRecord: 0, emrDischargeInfo: 0 };
  for (const g of gaps) for (const m of g.missing) missing[m] = (missing[m] ?? 0) + 1;
  const held = all.filter((v) => v.held).length;
  // The summary's discharges: visits with a discharge event the platforms have (a record not held).
  return { result: { total: visits.size, gaps: gaps.length, held, missing, ...limited(gaps, s.listLimit) }, visits: all.filter((v) => v.reported).length };
}

interface AdmissionRows {
  activities: Array<{
    id: string;
    patient_id: string | null;
    serial_number: string | null;
    disease_code: string | null;
    wm_disease_code: string | null;
    is_held: boolean;
    has_record: boolean;
  }>;
  records: Array<{ id: string; patient_id: string | null; serial_number: string | null; is_held: boolean; codes: Array<string | null> }>;
}

/**
 * Admissions of the day: admission activities (活动类型 5 入院) of the day, and admission records
 * (emrAdmissionInfo, 入院记录) whose admission time lies in the day. The data set has no other
 * admission event: the admission record is the thing checked, so the activity is the event.
 */
async function admissionRows(tx: Tx, s: DayScope): Promise<AdmissionRows> {
  const acts = await tx.query<AdmissionRows['activities'][number]>(
    `SELECT x.id, x.patient_id, x.serial_number, x.disease_code, x.wm_disease_code, ${heldSql('x', 'emrActivityInfo')} AS is_held,
            EXISTS (SELECT 1 FROM emr_admission_info i
                     WHERE i.org_code = $1 AND i.patient_id = x.patient_id AND i.serial_number = x.serial_number AND ${live('i')}) AS has_record
       FROM emr_activity_info x
      WHERE x.org_code = $1 AND x.activity_type_code = '5' AND ${inDay('x.activity_time')} AND ${live('x')}
      ORDER BY x.patient_id, x.serial_number, x.id`,
    params(s),
  );
  const cols = `i.id, i.patient_id, i.serial_number, ${heldSql('i', 'emrAdmissionInfo')} AS is_held,
    i.wm_inital_diagnosis_code, i.wm_revised_diagnosis_code, i.wm_confirmed_diagnosis_code, i.complementary_diagnosis_code`;
  const recs = await tx.query<{
    id: string;
    patient_id: string | null;
    serial_number: string | null;
    is_held: boolean;
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
      is_held: r.is_held,
      codes: [r.wm_inital_diagnosis_code, r.wm_revised_diagnosis_code, r.wm_confirmed_diagnosis_code, r.complementary_diagnosis_code],
    })),
  };
}

function admissionCheck(rows: AdmissionRows, limit: number): CheckResult {
  const visits = new Map<string, Gap & { ok: boolean }>();
  const held = new Set<string>();
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
    if (a.is_held) held.add(k);
  }
  const gaps = [...visits.values()].filter((v) => !v.ok).map(({ ok: _ok, ...g }) => g);
  return { total: visits.size, gaps: gaps.length, held: held.size, missing: { emrAdmissionInfo: gaps.length }, ...limited(gaps, limit) };
}

/** Children of the day whose parent is not stored (or retired): lab items without their report, exam items without theirs. */
async function orphanCheck(
  tx: Tx,
  s: DayScope,
  c: { check: CheckName; resource: string; table: string; ref: string; parent: string; parentTable: string },
): Promise<CheckResult> {
  const where = `c.org_code = $1 AND ${inDay('c.operation_time')} AND ${live('c')}`;
  const orphan = `NOT EXISTS (SELECT 1 FROM ${c.parentTable} p WHERE p.org_code = c.org_code AND p.id = c.${c.ref} AND p.rec_retired = false)`;
  const counts = await tx.query<{ total: string; gaps: string | null; held: string | null }>(
    `SELECT count(*) AS total, sum(CASE WHEN ${orphan} THEN 1 ELSE 0 END) AS gaps, sum(CASE WHEN ${heldSql('c', c.resource)} THEN 1 ELSE 0 END) AS held
       FROM ${c.table} c WHERE ${where}`,
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
    held: Number(counts.rows[0]?.held ?? 0),
    missing: { [c.parent]: gaps },
    list: list.rows.map((r) => ({ check: c.check, parentId: r.parent_id ?? '', present: [{ resource: c.resource, id: r.id }], missing: [c.parent] })),
    truncated: gaps > list.rows.length,
  };
}

/** Orders (医嘱处方) of the day with no item (emrOrderItem) naming them. */
async function orderCheck(tx: Tx, s: DayScope): Promise<CheckResult> {
  const where = `o.org_code = $1 AND ${inDay('o.prescription_issuance_date')} AND ${live('o')}`;
  const itemless = `NOT EXISTS (SELECT 1 FROM emr_order_item i WHERE i.org_code = o.org_code AND i.order_id = o.id AND i.rec_retired = false)`;
  const counts = await tx.query<{ total: string; gaps: string | null; held: string | null }>(
    `SELECT count(*) AS total, sum(CASE WHEN ${itemless} THEN 1 ELSE 0 END) AS gaps, sum(CASE WHEN ${heldSql('o', 'emrOrder')} THEN 1 ELSE 0 END) AS held
       FROM emr_order o WHERE ${where}`,
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
    held: Number(counts.rows[0]?.held ?? 0),
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
  // Held records have not reached the platforms: they count once released (docs/day-close.md "Held records").
  for (const a of rows.activities) if (!a.is_held) note(visitKey(a.patient_id, a.serial_number), [a.wm_disease_code, a.disease_code]);
  for (const r of rows.records) if (!r.is_held) note(visitKey(r.patient_id, r.serial_number), r.codes);
  return { admissions: keys.size, infectious };
}

const activityName = (code: string | null) => lists.activityType.codes.find((c) => c.code === code)?.name ?? null;
const nationalActivityTypes = () => lists.activityType.codes.map((c) => c.code);

/** The day's held records by kind and resource (record_receipt.business_day; retired ones and the other mode's left out). */
async function heldOfDay(tx: Tx, s: DayScope): Promise<HeldFigures> {
  const where = 'r.org_code = $1 AND r.business_day = $2 AND r.retired = false AND r.test_mode = $3';
  const join = 'JOIN record_hold h ON h.resource = r.resource AND h.org_code = r.org_code AND h.record_id = r.record_id';
  const by = await tx.query<{ resource: string; kind: string; n: string }>(
    `SELECT h.resource, h.kind, count(DISTINCT h.record_id) AS n FROM record_receipt r ${join} WHERE ${where}
      GROUP BY h.resource, h.kind ORDER BY h.resource, h.kind`,
    [s.orgCode, s.day, s.test],
  );
  const total = await tx.query<{ n: string }>(
    `SELECT count(*) AS n FROM record_receipt r
      WHERE ${where} AND EXISTS (SELECT 1 FROM record_hold h WHERE h.resource = r.resource AND h.org_code = r.org_code AND h.record_id = r.record_id)`,
    [s.orgCode, s.day, s.test],
  );
  const byKind = { mapping: 0, rule: 0, parent: 0 };
  const byResource = by.rows.map((r) => ({ resource: r.resource, kind: r.kind, count: Number(r.n) }));
  for (const r of byResource) if (r.kind in byKind) byKind[r.kind as keyof typeof byKind] += r.count;
  return { records: Number(total.rows[0]?.n ?? 0), byKind, byResource };
}

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
  const held = await heldOfDay(tx, s);

  // Held activities are left out; a code outside the national list (never expected of a record not
  // held) counts under null: a local code is never forwarded (docs/day-close.md "Held records").
  const acts = await tx.query<{ code: string | null; activities: string; visits: string }>(
    `SELECT a.code, count(*) AS activities, count(DISTINCT a.visit) AS visits
       FROM (SELECT CASE WHEN x.activity_type_code = ANY($5::varchar[]) THEN x.activity_type_code END AS code,
                    x.patient_id || '|' || x.serial_number AS visit
               FROM emr_activity_info x
              WHERE x.org_code = $1 AND ${inDay('x.activity_time')} AND ${live('x')} AND NOT ${heldSql('x', 'emrActivityInfo')}) a
      GROUP BY a.code ORDER BY a.code`,
    [...params(s), nationalActivityTypes()],
  );
  const activityTypes = acts.rows.map((r) => ({ code: r.code, name: activityName(r.code), visits: Number(r.visits), activities: Number(r.activities) }));
  const visitsOf = (code: string) => activityTypes.find((a) => a.code === code)?.visits ?? 0;
  const deaths = await tx.query<{ n: string }>(
    `SELECT count(*) AS n FROM emr_death_info d WHERE d.org_code = $1 AND ${inDay('d.dead_date')} AND ${live('d')} AND NOT ${heldSql('d', 'emrDeathInfo')}`,
    params(s),
  );
  // Held cards are counted apart (reportCardsHeld), never by their disease code: it may be a local one.
  const cards = await tx.query<{ disease_code: string | null; n: string }>(
    `SELECT c.disease_code, count(*) AS n FROM emr_inf_report c
      WHERE c.org_code = $1 AND ${inDay('c.report_date')} AND ${live('c')} AND NOT ${heldSql('c', 'emrInfReport')}
      GROUP BY c.disease_code ORDER BY c.disease_code`,
    params(s),
  );
  const heldCards = await tx.query<{ n: string }>(
    `SELECT count(*) AS n FROM emr_inf_report c
      WHERE c.org_code = $1 AND ${inDay('c.report_date')} AND ${live('c')} AND ${heldSql('c', 'emrInfReport')}`,
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
    reportCardsHeld: Number(heldCards.rows[0]?.n ?? 0),
    reportCardsByDisease: cards.rows.map((r) => ({ diseaseCode: r.disease_code, count: Number(r.n) })),
    activityTypes,
    held,
  };
  return { completeness: { checks, gapCount, held }, summary };
}
