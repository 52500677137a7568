/**
 * The runtime's Prometheus metrics, named as the OpenFaaS gateway names its own (docs/monitoring.md):
 * invocations by function and status code, their duration, replicas and requests in flight per
 * function, and the cron connector's last firing per function. One registry per runtime (never the
 * process-global one), served at GET /metrics on the admin gateway, which listens on loopback only.
 * Every replica of a function is counted under the function's name: this is the aggregation across
 * replicas and processes that the monitoring port (8883) reads and republishes.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { BodyBudget } from './limits.js';
import type { Registry as Functions } from './registry.js';

export class RuntimeMetrics {
  readonly registry = new Registry();
  private readonly invocations = new Counter({
    name: 'gateway_function_invocation_total',
    help: 'Invocations of a function through the gateway and the hospital ports, by status code',
    labelNames: ['function_name', 'code'] as const,
    registers: [this.registry],
  });
  private readonly seconds = new Histogram({
    name: 'gateway_functions_seconds',
    help: 'Time from the request to the function answering, in seconds',
    labelNames: ['function_name', 'code'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  private readonly bodiesRefused = new Counter({
    name: 'cdc_runtime_request_body_refused_total',
    help: 'Request bodies refused (503) because a share of the body budget was full, by the share',
    labelNames: ['share'] as const,
    registers: [this.registry],
  });
  private readonly cronLast = new Gauge({
    name: 'cdc_cron_last_fired_timestamp_seconds',
    help: 'When the cron connector last fired a function, by outcome (ok: status below 400)',
    labelNames: ['function_name', 'outcome'] as const,
    registers: [this.registry],
  });

  constructor(functions: Functions) {
    const registry = this.registry;
    new Gauge({
      name: 'gateway_service_count',
      help: 'Ready replicas of a function',
      labelNames: ['function_name'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const s of functions.list()) this.set({ function_name: s.name }, s.ready().length);
      },
    });
    new Gauge({
      name: 'gateway_service_desired_count',
      help: 'Replicas a function should have (scale target)',
      labelNames: ['function_name'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const s of functions.list()) this.set({ function_name: s.name }, s.desired);
      },
    });
    new Gauge({
      name: 'gateway_service_inflight',
      help: 'Requests a function is working on now, over all its replicas',
      labelNames: ['function_name'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const s of functions.list()) this.set({ function_name: s.name }, s.inflight());
      },
    });
    new Counter({
      name: 'cdc_runtime_replica_exits_total',
      help: 'Replicas of a function that exited without being asked to (a crash, kill -9, out of memory) and were started again, since the runtime started',
      labelNames: ['function_name'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const s of functions.list()) this.inc({ function_name: s.name }, s.unexpectedExits);
      },
    });
    new Gauge({
      name: 'cdc_runtime_resident_memory_bytes',
      help: 'Resident memory of the runtime process itself',
      registers: [registry],
      collect() {
        this.set(process.memoryUsage.rss());
      },
    });
  }

  /** The body budget's shares (limits.ts bodyBudgets): bytes held now and each share's size. */
  watchBodies(shares: BodyBudget[]): void {
    const gauges: Array<[string, string, (b: BodyBudget) => number]> = [
      ['cdc_runtime_request_body_bytes', 'Request-body bytes held in memory now, by share of the body budget', (b) => b.inUse],
      ['cdc_runtime_request_body_limit_bytes', 'The size of each share of the body budget (RUNTIME_MAX_BUFFERED_BYTES and its shares)', (b) => b.max],
    ];
    for (const [name, help, read] of gauges)
      new Gauge({
        name,
        help,
        labelNames: ['share'] as const,
        registers: [this.registry],
        collect() {
          for (const b of shares) this.set({ share: b.label }, read(b));
        },
      });
  }

  bodyRefused(share: string): void {
    this.bodiesRefused.inc({ share });
  }

  invoked(fn: string, status: number, durationS: number): void {
    const labels = { function_name: fn, code: String(status) };
    this.invocations.inc(labels);
    this.seconds.observe(labels, durationS);
  }

  cronFired(fn: string, status: number): void {
    this.cronLast.set({ function_name: fn, outcome: status < 400 ? 'ok' : 'failed' }, Date.now() / 1000);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
