/**
 * How often a cron expression fires (the schedules of stack.yml and of configuration bundles,
 * docs/config-bundles.md §5a): what the monitoring port and the evaluation judge a scheduled
 * function's runs against.
 */
import { Cron } from 'croner';

/** The longest wait between two firings of a cron expression over its next 500, in seconds; null when it does not parse or never fires. */
export function longestGapS(expr: string, from: Date): number | null {
  let runs: Date[];
  try {
    const c = new Cron(expr, { paused: true });
    runs = c.nextRuns(500, from);
    c.stop();
  } catch {
    return null;
  }
  let gap = 0;
  for (let i = 1; i < runs.length; i++) gap = Math.max(gap, (runs[i]!.getTime() - runs[i - 1]!.getTime()) / 1000);
  return runs.length > 1 ? gap : null;
}
