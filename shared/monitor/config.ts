/**
 * The monitoring port's own settings (docs/monitoring.md, docs/configuration.md): where the
 * runtime's metrics are read, which disk is watched, each destination's own address setting
 * (`<NAME>_URL`, as the push function reads it), probed when no configuration bundle gives the
 * destination's address (docs/monitoring.md "Platforms"), and the thresholds of the backlog and
 * holds components (docs/monitoring.md "Backlog and holds").
 */
import { z } from 'zod';
import { concern } from '../config/index.js';

const url = z.url({ protocol: /^https?$/ }).optional();
const seconds = (d: number) => z.coerce.number().int().nonnegative().default(d);
const positive = (d: number) => z.coerce.number().int().positive().default(d);

/**
 * How late "realtime" may be: the notice names the class without a number, and the front reads it as
 * five minutes from when the row was stored (docs/console.md, shared/console/figures.ts REALTIME_S;
 * test/unit/monitor-thresholds.test.ts keeps the two equal).
 */
export const REALTIME_DEADLINE_S = 300;

/** The backlog and holds components' thresholds (docs/monitoring.md "Backlog and holds"). */
export interface MonitorThresholds {
  /** The oldest pending realtime row older than this: degraded. */
  realtimeS: number;
  /** The oldest pending realtime row older than this (its deadline): down. */
  realtimeDownS: number;
  /** The oldest pending row of the 2-hour class older than this: degraded. */
  twoHoursS: number;
  /** The oldest pending row of the day classes (T+0, T+1) older than this: degraded. */
  dayS: number;
  /** Rows pending longer than this and nothing delivered to the destination for as long: degraded. */
  stallS: number;
  /** The window in which held records count as "recent". */
  holdsWindowS: number;
  /** More records held within the window than this: the holds component is degraded. */
  holdsRecent: number;
  /** A record held longer than this: degraded; 0 = not judged by age. */
  holdsAgeS: number;
}

export const DEFAULT_THRESHOLDS: MonitorThresholds = {
  realtimeS: 120,
  realtimeDownS: REALTIME_DEADLINE_S,
  twoHoursS: 900,
  dayS: 3600,
  stallS: 300,
  holdsWindowS: 600,
  holdsRecent: 100,
  holdsAgeS: 0,
};

export const monitorConcern = concern({
  name: 'monitor',
  vars: {
    RUNTIME_METRICS_URL: z.string().default(''),
    MONITOR_DISK_PATH: z.string().min(1).default('/'),
    NATIONAL_URL: url,
    PROVINCIAL_URL: url,
    MONITOR_BACKLOG_REALTIME_S: positive(DEFAULT_THRESHOLDS.realtimeS),
    MONITOR_BACKLOG_REALTIME_DOWN_S: positive(DEFAULT_THRESHOLDS.realtimeDownS),
    MONITOR_BACKLOG_2H_S: positive(DEFAULT_THRESHOLDS.twoHoursS),
    MONITOR_BACKLOG_DAY_S: positive(DEFAULT_THRESHOLDS.dayS),
    MONITOR_BACKLOG_STALL_S: positive(DEFAULT_THRESHOLDS.stallS),
    MONITOR_HOLDS_WINDOW_S: positive(DEFAULT_THRESHOLDS.holdsWindowS),
    MONITOR_HOLDS_RECENT: positive(DEFAULT_THRESHOLDS.holdsRecent),
    MONITOR_HOLDS_AGE_S: seconds(DEFAULT_THRESHOLDS.holdsAgeS),
  },
  build: (v, _secret, env) => ({
    runtimeMetricsUrl: v.RUNTIME_METRICS_URL,
    diskPath: v.MONITOR_DISK_PATH,
    thresholds: {
      realtimeS: v.MONITOR_BACKLOG_REALTIME_S,
      realtimeDownS: v.MONITOR_BACKLOG_REALTIME_DOWN_S,
      twoHoursS: v.MONITOR_BACKLOG_2H_S,
      dayS: v.MONITOR_BACKLOG_DAY_S,
      stallS: v.MONITOR_BACKLOG_STALL_S,
      holdsWindowS: v.MONITOR_HOLDS_WINDOW_S,
      holdsRecent: v.MONITOR_HOLDS_RECENT,
      holdsAgeS: v.MONITOR_HOLDS_AGE_S,
    } satisfies MonitorThresholds,
    /**
     * Destination name → its `<NAME>_URL` setting: NATIONAL_URL and PROVINCIAL_URL as checked here,
     * another destination's as given (as push takes them: docs/uplink.md).
     */
    platforms: Object.fromEntries(
      [
        ...Object.entries(env)
          .filter(([k]) => /^[A-Z][A-Z0-9_]*_URL$/.test(k) && !['NATIONAL_URL', 'PROVINCIAL_URL', 'RUNTIME_METRICS_URL', 'DATABASE_URL'].includes(k))
          .map(([k, u]) => [k.slice(0, -4).toLowerCase(), u]),
        ['national', v.NATIONAL_URL],
        ['provincial', v.PROVINCIAL_URL],
      ].filter((e): e is [string, string] => typeof e[1] === 'string' && e[1].length > 0),
    ),
  }),
});
