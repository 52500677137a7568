// The acceptance self-test through the running front (docs/acceptance.md): an
// operator signs in on the web port, runs it for an org, and the printable report shows what the real
// system did — each resource posted through the data port in test mode with a key made for the run
// (revoked after it), the mapping gaps, the handshake with the national platform simulator, the
// backups (none yet: not passed), the clocks. Stopping the platform fails the handshake check.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startPlatformSimulator, type PlatformHandle } from '../../infra/simulators/platform.js';
import { createUser } from '../../shared/console/index.js';
import { generateSm2KeyPair } from '../../shared/uplink/sm.js';
import { resources } from '../../schemas/index.js';
import { databaseUrl, uniqueOrg } from '../setup/db.js';
import { startStackRuntime, type StackRuntime } from '../setup/stack-runtime.js';

let front: StackRuntime;
let sim: PlatformHandle;
let db: pg.Pool;
let web: string;
let cookie: string;
let csrf: string;
const operator = `op${Math.random().toString(36).slice(2, 8)}`;
const password = 'acceptance-operator-pw';
const org = uniqueOrg();

beforeAll(async () => {
  sim = await startPlatformSimulator({ role: 'national' });
  front = await startStackRuntime('acceptance', { NATIONAL_URL: sim.url });
  web = front.rt.portUrls.web!;
  db = new pg.Pool({ connectionString: databaseUrl(), max: 2 });
  await createUser(db as never, { username: operator, role: 'operator', password }, 'test');
  const form = await fetch(`${web}/login?next=/acceptance.html`);
  const token = /name="_csrf" value="([^"]+)"/.exec(await form.text())![1]!;
  const formCookie = /cdc_login=[^;]+/.exec(form.headers.get('set-cookie') ?? '')![0];
  const res = await fetch(`${web}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: formCookie },
    body: new URLSearchParams({ username: operator, password, next: '/acceptance.html', _csrf: token }),
  });
  expect(res.status).toBe(303);
  cookie = /cdc_console=[^;]+/.exec(res.headers.get('set-cookie') ?? '')![0];
  const page = await (await fetch(`${web}/acceptance.html`, { headers: { cookie } })).text();
  csrf = /name="_csrf" value="([^"]+)"/.exec(page)![1]!;
}, 180_000);
afterAll(async () => {
  await front?.close();
  await sim?.close();
  await db?.end();
});

const run = async (): Promise<string> => {
  const res = await fetch(`${web}/acceptance/run`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ org, _csrf: csrf }),
  });
  expect(res.status, await res.clone().text()).toBe(303);
  const report = await fetch(new URL(res.headers.get('location')!, web), { headers: { cookie } });
  expect(report.status).toBe(200);
  return report.text();
};
const section = (page: string, id: string) => page.slice(page.indexOf(`id="check-${id}"`), page.indexOf('</section>', page.indexOf(`id="check-${id}"`)));

describe('acceptance self-test on the web port', () => {
  it('runs every check against the real system and keeps a printable report', async () => {
    const page = await run();
    const n = Object.keys(resources).length;
    // Every resource went through the data port in test mode and was stored under the org.
    expect(section(page, 'resources')).toContain(`${n}/${n} 个数据集通过`);
    const stored = await db.query('SELECT count(*)::int AS n, bool_and(test_mode) AS test FROM record_receipt WHERE org_code = $1', [org]);
    expect(stored.rows[0]).toEqual({ n, test: true });
    // The key made for the run no longer opens the port.
    const keys = await db.query('SELECT count(*)::int AS n, count(revoked_at)::int AS revoked FROM his_caller WHERE name = $1', [`验收自检 ${operator}`]);
    expect(keys.rows[0]).toEqual({ n: 1, revoked: 1 });
    // The handshake reached the simulator; no backup exists in this database's test run: not passed.
    expect(section(page, 'uplink')).toMatch(/check-uplink">.*通过/s);
    expect(section(page, 'uplink')).toContain(sim.url);
    // …and the platform opened a sealed batch of no records and signed its receipt.
    expect(section(page, 'uplink')).toContain('平台验签、解密并签回执，已验证');
    expect(((await (await fetch(`${sim.controlUrl}/uplink/v1/records`)).json()) as { count: number }).count).toBe(0); // stored nothing
    expect(section(page, 'time')).toContain('数据库');
    expect(page).toMatch(/id="check-backups"><h2>[^<]*<span class="bad">未通过/);
    expect(page).toMatch(/id="overall"><span class="bad">未通过/);
    // The run is listed and audited with the operator.
    const list = await (await fetch(`${web}/acceptance.html`, { headers: { cookie } })).text();
    expect(list).toContain(org);
    const audit = await db.query("SELECT username FROM console_audit WHERE action = 'acceptance-run' AND detail LIKE $1", [`%${org}%`]);
    expect(audit.rows.map((r) => r.username)).toContain(operator);
  });

  it('a platform holding another key answers the probe but fails the signed exchange', async () => {
    // The same address, another platform key: it cannot open the hospital's sealed batch.
    const port = Number(new URL(sim.url).port);
    await sim.close();
    sim = await startPlatformSimulator({ role: 'national', port, keyPem: generateSm2KeyPair().privateKeyPem });
    const page = await run();
    expect(section(page, 'uplink')).toMatch(/check-uplink"><h2>[^<]*<span class="bad">未通过/);
    expect(section(page, 'uplink')).toMatch(/未通过：HTTP 4\d\d [a-z-]+:/);
    // The result names the signed batch as what failed; the probe's own answer reads as reached.
    expect(section(page, 'uplink')).toMatch(/失败：握手批次：HTTP 4\d\d [a-z-]+:/);
    expect(section(page, 'uplink')).toMatch(/HTTP \d{3}（可达）/);
  });

  it('a platform that does not answer fails the handshake check', async () => {
    await sim.close();
    const page = await run();
    expect(section(page, 'uplink')).toMatch(/check-uplink"><h2>[^<]*<span class="bad">未通过/);
    expect(section(page, 'uplink')).toMatch(/失败：ECONNREFUSED/);
  });

  it('refuses a run without the session’s token', async () => {
    const res = await fetch(`${web}/acceptance/run`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ org }),
    });
    expect(res.status).toBe(403);
  });
});
