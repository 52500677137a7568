/**
 * The cron-connector: a function annotated `topic: cron-function` and `schedule: "<cron>"` is
 * POSTed an empty body with X-Topic: cron-function and X-Connector: cron-connector, through the same
 * router as any caller (so max_inflight applies). One schedule per function. The time zone is explicit
 * (default Asia/Shanghai): OpenFaaS's connector runs in UTC, a hospital in China wants local time.
 * Schedules: 5-field cron, 6-field (seconds first), croner's @hourly/@daily…, and `@every <duration>`.
 */
import { randomUUID } from 'node:crypto';
import { Cron } from 'croner';
import { parseDuration } from '../../shared/time/duration.js';
import type { RuntimeLogger } from './logs.js';
import { invokeBuffered, type RouterOptions } from './proxy.js';
import type { Registry } from './registry.js';

export interface CronEntry {
  fn: string;
  schedule: string;
  stop(): void;
}

export interface CronOptions {
  timezone: string;
  router: RouterOptions;
  /** Told of every firing's answer (metrics.ts: the last firing per function). */
  onFired?(fn: string, status: number): void;
}

export class CronScheduler {
  private entries = new Map<string, CronEntry>();

  constructor(
    private readonly registry: Registry,
    private readonly log: RuntimeLogger,
    private readonly opts: CronOptions,
  ) {}

  /** Brings the schedules in line with the deployed functions' annotations. */
  sync(): void {
    const wanted = new Map<string, string>();
    for (const svc of this.registry.list()) {
      const a = svc.spec.annotations;
      if (a.topic === 'cron-function' && a.schedule) wanted.set(svc.name, a.schedule.trim());
    }
    for (const [fn, e] of this.entries) {
      if (wanted.get(fn) !== e.schedule) {
        e.stop();
        this.entries.delete(fn);
      }
    }
    for (const [fn, schedule] of wanted) {
      if (this.entries.has(fn)) continue;
      try {
        this.entries.set(fn, this.schedule(fn, schedule));
        this.log.info('cron scheduled', { fn, schedule, timezone: this.opts.timezone });
      } catch (err) {
        this.log.error('cron schedule invalid', { fn, schedule, err: (err as Error).message });
      }
    }
  }

  private schedule(fn: string, schedule: string): CronEntry {
    const every = /^@every\s+(.+)$/.exec(schedule);
    if (every) {
      const ms = parseDuration(every[1]!, 0);
      if (ms < 1000) throw new Error('@every needs at least 1s');
      const t = setInterval(() => this.fireLogged(fn), ms);
      return { fn, schedule, stop: () => clearInterval(t) };
    }
    const job = new Cron(schedule, { timezone: this.opts.timezone, catch: true }, () => this.fireLogged(fn));
    return { fn, schedule, stop: () => job.stop() };
  }

  /** A firing from a timer: whatever goes wrong is logged, never left to end the runtime. */
  private fireLogged(fn: string): void {
    this.fire(fn).catch((err: unknown) => this.log.error('cron firing failed', { fn, err: (err as Error).message }));
  }

  /** What fires when: each scheduled function and its expression, as the connector runs them now. */
  list(): Record<string, string> {
    return Object.fromEntries([...this.entries].map(([fn, e]) => [fn, e.schedule]));
  }

  async fire(fn: string): Promise<number> {
    const svc = this.registry.get(fn);
    if (!svc) return 404;
    const callId = randomUUID();
    const out = await invokeBuffered(
      svc,
      {
        method: 'POST',
        path: '/',
        headers: {
          'x-topic': 'cron-function',
          'x-connector': 'cron-connector',
          'x-call-id': callId,
          'x-start-time': (BigInt(Date.now()) * 1_000_000n).toString(),
          'content-type': 'text/plain',
        },
        body: Buffer.alloc(0),
      },
      this.opts.router,
    );
    this.opts.onFired?.(fn, out.status);
    const fields = { fn, callId, status: out.status, durationS: Number(out.durationS.toFixed(3)) };
    if (out.status >= 400) this.log.warn('cron fired', fields);
    else this.log.info('cron fired', fields);
    return out.status;
  }

  stop(): void {
    for (const e of this.entries.values()) e.stop();
    this.entries.clear();
  }
}
