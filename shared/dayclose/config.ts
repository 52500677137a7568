/**
 * The day-close settings (a concern of shared/config), parsed once at function start; fails fast naming the variable.
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
import { concern, listVar, parseConcern } from '../config/index.js';
import type { Schedule } from './day.js';

const HHMM = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'a local time HH:mm');

export interface DayCloseConfig {
  schedule: Schedule;
  timeZone: string;
  orgs?: string[];
  testOrgs: ReadonlySet<string>;
  listLimit: number;
}

export const dayCloseConcern = concern({
  name: 'day-close',
  vars: {
    DAYCLOSE_T0_AT: HHMM.default('23:30'),
    DAYCLOSE_T1_AT: HHMM.default('06:00'),
    DAYCLOSE_CATCHUP_DAYS: z.coerce.number().int().min(1).max(31).default(3),
    DAYCLOSE_GAP_LIST: z.coerce.number().int().min(0).max(5000).default(200),
    DAYCLOSE_ORGS: listVar,
    TEST_ORG_CODES: listVar,
    TZ_LOCAL: z.string().min(1).default('Asia/Shanghai'),
  },
  build: (c): DayCloseConfig => ({
    schedule: { t0At: c.DAYCLOSE_T0_AT, t1At: c.DAYCLOSE_T1_AT, catchUpDays: c.DAYCLOSE_CATCHUP_DAYS },
    timeZone: c.TZ_LOCAL,
    ...(c.DAYCLOSE_ORGS.length ? { orgs: c.DAYCLOSE_ORGS } : {}),
    testOrgs: new Set(c.TEST_ORG_CODES),
    listLimit: c.DAYCLOSE_GAP_LIST,
  }),
});

export function loadDayCloseConfig(env: Record<string, string | undefined> = process.env): DayCloseConfig {
  return parseConcern(dayCloseConcern, env);
}
