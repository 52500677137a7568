/**
 * The runtime's body budget and its shares (infra/runtime/limits.ts): a chunk must fit in every budget
 * up the chain, what is given back goes back up it, and one port's or one caller's share cannot take
 * what the others need (docs/runtime.md "Limits and the guard").
 */
import { describe, expect, it } from 'vitest';
import { BodyBudget, bodyBudgets } from '../../infra/runtime/limits.js';

describe('the body budget', () => {
  it('a share takes from its parent too, and gives back to it', () => {
    const all = new BodyBudget(100);
    const a = all.share(60, 'a');
    const b = all.share(60, 'b');
    expect(a.take(50)).toBe(true);
    expect(a.take(20)).toBe(false); // over its own 60
    expect(b.take(60)).toBe(false); // fits its own 60, not the 50 left of all
    // A refusal names the share that is full: its own, or the one above it.
    expect(a.full(20)?.label).toBe('a');
    expect(b.full(60)?.label).toBe('all request bodies');
    expect(b.full(50)).toBeNull();
    expect(b.take(50)).toBe(true);
    expect(all.inUse).toBe(100);
    expect(all.take(1)).toBe(false);
    a.give(50);
    expect([a.inUse, all.inUse]).toEqual([0, 50]);
    // Giving back more than was taken gives back only what was taken, in the share and above it.
    b.give(80);
    expect([b.inUse, all.inUse]).toEqual([0, 0]);
  });

  it('divides the budget: the data port at most three quarters, the other ports together half, each caller half of its port', () => {
    const b = bodyBudgets(1000);
    expect([b.data.max, b.others.max]).toEqual([750, 500]);
    // The other ports full: the data port still has what it needs.
    expect(b.others.take(500)).toBe(true);
    expect(b.data.take(500)).toBe(true);
    expect(b.data.take(1)).toBe(false);
    b.others.give(500);
    b.data.give(500);
    // One caller on the data port: at most half of the port's share; another caller has the rest.
    const callers = b.data.perKey(375, 'this address');
    expect(callers('10.0.0.5').take(375)).toBe(true);
    expect(callers('10.0.0.5').take(1)).toBe(false);
    expect(callers('10.0.0.5').full(1)?.label).toBe('this address');
    expect(callers('10.0.0.6').take(375)).toBe(true);
    expect(callers('10.0.0.7').take(1)).toBe(false); // the port's 750 taken
    expect(callers('10.0.0.7').full(1)?.label).toBe('the data port');
    expect(b.others.take(250)).toBe(true); // the quarter the data port leaves
    expect(b.others.take(1)).toBe(false);
  });

  it('forgets idle callers past a thousand, never one that holds bytes', () => {
    const all = new BodyBudget(1_000_000);
    const callers = all.perKey(10, 'caller');
    const holder = callers('holder');
    expect(holder.take(10)).toBe(true);
    for (let i = 0; i < 3000; i++) callers(`idle${i}`);
    // The holder's share is the same one: still full.
    expect(callers('holder')).toBe(holder);
    expect(callers('holder').take(1)).toBe(false);
    holder.give(10);
    expect(all.inUse).toBe(0);
  });
});
