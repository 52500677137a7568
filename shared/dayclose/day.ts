/**
 * The day closes due, by the hospital's clock: its days are shared/time/day.ts's, local days
 * "yyyy-MM-dd" in the hospital's zone (Asia/Shanghai unless TZ_LOCAL says otherwise).
 */
import { formatLocal } from '../time/index.js';
import { addDays } from '../time/day.js';

export type CloseKind = 'T+0' | 'T+1';
export const CLOSE_KINDS: readonly CloseKind[] = ['T+0', 'T+1'];

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
