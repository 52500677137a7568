/**
 * The monitoring port's own settings (docs/monitoring.md, docs/configuration.md): where the
 * runtime's metrics are read, which disk is watched, and the platforms whose latency is probed.
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
  build: (v) => ({
    runtimeMetricsUrl: v.RUNTIME_METRICS_URL,
    diskPath: v.MONITOR_DISK_PATH,
    platforms: Object.fromEntries(
      [
        ['national', v.NATIONAL_URL],
        ['provincial', v.PROVINCIAL_URL],
      ].filter((e): e is [string, string] => typeof e[1] === 'string' && e[1].length > 0),
    ),
  }),
});
