// The console's figure pages (functions/web/*-page.ts, shared/console/figures.ts; docs/console.md
// "Pages") on the real database, with data put in through the product's own paths: HIS records
// through the ingest pipeline (upsertMany, as the receive functions call it — accepted, refused,
// held), outbox transitions through shared/outbox (a delivery, a platform's rejection), a day's
// close through closeDay and a backlog alert through checkBacklog. Every user here is bound to an
// organisation of this file's own, so the figures are exactly what this file put in, whatever
// other test files write meanwhile. Roles: a clinician is refused, no session goes to the sign-in.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, uniqueId, uniqueOrg, privateDatabase } from '../setup/db.js';
import { webInProcess } from '../setup/web-function.js';
import { createUser } from '../../shared/console/index.js';
import { upsertMany } from '../../shared/ingest/index.js';
import { resources } from '../../schemas/index.js';
import { sample } from '../../infra/simulators/samples.js';
import { markRejected, markSent } from '../../shared/outbox/index.js';
import { addDays, dayBounds, localDay } from '../../shared/time/day.js';
import { mask } from '../../shared/ingest/mask.js';
import { closeDay } from '../../shared/dayclose/index.js';
import { checkBacklog, type AlertConfig } from '../../shared/alerts/index.js';
import { bundleDoc, platformKey } from './config-bundles-helpers.js';
import { signBundle, verifyBundleSignature } from '../../shared/configbundle/sign.js';
import { applyBundle, parseBundle } from '../../shared/configbundle/store.js';
import { dashboard, settingsFacts } from '../../shared/console/figures.js';
import { renderSettings } from '../../functions/web/settings-page.js';

const { web, db, host } = await webInProcess('console-pages');
const TZ = 'Asia/Shanghai';
const org = uniqueOrg();
const uname = (p: string) => `${p}${Math.random().toString(36).slice(2, 9)}`;
const PW = 'a-long-test-password';

async function loginForm(): Promise<{ token: string; cookie: string }> {
  const res = await web.app.request('/login', { headers: host });
  const token = /name="_csrf" value="([^"]+)"/.exec(await res.text())![1]!;
  const cookie = /cdc_login=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')![1]!;
  return { token, cookie };
}
/** A user of `role` bound to this file's org, signed in through the form; the session cookie. */
async function signedIn(
  role: 'clinician' | 'public_health' | 'operator' | 'admin',
  orgs: '*' | string[] = [org],
): Promise<{ cookie: string; username: string }> {
  const username = uname(role.slice(0, 3));
  await createUser(db, { username, role, password: PW, orgs }, 'test');
  const f = await loginForm();
  const res = await web.app.request('/login', {
    method: 'POST',
    headers: { ...host, cookie: `cdc_login=${f.cookie}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username, password: PW, next: '/dashboard.html', _csrf: f.token }).toString(),
  });
  expect(res.status).toBe(303);
  return { cookie: /cdc_console=([^;]+)/.exec(res.headers.getSetCookie().find((c) => c.startsWith('cdc_console=')) ?? '')![1]!, username };
}
const get = (path: string, cookie?: string) => web.app.request(path, { headers: { ...host, ...(cookie ? { cookie: `cdc_console=${cookie}` } : {}) } });

type Rec = Record<string, unknown>;
/** Records through the real pipeline, received at `now`; the outcome of each. */
async function put(resource: string, records: Rec[], now = new Date()) {
  return upsertMany(db, resources[resource]!, records, { callId: null, test: false, now });
}
const rec = (resource: string, id: string, seed: number, at: Date, over: Rec = {}): Rec => ({ ...sample(resource, { orgCode: org, id, seed, at }), ...over });
const outboxId = async (id: string) =>
  (await db.query<{ outbox_id: string }>(`SELECT outbox_id FROM outbox WHERE org_code = $1 AND record_id = $2 AND destination = 'national'`, [org, id]))
    .rows[0]!.outbox_id;

/** The cell `k` of the row of `resource` in the page's figures table, as text without markup. */
function cell(page: string, resource: string, k: string): string {
  const row = new RegExp(`<tr data-resource="${resource.replace(/[*]/g, '\\*')}">([\\s\\S]*?)</tr>`).exec(page)?.[1];
  if (!row) throw new Error(`no row ${resource}`);
  const td = new RegExp(`data-k="${k}">([\\s\\S]*?)</td>`).exec(row)?.[1];
  if (td === undefined) throw new Error(`no cell ${k} in ${resource}`);
  return td
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

const now = Date.now();
const ids = { p1: uniqueId('p'), p2: uniqueId('p'), p3: uniqueId('p'), old: uniqueId('p'), item: uniqueId('li'), bad: uniqueId('p') };
let badName = '';
let badIdCard = '';
const threeDaysAgo = new Date(now - 3 * 86_400_000);

beforeAll(async () => {
  // Three days ago: one patient record, for the trend (counted into console_day_figure at the first page).
  const old = await put('emrPatientInfo', [rec('emrPatientInfo', ids.old, 40, new Date(threeDaysAgo.getTime() - 60_000))], threeDaysAgo);
  expect(old.every((r) => r.ok)).toBe(true);
  // Today: two patients a minute after their business time (in time: realtime), one an hour after (late).
  const ok = await put('emrPatientInfo', [
    rec('emrPatientInfo', ids.p1, 41, new Date(now - 60_000)),
    rec('emrPatientInfo', ids.p2, 42, new Date(now - 60_000)),
    rec('emrPatientInfo', ids.p3, 43, new Date(now - 3_600_000)),
  ]);
  expect(ok.every((r) => r.ok)).toBe(true);
  // p1 posted again unchanged: no new version, not counted again.
  const again = await put('emrPatientInfo', [rec('emrPatientInfo', ids.p1, 41, new Date(now - 60_000))]);
  expect(again.map((r) => r.ok && r.outcome.status)).toEqual(['unchanged']);
  // A refused one: a resident ID number whose check digit is wrong.
  const bad = rec('emrPatientInfo', ids.bad, 44, new Date(now - 60_000));
  badName = String(bad.patientName);
  badIdCard = String(bad.idCard).slice(0, 17) + (String(bad.idCard).endsWith('1') ? '2' : '1');
  const refused = await put('emrPatientInfo', [{ ...bad, idCard: badIdCard }]);
  expect(refused.map((r) => r.ok)).toEqual([false]);
  // A lab item whose report never came: held, waiting for its parent.
  const item = await put('emrExLabItem', [{ ...sample('emrExLabItem', { orgCode: org, id: ids.item, seed: 45, parentId: uniqueId('lab') }) }]);
  expect(item.every((r) => r.ok)).toBe(true);
  // The national platform acknowledged p1 and rejected p2 (a dead letter), through the outbox module.
  await markSent(db, [await outboxId(ids.p1)]);
  await markRejected(db, await outboxId(ids.p2), 'rejected by national: 证件号码 110105194912310021 与姓名不符');
  // The rows still queued are not due before tomorrow: the push function of another file's running
  // front (the test database is shared) would otherwise send them, and the figures below count them.
  await db.query(`UPDATE outbox SET next_attempt_at = now() + interval '1 day' WHERE org_code = $1 AND state = 'pending'`, [org]);
});

describe('the dashboard (仪表盘)', () => {
  it('is for public health, operators and admins: a clinician gets 403, no session the sign-in page', async () => {
    const none = await get('/dashboard.html');
    expect(none.status).toBe(302);
    expect(none.headers.get('location')).toBe('/login?next=%2Fdashboard.html');
    const clin = await get('/dashboard.html', (await signedIn('clinician')).cookie);
    expect(clin.status).toBe(403);
    expect(await clin.text()).toContain('无权访问此页面');
    for (const role of ['public_health', 'operator', 'admin'] as const)
      expect((await get('/dashboard.html', (await signedIn(role)).cookie)).status, role).toBe(200);
  });

  it('shows today’s figures per resource as the data holds them', async () => {
    const { cookie } = await signedIn('public_health');
    const res = await get('/dashboard.html', cookie);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    const page = await res.text();
    // Twenty resources, each a row.
    expect(page.match(/<tr data-resource="(?!\*)/g)).toHaveLength(20);
    const pending = Number(
      (await db.query<{ n: string }>(`SELECT count(*) AS n FROM outbox WHERE org_code = $1 AND resource = 'emrPatientInfo' AND state = 'pending'`, [org]))
        .rows[0]!.n,
    );
    expect(pending).toBeGreaterThanOrEqual(1);
    const p = (k: string) => cell(page, 'emrPatientInfo', k);
    expect([p('received'), p('rejected'), p('held'), p('queued'), p('sent'), p('failed')]).toEqual(['3', '1', '0', String(pending), '1', '1']);
    expect(p('lag')).toMatch(/秒|分/);
    // p1 and p2 a minute after their business time, p3 an hour after: 2 of 3 in time.
    expect(p('arrival')).toBe('66.6% 2/3');
    // p1 delivered in time; p3 past its deadline undelivered; p2 (dead) still within it: not counted yet.
    expect(p('delivery-national')).toBe('50% 1/2');
    const l = (k: string) => cell(page, 'emrExLabItem', k);
    expect([l('received'), l('held'), l('queued'), l('sent')]).toEqual(['1', '1', '0', '0']);
    // Nothing arrived of a resource: its shares say so rather than a made-up 0% or 100%.
    expect(cell(page, 'emrDeathInfo', 'arrival')).toBe('暂无数据');
    expect(cell(page, 'emrDeathInfo', 'delivery-national')).toBe('暂无数据');
    expect(cell(page, '*', 'received')).toBe('4');
    // No personal data of the refused record, in clear or otherwise.
    expect(page).not.toContain(badName);
    expect(page).not.toContain(badIdCard);
  });

  it('draws the 30-day trends as inline SVG, with the day three days ago counted once', async () => {
    const { cookie } = await signedIn('operator');
    // Another test file's page (the browser test shares this database) may have counted that day
    // before this file put its record in: as at a fresh install, the day is not counted yet.
    await db.query('DELETE FROM console_day_figure WHERE fig_day = $1', [localDay(threeDaysAgo, TZ)]);
    const page = await (await get('/dashboard.html', cookie)).text();
    expect(page).toContain('<svg class="chart"');
    expect(page).not.toMatch(/<script/i);
    const day = localDay(threeDaysAgo, TZ).slice(5);
    expect(page).toContain(`<title>${day} 接收 1</title>`);
    const today = localDay(new Date(now), TZ);
    expect(page).toContain(`<title>${today.slice(5)} 接收 4</title>`);
    const counted = await db.query(`SELECT 1 FROM console_day_figure WHERE fig_day = $1 AND org_code = '*' AND resource = '*'`, [localDay(threeDaysAgo, TZ)]);
    expect(counted.rowCount).toBe(1);
    // Counted once: a record arriving later for that day moves nothing.
    await put('emrPatientInfo', [rec('emrPatientInfo', uniqueId('late'), 46, new Date(threeDaysAgo.getTime() - 120_000))], threeDaysAgo);
    const again = await (await get('/dashboard.html', cookie)).text();
    expect(again).toContain(`<title>${day} 接收 1</title>`);
    expect(addDays(today, -29) <= localDay(threeDaysAgo, TZ)).toBe(true);
  });
});

describe('data quality (数据质量)', () => {
  it('is for public health, operators and admins', async () => {
    expect((await get('/quality.html')).headers.get('location')).toBe('/login?next=%2Fquality.html');
    expect((await get('/quality.html', (await signedIn('clinician')).cookie)).status).toBe(403);
  });

  it('counts refusals by resource and by field and rule, shows them masked, and the held records by kind', async () => {
    const { cookie } = await signedIn('public_health');
    const res = await get('/quality.html', cookie);
    expect(res.status).toBe(200);
    const page = await res.text();
    const section = (id: string) => new RegExp(`<section id="${id}">([\\s\\S]*?)</section>`).exec(page)![1]!;
    for (const id of ['today', 'month']) {
      expect(section(id)).toMatch(/<h2>[^<]*：1 条<\/h2>/);
      expect(section(id)).toMatch(
        /<tr data-resource="emrPatientInfo"><th scope="row">[^<]*<span class="muted">emrPatientInfo<\/span><\/th><td class="n">1<\/td><\/tr>/,
      );
      expect(section(id)).toMatch(/<tr data-resource="emrPatientInfo" data-field="idCard" data-rule="checksum">[\s\S]*?<td class="n">1<\/td><\/tr>/);
    }
    // The example: the ID number masked as the project masks it, never in clear; no name.
    const ex = section('examples');
    expect(ex).toContain(ids.bad);
    expect(ex).toContain(String(mask('idno', badIdCard)));
    expect(page).not.toContain(badIdCard);
    expect(page).not.toContain(badName);
    // The lab item waiting for its report: one record held for a parent, and listed as an orphan.
    expect(section('holds')).toMatch(/<tr data-kind="parent" data-resource="emrExLabItem">[\s\S]*?data-k="records">1<\/td>/);
    expect(section('orphans')).toContain(ids.item);
  });
});

describe('delivery (数据上报)', () => {
  const alertCfg = (backlogCount: number): AlertConfig => ({
    backlogCount,
    backlogAgeS: 86_400 * 365,
    realtimeAgeS: 86_400 * 365,
    clearRatio: 0.5,
    frontName: '测试前置',
    timeoutMs: 1000,
  });
  const csrfOf = (page: string) => /name="_csrf" value="([^"]+)"/.exec(page)![1]!;
  const post = (path: string, cookie: string, fields: Record<string, string>, headers: Record<string, string> = {}) =>
    web.app.request(path, {
      method: 'POST',
      headers: { ...host, cookie: `cdc_console=${cookie}`, 'content-type': 'application/x-www-form-urlencoded', origin: 'http://front.local:8884', ...headers },
      body: new URLSearchParams(fields).toString(),
    });
  const stateOf = async (id: string) => (await db.query<{ state: string }>('SELECT state FROM outbox WHERE outbox_id = $1', [id])).rows[0]!.state;

  beforeAll(async () => {
    // Today's close of this org, through the day-close module: the lab item without its report is a gap.
    const r = await closeDay(db, org, localDay(new Date(), TZ), 'T+0', { timeZone: TZ, trigger: 'manual' });
    expect(r.status).toBe('done');
    // A backlog alert on the national platform through the alert module (a threshold of 1 raises it).
    // Cleared first: the national platform's queue in this shared database is every test file's, and
    // a push run elsewhere (its default threshold is 1000 rows) may already have raised it.
    await checkBacklog(db, alertCfg(1_000_000_000), { destinations: ['national'], channels: [] });
    const [raised] = await checkBacklog(db, alertCfg(1), { destinations: ['national'], channels: [] });
    expect(raised).toMatchObject({ transition: 'raise' });
  });
  afterAll(async () => {
    // Cleared again, so that no other test finds the national platform in alarm.
    await checkBacklog(db, alertCfg(1_000_000_000), { destinations: ['national'], channels: [] });
  });

  it('is for public health, operators and admins; a replay only for operators and admins', async () => {
    expect((await get('/delivery.html')).headers.get('location')).toBe('/login?next=%2Fdelivery.html');
    expect((await get('/delivery.html', (await signedIn('clinician')).cookie)).status).toBe(403);
    const ph = await signedIn('public_health');
    const page = await (await get('/delivery.html', ph.cookie)).text();
    expect(page).toContain(`<tr data-outbox="${await outboxId(ids.p2)}">`);
    expect(page).not.toContain('action="/delivery/replay"');
    const refused = await post('/delivery/replay', ph.cookie, { outboxId: await outboxId(ids.p2), _csrf: csrfOf(page) });
    expect(refused.status).toBe(403);
    expect(await stateOf(await outboxId(ids.p2))).toBe('dead');
  });

  it('shows each platform’s queue, circuit, sent, failed and dead letters, the day’s close and the alert', async () => {
    const { cookie } = await signedIn('operator');
    const page = await (await get('/delivery.html', cookie)).text();
    const row = /<tr data-destination="national">([\s\S]*?)<\/tr>/.exec(page)![1]!;
    const k = (name: string) => new RegExp(`data-k="${name}">([^<]*)<`).exec(row)![1];
    const pending = Number(
      (await db.query<{ n: string }>(`SELECT count(*) AS n FROM outbox WHERE org_code = $1 AND destination = 'national' AND state = 'pending'`, [org])).rows[0]!
        .n,
    );
    expect([k('queued'), k('sent'), k('failed'), k('dead')]).toEqual([String(pending), '1', '1', '1']);
    // The platform's reason, its ID-number-like digits masked.
    expect(page).toContain(String(mask('idno', '110105194912310021')));
    expect(page).not.toContain('110105194912310021');
    const close = new RegExp(`<tr data-day="${localDay(new Date(), TZ)}" data-org="${org}" data-kind="T\\+0">([\\s\\S]*?)</tr>`).exec(page)![1]!;
    expect(close).toMatch(/data-k="status">完成/);
    expect(close).toMatch(/data-k="gaps">1</);
    // The close's summary version, and the records of its day received after it (none yet).
    expect(close).toMatch(/data-k="version">1</);
    expect(close).toMatch(/data-k="late">0</);
    // The day's records held back when it closed: the lab item waiting for its report.
    expect(close).toMatch(/data-k="held" title="等待代码映射 0，映射后不符合规则 0，等待上级记录 1">1</);
    const event = (await db.query<{ event_id: string }>(`SELECT max(event_id) AS event_id FROM alert_event WHERE destination = 'national' AND kind = 'raise'`))
      .rows[0]!;
    expect(page).toMatch(new RegExp(`<tr data-event="${event.event_id}"><td>[^<]*</td><td>national</td><td class="bad">告警</td>`));
  });

  it('lists the platforms’ backlog alerts only: an overdue case’s alert or a backup’s, kept in the same table, is not shown as one', async () => {
    const { cookie } = await signedIn('operator');
    // As the warning function and the backup function write them (shared/warning/store.ts, shared/backup).
    const others = await db.query<{ event_id: string }>(
      `INSERT INTO alert_event (destination, kind, pending, oldest_age_s, message) VALUES
         ('warning', 'overdue', 1, 1500, '传染病报告超时：霍乱（病例 1）'), ('backup', 'raise', 1, 3600, '备份失败') RETURNING event_id`,
    );
    const page = await (await get('/delivery.html', cookie)).text();
    for (const x of others.rows) expect(page).not.toContain(`data-event="${x.event_id}"`);
    const platform = (await db.query<{ event_id: string }>(`SELECT max(event_id) AS event_id FROM alert_event WHERE destination = 'national'`)).rows[0]!;
    expect(page).toContain(`<tr data-event="${platform.event_id}">`);
  });

  it('replays a dead letter with the session’s token: back in the queue, audited with the user; a forged post is refused', async () => {
    const { cookie, username } = await signedIn('operator');
    const id = await outboxId(ids.p2);
    const page = await (await get('/delivery.html', cookie)).text();
    expect(page).toContain('action="/delivery/replay"');
    // Without the token (a forged form from another site carries the cookie, never the token): refused, still dead.
    const forged = await post('/delivery/replay', cookie, { outboxId: id });
    expect(forged.status).toBe(403);
    expect(await forged.text()).toContain('CSRF');
    expect(await stateOf(id)).toBe('dead');
    const ok = await post('/delivery/replay', cookie, { outboxId: id, _csrf: csrfOf(page) });
    expect(ok.status).toBe(303);
    expect(decodeURIComponent(ok.headers.get('location')!)).toContain('已重发');
    expect(await stateOf(id)).toBe('pending');
    const a = await db.query<{ username: string; detail: string }>(`SELECT username, detail FROM console_audit WHERE action = 'replay' AND detail LIKE $1`, [
      `national outbox ${id} %`,
    ]);
    expect(a.rows).toEqual([{ username, detail: `national outbox ${id} emrPatientInfo/${org}/${ids.p2} v1: requeued` }]);
    // Again: no longer a dead letter.
    const again = await post('/delivery/replay', cookie, { outboxId: id, _csrf: csrfOf(page) });
    expect(decodeURIComponent(again.headers.get('location')!)).toContain('没有可重发的死信');
    const after = await (await get('/delivery.html', cookie)).text();
    expect(after).not.toContain(`<tr data-outbox="${id}">`);
  });
});

describe('settings (设置), read-only', () => {
  it('is for public health, operators and admins', async () => {
    expect((await get('/settings.html')).headers.get('location')).toBe('/login?next=%2Fsettings.html');
    expect((await get('/settings.html', (await signedIn('clinician')).cookie)).status).toBe(403);
  });

  it('says what this function knows — its own address and settings, the platforms and last runs the database holds — and 暂无数据 for the rest, with no secret', async () => {
    const { cookie } = await signedIn('admin', '*');
    const res = await get('/settings.html', cookie);
    expect(res.status).toBe(200);
    const page = await res.text();
    expect(page).toMatch(/<tr data-env="WEB_PORT">[\s\S]*?data-k="here">front\.local:8884</);
    // The data port as the config function last read it at the gateway (a runtime test's front on this
    // database may have recorded one), else 暂无数据.
    const dataPort = (await db.query<{ port: number }>(`SELECT port FROM gateway_port WHERE function_name = 'patient'`)).rows[0]?.port;
    if (dataPort) expect(page).toMatch(new RegExp(`<tr data-env="DATA_PORT">[\\s\\S]*?data-k="port">${dataPort}<[\\s\\S]*?默认 8881`));
    else expect(page).toMatch(/<tr data-env="DATA_PORT">[\s\S]*?暂无数据[\s\S]*?默认 8881/);
    expect(page).toContain('data-k="hosts">front.local，localhost<');
    // The national platform is configured in the database; its URL only in the push function's settings.
    expect(page).toMatch(/<tr data-destination="national">[\s\S]*?data-k="url"><span class="nodata">暂无数据<\/span>[\s\S]*?NATIONAL_URL/);
    // The schedules: the cron in force, and the last day close run by cron when there is one.
    const lastClose = (await db.query<{ t: Date | null }>(`SELECT max(finished_at) AS t FROM day_close WHERE trigger = 'cron'`)).rows[0]!.t;
    const dayClose = /<tr data-function="day-close">([\s\S]*?)<\/tr>/.exec(page)![1]!;
    // Its cron as the config function's last pass found it at the gateway (a runtime test's front on
    // this database may have made one), else 暂无数据.
    const cron = (await db.query<{ schedule: string }>(`SELECT schedule FROM schedule_state WHERE function_name = 'day-close'`)).rows[0]?.schedule;
    if (cron) expect(dayClose).toContain(`data-k="cron"><code>${cron}</code>`);
    else expect(dayClose).toMatch(/data-k="cron"><span class="nodata">暂无数据/);
    if (lastClose === null) expect(dayClose).toMatch(/data-k="last"><span class="nodata">暂无数据/);
    else expect(dayClose).not.toMatch(/data-k="last"><span class="nodata">/);
    // The shared test database was never activated (test/integration/activation.test.ts uses its own).
    expect(page).toMatch(/data-k="latest"><span class="nodata">暂无数据<\/span>/);
    expect(page).toContain('data-k="network">未激活<');
    expect(page).toContain('data-k="activation">未激活<');
    const password = decodeURIComponent(new URL(databaseUrl()).password);
    if (password) expect(page).not.toContain(password);
    expect(page).not.toMatch(/<form method="post" action="(?!\/logout)/);
  });
});

describe('settings from a configuration bundle', () => {
  it('shows the platform URL a bundle gave and the schedule it asked for (not yet written), never the platform’s key', async () => {
    // A bundle changes what every function reads: a database of this test's own (config-bundles-helpers).
    const p = await privateDatabase('console_settings');
    try {
      const signer = platformKey();
      const platform = platformKey();
      const doc = bundleDoc(1, {
        platforms: [{ name: 'national', kind: 'national', url: 'https://platform.example.cn/uplink', publicKey: platform.publicKeyPem }],
        schedules: [{ function: 'push', schedule: '*/2 * * * *' }],
        release: { version: '99.0.0', url: 'https://platform.example.cn/releases/99.0.0', notes: '修复若干问题' },
      });
      const signed = signBundle(doc, signer.key);
      verifyBundleSignature(signed, [signer.key.pub]);
      await applyBundle(p.db, { text: doc, signature: signed.sig.value, keyId: signed.sig.keyId, bundle: parseBundle(doc) }, { by: 'test' });
      // The ports as the config function's pass records them (shared/configbundle/schedules.ts): remapped.
      await p.db.query(
        `INSERT INTO gateway_port (function_name, port, root, checked_at) VALUES ('patient', 18881, false, now()), ('record', 18881, false, now()), ('config', 18882, true, now())`,
      );
      const facts = await settingsFacts(p.db);
      expect(facts.platforms.find((x) => x.name === 'national')).toMatchObject({ url: 'https://platform.example.cn/uplink', enabled: true });
      // Asked for by the bundle; in force only once the config function wrote it at the gateway
      // (test/runtime/config-schedules.test.ts), which no function here did.
      expect(facts.schedules.find((x) => x.function === 'push')).toMatchObject({ requested: '*/2 * * * *', bundleVersion: 1, cron: null, source: null });
      expect(facts.schedules.find((x) => x.function === 'day-close')).toMatchObject({ requested: null, cron: null, lastRunAt: null });
      expect(facts.bundleVersion).toBe(1);
      expect(facts.release).toEqual({ version: '99.0.0', url: 'https://platform.example.cn/releases/99.0.0', notes: '修复若干问题', bundleVersion: 1 });
      const known = {
        timeZone: TZ,
        allowedHosts: ['front.local'],
        idleMin: 30,
        sessionH: 12,
        lockoutAfter: 5,
        lockoutMin: 15,
        pushNudgeUrl: undefined,
        production: false,
      };
      const page = String(renderSettings(facts, known, 'front.local:8884', TZ));
      expect(page).toMatch(/<tr data-destination="national">[\s\S]*?data-k="url"><code>https:\/\/platform\.example\.cn\/uplink<\/code>/);
      expect(page).toMatch(/<tr data-function="push">[\s\S]*?data-k="cron"><span class="nodata">暂无数据/);
      expect(page).toMatch(
        /<tr data-function="push">[\s\S]*?data-k="requested"><code>\*\/2 \* \* \* \*<\/code> <span class="muted">v1<\/span> <span class="muted">待配置函数写入/,
      );
      // The version check, for the operator: a newer release than the one running is announced.
      expect(page).toMatch(/data-k="running">\d+\.\d+\.\d+</);
      // …and the build, as the monitoring port's /status names it (two releases of one version differ by it).
      expect(page).toMatch(/data-k="build"><code>\d+\.\d+\.\d+\+[0-9a-z]+<\/code>/);
      expect(page).toMatch(
        /data-k="latest"><span class="late">有新版本 99\.0\.0，请安排升级<\/span>：<a href="https:\/\/platform\.example\.cn\/releases\/99\.0\.0"/,
      );
      expect(page).toMatch(/<tr data-env="DATA_PORT">[\s\S]*?data-k="port">18881<\/strong>/);
      expect(page).toMatch(/<tr data-env="CONFIG_PORT">[\s\S]*?data-k="port">18882<\/strong>/);
      expect(page).toMatch(/<tr data-env="MONITOR_PORT">[\s\S]*?暂无数据/);
      const keyBody = platform.publicKeyPem.split('\n')[1]!;
      expect(keyBody.length).toBeGreaterThan(20);
      expect(page).not.toContain(keyBody);
    } finally {
      await p.drop();
    }
  });
});

describe('the deadline classes T+0 and T+1', () => {
  it('count a record on time by the end of its business day (T+0) or of the next day (T+1), at the page’s own now', async () => {
    // Five days ago, seen from 23:00 that evening; records of an org of this test alone.
    const o2 = uniqueOrg();
    const D = addDays(localDay(new Date(), TZ), -5);
    const at = (day: string, hour: number) => new Date(dayBounds(day, TZ).from.getTime() + hour * 3_600_000);
    const arrival = at(D, 21);
    const r = (resource: string, id: string, seed: number, businessDay: string) => ({
      ...sample(resource, { orgCode: o2, id, seed, at: at(businessDay, 20) }),
    });
    // The samples' business times: a death 6 h before `at` (14:00), a discharge 12 h before (08:00).
    const deaths = await upsertMany(
      db,
      resources.emrDeathInfo!,
      [r('emrDeathInfo', uniqueId('d'), 80, D), r('emrDeathInfo', uniqueId('d'), 81, addDays(D, -1))],
      { callId: null, test: false, now: arrival },
    );
    const discharges = await upsertMany(
      db,
      resources.emrDischargeInfo!,
      [r('emrDischargeInfo', uniqueId('c'), 82, addDays(D, -1)), r('emrDischargeInfo', uniqueId('c'), 83, addDays(D, -2))],
      { callId: null, test: false, now: arrival },
    );
    expect([...deaths, ...discharges].every((x) => x.ok)).toBe(true);
    const d = await dashboard(db, { orgs: [o2], timeZone: TZ, now: at(D, 23) });
    const of = (name: string) => d.resources.find((x) => x.resource === name)!;
    // T+0: the death of the same day in time, the one of the day before late.
    expect(of('emrDeathInfo')).toMatchObject({ received: 2, timely: 1, timed: 2 });
    // T+1: the discharge of the day before in time, the one of two days before late.
    expect(of('emrDischargeInfo')).toMatchObject({ received: 2, timely: 1, timed: 2 });
    // Delivery at 23:00: the two late ones are past their deadline undelivered; the two in time are not due yet.
    expect(of('emrDeathInfo').delivery.national).toEqual({ timely: 0, of: 1 });
    expect(of('emrDischargeInfo').delivery.national).toEqual({ timely: 0, of: 1 });
  });
});

describe('a realtime record whose business time is a date', () => {
  it('is on time until its day’s end, as the pipeline and the evaluation page count it; a time of day is counted from itself', async () => {
    const o3 = uniqueOrg();
    const D = addDays(localDay(new Date(), TZ), -5);
    const at = (hour: number) => new Date(dayBounds(D, TZ).from.getTime() + hour * 3_600_000);
    const patient = (id: string, seed: number, operationTime: string) => ({ ...sample('emrPatientInfo', { orgCode: o3, id, seed, at: at(8) }), operationTime });
    // Both arrive at 08:00: one known only to the day (on time), one at 07:00 (an hour past its 5 minutes).
    const res = await upsertMany(db, resources.emrPatientInfo!, [patient(uniqueId('p'), 90, D), patient(uniqueId('p'), 91, `${D} 07:00:00`)], {
      callId: null,
      test: false,
      now: at(8),
    });
    expect(res.every((x) => x.ok)).toBe(true);
    const d = await dashboard(db, { orgs: [o3], timeZone: TZ, now: at(23) });
    expect(d.resources.find((x) => x.resource === 'emrPatientInfo')).toMatchObject({ received: 2, timed: 2, timely: 1 });
  });
});

describe('notices (?msg=, ?err=)', () => {
  /** The notices a page shows (console-layout.ts: #msg, #err). */
  const notice = (page: string) => [...page.matchAll(/<p class="notice (?:msg|err)"[^>]*>([^<]*)<\/p>/g)].map((m) => m[1]);
  it('shows only the notices the front put in its own redirect for this session: text in a link from elsewhere is not shown', async () => {
    const fake = '系统通知：您的账号异常，请拨打 010-12345678 并提供工号和密码';
    const ph = await signedIn('public_health');
    const op = await signedIn('operator');
    for (const [path, cookie] of [
      [`/codes.html?org=${org}&msg=${encodeURIComponent(fake)}`, ph.cookie],
      [`/codes.html?org=${org}&err=${encodeURIComponent(fake)}&sig=AAAAAAAAAAAAAAAAAAAAAA`, ph.cookie],
      [`/delivery.html?msg=${encodeURIComponent(fake)}`, op.cookie],
    ] as const) {
      const res = await get(path, cookie);
      expect(res.status, path).toBe(200);
      expect(notice(await res.text()), path).toEqual([]);
    }
    // The front's own notice after a change, in the redirect it answers: shown.
    const csrf = /name="_csrf" value="([^"]+)"/.exec(await (await get('/delivery.html', op.cookie)).text())![1]!;
    const done = await web.app.request('/delivery/retry', {
      method: 'POST',
      headers: { ...host, cookie: `cdc_console=${op.cookie}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ destination: 'nosuchdest', _csrf: csrf }).toString(),
    });
    expect(done.status).toBe(303);
    const back = done.headers.get('location')!;
    expect(notice(await (await get(back, op.cookie)).text())).toEqual(['上报目标不存在：nosuchdest']);
    // The same link in another person's session: not theirs, not shown.
    const other = await signedIn('operator');
    expect(notice(await (await get(back, other.cookie)).text())).toEqual([]);
  });
});
