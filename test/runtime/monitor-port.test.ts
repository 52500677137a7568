// The monitoring port (8883) as the national platform meets it, through the running runtime: the
// token the runtime made for the installation opens it, nothing else does (/healthz aside); the
// components and the Prometheus page answer, and the page carries every function's invocations as
// the runtime's gateway counted them over all replicas.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ComponentsSchema } from '../../shared/monitor/components.js';
import { uniqueId, uniqueOrg } from '../setup/db.js';
import { startStackRuntime, type StackRuntime } from '../setup/stack-runtime.js';

let front: StackRuntime;
let token: string;
let monitor: string;

beforeAll(async () => {
  front = await startStackRuntime('monitor-port');
  token = readFileSync(join(front.rt.secretsDir, 'monitor-token'), 'utf8').trim();
  monitor = front.rt.portUrls.monitor!;
}, 120_000);
afterAll(async () => {
  await front?.close();
});

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe('monitoring port through the runtime', () => {
  it('the runtime made a token of its own for the installation, 0600', () => {
    expect(token.length).toBeGreaterThanOrEqual(32);
  });

  it('refuses every route but /healthz without the token, or with a wrong one', async () => {
    for (const path of ['/', '/status', '/components', '/metrics']) {
      const none = await fetch(`${monitor}${path}`);
      expect(none.status, path).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
      const body = (await none.json()) as { errorCode: string; errorMsg?: string };
      expect(body.errorCode).toBe('UNAUTHENTICATED');
      const wrong = await fetch(`${monitor}${path}`, { headers: bearer(token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A')) });
      expect(wrong.status, path).toBe(401);
      // A HIS caller admitted from loopback is not the platform.
      const his = await fetch(`${monitor}${path}`, { headers: { 'x-api-key': 'anything' } });
      expect(his.status, path).toBe(401);
    }
    expect((await fetch(`${monitor}/healthz`)).status).toBe(200);
  });

  it('is read-only: another method on one of its paths is 405 naming GET and HEAD, an unknown path 404', async () => {
    for (const path of ['/', '/status', '/components', '/metrics', '/healthz']) {
      for (const method of ['POST', 'PUT', 'DELETE']) {
        const res = await fetch(`${monitor}${path}`, { method, headers: bearer(token) });
        expect(res.status, `${method} ${path}`).toBe(405);
        expect(res.headers.get('allow'), `${method} ${path}`).toBe('GET, HEAD');
        expect(((await res.json()) as { errorCode: string }).errorCode).toBe('METHOD_NOT_ALLOWED');
      }
    }
    expect((await fetch(`${monitor}/nosuch`, { method: 'POST', headers: bearer(token) })).status).toBe(404);
  });

  it('answers the status and the components with the token', async () => {
    const s = await fetch(`${monitor}/status`, { headers: bearer(token) });
    expect(s.status).toBe(200);
    // A fresh installation: not activated yet (docs/activation.md).
    expect(await s.json()).toMatchObject({ database: { reachable: true }, activation: { network: 'none', orgCode: null, frontId: null } });
    const c = await fetch(`${monitor}/components`, { headers: bearer(token) });
    expect(c.status).toBe(200);
    const comp = ComponentsSchema.parse(await c.json());
    const names = comp.components.map((x) => x.name);
    expect(names).toEqual(
      expect.arrayContaining(['database', 'object-store', 'platform:national', 'schedule:push', 'schedule:day-close', 'schedule:backup', 'dbsync']),
    );
    expect(comp.components.find((x) => x.name === 'database')!.state).toBe('ok');
    expect(comp.server.cpus).toBeGreaterThan(0);
    expect(comp.server.disk?.totalBytes).toBeGreaterThan(0);
    // The test's national platform is a closed port: probed, and said to be unreachable.
    const national = comp.platforms.find((p) => p.destination === 'national')!;
    expect(national.connectMs).toBeNull();
    expect(national.error).toBe('ECONNREFUSED');
    // No configuration bundle here: the address is NATIONAL_URL, as push's, and its component names it.
    expect(national.source).toBe('setting');
    expect(national.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\//);
    expect(comp.components.find((x) => x.name === 'platform:national')!.detail).toContain(`sends to ${national.url} (NATIONAL_URL)`);
  });

  it('serves Prometheus text with the front’s figures and every function’s invocations from the runtime', async () => {
    const org = uniqueOrg();
    const rec = await fetch(`${front.rt.portUrls.data}/hclient/emr/receive/emrPatientInfo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        orgCode: org,
        id: uniqueId('mon'),
        patientName: '测试',
        genderCode: '1',
        birthDate: '1980-01-01',
        idCardTypeCode: '01',
        idCard: '110101198001010011',
      }),
    });
    expect(rec.status).toBeLessThan(500);
    const res = await fetch(`${monitor}/metrics`, { headers: bearer(token) });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toMatch(/^cdc_database_up 1$/m);
    expect(text).toMatch(/^cdc_component_state\{component="database"\} 1$/m);
    expect(text).toMatch(/^cdc_front_info\{version="[^"]+"\} 1$/m);
    expect(text).toMatch(/^cdc_platform_reachable\{destination="national"\} 0$/m);
    expect(text).toMatch(/^cdc_runtime_metrics_up 1$/m);
    expect(text).toMatch(new RegExp(`^gateway_function_invocation_total\\{function_name="patient",code="${rec.status}"\\} [1-9]`, 'm'));
    expect(text).toMatch(/^gateway_service_count\{function_name="monitor"\} 1$/m);
    expect(text).toMatch(/^gateway_functions_seconds_count\{function_name="patient",code="\d+"\} [1-9]/m);
    // Nothing personal: the record's name and ID number are not in the page.
    expect(text).not.toContain('110101198001010011');
  });
});
