// A doctor opening the popup from the HIS at a busy moment, in Chromium against the front running
// stack.yml (docs/console.md "Errors"): the web function at its max_inflight, the runtime's own 429
// is a page saying 系统繁忙，请稍后重试 — not the JSON envelope — which opens the same link again by
// itself once the front has room, and the doctor lands on the popup. A form posted at that moment
// gets the same page and is never sent again by itself.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../../shared/sso/token.js';
import { uniqueOrg } from '../setup/db.js';
import { startTestFront, type TestFront } from '../setup/front.js';

let front: TestFront;
let web = '';

beforeAll(async () => {
  front = await startTestFront();
  web = front.rt.portUrls.web!;
});

afterAll(async () => {
  await front?.close();
});

/**
 * Runs `during` with the web function's replicas stopped and every slot held by a page sent to them
 * (16 each), then lets them go on and waits for those pages. Every wait in `during` is bounded, so a
 * failure lets the replicas go on for the next test.
 */
async function busy(during: () => Promise<void>): Promise<void> {
  const pids = front.rt.replicas('web').flatMap((r) => (r.pid ? [r.pid] : []));
  expect(pids.length).toBeGreaterThan(0);
  for (const pid of pids) process.kill(pid, 'SIGSTOP');
  const held: Promise<unknown>[] = [];
  try {
    for (let i = 0; i < 16 * pids.length; i++) held.push(fetch(`${web}/status.html`).then((r) => r.arrayBuffer()));
    const inflight = () => front.rt.replicas('web').reduce((n, r) => n + r.inflight, 0);
    for (let i = 0; i < 100 && inflight() < 16 * pids.length; i++) await new Promise((r) => setTimeout(r, 50));
    expect(inflight()).toBe(16 * pids.length);
    await during();
  } finally {
    for (const pid of pids) process.kill(pid, 'SIGCONT');
  }
  await Promise.all(held);
}

describe('the web function at its max_inflight, seen in a browser', () => {
  it('the SSO link shows 系统繁忙，请稍后重试 and opens the popup by itself once there is room', async () => {
    const key = Buffer.from(readFileSync(join(front.dir, 'secrets', 'his-sso-key'), 'utf8').trim(), 'utf8');
    const now = Math.floor(Date.now() / 1000);
    const token = signToken({ org: uniqueOrg(), doctor: 'D0099', patient: 'P99', iat: now, exp: now + 120, nonce: randomBytes(12).toString('base64url') }, key);
    const page = await front.browser.newPage({ locale: 'zh-CN' });
    try {
      await busy(async () => {
        const res = await page.goto(`${web}/sso?token=${encodeURIComponent(token)}`, { waitUntil: 'load', timeout: 10_000 });
        expect(res?.status()).toBe(429);
        expect(await page.getByRole('heading', { level: 1 }).textContent({ timeout: 5000 })).toBe('系统繁忙，请稍后重试');
        expect(await page.locator('#refresh').textContent({ timeout: 5000 })).toContain('秒后自动重新打开');
      });
      await page.waitForURL(/\/popup\.html$/, { timeout: 15_000 });
      expect(await page.title()).not.toContain('系统繁忙');
    } finally {
      await page.close();
    }
  });

  it('a form posted at that moment gets the page and is not sent again', async () => {
    const page = await front.browser.newPage({ locale: 'zh-CN' });
    const posts: string[] = [];
    page.on('request', (r) => {
      if (r.method() === 'POST') posts.push(r.url());
    });
    try {
      await page.goto(`${web}/login`);
      await busy(async () => {
        await page.locator('#username').fill('nobody', { timeout: 5000 });
        await page.locator('#password').fill('not-the-password', { timeout: 5000 });
        await Promise.all([page.waitForNavigation({ timeout: 10_000 }), page.getByRole('button', { name: '登录' }).click({ timeout: 5000 })]);
        expect(await page.getByRole('heading', { level: 1 }).textContent({ timeout: 5000 })).toBe('系统繁忙，请稍后重试');
        expect(await page.locator('#not-done').textContent({ timeout: 5000 })).toContain('不会自动重新提交');
      });
      // Past its Retry-After, with room again: still the same page, the post sent once.
      await new Promise((r) => setTimeout(r, 3000));
      expect(await page.getByRole('heading', { level: 1 }).textContent({ timeout: 5000 })).toBe('系统繁忙，请稍后重试');
      expect(posts).toEqual([`${web}/login`]);
    } finally {
      await page.close();
    }
  });
});
