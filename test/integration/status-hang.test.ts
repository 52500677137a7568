// With the database hanging — connected, answering nothing (its processes stopped, a lost network) —
// GET /status on the monitoring port answers the documented 503 with the status body within a
// bounded time (docs/monitoring.md), not after the runtime's exec_timeout. The real PostgreSQL,
// reached through a relay that stops passing bytes on demand. Its own file: one process holds one
// configuration (DATABASE_URL).
import { createServer, connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl } from '../setup/db.js';
import { monitorTokenDir } from '../setup/monitor-token.js';

const target = new URL(databaseUrl());
let frozen = false;
const held: Array<() => void> = [];
const sockets = new Set<Socket>();
// Each connection relayed while not frozen; frozen, bytes are kept back (neither side hears anything).
const relay = createServer((client) => {
  const server = connect(Number(target.port || 5432), target.hostname);
  for (const s of [client, server]) {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  }
  const pass = (from: Socket, to: Socket) =>
    from.on('data', (chunk) => {
      if (!frozen) to.write(chunk);
      else held.push(() => to.write(chunk));
    });
  pass(client, server);
  pass(server, client);
  client.on('close', () => server.destroy());
  server.on('close', () => client.destroy());
});
await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
const via = new URL(target.href);
via.hostname = '127.0.0.1';
via.port = String((relay.address() as { port: number }).port);
process.env.DATABASE_URL = via.href;
const platform = monitorTokenDir();
const { default: monitor } = await import('../../functions/monitor/handler.js');

beforeAll(async () => {
  await monitor.init?.();
});
afterAll(async () => {
  frozen = false;
  for (const f of held.splice(0)) f();
  await monitor.close?.();
  for (const s of sockets) s.destroy();
  relay.close();
});

describe('database hanging', () => {
  it('GET /status answers 200 while the database answers', async () => {
    const res = await monitor.app.request('/status', { headers: platform.headers });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ database: { reachable: true } });
  });

  it('GET /status answers 503 with the status body within its deadline when the database hangs', async () => {
    frozen = true;
    const t0 = Date.now();
    const res = await monitor.app.request('/status', { headers: platform.headers });
    const took = Date.now() - t0;
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({
      database: { reachable: false, dialect: null, serverTime: null },
      outbox: null,
      version: expect.any(String),
    });
    // The status's 5 s deadline (shared/status), well inside the runtime's exec_timeout for the monitor (15 s, stack.yml).
    expect(took).toBeLessThan(7_000);
  }, 20_000);
});
