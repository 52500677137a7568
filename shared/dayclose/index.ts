/**
 * Closing the day (日终处理, docs/day-close.md): which closes are due, for which organisations, and
 * the ledger the console reads. One close is `closeDay` (close.ts); its figures are figures.ts.
 */
import type { Db } from '../db/index.js';
import { log } from '../log/index.js';
import { closeDay, type CloseOptions, type CloseResult } from './close.js';
import { addDays, localDay } from '../time/day.js';
import { dueCloses, type CloseKind, type Schedule } from './day.js';

export { closeDay, recordIdOf, SUMMARY_RESOURCE, COMPLETENESS_RESOURCE, type CloseOptions, type CloseResult } from './close.js';
export { addDays, dayBounds, isDay, localDay } from '../time/day.js';
export { dueCloses, DEFAULT_SCHEDULE, CLOSE_KINDS, type CloseKind, type Schedule } from './day.js';
export { loadDayCloseConfig, type DayCloseConfig } from './config.js';
export { computeDay, notifiableByIcd10, type Completeness, type Summary, type Gap } from './figures.js';

/** Advisory-lock key of the scheduled run (both dialects take a bigint): one run at a time. */
export const DAYCLOSE_LOCK = 7_204_508;

/**
 * Organisations to close: those with a record whose business day is on or after `sinceDay`. The
 * organisations are found by a loose index scan of record_receipt (org_code leads its day index,
 * which holds the receipts with a business day: infra/db/0950_receipt_day_partial.sql), so the
 * cost is one probe per organisation, not a scan of the receipts.
 */
export async function activeOrgs(db: Db, sinceDay: string): Promise<string[]> {
  const res = await db.query<{ org_code: string }>(
    `WITH RECURSIVE o (org_code) AS (
       SELECT min(org_code) FROM record_receipt WHERE business_day IS NOT NULL
       UNION ALL
       SELECT (SELECT min(r.org_code) FROM record_receipt r WHERE r.org_code > o.org_code AND r.business_day IS NOT NULL) FROM o WHERE o.org_code IS NOT NULL
     )
     SELECT o.org_code FROM o
      WHERE o.org_code IS NOT NULL
        AND EXISTS (SELECT 1 FROM record_receipt r WHERE r.org_code = o.org_code AND r.business_day >= $1)`,
    [sinceDay],
  );
  return res.rows.map((r) => r.org_code);
}

/**
 * A receipt written this long before a close started still counts as late (docs/day-close.md "Late
 * records"): the receipt's time is taken when the HIS call starts, so a write stamped just before
 * the close began may commit after the close read the day. At worst one re-close finds nothing changed.
 */
export const LATE_MARGIN_S = 300;
/** Done T+1 closes re-closed for late records per tick, at most (docs/day-close.md "Late records"). */
export const LATE_MAX = 20;

export interface DueOptions extends CloseOptions {
  schedule: Schedule;
  /** Organisations to close (DAYCLOSE_ORGS); default: those active in the last 30 days. */
  orgs?: string[];
  /** Re-closes for late records per tick (default LATE_MAX). */
  lateMax?: number;
}

export interface DueRun {
  at: string;
  /** Another run held the lock: nothing was done. */
  skipped?: string;
  due: Array<{ day: string; kind: CloseKind }>;
  orgs: number;
  closes: CloseResult[];
  /** Closes found done already (idempotent per org, day and kind), the re-closed ones included. */
  alreadyDone: number;
  /** Done T+1 closes run again because records of their day arrived after them (in `closes`). */
  reclosed: number;
  /** Done T+1 closes with late records left for the next ticks (beyond `lateMax`). */
  lateLeft: number;
  durationMs: number;
}

/**
 * The scheduled entry, under a session advisory lock: every close due now that is not done yet, then
 * the done T+1 closes of the catch-up window that records of their day reached after they started
 * (docs/day-close.md "Late records"), at most `lateMax` of them, the longest-standing first.
 */
export async function runDue(db: Db, opts: DueOptions): Promise<DueRun> {
  const t0 = Date.now();
  const now = (opts.now ?? (() => new Date()))();
  const due = dueCloses(now, opts.timeZone, opts.schedule);
  const out: DueRun = { at: now.toISOString(), due, orgs: 0, closes: [], alreadyDone: 0, reclosed: 0, lateLeft: 0, durationMs: 0 };
  const client = await db.connect();
  let locked = false;
  try {
    locked = (await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [DAYCLOSE_LOCK])).rows[0]?.ok === true;
    if (!locked) return { ...out, skipped: 'another day-close run holds the lock', durationMs: Date.now() - t0 };
    if (due.length === 0) return { ...out, durationMs: Date.now() - t0 };
    const today = localDay(now, opts.timeZone);
    const orgs = opts.orgs ?? (await activeOrgs(db, addDays(today, -30)));
    out.orgs = orgs.length;
    const oldest = due.reduce((m, d) => (d.day < m ? d.day : m), today);
    const rows = await doneCloses(db, oldest, today);
    const done = new Set(rows.map((r) => `${r.org_code}|${r.business_day}|${r.kind}`));
    for (const d of due) {
      for (const org of orgs) {
        if (done.has(`${org}|${d.day}|${d.kind}`)) {
          out.alreadyDone++;
          continue;
        }
        out.closes.push(await closeDay(db, org, d.day, d.kind, opts));
      }
    }
    // Only T+1 is re-closed: a T+0 is the picture at DAYCLOSE_T0_AT, and its day's T+1 takes in
    // whatever came later (docs/day-close.md "Late records").
    const dueT1 = new Set(due.filter((d) => d.kind === 'T+1').map((d) => d.day));
    const mine = new Set(orgs);
    const late = rows.filter((r) => r.late && r.kind === 'T+1' && dueT1.has(r.business_day) && mine.has(r.org_code));
    const max = opts.lateMax ?? LATE_MAX;
    out.lateLeft = Math.max(0, late.length - max);
    for (const r of late.slice(0, max)) {
      out.closes.push(await closeDay(db, r.org_code, r.business_day, 'T+1', opts));
      out.reclosed++;
    }
  } finally {
    if (locked) await client.query('SELECT pg_advisory_unlock($1)', [DAYCLOSE_LOCK]).catch(() => undefined);
    client.release();
  }
  out.durationMs = Date.now() - t0;
  if (out.closes.length)
    log('info', 'day-close run', {
      closes: out.closes.length,
      failed: out.closes.filter((c) => c.status === 'failed').length,
      alreadyDone: out.alreadyDone,
      reclosed: out.reclosed,
      lateLeft: out.lateLeft,
      ms: out.durationMs,
    });
  return out;
}

/**
 * The done closes of [fromDay, toDay], the longest-standing first, each with whether a receipt of its
 * org and business day was written, or a record of it released from a hold, since it started (less
 * LATE_MARGIN_S). One query: the day_close rows by their key, and per T+1 row one probe of
 * record_receipt's (org_code, business_day, updated_at) index (infra/db/0970_receipt_day_updated.sql)
 * and one of its (org_code, business_day, released_at) index (infra/db/0992_receipt_released.sql).
 */
async function doneCloses(db: Db, fromDay: string, toDay: string): Promise<Array<{ org_code: string; business_day: string; kind: string; late: boolean }>> {
  const res = await db.query<{ org_code: string; business_day: string; kind: string; late: boolean }>(
    `SELECT c.org_code, c.business_day, c.kind,
            CASE WHEN c.kind = 'T+1' THEN (EXISTS (
              SELECT 1 FROM record_receipt r
               WHERE r.org_code = c.org_code AND r.business_day = c.business_day
                 AND r.updated_at > c.started_at - interval '${LATE_MARGIN_S} seconds')
              OR EXISTS (
              SELECT 1 FROM record_receipt r
               WHERE r.org_code = c.org_code AND r.business_day = c.business_day
                 AND r.released_at > c.started_at - interval '${LATE_MARGIN_S} seconds'))
            ELSE false END AS late
       FROM day_close c
      WHERE c.status = 'done' AND c.business_day >= $1 AND c.business_day <= $2
      ORDER BY c.finished_at, c.business_day DESC, c.org_code`,
    [fromDay, toDay],
  );
  return res.rows;
}

export interface DayCloseRow {
  orgCode: string;
  day: string;
  kind: CloseKind;
  status: string;
  trigger: string;
  runs: number;
  startedAt: Date;
  finishedAt: Date | null;
  test: boolean;
  gapCount: number;
  summaryVersion: number;
  completenessVersion: number;
  summary: unknown;
  completeness: unknown;
  error: string | null;
}

/** The ledger for the console: closes of [fromDay, toDay], newest first. */
export async function listDays(db: Db, f: { orgCode?: string; fromDay: string; toDay: string; limit?: number }): Promise<DayCloseRow[]> {
  const res = await db.query<{
    org_code: string;
    business_day: string;
    kind: CloseKind;
    status: string;
    trigger: string;
    runs: number;
    started_at: Date;
    finished_at: Date | null;
    test_mode: boolean;
    gap_count: number;
    summary_version: number;
    completeness_version: number;
    summary: unknown;
    completeness: unknown;
    error: string | null;
  }>(
    `SELECT org_code, business_day, kind, status, trigger, runs, started_at, finished_at, test_mode, gap_count,
            summary_version, completeness_version, summary, completeness, error
       FROM day_close
      WHERE business_day >= $1 AND business_day <= $2 AND ($3::varchar IS NULL OR org_code = $3::varchar)
      ORDER BY business_day DESC, org_code, kind
      LIMIT $4`,
    [f.fromDay, f.toDay, f.orgCode ?? null, f.limit ?? 1000],
  );
  return res.rows.map((r) => ({
    orgCode: r.org_code,
    day: r.business_day,
    kind: r.kind,
    status: r.status,
    trigger: r.trigger,
    runs: r.runs,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    test: r.test_mode,
    gapCount: r.gap_count,
    summaryVersion: r.summary_version,
    completenessVersion: r.completeness_version,
    summary: r.summary,
    completeness: r.completeness,
    error: r.error,
  }));
}
