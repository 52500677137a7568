// The console's 仪表盘 and 数据上报 pages in a real browser (Debian's Chromium, driven by
// playwright-core), served by the web function under the runtime as in production and reached by a
// LAN name over plain HTTP, as a hospital PC does (no secure context: Origin and Referer are all the
// browser says). An operator bound to an org of this file signs in, reads today's figures and the
// charts, opens the delivery page and replays a dead letter with a click: the row goes back to the
// queue and the replay is audited with the operator. Records go in through the ingest pipeline, the
// dead letter through shared/outbox. Screenshots: .data/screenshots/dashboard.png, quality.png,
// delivery-dead.png (before the replay), delivery.png (after). The dashboard's own reload (every 60 s)
// asks for its URL with the marker _refresh=auto and does not keep the session open; a click does.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Browser } from 'playwright-core';
import { testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { startTestFront, type TestFront } from '../setup/front.js';
import { createUser } from '../../shared/console/index.js';
import { upsertMany } from '../../shared/ingest/index.js';
import { resources } from '../../schemas/index.js';
import { sample } from '../../infra/simulators/samples.js';
import { markRejected } from '../../shared/outbox/index.js';
import { mask } from '../../shared/ingest/mask.js';

const db = testDb();
const org = uniqueOrg();
const username = `op${Math.random().toString(36).slice(2, 8)}`;
const password = 'a-long-browser-password';
const ids = [uniqueId('bp'), uniqueId('bp')];
let dead = '';
let badId = '';

let browser: Browser | undefined;
let front: TestFront | undefined;
let lan = '';

beforeAll(async () => {
  await createUser(db, { username, role: 'operator', password, displayName: '运维', orgs: [org] }, 'test');
  const res = await upsertMany(
    db,
    resources.emrPatientInfo!,
    ids.map((id, i) => sample('emrPatientInfo', { orgCode: org, id, seed: 60 + i, at: new Date(Date.now() - 60_000) })),
    { callId: null, test: false, now: new Date() },
  );
  expect(res.every((r) => r.ok)).toBe(true);
  // A refused record (a resident ID number whose check digit is wrong) and a lab item whose report never came.
  const bad = sample('emrPatientInfo', { orgCode: org, id: uniqueId('bad'), seed: 70 });
  badId = String(bad.idCard).slice(0, 17) + (String(bad.idCard).endsWith('1') ? '2' : '1');
  const refused = await upsertMany(db, resources.emrPatientInfo!, [{ ...bad, idCard: badId }], { callId: null, test: false, now: new Date() });
  expect(refused.map((r) => r.ok)).toEqual([false]);
  const item = await upsertMany(
    db,
    resources.emrExLabItem!,
    [sample('emrExLabItem', { orgCode: org, id: uniqueId('li'), seed: 71, parentId: uniqueId('lab') })],
    {
      callId: null,
      test: false,
      now: new Date(),
    },
  );
  expect(item.every((r) => r.ok)).toBe(true);
  // The figures count dead letters over every destination. Other files add destinations to the shared
  // database and push to them; a row of this org's for one of theirs could die while this file runs
  // (seen: 3 dead letters for the 1 made below). This org's records go to the two platforms only.
  await db.query(`DELETE FROM outbox WHERE org_code = $1 AND destination NOT IN ('national', 'provincial')`, [org]);
  dead = (
    await db.query<{ outbox_id: string }>(`SELECT outbox_id FROM outbox WHERE org_code = $1 AND record_id = $2 AND destination = 'national'`, [org, ids[1]])
  ).rows[0]!.outbox_id;
  await markRejected(db, dead, 'rejected by national: 测试拒收');
  front = await startTestFront(
    { WEB_ALLOWED_HOSTS: 'localhost,127.0.0.1,[::1],front.lan' },
    { chromiumArgs: ['--host-resolver-rules=MAP front.lan 127.0.0.1'] },
  );
  lan = front.rt.portUrls.web!.replace('127.0.0.1', 'front.lan');
  browser = front.browser;
});

afterAll(async () => {
  await front?.close();
});

describe('the dashboard and delivery pages on the web port', () => {
  it('an operator reads today’s figures and replays a dead letter with a click', async () => {
    expect(lan).toMatch(/^http:\/\/front\.lan:\d+$/);
    const ctx = await browser!.newContext({ locale: 'zh-CN', timezoneId: 'Asia/Shanghai', viewport: { width: 1400, height: 1000 } });
    const page = await ctx.newPage();
    page.setDefaultTimeout(8000);
    try {
      await page.goto(`${lan}/dashboard.html`, { waitUntil: 'load' });
      expect(new URL(page.url()).pathname).toBe('/login');
      await page.fill('#username', username);
      await page.fill('#password', password);
      await Promise.all([page.waitForURL(/\/dashboard\.html/), page.getByRole('button', { name: '登录' }).click()]);
      expect(await page.title()).toBe('仪表盘 · 前置软件控制台');
      const row = page.locator('#figures tr[data-resource="emrPatientInfo"]');
      expect(await row.locator('[data-k="received"]').textContent()).toBe('2');
      expect(await row.locator('[data-k="failed"]').textContent()).toBe('1');
      expect(await page.locator('#figures tr[data-resource="emrDeathInfo"] [data-k="arrival"]').textContent()).toBe('暂无数据');
      // The charts are drawn (inline SVG, no script on the page).
      expect(await page.locator('svg.chart').count()).toBeGreaterThan(20);
      expect(await page.locator('script').count()).toBe(0);
      // The navigation shows an operator's pages, not the mapping or users pages.
      expect(await page.locator('nav a').allTextContents()).toEqual(['运行状态', '仪表盘', '数据质量', '数据上报', '备份', '设置', '评估', '验收自检']);
      mkdirSync(resolve('.data/screenshots'), { recursive: true });
      await page.screenshot({ path: resolve('.data/screenshots/dashboard.png'), fullPage: true });

      await Promise.all([page.waitForURL(/\/quality\.html/), page.getByRole('link', { name: '数据质量' }).click()]);
      // The refusal's ID number masked as the project masks it; the held lab item by its kind.
      expect(await page.locator('#examples').textContent()).toContain(String(mask('idno', badId)));
      expect(await page.content()).not.toContain(badId);
      expect(await page.locator('#holds tr[data-kind="parent"][data-resource="emrExLabItem"] [data-k="records"]').textContent()).toBe('1');
      await page.screenshot({ path: resolve('.data/screenshots/quality.png'), fullPage: true });

      await Promise.all([page.waitForURL(/\/delivery\.html/), page.getByRole('link', { name: '数据上报' }).click()]);
      const letter = page.locator(`#dead tr[data-outbox="${dead}"]`);
      expect(await letter.textContent()).toContain('测试拒收');
      await page.screenshot({ path: resolve('.data/screenshots/delivery-dead.png'), fullPage: true });
      await Promise.all([page.waitForURL(/msg=/), letter.getByRole('button', { name: '重发' }).click()]);
      expect(await page.locator('#msg').textContent()).toContain('已重发');
      expect(await page.locator(`#dead tr[data-outbox="${dead}"]`).count()).toBe(0);
      const state = (await db.query<{ state: string }>('SELECT state FROM outbox WHERE outbox_id = $1', [dead])).rows[0]!.state;
      // Back in the queue (or, if the push function's cron took it meanwhile, on its way or sent).
      expect(state).not.toBe('dead');
      const a = await db.query<{ username: string }>(`SELECT username FROM console_audit WHERE action = 'replay' AND detail LIKE $1`, [
        `national outbox ${dead} %`,
      ]);
      expect(a.rows.map((r) => r.username)).toEqual([username]);
      await page.screenshot({ path: resolve('.data/screenshots/delivery.png'), fullPage: true });
    } finally {
      await ctx.close();
    }
  });

  it('reloads itself every 60 s with the marker _refresh=auto, which does not keep the session open; a click does', async () => {
    const ctx = await browser!.newContext({ locale: 'zh-CN', timezoneId: 'Asia/Shanghai' });
    const page = await ctx.newPage();
    page.setDefaultTimeout(8000);
    const idle = async () =>
      Number(
        (
          await db.query<{ s: string }>(
            `SELECT min(extract(epoch FROM now() - s.last_seen_at)) AS s FROM console_session s JOIN console_user u ON u.user_id = s.user_id
              WHERE u.username = $1 AND s.ended_at IS NULL`,
            [username],
          )
        ).rows[0]!.s,
      );
    try {
      await page.goto(`${lan}/login?next=%2Fdashboard.html`, { waitUntil: 'load' });
      await page.fill('#username', username);
      await page.fill('#password', password);
      await Promise.all([page.waitForURL(/\/dashboard\.html$/), page.getByRole('button', { name: '登录' }).click()]);
      const reload = page.waitForRequest((r) => r.url().includes('/dashboard.html?'), { timeout: 75_000 });
      // The person's last request 90 s ago; the page is left alone.
      await db.query(
        `UPDATE console_session SET last_seen_at = now() - interval '90 seconds' WHERE ended_at IS NULL AND user_id = (SELECT user_id FROM console_user WHERE username = $1)`,
        [username],
      );
      const req = await reload;
      expect(new URL(req.url()).pathname + new URL(req.url()).search).toBe('/dashboard.html?_refresh=auto');
      await page.waitForURL(/\/dashboard\.html\?_refresh=auto$/, { waitUntil: 'load' });
      expect(await page.title()).toBe('仪表盘 · 前置软件控制台');
      // The reload did not mark the session used: still 90 s + the 60 s of the reload.
      expect(await idle()).toBeGreaterThanOrEqual(140);
      await Promise.all([page.waitForURL(/\/quality\.html$/), page.getByRole('link', { name: '数据质量' }).click()]);
      expect(await idle()).toBeLessThan(10);
    } finally {
      await ctx.close();
    }
  }, 120_000);
});
