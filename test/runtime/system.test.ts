/**
 * The gateway's control plane and async path: basic auth on /system/*, FunctionStatus, deploy,
 * update and remove, info, logs, /async-function with its callback.
 */
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RuntimeHandle } from '../../infra/runtime/index.js';
import { auth, sleep, startFixtureRuntime, until } from './helpers.js';
import { basicAuthHeader } from '../../shared/http/basic.js';

let rt: RuntimeHandle;

beforeAll(async () => {
  ({ rt } = await startFixtureRuntime());
});
afterAll(async () => {
  await rt?.close();
});

const json = { 'content-type': 'application/json' };

describe('basic auth on /system', () => {
  it('answers 401 without credentials and with wrong ones, 200 with the right ones', async () => {
    const url = `${rt.gatewayUrl}/system/functions`;
    const none = await fetch(url);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Basic/);
    const wrong = await fetch(url, { headers: { authorization: basicAuthHeader({ user: 'admin', password: 'nope' }) } });
    expect(wrong.status).toBe(401);
    expect((await fetch(url, { headers: auth(rt) })).status).toBe(200);
  });

  it('created the credential files with mode 0600', async () => {
    const { statSync } = await import('node:fs');
    expect(statSync(`${rt.secretsDir}/basic-auth-password`).mode & 0o777).toBe(0o600);
    expect(rt.credentials.password.length).toBeGreaterThanOrEqual(24);
  });

  it('leaves /function/* open', async () => {
    expect((await fetch(`${rt.gatewayUrl}/function/echo`)).status).toBe(200);
  });
});

describe('functions API', () => {
  it('lists FunctionStatus for every function of the stack', async () => {
    const list = (await (await fetch(`${rt.gatewayUrl}/system/functions`, { headers: auth(rt) })).json()) as Array<Record<string, unknown>>;
    expect(list.map((f) => f.name).sort()).toEqual(['crash', 'echo', 'slow', 'tick']);
    const echo = list.find((f) => f.name === 'echo')!;
    expect(Object.keys(echo).sort()).toEqual(
      [
        'annotations',
        'availableReplicas',
        'createdAt',
        'envProcess',
        'envVars',
        'image',
        'invocationCount',
        'labels',
        'limits',
        'name',
        'namespace',
        'replicas',
        'requests',
        // Names only, as OpenFaaS's FunctionStatus: an update read back from here keeps them (docs/runtime.md).
        'secrets',
        'usage',
      ].sort(),
    );
    expect(echo).toMatchObject({ image: 'fixture/echo:test', namespace: 'openfaas-fn', replicas: 1, availableReplicas: 1 });
    expect((echo.labels as Record<string, string>)['com.openfaas.scale.max']).toBe('4');
  });

  it('counts invocations', async () => {
    const get = async () =>
      ((await (await fetch(`${rt.gatewayUrl}/system/function/echo`, { headers: auth(rt) })).json()) as { invocationCount: number }).invocationCount;
    const before = await get();
    await fetch(`${rt.gatewayUrl}/function/echo`);
    expect(await get()).toBe(before + 1);
  });

  it('deploys, updates and removes a function found by its handler annotation', async () => {
    const body = (envVars: Record<string, string>) =>
      JSON.stringify({ service: 'echo2', image: 'fixture/echo:v1', envVars, annotations: { 'com.cdc-front.handler': 'functions/echo' } });
    const created = await fetch(`${rt.gatewayUrl}/system/functions`, { method: 'POST', headers: { ...auth(rt), ...json }, body: body({ GREETING: 'one' }) });
    expect(created.status).toBe(202);
    expect(await rt.waitForReplicas('echo2')).toBe(true);
    const r1 = (await (await fetch(`${rt.gatewayUrl}/function/echo2/x`)).json()) as { env: { GREETING: string }; pid: number };
    expect(r1.env.GREETING).toBe('one');

    const dup = await fetch(`${rt.gatewayUrl}/system/functions`, { method: 'POST', headers: { ...auth(rt), ...json }, body: body({}) });
    expect(dup.status).toBe(409);

    const updated = await fetch(`${rt.gatewayUrl}/system/functions`, { method: 'PUT', headers: { ...auth(rt), ...json }, body: body({ GREETING: 'two' }) });
    expect(updated.status).toBe(202);
    expect(await until(() => rt.replicas('echo2').length === 1 && rt.replicas('echo2')[0]!.pid !== r1.pid && rt.replicas('echo2')[0]!.state === 'ready')).toBe(
      true,
    );
    const r2 = (await (await fetch(`${rt.gatewayUrl}/function/echo2/x`)).json()) as { env: { GREETING: string } };
    expect(r2.env.GREETING).toBe('two');

    const removed = await fetch(`${rt.gatewayUrl}/system/functions`, {
      method: 'DELETE',
      headers: { ...auth(rt), ...json },
      body: JSON.stringify({ functionName: 'echo2' }),
    });
    expect(removed.status).toBe(202);
    expect((await fetch(`${rt.gatewayUrl}/function/echo2/x`)).status).toBe(404);
    expect(rt.functions()).not.toContain('echo2');
  });

  it('refuses a /system body over 1 MiB with 413, declared or chunked, and takes a small one after', async () => {
    const declared = await fetch(`${rt.gatewayUrl}/system/functions`, { method: 'POST', headers: { ...auth(rt), ...json }, body: 'x'.repeat(1024 * 1024 + 1) });
    expect(declared.status).toBe(413);
    const stream = new ReadableStream({
      start(ctl) {
        for (let i = 0; i < 40; i++) ctl.enqueue(new TextEncoder().encode('x'.repeat(64 * 1024)));
        ctl.close();
      },
    });
    const chunked = await fetch(`${rt.gatewayUrl}/system/functions`, {
      method: 'POST',
      headers: { ...auth(rt), ...json },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect((await fetch(`${rt.gatewayUrl}/system/functions`, { headers: auth(rt) })).status).toBe(200);
  });

  it('rejects an invalid deployment and one whose secret is missing, naming it', async () => {
    const bad = await fetch(`${rt.gatewayUrl}/system/functions`, {
      method: 'POST',
      headers: { ...auth(rt), ...json },
      body: JSON.stringify({ service: 'Bad Name' }),
    });
    expect(bad.status).toBe(400);
    const noSecret = await fetch(`${rt.gatewayUrl}/system/functions`, {
      method: 'POST',
      headers: { ...auth(rt), ...json },
      body: JSON.stringify({ service: 'echo3', image: 'x', secrets: ['no-such-secret'], annotations: { 'com.cdc-front.handler': 'functions/echo' } }),
    });
    expect(noSecret.status).toBe(400);
    expect(await noSecret.text()).toContain('no-such-secret');
  });

  it('runs only code the project ships: a handler under functions/, no variable that loads other code', async () => {
    const deploy = (body: Record<string, unknown>) =>
      fetch(`${rt.gatewayUrl}/system/functions`, { method: 'POST', headers: { ...auth(rt), ...json }, body: JSON.stringify({ image: 'x', ...body }) });
    for (const handler of ['../../..', '/tmp', 'functions/../../..', 'functions-evil/echo']) {
      const r = await deploy({ service: 'evil1', annotations: { 'com.cdc-front.handler': handler } });
      expect([handler, r.status]).toEqual([handler, 400]);
      expect(await r.text()).toContain('must be a folder under');
    }
    for (const k of ['NODE_OPTIONS', 'node_options', 'LD_PRELOAD', 'NODE_PATH', 'http_port']) {
      const r = await deploy({ service: 'evil2', envVars: { [k]: '--require /tmp/x.js' }, annotations: { 'com.cdc-front.handler': 'functions/echo' } });
      expect([k, r.status]).toEqual([k, 400]);
      expect(await r.text()).toContain('not accepted through the API');
    }
    // An update may write back what the function has (test/runtime/config-schedules.test.ts), never a new value.
    const echo = (await (await fetch(`${rt.gatewayUrl}/system/function/echo`, { headers: auth(rt) })).json()) as { envVars: Record<string, string> };
    const update = await fetch(`${rt.gatewayUrl}/system/functions`, {
      method: 'PUT',
      headers: { ...auth(rt), ...json },
      body: JSON.stringify({ service: 'echo', image: 'x', envVars: { ...echo.envVars, NODE_OPTIONS: '--require /tmp/x.js' } }),
    });
    expect(update.status).toBe(400);
    expect(await update.text()).toContain('NODE_OPTIONS: not accepted through the API');
    expect(
      ((await fetch(`${rt.gatewayUrl}/system/functions`, { headers: auth(rt) }).then((r) => r.json())) as Array<{ name: string }>).map((f) => f.name),
    ).not.toContain('evil1');
  });

  it('answers /system/info', async () => {
    const info = (await (await fetch(`${rt.gatewayUrl}/system/info`, { headers: auth(rt) })).json()) as Record<string, Record<string, string>>;
    expect(info.provider).toMatchObject({ provider: 'cdc-front-runtime', orchestration: 'process' });
    expect(info.version).toHaveProperty('release');
  });
});

describe('logs', () => {
  it('serves a replica’s output as our structured JSON lines at /system/logs?format=raw', async () => {
    await fetch(`${rt.gatewayUrl}/function/echo`);
    let lines: Array<Record<string, unknown>> = [];
    await sleep(100); // log lines are written in batches
    const res = await fetch(`${rt.gatewayUrl}/system/logs?name=echo&tail=50&format=raw`, { headers: auth(rt) });
    expect(res.status).toBe(200);
    lines = (await res.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const listening = lines.find((l) => l.msg === 'listening');
    expect(listening).toMatchObject({ fn: 'echo', stream: 'stdout', level: 'info' });
    expect(String(listening!.replica)).toMatch(/^echo-\d+$/);
    expect((await fetch(`${rt.gatewayUrl}/system/logs?name=echo`)).status).toBe(401);
  });
});

describe('async invocations', () => {
  it('answers 202 with X-Call-Id and POSTs the result to X-Callback-Url', async () => {
    const received: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
    const cb = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.end();
      });
    });
    cb.listen(0, '127.0.0.1');
    await once(cb, 'listening');
    try {
      const url = `http://127.0.0.1:${(cb.address() as AddressInfo).port}/done`;
      const res = await fetch(`${rt.gatewayUrl}/async-function/echo/job?x=1`, { method: 'POST', body: 'payload', headers: { 'x-callback-url': url } });
      expect(res.status).toBe(202);
      const callId = res.headers.get('x-call-id');
      expect(callId).toBeTruthy();
      expect(await until(() => received.length === 1, 5000)).toBe(true);
      const got = received[0]!;
      expect(got.headers['x-function-status']).toBe('200');
      expect(got.headers['x-function-name']).toBe('echo');
      expect(got.headers['x-call-id']).toBe(callId);
      expect(Number(got.headers['x-duration-seconds'])).toBeGreaterThan(0);
      const result = JSON.parse(got.body) as { path: string; query: string; bodyLength: number };
      expect(result).toMatchObject({ path: '/job', query: '?x=1', bodyLength: 7 });
    } finally {
      cb.close();
    }
  });
});
