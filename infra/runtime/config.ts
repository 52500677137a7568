/**
 * What the runtime reads from a function's spec: the watchdog settings (from its environment, as
 * of-watchdog reads them) and the scaling labels. Defaults follow of-watchdog and the gateway.
 */
import { parseDuration } from '../../shared/time/duration.js';
import type { FunctionSpec } from './stack.js';

export interface WatchdogConfig {
  /** 0 = no limit. of-watchdog's default is 10s. */
  execTimeoutMs: number;
  readTimeoutMs: number;
  /** Also the drain window on SIGTERM. */
  writeTimeoutMs: number;
  /** Per replica; 0 = unlimited. */
  maxInflight: number;
  /**
   * Largest request body the function takes: its environment's MAX_BODY_BYTES, the variable the
   * function's own body limit reads (shared/ingest/receiver.ts). The runtime refuses larger bodies
   * with 413 before reading them (docs/runtime.md, "Limits").
   */
  maxBodyBytes: number;
}

/** A function's body limit when its environment sets no MAX_BODY_BYTES: the functions' own default. */
export const DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024;

export interface ScaleConfig {
  min: number;
  max: number;
  type?: 'rps' | 'capacity' | 'cpu';
  target?: number;
  /**
   * com.openfaas.scale.zero=true: after this long with nothing invoked the function has no replica
   * (com.openfaas.scale.zero-duration, default 15m, as OpenFaaS's idler); the next call wakes it.
   */
  zeroAfterMs?: number;
}

/** How long a function with com.openfaas.scale.zero waits idle before it is scaled to zero (OpenFaaS's default). */
export const DEFAULT_ZERO_DURATION_MS = 15 * 60_000;

/** The ceiling when com.openfaas.scale.max is absent (OpenFaaS CE's gateway clamps to 5; we allow more on request). */
export const DEFAULT_SCALE_MAX = 20;

export function watchdogConfig(spec: FunctionSpec): WatchdogConfig {
  const env = spec.environment;
  const where = (k: string) => `function ${spec.name}: environment ${k}`;
  const dur = (k: string, def: number) => {
    try {
      return parseDuration(env[k], def);
    } catch (err) {
      throw new Error(`${where(k)}: ${(err as Error).message}`);
    }
  };
  const maxInflight = Number(env.max_inflight ?? 0);
  if (!Number.isInteger(maxInflight) || maxInflight < 0) throw new Error(`${where('max_inflight')} must be a whole number`);
  const maxBodyBytes = env.MAX_BODY_BYTES === undefined || env.MAX_BODY_BYTES === '' ? DEFAULT_MAX_BODY_BYTES : Number(env.MAX_BODY_BYTES);
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 1) throw new Error(`${where('MAX_BODY_BYTES')} must be a whole number of bytes above 0`);
  return {
    execTimeoutMs: dur('exec_timeout', 10_000),
    readTimeoutMs: dur('read_timeout', 10_000),
    writeTimeoutMs: dur('write_timeout', 10_000),
    maxInflight,
    maxBodyBytes,
  };
}

export function scaleConfig(spec: FunctionSpec): ScaleConfig {
  const l = spec.labels;
  const int = (k: string, def: number) => {
    const v = l[k] ?? spec.annotations[k];
    if (v === undefined || v === '') return def;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`function ${spec.name}: label ${k} must be a whole number, got "${v}"`);
    return n;
  };
  const min = Math.max(1, int('com.openfaas.scale.min', 1));
  const max = Math.max(min, int('com.openfaas.scale.max', DEFAULT_SCALE_MAX));
  const type = l['com.openfaas.scale.type'] ?? spec.annotations['com.openfaas.scale.type'];
  const target = int('com.openfaas.scale.target', 0);
  const out: ScaleConfig = { min, max };
  if (type === 'rps' || type === 'capacity' || type === 'cpu') out.type = type;
  if (target > 0) out.target = target;
  const zero = l['com.openfaas.scale.zero'] ?? spec.annotations['com.openfaas.scale.zero'];
  if (zero !== undefined && zero !== 'true' && zero !== 'false')
    throw new Error(`function ${spec.name}: label com.openfaas.scale.zero must be "true" or "false", got "${zero}"`);
  if (zero === 'true') {
    const d = l['com.openfaas.scale.zero-duration'] ?? spec.annotations['com.openfaas.scale.zero-duration'];
    const ms = parseDuration(d, DEFAULT_ZERO_DURATION_MS);
    if (!(ms > 0)) throw new Error(`function ${spec.name}: label com.openfaas.scale.zero-duration must be above 0, got "${d}"`);
    out.zeroAfterMs = ms;
  }
  return out;
}
