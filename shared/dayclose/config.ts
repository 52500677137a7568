/**
 * The day-close settings, parsed once with zod at the edge; fails fast naming the variable.
 *
 *   DAYCLOSE_T0_AT         local HH:mm from which today's T+0 close is due      (default 23:30)
 *   DAYCLOSE_T1_AT         local HH:mm from which yesterday's T+1 close is due  (default 06:00)
 *   DAYCLOSE_CATCHUP_DAYS  T+1 closes of this many past days are made up      (default 3)
 *   DAYCLOSE_ORGS          organisations to close (comma/space list); default: active in 30 days
 *   DAYCLOSE_GAP_LIST      gaps listed per check in the forwarded record        (default 200)
 *   TEST_ORG_CODES         organisations whose records are test data (as in the receive functions)
 *   TZ_LOCAL               the hospital's zone (default Asia/Shanghai)
 */
import { z } from 'zod';
import type { Schedule } from './day.js';

const HHMM = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'a local time HH:mm');
const list = (s: string | undefined) => (s ?? '').split(/[\s,]+/).filter(Boolean);

const Schema = z.object({
  DAYCLOSE_T0_AT: HHMM.default('23:30'),
  DAYCLOSE_T1_AT: HHMM.default('06:00'),
  DAYCLOSE_CATCHUP_DAYS: z.coerce.number().int().min(1).max(31).default(3),
  DAYCLOSE_GAP_LIST: z.coerce.number().int().min(0).max(5000).default(200),
  TZ_LOCAL: z.string().min(1).default('Asia/Shanghai'),
});

export interface DayCloseConfig {
  schedule: Schedule;
  timeZone: string;
  orgs?: string[];
  testOrgs: Set<string>;
  listLimit: number;
}

export function loadDayCloseConfig(env: NodeJS.ProcessEnv = process.env): DayCloseConfig {
  const pick = (k: string) => (env[k] === '' ? undefined : env[k]);
  const parsed = Schema.safeParse({
    DAYCLOSE_T0_AT: pick('DAYCLOSE_T0_AT'),
    DAYCLOSE_T1_AT: pick('DAYCLOSE_T1_AT'),
    DAYCLOSE_CATCHUP_DAYS: pick('DAYCLOSE_CATCHUP_DAYS'),
    DAYCLOSE_GAP_LIST: pick('DAYCLOSE_GAP_LIST'),
    TZ_LOCAL: pick('TZ_LOCAL'),
  });
  if (!parsed.success) {
    throw new Error(`day-close configuration invalid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const c = parsed.data;
  const orgs = list(env.DAYCLOSE_ORGS);
  return {
    schedule: { t0At: c.DAYCLOSE_T0_AT, t1At: c.DAYCLOSE_T1_AT, catchUpDays: c.DAYCLOSE_CATCHUP_DAYS },
    timeZone: c.TZ_LOCAL,
    ...(orgs.length ? { orgs } : {}),
    testOrgs: new Set(list(env.TEST_ORG_CODES)),
    listLimit: c.DAYCLOSE_GAP_LIST,
  };
}
