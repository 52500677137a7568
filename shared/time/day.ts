/**
 * Days as the hospital counts them: a local day "yyyy-MM-dd" in the hospital's zone is the half-open
 * range [00:00, next day 00:00) of instants, computed with the zone's own rules — never the
 * machine's zone, never the database session's. Pure calendar helpers, shared by every room (day
 * close, the console, ingest's birth-date rule).
 */
import { formatLocal, fromLocalParts } from './index.js';

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

/**
 * Calendar arithmetic on "yyyy-MM-dd" (zone-free: a calendar day is a calendar day). The years are
 * taken as written (Date.UTC would read 0–99 as 1900–1999); a result outside 0001–9999, which has no
 * "yyyy-MM-dd", throws naming the day.
 */
export function addDays(day: string, n: number): string {
  const m = DAY_RE.exec(day);
  if (!m) throw new Error(`not a day: ${day} (yyyy-MM-dd)`);
  const d = new Date(0);
  d.setUTCFullYear(+m[1]!, +m[2]! - 1, +m[3]! + n);
  const y = d.getUTCFullYear();
  if (!(y >= 1 && y <= 9999)) throw new Error(`not a day: ${day} ${n < 0 ? '-' : '+'} ${Math.abs(n)} days is outside the years 0001–9999`);
  return `${String(y).padStart(4, '0')}-${String(d.getUTCMonth() + 1).padStart(2, '0')}-${String(d.getUTCDate()).padStart(2, '0')}`;
}

/** The local day of an instant. */
export function localDay(at: Date, timeZone: string): string {
  return formatLocal(at, timeZone).slice(0, 10);
}
