/**
 * When to write a wave as new records without looking for them first (docs/ingest.md "New records in
 * one round trip"). Trying costs nothing when the records are new, their parents stored and no child
 * waiting for them — what a HIS sends nearly always — and one wasted round trip when not. A resource
 * whose waves keep missing (a HIS resending a day of corrections) is tried less and less often: each
 * miss in a row skips twice as many waves as the one before (1, 2, 4 … at most 64), and a hit makes
 * every wave try again. The odds are kept per database pool and resource: a process's own experience.
 */
import type { Db } from '../db/index.js';

const MAX_PENALTY = 64;

export class NewRecordOdds {
  private readonly skip = new Map<string, number>();
  private readonly penalty = new Map<string, number>();

  /** Whether the next wave of `resource` would try (nothing counted). */
  wouldTry(resource: string): boolean {
    return (this.skip.get(resource) ?? 0) === 0;
  }

  /** Whether this wave of `resource` should try; a wave that does not try counts down the skip. */
  shouldTry(resource: string): boolean {
    const s = this.skip.get(resource) ?? 0;
    if (s === 0) return true;
    this.skip.set(resource, s - 1);
    return false;
  }

  /** The outcome of a try: hit (written as new) or miss (written the usual way after it). */
  saw(resource: string, hit: boolean): void {
    if (hit) {
      this.skip.delete(resource);
      this.penalty.delete(resource);
      return;
    }
    const p = Math.min((this.penalty.get(resource) ?? 0) * 2 || 1, MAX_PENALTY);
    this.penalty.set(resource, p);
    this.skip.set(resource, p);
  }
}

const byPool = new WeakMap<Db, NewRecordOdds>();

export function newRecordOdds(db: Db): NewRecordOdds {
  let o = byPool.get(db);
  if (!o) byPool.set(db, (o = new NewRecordOdds()));
  return o;
}
