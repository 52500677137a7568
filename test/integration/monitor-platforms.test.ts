// The monitoring port (monitor, in process) on a private, migrated database of its own (a bundle
// changes what every function reads: config-bundles-helpers): the platforms it names and probes are
// the ones push sends to — each enabled destination at its NATIONAL_URL / PROVINCIAL_URL setting
// until a configuration bundle's platforms section moves it, then at the bundle's address; a disabled
// destination is not probed. And the activation in force is in its status answer. Real sockets: two
// small HTTP servers on loopback stand for the platforms and count the connections they get.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../infra/runtime/replica.js';
import { activate, CODE_FORMAT, verifyCode } from '../../shared/activation/index.js';
import { signBundle, verifyBundleSignature } from '../../shared/configbundle/sign.js';
import { applyBundle, parseBundle } from '../../shared/configbundle/store.js';
import { ComponentsSchema, type Components } from '../../shared/monitor/components.js';
import { FrontStatusSchema, type FrontStatus } from '../../shared/status/index.js';
import { monitorTokenDir } from '../setup/monitor-token.js';
import { privateDatabase } from '../setup/db.js';
import { bundleDoc, platformKey } from './config-bundles-helpers.js';

/** A loopback HTTP server that counts the TCP connections it accepted (the probe sends no request). */
async function countingServer(): Promise<{ server: Server; url: string; connections: () => number }> {
  let n = 0;
  const server = createServer((_req, res) => res.end('ok'));
  server.on('connection', () => {
    n += 1;
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/uplink`, connections: () => n };
}

const p = await privateDatabase('monitor_platforms');
const closedPort = await freePort(); // the national setting: nothing listens there
const provincial = await countingServer();
const moved = await countingServer();
process.env.DATABASE_URL = p.url;
process.env.NATIONAL_URL = `http://127.0.0.1:${closedPort}/`;
process.env.PROVINCIAL_URL = provincial.url;
const platform = monitorTokenDir();
const { default: monitor } = await import('../../functions/monitor/handler.js');

beforeAll(async () => {
  await monitor.init?.();
  // The migration enables national only; provincial enabled here, at its setting.
  await p.db.query(`INSERT INTO uplink_destination (name, kind, enabled) VALUES ('provincial', 'provincial', true)`);
});
afterAll(async () => {
  await monitor.close?.();
  await p.drop();
  provincial.server.close();
  moved.server.close();
});

async function get(path: string): Promise<Response> {
  const res = await monitor.app.request(path, { headers: platform.headers });
  expect(res.status, path).toBe(200);
  return res;
}
const comps = async (): Promise<Components> => ComponentsSchema.parse(await (await get('/components')).json());
const status = async (): Promise<FrontStatus> => FrontStatusSchema.parse(await (await get('/status')).json());
const detail = (c: Components, name: string) => c.components.find((x) => x.name === name)?.detail;

describe('platforms the monitor probes', () => {
  it('without a bundle: each enabled destination at its <NAME>_URL setting', async () => {
    const before = provincial.connections();
    const c = await comps();
    expect(c.platforms.find((x) => x.destination === 'national')).toEqual({
      destination: 'national',
      host: `127.0.0.1:${closedPort}`,
      url: `http://127.0.0.1:${closedPort}/`,
      source: 'setting',
      connectMs: null,
      error: 'ECONNREFUSED',
    });
    expect(c.platforms.find((x) => x.destination === 'provincial')).toMatchObject({ url: provincial.url, source: 'setting', error: null });
    expect(provincial.connections()).toBeGreaterThan(before);
    expect(detail(c, 'platform:national')).toBe(`circuit closed; sends to http://127.0.0.1:${closedPort}/ (NATIONAL_URL)`);
    expect(detail(c, 'platform:provincial')).toBe(`circuit closed; sends to ${provincial.url} (PROVINCIAL_URL)`);
  });

  it('a bundle moving the national platform: probed at the new address; provincial, disabled by it, no longer probed', async () => {
    const signer = platformKey();
    const doc = bundleDoc(1, {
      platforms: [{ name: 'national', kind: 'national', url: moved.url, publicKey: platformKey().publicKeyPem }],
    });
    const signed = signBundle(doc, signer.key);
    verifyBundleSignature(signed, [signer.key.pub]);
    await applyBundle(p.db, { text: doc, signature: signed.sig.value, keyId: signed.sig.keyId, bundle: parseBundle(doc) }, { by: 'test' });
    // The bundle's platforms are the destinations: provincial, not among them, is disabled.
    expect((await p.db.query(`SELECT name, enabled FROM uplink_destination ORDER BY name`)).rows).toEqual([
      { name: 'national', enabled: true },
      { name: 'provincial', enabled: false },
    ]);

    const movedBefore = moved.connections();
    const provincialBefore = provincial.connections();
    const c = await comps();
    const national = c.platforms.find((x) => x.destination === 'national')!;
    expect(national).toMatchObject({ host: `127.0.0.1:${new URL(moved.url).port}`, url: moved.url, source: 'bundle', error: null });
    expect(national.connectMs).toEqual(expect.any(Number));
    expect(moved.connections()).toBeGreaterThan(movedBefore);
    expect(c.platforms.map((x) => x.destination)).toEqual(['national']);
    expect(provincial.connections()).toBe(provincialBefore);
    expect(detail(c, 'platform:national')).toBe(`circuit closed; sends to ${moved.url} (configuration bundle)`);
    expect(c.components.find((x) => x.name === 'platform:provincial')).toMatchObject({ state: 'unknown', detail: '未启用 (disabled)' });

    const metrics = await (await get('/metrics')).text();
    expect(metrics).toMatch(/^cdc_platform_reachable\{destination="national"\} 1$/m);
    expect(metrics).not.toMatch(/^cdc_platform_reachable\{destination="provincial"\}/m);
  });

  it('an enabled destination with neither a bundle address nor a setting is named, not probed', async () => {
    await p.db.query(`INSERT INTO uplink_destination (name, kind, enabled) VALUES ('city', 'provincial', true)`);
    try {
      const c = await comps();
      expect(c.platforms.find((x) => x.destination === 'city')).toEqual({
        destination: 'city',
        host: '',
        url: null,
        source: null,
        connectMs: null,
        error: 'no address: no configuration bundle names it and CITY_URL is not set here',
      });
    } finally {
      await p.db.query(`DELETE FROM uplink_destination WHERE name = 'city'`);
    }
  });
});

describe('the activation in the status answer', () => {
  it('none, then the test network with the org and the front id of the code applied', async () => {
    expect((await status()).activation).toEqual({ network: 'none', orgCode: null, frontId: null, activatedAt: null });
    const key = platformKey();
    const text = JSON.stringify({
      format: CODE_FORMAT,
      orgCode: '440106888',
      frontId: 'FRONT-MON',
      network: 'test',
      issuedAt: new Date().toISOString(),
      issuer: '国家平台(测试)',
    });
    const a = await activate(p.db, verifyCode(signBundle(text, key.key, CODE_FORMAT), [key.key.pub]), 'test');
    const s = await status();
    expect(s.activation).toEqual({ network: 'test', orgCode: '440106888', frontId: 'FRONT-MON', activatedAt: a.activatedAt.toISOString() });
  });
});
