// The horizon reminder streams share (shared/warning/reminders.ts sharedHorizon, docs/warning.md
// "Reminders"): one read per interval for every stream of a replica, a new read after it, and a failed
// read never shared.
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { sharedHorizon } from '../../shared/warning/reminders.js';

/** A pool whose horizon query answers `now` (no writer open), counting the reads; `fail` makes the next read throw. */
function countingPool() {
  const state = { reads: 0, fail: false, now: '2026-12-07T12:00:00.000001Z' };
  const pool = {
    async query() {
      state.reads++;
      await new Promise((r) => setTimeout(r, 5));
      if (state.fail) {
        state.fail = false;
        throw new Error('connection lost');
      }
      return { rows: [{ now: state.now, oldest: null }] };
    },
  } as unknown as pg.Pool;
  return { pool, state };
}

describe('the horizon shared by reminder streams', () => {
  it('is read once for every sweep that asks within its interval, concurrent or not', async () => {
    const { pool, state } = countingPool();
    const horizon = sharedHorizon(200);
    const first = await Promise.all(Array.from({ length: 50 }, () => horizon(pool)));
    expect(state.reads).toBe(1);
    expect(new Set(first).size).toBe(1);
    expect(await horizon(pool)).toBe(first[0]);
    expect(state.reads).toBe(1);
  });

  it('is read again once its interval has passed, and gives the new value', async () => {
    const { pool, state } = countingPool();
    const horizon = sharedHorizon(30);
    const a = await horizon(pool);
    await new Promise((r) => setTimeout(r, 40));
    state.now = '2026-12-07T12:00:01.000001Z';
    const b = await horizon(pool);
    expect(state.reads).toBe(2);
    expect(b - a).toBe(1_000_000);
  });

  it('does not share a failed read: the next sweep reads again', async () => {
    const { pool, state } = countingPool();
    const horizon = sharedHorizon(10_000);
    state.fail = true;
    await expect(horizon(pool)).rejects.toThrow('connection lost');
    await expect(horizon(pool)).resolves.toBeGreaterThan(0);
    expect(state.reads).toBe(2);
  });
});
