// The status page in a real browser (Debian's Chromium, driven by playwright-core): the runtime runs
// stack.yml as production does, the web function answers on its hospital port, and the page renders.
// A screenshot is left in .data/screenshots/status.png for a person to look at (Chinese glyphs need
// a CJK font on the machine: Debian's fonts-noto-cjk; without it they render as boxes).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Browser } from 'playwright-core';
import type { RuntimeHandle } from '../../infra/runtime/index.js';
import { startTestFront, type TestFront } from '../setup/front.js';

const SCREENSHOT = resolve('.data/screenshots/status.png');

let rt: RuntimeHandle | undefined;
let browser: Browser | undefined;
let front: TestFront | undefined;

beforeAll(async () => {
  front = await startTestFront();
  rt = front.rt;
  browser = front.browser;
});

afterAll(async () => {
  await front?.close();
});

describe('the status page on the web port', () => {
  it('renders in Chromium: heading, database 正常, and a screenshot for a person to check', async () => {
    const web = rt!.portUrls.web;
    expect(web, 'the runtime opened the web port').toBeTruthy();
    const page = await browser!.newPage({ locale: 'zh-CN', timezoneId: 'Asia/Shanghai', viewport: { width: 1100, height: 900 } });
    try {
      const res = await page.goto(`${web}/status.html`, { waitUntil: 'load' });
      expect(res?.status()).toBe(200);
      expect(await page.title()).toBe('前置软件运行状态');

      const heading = page.getByRole('heading', { level: 1 });
      expect(await heading.isVisible()).toBe(true);
      expect((await heading.textContent())?.trim()).toBe('前置软件运行状态');

      const database = page.locator('section#database');
      expect(await database.getByRole('heading', { level: 2 }).textContent()).toBe('数据库');
      expect(await database.locator('.state').textContent()).toBe('数据库：正常');
      expect(await database.locator('.state').isVisible()).toBe(true);

      for (const h of ['数据上报', '最近一次上报', '软件版本']) {
        expect(await page.getByRole('heading', { level: 2, name: h }).isVisible(), h).toBe(true);
      }

      mkdirSync(resolve('.data/screenshots'), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      expect(existsSync(SCREENSHOT)).toBe(true);
    } finally {
      await page.close();
    }
  });

  it('on a phone (390 px) a long value — a backup object key, a destination, a data type — wraps or scrolls in its section instead of widening the page', async () => {
    const page = await browser!.newPage({ locale: 'zh-CN', viewport: { width: 390, height: 800 } });
    try {
      await page.goto(`${rt!.portUrls.web}/status.html`, { waitUntil: 'load' });
      const [scroll, client] = await page.evaluate(() => {
        const long = 't-fresh/system/2026-12-06/system-20261206T181543Z-1.dump'.repeat(3);
        for (const dd of document.querySelectorAll('dd')) dd.textContent = long;
        // Table cells: a destination or a data type without a break opportunity in it.
        for (const cell of document.querySelectorAll('#uplink th[scope="row"], #uplink td')) cell.textContent = 'emrExClinicalItem'.repeat(3);
        return [document.documentElement.scrollWidth, document.documentElement.clientWidth];
      });
      expect(scroll).toBeLessThanOrEqual(client!);
    } finally {
      await page.close();
    }
  });

  it('/ on the web port lands on the status page', async () => {
    const page = await browser!.newPage();
    try {
      await page.goto(`${rt!.portUrls.web}/`, { waitUntil: 'load' });
      expect(new URL(page.url()).pathname).toBe('/status.html');
    } finally {
      await page.close();
    }
  });
});
