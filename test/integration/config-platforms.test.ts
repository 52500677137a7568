// The platforms section of a configuration bundle (docs/config-bundles.md §5) on a private, migrated
// database: once applied through the config function, its platforms are the destinations the outbox
// fills and the push sends to — each at the address and with the SM2 key the bundle gives, whatever
// <NAME>_URL and the key files say — a platform the bundle leaves out is disabled (its rows kept), and
// a rollback brings the former destinations back. Two platform simulators on loopback, each with a key
// of its own, receive what the push sends.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPlatformSimulator, type PlatformHandle } from '../../infra/simulators/platform.js';
import { samplePatient } from '../../infra/simulators/his.js';
import { emrPatientInfo } from '../../schemas/index.js';
import type { FaasFunction } from '../../shared/fn/index.js';
import { upsertRecord } from '../../shared/ingest/index.js';
import { destinations } from '../../shared/uplink/config.js';
import { pushDestination } from '../../shared/uplink/push.js';
import { generateSm2KeyPair } from '../../shared/uplink/sm.js';
import { bundleDoc, configFunctionOn, platformKey, signed } from './config-bundles-helpers.js';

const TOKEN = 'cfg-platforms-token-0123456789abcdef';
const signer = platformKey();
const keyA = generateSm2KeyPair();
const keyB = generateSm2KeyPair();
let fn: FaasFunction;
let db: pg.Pool;
let close: (() => Promise<void>) | undefined;
let national: PlatformHandle;
let province: PlatformHandle;
// No <NAME>_URL and no key files: whatever a destination gets, it gets from the bundle.
const env = { CDC_ENV: 'development' };
const noSecrets = () => undefined;

beforeAll(async () => {
  ({ fn, db, close } = await configFunctionOn('cfgp', TOKEN, signer.publicKeyPem));
  national = await startPlatformSimulator({ role: 'national', keyPem: keyA.privateKeyPem });
  province = await startPlatformSimulator({ role: 'provincial', keyPem: keyB.privateKeyPem });
});
afterAll(async () => {
  await national?.close();
  await province?.close();
  await close?.();
});

const auth = { authorization: `Bearer ${TOKEN}` };
const post = (path: string, body: string) => fn.app.request(path, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body });
const rows = async () => (await db.query('SELECT name, kind, enabled, resources FROM uplink_destination ORDER BY name')).rows;
const both = () => [
  { name: 'national', kind: 'national', url: national.url, publicKey: keyA.publicKeyPem },
  { name: 'prov_gd', kind: 'provincial', url: province.url, publicKey: keyB.publicKeyPem, resources: ['emrPatientInfo'] },
];
const sendAll = async () => {
  const { ready } = await destinations(db as never, env, noSecrets);
  for (const d of ready) expect(await pushDestination(db as never, d)).toMatchObject({ failed: 0 });
  return ready;
};

describe('platforms from a configuration bundle', () => {
  it('before any bundle, a destination without <NAME>_URL is not configured', async () => {
    const { ready, unconfigured } = await destinations(db as never, env, noSecrets);
    expect(ready).toEqual([]);
    expect(unconfigured).toEqual([{ name: 'national', reason: 'NATIONAL_URL is not set' }]);
  });

  it('a bundle’s platforms become the destinations, each at its address with its key, and receive the records', async () => {
    const res = await post('/bundles', signed(bundleDoc(1, { platforms: both() }), signer.key));
    expect(res.status, await res.clone().text()).toBe(201);
    expect(await rows()).toEqual([
      { name: 'national', kind: 'national', enabled: true, resources: null },
      { name: 'prov_gd', kind: 'provincial', enabled: true, resources: 'emrPatientInfo' },
    ]);
    const org = '440106123';
    const rec = samplePatient({ orgCode: org, id: 'cfgp-1' });
    await upsertRecord(db as never, emrPatientInfo, rec, { callId: null, test: false, now: new Date() });
    const ready = await sendAll();
    expect(ready.map((d) => [d.name, d.url])).toEqual([
      ['national', national.url],
      ['prov_gd', province.url],
    ]);
    // Each simulator opened the envelope with its own private key: the bundle's public key was used.
    expect(national.records().filter((r) => r.orgCode === org && r.id === 'cfgp-1')).toHaveLength(1);
    expect(province.records().filter((r) => r.orgCode === org && r.id === 'cfgp-1')).toHaveLength(1);
  });

  it('a platform the next bundle leaves out is disabled, its rows kept; a rollback enables it again', async () => {
    const res = await post('/bundles', signed(bundleDoc(2, { platforms: [both()[0]] }), signer.key));
    expect(res.status, await res.clone().text()).toBe(201);
    expect((await rows()).map((r) => [r.name, r.enabled])).toEqual([
      ['national', true],
      ['prov_gd', false],
    ]);
    const org = '440106123';
    await upsertRecord(db as never, emrPatientInfo, samplePatient({ orgCode: org, id: 'cfgp-2' }), { callId: null, test: false, now: new Date() });
    expect((await sendAll()).map((d) => d.name)).toEqual(['national']);
    expect(province.records().filter((r) => r.id === 'cfgp-2')).toHaveLength(0);
    expect((await db.query("SELECT count(*)::int AS n FROM outbox WHERE destination = 'prov_gd'")).rows[0].n).toBe(1);

    const back = await post('/bundles/1/rollback', JSON.stringify({ reason: '省平台恢复' }));
    expect(back.status, await back.clone().text()).toBe(200);
    expect((await rows()).map((r) => [r.name, r.enabled])).toEqual([
      ['national', true],
      ['prov_gd', true],
    ]);
    await upsertRecord(db as never, emrPatientInfo, samplePatient({ orgCode: org, id: 'cfgp-3' }), { callId: null, test: false, now: new Date() });
    await sendAll();
    expect(province.records().filter((r) => r.id === 'cfgp-3')).toHaveLength(1);
  });

  it('a platform named disabled is paused: records queue for it and leave once a bundle or a rollback enables it again', async () => {
    const org = '440106123';
    const ids = (rows: Array<{ id: string }>, prefix: string) => rows.filter((r) => r.id.startsWith(prefix)).map((r) => r.id);
    const national_ = () => ids(national.records(), 'cfgp-p');
    const store = (id: string) =>
      upsertRecord(db as never, emrPatientInfo, samplePatient({ orgCode: org, id }), { callId: null, test: false, now: new Date() });
    const off = [{ ...both()[0]!, enabled: false }, both()[1]!];
    expect((await post('/bundles', signed(bundleDoc(3, { platforms: off }), signer.key))).status).toBe(201);
    expect((await db.query("SELECT enabled, paused FROM uplink_destination WHERE name = 'national'")).rows).toEqual([{ enabled: false, paused: true }]);
    await store('cfgp-p1');
    expect((await sendAll()).map((d) => d.name)).toEqual(['prov_gd']);
    expect(national_()).toEqual([]);
    const waiting = await db.query("SELECT state FROM outbox WHERE destination = 'national' AND record_id = 'cfgp-p1'");
    expect(waiting.rows).toEqual([{ state: 'pending' }]);

    // Enabled again by the next bundle: what waited leaves, once.
    expect((await post('/bundles', signed(bundleDoc(4, { platforms: both() }), signer.key))).status).toBe(201);
    await sendAll();
    expect(national_()).toEqual(['cfgp-p1']);

    // A rollback to the disabling version (the token alone) pauses too: nothing is lost either.
    expect((await post('/bundles/3/rollback', JSON.stringify({ reason: '误操作' }))).status).toBe(200);
    await store('cfgp-p2');
    await sendAll();
    expect(national_()).toEqual(['cfgp-p1']);
    expect((await post('/bundles/4/rollback', JSON.stringify({ reason: '恢复' }))).status).toBe(200);
    await sendAll();
    expect(national_()).toEqual(['cfgp-p1', 'cfgp-p2']);
  });

  it('a platform key the simulator does not hold is refused by the platform: the address and key really come from the bundle', async () => {
    const wrong = [{ ...both()[0]!, publicKey: keyB.publicKeyPem }];
    expect((await post('/bundles', signed(bundleDoc(5, { platforms: wrong }), signer.key))).status).toBe(201);
    const org = '440106123';
    await upsertRecord(db as never, emrPatientInfo, samplePatient({ orgCode: org, id: 'cfgp-4' }), { callId: null, test: false, now: new Date() });
    const { ready } = await destinations(db as never, env, noSecrets);
    const r = await pushDestination(db as never, ready.find((d) => d.name === 'national')!);
    expect(r.sent).toBe(0);
    expect(national.records().filter((x) => x.id === 'cfgp-4')).toHaveLength(0);
  });
});
