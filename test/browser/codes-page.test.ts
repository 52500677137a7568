// The 代码映射 page in a real browser (Debian's Chromium, driven by playwright-core), served by the
// web function under the runtime as in production: a public-health doctor signs in (docs/console.md),
// sees the hospital's gaps, adopts a suggestion and adds a mapping through the page's forms (each
// carrying the session's CSRF token), and sees the gaps close, every change authored by the signed-in
// user. A HIS API key alone no longer opens the page. An admin signs in to the 用户管理 page and
// unlocks a locked account with a click; the public-health doctor gets the 403 page there, with their
// own navigation. Each page is in the console's frame (the role's navigation, the sign-out).
// Screenshots: .data/screenshots/login.png, .data/screenshots/codes.png, .data/screenshots/users.png.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Browser } from 'playwright-core';
import { testDb, uniqueOrg } from '../setup/db.js';
import type { RuntimeHandle } from '../../infra/runtime/index.js';
import { startTestFront, type TestFront } from '../setup/front.js';
import { generateApiKey } from '../../shared/http/auth.js';
import { insertCaller } from '../../shared/http/auth-store.js';
import { listMappings, recordObserved } from '../../shared/codes/store.js';
import { createUser, signIn, type ConsoleSettings } from '../../shared/console/index.js';
import { expectConsoleFrame } from '../setup/console-session.js';

const SCREENSHOT = resolve('.data/screenshots/codes.png');
const db = testDb();
const org = uniqueOrg();
const key = generateApiKey();
const username = `gw${Math.random().toString(36).slice(2, 8)}`;
const password = 'a-long-browser-password';

let rt: RuntimeHandle | undefined;
let browser: Browser | undefined;
let front: TestFront | undefined;
/** The web port by its LAN name (front.lan, mapped to loopback in the browser alone). */
let lan = '';

beforeAll(async () => {
  await insertCaller(db, { kind: 'apikey', name: '信息科 浏览器', orgs: [org], ratePerMin: 0, keyPrefix: key.prefix, keyHash: key.hash });
  await createUser(db, { username, role: 'public_health', password, displayName: '张医生', orgs: [org] }, 'test');
  const at = (d: string) => new Date(d);
  await recordObserved(db, [
    { org, domain: 'nndrsDisease', local: 'SZK', name: '手足口', count: 4, first: at('2026-11-01T01:00:00Z'), last: at('2026-11-02T01:00:00Z'), held: 2 },
    { org, domain: 'sex', local: 'X', name: '不详', count: 9, first: at('2026-11-01T01:00:00Z'), last: at('2026-11-02T01:00:00Z'), held: 0 },
  ]);
  // The browser reaches the console by a LAN name over plain HTTP, as a hospital PC does: no secure
  // context, so no Sec-Fetch-Site header — Origin and Referer are all the browser says.
  front = await startTestFront(
    { WEB_ALLOWED_HOSTS: 'localhost,127.0.0.1,[::1],front.lan' },
    { chromiumArgs: ['--host-resolver-rules=MAP front.lan 127.0.0.1'] },
  );
  rt = front.rt;
  lan = rt.portUrls.web!.replace('127.0.0.1', 'front.lan');
  browser = front.browser;
});

afterAll(async () => {
  await front?.close();
});

describe('the 代码映射 page on the web port', () => {
  it('shows the gaps, adopts a suggestion and adds a mapping through its forms, and the gaps close', async () => {
    const web = lan;
    expect(web).toMatch(/^http:\/\/front\.lan:\d+$/);
    const ctx = await browser!.newContext({
      locale: 'zh-CN',
      timezoneId: 'Asia/Shanghai',
      viewport: { width: 1300, height: 1000 },
      // A HIS key is sent with every request, and opens nothing on the console.
      extraHTTPHeaders: { 'x-api-key': key.key },
    });
    const page = await ctx.newPage();
    page.setDefaultTimeout(8000);
    try {
      // No session: the sign-in page, which brings the doctor back to the page asked for.
      await page.goto(`${web}/codes.html`, { waitUntil: 'load' });
      expect(new URL(page.url()).pathname).toBe('/login');
      expect(await page.locator('h1').textContent()).toBe('前置软件控制台登录');
      await page.fill('#username', username);
      await page.fill('#password', 'wrong-password-123');
      await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: '登录' }).click()]);
      expect(await page.locator('.err').textContent()).toBe('用户名或密码错误');
      await page.fill('#password', password);
      mkdirSync(resolve('.data/screenshots'), { recursive: true });
      await page.screenshot({ path: resolve('.data/screenshots/login.png') });
      await Promise.all([page.waitForURL(/\/codes\.html/), page.getByRole('button', { name: '登录' }).click()]);
      expect(await page.title()).toBe('代码映射 · 前置软件控制台');
      // The console's header: public health's navigation, this page marked, the sign-out.
      expectConsoleFrame(await page.content(), 'public_health', '/codes.html');
      expect(await page.locator('header nav a[aria-current="page"]').textContent()).toBe('代码映射');
      const queue = page.locator('section#queue tbody tr');
      expect(await queue.count()).toBe(2);
      // The notifiable look-alike is first and flagged.
      const first = queue.first();
      expect(await first.getAttribute('class')).toBe('danger');
      expect(await first.locator('.flag').textContent()).toContain('手足口病');
      expect(await page.locator('#gaps li[data-domain="sex"][data-kind="unmapped"]').count()).toBe(1);
      const figure = async () => (await page.locator('#gap-free').textContent())!.trim();
      const before = Number((await figure()).split('/')[0]);

      // One click on the suggestion.
      await Promise.all([page.waitForURL(/msg=/), first.getByRole('button', { name: /采用 4000 手足口病/ }).click()]);
      expect(await page.locator('#msg').textContent()).toContain('已新增映射');
      expect(await page.locator('section#queue tbody tr[data-code="SZK"]').count()).toBe(0);

      // The add form, for the sex code.
      await page.selectOption('#f-domain', 'sex');
      await page.fill('#f-local', 'X');
      await page.fill('#f-local-name', '不详');
      await page.fill('#f-national', '9');
      await page.selectOption('#f-eq', 'equal');
      // The author is the signed-in user, shown and not editable.
      expect(await page.inputValue('#f-by')).toBe(username);
      await Promise.all([page.waitForURL(/msg=/), page.getByRole('button', { name: '保存映射' }).click()]);
      expect(await page.locator('section#queue tbody tr[data-code="X"]').count()).toBe(0);
      expect(await page.locator('#gaps li[data-domain="sex"]').count()).toBe(0);
      expect(await page.locator('#domains tr[data-domain="sex"] .state-cell').textContent()).toBe('无缺漏');
      // The sex domain is gap-free now. The disease code's mapping closed its unmapped gap, but its domain
      // stays one: no data-set field is read against it at intake (notChecked, docs/code-mapping.md).
      expect(Number((await figure()).split('/')[0])).toBe(before + 1);
      expect(await page.locator('#gaps li[data-domain="nndrsDisease"][data-kind="unmapped"]').count()).toBe(0);
      expect(await page.locator('#gaps li[data-domain="nndrsDisease"][data-kind="notChecked"]').count()).toBe(1);
      expect(await page.locator('section#mappings tbody tr[data-code="X"]').textContent()).toContain(username);

      const stored = await listMappings(db, org);
      expect(stored.map((m) => `${m.domain}:${m.localCode}→${m.nationalCode}`).sort()).toEqual(['nndrsDisease:SZK→4000', 'sex:X→9']);

      await page.screenshot({ path: SCREENSHOT, fullPage: true });

      // Signing out ends the session: the page asks for sign-in again.
      await Promise.all([page.waitForURL(/\/login/), page.getByRole('button', { name: '退出登录' }).click()]);
      await page.goto(`${web}/codes.html`, { waitUntil: 'load' });
      expect(new URL(page.url()).pathname).toBe('/login');
    } finally {
      await ctx.close();
    }
  });

  it('the 用户管理 page: an admin unlocks a locked account with a click; a public-health doctor is refused it', async () => {
    const web = lan;
    const admin = `ad${Math.random().toString(36).slice(2, 8)}`;
    const locked = `lk${Math.random().toString(36).slice(2, 8)}`;
    await createUser(db, { username: admin, role: 'admin', password }, 'test');
    await createUser(db, { username: locked, role: 'public_health', password, displayName: '王医生' }, 'test');
    // Five wrong passwords lock the account (the stack's default).
    const s = { lockoutAfter: 5, lockoutMs: 15 * 60_000, sessionMs: 3_600_000, idleMs: 1_800_000, allowedHosts: new Set<string>() } as ConsoleSettings;
    for (let i = 0; i < 5; i++) await signIn(db, locked, 'wrong-password-x', s, null);
    const ctx = await browser!.newContext({ locale: 'zh-CN', timezoneId: 'Asia/Shanghai', viewport: { width: 1300, height: 900 } });
    const page = await ctx.newPage();
    page.setDefaultTimeout(8000);
    try {
      await page.goto(`${web}/users.html`, { waitUntil: 'load' });
      expect(new URL(page.url()).pathname).toBe('/login');
      await page.fill('#username', admin);
      await page.fill('#password', password);
      await Promise.all([page.waitForURL(/\/users\.html/), page.getByRole('button', { name: '登录' }).click()]);
      expect(await page.title()).toBe('用户管理 · 前置软件控制台');
      expectConsoleFrame(await page.content(), 'admin', '/users.html');
      const row = page.locator('#users tr', { hasText: locked });
      expect(await row.textContent()).toContain('锁定至');
      await page.screenshot({ path: resolve('.data/screenshots/users.png'), fullPage: true });
      await Promise.all([page.waitForURL(/msg=/), row.getByRole('button', { name: '解锁' }).click()]);
      expect(await page.locator('#msg').textContent()).toBe(`已解锁：${locked}`);
      expect(await page.locator('#users tr', { hasText: locked }).textContent()).toContain('正常');
      expect(await page.locator('#audit tbody tr').first().textContent()).toContain('unlocked');
      await Promise.all([page.waitForURL(/\/login/), page.getByRole('button', { name: '退出登录' }).click()]);
      // The unlocked doctor signs in, and the admin's page is not theirs.
      await page.goto(`${web}/login?next=/users.html`, { waitUntil: 'load' });
      await page.fill('#username', locked);
      await page.fill('#password', password);
      const [res] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/users.html')), page.getByRole('button', { name: '登录' }).click()]);
      expect(res.status()).toBe(403);
      await page.waitForLoadState('load');
      expect(await page.locator('h1').textContent()).toBe('无权访问此页面');
      // Refused, the doctor keeps their own navigation and can go on from it.
      expectConsoleFrame(await page.content(), 'public_health', '/users.html');
      await Promise.all([page.waitForURL(/\/codes\.html/), page.locator('header nav').getByRole('link', { name: '代码映射' }).click()]);
      expect(await page.title()).toBe('代码映射 · 前置软件控制台');
    } finally {
      await ctx.close();
    }
  });

  it('the status page still answers on the same port without credentials', async () => {
    const page = await browser!.newPage();
    try {
      const res = await page.goto(`${rt!.portUrls.web}/status.html`, { waitUntil: 'load' });
      expect(res?.status()).toBe(200);
    } finally {
      await page.close();
    }
  });
});
