// The runtime's own refusals on the hospital ports (infra/runtime/ports.ts refusalBody): in the
// configuration port's shape for what its function would have answered (docs/config-bundles.md
// "Answers"), the runtime's envelope everywhere else.
import { describe, expect, it } from 'vitest';
import { defaultHospitalPorts, refusalBody, routeHospital } from '../../infra/runtime/ports.js';

const ports = defaultHospitalPorts({});
const port = (key: string) => ports.find((p) => p.key === key)!;
const declared = { functions: new Map([['config', port('config').port]]), resources: new Map<string, string>() };

describe('refusals the runtime makes on a port', () => {
  it('on the configuration port: a malformed path and a function starting in the port’s shape', () => {
    const config = port('config');
    for (const [url, status, code] of [
      ['/bundles/%zz', 400, 'invalid-request'],
      ['/function/config/bundles', 503, 'starting'],
    ] as const) {
      const route = routeHospital(url, config, config.port, [], declared);
      expect('status' in route && route.status, url).toBe(status);
      if (!('status' in route)) continue;
      expect(refusalBody(config, route)).toEqual({ error: { code, reason: expect.any(String) }, applied: false });
    }
  });

  it('a port no function serves, and the other ports: the runtime’s envelope', () => {
    const config = port('config');
    const none = routeHospital('/bundles', config, config.port, []);
    expect('status' in none && refusalBody(config, none)).toMatchObject({ error: 'no_function', role: 'config' });
    const data = port('data');
    const bad = routeHospital('/hclient/emr/receive/%zz', data, data.port, []);
    expect('status' in bad && refusalBody(data, bad)).toMatchObject({ error: 'bad_request', errorCode: expect.any(String) });
  });

  it("a function of another port or none, asked for by name: 404 naming it, not the port's root function", () => {
    const data = port('data');
    const patient = { name: 'patient', spec: { annotations: { 'com.cdc-front.port': String(data.port), 'com.cdc-front.root': 'true' } } };
    const services = [patient] as unknown as Parameters<typeof routeHospital>[3];
    for (const url of ['/function/push', '/function/backup/run?x=1', '/function/nosuch']) {
      const route = routeHospital(url, data, data.port, services, declared);
      expect('status' in route && route.status, url).toBe(404);
      if (!('status' in route)) continue;
      expect(refusalBody(data, route), url).toMatchObject({ error: 'not_found', desc: expect.stringMatching(/\(function \w+ is not served on this port\)$/) });
    }
    // The port's own function by name, and its other paths, still reach it.
    for (const url of ['/function/patient/openapi.json', '/openapi.json'])
      expect(routeHospital(url, data, data.port, services, declared), url).toMatchObject({ svc: patient });
  });
});
