/**
 * Beyond the Community Edition: for com.openfaas.scale.type=capacity with com.openfaas.scale.target=N,
 * desired = ceil(mean in-flight / N) clamped to [min, max] and to the ceiling (RUNTIME_AUTOSCALE_CEILING,
 * the server's cores by default), checked every interval. Up at once; down
 * only when every sample of the last `scaleDownWindowMs` wanted fewer (OpenFaaS Pro's stabilisation).
 * A scale by hand (the scale API, `cdc-faas scale`) sets a floor: the autoscaler may go above it
 * under load, never below it (docs/runtime.md, "Replicas and scaling").
 */
import type { Registry } from './registry.js';

export interface AutoscalerOptions {
  intervalMs: number;
  scaleDownWindowMs: number;
  /**
   * Most replicas it gives a function, below com.openfaas.scale.max (never below a scale by hand):
   * on a server with few cores a second replica of a CPU-bound function adds processes, not
   * throughput (docs/bench.md "Replicas and pools").
   */
  ceiling?: number;
}

export class Autoscaler {
  private timer: NodeJS.Timeout | null = null;
  private history = new Map<string, Array<{ at: number; want: number }>>();

  constructor(
    private readonly registry: Registry,
    private readonly opts: AutoscalerOptions,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.tick(), this.opts.intervalMs);
    this.timer.unref();
  }

  tick(now = Date.now()): void {
    for (const svc of this.registry.list()) {
      const { type, target } = svc.scale;
      if (type !== 'capacity' || !target) continue;
      const asked = Math.min(Math.ceil(svc.takeMeanInflight() / target), this.opts.ceiling ?? Number.POSITIVE_INFINITY);
      const want = svc.clampReplicas(Math.max(svc.floor, asked));
      const h = (this.history.get(svc.name) ?? []).filter((s) => now - s.at <= this.opts.scaleDownWindowMs);
      h.push({ at: now, want });
      this.history.set(svc.name, h);
      if (want > svc.desired) {
        svc.setReplicas(want, `autoscaler: in-flight above ${target} per replica`);
      } else if (want < svc.desired) {
        const covered = h.length > 0 && now - h[0]!.at >= this.opts.scaleDownWindowMs - this.opts.intervalMs;
        const peak = Math.max(...h.map((s) => s.want));
        if (covered && peak < svc.desired) svc.setReplicas(peak, 'autoscaler: stable low load');
      }
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
