/**
 * Hospital ports, cron and shutdown: the data port's /hclient/emr/receive/<resource> and
 * /function/<name> routes, root functions, a port without its function, a taken port named in the
 * error; cron firing POSTs with the connector's headers; SIGTERM drain finishing in-flight work.
 */
import { readFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RuntimeHandle } from '../../infra/runtime/index.js';
import { freePort } from '../../infra/runtime/replica.js';
import { sleep, startFixtureRuntime, until } from './helpers.js';
import { basicAuthHeader } from '../../shared/http/basic.js';

let rt: RuntimeHandle;
let dir: string;

beforeAll(async () => {
  ({ rt, dir } = await startFixtureRuntime({ cron: { timezone: 'Asia/Shanghai' } }));
});
afterAll(async () => {
  await rt?.close();
});

interface Echo {
  path: string;
  query: string;
  headers: Record<string, string>;
}

describe('hospital ports', () => {
  it('routes /hclient/emr/receive/<resource> to the function owning the resource', async () => {
    for (const resource of ['emrPatientInfo', 'baseUser']) {
      const res = await fetch(`${rt.portUrls.data}/hclient/emr/receive/${resource}/batch?dry=1`, {
        method: 'POST',
        body: '[]',
        headers: { 'x-forwarded-for': '6.6.6.6' },
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as Echo;
      expect(body.path).toBe(`/${resource}/batch`);
      expect(body.query).toBe('?dry=1');
      expect(body.headers['x-forwarded-for']).toBe('127.0.0.1');
    }
  });

  it('routes /function/<name> on the data port for its own functions only', async () => {
    const res = await fetch(`${rt.portUrls.data}/function/echo/x`);
    expect(((await res.json()) as Echo).path).toBe('/x');
    expect((await fetch(`${rt.portUrls.data}/function/slow/`)).status).toBe(404);
  });

  it('answers 404 JSON for a resource nobody owns', async () => {
    const res = await fetch(`${rt.portUrls.data}/hclient/emr/receive/noSuchThing`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: 'unknown_resource', resource: 'noSuchThing' });
  });

  it('gives a root function every path unchanged', async () => {
    const res = await fetch(`${rt.portUrls.web}/some/page?ms=1`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as Echo).path).toBe('/some/page');
  });

  it('answers 503 JSON naming the missing function on a port nobody serves yet', async () => {
    const res = await fetch(`${rt.portUrls.config}/anything`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: 'no_function', missing: 'function config', role: 'config' });
  });

  it('fails to start with an error naming a port that is taken', async () => {
    const blocker = createServer();
    const port = await freePort();
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', () => r()));
    try {
      await expect(startFixtureRuntime({}, { DATA_PORT: String(port) })).rejects.toThrow(`port ${port} (data API, HIS → front) is already in use`);
      await expect(startFixtureRuntime({ gateway: { host: '127.0.0.1', port } })).rejects.toThrow(`port ${port} (admin gateway) is already in use`);
    } finally {
      blocker.close();
    }
  });
});

describe('a declared function that is not running (start, redeploy, removal)', () => {
  it('answers 503 with Retry-After in the HIS answer shape, never 404 (adapters drop a record on 404)', async () => {
    const own = await startFixtureRuntime();
    try {
      const auth = basicAuthHeader(own.rt.credentials);
      const del = await fetch(`${own.rt.gatewayUrl}/system/functions`, {
        method: 'DELETE',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: JSON.stringify({ functionName: 'echo' }),
      });
      expect(del.status).toBe(202);
      for (const path of ['/hclient/emr/receive/emrPatientInfo', '/hclient/emr/receive/baseUser/x', '/function/echo/x']) {
        const res = await fetch(`${own.rt.portUrls.data}${path}`, { method: 'POST', body: '{}' });
        expect(res.status, path).toBe(503);
        expect(res.headers.get('retry-after'), path).toBe('5');
        expect(await res.json(), path).toMatchObject({ result: false, id: null, errorCode: expect.any(String), error: 'starting', function: 'echo' });
      }
    } finally {
      await own.rt.close();
    }
  });
});

describe('cron', () => {
  it('POSTs an empty body with X-Topic and X-Connector on schedule', async () => {
    const file = join(dir, 'tick.log');
    expect(await until(() => existsSync(file) && readFileSync(file, 'utf8').trim().split('\n').length >= 2, 5000)).toBe(true);
    const calls = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const c of calls) expect(c).toMatchObject({ method: 'POST', bodyLength: 0, topic: 'cron-function', connector: 'cron-connector' });
    const runtimeLog = readFileSync(join(rt.logsDir, 'runtime.log'), 'utf8');
    expect(runtimeLog).toContain('"msg":"cron fired","fn":"tick"');
    expect(rt.timezone).toBe('Asia/Shanghai');
  });
});

describe('drain on close', () => {
  it('lets an in-flight request finish, refuses new ones, stops every replica', async () => {
    const pids = rt.functions().flatMap((f) => rt.replicas(f).map((r) => r.pid!));
    const inflight = fetch(`${rt.gatewayUrl}/function/slow/?ms=700`);
    // In flight once the runtime has given it to the replica (late on a loaded machine).
    await until(() => rt.replicas('slow').some((r) => r.inflight > 0));
    const closing = rt.close();
    await sleep(50);
    const late = await fetch(`${rt.gatewayUrl}/function/echo`).then(
      (r) => r.status,
      () => 'refused',
    );
    expect([503, 'refused']).toContain(late);
    const res = await inflight;
    expect(res.status).toBe(200);
    expect(((await res.json()) as { slept: number }).slept).toBe(700);
    await closing;
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  });
});
