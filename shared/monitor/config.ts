/**
 * The monitoring port's own settings (docs/monitoring.md, docs/configuration.md): where the
 * runtime's metrics are read, which disk is watched, and each destination's own address setting
 * (`<NAME>_URL`, as the push function reads it), probed when no configuration bundle gives the
 * destination's address (docs/monitoring.md "Platforms").
 */
import { z } from 'zod';
import { concern } from '../config/index.js';

const url = z.url({ protocol: /^https?$/ }).optional();

export const monitorConcern = concern({
  name: 'monitor',
  vars: {
    RUNTIME_METRICS_URL: z.string().default(''),
    MONITOR_DISK_PATH: z.string().min(1).default('/'),
    NATIONAL_URL: url,
    PROVINCIAL_URL: url,
  },
  build: (v, _secret, env) => ({
    runtimeMetricsUrl: v.RUNTIME_METRICS_URL,
    diskPath: v.MONITOR_DISK_PATH,
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
