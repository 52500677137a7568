/**
 * Reminders for the HIS (docs/warning.md "Reminders"): the open cases a department or doctor must act
 * on, each with its evidence and a pre-filled report card; the HIS's acknowledgement (shown to the
 * doctor) and its "card filled in our own form" call, both audited with the caller and the doctor.
 */
import type pg from 'pg';
import { withTx } from '../db/index.js';
import { AppError } from '../http/errors.js';
import { formatLocal } from '../time/index.js';
import { openRecord, PiiKeyError, PiiValueError } from '../pii/index.js';
import { log } from '../log/index.js';
import { resources } from '../../schemas/index.js';
import { lists } from '../../schemas/codes/lists.js';
import { diseaseOf } from '../../schemas/report-card.js';
import { CASE_STATE_NAME, type CaseState, DECISION_LABEL, REMINDED_STATES } from './store.js';
import { cardStatus, type CardStatus } from './duplicates.js';

const OPEN = REMINDED_STATES;

export interface ReminderQuery {
  /** The orgs the caller may see: null = every org. */
  orgs: string[] | null;
  orgCode?: string;
  dept?: string;
  doctor?: string;
  /** One patient's cases (the front's own popup, opened for a patient). */
  patient?: string;
  /**
   * Only cases changed after this instant (polling: pass the previous answer's `asOf`), as sent: an
   * `asOf` the front handed out (six fractional digits) is a position, any other instant looks back
   * SINCE_OVERLAP_MS (sweepOf).
   */
  since?: string;
  /** The next page of a sweep (a previous answer's `next`): wins over `since`. */
  cursor?: ReminderCursor;
  limit: number;
}

/**
 * Where a sweep is (docs/warning.md "Reminders", paging), in the order (changed_at, case_id), times
 * in epoch microseconds of the database's clock: the sweep's window (cases whose changed_at is at or
 * after `from`, null = every open case), its horizon (every row changed before it was committed when
 * the sweep's first page was read: the `asOf` of its last page), and the last case delivered, null
 * before the first page.
 */
export interface ReminderCursor {
  from: number | null;
  horizon: number;
  at: number | null;
  caseId: string | null;
}

/** `c2.<from>.<horizon>.<at>.<caseId>`, times in epoch microseconds, `-` for none. */
export function formatCursor(c: ReminderCursor): string {
  return `c2.${c.from ?? '-'}.${c.horizon}.${c.at !== null && c.caseId ? `${c.at}.${c.caseId}` : '-.-'}`;
}

const CURSOR = /^c([12])\.(-|\d{1,17})\.(\d{1,17})\.(?:(\d{1,17})\.(\d{1,18})|-\.-)$/;

/**
 * The instants a position may name (docs/warning.md "Reminders", "Out-of-range values"), in epoch
 * microseconds: no case of the front changed before POSITION_FLOOR_US — a `since` earlier than it (a
 * .NET `DateTime.MinValue`, 0001-01-01T00:00:00Z) means from the beginning —, and POSITION_MAX_US
 * keeps every position an exact number (below 2^53 µs) and a date the database takes.
 */
export const POSITION_FLOOR_US = Date.UTC(2000, 0, 1) * 1000;
export const POSITION_MAX_US = Date.UTC(2200, 0, 1) * 1000;
/** How far ahead of the front's clock a `since` may be (a HIS's clock a little fast); beyond it, 400. */
export const SINCE_AHEAD_MS = 86_400_000;

/**
 * The cursor a `next` (or a stream's event id) names; null when the text is not one. A `c1` cursor
 * (an answer of a release before migration 1000: milliseconds, updated_at, which that migration copied
 * into changed_at) goes on where it was, its horizon taken a look-back before its start.
 */
export function parseCursor(text: string): ReminderCursor | null {
  const m = CURSOR.exec(text);
  if (!m) return null;
  const unit = m[1] === '1' ? 1000 : 1;
  const num = (v: string | undefined) => (v === undefined || v === '-' ? null : Number(v) * unit);
  const c: ReminderCursor = {
    from: num(m[2]),
    horizon: m[1] === '1' ? Number(m[3]) * 1000 - SINCE_OVERLAP_MS * 1000 : Number(m[3]),
    at: num(m[4]),
    caseId: m[5] ?? null,
  };
  // Every time a position the front hands out (POSITION_MAX_US): anything else was not a `next`.
  const inRange = (us: number | null) => us === null || (Number.isSafeInteger(us) && us >= 0 && us < POSITION_MAX_US);
  return inRange(c.from) && inRange(c.horizon) && inRange(c.at) ? c : null;
}

/**
 * What a `since` (or a stream's Last-Event-ID holding an instant) asks for (docs/warning.md
 * "Reminders", "Out-of-range values"): `beginning` before POSITION_FLOOR_US (every open reminder, as
 * without `since`), `future` more than SINCE_AHEAD_MS ahead of `now` or past POSITION_MAX_US (refused,
 * 400), `invalid` when not an instant, else `ok`.
 */
export function sinceRange(since: string, now: Date): 'ok' | 'beginning' | 'future' | 'invalid' {
  if (!INSTANT.test(since)) return 'invalid';
  const us = microsOf(since);
  if (us === null || !Number.isFinite(us)) return 'invalid';
  if (us < POSITION_FLOOR_US) return 'beginning';
  if (us >= POSITION_MAX_US || us > (now.getTime() + SINCE_AHEAD_MS) * 1000) return 'future';
  return 'ok';
}

const INSTANT = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/i;

/** Epoch microseconds of an ISO 8601 instant, its fraction to the microsecond; null when not one. */
export function microsOf(iso: string): number | null {
  const m = INSTANT.exec(iso);
  const s = m ? Date.parse(`${m[1]}${m[3]!.toUpperCase()}`) : Number.NaN;
  if (!m || Number.isNaN(s)) {
    const ms = Date.parse(iso);
    return Number.isNaN(ms) ? null : ms * 1000;
  }
  return s * 1000 + Number((m[2] ?? '').padEnd(6, '0').slice(0, 6));
}

/** An instant with six fractional digits (UTC): how the front hands out a position (an `asOf`). */
export function instantOf(us: number): string {
  const ms = Math.floor(us / 1000);
  return new Date(ms).toISOString().replace(/Z$/, `${String(us - ms * 1000).padStart(3, '0')}Z`);
}

/** A `since` the front handed out: an `asOf` has exactly six fractional digits (a position, no look-back). */
const POSITION = /\.\d{6}(Z|[+-]\d{2}:\d{2})$/i;

/** One answer: a page of a sweep. */
export interface ReminderPage {
  /**
   * The `since` of the next poll, a position (six fractional digits, pageOf): the sweep's horizon
   * once it is complete; while `more`, the first case not delivered (or the horizon, if earlier).
   */
  asOf: string;
  /** More cases wait in this sweep: ask again with `cursor` = `next` at once. */
  more: boolean;
  next: string | null;
  reminders: Reminder[];
  /**
   * The reminders of this page that ended (docs/warning.md "Reminders", "Reminders that end"): cases
   * of the sweep's window no longer open. Only in a sweep from a `since` (or its cursor): a sweep
   * without one is the whole open set.
   */
  removed: RemovedReminder[];
  /** Where this page began (not in the HIS's answer): a stream's event id, to resume it without a skip. */
  start: string;
}

/** Why a reminder ended: excluded by a doctor, a card arrived, the HIS marked it filled, nothing left to report. */
export type RemovedReason = 'excluded' | 'carded' | 'filled' | 'closed';

/** A reminder that ended: the HIS drops the reminder it holds for `caseId`. */
export interface RemovedReminder {
  caseId: string;
  orgCode: string;
  patientId: string;
  reason: RemovedReason;
  state: CaseState;
  stateName: string;
  updatedAt: string;
}

/** Why an ended case is no reminder any more (its state, or filled_at). */
function removedReason(state: CaseState, filled: boolean): RemovedReason {
  if (state === 'to_verify' || state === 'reported') return 'carded';
  if (state === 'excluded') return 'excluded';
  if (filled && OPEN.includes(state)) return 'filled';
  return 'closed';
}

export interface Reminder {
  caseId: string;
  orgCode: string;
  patientId: string;
  disease: string;
  nndrs: string | null;
  classA: boolean;
  state: CaseState;
  /** 待确认, 待确诊, 已知病例 */
  stateName: string;
  deptCode: string | null;
  doctorId: string | null;
  firstAt: string | null;
  dueAt: string | null;
  overdue: boolean;
  acked: boolean;
  /** The daily missed-report self-check found it still without a card (漏报自查). */
  missed: boolean;
  updatedAt: string;
  evidence: Array<{ kind: string; trigger: string; detail: string; at: string | null }>;
  /** The report card's fields the front can fill, under the emrInfReport names. */
  card: Record<string, unknown>;
  /**
   * The front's own pre-filled card form for this case on the console port (docs/card-form.md): the
   * HIS opens `/sso?token=…` with the token's `case` claim set to this caseId, which lands here.
   */
  cardForm: string;
}

const local = (d: Date | null) => (d ? formatLocal(new Date(d)) : null);

interface CaseRow {
  case_id: string;
  org_code: string;
  patient_id: string;
  disease: string;
  nndrs: string | null;
  class_a: boolean;
  state: CaseState;
  dept_code: string | null;
  doctor_id: string | null;
  first_at: Date | null;
  due_at: Date | null;
  acked_at: Date | null;
  missed_at: Date | null;
  updated_at: Date;
  /** changed_at to the microsecond (MICROS): the row's paging position. */
  changed: string;
  /** Whether the HIS marked the card filled (listReminders' rows only). */
  filled?: boolean;
}

/**
 * How far a `since` the front did not hand out looks back: longer than a warning run's transaction
 * (docs/warning.md "Reminders"), and the longest a writer's transaction is waited for (horizonOf).
 */
export const SINCE_OVERLAP_MS = 60_000;

/** A timestamptz as text to the microsecond, UTC (JavaScript's Date holds milliseconds only). */
const MICROS = (col: string) => `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/**
 * The horizon of a sweep starting now: every row whose changed_at is before it is committed. A row's
 * changed_at is the database's clock when it was written, after its transaction locked warning_case
 * for writing; so the horizon is the start of the oldest transaction that holds such a lock now
 * (pg_locks, pg_stat_activity: a writer of cases still open), or this statement's start when none
 * does — a transaction that takes the lock later writes later. Never more than SINCE_OVERLAP_MS
 * back: a writer open longer would make every poll send a minute of cases again, and no writer of
 * cases runs that long (docs/warning.md "Reminders"). pg_locks is read live, pg_stat_activity from a
 * snapshot, so a writer of the front's own role may hold a lock while its row shows no transaction
 * (xact_start NULL): it began after the snapshot (it writes later than now) or has committed (its rows
 * are visible to the sweep): not an old writer, it counts as now. Only a writer whose start this
 * session cannot see (another database role, a session missing from the snapshot, a prepared
 * transaction) counts as that old.
 */
export async function horizonOf(db: Pick<pg.Pool, 'query'>): Promise<number> {
  const r = (
    await db.query<{ now: string; oldest: string | null }>(
      `SELECT ${MICROS('now()')} AS now,
              ${MICROS(`(SELECT min(CASE WHEN a.xact_start IS NOT NULL THEN a.xact_start
                                         WHEN a.usename = current_user THEN now()
                                         ELSE now() - interval '${SINCE_OVERLAP_MS / 1000} seconds' END)
                           FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
                          WHERE l.locktype = 'relation' AND l.relation = 'warning_case'::regclass AND l.pid <> pg_backend_pid()
                            AND l.mode IN ('RowExclusiveLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock'))`)} AS oldest`,
    )
  ).rows[0]!;
  const now = microsOf(r.now)!;
  const oldest = r.oldest ? microsOf(r.oldest)! : now;
  return Math.max(now - SINCE_OVERLAP_MS * 1000, Math.min(now, oldest));
}

/** Where a sweep takes its horizon from: read now (horizonOf), or a value shared with others (sharedHorizon). */
export type HorizonSource = (db: pg.Pool) => Promise<number>;

/**
 * A horizon shared by every sweep of a process that asks within `maxAgeMs` of the last read: one read
 * of pg_locks per interval however many streams sweep (docs/warning.md "Reminders"). A horizon read
 * earlier is still a horizon — every row changed before it was committed then, and stays so — it only
 * makes the next poll start a little further back, and a stream drops what it already sent. Not for
 * plain polls, where a case written between the read and the page would be delivered twice.
 */
export function sharedHorizon(maxAgeMs: number): HorizonSource {
  let last: { at: number; value: Promise<number> } | null = null;
  return (db) => {
    const now = Date.now();
    if (last && now - last.at < maxAgeMs) return last.value;
    const read = { at: now, value: horizonOf(db) };
    // A failed read is not shared: the next sweep reads again.
    read.value.catch(() => {
      if (last === read) last = null;
    });
    last = read;
    return read.value;
  };
}

/**
 * The sweep a query continues (its cursor) or starts: cases changed at or after `since` — an `asOf`
 * the front handed out is that position exactly, any other instant less the overlap
 * (SINCE_OVERLAP_MS); one before POSITION_FLOOR_US is from the beginning — or every case; its horizon
 * read now (or from `horizon`), never before `floor` (a position the caller was handed, still true).
 */
async function sweepOf(db: pg.Pool, q: ReminderQuery, horizon: HorizonSource = horizonOf, floor: number | null = null): Promise<ReminderCursor> {
  if (q.cursor) return q.cursor;
  const since = q.since === undefined ? null : microsOf(q.since);
  const from = since === null || since < POSITION_FLOOR_US ? null : POSITION.test(q.since!) ? since : since - SINCE_OVERLAP_MS * 1000;
  const read = await horizon(db);
  return { from, horizon: floor !== null && floor > read ? floor : read, at: null, caseId: null };
}

/** The six-digit position a `since` names (an `asOf` the front handed out), null for any other value. */
export function positionOf(since: string | undefined): number | null {
  return since !== undefined && POSITION.test(since) ? microsOf(since) : null;
}

/** The sweep's window and the position after its last page, as conditions on (changed_at, case_id). */
function keysetWhere(cursor: ReminderCursor, where: string[], params: unknown[]): void {
  if (cursor.from !== null) where.push(`changed_at >= $${params.push(instantOf(cursor.from))}::timestamptz`);
  if (cursor.at !== null && cursor.caseId) {
    const at = params.push(instantOf(cursor.at));
    where.push(`(changed_at > $${at}::timestamptz OR (changed_at = $${at}::timestamptz AND case_id > $${params.push(cursor.caseId)}))`);
  }
}

/**
 * Whether another page follows (one row more than the page was read), its cursor, and the answer's
 * asOf: after the last page the sweep's horizon; while `more`, the position of the first case not
 * delivered, or the horizon when that is earlier — a poll with `since=asOf` starts there, so a HIS
 * that knows nothing of `more` walks the pages one poll each and skips nothing.
 */
function pageOf<R extends { case_id: string; changed: string }>(rows: R[], limit: number, cursor: ReminderCursor) {
  const more = rows.length > limit;
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  const next = more && last ? formatCursor({ ...cursor, at: microsOf(last.changed), caseId: String(last.case_id) }) : null;
  const asOf = more ? Math.min(cursor.horizon, microsOf(rows[limit]!.changed)!) : cursor.horizon;
  return { page, more, next, asOf: instantOf(asOf), start: formatCursor(cursor) };
}

/** Overdue, then class A, then the earliest diagnosis: how a page is shown to the doctor. */
function byUrgency(now: Date) {
  const overdue = (r: CaseRow) => (r.due_at !== null && new Date(r.due_at).getTime() < now.getTime() ? 0 : 1);
  const first = (r: CaseRow) => (r.first_at === null ? Number.POSITIVE_INFINITY : new Date(r.first_at).getTime());
  return (a: CaseRow, b: CaseRow) =>
    overdue(a) - overdue(b) ||
    Number(b.class_a) - Number(a.class_a) ||
    first(a) - first(b) ||
    (BigInt(a.case_id) < BigInt(b.case_id) ? -1 : BigInt(a.case_id) > BigInt(b.case_id) ? 1 : 0);
}

/**
 * One page of open cases. Pages follow (changed_at, case_id), so a sweep delivers every case of its
 * window however many changed at once (a warning run changes all its cases in one transaction, the
 * self-check every open case): a page that is not the last says `more` and gives `next`. `skip` leaves
 * out cases the caller already has (a stream's repeats) without building them; `horizon`, where the
 * sweep's horizon comes from (sharedHorizon, for streams).
 */
export async function listReminders(
  db: pg.Pool,
  q: ReminderQuery,
  now: Date,
  o: { skip?: (caseId: string, updatedAt: string) => boolean; horizon?: HorizonSource; floor?: number | null } = {},
): Promise<ReminderPage> {
  const open = `state IN (${OPEN.map((s) => `'${s}'`).join(', ')}) AND filled_at IS NULL`;
  const where: string[] = [];
  const params: unknown[] = [];
  if (q.orgs !== null) where.push(`org_code = ANY($${params.push(q.orgs)}::varchar[])`);
  if (q.orgCode) where.push(`org_code = $${params.push(q.orgCode)}`);
  if (q.dept) where.push(`dept_code = $${params.push(q.dept)}`);
  if (q.doctor) where.push(`doctor_id = $${params.push(q.doctor)}`);
  if (q.patient) where.push(`patient_id = $${params.push(q.patient)}`);
  // A case's updatedAt is its warning run's clock, taken before that run commits, so it says nothing
  // of when the HIS can see the case. The paging position is changed_at, the database's clock at the
  // write, and the sweep's horizon (horizonOf), read before its first page, is where the next poll
  // starts: a transaction still open then commits rows at or after it, and the next poll reads them
  // (no skip); a case the sweep delivered comes again only when it was written after the horizon
  // (by a transaction open around the sweep's start). A case changed while the sweep runs shows up in
  // it (its position is ahead of the cursor) or in the next sweep.
  const cursor = await sweepOf(db, q, o.horizon, o.floor ?? null);
  // A sweep from a `since` takes every case of its window, open or not: one no longer open is a
  // reminder that ended (`removed`), in the same order and pages (docs/warning.md "Reminders that
  // end"). A sweep without one is the open set: an ending written after its horizon is in the next.
  if (cursor.from === null) where.push(open);
  keysetWhere(cursor, where, params);
  // One row more than the page tells whether another page follows.
  const rows = (
    await db.query<CaseRow>(
      `SELECT case_id, org_code, patient_id, disease, nndrs, class_a, state, dept_code, doctor_id, first_at, due_at, acked_at, missed_at, updated_at,
              ${MICROS('changed_at')} AS changed, (filled_at IS NOT NULL) AS filled
         FROM warning_case WHERE ${where.length ? where.join(' AND ') : 'true'}
        ORDER BY changed_at, case_id
        LIMIT $${params.push(q.limit + 1)}`,
      params,
    )
  ).rows;
  const { page, more, next, asOf, start } = pageOf(rows, q.limit, cursor);
  const isOpen = (r: CaseRow) => OPEN.includes(r.state) && !r.filled;
  const removed: RemovedReminder[] = page
    .filter((r) => !isOpen(r))
    .map((r) => ({
      caseId: String(r.case_id),
      orgCode: r.org_code,
      patientId: r.patient_id,
      reason: removedReason(r.state, r.filled === true),
      state: r.state,
      stateName: CASE_STATE_NAME[r.state],
      updatedAt: new Date(r.updated_at).toISOString(),
    }));
  const reminders: Reminder[] = [];
  for (const r of page.filter(isOpen).sort(byUrgency(now))) {
    if (o.skip?.(String(r.case_id), new Date(r.updated_at).toISOString())) continue;
    reminders.push(await reminderOf(db, r, now));
  }
  return { asOf, more, next, reminders, removed, start };
}

async function reminderOf(db: pg.Pool, r: CaseRow, now: Date): Promise<Reminder> {
  const ev = (
    await db.query<{ kind: string; trigger_id: string; detail: string; evidence_at: Date | null; subtype: string | null }>(
      `SELECT kind, trigger_id, detail, evidence_at, subtype FROM warning_evidence
        WHERE org_code = $1 AND patient_id = $2 AND disease = $3 AND effect IN ('raise', 'confirm', 'known') ORDER BY evidence_at NULLS LAST`,
      [r.org_code, r.patient_id, r.disease],
    )
  ).rows;
  return {
    caseId: String(r.case_id),
    orgCode: r.org_code,
    patientId: r.patient_id,
    disease: r.disease,
    nndrs: r.nndrs,
    classA: r.class_a,
    state: r.state,
    stateName: CASE_STATE_NAME[r.state],
    deptCode: r.dept_code,
    doctorId: r.doctor_id,
    firstAt: local(r.first_at),
    dueAt: local(r.due_at),
    overdue: r.due_at !== null && new Date(r.due_at).getTime() < now.getTime(),
    acked: r.acked_at !== null,
    missed: r.missed_at !== null,
    updatedAt: new Date(r.updated_at).toISOString(),
    evidence: ev.map((e) => ({ kind: e.kind, trigger: e.trigger_id, detail: e.detail, at: local(e.evidence_at) })),
    card: await prefill(db, r, ev.find((e) => e.subtype)?.subtype ?? null),
    cardForm: `/card.html?case=${r.case_id}`,
  };
}

/** A case a doctor excluded, with who excluded it, when and why (the exclusion in its history). */
export interface ExcludedCase extends Reminder {
  exclusion: { doctor: string; at: string | null; reason: string };
}

/** The doctor of a decision's actor: `sso:<doctor>` (the popup), `<kind>:<caller>/<doctor>` (the HIS). */
const deciderOf = (actor: string): string => (actor.startsWith('sso:') ? actor.slice(4) : actor.includes('/') ? actor.slice(actor.indexOf('/') + 1) : actor);

/**
 * The patient's cases excluded within the case window, newest exclusion first (docs/card-form.md
 * "The popup"): every doctor who sees the patient is a responsible reporter, so a colleague's exclusion
 * does not stop another doctor from reporting the case. Each with the exclusion as its history has it.
 */
export async function excludedCases(db: pg.Pool, orgCode: string, patientId: string, windowDays: number, now: Date): Promise<ExcludedCase[]> {
  const rows = (
    await db.query<CaseRow>(
      `SELECT case_id, org_code, patient_id, disease, nndrs, class_a, state, dept_code, doctor_id, first_at, due_at, acked_at, missed_at, updated_at,
              '' AS changed
         FROM warning_case
        WHERE org_code = $1 AND patient_id = $2 AND state = 'excluded' AND filled_at IS NULL
          AND excluded_at > $3::timestamptz - $4::integer * interval '1 day'
        ORDER BY excluded_at DESC, case_id DESC LIMIT 20`,
      [orgCode, patientId, now, windowDays],
    )
  ).rows;
  const label = `${DECISION_LABEL.exclude}：`;
  const out: ExcludedCase[] = [];
  for (const r of rows) {
    const e = (
      await db.query<{ actor: string; at: Date; reason: string }>(
        `SELECT actor, at, reason FROM warning_case_event WHERE case_id = $1 AND to_state = 'excluded' ORDER BY event_id DESC LIMIT 1`,
        [r.case_id],
      )
    ).rows[0];
    const reason = e?.reason ?? '';
    out.push({
      ...(await reminderOf(db, r, now)),
      exclusion: { doctor: e ? deciderOf(e.actor) : '—', at: local(e?.at ?? null), reason: reason.startsWith(label) ? reason.slice(label.length) : reason },
    });
  }
  return out;
}

/** The patient's identity and demographics as the card asks for them (emrInfReport's field names). */
const FROM_PATIENT = [
  'patientName',
  'idCardTypeCode',
  'idCardTypeName',
  'idCard',
  'genderCode',
  'genderName',
  'birthDate',
  'nationalityCode',
  'nationalityName',
  'nationCode',
  'nationName',
  'permanentAddrCode',
  'permanentAddrName',
  'permanentAddrDetail',
  'currentAddrCode',
  'currentAddrName',
  'currentAddrDetail',
  'workunit',
  'maritalStatusCode',
  'maritalStatusName',
  'tel',
  'contacts',
  'contactsTel',
  'educationCode',
  'educationName',
  'nultitudeTypeCode',
  'nultitudeTypeName',
];

/**
 * The subtype the patient's latest diagnosis of this disease names in its own codes: the NNDRS code a
 * HIS may send as the diagnosis's `diseaseCode`, or its ICD-10 code (`diseaseCode` or
 * `wmDiseaseCode`: A01.0 is 伤寒 0501) mapped as the report-card rules map it (schemas/report-card.ts
 * `diseaseOf`) — a code of the disease's family (its first two digits) other than the disease's own,
 * on the national list. None: undefined.
 */
async function diagnosedSubtype(db: pg.Pool, r: CaseRow): Promise<{ code: string; name: string } | undefined> {
  if (!r.nndrs || !/^\d{4}$/.test(r.nndrs)) return undefined;
  const family = lists.nndrsDisease.codes.filter((c) => c.code.slice(0, 2) === r.nndrs!.slice(0, 2) && c.code !== r.nndrs);
  if (family.length === 0) return undefined;
  const rows = (
    await db.query<{ disease_code: string | null; wm_disease_code: string | null }>(
      `SELECT disease_code, wm_disease_code FROM emr_activity_info
        WHERE org_code = $1 AND patient_id = $2 AND rec_retired = false
          AND (disease_code IS NOT NULL OR wm_disease_code IS NOT NULL)
        ORDER BY activity_time DESC NULLS LAST LIMIT 50`,
      [r.org_code, r.patient_id],
    )
  ).rows;
  for (const row of rows) {
    for (const code of [row.disease_code, row.wm_disease_code]) {
      const nndrs = code ? diseaseOf({ diseaseCode: code }) : null;
      const sub = nndrs ? family.find((c) => c.code === nndrs) : undefined;
      if (sub) return sub;
    }
  }
  return undefined;
}

async function prefill(db: pg.Pool, r: CaseRow, subtype: string | null): Promise<Record<string, unknown>> {
  const card: Record<string, unknown> = { orgCode: r.org_code, patientId: r.patient_id };
  const p = (
    await db.query<{ rec_raw: Record<string, unknown> }>('SELECT rec_raw FROM emr_patient_info WHERE org_code = $1 AND id = $2', [r.org_code, r.patient_id])
  ).rows[0];
  // The card shows the patient's own values (the doctor's form, the HIS's reminder): opened here.
  let raw: Record<string, unknown> | undefined;
  try {
    raw = p?.rec_raw ? openRecord('emrPatientInfo', p.rec_raw) : undefined;
  } catch (err) {
    if (!(err instanceof PiiKeyError || err instanceof PiiValueError)) throw err;
    // Its key is missing (docs/keys.md): the card is prefilled without the patient's identity.
    log('error', 'reminder: the patient record cannot be opened', { keyId: err.keyId });
    raw = undefined;
  }
  for (const k of FROM_PATIENT) if (raw?.[k] !== undefined && raw[k] !== null) card[k] = raw[k];
  // The NNDRS code of the subtype when the evidence named one (乙肝 0302), or the patient's own
  // diagnosis did (its diseaseCode, 肺结核 病原学阳性 2606), else of the disease.
  const sub = subtype ? lists.nndrsDisease.codes.find((c) => c.name === subtype) : await diagnosedSubtype(db, r);
  card.diseaseCode = sub?.code ?? r.nndrs ?? undefined;
  card.diseaseName = sub?.name ?? r.disease;
  if (r.first_at) card.diagnoseTime = local(r.first_at);
  if (r.dept_code) card.deptCode = r.dept_code;
  // Only fields the card has: the HIS maps them onto its own form, or posts them back as emrInfReport.
  const fields = resources.emrInfReport!.fields;
  return Object.fromEntries(Object.entries(card).filter(([k, v]) => k in fields && v !== undefined));
}

/** The HIS showed the reminder (ack) or says the card was filled in its own form (filled). */
export async function markReminder(
  db: pg.Pool,
  caseId: string,
  what: 'ack' | 'filled',
  by: { caller: string; doctor: string | null; note: string | null },
  orgs: string[] | null,
  now: Date,
): Promise<{ caseId: string; state: CaseState }> {
  return withTx(db, async (tx) => {
    const c = (await tx.query<{ org_code: string; state: CaseState }>('SELECT org_code, state FROM warning_case WHERE case_id = $1 FOR UPDATE', [caseId]))
      .rows[0];
    // Another org's case is answered like a missing one: its existence is not the caller's to know.
    if (!c || (orgs !== null && !orgs.includes(c.org_code))) throw new AppError('NOT_FOUND', `提醒不存在：${caseId} (no such reminder)`, [], caseId);
    // A filled reminder ends: its position moves, so `since` sweeps and streams signal it (removed, reason filled).
    await tx.query(
      what === 'ack'
        ? 'UPDATE warning_case SET acked_at = $2 WHERE case_id = $1'
        : 'UPDATE warning_case SET filled_at = $2, changed_at = clock_timestamp() WHERE case_id = $1',
      [caseId, now],
    );
    const actor = `${by.caller}${by.doctor ? `/${by.doctor}` : ''}`.slice(0, 80);
    const reason =
      (what === 'ack' ? '提醒已向医生展示 (shown to the doctor)' : 'HIS 已在本系统表单中填写报告卡 (card filled in the HIS form)') +
      (by.note ? `：${by.note}` : '');
    await tx.query('INSERT INTO warning_case_event (case_id, at, actor, from_state, to_state, reason) VALUES ($1, $2, $3, $4, $4, $5)', [
      caseId,
      now,
      actor,
      c.state,
      reason.slice(0, 500),
    ]);
    return { caseId, state: c.state };
  });
}

export interface CaseCard {
  caseId: string;
  orgCode: string;
  patientId: string;
  disease: string;
  classA: boolean;
  state: CaseState;
  stateName: string;
  deptCode: string | null;
  doctorId: string | null;
  /** The reporting clock, from the diagnosis (2 h / 24 h). */
  firstAt: string | null;
  deadlineAt: string | null;
  cards: Array<{
    cardId: string;
    status: CardStatus;
    statusName: string;
    version: number | null;
    reason: string | null;
    at: string | null;
    duplicateOf: string | null;
  }>;
  /** Still to be done: no card accepted yet by the national platform. */
  open: boolean;
  overdue: boolean;
  updatedAt: string;
}

/**
 * The cards of the cases a doctor or department reported (docs/warning.md "Card status"): each card's
 * status at the national platform (stored, sent, accepted, returned for correction, corrected), and
 * the case's 2 h / 24 h clock while no card is accepted.
 */
export async function listCaseCards(
  db: pg.Pool,
  q: ReminderQuery,
  now: Date,
): Promise<{ asOf: string; more: boolean; next: string | null; cases: CaseCard[] }> {
  const where = [`state IN ('to_verify', 'reported')`];
  const params: unknown[] = [];
  if (q.orgs !== null) where.push(`org_code = ANY($${params.push(q.orgs)}::varchar[])`);
  if (q.orgCode) where.push(`org_code = $${params.push(q.orgCode)}`);
  if (q.dept) where.push(`dept_code = $${params.push(q.dept)}`);
  if (q.doctor) where.push(`doctor_id = $${params.push(q.doctor)}`);
  if (q.patient) where.push(`patient_id = $${params.push(q.patient)}`);
  // Paged as the reminders are (listReminders): a status change is never lost to the page size.
  const cursor = await sweepOf(db, q);
  keysetWhere(cursor, where, params);
  const rows = (
    await db.query<{
      case_id: string;
      org_code: string;
      patient_id: string;
      disease: string;
      class_a: boolean;
      deadline_hours: number;
      state: CaseState;
      dept_code: string | null;
      doctor_id: string | null;
      first_at: Date | null;
      updated_at: Date;
      changed: string;
    }>(
      `SELECT case_id, org_code, patient_id, disease, class_a, deadline_hours, state, dept_code, doctor_id, first_at, updated_at, ${MICROS('changed_at')} AS changed
         FROM warning_case WHERE ${where.join(' AND ')} ORDER BY changed_at, case_id LIMIT $${params.push(q.limit + 1)}`,
      params,
    )
  ).rows;
  const { page, more, next, asOf } = pageOf(rows, q.limit, cursor);
  const out: CaseCard[] = [];
  // The most recently changed first within the page.
  for (const r of page.reverse()) {
    const ids = (
      await db.query<{ source_id: string }>(
        "SELECT DISTINCT source_id FROM warning_evidence WHERE org_code = $1 AND patient_id = $2 AND disease = $3 AND kind = 'card' ORDER BY source_id",
        [r.org_code, r.patient_id, r.disease],
      )
    ).rows.map((x) => x.source_id);
    const cards: CaseCard['cards'] = [];
    for (const id of ids) {
      const st = await cardStatus(db, r.org_code, id);
      const dup = (
        await db.query<{ winner_id: string }>(
          'SELECT winner_id FROM warning_card_duplicate WHERE org_code = $1 AND card_id = $2 AND NOT (winner_org = org_code AND winner_id = card_id) LIMIT 1',
          [r.org_code, id],
        )
      ).rows[0];
      cards.push({
        cardId: id,
        status: st.status,
        statusName: st.name,
        version: st.version,
        reason: st.reason,
        at: st.at ? st.at.toISOString() : null,
        duplicateOf: dup?.winner_id ?? null,
      });
    }
    const open = !cards.some((c) => c.status === 'accepted' || c.status === 'corrected');
    const deadline = r.first_at ? new Date(new Date(r.first_at).getTime() + r.deadline_hours * 3_600_000) : null;
    out.push({
      caseId: String(r.case_id),
      orgCode: r.org_code,
      patientId: r.patient_id,
      disease: r.disease,
      classA: r.class_a,
      state: r.state,
      stateName: CASE_STATE_NAME[r.state],
      deptCode: r.dept_code,
      doctorId: r.doctor_id,
      firstAt: local(r.first_at),
      deadlineAt: local(deadline),
      cards,
      open,
      overdue: open && deadline !== null && deadline.getTime() < now.getTime(),
      updatedAt: new Date(r.updated_at).toISOString(),
    });
  }
  return { asOf, more, next, cases: out };
}
