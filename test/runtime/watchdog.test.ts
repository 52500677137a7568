/**
 * The watchdog contract per function: health and ready, exec_timeout → 504, max_inflight → 429,
 * X-Duration-Seconds, the gateway headers, and what a function sees of its request and environment.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RuntimeHandle } from '../../infra/runtime/index.js';
import { fixtureDir, startFixtureRuntime, until } from './helpers.js';

let rt: RuntimeHandle;

beforeAll(async () => {
  ({ rt } = await startFixtureRuntime());
});
afterAll(async () => {
  await rt?.close();
});

interface Echo {
  pid: number;
  method: string;
  path: string;
  query: string;
  headers: Record<string, string>;
  bodyLength: number;
  env: { GREETING: string | null; FROM_FILE: string | null };
}

describe('health and ready', () => {
  it('answers /_/health and /_/ready itself once a replica listens', async () => {
    // Once it listens: on a loaded machine the start may resolve before (it waits at most 30 s).
    expect(await rt.waitForReplicas('echo', 60_000)).toBe(true);
    for (const p of ['/_/health', '/_/ready']) {
      const res = await fetch(`${rt.gatewayUrl}/function/echo${p}`);
      expect(res.status).toBe(200);
    }
  });

  it('/healthz of the gateway is open', async () => {
    const res = await fetch(`${rt.gatewayUrl}/healthz`);
    expect(res.status).toBe(200);
  });

  it('an unknown function is 404 from the gateway', async () => {
    const res = await fetch(`${rt.gatewayUrl}/function/nope/x`);
    expect(res.status).toBe(404);
    expect(res.headers.get('x-openfaas-internal')).toBe('gateway');
  });
});

describe('forwarding', () => {
  it('strips /function/<name>, keeps the query, sets the gateway headers', async () => {
    const res = await fetch(`${rt.gatewayUrl}/function/echo/a/b?x=1&y=2`, { method: 'POST', body: 'hello' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Echo;
    expect(body.path).toBe('/a/b');
    expect(body.query).toBe('?x=1&y=2');
    expect(body.method).toBe('POST');
    expect(body.bodyLength).toBe(5);
    const callId = res.headers.get('x-call-id');
    expect(callId).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.headers['x-call-id']).toBe(callId);
    expect(body.headers['x-start-time']).toMatch(/^\d{19}$/);
    expect(Number(res.headers.get('x-duration-seconds'))).toBeGreaterThan(0);
  });

  it('echoes a given X-Call-Id', async () => {
    const res = await fetch(`${rt.gatewayUrl}/function/echo`, { headers: { 'x-call-id': 'call-123' } });
    expect(res.headers.get('x-call-id')).toBe('call-123');
    expect(((await res.json()) as Echo).headers['x-call-id']).toBe('call-123');
  });

  it('sets X-Forwarded-For to the TCP peer, whatever the caller claims', async () => {
    const res = await fetch(`${rt.gatewayUrl}/function/echo`, {
      headers: { 'x-forwarded-for': '10.9.9.9', forwarded: 'for=10.9.9.9', 'x-real-ip': '10.9.9.9' },
    });
    const body = (await res.json()) as Echo;
    expect(body.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(body.headers.forwarded).toBeUndefined();
    expect(body.headers['x-real-ip']).toBeUndefined();
    expect(body.headers['x-forwarded-host']).toBe(new URL(rt.gatewayUrl).host);
  });

  it('keeps an X-Forwarded-Host set before the gateway (nginx in front, as OpenFaaS does), never one sent to a hospital port', async () => {
    const viaGateway = (await (await fetch(`${rt.gatewayUrl}/function/echo`, { headers: { 'x-forwarded-host': 'front.hospital:8884' } })).json()) as Echo;
    expect(viaGateway.headers['x-forwarded-host']).toBe('front.hospital:8884');
    const data = rt.portUrls.data!;
    const viaPort = (await (await fetch(`${data}/function/echo`, { headers: { 'x-forwarded-host': 'forged.example' } })).json()) as Echo;
    expect(viaPort.headers['x-forwarded-host']).toBe(new URL(data).host);
  });

  it('gives the function its environment, environment_file winning over inline values', async () => {
    const body = (await (await fetch(`${rt.gatewayUrl}/function/echo`)).json()) as Echo;
    expect(body.env).toEqual({ GREETING: 'file-wins', FROM_FILE: 'from-env-file' });
  });

  it('starts a replica from the compile cache primed beside its bundle (docs/runtime.md "Bundles")', async () => {
    const { pid } = (await (await fetch(`${rt.gatewayUrl}/function/echo`)).json()) as Echo;
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    const cache = join(fixtureDir, 'functions/echo/dist/compile-cache');
    expect(environ).toContain(`NODE_COMPILE_CACHE=${cache}`);
    // The build's self-test run filled it: one folder for this Node.js, holding the bundle's entry.
    expect(existsSync(cache)).toBe(true);
    const [version] = readdirSync(cache);
    expect(version).toContain(process.version);
    expect(readdirSync(join(cache, version!)).length).toBeGreaterThan(0);
  });
});

describe('exec_timeout', () => {
  it('answers 504 with X-OpenFaaS-Internal when the function outlives exec_timeout', async () => {
    const t0 = Date.now();
    const res = await fetch(`${rt.gatewayUrl}/function/slow/?ms=3000`);
    expect(res.status).toBe(504);
    expect(res.headers.get('x-openfaas-internal')).toBeTruthy();
    expect(Date.now() - t0).toBeLessThan(2500);
  });

  it('lets X-Timeout shorten the timeout', async () => {
    const t0 = Date.now();
    const res = await fetch(`${rt.gatewayUrl}/function/slow/?ms=800`, { headers: { 'x-timeout': '200ms' } });
    expect(res.status).toBe(504);
    expect(Date.now() - t0).toBeLessThan(700);
  });

  it('answers within the timeout normally', async () => {
    const res = await fetch(`${rt.gatewayUrl}/function/slow/?ms=50`);
    expect(res.status).toBe(200);
  });
});

describe('streaming', () => {
  it('streams an ndjson response through, chunk by chunk', async () => {
    const t0 = Date.now();
    const res = await fetch(`${rt.gatewayUrl}/function/slow/stream?n=3&gap=300`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-ndjson');
    const reader = res.body!.getReader();
    const first = await reader.read();
    const firstAt = Date.now() - t0;
    expect(new TextDecoder().decode(first.value)).toContain('"i":0');
    expect(firstAt).toBeLessThan(400);
    let rest = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    expect(rest).toContain('"i":2');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(550);
  });

  it("sends a stream's headers at once, before its first line", async () => {
    // The first line comes 800 ms after the replica's headers (within the fixture's exec_timeout of 1 s).
    const res = await fetch(`${rt.gatewayUrl}/function/slow/stream?n=1&wait=800`);
    const headersAt = Date.now();
    expect(res.headers.get('content-type')).toBe('application/x-ndjson');
    expect(await res.text()).toContain('"i":0');
    expect(Date.now() - headersAt).toBeGreaterThanOrEqual(500);
  });
});

describe('max_inflight', () => {
  it('answers 429 when every slot of every replica is taken, and ready says 429 meanwhile', async () => {
    // slow: one replica, max_inflight 2. Wait out the earlier timeouts' requests still sleeping in it,
    // then for the two held ones to take both slots (the runtime's own count; late on a loaded machine).
    const inflight = () => rt.replicas('slow').reduce((n, r) => n + r.inflight, 0);
    await until(() => inflight() === 0);
    const held = [fetch(`${rt.gatewayUrl}/function/slow/?ms=700`), fetch(`${rt.gatewayUrl}/function/slow/?ms=700`)];
    await until(() => inflight() === 2);
    const third = await fetch(`${rt.gatewayUrl}/function/slow/?ms=10`);
    expect(third.status).toBe(429);
    expect(third.headers.get('x-openfaas-internal')).toBeTruthy();
    expect((await fetch(`${rt.gatewayUrl}/function/slow/_/ready`)).status).toBe(429);
    expect((await fetch(`${rt.gatewayUrl}/function/slow/_/health`)).status).toBe(200);
    const statuses = await Promise.all(held.map(async (p) => (await p).status));
    expect(statuses).toEqual([200, 200]);
    expect((await fetch(`${rt.gatewayUrl}/function/slow/?ms=10`)).status).toBe(200);
  });
});

describe('errors', () => {
  it('answers 502 when the replica dies with the request in flight, then restarts it', async () => {
    const before = rt.replicas('crash').map((r) => r.pid);
    const res = await fetch(`${rt.gatewayUrl}/function/crash/exit`);
    expect(res.status).toBe(502);
    expect(res.headers.get('x-openfaas-internal')).toBe('gateway');
    const restarted = () => rt.replicas('crash').filter((r) => r.state === 'ready' && !before.includes(r.pid)).length === 1;
    expect(await until(restarted)).toBe(true);
    expect(await rt.waitForReplicas('crash', 10_000)).toBe(true);
    const after = rt.replicas('crash').map((r) => r.pid);
    expect(after).toHaveLength(2);
    expect(after.filter((p) => !before.includes(p))).toHaveLength(1);
  });

  it("answers 413 to a body beyond the function's body limit (MAX_BODY_BYTES, default 8 MiB)", async () => {
    const res = await fetch(`${rt.gatewayUrl}/function/echo`, { method: 'POST', body: new Uint8Array(33 * 1024 * 1024) });
    expect(res.status).toBe(413);
  });
});
