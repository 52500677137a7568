/**
 * What bounds the runtime's own servers (docs/runtime.md, "Limits"): how long a caller may take to
 * send its headers and its whole request, how many connections a port holds (in all, and per peer
 * address on the hospital ports), how many request-body bytes all in-flight requests may hold
 * in memory together, and how many replicas the autoscaler may give a function. Read once from the environment (RUNTIME_*), validated with zod; startRuntime's
 * `limits` option wins over the environment.
 */
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { parseDuration } from '../../shared/time/duration.js';

const duration = (def: string) =>
  z
    .string()
    .default(def)
    .transform((v, ctx) => {
      try {
        const ms = parseDuration(v, 0);
        if (ms > 0) return ms;
        ctx.addIssue({ code: 'custom', message: 'must be above 0' });
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
      return z.NEVER;
    });
const count = (def: number) => z.coerce.number().int().min(1).default(def);

export const limitsEnvSchema = z.object({
  RUNTIME_HEADERS_TIMEOUT: duration('20s'),
  RUNTIME_REQUEST_TIMEOUT: duration('120s'),
  RUNTIME_MAX_CONNECTIONS: count(4096),
  RUNTIME_MAX_CONNECTIONS_PER_PEER: count(256),
  RUNTIME_MAX_BUFFERED_BYTES: count(256 * 1024 * 1024),
  RUNTIME_MAX_BUFFERED_BYTES_PER_CALLER: count(24 * 1024 * 1024),
  RUNTIME_AUTOSCALE_CEILING: z.coerce.number().int().min(1).optional(),
});

export interface RuntimeLimits {
  /** Time from a request's first byte to the end of its headers (server.headersTimeout); beyond: 408, closed. */
  headersTimeoutMs: number;
  /** Time from a request's first byte to the end of its body (server.requestTimeout); beyond: 408, closed. */
  requestTimeoutMs: number;
  /** Open connections per listening port (server.maxConnections); beyond, new ones are closed at once. */
  maxConnections: number;
  /** Open connections from one peer address on a hospital port; beyond, new ones are closed at once. */
  maxConnectionsPerPeer: number;
  /** Request bodies held in memory by all in-flight requests together; beyond: 503 with Retry-After. */
  maxBufferedBytes: number;
  /** Of those, what one caller's address may hold on the data port, and on the other hospital ports. */
  maxBufferedBytesPerCaller: number;
  /**
   * Most replicas the capacity autoscaler gives a function, whatever its com.openfaas.scale.max says:
   * by default the server's cores (docs/runtime.md "Replicas and scaling"). A scale by hand is not capped.
   */
  autoscaleCeiling: number;
}

/** The limits from the environment (defaults above), `over` winning. Throws naming the variable. */
export function runtimeLimits(vars: Record<string, string | undefined>, over: Partial<RuntimeLimits> = {}): RuntimeLimits {
  const picked = Object.fromEntries(Object.keys(limitsEnvSchema.shape).map((k) => [k, vars[k] === '' ? undefined : vars[k]]));
  const parsed = limitsEnvSchema.safeParse(picked);
  if (!parsed.success) throw new Error(`runtime limits: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const e = parsed.data;
  const limits: RuntimeLimits = {
    headersTimeoutMs: e.RUNTIME_HEADERS_TIMEOUT,
    requestTimeoutMs: e.RUNTIME_REQUEST_TIMEOUT,
    maxConnections: e.RUNTIME_MAX_CONNECTIONS,
    maxConnectionsPerPeer: e.RUNTIME_MAX_CONNECTIONS_PER_PEER,
    maxBufferedBytes: e.RUNTIME_MAX_BUFFERED_BYTES,
    maxBufferedBytesPerCaller: e.RUNTIME_MAX_BUFFERED_BYTES_PER_CALLER,
    autoscaleCeiling: e.RUNTIME_AUTOSCALE_CEILING ?? availableParallelism(),
    ...over,
  };
  // Node requires headersTimeout <= requestTimeout.
  limits.headersTimeoutMs = Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs);
  return limits;
}

/**
 * Request-body bytes held in memory (bodies are buffered so that an undelivered request can be
 * retried on another replica), counted as they arrive; a chunk that does not fit is refused. A budget
 * may be a share of another (`share`, CallerShares): a chunk must then fit in every budget up the chain,
 * so that one port, or one caller, cannot take what the others need (docs/runtime.md "Limits and the
 * guard": the shares of the body budget).
 */
export class BodyBudget {
  private used = 0;
  /** Requests reading into this budget now (readBody): a caller's share that has one is never forgotten. */
  holders = 0;

  constructor(
    private cap: number,
    private readonly parent?: BodyBudget,
    /** Whose share this is, as a refusal names it. */
    readonly label = 'all request bodies',
  ) {}

  get max(): number {
    return this.cap;
  }

  /** At least `n` from now on (never beyond its parent's size). */
  widen(n: number): void {
    this.cap = Math.max(this.cap, this.parent ? Math.min(n, this.parent.max) : n);
  }

  get inUse(): number {
    return this.used;
  }

  take(n: number): boolean {
    if (this.used + n > this.cap) return false;
    if (this.parent && !this.parent.take(n)) return false;
    this.used += n;
    return true;
  }

  give(n: number): void {
    const back = Math.min(n, this.used);
    this.used -= back;
    this.parent?.give(back);
  }

  /** A share of this budget: at most `max` of it. */
  share(max: number, label: string): BodyBudget {
    return new BodyBudget(Math.min(max, this.max), this, label);
  }

  /** The first budget up the chain that cannot take `n` more now: the share a refusal names. */
  full(n: number): BodyBudget | null {
    for (let b: BodyBudget | undefined = this; b; b = b.parent) if (b.used + n > b.max) return b;
    return null;
  }
}

/**
 * A share of at most `max` of `parent` for each caller (its address), made when first asked for, so
 * that one caller cannot take what the others need. Shares that hold nothing and serve no request
 * are forgotten once more than CALLERS_KEPT are known.
 */
export class CallerShares {
  private readonly shares = new Map<string, BodyBudget>();

  constructor(
    private readonly parent: BodyBudget,
    readonly max: number,
    readonly label: string,
  ) {}

  /**
   * The caller's share, at least `atLeast` (the largest body the function asked for takes): a body
   * no function refuses for its size is never refused for it alone.
   */
  for(caller: string, atLeast = 0): BodyBudget {
    let b = this.shares.get(caller);
    if (!b) {
      if (this.shares.size >= CALLERS_KEPT) for (const [k, v] of this.shares) if (v.inUse === 0 && v.holders === 0) this.shares.delete(k);
      b = this.parent.share(this.max, this.label);
      this.shares.set(caller, b);
    }
    if (b.max < atLeast) b.widen(atLeast);
    return b;
  }

  /** The callers holding the most now, most first: who filled a share, for the log. */
  top(n: number): Array<{ caller: string; bytes: number }> {
    return [...this.shares]
      .filter(([, b]) => b.inUse > 0)
      .sort((a, b) => b[1].inUse - a[1].inUse)
      .slice(0, n)
      .map(([caller, b]) => ({ caller, bytes: b.inUse }));
  }
}

const CALLERS_KEPT = 1024;

/**
 * The body budget divided between the ports (docs/runtime.md "Limits and the guard"): the data port
 * (the HIS's records) at most three quarters of it, the other ports (configuration, monitoring,
 * console, the admin gateway) together at most half, so that neither side can leave the other less
 * than a quarter; one caller's address at most `perCaller` (and half of its side's share) on the data
 * port, and as much again over the other hospital ports together.
 */
export function bodyBudgets(maxBytes: number, perCaller: number) {
  const all = new BodyBudget(maxBytes);
  const data = all.share(Math.floor((maxBytes * 3) / 4), 'the data port');
  const others = all.share(Math.floor(maxBytes / 2), 'the configuration, monitoring and console ports and the gateway');
  return {
    all,
    data,
    others,
    dataCallers: new CallerShares(data, Math.min(perCaller, Math.floor(data.max / 2)), 'this address on the data port'),
    otherCallers: new CallerShares(others, Math.min(perCaller, Math.floor(others.max / 2)), 'this address on the other ports'),
  };
}

/**
 * Requests in flight per caller address and function on the hospital ports other than the data port
 * (docs/runtime.md "Limits and the guard"): one address holds at most half of a function's slots
 * (max_inflight over its ready replicas), counted from the request's arrival, its body included, so
 * that one PC cannot make the console, the configuration or the monitoring port answer 429 to every
 * other caller. The server's own address (a TLS terminator on the same server) is not limited.
 */
export class CallerSlots {
  private readonly held = new Map<string, number>();

  /** The caller's slot (call the result to give it back), null when its share is full; unlimited: a no-op. */
  take(fn: string, caller: string, capacity: number): { release: () => void } | { full: number } {
    if (capacity <= 0 || caller === '127.0.0.1' || caller === '::1') return { release: ignore };
    const max = Math.max(1, Math.floor(capacity / 2));
    const key = `${fn}\u0000${caller}`;
    const n = this.held.get(key) ?? 0;
    if (n >= max) return { full: max };
    this.held.set(key, n + 1);
    let given = false;
    return {
      release: () => {
        if (given) return;
        given = true;
        const left = (this.held.get(key) ?? 1) - 1;
        if (left > 0) this.held.set(key, left);
        else this.held.delete(key);
      },
    };
  }
}

const ignore = () => undefined;
