// A function that answers before it has read the request's body (a size limit refusing a chunked
// body midway): the template's server closes that connection (infra/openfaas/template/hono/index.ts),
// so the caller's keep-alive agent — the runtime's, the watchdog's — never sends its next request,
// someone else's, down a socket the server has destroyed. Seen before as a 502 "ECONNRESET" to a
// doctor signing in after someone had posted an oversized form to the console.
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../infra/runtime/replica.js';
import { buildFixtures, fixtureDir } from './helpers.js';

let child: ChildProcess;
let port: number;

beforeAll(async () => {
  await buildFixtures();
  port = await freePort();
  child = spawn(process.execPath, [join(fixtureDir, 'functions/echo/dist/index.js')], {
    env: { PATH: process.env.PATH ?? '', http_port: String(port), healthcheck_interval: '0', write_timeout: '1s' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((ok) => child.stdout!.on('data', (d: Buffer) => d.toString().includes('"listening"') && ok()));
}, 60_000);
afterAll(() => {
  child?.kill('SIGKILL');
});

describe("the template's server, answering before the body is read", () => {
  it('closes that connection, and the next requests on the same agent are answered', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const post = (path: string, body: string[], chunked: boolean) =>
      new Promise<{ status: number; connection: string | undefined; text: string } | { error: string }>((ok) => {
        const size = body.reduce((n, b) => n + b.length, 0);
        const req = request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: chunked ? {} : { 'content-length': size } }, (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => ok({ status: res.statusCode!, connection: res.headers.connection, text }));
        });
        req.on('error', (e: NodeJS.ErrnoException) => ok({ error: e.code ?? e.message }));
        for (const b of body) req.write(b);
        req.end();
      });
    try {
      const cut = await post(
        '/early',
        Array.from({ length: 200 }, () => 'x'.repeat(1000)),
        true,
      );
      expect(cut).toMatchObject({ status: 413, connection: 'close' });
      for (let i = 0; i < 3; i++) expect(await post('/early', ['small'], false), `request ${i} after`).toMatchObject({ status: 200, text: 'read 5' });
      // A body read in full keeps the connection for the next request.
      expect(await post('/early', ['small'], false)).toMatchObject({ connection: 'keep-alive' });
    } finally {
      agent.destroy();
    }
  });
});
