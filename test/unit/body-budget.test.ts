/**
 * The runtime's body budget and its shares (infra/runtime/limits.ts): a chunk must fit in every budget
 * up the chain, what is given back goes back up it, and one port's or one caller's share cannot take
 * what the others need (docs/runtime.md "Limits and the guard").
 */
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BodyBudget, bodyBudgets, CallerShares } from '../../infra/runtime/limits.js';
import { readBody } from '../../infra/runtime/proxy.js';

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

  it('divides the budget: the data port at most three quarters, the other ports together half, each caller its own share', () => {
    const b = bodyBudgets(1000, 400);
    expect([b.data.max, b.others.max]).toEqual([750, 500]);
    // A caller's share: the setting, at most half of its side's.
    expect([b.dataCallers.max, b.otherCallers.max]).toEqual([375, 250]);
    expect(bodyBudgets(1000, 100).dataCallers.max).toBe(100);
    // The other ports full: the data port still has what it needs.
    expect(b.others.take(500)).toBe(true);
    expect(b.data.take(500)).toBe(true);
    expect(b.data.take(1)).toBe(false);
    b.others.give(500);
    b.data.give(500);
    // One caller on the data port: at most its share; another caller has the rest.
    const callers = b.dataCallers;
    expect(callers.for('10.0.0.5').take(375)).toBe(true);
    expect(callers.for('10.0.0.5').take(1)).toBe(false);
    expect(callers.for('10.0.0.5').full(1)?.label).toBe('this address on the data port');
    expect(callers.for('10.0.0.6').take(375)).toBe(true);
    expect(callers.for('10.0.0.7').take(1)).toBe(false); // the port's 750 taken
    expect(callers.for('10.0.0.7').full(1)?.label).toBe('the data port');
    // A caller whose function takes a larger body than the share: the share widens to it, never past its side's.
    expect(callers.for('10.0.0.8', 500).max).toBe(500);
    expect(callers.for('10.0.0.9', 5000).max).toBe(750);
    // Who holds the most, for the log.
    expect(callers.top(5)).toEqual([
      { caller: '10.0.0.5', bytes: 375 },
      { caller: '10.0.0.6', bytes: 375 },
    ]);
    expect(b.others.take(250)).toBe(true); // the quarter the data port leaves
    expect(b.others.take(1)).toBe(false);
  });

  it('forgets idle callers past a thousand, never one that holds bytes or has a request reading', () => {
    const all = new BodyBudget(1_000_000);
    const callers = new CallerShares(all, 10, 'caller');
    const holder = callers.for('holder');
    expect(holder.take(10)).toBe(true);
    // A request whose headers came and whose body has not begun: nothing held yet, but reading.
    const waiting = callers.for('waiting');
    waiting.holders++;
    for (let i = 0; i < 3000; i++) callers.for(`idle${i}`);
    // The same shares: the holder's still full, the waiting one's still the one its request reads into.
    expect(callers.for('holder')).toBe(holder);
    expect(callers.for('holder').take(1)).toBe(false);
    expect(callers.for('waiting')).toBe(waiting);
    holder.give(10);
    expect(all.inUse).toBe(0);
  });
});

describe('readBody: what a body costs in memory is what the budget counts', () => {
  /** A request whose body arrives in the pieces given (as the HTTP parser hands a chunked body over). */
  const requestOf = (pieces: Buffer[], headers: Record<string, string> = {}) => {
    const req = Readable.from(pieces, { objectMode: false }) as Readable & { headers: Record<string, string> };
    req.headers = headers;
    return req as unknown as IncomingMessage;
  };

  it('copies a body sent a byte at a time into blocks: it counts its bytes, not a piece per byte', async () => {
    const budget = new BodyBudget(10 * 2 ** 20);
    const pieces = Array.from({ length: 100_000 }, (_, i) => Buffer.from([97 + (i % 26)]));
    const read = await readBody(requestOf(pieces), 8 * 2 ** 20, budget);
    expect(read.ok).toBe(true);
    if (!read.ok) return;
    expect(read.body.length).toBe(100_000);
    expect(read.body.subarray(0, 3).toString()).toBe('abc');
    // Held in blocks of 64 KiB as it came; the last, not full, copied down to what it holds.
    expect(budget.inUse).toBe(100_000);
    read.release();
    expect([budget.inUse, budget.holders]).toEqual([0, 0]);
  });

  it('refuses such a body at the share it fills, as it would a body of large pieces', async () => {
    const budget = new BodyBudget(256 * 1024);
    const pieces = Array.from({ length: 400_000 }, () => Buffer.from('x'));
    const read = await readBody(requestOf(pieces), 8 * 2 ** 20, budget);
    expect(read).toMatchObject({ ok: false, status: 503 });
    expect([budget.inUse, budget.holders]).toEqual([0, 0]);
  });

  it('counts a body whose pieces alternate small and large at its size, not a block per small piece', async () => {
    const budget = new BodyBudget(10 * 2 ** 20);
    const pieces = Array.from({ length: 40 }, (_, i) => (i % 2 ? Buffer.alloc(20_000, 0x61) : Buffer.from('b')));
    const read = await readBody(requestOf(pieces), 8 * 2 ** 20, budget);
    expect(read.ok && read.body.length).toBe(20 * 20_000 + 20);
    expect(budget.inUse).toBe(20 * 20_000 + 20);
    if (read.ok) read.release();
    expect(budget.inUse).toBe(0);
  });

  it('takes a small body with a declared length at its own size, and large pieces as they are', async () => {
    const budget = new BodyBudget(10 * 2 ** 20);
    const small = await readBody(requestOf([Buffer.from('{"id":'), Buffer.from('"P1"}')], { 'content-length': '11' }), 2 ** 20, budget);
    expect(small.ok && small.body.toString()).toBe('{"id":"P1"}');
    expect(budget.inUse).toBe(11);
    if (small.ok) small.release();
    const big = Buffer.alloc(100_000, 0x20);
    const large = await readBody(requestOf([big]), 2 ** 20, budget);
    expect(large.ok && large.body.length).toBe(100_000);
    expect(budget.inUse).toBe(100_000);
    if (large.ok) large.release();
    expect(budget.inUse).toBe(0);
  });
});
