/**
 * Daily counts and signals (docs/aberration.md). For each hospital day (in the hospital's zone) the
 * distinct patients with a notifiable disease (by the diagnosis's ICD-10 code) and with each syndrome
 * (by diagnosis code or name, or the chief complaint, negation handled) are counted, for the whole
 * hospital and per department; each day's counts are replaced whole, and the days computed are
 * recorded, so a day without a count row is a day with 0 cases only when it was computed. Then the
 * algorithms run on each series, and the day's signals are replaced whole: a rerun never duplicates.
 */
import type pg from 'pg';
import { addDays, dayBounds, localDay } from '../time/day.js';
import { withTx } from '../db/index.js';
import { findTerms } from '../warning/text.js';
import { diseaseByIcd10, fold } from '../warning/triggers.js';
import { cluster, earsC1, earsC2, earsC3, fixedThreshold, movingPercentile, type Evaluation, type Series } from './algorithms.js';
import type { Definitions } from './config.js';

export type CountKind = 'disease' | 'syndrome';

export interface DayCount {
  kind: CountKind;
  key: string;
  /** '' for the whole hospital. */
  dept: string;
  n: number;
}

interface Rule {
  from: string;
  to: string;
  sub: boolean;
}
const ruleOf = (s: string): Rule => {
  const [a, b] = s.split('-');
  return { from: a!, to: b ?? a!, sub: a!.includes('.') };
};
const codeMatches = (code: string, rules: Rule[]): boolean => {
  const c = code.normalize('NFKC').toUpperCase().replace(/\s/g, '');
  const cat = c.slice(0, 3);
  return rules.some((r) => (r.sub ? c.startsWith(r.from) : cat >= r.from && cat <= r.to));
};

/** The syndromes a diagnosis (code, name) or a complaint names, negation and history left out. */
export function syndromesOf(defs: Definitions, code: string | null, texts: Array<string | null>): string[] {
  const out: string[] = [];
  for (const s of defs.syndromes) {
    const byCode = code ? codeMatches(code, s.icd10.map(ruleOf)) : false;
    const byText = texts.some((t) => findTerms(t, s.terms.map(fold)).some((h) => !h.negated && !h.history));
    if (byCode || byText) out.push(s.id);
  }
  return out;
}

/** One day's counts of one org, computed from the stored records (retired and test records left out). */
export async function countDay(db: pg.Pool, org: string, day: string, defs: Definitions, timeZone: string): Promise<DayCount[]> {
  const { from, to } = dayBounds(day, timeZone);
  const patients = new Map<string, Set<string>>();
  const add = (kind: CountKind, key: string, dept: string | null, patient: string) => {
    for (const d of dept ? ['', dept] : ['']) {
      const k = `${kind}|${key}|${d}`;
      (patients.get(k) ?? patients.set(k, new Set()).get(k)!).add(patient);
    }
  };
  const dx = await db.query<{
    patient_id: string | null;
    dept_code: string | null;
    wm_disease_code: string | null;
    wm_disease_name: string | null;
    disease_code: string | null;
    disease_name: string | null;
  }>(
    `SELECT patient_id, dept_code, wm_disease_code, wm_disease_name, disease_code, disease_name FROM emr_activity_info
      WHERE org_code = $1 AND activity_time >= $2 AND activity_time < $3 AND NOT rec_retired AND NOT rec_test`,
    [org, from, to],
  );
  for (const r of dx.rows) {
    if (!r.patient_id) continue;
    const code = r.wm_disease_code || r.disease_code;
    const disease = diseaseByIcd10(code);
    if (disease) add('disease', disease.name, r.dept_code, r.patient_id);
    for (const s of syndromesOf(defs, code, [r.wm_disease_name, r.disease_name])) add('syndrome', s, r.dept_code, r.patient_id);
  }
  const visits = await db.query<{ patient_id: string | null; dept_code: string | null; chief_complaint: string | null }>(
    `SELECT patient_id, dept_code, chief_complaint FROM emr_outpatient_record
      WHERE org_code = $1 AND outpatient_date >= $2 AND outpatient_date < $3 AND NOT rec_retired AND NOT rec_test AND chief_complaint IS NOT NULL`,
    [org, from, to],
  );
  for (const r of visits.rows) {
    if (!r.patient_id) continue;
    for (const s of syndromesOf(defs, null, [r.chief_complaint])) add('syndrome', s, r.dept_code, r.patient_id);
  }
  return [...patients].map(([k, set]) => {
    const [kind, key, dept] = k.split('|') as [CountKind, string, string];
    return { kind, key, dept, n: set.size };
  });
}

/** Replaces a day's counts and marks it computed. */
export async function storeDay(db: pg.Pool, org: string, day: string, counts: DayCount[], now: Date): Promise<void> {
  await withTx(db, async (tx) => {
    await tx.query('DELETE FROM aberration_count WHERE org_code = $1 AND day = $2', [org, day]);
    for (let i = 0; i < counts.length; i += 500) {
      const chunk = counts.slice(i, i + 500);
      const params: unknown[] = [];
      const rows = chunk.map(
        (c) => `($${params.push(org)}, $${params.push(day)}, $${params.push(c.kind)}, $${params.push(c.key)}, $${params.push(c.dept)}, $${params.push(c.n)})`,
      );
      await tx.query(`INSERT INTO aberration_count (org_code, day, kind, key, dept_code, n) VALUES ${rows.join(', ')}`, params);
    }
    await tx.query('DELETE FROM aberration_day WHERE org_code = $1 AND day = $2', [org, day]);
    await tx.query('INSERT INTO aberration_day (org_code, day, computed_at) VALUES ($1, $2, $3)', [org, day, now]);
  });
}

export type Algorithm = 'fixed' | 'mpm' | 'ears-c1' | 'ears-c2' | 'ears-c3' | 'cluster';

export interface Signal extends Evaluation {
  kind: CountKind;
  key: string;
  dept: string;
  algorithm: Algorithm;
  params: Record<string, unknown>;
  /** The series that raised it: the last days' counts, oldest first, up to the signal's day. */
  series: Array<{ day: string; n: number | null }>;
}

/** The series of every (kind, key, dept) with a case in the window, from `first` to `day`. */
async function seriesOf(db: pg.Pool, org: string, first: string, day: string): Promise<{ days: string[]; series: Map<string, Array<number | null>> }> {
  const days: string[] = [];
  for (let d = first; d <= day; d = addDays(d, 1)) days.push(d);
  const index = new Map(days.map((d, i) => [d, i]));
  const computed = new Set(
    (
      await db.query<{ day: string }>(`SELECT to_char(day, 'YYYY-MM-DD') AS day FROM aberration_day WHERE org_code = $1 AND day >= $2 AND day <= $3`, [
        org,
        first,
        day,
      ])
    ).rows.map((r) => r.day),
  );
  const rows = (
    await db.query<{ day: string; kind: string; key: string; dept_code: string; n: number }>(
      `SELECT to_char(day, 'YYYY-MM-DD') AS day, kind, key, dept_code, n FROM aberration_count WHERE org_code = $1 AND day >= $2 AND day <= $3`,
      [org, first, day],
    )
  ).rows;
  const series = new Map<string, Array<number | null>>();
  for (const r of rows) {
    const k = `${r.kind}|${r.key}|${r.dept_code}`;
    let s = series.get(k);
    if (!s) series.set(k, (s = days.map((d) => (computed.has(d) ? 0 : null))));
    s[index.get(r.day)!] = r.n;
  }
  return { days, series };
}

/** The algorithms of a day over the org's series (docs/aberration.md "Which algorithm runs where"). */
export async function evaluateDay(db: pg.Pool, org: string, day: string, defs: Definitions, classA: (disease: string) => boolean): Promise<Signal[]> {
  const mpmSpan = defs.mpm.years * defs.mpm.yearDays + (defs.mpm.neighbours + 1) * defs.mpm.period;
  const first = addDays(day, -Math.max(mpmSpan, defs.ears.baseline + 5, defs.cluster.days));
  const { days, series } = await seriesOf(db, org, first, day);
  const t = days.length - 1;
  const out: Signal[] = [];
  const shown = (s: Series) => days.slice(-28).map((d, i) => ({ day: d, n: s[days.length - 28 + i] ?? null }));
  for (const [k, s] of series) {
    const [kind, key, dept] = k.split('|') as [CountKind, string, string];
    const push = (algorithm: Algorithm, e: Evaluation, params: Record<string, unknown>) => {
      if (e.signal) out.push({ ...e, kind, key, dept, algorithm, params, series: shown(s) });
    };
    if (dept !== '') {
      push('cluster', cluster(s, t, defs.cluster), defs.cluster);
      continue;
    }
    if (kind === 'disease' && ((defs.fixedThreshold.classA && classA(key)) || defs.fixedThreshold.diseases.includes(key))) {
      push('fixed', fixedThreshold(s, t, defs.fixedThreshold.threshold), { threshold: defs.fixedThreshold.threshold });
      continue;
    }
    const mpm = { ...defs.mpm, percentile: defs.mpm.byDisease[key] ?? defs.mpm.percentile };
    push('mpm', movingPercentile(s, t, mpm), {
      percentile: mpm.percentile,
      compare: mpm.compare,
      years: mpm.years,
      neighbours: mpm.neighbours,
      period: mpm.period,
    });
    push('ears-c1', earsC1(s, t, defs.ears), defs.ears);
    push('ears-c2', earsC2(s, t, defs.ears), defs.ears);
    push('ears-c3', earsC3(s, t, defs.ears), defs.ears);
  }
  return out;
}

/** Replaces the day's signals of the org (a rerun yields the same rows, never more). */
export async function storeSignals(db: pg.Pool, org: string, day: string, signals: Signal[], now: Date): Promise<void> {
  await withTx(db, async (tx) => {
    await tx.query('DELETE FROM aberration_signal WHERE org_code = $1 AND day = $2', [org, day]);
    for (const s of signals) {
      await tx.query(
        `INSERT INTO aberration_signal (org_code, day, kind, key, dept_code, algorithm, observed, expected, threshold, statistic, params, series, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
        [
          org,
          day,
          s.kind,
          s.key,
          s.dept,
          s.algorithm,
          s.observed,
          s.expected,
          s.threshold,
          s.statistic,
          JSON.stringify(s.params),
          JSON.stringify(s.series),
          now,
        ],
      );
    }
  });
}

/** Whether the last run is older than `everyMs` (or there was none): the hourly run is due. */
export async function aberrationDue(db: pg.Pool, now: Date, everyMs: number): Promise<boolean> {
  const r = await db.query<{ last: Date | null }>('SELECT max(computed_at) AS last FROM aberration_day');
  const last = r.rows[0]?.last;
  return !last || now.getTime() - new Date(last).getTime() >= everyMs;
}

export interface AberrationRun {
  orgs: number;
  daysCounted: number;
  signals: number;
}

/**
 * A run: for each org with diagnoses or visits in the backfill window, counts the days not yet
 * computed and always yesterday and today (records may still arrive), then evaluates them.
 */
export async function runAberration(
  db: pg.Pool,
  o: { defs: Definitions; timeZone: string; backfillDays: number; now: Date; classA: (d: string) => boolean; days?: string[] },
): Promise<AberrationRun> {
  const today = localDay(o.now, o.timeZone);
  const first = addDays(today, -o.backfillDays + 1);
  // One run at a time: the lock is a session's, so it is taken and given back on one connection.
  const client = await db.connect();
  let locked = false;
  try {
    locked = (await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [ABERRATION_LOCK])).rows[0]?.ok === true;
    if (!locked) return { orgs: 0, daysCounted: 0, signals: 0 };
    const { from } = dayBounds(first, o.timeZone);
    const orgs = (
      await db.query<{ org_code: string }>(
        `SELECT DISTINCT org_code FROM emr_activity_info WHERE activity_time >= $1
         UNION SELECT DISTINCT org_code FROM emr_outpatient_record WHERE outpatient_date >= $1`,
        [from],
      )
    ).rows.map((r) => r.org_code);
    let daysCounted = 0;
    let signals = 0;
    for (const org of orgs) {
      const done = new Set(
        (
          await db.query<{ day: string }>(`SELECT to_char(day, 'YYYY-MM-DD') AS day FROM aberration_day WHERE org_code = $1 AND day >= $2`, [org, first])
        ).rows.map((r) => r.day),
      );
      const wanted = o.days ?? [];
      const todo: string[] = [];
      for (let d = first; d <= today; d = addDays(d, 1)) if (!done.has(d) || d >= addDays(today, -1) || wanted.includes(d)) todo.push(d);
      for (const d of todo) {
        await storeDay(db, org, d, await countDay(db, org, d, o.defs, o.timeZone), o.now);
        daysCounted++;
      }
      for (const d of [addDays(today, -1), today, ...wanted.filter((w) => w < addDays(today, -1))]) {
        const found = await evaluateDay(db, org, d, o.defs, o.classA);
        await storeSignals(db, org, d, found, o.now);
        signals += found.length;
      }
    }
    return { orgs: orgs.length, daysCounted, signals };
  } finally {
    if (locked) await client.query('SELECT pg_advisory_unlock($1)', [ABERRATION_LOCK]).catch(() => undefined);
    client.release();
  }
}

const ABERRATION_LOCK = 7_204_317;

export interface SignalRow {
  org: string;
  day: string;
  kind: CountKind;
  key: string;
  dept: string;
  algorithm: Algorithm;
  observed: number;
  expected: number | null;
  threshold: number | null;
  statistic: number | null;
  params: Record<string, unknown>;
  series: Array<{ day: string; n: number | null }>;
}

/** Signals of an org (or all) between two days, newest first. */
export async function listSignals(db: pg.Pool, q: { org?: string; from: string; to: string; limit: number }): Promise<SignalRow[]> {
  const params: unknown[] = [q.from, q.to];
  const rows = await db.query<{
    org_code: string;
    day: string;
    kind: CountKind;
    key: string;
    dept_code: string;
    algorithm: Algorithm;
    observed: string;
    expected: string | null;
    threshold: string | null;
    statistic: string | null;
    params: Record<string, unknown>;
    series: Array<{ day: string; n: number | null }>;
  }>(
    `SELECT org_code, to_char(day, 'YYYY-MM-DD') AS day, kind, key, dept_code, algorithm, observed, expected, threshold, statistic, params, series
       FROM aberration_signal WHERE day >= $1 AND day <= $2${q.org ? ` AND org_code = $${params.push(q.org)}` : ''}
      ORDER BY day DESC, kind, key, dept_code, algorithm LIMIT $${params.push(q.limit)}`,
    params,
  );
  const num = (v: string | null) => (v === null ? null : Number(v));
  return rows.rows.map((r) => ({
    org: r.org_code,
    day: r.day,
    kind: r.kind,
    key: r.key,
    dept: r.dept_code,
    algorithm: r.algorithm,
    observed: Number(r.observed),
    expected: num(r.expected),
    threshold: num(r.threshold),
    statistic: num(r.statistic),
    params: r.params,
    series: r.series,
  }));
}
