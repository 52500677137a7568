// The 验收自检 page in Debian's Chromium (playwright-core), served by the web function under the
// runtime: an operator signs in over plain HTTP by the console's LAN name, starts the acceptance
// self-test with one click and gets the printable report of what the running front did. The page is
// in the console's frame (the operator's navigation) and, like the report, prints without the
// navigation and the form. Screenshot: .data/screenshots/acceptance.png.
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPlatformSimulator, type PlatformHandle } from '../../infra/simulators/platform.js';
import { createUser } from '../../shared/console/index.js';
import { expectConsoleFrame } from '../setup/console-session.js';
import { resources } from '../../schemas/index.js';
import { testDb, uniqueOrg } from '../setup/db.js';
import { startTestFront, type TestFront } from '../setup/front.js';

const db = testDb();
const org = uniqueOrg();
const username = `ac${Math.random().toString(36).slice(2, 8)}`;
const password = 'acceptance-browser-password';
let front: TestFront | undefined;
let sim: PlatformHandle | undefined;
let lan = '';
/** The run the first test made, for the org the operator is bound to. */
let runId = '';

/** A person of `role` bound to `orgs` signed in to the running console over HTTP: the session cookie. */
async function signedIn(role: 'public_health' | 'operator', orgs: string[]): Promise<string> {
  const web = front!.rt.portUrls.web!;
  const name = `ph${Math.random().toString(36).slice(2, 8)}`;
  await createUser(db, { username: name, role, password, orgs }, 'test');
  const form = await fetch(`${web}/login`);
  const token = /name="_csrf" value="([^"]+)"/.exec(await form.text())![1]!;
  const loginCookie = /cdc_login=([^;]+)/.exec(form.headers.get('set-cookie') ?? '')![1]!;
  const res = await fetch(`${web}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: `cdc_login=${loginCookie}`, 'content-type': 'application/x-www-form-urlencoded', origin: web },
    body: new URLSearchParams({ username: name, password, next: '/acceptance.html', _csrf: token }).toString(),
  });
  expect(res.status).toBe(303);
  return /cdc_console=([^;]+)/.exec(res.headers.getSetCookie().find((c) => c.startsWith('cdc_console=')) ?? '')![1]!;
}

beforeAll(async () => {
  await createUser(db, { username, role: 'operator', password, displayName: '信息科 王工', orgs: [org] }, 'test');
  sim = await startPlatformSimulator({ role: 'national' });
  front = await startTestFront(
    { WEB_ALLOWED_HOSTS: 'localhost,127.0.0.1,[::1],front.lan', NATIONAL_URL: sim.url, FRONT_ORG_CODE: org },
    { chromiumArgs: ['--host-resolver-rules=MAP front.lan 127.0.0.1'] },
  );
  lan = front.rt.portUrls.web!.replace('127.0.0.1', 'front.lan');
});
afterAll(async () => {
  await front?.close();
  await sim?.close();
});

describe('the 验收自检 page', () => {
  it('runs the self-test with one click and shows the printable report', async () => {
    const ctx = await front!.browser.newContext({ locale: 'zh-CN', timezoneId: 'Asia/Shanghai', viewport: { width: 1200, height: 1400 } });
    const page = await ctx.newPage();
    page.setDefaultTimeout(30_000);
    try {
      await page.goto(`${lan}/acceptance.html`, { waitUntil: 'load' });
      expect(new URL(page.url()).pathname).toBe('/login');
      await page.fill('#username', username);
      await page.fill('#password', password);
      await Promise.all([page.waitForURL(/\/acceptance\.html/), page.getByRole('button', { name: '登录' }).click()]);
      // The org is the installation's (FRONT_ORG_CODE), filled in.
      expect(await page.inputValue('input[name="org"]')).toBe(org);
      // The page is in the console's frame — the operator's navigation, the sign-out — and prints
      // without them (and without the run form), its title and the runs kept.
      expectConsoleFrame(await page.content(), 'operator', '/acceptance.html');
      expect(await page.locator('header nav').isVisible()).toBe(true);
      await page.emulateMedia({ media: 'print' });
      expect(await page.locator('header nav').isVisible()).toBe(false);
      expect(await page.getByRole('button', { name: '退出登录' }).isVisible()).toBe(false);
      expect(await page.locator('#run').isVisible()).toBe(false);
      expect(await page.locator('h1').isVisible()).toBe(true);
      expect(await page.locator('h1').evaluate((e) => getComputedStyle(e).color)).toBe('rgb(0, 0, 0)');
      expect(await page.locator('#runs').isVisible()).toBe(true);
      await page.emulateMedia({ media: 'screen' });
      await Promise.all([page.waitForURL(/\/acceptance\/\d+$/), page.click('#run')]);
      expect(await page.title()).toMatch(/^验收自检报告 #\d+$/);
      const n = Object.keys(resources).length;
      expect(await page.locator('#check-resources').textContent()).toContain(`${n}/${n} 个数据集通过`);
      expect(await page.locator('#check-uplink h2 .ok').count()).toBe(1);
      expect(await page.locator('#check-backups h2 .bad').count()).toBe(1);
      await page.emulateMedia({ media: 'print' });
      expect(await page.locator('nav').isVisible()).toBe(false);
      mkdirSync(resolve('.data/screenshots'), { recursive: true });
      await page.screenshot({ path: resolve('.data/screenshots/acceptance.png'), fullPage: true });
      await page.emulateMedia({ media: 'screen' });
      runId = /\/acceptance\/(\d+)$/.exec(page.url())![1]!;
      await page.click('text=返回');
      expect(await page.locator('#runs tbody tr').count()).toBeGreaterThan(0);
    } finally {
      await ctx.close();
    }
  });

  it("shows a run's report only to people of its org: listed and opened for them, absent and 404 for another org's", async () => {
    expect(runId).not.toBe('');
    const web = front!.rt.portUrls.web!;
    const page = (cookie: string, path: string) => fetch(`${web}${path}`, { headers: { cookie: `cdc_console=${cookie}` }, redirect: 'manual' });
    const mine = await signedIn('public_health', [org]);
    expect(await (await page(mine, '/acceptance.html')).text()).toContain(`/acceptance/${runId}"`);
    expect((await page(mine, `/acceptance/${runId}`)).status).toBe(200);
    const theirs = await signedIn('public_health', [uniqueOrg()]);
    const list = await page(theirs, '/acceptance.html');
    expect(list.status).toBe(200);
    expect(await list.text()).not.toContain(`/acceptance/${runId}"`);
    const report = await page(theirs, `/acceptance/${runId}`);
    expect(report.status).toBe(404);
    expect(await report.text()).not.toContain(org);
  });
});
