// The front's report of itself to the provincial platform (shared/uplink/self-report.ts), on real
// sockets and the real database: sealed and signed like any batch, over HTTPS with the hospital's
// client certificate to the provincial simulator; the faults it names, and on the next report the
// ones fixed since; not before its interval; a platform outage is recorded, never thrown; the
// national platform gets none. It carries the activation in force: none on the shared test database
// (never activated), the network, org and front id on a private one a test code activated.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDb, uniqueId, privateDatabase } from '../setup/db.js';
import { ensureDevUplinkFiles, type DevUplinkFiles } from '../../infra/dev/certs.js';
import { startPlatformSimulator, type PlatformHandle } from '../../infra/simulators/platform.js';
import { destinationFromEnv, type Destination } from '../../shared/uplink/config.js';
import { FRONT_REPORT_RESOURCE, FrontReportPayload, reportToProvince } from '../../shared/uplink/self-report.js';
import { activate, CODE_FORMAT, verifyCode } from '../../shared/activation/index.js';
import { signBundle } from '../../shared/configbundle/sign.js';
import { platformKey } from './config-bundles-helpers.js';

const db = testDb({ max: 4 });
let dir: string;
let keys: DevUplinkFiles;
let national: PlatformHandle;
let provincial: PlatformHandle;
const names: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cdc-report-'));
  keys = ensureDevUplinkFiles(join(dir, 'secrets'), 'h-test');
  const tls = { cert: keys.read('uplink-platform-tls-cert'), key: keys.read('uplink-platform-tls-key'), ca: keys.read('uplink-ca') };
  const hospitals = [{ name: 'h-test', publicKeyPem: keys.read('uplink-hospital-pubkey') }];
  national = await startPlatformSimulator({ role: 'national', keyPem: keys.read('uplink-national-key'), hospitals, tls });
  provincial = await startPlatformSimulator({ role: 'provincial', keyPem: keys.read('uplink-provincial-key'), hospitals, tls });
});
afterAll(async () => {
  await db.query('DELETE FROM front_report WHERE destination = ANY($1::varchar[])', [names]);
  await db.query('DELETE FROM alert_event WHERE destination = ANY($1::varchar[])', [names]);
  await db.query('DELETE FROM uplink_destination WHERE name = ANY($1::varchar[])', [names]);
  await national?.close();
  await provincial?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function destination(kind: 'national' | 'provincial', on: Pick<typeof db, 'query'> = db): Promise<Destination> {
  const name = uniqueId('rp').replace(/-/g, '_').slice(0, 40);
  names.push(name);
  await on.query(`INSERT INTO uplink_destination (name, kind, enabled) VALUES ($1, $2, false)`, [name, kind]);
  const row = (
    await on.query<{ name: string; kind: string; resources: string | null }>(`SELECT name, kind, resources FROM uplink_destination WHERE name = $1`, [name])
  ).rows[0]!;
  const sim = kind === 'national' ? national : provincial;
  const secret = (s: string) => {
    if (s === `uplink-${name}-pubkey`) return keys.read(`uplink-${kind}-pubkey`);
    if (s.startsWith(`uplink-${name}-`)) return undefined;
    try {
      return keys.read(s);
    } catch {
      return undefined;
    }
  };
  return destinationFromEnv(row, { [`${name.toUpperCase()}_URL`]: sim.url, UPLINK_SENDER: 'h-test' }, secret);
}

const reports = (sim: PlatformHandle, org: string) => sim.records().filter((r) => r.resource === FRONT_REPORT_RESOURCE && r.orgCode === org);

describe('the front reports itself to the province', () => {
  it('names a fault, then says it was fixed; waits for its interval; only the province gets it', async () => {
    const prov = await destination('provincial');
    const nat = await destination('national');
    const org = uniqueId('org').slice(0, 30);
    // A backlog alert raised for this test's destination: a fault the report must name.
    await db.query(`INSERT INTO alert_event (destination, kind, pending, oldest_age_s, message) VALUES ($1, 'raise', 1500, 7200, 'backlog of 1500 records')`, [
      prov.name,
    ]);
    const t0 = new Date();
    const first = await reportToProvince(db, [nat, prov], { intervalMin: 5, orgCode: org }, t0);
    expect(first).toEqual([{ destination: prov.name, sent: true, faults: expect.any(Number), fixed: expect.any(Number) }]);
    const got = reports(provincial, org);
    expect(got).toHaveLength(1);
    const p1 = FrontReportPayload.parse(got[0]!.payload);
    expect(p1).toMatchObject({ online: true, version: expect.any(String), reportedAt: t0.toISOString() });
    expect(p1.activation).toEqual({ network: 'none', orgCode: null, frontId: null, activatedAt: null });
    expect(p1.faults).toContainEqual({ component: `backlog:${prov.name}`, state: 'degraded', detail: 'backlog of 1500 records' });
    expect(got[0]!.sender).toBe('h-test');
    expect(reports(national, org)).toHaveLength(0);

    // Within the interval: nothing sent.
    expect(await reportToProvince(db, [prov], { intervalMin: 5, orgCode: org }, new Date(t0.getTime() + 60_000))).toEqual([
      { destination: prov.name, sent: false, skipped: 'not due' },
    ]);
    expect(reports(provincial, org)).toHaveLength(1);

    // An operator wakes the platform ("retry now", audited), the alert clears; the next report names
    // it as fixed since the first report, by the operator, and says what was done.
    await db.query(`INSERT INTO console_audit (at, username, action, detail) VALUES ($1, 'op-report', 'retry-now', $2)`, [
      new Date(t0.getTime() + 2 * 60_000),
      prov.name,
    ]);
    await db.query(`INSERT INTO alert_event (destination, kind, pending, oldest_age_s, message) VALUES ($1, 'clear', 0, NULL, 'backlog cleared')`, [prov.name]);
    const t1 = new Date(t0.getTime() + 6 * 60_000);
    const second = await reportToProvince(db, [prov], { intervalMin: 5, orgCode: org }, t1);
    expect(second[0]).toMatchObject({ sent: true });
    const p2 = FrontReportPayload.parse(reports(provincial, org)[1]!.payload);
    expect(p2.faults.map((f) => f.component)).not.toContain(`backlog:${prov.name}`);
    expect(p2.fixed).toContainEqual({
      component: `backlog:${prov.name}`,
      state: 'degraded',
      detail: 'backlog of 1500 records',
      since: t0.toISOString(),
      fixedBy: 'operator',
    });
    expect(p2.actions).toContainEqual({ action: 'retry-now', count: expect.any(Number), lastAt: expect.any(String) });
    expect(JSON.stringify(p2.actions)).not.toContain('op-report'); // never who
  });

  it('a fault that went away with no operator change in between is fixed automatically', async () => {
    const prov = await destination('provincial');
    const org = uniqueId('org').slice(0, 30);
    await db.query(`INSERT INTO alert_event (destination, kind, pending, oldest_age_s, message) VALUES ($1, 'raise', 1200, 7200, 'backlog of 1200 records')`, [
      prov.name,
    ]);
    // Reports a day ahead: no audit row of any other test falls between them.
    const t0 = new Date(Date.now() + 86_400_000);
    expect((await reportToProvince(db, [prov], { intervalMin: 5, orgCode: org }, t0))[0]).toMatchObject({ sent: true });
    await db.query(`INSERT INTO alert_event (destination, kind, pending, oldest_age_s, message) VALUES ($1, 'clear', 0, NULL, 'backlog cleared')`, [prov.name]);
    expect((await reportToProvince(db, [prov], { intervalMin: 5, orgCode: org }, new Date(t0.getTime() + 6 * 60_000)))[0]).toMatchObject({ sent: true });
    const p2 = FrontReportPayload.parse(reports(provincial, org)[1]!.payload);
    expect(p2.fixed).toContainEqual(expect.objectContaining({ component: `backlog:${prov.name}`, fixedBy: 'automatic' }));
    expect(p2.actions).toEqual([]);
  });

  it('a platform outage is recorded and returned, never thrown; the next report goes after the interval', async () => {
    const prov = await destination('provincial');
    const org = uniqueId('org').slice(0, 30);
    await provincial.fault({ mode: 'down500', times: 1 });
    const t0 = new Date();
    const r = await reportToProvince(db, [prov], { intervalMin: 5, orgCode: org }, t0);
    expect(r).toEqual([{ destination: prov.name, sent: false, faults: expect.any(Number), fixed: 0, error: `${prov.name} answered HTTP 500` }]);
    const row = (await db.query<{ ok: boolean; error: string }>('SELECT ok, error FROM front_report WHERE destination = $1', [prov.name])).rows;
    expect(row).toEqual([{ ok: false, error: `${prov.name} answered HTTP 500` }]);
    // A failed report still counts as the interval's try (a platform that is down is not hammered
    // every minute): the next one goes after the interval.
    const later = await reportToProvince(db, [prov], { intervalMin: 5, orgCode: org }, new Date(t0.getTime() + 5 * 60_000));
    expect(later[0]).toMatchObject({ sent: true });
    expect(reports(provincial, org)).toHaveLength(1);
  });

  it('names the network, org and front id of the activation in force', async () => {
    // Activation changes what every function reads: a database of this test's own.
    const p = await privateDatabase('self_report_act');
    try {
      const prov = await destination('provincial', p.db);
      const key = platformKey();
      const text = JSON.stringify({
        format: CODE_FORMAT,
        orgCode: '440106999',
        frontId: 'FRONT-RP',
        network: 'test',
        issuedAt: new Date().toISOString(),
        issuer: '国家平台(测试)',
      });
      const a = await activate(p.db, verifyCode(signBundle(text, key.key, CODE_FORMAT), [key.key.pub]), 'test');
      const org = uniqueId('org').slice(0, 30);
      expect(await reportToProvince(p.db, [prov], { intervalMin: 5, orgCode: org })).toMatchObject([{ destination: prov.name, sent: true }]);
      const got = reports(provincial, org);
      expect(got).toHaveLength(1);
      expect(FrontReportPayload.parse(got[0]!.payload).activation).toEqual({
        network: 'test',
        orgCode: '440106999',
        frontId: 'FRONT-RP',
        activatedAt: a.activatedAt.toISOString(),
      });
    } finally {
      await p.drop();
    }
  });

  it('interval 0 switches it off', async () => {
    const prov = await destination('provincial');
    expect(await reportToProvince(db, [prov], { intervalMin: 0, orgCode: 'x' })).toEqual([]);
  });
});
