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
});
