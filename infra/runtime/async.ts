/**
 * /async-function/<name>: 202 with X-Call-Id at once, the invocation run in the background from a
 * bounded in-memory queue (durable work in this project lives in the database), and the result POSTed
 * to X-Callback-Url with X-Function-Status, X-Function-Name, X-Call-Id, X-Duration-Seconds.
 * Like the CE queue-worker, no retry.
 */
import type { RuntimeLogger } from './logs.js';
import { invokeBuffered, type Invocation, type RouterOptions } from './proxy.js';
import type { FunctionService } from './service.js';

interface Job {
  svc: FunctionService;
  inv: Invocation;
  callId: string;
  callbackUrl?: string;
  /** Gives the body's bytes back to the runtime's body budget once the job is done. */
  release?: () => void;
}

export class AsyncQueue {
  private queue: Job[] = [];
  private running = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly log: RuntimeLogger,
    private readonly opts: { router: RouterOptions; concurrency: number; maxQueued: number },
  ) {}

  /** False when the queue is full (the caller answers 429). */
  enqueue(job: Job): boolean {
    if (this.queue.length >= this.opts.maxQueued) return false;
    this.queue.push(job);
    this.pump();
    return true;
  }

  private pump(): void {
    while (this.running < this.opts.concurrency && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.running++;
      void this.run(job)
        .catch((err: unknown) => this.log.error('async invocation failed', { fn: job.svc.name, callId: job.callId, err: (err as Error).message }))
        .finally(() => {
          job.release?.();
          this.running--;
          this.pump();
          if (this.running === 0 && this.queue.length === 0) for (const w of this.idleWaiters.splice(0)) w();
        });
    }
  }

  private async run(job: Job): Promise<void> {
    const out = await invokeBuffered(job.svc, job.inv, this.opts.router);
    this.log.info('async invocation done', { fn: job.svc.name, callId: job.callId, status: out.status, callback: Boolean(job.callbackUrl) });
    if (!job.callbackUrl) return;
    try {
      const res = await fetch(job.callbackUrl, {
        method: 'POST',
        body: new Uint8Array(out.body),
        headers: {
          'content-type': out.headers['content-type'] ?? 'application/octet-stream',
          'x-function-status': String(out.status),
          'x-function-name': job.svc.name,
          'x-call-id': job.callId,
          'x-duration-seconds': out.durationS.toFixed(6),
        },
        signal: AbortSignal.timeout(30_000),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (!res.ok) this.log.warn('async callback answered an error', { fn: job.svc.name, callId: job.callId, status: res.status });
    } catch (err) {
      this.log.warn('async callback failed', { fn: job.svc.name, callId: job.callId, err: (err as Error).message });
    }
  }

  /** Resolves when nothing is queued or running, or after `ms`. */
  drain(ms: number): Promise<void> {
    if (this.running === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => {
      const t = setTimeout(r, ms);
      this.idleWaiters.push(() => {
        clearTimeout(t);
        r();
      });
    });
  }
}
