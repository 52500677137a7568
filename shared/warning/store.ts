/**
 * The warning run (docs/warning.md "Cases"): evaluates every record version the receive functions
 * wrote (record_history rows still `warn_pending`), replaces each record's evidence, and derives the
 * pending case of every (org, patient, disease) the evidence touched — all in one transaction per
 * batch, so a version is evaluated exactly once even when the run is killed half-way (its claim is
 * rolled back and the next run takes it). One run at a time (a session advisory lock).
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { together, withTx, type Tx } from '../db/index.js';
import { AppError } from '../http/errors.js';
import { log } from '../log/index.js';
import type { Channel } from '../alerts/index.js';
import { evaluate, type Effect, type Evidence } from './evaluate.js';
import { cardStatus, levelOf, personKey, priorCards, RULE_TEXT, searchedPerson, type PersonKey, type PriorCard } from './duplicates.js';
import { lists } from '../../schemas/codes/lists.js';
import { notifiable, type TriggerSet } from './triggers.js';
import { formatLocal, parseTime } from '../time/index.js';

/** The resources whose records can carry evidence (the evaluator reads nothing else). */
export const EVALUATED: ReadonlySet<string> = new Set([
  'emrActivityInfo',
  'emrExLab',
  'emrExLabItem',
  'emrExClinical',
  'emrOrderItem',
  'emrDeathInfo',
  'emrInfReport',
  'emrOutpatientRecord',
  'emrOutpatientObs',
  'emrAdmissionInfo',
  'emrFirstCourse',
  'emrDailyCourse',
  'emrAdmissionRecord',
  'emrDischargeInfo',
]);

/** Items name their header, not their patient: the header's table and the item's link field. */
const HEADER: Record<string, { table: string; link: string }> = {
  emrExLabItem: { table: 'emr_ex_lab', link: 'exLabId' },
  emrOrderItem: { table: 'emr_order', link: 'orderId' },
};

export type CaseState = 'to_confirm' | 'to_diagnose' | 'known' | 'to_verify' | 'reported' | 'excluded' | 'closed';
export const CASE_STATES = ['to_confirm', 'to_diagnose', 'known', 'to_verify', 'reported', 'excluded', 'closed'] as const satisfies readonly CaseState[];
/** States a reminder is shown in (a known case is a notice for the treating department): docs/warning.md "Reminders". */
export const REMINDED_STATES: readonly CaseState[] = ['to_confirm', 'to_diagnose', 'known'];
/** Each state as a doctor reads it (the HIS's reminders, the answers' messages). */
export const CASE_STATE_NAME: Record<CaseState, string> = {
  to_confirm: '待确认',
  to_diagnose: '待确诊',
  known: '已知病例',
  to_verify: '待核查',
  reported: '已报告',
  excluded: '已排除',
  closed: '已关闭',
};

/** What people decided about a case (docs/warning.md "Cases"): they weigh over what the evidence alone says. */
export interface Decisions {
  excludedAt: Date | null;
  verifiedAt: Date | null;
  /** When the newest raising evidence arose: evidence arising after an exclusion reopens the case. */
  lastRaiseAt: Date | null;
}

export interface WarningOptions {
  triggers: TriggerSet;
  /** History rows per transaction. */
  batch: number;
  /** A case reported or closed longer ago than this is followed by a new one for the same disease. */
  caseWindowDays: number;
  /** An item whose header has not arrived waits this long before it is evaluated without a patient. */
  orphanWaitMs: number;
  /** Stop taking new batches after this long (the next run goes on). */
  maxMs: number;
  /** Where overdue alerts go (the backlog alert's channels); none: kept in alert_event and logged. */
  channels?: Channel[];
  /** The front's name in alert messages. */
  frontName?: string;
  /** The hospital's zone: the self-check's days are its calendar days. */
  timeZone?: string;
  now?: () => Date;
}

export interface WarningRun {
  skipped?: string;
  evaluated: number;
  /** Items left pending because their header has not arrived yet. */
  waiting: number;
  evidence: number;
  casesOpened: number;
  casesChanged: number;
  /** Cases found past their reporting deadline in this run, alerted once each. */
  overdue: number;
  /** Cases the daily self-check found without a card at the end of their day (prompted again). */
  missed: number;
  durationMs: number;
}

const LOCK = BigInt.asIntN(64, BigInt('0x' + createHash('sha256').update('cdc-front warning run').digest('hex').slice(0, 16)));

interface HistoryRow {
  hist_id: string;
  resource: string;
  org_code: string;
  record_id: string;
  version: number;
  op: string;
  raw: Record<string, unknown>;
  received_at: Date;
}

/** Runs batches until nothing is pending (or the time budget is spent). */
export async function runWarnings(db: pg.Pool, o: WarningOptions): Promise<WarningRun> {
  const t0 = Date.now();
  const out: WarningRun = { evaluated: 0, waiting: 0, evidence: 0, casesOpened: 0, casesChanged: 0, overdue: 0, missed: 0, durationMs: 0 };
  const client = await db.connect();
  let locked = false;
  try {
    locked = (await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [LOCK.toString()])).rows[0]?.ok === true;
    if (!locked) return { ...out, skipped: 'another warning run holds the lock', durationMs: Date.now() - t0 };
    // Rows left waiting in this run are not claimed again in it: the cursor moves past them.
    let after = '0';
    for (;;) {
      const b = await withTx(db, (tx) => batch(tx, after, o));
      out.evaluated += b.evaluated;
      out.waiting += b.waiting;
      out.evidence += b.evidence;
      out.casesOpened += b.opened;
      out.casesChanged += b.changed;
      if (b.claimed < o.batch || Date.now() - t0 > o.maxMs) break;
      after = b.last;
    }
    out.overdue = await alertOverdue(db, o);
    out.missed = await markMissed(db, o);
  } finally {
    if (locked) await client.query('SELECT pg_advisory_unlock($1)', [LOCK.toString()]).catch(() => undefined);
    client.release();
  }
  out.durationMs = Date.now() - t0;
  if (out.evaluated)
    log('info', 'warning run', {
      evaluated: out.evaluated,
      evidence: out.evidence,
      opened: out.casesOpened,
      changed: out.casesChanged,
      waiting: out.waiting,
      ms: out.durationMs,
    });
  return out;
}

async function batch(tx: Tx, after: string, o: WarningOptions) {
  const now = (o.now ?? (() => new Date()))();
  const rows = (
    await tx.query<HistoryRow>(
      `SELECT hist_id, resource, org_code, record_id, version, op, raw, received_at
         FROM record_history WHERE warn_pending = true AND hist_id > $1
        ORDER BY hist_id LIMIT $2 FOR UPDATE SKIP LOCKED`,
      [after, o.batch],
    )
  ).rows;
  const res = { claimed: rows.length, last: rows.at(-1)?.hist_id ?? after, evaluated: 0, waiting: 0, evidence: 0, opened: 0, changed: 0 };
  const done: string[] = [];
  const snoozed = rows.length ? await snoozedTriggers(tx, now) : new Set<string>();
  const touched = new Map<string, { org: string; patient: string; disease: string }>();
  const touch = (org: string, patient: string, disease: string) => touched.set(`${org}|${patient}|${disease}`, { org, patient, disease });
  // What the rows need from the database is read for the whole batch before them, a statement per
  // (table, org) sent together (docs/warning.md "Cases"): the items' headers and the evidence the
  // records gave before. Read one row at a time, these were two to four round trips per history row.
  const evaluated = rows.filter((r) => EVALUATED.has(r.resource));
  const [headers, priors] = await together(tx, [() => headersOf(tx, evaluated), () => priorsOf(tx, evaluated)] as const);
  for (const row of rows) {
    if (!EVALUATED.has(row.resource)) {
      done.push(row.hist_id);
      continue;
    }
    const header = headerOf(headers, row);
    const patient = patientOf(row, header);
    if (patient === null && now.getTime() - new Date(row.received_at).getTime() < o.orphanWaitMs) {
      res.waiting++;
      continue;
    }
    done.push(row.hist_id);
    res.evaluated++;
    const key = evidenceKey(row.org_code, row.resource, row.record_id);
    const prior = priors.get(key) ?? [];
    // A newer version of the record was evaluated already: this one says nothing any more.
    if (prior.some((p) => p.source_version > row.version)) continue;
    for (const p of prior) touch(row.org_code, p.patient_id, p.disease);
    // Only a warning run writes evidence, one run at a time: a record with none before has none to delete.
    if (prior.length)
      await tx.query('DELETE FROM warning_evidence WHERE org_code = $1 AND source_resource = $2 AND source_id = $3', [
        row.org_code,
        row.resource,
        row.record_id,
      ]);
    // A retired record says nothing: its evidence is gone, and the cases it supported are re-derived.
    // A snoozed rule's raising evidence is kept, as 'snoozed': it raises nothing while the snooze holds.
    const evidence = (row.op === 'retire' ? [] : evaluate(row.resource, row.raw, o.triggers, now).evidence).map((e) =>
      e.effect === 'raise' && snoozed.has(e.trigger) ? { ...e, effect: 'snoozed' as Effect } : e,
    );
    const who = evidence.length ? attributionOf(row, header?.rec_raw) : { dept: null, doctor: null };
    await together(
      tx,
      evidence.map((e, seq) => () => insertEvidence(tx, row, seq, patient ?? '', who, e, o.triggers.version, now)),
    );
    for (const e of evidence) touch(row.org_code, patient ?? '', e.name);
    // A later version of the same record in this batch finds what this one stored.
    priors.set(
      key,
      evidence.map((e) => ({ source_version: row.version, patient_id: patient ?? '', disease: e.name })),
    );
    res.evidence += evidence.length;
    if (row.resource === 'emrInfReport') await checkCardDuplicates(tx, row, o.caseWindowDays, now);
  }
  if (done.length) await tx.query(`UPDATE record_history SET warn_pending = NULL WHERE hist_id IN (${done.map((_, i) => `$${i + 1}`).join(', ')})`, done);
  for (const k of touched.values()) {
    if (k.patient === '') continue;
    const r = await deriveCase(tx, k.org, k.patient, k.disease, o.caseWindowDays, now);
    if (r === 'opened') res.opened++;
    else if (r === 'changed') res.changed++;
  }
  return res;
}

/** Who a record's evidence prompts: its department and doctor (an item: its header's). */
interface Attribution {
  dept: string | null;
  doctor: string | null;
}

const text = (v: unknown): string | null => (typeof v === 'string' && v.trim() !== '' ? v.trim() : null);

function attributionOf(row: HistoryRow, header: Record<string, unknown> | undefined): Attribution {
  const rec = header ?? row.raw;
  return {
    dept: text(rec.applyDeptCode) ?? text(rec.deptCode),
    doctor: doctorOf(rec),
  };
}

type Headers = Map<string, { patient_id: string | null; rec_raw: Record<string, unknown> }>;
type Priors = Map<string, Array<{ source_version: number; patient_id: string; disease: string }>>;
const evidenceKey = (org: string, resource: string, id: string) => JSON.stringify([org, resource, id]);

/** Groups keys by a pair (table or resource, org): one statement each. */
function groups<T>(items: T[], of: (t: T) => [string, string, string] | null): Array<{ a: string; org: string; ids: string[] }> {
  const out = new Map<string, { a: string; org: string; ids: Set<string> }>();
  for (const t of items) {
    const k = of(t);
    if (!k) continue;
    const g = out.get(JSON.stringify([k[0], k[1]])) ?? { a: k[0], org: k[1], ids: new Set<string>() };
    g.ids.add(k[2]);
    out.set(JSON.stringify([k[0], k[1]]), g);
  }
  return [...out.values()].map((g) => ({ a: g.a, org: g.org, ids: [...g.ids] }));
}

/** The headers (a lab request, an order) of the batch's items: their patient and their department and doctor. */
async function headersOf(tx: Tx, rows: HistoryRow[]): Promise<Headers> {
  const g = groups(rows, (row) => {
    const h = HEADER[row.resource];
    const link = h && row.raw[h.link];
    return h && typeof link === 'string' ? [h.table, row.org_code, link] : null;
  });
  const found = await together(
    tx,
    g.map(
      (x) => () =>
        tx.query<{ id: string; patient_id: string | null; rec_raw: Record<string, unknown> }>(
          `SELECT id, patient_id, rec_raw FROM ${x.a} WHERE org_code = $1 AND id = ANY($2::varchar[])`,
          [x.org, x.ids],
        ),
    ),
  );
  const out: Headers = new Map();
  found.forEach((r, i) => {
    for (const h of r.rows) out.set(JSON.stringify([g[i]!.a, g[i]!.org, h.id]), { patient_id: h.patient_id, rec_raw: h.rec_raw });
  });
  return out;
}

function headerOf(headers: Headers, row: HistoryRow) {
  const h = HEADER[row.resource];
  const link = h && row.raw[h.link];
  return h && typeof link === 'string' ? headers.get(JSON.stringify([h.table, row.org_code, link])) : undefined;
}

/** The evidence each record of the batch gave when an earlier version was evaluated. */
async function priorsOf(tx: Tx, rows: HistoryRow[]): Promise<Priors> {
  const g = groups(rows, (row) => [row.resource, row.org_code, row.record_id]);
  const found = await together(
    tx,
    g.map(
      (x) => () =>
        tx.query<{ source_id: string; source_version: number; patient_id: string; disease: string }>(
          'SELECT source_id, source_version, patient_id, disease FROM warning_evidence WHERE org_code = $1 AND source_resource = $2 AND source_id = ANY($3::varchar[])',
          [x.org, x.a, x.ids],
        ),
    ),
  );
  const out: Priors = new Map();
  found.forEach((r, i) => {
    for (const p of r.rows) {
      const k = evidenceKey(g[i]!.org, g[i]!.a, p.source_id);
      const list = out.get(k) ?? [];
      list.push({ source_version: p.source_version, patient_id: p.patient_id, disease: p.disease });
      out.set(k, list);
    }
  });
  return out;
}

/**
 * The doctor a record names (docs/warning.md "Queues"), most responsible first: a lab's requesting
 * physician, the admitting (first-visit) physician, the resident, the attending, the diagnosing
 * doctor's name (emrActivityInfo fillDoctor, 诊断医生姓名). operatorId — the account the HIS's
 * interface sends with, often one for every record — is the last resort: one queue for the hospital.
 */
const DOCTOR_FIELDS = ['applyPhysicianId', 'visitingPhysicianId', 'residentPhysicianId', 'chiefPhysicianId', 'fillDoctor', 'operatorId'] as const;

export function doctorOf(rec: Record<string, unknown>): string | null {
  for (const k of DOCTOR_FIELDS) {
    const v = text(rec[k]);
    if (v) return v.slice(0, 80);
  }
  return null;
}

function patientOf(row: HistoryRow, header: { patient_id: string | null } | undefined): string | null {
  const own = row.raw.patientId;
  if (typeof own === 'string' && own) return own;
  const h = HEADER[row.resource];
  const link = h && row.raw[h.link];
  if (!h) return '';
  if (typeof link !== 'string') return '';
  return header?.patient_id ?? null;
}

async function insertEvidence(tx: Tx, row: HistoryRow, seq: number, patient: string, who: Attribution, e: Evidence, version: string, now: Date): Promise<void> {
  await tx.query(
    `INSERT INTO warning_evidence (org_code, source_resource, source_id, seq, source_version, patient_id, dept_code, doctor_id, disease, subtype, syndrome,
       kind, effect, trigger_id, field, detail, evidence_at, recorded_at, trigger_version)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
    [
      row.org_code,
      row.resource,
      row.record_id,
      seq,
      row.version,
      patient,
      who.dept?.slice(0, 64) ?? null,
      who.doctor?.slice(0, 80) ?? null,
      e.name,
      e.subtype ?? null,
      e.syndrome ?? null,
      e.kind,
      e.effect,
      e.trigger,
      e.field,
      e.detail.slice(0, 500),
      e.at,
      now,
      version,
    ],
  );
}

interface CaseRow {
  case_id: string;
  state: CaseState;
  updated_at: Date;
  evidence_count: number;
  first_at: Date | null;
  excluded_at: Date | null;
  verified_at: Date | null;
}

/**
 * The state a case's evidence gives (docs/warning.md "Cases"): a card names it → to_verify (public
 * health verifies it) or, verified, reported; a raising source → to_confirm; a screening test or a
 * special drug not explained by another diagnosis of the patient → to_diagnose; only history → known;
 * nothing left → closed. Evidence that closes does not cancel another source's (a negative test does
 * not undo a diagnosis); only a newer version of the same record replaces what that record said. A
 * doctor's exclusion holds until new raising evidence arrives after it.
 */
export function stateOf(
  effects: Array<{ effect: string; explained: boolean }>,
  d: Decisions = { excludedAt: null, verifiedAt: null, lastRaiseAt: null },
): CaseState {
  if (effects.some((e) => e.effect === 'carded')) return d.verifiedAt ? 'reported' : 'to_verify';
  if (d.excludedAt && !(d.lastRaiseAt && d.lastRaiseAt.getTime() > d.excludedAt.getTime())) return 'excluded';
  if (effects.some((e) => e.effect === 'raise')) return 'to_confirm';
  if (effects.some((e) => e.effect === 'confirm' && !e.explained)) return 'to_diagnose';
  if (effects.some((e) => e.effect === 'known')) return 'known';
  return 'closed';
}

async function deriveCase(
  tx: Tx,
  org: string,
  patient: string,
  disease: string,
  windowDays: number,
  now: Date,
  by?: { actor: string; reason: string },
): Promise<'opened' | 'changed' | 'same'> {
  // The case's evidence, the patient's diagnoses and the case itself: independent, sent together.
  const [evr, diagnosedr, curr] = await together(tx, [
    () =>
      tx.query<{
        effect: string;
        kind: string;
        trigger_id: string;
        evidence_at: Date | null;
        recorded_at: Date;
        dept_code: string | null;
        doctor_id: string | null;
      }>(
        'SELECT effect, kind, trigger_id, evidence_at, recorded_at, dept_code, doctor_id FROM warning_evidence WHERE org_code = $1 AND patient_id = $2 AND disease = $3 ORDER BY evidence_at NULLS LAST',
        [org, patient, disease],
      ),
    // A special drug is explained by a diagnosis of the patient that its list names.
    () =>
      tx.query<{ disease: string }>(
        "SELECT DISTINCT disease FROM warning_evidence WHERE org_code = $1 AND patient_id = $2 AND effect IN ('raise', 'known', 'carded') AND kind <> 'drug'",
        [org, patient],
      ),
    () =>
      tx.query<CaseRow>(
        'SELECT case_id, state, updated_at, evidence_count, first_at, excluded_at, verified_at FROM warning_case WHERE org_code = $1 AND patient_id = $2 AND disease = $3 ORDER BY case_id DESC LIMIT 1',
        [org, patient, disease],
      ),
  ] as const);
  const ev = evr.rows;
  const diagnosed = new Set(diagnosedr.rows.map((r) => r.disease));
  const cur = curr.rows[0];
  const ended = (s: CaseState) => s === 'reported' || s === 'closed' || s === 'excluded';
  const stale = cur && ended(cur.state) && now.getTime() - new Date(cur.updated_at).getTime() > windowDays * 86_400_000;
  // When the raising evidence arose (its business time: a re-sent diagnosis keeps its time), else when it was recorded.
  const raisedAt = ev.filter((e) => e.effect === 'raise' || e.effect === 'confirm').map((e) => new Date(e.evidence_at ?? e.recorded_at).getTime());
  const decisions: Decisions = {
    excludedAt: cur && !stale && cur.excluded_at ? new Date(cur.excluded_at) : null,
    verifiedAt: cur && !stale && cur.verified_at ? new Date(cur.verified_at) : null,
    lastRaiseAt: raisedAt.length ? new Date(Math.max(...raisedAt)) : null,
  };
  let state = stateOf(
    ev.map((e) => ({ effect: e.effect, explained: e.kind === 'drug' && diagnosed.has(disease) })),
    decisions,
  );
  const d = notifiable(disease);
  // The duplicate-card rules before a prompt: a card for this person and disease already stored (in
  // the window, or ever for a chronic disease) makes the case a known one, not a prompt to report.
  let suppressedBy: PriorCard | null = null;
  if (state === 'to_confirm' || state === 'to_diagnose') {
    suppressedBy = await cardedAlready(tx, org, patient, disease, d.nndrs, windowDays, now);
    if (suppressedBy) state = 'known';
  }
  const raising = ev.filter((e) => e.effect === 'raise' && e.evidence_at).map((e) => new Date(e.evidence_at!).getTime());
  const firstAt = raising.length ? new Date(Math.min(...raising)) : null;
  const dueAt = state === 'to_confirm' && firstAt ? new Date(firstAt.getTime() + d.deadlineHours * 3_600_000) : null;
  // The first-visit doctor is responsible: the earliest evidence that raises (or asks) and names a department.
  const owner = ev.find((e) => (e.effect === 'raise' || e.effect === 'confirm') && e.dept_code) ?? ev.find((e) => e.dept_code);
  const reason = evidenceReason(ev.map((e) => ({ kind: e.kind, trigger: e.trigger_id, effect: e.effect })));
  if (suppressedBy) await recordSuppressed(tx, org, patient, disease, suppressedBy, now);
  if (!cur || stale) {
    if (state === 'closed' || state === 'excluded') return 'same';
    const ins = await tx.query<{ case_id: string }>(
      `INSERT INTO warning_case (org_code, patient_id, disease, nndrs, class_a, deadline_hours, state, first_at, due_at, evidence_count, opened_at, updated_at, dept_code, doctor_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13) RETURNING case_id`,
      [org, patient, disease, d.nndrs, d.classA, d.deadlineHours, state, firstAt, dueAt, ev.length, now, owner?.dept_code ?? null, owner?.doctor_id ?? null],
    );
    await event(tx, ins.rows[0]!.case_id, now, null, state, reason);
    return 'opened';
  }
  if (cur.state === state && cur.evidence_count === ev.length) return 'same';
  // A case reopened (reminded again after it was not: excluded, closed, reported) is a new prompt: a
  // card the HIS said it filled before is not this one, so its mark goes (docs/warning.md "Reminders").
  const reopened = REMINDED_STATES.includes(state) && !REMINDED_STATES.includes(cur.state);
  // changed_at moves with updated_at: the reminders' paging position (docs/warning.md "Reminders").
  await tx.query(
    `UPDATE warning_case SET state = $2, first_at = $3, due_at = $4, evidence_count = $5, updated_at = $6, changed_at = clock_timestamp(), dept_code = COALESCE(dept_code, $7), doctor_id = COALESCE(doctor_id, $8)${reopened ? ', filled_at = NULL' : ''} WHERE case_id = $1`,
    [cur.case_id, state, firstAt, dueAt, ev.length, now, owner?.dept_code ?? null, owner?.doctor_id ?? null],
  );
  if (cur.state !== state) await event(tx, cur.case_id, now, cur.state, state, by?.reason ?? reason, by?.actor);
  return 'changed';
}

/** One piece of evidence as a case's history names it. */
export interface ReasonEvidence {
  kind: string;
  trigger: string;
  effect: string;
}

const EVIDENCE_REASON = 'evidence: ';

/**
 * The reason a warning run writes on a case's change: `evidence: <kind>/<trigger>/<effect>, …`
 * (`none` without any), at most 500 characters as the history keeps it. Read back by
 * evidenceOfReason: the one place that knows the form.
 */
export function evidenceReason(ev: ReasonEvidence[]): string {
  return `${EVIDENCE_REASON}${ev.map((e) => `${e.kind}/${e.trigger}/${e.effect}`).join(', ') || 'none'}`.slice(0, 500);
}

/**
 * The evidence of a reason evidenceReason wrote (a trigger may hold `/`: the kind is before the first,
 * the effect after the last); null for any other reason (a person's decision, written in words). The
 * last item of a reason at the 500 characters is left out (it may be cut).
 */
export function evidenceOfReason(reason: string | null): ReasonEvidence[] | null {
  if (!reason?.startsWith(EVIDENCE_REASON)) return null;
  const list = reason.slice(EVIDENCE_REASON.length);
  if (list === 'none') return [];
  const items = list.split(', ');
  // At the history's 500 characters the last item may be cut anywhere: left out.
  if (reason.length >= 500) items.pop();
  return items.flatMap((item) => {
    const first = item.indexOf('/');
    const last = item.lastIndexOf('/');
    return first > 0 && last > first ? [{ kind: item.slice(0, first), trigger: item.slice(first + 1, last), effect: item.slice(last + 1) }] : [];
  });
}

async function event(tx: Tx, caseId: string, at: Date, from: CaseState | null, to: CaseState, reason: string, actor = 'system'): Promise<void> {
  await tx.query('INSERT INTO warning_case_event (case_id, at, actor, from_state, to_state, reason) VALUES ($1, $2, $3, $4, $5, $6)', [
    caseId,
    at,
    actor.slice(0, 80),
    from,
    to,
    reason.slice(0, 500),
  ]);
}

/** The patient's identity as stored, for the duplicate-card rules. */
async function storedPerson(tx: Tx, org: string, patient: string): Promise<PersonKey | null> {
  const p = (await tx.query<{ rec_raw: Record<string, unknown> }>('SELECT rec_raw FROM emr_patient_info WHERE org_code = $1 AND id = $2', [org, patient]))
    .rows[0];
  return p ? personKey(p.rec_raw) : null;
}

/** The NNDRS code of the case: its subtype's when the evidence named one (乙肝 0302), else the disease's. */
async function caseCode(tx: Tx, org: string, patient: string, disease: string, fallback: string | null): Promise<string | null> {
  const sub = (
    await tx.query<{ subtype: string }>(
      'SELECT subtype FROM warning_evidence WHERE org_code = $1 AND patient_id = $2 AND disease = $3 AND subtype IS NOT NULL LIMIT 1',
      [org, patient, disease],
    )
  ).rows[0];
  return (sub && lists.nndrsDisease.codes.find((c) => c.name === sub.subtype)?.code) ?? fallback;
}

/** A stored card that already reports this case (docs/warning.md "Duplicate cards"), or null. */
async function cardedAlready(
  tx: Tx,
  org: string,
  patient: string,
  disease: string,
  nndrs: string | null,
  windowDays: number,
  now: Date,
): Promise<PriorCard | null> {
  const who = await storedPerson(tx, org, patient);
  if (!who) return null;
  const cards = await priorCards(tx, org, who, await caseCode(tx, org, patient, disease, nndrs), { windowDays, now });
  return cards[0] ?? null;
}

/** Logs a prompt the rules kept back, once per case and card (the console and /duplicates list it). */
async function recordSuppressed(tx: Tx, org: string, patient: string, disease: string, card: PriorCard, now: Date): Promise<void> {
  const seen = await tx.query('SELECT 1 FROM warning_suppressed WHERE org_code = $1 AND patient_id = $2 AND disease = $3 AND card_org = $4 AND card_id = $5', [
    org,
    patient,
    disease,
    card.orgCode,
    card.cardId,
  ]);
  if (seen.rowCount) return;
  await tx.query(
    'INSERT INTO warning_suppressed (org_code, patient_id, disease, rule, card_org, card_id, reason, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
    [org, patient, disease, card.rule, card.orgCode, card.cardId, `${RULE_TEXT[card.rule]}：${card.cardId}`.slice(0, 300), now],
  );
  log('info', 'prompt suppressed', { org, disease, rule: card.rule, card: card.cardId });
}

/**
 * A card arrived: the other cards of the same person and disease that compete with it, each pair
 * recorded with its winner (the higher diagnosis level, the earlier on a tie). Replaced whole per card.
 */
async function checkCardDuplicates(tx: Tx, row: HistoryRow, windowDays: number, now: Date): Promise<number> {
  await tx.query('DELETE FROM warning_card_duplicate WHERE org_code = $1 AND card_id = $2', [row.org_code, row.record_id]);
  if (row.op === 'retire') return 0;
  const who = personKey(row.raw);
  const code = typeof row.raw.diseaseCode === 'string' ? row.raw.diseaseCode : null;
  if (!who || !code) return 0;
  const others = await priorCards(tx, row.org_code, who, code, { windowDays, now, exceptCard: { org: row.org_code, id: row.record_id } });
  const mine = { org: row.org_code, id: row.record_id, level: levelOf(row.raw.diagnoseStateCode), at: new Date(row.received_at) };
  for (const o of others) {
    const winner =
      o.level > mine.level || (o.level === mine.level && o.reportedAt.getTime() <= mine.at.getTime())
        ? { org: o.orgCode, id: o.cardId }
        : { org: mine.org, id: mine.id };
    await tx.query(
      `INSERT INTO warning_card_duplicate (org_code, card_id, other_org, other_id, winner_org, winner_id, rule, reason, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        mine.org,
        mine.id,
        o.orgCode,
        o.cardId,
        winner.org,
        winner.id,
        o.rule,
        `${RULE_TEXT[o.rule]}；诊断级别高者为准 (the higher diagnosis level wins)`.slice(0, 300),
        now,
      ],
    );
  }
  if (others.length) log('info', 'duplicate card', { org: row.org_code, card: row.record_id, others: others.length });
  return others.length;
}

/** Triggers snoozed now (public health's tuning, docs/warning.md "Precision and snoozing"). */
async function snoozedTriggers(tx: Tx, now: Date): Promise<Set<string>> {
  return new Set(
    (await tx.query<{ trigger_id: string }>('SELECT DISTINCT trigger_id FROM warning_snooze WHERE until_at > $1 AND lifted_at IS NULL', [now])).rows.map(
      (r) => r.trigger_id,
    ),
  );
}

/** Public health assigns a case's verification to a person; audited on the case. */
export async function assignVerifier(
  db: pg.Pool,
  caseId: string,
  verifier: string,
  actor: string,
  now: Date,
  /** Runs in the same transaction once the case is changed (the console's audit row: both or neither). */
  within?: (tx: Tx) => Promise<void>,
): Promise<{ caseId: string; verifier: string }> {
  return withTx(db, async (tx) => {
    const c = (
      await tx.query<{ state: CaseState; verifier: string | null }>('SELECT state, verifier FROM warning_case WHERE case_id = $1 FOR UPDATE', [caseId])
    ).rows[0];
    if (!c) throw new AppError('NOT_FOUND', `病例不存在：${caseId} (no such case)`, [], caseId);
    await tx.query('UPDATE warning_case SET verifier = $2 WHERE case_id = $1', [caseId, verifier]);
    await event(tx, caseId, now, c.state, c.state, `指派核查：${verifier}${c.verifier ? `（原 ${c.verifier}）` : ''} (verification assigned)`, actor);
    await within?.(tx);
    return { caseId, verifier };
  });
}

export type Decision = 'confirm' | 'exclude' | 'verify';

/** How a decision opens its line in the case's history, the person's reason after `：`. */
export const DECISION_LABEL: Record<Decision, string> = { confirm: '医生确认 (confirmed)', exclude: '医生排除 (excluded)', verify: '公卫核查通过 (verified)' };

const DECISION_COLUMN: Record<Decision, string> = { confirm: 'confirmed_at', exclude: 'excluded_at', verify: 'verified_at' };
/** The states in which each decision may be taken. */
const DECIDABLE: Record<Decision, readonly CaseState[]> = {
  confirm: ['to_confirm', 'to_diagnose', 'known'],
  exclude: ['to_confirm', 'to_diagnose', 'known'],
  verify: ['to_verify'],
};

/**
 * A person's decision on a case (docs/warning.md "Cases"): the doctor confirms (the reminder stays
 * until the card arrives) or excludes it with a reason; public health verifies its card. Written to
 * the case's history with the person and the reason, and the state re-derived. `orgs` limits the cases
 * the caller may touch (null: any); another org's case answers like a missing one.
 */
export async function decideCase(
  db: pg.Pool,
  caseId: string,
  what: Decision,
  by: { actor: string; reason: string | null },
  orgs: string[] | null,
  o: {
    caseWindowDays: number;
    now?: Date;
    /** Runs in the same transaction with the state the decision left (the console's audit row: both or neither). */
    within?: (tx: Tx, state: CaseState) => Promise<void>;
  },
): Promise<{ caseId: string; state: CaseState }> {
  const now = o.now ?? new Date();
  if (what === 'exclude' && !by.reason)
    throw new AppError(
      'VALIDATION_FAILED',
      '排除病例须说明理由 (a reason is required to exclude)',
      [{ field: 'reason', rule: 'required', message: '必填 (reason is required)' }],
      caseId,
    );
  return withTx(db, async (tx) => {
    const c = (
      await tx.query<{ org_code: string; patient_id: string; disease: string; state: CaseState }>(
        'SELECT org_code, patient_id, disease, state FROM warning_case WHERE case_id = $1 FOR UPDATE',
        [caseId],
      )
    ).rows[0];
    if (!c || (orgs !== null && !orgs.includes(c.org_code))) throw new AppError('NOT_FOUND', `病例不存在：${caseId} (no such case)`, [], caseId);
    if (!DECIDABLE[what].includes(c.state))
      throw new AppError(
        'CONFLICT',
        `病例当前状态为${CASE_STATE_NAME[c.state]}，不能${what === 'verify' ? '核查' : what === 'confirm' ? '确认' : '排除'} (not possible in state ${c.state})`,
        [],
        caseId,
      );
    await tx.query(`UPDATE warning_case SET ${DECISION_COLUMN[what]} = $2 WHERE case_id = $1`, [caseId, now]);
    const reason = `${DECISION_LABEL[what]}${by.reason ? `：${by.reason}` : ''}`;
    const r = await deriveCase(tx, c.org_code, c.patient_id, c.disease, o.caseWindowDays, now, { actor: by.actor, reason });
    // A decision that leaves the state as it was (a confirmation) is still on the record.
    if (r === 'same' || what === 'confirm') {
      const st = (await tx.query<{ state: CaseState }>('SELECT state FROM warning_case WHERE case_id = $1', [caseId])).rows[0]!.state;
      if (st === c.state) await event(tx, caseId, now, c.state, st, reason, by.actor);
    }
    const st = (await tx.query<{ state: CaseState }>('SELECT state FROM warning_case WHERE case_id = $1', [caseId])).rows[0]!.state;
    await o.within?.(tx, st);
    return { caseId, state: st };
  });
}

export interface CaseListing {
  caseId: string;
  orgCode: string;
  patientId: string;
  disease: string;
  classA: boolean;
  state: CaseState;
  firstAt: Date | null;
  dueAt: Date | null;
  overdue: boolean;
  evidenceCount: number;
  openedAt: Date;
  updatedAt: Date;
  /** The queues: the responsible department and doctor, public health's verifier. */
  deptCode: string | null;
  doctorId: string | null;
  verifier: string | null;
}

/** Cases, overdue first, then the most recent. */
export async function listCases(
  db: pg.Pool,
  q: {
    orgCode?: string;
    state?: CaseState;
    /** Any of these states (the console's queue: what still needs someone). */
    states?: readonly CaseState[];
    /** A case id, part of a patient id or a disease name, or a patient's name or resident ID number. */
    search?: string;
    dept?: string;
    doctor?: string;
    verifier?: string;
    limit: number;
    now: Date;
  },
): Promise<CaseListing[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (q.orgCode) where.push(`org_code = $${params.push(q.orgCode)}`);
  if (q.state) where.push(`state = $${params.push(q.state)}`);
  if (q.states) where.push(`state = ANY($${params.push(q.states)}::varchar[])`);
  if (q.search) {
    const n = params.push(q.search);
    // A name or a resident ID number: the org's patients of that name or number (docs/console.md "Cases").
    const person = searchedPerson(q.search, params, 'p');
    const byPerson = person.length ? ` OR (org_code, patient_id) IN (SELECT p.org_code, p.id FROM emr_patient_info p WHERE ${person.join(' OR ')})` : '';
    where.push(`(CAST(case_id AS varchar) = $${n} OR position($${n}::varchar in patient_id) > 0 OR position($${n}::varchar in disease) > 0${byPerson})`);
  }
  // Queues: a department's, a doctor's (the first-visit doctor is responsible for the card).
  if (q.dept) where.push(`dept_code = $${params.push(q.dept)}`);
  if (q.doctor) where.push(`doctor_id = $${params.push(q.doctor)}`);
  if (q.verifier) where.push(`verifier = $${params.push(q.verifier)}`);
  const rows = (
    await db.query<{
      case_id: string;
      org_code: string;
      patient_id: string;
      disease: string;
      class_a: boolean;
      state: CaseState;
      first_at: Date | null;
      due_at: Date | null;
      evidence_count: number;
      opened_at: Date;
      updated_at: Date;
      dept_code: string | null;
      doctor_id: string | null;
      verifier: string | null;
    }>(
      `SELECT case_id, org_code, patient_id, disease, class_a, state, first_at, due_at, evidence_count, opened_at, updated_at, dept_code, doctor_id, verifier
         FROM warning_case ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY CASE WHEN due_at IS NOT NULL AND due_at < $${params.push(q.now)} THEN 0 ELSE 1 END, updated_at DESC, case_id DESC
        LIMIT $${params.push(q.limit)}`,
      params,
    )
  ).rows;
  return rows.map((r) => ({
    caseId: String(r.case_id),
    orgCode: r.org_code,
    patientId: r.patient_id,
    disease: r.disease,
    classA: r.class_a,
    state: r.state,
    firstAt: r.first_at,
    dueAt: r.due_at,
    overdue: r.due_at !== null && new Date(r.due_at).getTime() < q.now.getTime(),
    evidenceCount: r.evidence_count,
    openedAt: r.opened_at,
    updatedAt: r.updated_at,
    deptCode: r.dept_code,
    doctorId: r.doctor_id,
    verifier: r.verifier,
  }));
}

/** One case with its evidence and its state history. */
export async function caseDetail(db: pg.Pool, caseId: string) {
  const c = (await db.query('SELECT * FROM warning_case WHERE case_id = $1', [caseId])).rows[0];
  if (!c) return null;
  const evidence = (
    await db.query(
      `SELECT source_resource, source_id, source_version, kind, effect, trigger_id, field, detail, subtype, syndrome, evidence_at, recorded_at
         FROM warning_evidence WHERE org_code = $1 AND patient_id = $2 AND disease = $3 ORDER BY evidence_at NULLS LAST, source_resource, source_id, seq`,
      [c.org_code, c.patient_id, c.disease],
    )
  ).rows;
  const events = (await db.query('SELECT at, actor, from_state, to_state, reason FROM warning_case_event WHERE case_id = $1 ORDER BY event_id', [caseId])).rows;
  const suppressed = (
    await db.query(
      'SELECT rule, card_org, card_id, reason, at FROM warning_suppressed WHERE org_code = $1 AND patient_id = $2 AND disease = $3 ORDER BY suppressed_id',
      [c.org_code, c.patient_id, c.disease],
    )
  ).rows;
  const cardIds = [...new Set(evidence.filter((e: { kind: string }) => e.kind === 'card').map((e: { source_id: string }) => e.source_id))];
  const cards = [];
  for (const id of cardIds) {
    const duplicates = (
      await db.query('SELECT other_org, other_id, winner_org, winner_id, rule, reason FROM warning_card_duplicate WHERE org_code = $1 AND card_id = $2', [
        c.org_code,
        id,
      ])
    ).rows;
    cards.push({ cardId: id, ...(await cardStatus(db, c.org_code, id)), duplicates });
  }
  return { case: c, evidence, events, suppressed, cards };
}

/** Overdue cases a run alerts one message each for; more, and they go out as one list (overdueDigest). */
export const OVERDUE_ONE_BY_ONE = 3;
/** Cases a list names line by line (a group robot takes about 2 KB of text); the rest are counted. */
const DIGEST_LINES = 12;

interface OverdueCase {
  case_id: string;
  org_code: string;
  disease: string;
  class_a: boolean;
  due_at: Date;
}

const deadlineText = (c: OverdueCase) => (c.class_a ? '甲类或按甲类管理，应于诊断后 2 小时内报告' : '应于诊断后 24 小时内报告');
const minutesLate = (c: OverdueCase, now: Date) => Math.round((now.getTime() - new Date(c.due_at).getTime()) / 60_000);

/** One case's alert text: what alert_event keeps for it, and what a channel gets when it goes alone. */
function overdueText(c: OverdueCase, now: Date, frontName?: string): { subject: string; text: string } {
  const subject = `${frontName ? `[${frontName}] ` : ''}传染病报告超时：${c.disease}（病例 ${c.case_id}）`;
  return { subject, text: `${subject}\n机构 ${c.org_code}，${deadlineText(c)}，已超时 ${minutesLate(c, now)} 分钟。\n请在前置软件控制台或 HIS 中处理该病例。` };
}

/** Several cases in one message: the most overdue first, a line each up to DIGEST_LINES, the rest counted. */
function overdueDigest(cases: OverdueCase[], now: Date, frontName?: string): { subject: string; text: string } {
  const subject = `${frontName ? `[${frontName}] ` : ''}传染病报告超时：${cases.length} 例`;
  const lines = cases
    .slice(0, DIGEST_LINES)
    .map((c) => `${c.disease}（病例 ${c.case_id}），机构 ${c.org_code}，${c.class_a ? '2 小时内报告' : '24 小时内报告'}，已超时 ${minutesLate(c, now)} 分钟`);
  const rest = cases.length > DIGEST_LINES ? [`另有 ${cases.length - DIGEST_LINES} 例，见前置软件控制台（预警病例，超时在前）。`] : [];
  return { subject, text: [subject, ...lines, ...rest, '请在前置软件控制台或 HIS 中处理这些病例。'].join('\n') };
}

/** Sends one message to every channel: the channels that took it, and the errors of those that did not. */
async function sendAlert(channels: NonNullable<WarningOptions['channels']>, m: { subject: string; text: string }) {
  const delivered: string[] = [];
  const errors: string[] = [];
  for (const ch of channels) {
    try {
      await ch.send(m.subject, m.text);
      delivered.push(ch.name);
    } catch (err) {
      errors.push(`${ch.name}: ${(err as Error).message}`);
    }
  }
  return { delivered, errors };
}

/**
 * Cases past their reporting deadline (still to_confirm after due_at) are alerted through the alert
 * channels (docs/warning.md "Deadlines"): up to OVERDUE_ONE_BY_ONE found in a run, one message each;
 * more (a front started over a backlog, a ward that stopped reporting), one message listing them, so a
 * group robot or a mailbox is not flooded with a message per case. Each case is recorded in
 * alert_event (destination `warning`, kind `overdue`, its own text) and marked once a channel took its
 * message — or at once when none is configured (logged). A channel that fails is tried again at the
 * next run. A message names the org, the disease, the case number and the deadline; never the patient.
 */
async function alertOverdue(db: pg.Pool, o: WarningOptions): Promise<number> {
  const now = (o.now ?? (() => new Date()))();
  const due = (
    await db.query<OverdueCase>(
      `SELECT case_id, org_code, disease, class_a, due_at FROM warning_case
        WHERE state = 'to_confirm' AND due_at < $1 AND overdue_alerted_at IS NULL ORDER BY due_at LIMIT 100`,
      [now],
    )
  ).rows;
  const channels = o.channels ?? [];
  const messages =
    due.length > OVERDUE_ONE_BY_ONE
      ? [{ cases: due, ...overdueDigest(due, now, o.frontName) }]
      : due.map((c) => ({ cases: [c], ...overdueText(c, now, o.frontName) }));
  for (const m of messages) {
    const { delivered, errors } = await sendAlert(channels, m);
    if (channels.length && !delivered.length) {
      log('error', 'overdue case alert not delivered; retried on the next run', { caseIds: m.cases.map((c) => c.case_id), err: errors.join('; ') });
      continue;
    }
    if (!channels.length)
      log('warn', 'overdue case: no alert channel configured (ALERT_WEBHOOK_URL, ALERT_SMTP_URL)', {
        caseIds: m.cases.map((c) => c.case_id),
        diseases: [...new Set(m.cases.map((c) => c.disease))],
      });
    await withTx(db, async (tx) => {
      for (const c of m.cases) {
        await tx.query(
          `INSERT INTO alert_event (destination, kind, pending, oldest_age_s, message, created_at, channels, delivered_at, last_error)
           VALUES ('warning', 'overdue', 1, $1, $2, $3, $4, $5, $6)`,
          [
            minutesLate(c, now) * 60,
            overdueText(c, now, o.frontName).text.slice(0, 2000),
            now,
            delivered.length ? delivered.join(' ') : null,
            delivered.length ? now : null,
            errors.length ? errors.join('; ').slice(0, 500) : channels.length ? null : 'no alert channel configured',
          ],
        );
      }
      await tx.query('UPDATE warning_case SET overdue_alerted_at = $2 WHERE case_id = ANY($1::bigint[])', [m.cases.map((c) => c.case_id), now]);
    });
  }
  return due.length;
}

/** The start of the hospital's calendar day holding `at`. */
function dayStart(at: Date, timeZone: string): Date {
  const day = formatLocal(at, timeZone).slice(0, 10);
  return parseTime(day, timeZone)!;
}

/**
 * The missed-report self-check (漏报自查, docs/warning.md): once a case's day is over, a case that
 * still waits for its card (to_confirm, to_diagnose) is marked missed, written to its history, and
 * prompted again (its reminder changes, so polling and streams show it anew).
 */
async function markMissed(db: pg.Pool, o: WarningOptions): Promise<number> {
  const now = (o.now ?? (() => new Date()))();
  const today = dayStart(now, o.timeZone ?? 'Asia/Shanghai');
  return withTx(db, async (tx) => {
    const rows = (
      await tx.query<{ case_id: string; state: CaseState }>(
        `SELECT case_id, state FROM warning_case
          WHERE state IN ('to_confirm', 'to_diagnose') AND missed_at IS NULL AND filled_at IS NULL AND opened_at < $1
          ORDER BY case_id LIMIT 1000 FOR UPDATE SKIP LOCKED`,
        [today],
      )
    ).rows;
    for (const r of rows) {
      await tx.query('UPDATE warning_case SET missed_at = $2, updated_at = $2, changed_at = clock_timestamp() WHERE case_id = $1', [r.case_id, now]);
      await event(tx, r.case_id, now, r.state, r.state, '漏报自查：当日未报告 (missed-report self-check: no card by the end of its day)');
    }
    return rows.length;
  });
}

export interface SelfCheckRow {
  caseId: string;
  patientId: string;
  disease: string;
  classA: boolean;
  state: CaseState;
  deptCode: string | null;
  doctorId: string | null;
  firstAt: string | null;
  evidence: Array<{ kind: string; trigger: string; detail: string }>;
}

/**
 * The self-check list of one day (docs/warning.md): every case that arose that day — a notifiable
 * diagnosis, a positive pathogen test, an infectious death — without a card yet, with its evidence.
 */
export async function selfCheck(
  db: pg.Pool,
  q: { orgCode: string; day: string; timeZone: string },
): Promise<{ day: string; cases: number; withoutCard: SelfCheckRow[] }> {
  const from = parseTime(q.day, q.timeZone)!;
  const to = new Date(from.getTime() + 86_400_000);
  const all = (
    await db.query<{
      case_id: string;
      patient_id: string;
      disease: string;
      class_a: boolean;
      state: CaseState;
      dept_code: string | null;
      doctor_id: string | null;
      first_at: Date | null;
    }>(
      `SELECT case_id, patient_id, disease, class_a, state, dept_code, doctor_id, first_at FROM warning_case
        WHERE org_code = $1 AND COALESCE(first_at, opened_at) >= $2 AND COALESCE(first_at, opened_at) < $3 ORDER BY class_a DESC, first_at, case_id`,
      [q.orgCode, from, to],
    )
  ).rows;
  const open = all.filter((c) => c.state === 'to_confirm' || c.state === 'to_diagnose');
  const withoutCard: SelfCheckRow[] = [];
  for (const c of open) {
    const ev = (
      await db.query<{ kind: string; trigger_id: string; detail: string }>(
        "SELECT kind, trigger_id, detail FROM warning_evidence WHERE org_code = $1 AND patient_id = $2 AND disease = $3 AND effect IN ('raise', 'confirm') ORDER BY evidence_at NULLS LAST",
        [q.orgCode, c.patient_id, c.disease],
      )
    ).rows;
    withoutCard.push({
      caseId: String(c.case_id),
      patientId: c.patient_id,
      disease: c.disease,
      classA: c.class_a,
      state: c.state,
      deptCode: c.dept_code,
      doctorId: c.doctor_id,
      firstAt: c.first_at ? formatLocal(new Date(c.first_at), q.timeZone) : null,
      evidence: ev.map((e) => ({ kind: e.kind, trigger: e.trigger_id, detail: e.detail })),
    });
  }
  return { day: q.day, cases: all.length, withoutCard };
}

/**
 * Precision of each trigger (docs/warning.md "Precision"): of the cases its evidence supports, how many
 * the doctors confirmed, excluded (with the reasons given), and how many were carded — so that a noisy
 * rule shows itself.
 */
export async function precision(db: pg.Pool, q: { orgCode?: string; from: Date; to: Date }) {
  const params: unknown[] = [q.from, q.to];
  const org = q.orgCode ? `AND c.org_code = $${params.push(q.orgCode)}` : '';
  const rows = (
    await db.query<{ trigger_id: string; kind: string; cases: string; confirmed: string; excluded: string; carded: string; open: string }>(
      `SELECT e.trigger_id, e.kind,
              count(DISTINCT c.case_id) AS cases,
              count(DISTINCT CASE WHEN c.confirmed_at IS NOT NULL THEN c.case_id END) AS confirmed,
              count(DISTINCT CASE WHEN c.state = 'excluded' THEN c.case_id END) AS excluded,
              count(DISTINCT CASE WHEN c.state IN ('to_verify', 'reported') THEN c.case_id END) AS carded,
              count(DISTINCT CASE WHEN c.state IN ('to_confirm', 'to_diagnose') THEN c.case_id END) AS open
         FROM warning_case c
         JOIN warning_evidence e ON e.org_code = c.org_code AND e.patient_id = c.patient_id AND e.disease = c.disease AND e.effect IN ('raise', 'confirm')
        WHERE c.opened_at >= $1 AND c.opened_at < $2 ${org}
        GROUP BY e.trigger_id, e.kind ORDER BY e.kind, e.trigger_id`,
      params,
    )
  ).rows;
  return rows.map((r) => {
    const decided = Number(r.carded) + Number(r.excluded);
    return {
      trigger: r.trigger_id,
      kind: r.kind,
      cases: Number(r.cases),
      confirmed: Number(r.confirmed),
      excluded: Number(r.excluded),
      carded: Number(r.carded),
      open: Number(r.open),
      // Of the cases decided (carded or excluded), the share that was carded: null until any is decided.
      precision: decided ? Number((Number(r.carded) / decided).toFixed(3)) : null,
    };
  });
}
