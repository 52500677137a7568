/**
 * Per-record log lines aggregated (docs/ingest.md "Logging"): a receive replica writes one `records`
 * line per interval with the counts per resource and outcome, instead of one line per record, so
 * logging costs the same at 10 or 1000 records a second. Each record's own line is still written at
 * LOG_LEVEL=debug; errors are always logged on their own (shared/http/errors.ts).
 */
import { log } from '../log/index.js';

export class Tally {
  private counts = new Map<string, Map<string, number>>();
  private since = Date.now();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly intervalMs = 10_000) {}

  add(resource: string, outcome: string, n = 1): void {
    const m = this.counts.get(resource) ?? this.counts.set(resource, new Map()).get(resource)!;
    m.set(outcome, (m.get(outcome) ?? 0) + n);
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.intervalMs);
      this.timer.unref();
    }
  }

  /** Writes the counts so far (also at close, so a stopping replica loses none). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.counts.size === 0) return;
    const counts = Object.fromEntries([...this.counts].map(([r, m]) => [r, Object.fromEntries(m)]));
    const seconds = Math.round((Date.now() - this.since) / 100) / 10;
    this.counts = new Map();
    this.since = Date.now();
    log('info', 'records', { seconds, counts });
  }
}
