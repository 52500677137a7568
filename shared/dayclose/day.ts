/**
 * Days as the hospital counts them: a local day "yyyy-MM-dd" in the hospital's zone (Asia/Shanghai
 * unless TZ_LOCAL says otherwise) is the half-open range [00:00, next day 00:00) of instants, computed
 * with the zone's own rules — never the machine's zone, never the database session's.
 */
import { formatLocal, fromLocalParts } from '../time/index.js';

export type CloseKind = 'T+0' | 'T+1';
export const CLOSE_KINDS: readonly CloseKind[] = ['T+0', 'T+1'];

const DAY_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

export function isDay(s: string): boolean {
  const m = DAY_RE.exec(s);
  return !!m && fromLocalParts('UTC', +m[1]!, +m[2]!, +m[3]!) !== null;
}

/** The instants [from, to) of a local day. Throws on a malformed day. */
export function dayBounds(day: string, timeZone: string): { from: Date; to: Date } {
  const m = DAY_RE.exec(day);
  const from = m ? fromLocalParts(timeZone, +m[1]!, +m[2]!, +m[3]!) : null;
  if (!m || !from) throw new Error(`not a day: ${day} (yyyy-MM-dd)`);
  const next = addDays(day, 1);
  const n = DAY_RE.exec(next)!;
  return { from, to: fromLocalParts(timeZone, +n[1]!, +n[2]!, +n[3]!)! };
}

/** Calendar arithmetic on "yyyy-MM-dd" (zone-free: a calendar day is a calendar day). */
export function addDays(day: string, n: number): string {
  const m = DAY_RE.exec(day);
  if (!m) throw new Error(`not a day: ${day} (yyyy-MM-dd)`);
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]! + n)).toISOString().slice(0, 10);
}

/** The local day of an instant. */
export function localDay(at: Date, timeZone: string): string {
  return formatLocal(at, timeZone).slice(0, 10);
}

export interface Schedule {
  /** Local "HH:mm" from which today's T+0 close is due (default 23:30). */
  t0At: string;
  /** Local "HH:mm" from which yesterday's T+1 close is due (default 06:00). */
  t1At: string;
  /** T+1 closes of this many past days are caught up when missing (default 3). */
  catchUpDays: number;
}

export const DEFAULT_SCHEDULE: Schedule = { t0At: '23:30', t1At: '06:00', catchUpDays: 3 };

/**
 * The closes due at `now`: today's T+0 from t0At until midnight; yesterday's T+1 from t1At, and the
 * T+1 closes of the days before it (catch-up after an outage). A T+0 close that was missed is not
 * made up after midnight: the T+1 close of the same day supersedes it.
 */
export function dueCloses(now: Date, timeZone: string, s: Schedule = DEFAULT_SCHEDULE): Array<{ day: string; kind: CloseKind }> {
  const local = formatLocal(now, timeZone);
  const today = local.slice(0, 10);
  const hm = local.slice(11, 16);
  const due: Array<{ day: string; kind: CloseKind }> = [];
  if (hm >= s.t0At) due.push({ day: today, kind: 'T+0' });
  for (let i = 1; i <= Math.max(1, s.catchUpDays); i++) {
    if (i === 1 && hm < s.t1At) continue;
    due.push({ day: addDays(today, -i), kind: 'T+1' });
  }
  return due;
}
