// The ingest nudge (shared/ingest/nudge.ts) on a real socket: the first commit after a quiet spell
// nudges at once; a burst makes that nudge and one more after the interval, nothing else; steady
// commits make at most one POST per interval; a nudge that fails (the connection reset) never blocks
// the next.
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { nudger } from '../../shared/ingest/nudge.js';

const seen: IncomingMessage[] = [];
let resetNext = false;
const server = createServer((req, res) => {
  seen.push(req);
  if (resetNext) {
    resetNext = false;
    req.socket.destroy();
    return;
  }
  res.writeHead(202).end();
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/async-function/push`;
afterAll(() => new Promise<void>((r) => server.close(() => r())));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Resolves once the server has seen n POSTs (or after 2 s, for the assertion to name the count). */
const seenAt = async (n: number) => {
  for (let i = 0; i < 400 && seen.length < n; i++) await sleep(5);
  return seen.length;
};

describe('the ingest nudge', () => {
  it('nudges at once after a quiet spell, folds a burst into one more nudge after the interval, and goes on after a failed one', async () => {
    seen.length = 0;
    const nudge = nudger(url, 600);
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) nudge();
    // The first goes out at once, long before the interval.
    expect(await seenAt(1)).toBe(1);
    expect(performance.now() - t0).toBeLessThan(400);
    expect(seen[0]!.method).toBe('POST');
    expect(seen[0]!.url).toBe('/async-function/push');
    expect(seen[0]!.headers['x-nudge']).toBe('ingest');
    // The other nineteen are one nudge, after the interval.
    expect(await seenAt(2)).toBe(2);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(600);
    await sleep(1300);
    expect(seen.length).toBe(2);
    // Quiet again: the next commit nudges at once; that one fails, and the one after still goes.
    resetNext = true;
    const t1 = performance.now();
    nudge();
    expect(await seenAt(3)).toBe(3);
    expect(performance.now() - t1).toBeLessThan(400);
    await sleep(700);
    nudge();
    expect(await seenAt(4)).toBe(4);
  });

  it('makes at most one POST per interval under steady commits, and one at most after the last', async () => {
    seen.length = 0;
    const nudge = nudger(url, 100);
    const t0 = performance.now();
    while (performance.now() - t0 < 1000) {
      nudge();
      await sleep(5);
    }
    const during = seen.length;
    // Each POST waits for the one before it to be answered and the interval to pass: about ten in a
    // second, never one per commit (~150 here).
    expect(during).toBeGreaterThanOrEqual(4);
    expect(during).toBeLessThanOrEqual(11);
    // The commits after the last POST get theirs at the interval's end; then nothing more.
    await sleep(400);
    const after = seen.length;
    expect(after - during).toBeLessThanOrEqual(1);
    await sleep(300);
    expect(seen.length).toBe(after);
  });
});
