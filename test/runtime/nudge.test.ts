// The receive functions' nudge reaches the gateway under both runtimes. In a container on faasd
// 127.0.0.1:8080 is the function's own watchdog (it answers 404 for /async-function/push), so
// stack.yml's default names the gateway as faasd's shared hosts file does (`gateway:8080`), and this
// project's runtime serves that name at its own admin gateway (docs/runtime.md "The gateway's name").
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sample } from '../../infra/simulators/samples.js';
import { resolveHosts } from '../../infra/runtime/service.js';
import { loadStack } from '../../infra/runtime/stack.js';
import { uniqueId, uniqueOrg } from '../setup/db.js';
import { startStackRuntime, type StackRuntime } from '../setup/stack-runtime.js';
import { basicAuthHeader } from '../../shared/http/basic.js';

describe('the gateway by name', () => {
  const hosts = new Map([
    ['gateway', '127.0.0.1:41234'],
    ['gateway.openfaas', '127.0.0.1:41234'],
  ]);

  it('rewrites the gateway names on port 8080 only, keeping path and query', () => {
    expect(resolveHosts('http://gateway:8080/async-function/push', hosts)).toBe('http://127.0.0.1:41234/async-function/push');
    expect(resolveHosts('http://GATEWAY.openfaas:8080/function/x?a=1#f', hosts)).toBe('http://127.0.0.1:41234/function/x?a=1#f');
    expect(resolveHosts('http://gateway/async-function/push', hosts)).toBe('http://127.0.0.1:41234/async-function/push');
    // Anything else is left as written: another port, another host, not a URL.
    expect(resolveHosts('http://gateway:9090/metrics', hosts)).toBe('http://gateway:9090/metrics');
    expect(resolveHosts('http://gateway.example.cn:8080/x', hosts)).toBe('http://gateway.example.cn:8080/x');
    expect(resolveHosts('gateway:8080', hosts)).toBe('gateway:8080');
    expect(resolveHosts('postgres://gateway:8080/db', hosts)).toBe('postgres://gateway:8080/db');
    expect(resolveHosts('http://gateway:8080/x', undefined)).toBe('http://gateway:8080/x');
  });

  it("stack.yml's default nudge names the gateway, never the function's own loopback", () => {
    const stack = loadStack(join(import.meta.dirname, '../../stack.yml'), {});
    const nudging = stack.functions.filter((f) => 'PUSH_NUDGE_URL' in f.environment);
    // The receive functions, web (the front's own card form stores cards: docs/card-form.md) and
    // dbsync (the staging tables' rows: docs/dbsync.md).
    expect(nudging.map((f) => f.name).sort()).toEqual(['card', 'dbsync', 'death', 'diagnosis', 'exam', 'lab', 'order', 'patient', 'record', 'web']);
    for (const f of nudging) {
      const url = new URL(f.environment.PUSH_NUDGE_URL!);
      expect([f.name, url.hostname, url.port, url.pathname]).toEqual([f.name, 'gateway', '8080', '/async-function/push']);
      const warn = new URL(f.environment.WARNING_NUDGE_URL!);
      expect([f.name, warn.hostname, warn.port, warn.pathname]).toEqual([f.name, 'gateway', '8080', '/async-function/warning']);
    }
  });
});

describe('the nudge through the running runtime', () => {
  let front: StackRuntime;
  beforeAll(async () => {
    // PUSH_NUDGE_URL empty: stack.yml's default (gateway:8080) is what a hospital's server runs.
    front = await startStackRuntime('nudge', { PUSH_NUDGE_URL: '' });
  }, 120_000);
  afterAll(async () => {
    await front?.close();
  });

  const auth = () => ({ authorization: basicAuthHeader(front.rt.credentials) });
  const pushInvocations = async () =>
    ((await (await fetch(`${front.rt.gatewayUrl}/system/function/push`, { headers: auth() })).json()) as { invocationCount: number }).invocationCount;

  it('a record accepted on 8881 invokes the push function (cron off: only the nudge can)', { timeout: 60_000 }, async () => {
    const before = await pushInvocations();
    const res = await fetch(`${front.rt.portUrls.data}/hclient/emr/receive/emrPatientInfo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(sample('emrPatientInfo', { orgCode: uniqueOrg(), id: uniqueId('p'), seed: 3 })),
    });
    expect(res.status, await res.text()).toBe(200);
    const end = Date.now() + 30_000;
    while ((await pushInvocations()) === before && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    expect(await pushInvocations()).toBeGreaterThan(before);
  });
});
