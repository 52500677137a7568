// The front's status on the monitoring port (monitor) and the web console (web), through their Hono
// apps (no port) on the real test database. Each test writes outbox rows for its own destination
// name, which no enabled destination list contains, so the push function never touches them and
// the counts asserted are exactly the rows the test wrote.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { FrontStatusSchema, type FrontStatus } from '../../shared/status/index.js';
import pkg from '../../package.json' with { type: 'json' };
import { monitorTokenDir } from '../setup/monitor-token.js';

process.env.DATABASE_URL = databaseUrl();
const platform = monitorTokenDir();
const { default: monitor } = await import('../../functions/monitor/handler.js');
const { default: web } = await import('../../functions/web/handler.js');
const { renderStatusPage, formatAge } = await import('../../functions/web/page.js');

const db = testDb();
const mine: string[] = [];
const notes: string[] = [];

beforeAll(async () => {
  await monitor.init?.();
  await web.init?.();
});
afterAll(async () => {
  if (mine.length) {
    await db.query('DELETE FROM outbox WHERE destination = ANY($1::text[])', [mine]);
    await db.query('DELETE FROM uplink_destination WHERE name = ANY($1::text[])', [mine]);
  }
  if (notes.length) await db.query('DELETE FROM push_run WHERE note = ANY($1::text[])', [notes]);
  await monitor.close?.();
  await web.close?.();
});

/** A destination name of this test's own (outbox.destination is varchar(40)). */
function destination(shape = (id: string) => id): string {
  const name = shape(uniqueId('st').replace(/-/g, '_'));
  mine.push(name);
  return name;
}

async function outboxRow(
  dest: string,
  org: string,
  opts: { state?: 'pending' | 'sent' | 'dead' | 'held'; ageS?: number; payload?: object; resource?: string } = {},
) {
  await db.query(
    `INSERT INTO outbox (destination, resource, org_code, record_id, version, op, deadline_class, payload, state, created_at, sent_at)
     VALUES ($1, $2, $3, $4, 1, 'upsert', 'realtime', $5, $6::varchar, now() - $7 * interval '1 second', CASE WHEN $6::varchar = 'sent' THEN now() END)`,
    [dest, opts.resource ?? 'emrPatientInfo', org, uniqueId('r'), JSON.stringify(opts.payload ?? {}), opts.state ?? 'pending', opts.ageS ?? 0],
  );
}

async function statusJson(path = '/status'): Promise<FrontStatus> {
  const res = await monitor.app.request(path, { headers: platform.headers });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/application\/json/);
  return FrontStatusSchema.parse(await res.json());
}

async function page(): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await web.app.request('/status.html');
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** The table row of the status page that names `dest`, as text cells. */
function rowOf(htmlText: string, dest: string): string[] {
  const tr = htmlText.split('<tr>').find((r) => r.includes(dest));
  if (!tr) throw new Error(`no row for ${dest}`);
  return [...tr.matchAll(/<td[^>]*>([^<]*)<\/td>/g)].map((m) => m[1]!);
}

describe('the console without the single sign-on key (his-sso-key absent here)', () => {
  it('still serves the status page, and /sso answers 503 naming the missing file', async () => {
    expect((await web.app.request('/status.html')).status).toBe(200);
    const res = await web.app.request('/sso?token=v1.a.b');
    expect(res.status).toBe(503);
    expect(((await res.json()) as { desc: string }).desc).toContain('his-sso-key');
  });
});

describe('monitor (port 8883)', () => {
  it('GET /status reports the database, the software version and the outbox of a destination', async () => {
    const dest = destination();
    const org = uniqueOrg();
    await outboxRow(dest, org, { ageS: 95 });
    await outboxRow(dest, org, { state: 'sent' });
    await outboxRow(dest, org, { state: 'sent' });
    await outboxRow(dest, org, { state: 'dead' });
    // Held (a parent not received, a code not mapped): not backlog, but not delivered either.
    await outboxRow(dest, org, { state: 'held', ageS: 3600 });
    const before = Date.now();
    const s = await statusJson();
    expect(s.version).toBe(pkg.version);
    expect(s.database).toMatchObject({ reachable: true, dialect: 'postgresql' });
    expect(Math.abs(new Date(s.database.serverTime!).getTime() - before)).toBeLessThan(60_000);
    const d = s.outbox!.byDestination.find((x) => x.destination === dest);
    // Not in uplink_destination: shown because rows still wait for it.
    expect(d).toEqual({
      destination: dest,
      kind: null,
      enabled: false,
      pending: 1,
      sent: 2,
      dead: 1,
      held: 1,
      oldestPendingAgeS: expect.any(Number),
      oldestHeldAgeS: expect.any(Number),
    });
    expect(d!.oldestPendingAgeS).toBeGreaterThanOrEqual(95);
    expect(d!.oldestHeldAgeS).toBeGreaterThanOrEqual(3600);
    expect(s.outbox!.totals.held).toBeGreaterThanOrEqual(1);
    // The same on the metrics page the platform scrapes.
    const metrics = await (await monitor.app.request('/metrics', { headers: platform.headers })).text();
    expect(metrics).toContain(`cdc_outbox_held{destination="${dest}"} 1`);
    expect(metrics).toMatch(new RegExp(`cdc_outbox_oldest_held_age_seconds\\{destination="${dest}"\\} (3[6-9]\\d\\d|[4-9]\\d{3})\\b`));
    expect(s.outbox!.lag).toContainEqual({ destination: dest, resource: 'emrPatientInfo', pending: 1, oldestAgeS: d!.oldestPendingAgeS });
    expect(s.outbox!.totals.pending).toBeGreaterThanOrEqual(1);
    expect(s.outbox!.totals.sent).toBeGreaterThanOrEqual(2);
    expect(s.outbox!.totals.dead).toBeGreaterThanOrEqual(1);
  });

  it('GET /status carries the activation in force: none on the shared test database, never activated', async () => {
    // test/integration/activation.test.ts activates a database of its own; test/integration/monitor-platforms.test.ts
    // sees a test activation through this same answer.
    const s = await statusJson();
    expect(s.activation).toEqual({ network: 'none', orgCode: null, frontId: null, activatedAt: null });
  });

  it('GET / answers the same status', async () => {
    const s = await statusJson('/');
    expect(s.database.reachable).toBe(true);
  });

  it('hides a disabled destination with nothing to send, and always lists the enabled ones', async () => {
    const dest = destination();
    await db.query(`INSERT INTO uplink_destination (name, kind, enabled) VALUES ($1, 'provincial', false)`, [dest]);
    // A disabled one with no rows is not shown; the configured national one always is.
    const s = await statusJson();
    expect(s.outbox!.byDestination.find((x) => x.destination === dest)).toBeUndefined();
    expect(s.outbox!.byDestination.find((x) => x.destination === 'national')).toMatchObject({ kind: 'national', enabled: true });
  });

  it('shows the last push run: the one just written, or a later one', async () => {
    const note = uniqueId('note');
    notes.push(note);
    const started = new Date(Date.now() - 2000);
    await db.query(`INSERT INTO push_run (started_at, finished_at, trigger, claimed, sent, failed, note) VALUES ($1, now(), 'manual', 3, 2, 1, $2)`, [
      started,
      note,
    ]);
    const run = (await statusJson()).lastPushRun!;
    if (run.note === note) expect(run).toMatchObject({ trigger: 'manual', claimed: 3, sent: 2, failed: 1, startedAt: started.toISOString() });
    else expect(new Date(run.startedAt).getTime()).toBeGreaterThanOrEqual(started.getTime() - 60_000); // another file's push ran since
  });

  it('GET /healthz is 200 {ok:true} while the database answers', async () => {
    const res = await monitor.app.request('/healthz');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
  });

  it('an unknown route is a 404 in the shared envelope', async () => {
    const res = await monitor.app.request('/nope');
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ result: false, errorCode: 'NOT_FOUND', errorName: expect.any(String) });
    // A known path with another method: 405 naming the methods it takes (the port is read-only).
    const post = await monitor.app.request('/status', { method: 'POST', headers: platform.headers });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });
});

// A database outage has its own file (status-down.test.ts): one process holds one configuration.
describe('web console (port 8884)', () => {
  it('GET / redirects to /status.html', async () => {
    const res = await web.app.request('/');
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/status.html');
  });

  it('GET /status.html is the Chinese status page with each destination’s pending count', async () => {
    const dest = destination();
    const org = uniqueOrg();
    for (let i = 0; i < 3; i++) await outboxRow(dest, org, { ageS: 3 * 3600 + 120 });
    await outboxRow(dest, org, { state: 'sent' });
    await outboxRow(dest, org, { state: 'held', ageS: 600 });
    const { status, headers, text } = await page();
    expect(status).toBe(200);
    expect(headers.get('content-type')).toMatch(/^text\/html; charset=UTF-8/i);
    expect(text).toContain('<title>前置软件运行状态</title>');
    expect(text).toContain('<h1>前置软件运行状态</h1>');
    for (const h of ['数据库', '数据上报', '最近一次上报', '入网状态', '软件版本']) expect(text).toContain(`<h2>${h}</h2>`);
    // The shared test database was never activated (test/integration/activation.test.ts uses its own).
    expect(text).toContain('<p data-k="network" class="late">未激活</p>');
    expect(text).toContain('数据库：正常');
    expect(text).toContain(`<p>${pkg.version}</p>`);
    // The release (run from the sources here) and no schema warning on the migrated test database.
    expect(text).toContain(`<p data-k="release">发布版本：${pkg.version}+source</p>`);
    expect(text).not.toContain('data-k="schema"');
    // 上报目标 | 待发送 | 最早未发送时长 | 已发送 | 已放弃 | 暂缓上报 ; over 2 h waiting is highlighted
    expect(rowOf(text, dest)).toEqual(['3', '3 小时 2 分', '1', '0', expect.stringMatching(/^1（最早 10 分 \d+ 秒）$/)]);
    expect(text).toMatch(/<td class="n late">3 小时 2 分<\/td>/);
    // Its own reload is marked, so that it does not keep a console session open (docs/console.md "Sign-in").
    expect(text).toContain('<meta http-equiv="refresh" content="30; url=/status.html?_refresh=auto">');
  });

  it('loads nothing from elsewhere and runs no script', async () => {
    const { headers, text } = await page();
    expect(text).not.toMatch(/<script|<link|src=|https?:\/\//i);
    expect(headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(headers.get('cache-control')).toBe('no-store');
  });
});

describe('security', () => {
  it('escapes every value taken from the database', async () => {
    const dest = destination((id) => `<script>${id}</script>`);
    await db.query(`INSERT INTO uplink_destination (name, kind, enabled) VALUES ($1, $2, false)`, [dest, `<i>"k"&'</i>`]);
    await outboxRow(dest, uniqueOrg(), { resource: '<b>res</b>' });
    const { text } = await page();
    const escaped = dest.replace(/</g, '&lt;').replace(/>/g, '&gt;');
    expect(text).toContain(escaped);
    expect(text).toContain('&lt;i&gt;&quot;k&quot;&amp;&#39;&lt;/i&gt;');
    expect(text).toContain('&lt;b&gt;res&lt;/b&gt;');
    expect(text).not.toContain('<script');
    expect(text).not.toContain('<i>');
    expect(text).not.toContain('<b>');
  });

  it('shows no record content: neither page nor JSON carries what an outbox payload holds', async () => {
    const dest = destination();
    const secret = { patientName: '张三丰测试', idCard: '11010519491231002X', tel: '13912345678' };
    await outboxRow(dest, uniqueOrg(), { payload: secret });
    const json = JSON.stringify(await (await monitor.app.request('/status', { headers: platform.headers })).json());
    const { text } = await page();
    expect(json).toContain(dest);
    for (const v of Object.values(secret)) {
      expect(json).not.toContain(v);
      expect(text).not.toContain(v);
    }
  });
});

describe('the page rendering (no database)', () => {
  const base: FrontStatus = {
    checkedAt: '2025-03-01T02:03:04.000Z',
    version: '9.9.9',
    database: { reachable: true, dialect: 'opengauss', serverTime: '2025-03-01T02:03:05.000Z' },
    outbox: { totals: { pending: 0, sent: 0, dead: 0, held: 0 }, byDestination: [], lag: [] },
    lastPushRun: { startedAt: '2025-02-28T16:30:00.000Z', finishedAt: null, trigger: 'nudge', claimed: 5, sent: 5, failed: 0, note: null },
    activation: { network: 'none', orgCode: null, frontId: null, activatedAt: null },
  };

  it('shows times in the hospital’s zone in local format (Asia/Shanghai, UTC+8)', () => {
    const text = String(renderStatusPage(base, 'Asia/Shanghai'));
    expect(text).toContain('更新时间：2025-03-01 10:03:04（Asia/Shanghai）');
    expect(text).toContain('<dt>时间</dt><dd>2025-03-01 00:30:00</dd>');
    expect(text).toContain('<dt>触发方式</dt><dd>接收后触发</dd>');
    expect(text).toContain('<dd>openGauss</dd>');
    expect(text).toContain('未配置上报目标');
  });

  it('says so when no push has run yet', () => {
    expect(String(renderStatusPage({ ...base, lastPushRun: null }, 'Asia/Shanghai'))).toContain('尚未进行过上报');
  });

  it('writes ages as a doctor reads them', () => {
    expect([null, 0, 59, 61, 3599, 3600, 7260, 90_000].map(formatAge)).toEqual([
      '—',
      '0 秒',
      '59 秒',
      '1 分 1 秒',
      '59 分 59 秒',
      '1 小时 0 分',
      '2 小时 1 分',
      '1 天 1 小时',
    ]);
  });
});
