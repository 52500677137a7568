// The ingest nudge (shared/ingest/nudge.ts) on a real socket: a burst of commits makes one POST per
// interval, with the x-nudge header; a nudge that fails (the connection reset) never blocks the next.
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

describe('the ingest nudge', () => {
  it('sends one POST per interval for a burst, and goes on after a failed one', async () => {
    const nudge = nudger(url, 30);
    for (let i = 0; i < 20; i++) nudge();
    await sleep(150);
    expect(seen.length).toBe(1);
    expect(seen[0]!.method).toBe('POST');
    expect(seen[0]!.url).toBe('/async-function/push');
    expect(seen[0]!.headers['x-nudge']).toBe('ingest');
    resetNext = true;
    nudge();
    await sleep(150);
    expect(seen.length).toBe(2);
    nudge();
    await sleep(150);
    expect(seen.length).toBe(3);
  });
});
