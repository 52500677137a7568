// A doctor's day on the console in Chromium, over plain HTTP by a LAN name (front.lan), against the
// front running stack.yml — what broke when it was tried from outside (docs/console.md, docs/card-form.md):
// - the clinician's card form whose single-sign-on session ends while the doctor types: the page
//   says so at once, a submission keeps the typing on the page, and after the HIS opens the patient
//   again the same page submits the card with everything typed (another patient's session refused);
// - a public-health doctor signed in lands on 运行状态 with the console's navigation and sign-out;
// - a console form posted after the session ended goes to the sign-in page and back to the page it
//   was posted from, not a JSON answer; a page that does not exist is a page, not JSON.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { sample } from '../../infra/simulators/samples.js';
import { signToken, type SsoClaims } from '../../shared/sso/token.js';
import { createUser } from '../../shared/console/index.js';
import { formatLocal } from '../../shared/time/index.js';
import { basicAuthHeader } from '../../shared/http/basic.js';
import { testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { hisPost } from '../setup/stack-runtime.js';
import { startTestFront, type TestFront } from '../setup/front.js';

const SHOTS = resolve('.data/screenshots');
const db = testDb();
const org = uniqueOrg();
const patient = uniqueId('p');
/** A second patient's case, which two doctors open at once. */
const patient2 = uniqueId('p');
const doctor = `ph${Math.random().toString(36).slice(2, 8)}`;
const password = 'console-day-password';
let front: TestFront;
let lan = '';
let key: Buffer;
let caseId = '';
let case2 = '';

const claims = (over: Partial<SsoClaims> = {}): SsoClaims => {
  const now = Math.floor(Date.now() / 1000);
  return { org, doctor: 'D077', doctorName: '刘医生', dept: 'A16', patient, iat: now, exp: now + 120, nonce: randomBytes(16).toString('hex'), ...over };
};

const his = (resource: string, body: unknown) => hisPost(front.rt, resource, body);

/** The card form's fields the pre-fill leaves to the doctor, filled; waits until the live check passes. */
async function fillCard(page: Page, onsetDaysAgo: number, contacts: string): Promise<void> {
  await page.locator('#f-onsetDate').fill(formatLocal(new Date(Date.now() - onsetDaysAgo * 86_400_000)).slice(0, 10));
  await page.locator('#f-diagnoseStateCode').selectOption('2');
  await page.locator('#f-nultitudeTypeCode').selectOption({ index: 5 });
  await page.locator('#f-tel').fill('13800000000');
  await page.locator('#f-contacts').fill(contacts);
  await page.locator('#f-reportZoneCode').fill('110101000');
  await page.waitForFunction(() => document.querySelector('#card')?.getAttribute('data-checked') === '0');
}

async function signIn(page: Page, next = ''): Promise<void> {
  await page.goto(`${lan}/login${next ? `?next=${encodeURIComponent(next)}` : ''}`);
  await page.locator('#username').fill(doctor);
  await page.locator('#password').fill(password);
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: '登录' }).click()]);
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  await createUser(db, { username: doctor, role: 'public_health', password, orgs: [org] }, 'test');
  front = await startTestFront(
    { WEB_ALLOWED_HOSTS: 'localhost,127.0.0.1,[::1],front.lan' },
    { chromiumArgs: ['--host-resolver-rules=MAP front.lan 127.0.0.1'] },
  );
  lan = front.rt.portUrls.web!.replace('127.0.0.1', 'front.lan');
  key = Buffer.from(readFileSync(join(front.dir, 'secrets', 'his-sso-key'), 'utf8').trim(), 'utf8');
  const at = formatLocal(new Date(Date.now() - 30 * 60_000));
  for (const [i, p] of [patient, patient2].entries()) {
    await his('emrPatientInfo', sample('emrPatientInfo', { orgCode: org, id: p, seed: 41 + 10 * i }));
    await his('emrActivityInfo', {
      ...sample('emrActivityInfo', { orgCode: org, id: uniqueId('dx'), patientId: p, seed: 42 + 10 * i }),
      deptCode: 'A16',
      wmDiseaseCode: 'B01.9',
      wmDiseaseName: '水痘，无并发症',
      diseaseCode: '',
      diseaseName: '',
      diagnoseTime: at,
      activityTime: at,
    });
  }
  const auth = { authorization: basicAuthHeader(front.rt.credentials) };
  const end = Date.now() + 90_000;
  for (;;) {
    await (await fetch(`${front.rt.gatewayUrl}/function/warning`, { method: 'POST', headers: { 'x-topic': 'cron-function' } })).body?.cancel();
    const list = (await (await fetch(`${front.rt.gatewayUrl}/function/warning/cases?org=${org}`, { headers: auth })).json()) as {
      cases: Array<{ caseId: string; patientId: string; state: string }>;
    };
    const c = list.cases.find((x) => x.patientId === patient && x.state === 'to_confirm');
    const c2 = list.cases.find((x) => x.patientId === patient2 && x.state === 'to_confirm');
    if (c && c2) {
      caseId = c.caseId;
      case2 = c2.caseId;
      break;
    }
    if (Date.now() > end) throw new Error(`no case within 90 s: ${JSON.stringify(list.cases)}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}, 180_000);

afterAll(async () => {
  await front?.close();
});

describe("the card form when the doctor's single-sign-on session ends while typing", () => {
  it('says so at once, keeps the typing on a submission, and submits it all after the HIS opens the patient again', { timeout: 120_000 }, async () => {
    const ctx = await front.browser.newContext({ locale: 'zh-CN', timezoneId: 'Asia/Shanghai', viewport: { width: 1366, height: 768 } });
    const page = await ctx.newPage();
    page.setDefaultTimeout(10_000);
    const scriptErrors: string[] = [];
    page.on('pageerror', (e) => scriptErrors.push(e.message));
    try {
      // The popup the HIS opens may be a small window: nothing runs off its side.
      await page.setViewportSize({ width: 390, height: 700 });
      await page.goto(`${lan}/sso?token=${encodeURIComponent(signToken(claims(), key))}`);
      await page.waitForURL(/\/popup\.html/);
      // 排除 without a reason: the browser asks for one; posted anyway, the popup says so, the case still open.
      expect(await page.locator('section.case input[name=reason]').getAttribute('required')).not.toBeNull();
      await page.locator('section.case form').evaluate((f) => {
        (f as HTMLFormElement).noValidate = true;
      });
      await Promise.all([page.waitForURL(/\/popup\.html\?msg=/), page.locator('section.case button', { hasText: '排除' }).click()]);
      expect(await page.locator('#msg').textContent()).toContain('请填写排除理由');
      expect(await page.locator(`section.case[data-case="${caseId}"]`).count()).toBe(1);
      for (const path of ['/popup.html', `/card.html?case=${caseId}`]) {
        await page.goto(`${lan}${path}`);
        const [scroll, client] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
        expect(scroll, `${path} at 390 px`).toBeLessThanOrEqual(client!);
      }
      await page.setViewportSize({ width: 1366, height: 768 });
      await page.goto(`${lan}/sso?token=${encodeURIComponent(signToken(claims({ case: caseId }), key))}`);
      await page.waitForURL(/\/card\.html\?case=/);
      await page.waitForFunction(() => document.querySelector('#card')?.getAttribute('data-checked') !== null);
      // Wrong dates are named in the doctor's words: the field's label, never the data set's code.
      // Two days ahead, not one: minutes before the hospital's midnight, tomorrow's date starts within
      // the 5 minutes a clock may run ahead (FUTURE_TOLERANCE_MS, schemas/rules.ts) and is rightly not refused.
      await page.locator('#f-onsetDate').fill(formatLocal(new Date(Date.now() + 2 * 86_400_000)).slice(0, 10));
      await page.locator('#f-birthDate').fill('1800-01-01');
      await page.waitForFunction(() => (document.querySelector('#f-diagnoseTime-err')?.textContent ?? '') !== '');
      const order = (await page.locator('#f-diagnoseTime-err').textContent())!;
      expect(order).toContain('发病日期');
      expect(order).not.toMatch(/[a-z]{4,}[A-Z]/);
      const birth = (await page.locator('#f-birthDate-err').textContent())!;
      expect(birth).toContain('日期');
      expect(birth).not.toContain('yyyy');
      expect(await page.locator('#f-onsetDate-err').textContent()).toContain('晚于当前时间');
      await page.locator('#f-birthDate').fill('1980-08-16');
      await fillCard(page, 2, '刘某某');
      expect(await page.locator('#expired').isVisible()).toBe(false);

      // The network drops (the front restarts): the page says the form cannot be checked or sent,
      // a submission stays on the page; back on line, the next change checks again.
      await ctx.setOffline(true);
      await page.locator('#f-workunit').fill('某小学');
      await page.locator('#expired').waitFor({ state: 'visible' });
      expect(await page.locator('#expired').textContent()).toContain('无法连接前置软件');
      expect(await page.locator('#summary').textContent()).not.toBe('校验通过，可以提交');
      await page.getByRole('button', { name: /提交报告卡/ }).click();
      await page.waitForTimeout(300);
      expect(new URL(page.url()).pathname).toBe('/card.html');
      await ctx.setOffline(false);
      await page.locator('#f-workunit').fill('某小学二部');
      await page.locator('#expired').waitFor({ state: 'hidden' });
      await page.waitForFunction(() => document.querySelector('#card')?.getAttribute('data-checked') === '0');
      expect(await page.locator('#summary').textContent()).toBe('校验通过，可以提交');

      // The session ends (SSO_SESSION_S) while the doctor is still typing.
      await db.query(`UPDATE sso_session SET expires_at = now() - interval '1 second' WHERE org_code = $1 AND patient_id = $2`, [org, patient]);
      await page.locator('#f-notes').fill('发热三天已隔离');
      await page.locator('#expired').waitFor({ state: 'visible' });
      const said = await page.locator('#expired').textContent();
      expect(said).toContain('会话已过期');
      expect(said).toContain('尚未提交');
      expect(await page.locator('#summary').textContent()).not.toBe('校验通过，可以提交');
      // Submitting now keeps the doctor on the page with everything typed; nothing is stored.
      await page.getByRole('button', { name: /提交报告卡/ }).click();
      await page.waitForTimeout(500);
      expect(new URL(page.url()).pathname).toBe('/card.html');
      expect(await page.locator('#f-notes').inputValue()).toBe('发热三天已隔离');
      expect(await page.locator('#expired').isVisible()).toBe(true);
      await page.screenshot({ path: join(SHOTS, 'card-form-expired.png'), fullPage: true });
      const none = await db.query('SELECT id FROM emr_inf_report WHERE org_code = $1', [org]);
      expect(none.rows).toEqual([]);

      // The HIS opens another patient in the same browser: this card is not that session's.
      const other = await ctx.newPage();
      await other.goto(`${lan}/sso?token=${encodeURIComponent(signToken(claims({ patient: uniqueId('p') }), key))}`);
      await page.getByRole('button', { name: /提交报告卡/ }).click();
      await page.waitForFunction(() => (document.querySelector('#expired')?.textContent ?? '').includes('另一位患者'));
      expect(new URL(page.url()).pathname).toBe('/card.html');
      expect(await page.locator('#f-notes').inputValue()).toBe('发热三天已隔离');

      // The HIS opens this patient again: the same page now submits the card, all typing in it.
      await other.goto(`${lan}/sso?token=${encodeURIComponent(signToken(claims(), key))}`);
      await other.close();
      await page.getByRole('button', { name: /提交报告卡/ }).click();
      await page.waitForURL(/\/card\/done\?id=/);
      const cardId = (await page.locator('#card-id').textContent())!;
      const stored = await db.query<{ notes: string | null; zone: string | null }>(
        `SELECT rec_raw->>'notes' AS notes, rec_raw->>'reportZoneCode' AS zone FROM emr_inf_report WHERE org_code = $1 AND id = $2`,
        [org, cardId],
      );
      expect(stored.rows).toHaveLength(1);
      expect(stored.rows[0]!.notes).toBe('发热三天已隔离');
      expect(scriptErrors).toEqual([]);

      // On a shared PC the doctor signs out when done: the popup's session and the console session
      // the HIS's token opened both end, in the database too (a copied cookie opens nothing).
      const ssoCookie = (await ctx.cookies()).find((k) => k.name === 'cdc_sso')!.value;
      await Promise.all([page.waitForURL(/\/sso\/logout/), page.getByRole('button', { name: '退出' }).click()]);
      expect(await page.locator('body').textContent()).toContain('已退出');
      const popup = await page.goto(`${lan}/popup.html`);
      expect(popup?.status()).toBe(401);
      await page.goto(`${lan}/status.html`);
      expect(await page.getByRole('navigation', { name: '控制台' }).count()).toBe(0);
      const replay = await fetch(`${front.rt.portUrls.web}/popup.html`, { headers: { cookie: `cdc_sso=${ssoCookie}` } });
      expect(replay.status).toBe(401);
    } finally {
      await ctx.close();
    }
  });

  it('two doctors with the same case open: the second submission is stopped, with the typing, and no second card is made', { timeout: 120_000 }, async () => {
    const open = async (doctorId: string) => {
      const ctx = await front.browser.newContext({ locale: 'zh-CN', timezoneId: 'Asia/Shanghai', viewport: { width: 1366, height: 768 } });
      const page = await ctx.newPage();
      page.setDefaultTimeout(10_000);
      await page.goto(
        `${lan}/sso?token=${encodeURIComponent(signToken(claims({ patient: patient2, case: case2, doctor: doctorId, doctorName: doctorId }), key))}`,
      );
      await page.waitForURL(/\/card\.html\?case=/);
      await page.waitForFunction(() => document.querySelector('#card')?.getAttribute('data-checked') !== null);
      await fillCard(page, 1, '赵某某');
      return { ctx, page };
    };
    const a = await open('DA1');
    const b = await open('DB2');
    const c = await open('DC3');
    // The warning loop is held off the case (a row lock) so that it is still open when C submits
    // right after A: the moment before the loop has seen A's card.
    const hold = await db.connect();
    try {
      await hold.query('BEGIN');
      await hold.query('SELECT 1 FROM warning_case WHERE case_id = $1 FOR UPDATE', [case2]);
      await a.page.getByRole('button', { name: /提交报告卡/ }).click();
      await a.page.waitForURL(/\/card\/done\?id=/);
      const first = new URL(a.page.url()).searchParams.get('id');
      await c.page.locator('#f-notes').fill('同时提交');
      const res = await Promise.all([c.page.waitForNavigation(), c.page.getByRole('button', { name: /提交报告卡/ }).click()]).then(([r]) => r);
      expect(res?.status()).toBe(400);
      expect(await c.page.locator('#f-diseaseCode-err').textContent()).toContain(`已有报告卡 ${first}`);
      expect(await c.page.locator('#f-notes').inputValue()).toBe('同时提交');
      await hold.query('COMMIT');
      // The warning loop sees A's card (the submission nudged it): the case is no longer open.
      const end = Date.now() + 60_000;
      while (Date.now() < end) {
        await (await fetch(`${front.rt.gatewayUrl}/function/warning`, { method: 'POST', headers: { 'x-topic': 'cron-function' } })).body?.cancel();
        const r = await db.query<{ state: string }>('SELECT state FROM warning_case WHERE case_id = $1', [case2]);
        if (r.rows[0]?.state !== 'to_confirm') break;
        await new Promise((r) => setTimeout(r, 300));
      }
      await b.page.locator('#f-notes').fill('同一病例');
      await b.page.getByRole('button', { name: /提交报告卡/ }).click();
      await b.page.waitForFunction(() => (document.querySelector('#expired')?.textContent ?? '').includes('已处理'));
      const said = (await b.page.locator('#expired').textContent())!;
      expect(said).toContain('重复报告');
      expect(said).not.toContain('另一位患者');
      expect(new URL(b.page.url()).pathname).toBe('/card.html');
      expect(await b.page.locator('#f-notes').inputValue()).toBe('同一病例');
      const cards = await db.query<{ operator_id: string }>('SELECT operator_id FROM emr_inf_report WHERE org_code = $1 AND patient_id = $2', [org, patient2]);
      expect(cards.rows.map((r) => r.operator_id)).toEqual(['DA1']);
    } finally {
      await hold.query('ROLLBACK').catch(() => undefined);
      hold.release();
      await a.ctx.close();
      await b.ctx.close();
      await c.ctx.close();
    }
  });
});

describe('the console for a public-health doctor', () => {
  it('lands on 运行状态 with the navigation and sign-out, and goes on by the navigation', async () => {
    const ctx = await front.browser.newContext({ locale: 'zh-CN', timezoneId: 'Asia/Shanghai', viewport: { width: 1366, height: 768 } });
    const page = await ctx.newPage();
    page.setDefaultTimeout(10_000);
    try {
      await signIn(page);
      expect(new URL(page.url()).pathname).toBe('/status.html');
      const nav = page.getByRole('navigation', { name: '控制台' });
      expect(await nav.getByRole('link').allTextContents()).toContain('病例');
      expect(await nav.getByRole('link', { name: '运行状态' }).getAttribute('aria-current')).toBe('page');
      expect(await page.getByRole('button', { name: '退出登录' }).isVisible()).toBe(true);
      await page.screenshot({ path: join(SHOTS, 'status-signed-in.png') });
      await nav.getByRole('link', { name: '病例' }).click();
      await page.waitForURL(/\/cases\.html/);
      // A card opened from 报告卡 leads back to 报告卡, not to the cases.
      await page.getByRole('navigation', { name: '控制台' }).getByRole('link', { name: '报告卡' }).click();
      await page.waitForURL(/\/cards\.html/);
      await page.locator('#cards tbody a').first().click();
      await page.waitForURL(/\/cards\/[^/]+\/W/);
      await Promise.all([page.waitForURL(/\/cards\.html$/), page.getByRole('link', { name: '← 返回报告卡列表' }).click()]);
      await page.getByRole('navigation', { name: '控制台' }).getByRole('link', { name: '运行状态' }).click();
      await page.waitForURL(/\/status\.html/);
      // A narrow window (a phone, half a 1366 screen): the lists scroll inside the page, never the page sideways.
      for (const width of [683, 390]) {
        await page.setViewportSize({ width, height: 768 });
        for (const path of ['/cases.html', '/cards.html', '/status.html']) {
          await page.goto(`${lan}${path}`);
          const [scroll, client] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
          expect(scroll, `${path} at ${width} px`).toBeLessThanOrEqual(client!);
        }
      }
      await page.screenshot({ path: join(SHOTS, 'status-narrow.png') });
      await page.setViewportSize({ width: 1366, height: 768 });
      await Promise.all([page.waitForURL(/\/login/), page.getByRole('button', { name: '退出登录' }).click()]);
      // Signed out, the status page is the public one again: no navigation.
      await page.goto(`${lan}/status.html`);
      expect(await page.getByRole('navigation', { name: '控制台' }).count()).toBe(0);
      expect(await page.title()).toBe('前置软件运行状态');
    } finally {
      await ctx.close();
    }
  });

  it('a form posted after the session ended goes to the sign-in page and back; an unknown page is a page', async () => {
    const ctx = await front.browser.newContext({ locale: 'zh-CN', timezoneId: 'Asia/Shanghai', viewport: { width: 1366, height: 768 } });
    const page = await ctx.newPage();
    page.setDefaultTimeout(10_000);
    try {
      await signIn(page, `/cases/${caseId}`);
      expect(new URL(page.url()).pathname).toBe(`/cases/${caseId}`);
      // The session ends (idle, or signed out elsewhere) while the page is open.
      await db.query('DELETE FROM console_session WHERE user_id = (SELECT user_id FROM console_user WHERE username = $1)', [doctor]);
      await page.locator('#reveal input[name=reason]').fill('流调核实身份');
      await page.locator('#reveal button').click();
      await page.waitForURL(/\/login/);
      expect(await page.title()).toContain('登录');
      expect(await page.locator('.err').textContent()).toContain('会话已过期');
      await page.locator('#username').fill(doctor);
      await page.locator('#password').fill(password);
      await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: '登录' }).click()]);
      expect(new URL(page.url()).pathname).toBe(`/cases/${caseId}`);

      // So does the code-mapping page's form, which posts to the mapping API (/api/codes/mappings).
      await page.goto(`${lan}/codes.html?org=${org}`);
      await db.query('DELETE FROM console_session WHERE user_id = (SELECT user_id FROM console_user WHERE username = $1)', [doctor]);
      const mapping = page.locator('form[action="/api/codes/mappings"]');
      await mapping.locator('[name=domain]').selectOption('sex');
      await mapping.locator('[name=localCode]').fill('M');
      await mapping.locator('[name=nationalCode]').fill('1');
      await mapping.getByRole('button').first().click();
      await page.waitForURL(/\/login/);
      expect(await page.locator('.err').textContent()).toContain('会话已过期');
      await page.locator('#username').fill(doctor);
      await page.locator('#password').fill(password);
      await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: '登录' }).click()]);
      expect(new URL(page.url()).pathname + new URL(page.url()).search).toBe(`/codes.html?org=${org}`);
      const made = await db.query('SELECT 1 FROM code_mapping WHERE org_code = $1', [org]);
      expect(made.rows).toEqual([]);
      await page.goto(`${lan}/cases/${caseId}`);

      // A stale page's form (the session's token changed: signed in again elsewhere) is a page too.
      const stale = await page.locator('#reveal input[name=_csrf]').getAttribute('value');
      await db.query('UPDATE console_session SET csrf = $2 WHERE user_id = (SELECT user_id FROM console_user WHERE username = $1)', [
        doctor,
        randomBytes(24).toString('base64url'),
      ]);
      expect(stale).toBeTruthy();
      await page.locator('#reveal input[name=reason]').fill('流调核实身份');
      const res = await Promise.all([page.waitForNavigation(), page.locator('#reveal button').click()]).then(([r]) => r);
      expect(res?.status()).toBe(403);
      expect(res?.headers()['content-type']).toContain('text/html');
      expect(await page.locator('#error').textContent()).toContain('页面已过期');
      expect(await page.getByRole('navigation', { name: '控制台' }).count()).toBe(1);

      // The same on the code-mapping page, whose form posts to the mapping API.
      await page.goto(`${lan}/codes.html?org=${org}`);
      await db.query('UPDATE console_session SET csrf = $2 WHERE user_id = (SELECT user_id FROM console_user WHERE username = $1)', [
        doctor,
        randomBytes(24).toString('base64url'),
      ]);
      await mapping.locator('[name=domain]').selectOption('sex');
      await mapping.locator('[name=localCode]').fill('M');
      await mapping.locator('[name=nationalCode]').fill('1');
      const refused = await Promise.all([page.waitForNavigation(), mapping.getByRole('button').first().click()]).then(([r]) => r);
      expect(refused?.status()).toBe(403);
      expect(await page.locator('#error').textContent()).toContain('页面已过期');
      expect(await page.getByRole('link', { name: '返回上一页' }).getAttribute('href')).toBe(`/codes.html?org=${org}`);

      const missing = await page.goto(`${lan}/cases/99999999`);
      expect(missing?.status()).toBe(404);
      expect(missing?.headers()['content-type']).toContain('text/html');
      expect(await page.locator('#error').textContent()).toContain('没有这个病例');
      const nowhere = await page.goto(`${lan}/nope.html`);
      expect(nowhere?.status()).toBe(404);
      expect(await page.locator('#error').textContent()).toContain('页面不存在');
      // A script or the HIS (no text/html in Accept) still gets the JSON answer.
      const api = await fetch(`${front.rt.portUrls.web}/nope.html`);
      expect(api.headers.get('content-type')).toContain('application/json');
    } finally {
      await ctx.close();
    }
  });
});
