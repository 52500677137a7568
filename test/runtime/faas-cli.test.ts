// The real faas-cli (0.16) as the operator's client of this runtime: each answer decoded exactly as
// faas-cli's client code decodes it — the types are faas-provider's and the gateway's (GatewayInfo
// with ProviderInfo and VersionInfo objects, logs.Message as newline-delimited JSON read with a
// streaming decoder, []string namespaces, []Secret) — and the requests it sends (query values of
// logs.Request, `<fn>.<namespace>` for `invoke -n`). docs/runtime.md "faas-cli against this runtime".
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RuntimeHandle } from '../../infra/runtime/index.js';
import { auth, sleep, startFixtureRuntime } from './helpers.js';

let rt: RuntimeHandle;
let dir: string;

beforeAll(async () => {
  ({ rt, dir } = await startFixtureRuntime());
  mkdirSync(join(dir, 'secrets'), { recursive: true });
  writeFileSync(join(dir, 'secrets', 'cdc-database-url'), 'postgresql://secret-value@db/x\n', { mode: 0o600 });
}, 60_000);

afterAll(async () => {
  await rt?.close();
});

/** Go's json decoding into a struct with these string fields: each must be a string (or absent). */
function goStrings(o: unknown, fields: string[]): Record<string, string> {
  expect(o !== null && typeof o === 'object' && !Array.isArray(o)).toBe(true);
  const r = o as Record<string, unknown>;
  for (const f of fields) if (f in r) expect(typeof r[f], f).toBe('string');
  return r as Record<string, string>;
}

/** Go's time.Time unmarshals RFC 3339 only. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** faas-provider logs.Message, one JSON value after another (json.Decoder over the body). */
function decodeMessages(body: string): Array<{ name: string; namespace: string; instance: string; timestamp: string; text: string }> {
  return body
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const m = goStrings(JSON.parse(l), ['name', 'namespace', 'instance', 'timestamp', 'text']);
      expect(m.timestamp).toMatch(RFC3339);
      return m as unknown as { name: string; namespace: string; instance: string; timestamp: string; text: string };
    });
}

describe('faas-cli version --gateway', () => {
  it('reads GatewayInfo: provider.version and version are VersionInfo objects', async () => {
    const info = (await (await fetch(`${rt.gatewayUrl}/system/info`, { headers: auth(rt) })).json()) as Record<string, unknown>;
    const provider = goStrings(info.provider, ['provider', 'orchestration']);
    expect(provider.provider).toBe('cdc-front-runtime');
    expect(provider.orchestration).toBe('process');
    const pv = goStrings((info.provider as Record<string, unknown>).version, ['release', 'sha', 'commit_message']);
    expect(pv.release).toMatch(/^\d+\.\d+\.\d+/);
    expect(typeof pv.sha).toBe('string');
    const gv = goStrings(info.version, ['release', 'sha']);
    expect(gv.release).toBe(pv.release);
    expect(typeof info.arch).toBe('string');
  });
});

describe('faas-cli namespaces and invoke -n', () => {
  it('lists the one namespace as a JSON array of strings', async () => {
    const res = await fetch(`${rt.gatewayUrl}/system/namespaces`, { headers: auth(rt) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(['openfaas-fn']);
    expect((await fetch(`${rt.gatewayUrl}/system/namespaces`)).status).toBe(401);
  });

  it('routes <fn>.openfaas-fn to the function, sync and async; another namespace is 404', async () => {
    const sync = await fetch(`${rt.gatewayUrl}/function/echo.openfaas-fn/some/path?x=1`, { method: 'POST', body: 'hi' });
    expect(sync.status).toBe(200);
    expect(await sync.json()).toMatchObject({ path: '/some/path', query: '?x=1', bodyLength: 2 });
    const async = await fetch(`${rt.gatewayUrl}/async-function/echo.openfaas-fn`, { method: 'POST', body: 'hi' });
    expect(async.status).toBe(202);
    const other = await fetch(`${rt.gatewayUrl}/function/echo.kube-system`, { method: 'POST' });
    expect(other.status).toBe(404);
    expect(await other.text()).toContain('namespace kube-system not found');
  });
});

describe('faas-cli secret list', () => {
  it('lists secret names as []Secret, never a value, never the gateway credentials', async () => {
    const res = await fetch(`${rt.gatewayUrl}/system/secrets`, { headers: auth(rt) });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain('secret-value');
    expect(text).not.toContain('not-a-real-secret');
    const list = JSON.parse(text) as unknown[];
    const names = list.map((s) => goStrings(s, ['name', 'namespace', 'value']).name);
    expect(names).toContain('cdc-database-url');
    expect(names).toContain('fixture-secret');
    expect(names.filter((n) => n?.startsWith('basic-auth'))).toEqual([]);
    for (const s of list) expect(s).toEqual({ name: expect.any(String), namespace: 'openfaas-fn' });
    expect((await fetch(`${rt.gatewayUrl}/system/secrets?namespace=other`, { headers: auth(rt) })).status).toBe(404);
    // Creating one through the API is refused with where the files go.
    const create = await fetch(`${rt.gatewayUrl}/system/secrets`, { method: 'POST', headers: auth(rt), body: JSON.stringify({ name: 'x', value: 'y' }) });
    expect(create.status).toBe(501);
    expect(await create.text()).toContain(join(dir, 'secrets'));
  });
});

describe('faas-cli logs', () => {
  it('answers faas-cli’s default request (tail=-1, no format) with logs.Message lines', async () => {
    await fetch(`${rt.gatewayUrl}/function/echo`);
    await sleep(100);
    const res = await fetch(`${rt.gatewayUrl}/system/logs?name=echo&follow=false&tail=-1`, { headers: auth(rt) });
    expect(res.status).toBe(200);
    const msgs = decodeMessages(await res.text());
    const listening = msgs.find((m) => m.text === 'listening' || m.text.includes('"listening"'));
    expect(listening).toBeDefined();
    expect(listening).toMatchObject({ name: 'echo', namespace: 'openfaas-fn' });
    expect(listening!.instance).toMatch(/^echo-\d+$/);
    // instance and since filter as faas-cli asks.
    const one = decodeMessages(
      await (await fetch(`${rt.gatewayUrl}/system/logs?name=echo&follow=false&tail=-1&instance=${listening!.instance}`, { headers: auth(rt) })).text(),
    );
    expect(one.length).toBeGreaterThan(0);
    expect(one.every((m) => m.instance === listening!.instance)).toBe(true);
    expect(await (await fetch(`${rt.gatewayUrl}/system/logs?name=echo&follow=false&tail=-1&instance=echo-999`, { headers: auth(rt) })).text()).toBe('');
    const future = new Date(Date.now() + 3_600_000).toISOString().replace(/\.\d+Z$/, 'Z');
    expect(await (await fetch(`${rt.gatewayUrl}/system/logs?name=echo&follow=false&tail=-1&since=${future}`, { headers: auth(rt) })).text()).toBe('');
    expect((await fetch(`${rt.gatewayUrl}/system/logs?name=echo&namespace=other`, { headers: auth(rt) })).status).toBe(404);
  });

  it('follows (faas-cli’s --tail, its default): new lines stream until the client goes away', { timeout: 30_000 }, async () => {
    const ctrl = new AbortController();
    const res = await fetch(`${rt.gatewayUrl}/system/logs?name=echo&follow=true&tail=1`, { headers: auth(rt), signal: ctrl.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let seen = '';
    // A second replica starts and logs "listening" while we read.
    const scale = await fetch(`${rt.gatewayUrl}/system/scale-function/echo`, {
      method: 'POST',
      headers: auth(rt),
      body: JSON.stringify({ serviceName: 'echo', replicas: 2 }),
    });
    expect(scale.status).toBe(202);
    const complete = () => decodeMessages(seen.slice(0, seen.lastIndexOf('\n') + 1));
    const started = () => complete().some((m) => m.instance === 'echo-2' && m.text.includes('listening'));
    const end = Date.now() + 20_000;
    // One read in flight at a time: a read left behind by a timed-out wait would take the next chunk
    // and drop it (the reader answers queued reads in order).
    let reading: ReturnType<typeof reader.read> | null = null;
    while (Date.now() < end && !started()) {
      reading ??= reader.read();
      const chunk = await Promise.race([reading, sleep(1000).then(() => null)]);
      if (chunk === null) continue;
      reading = null;
      if (chunk.done) break;
      seen += dec.decode(chunk.value, { stream: true });
    }
    ctrl.abort();
    expect(started(), seen).toBe(true);
    await fetch(`${rt.gatewayUrl}/system/scale-function/echo`, {
      method: 'POST',
      headers: auth(rt),
      body: JSON.stringify({ serviceName: 'echo', replicas: 1 }),
    });
  });
});
