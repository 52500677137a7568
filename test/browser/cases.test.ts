// The 病例 page in Debian's Chromium, served by the web function under the runtime: a public-health
// doctor signs in by the console's LAN name, finds a case the warning loop raised from a cholera
// diagnosis the HIS sent through the data port at the top of the queue, opens it from the queue, sees the patient masked (the ID number
// never in clear in the page), reveals it with a reason and sees it in full; every view and the reveal
// are audited with the doctor; a reveal without a reason is refused; a clinician gets 403; once a
// cholera card has come the doctor assigns herself and verifies the case by clicks. Screenshots:
// .data/screenshots/cases.png, case-verify.png, case-verified.png.
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sample } from '../../infra/simulators/samples.js';
import { createUser } from '../../shared/console/index.js';
import { mask } from '../../shared/ingest/mask.js';
import { testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { startTestFront, type TestFront } from '../setup/front.js';

const db = testDb();
const org = uniqueOrg();
const doctor = `ph${Math.random().toString(36).slice(2, 8)}`;
const clinician = `cl${Math.random().toString(36).slice(2, 8)}`;
const password = 'cases-browser-password';
const patientId = uniqueId('pt');
let idCard = '';
let patientName = '';
let caseId = '';
let front: TestFront | undefined;
let lan = '';

beforeAll(async () => {
  await createUser(db, { username: doctor, role: 'public_health', password, orgs: [org] }, 'test');
  await createUser(db, { username: clinician, role: 'clinician', password, orgs: [org] }, 'test');
  front = await startTestFront(
    { WEB_ALLOWED_HOSTS: 'localhost,127.0.0.1,[::1],front.lan' },
    { chromiumArgs: ['--host-resolver-rules=MAP front.lan 127.0.0.1'] },
  );
  lan = front.rt.portUrls.web!.replace('127.0.0.1', 'front.lan');
  // The HIS's records through the data port (the front seals the ID number with its own keys).
  const patient = sample('emrPatientInfo', { orgCode: org, id: patientId, seed: 81 });
  idCard = String(patient.idCard);
  patientName = String(patient.patientName);
  const dx = {
    ...sample('emrActivityInfo', { orgCode: org, id: uniqueId('dx'), patientId, seed: 82 }),
    activityTypeCode: '1',
    activityTypeName: '门诊',
    wmDiseaseCode: 'A00.9',
    wmDiseaseName: '霍乱',
    diseaseCode: '',
    diseaseName: '',
  };
  for (const [resource, rec] of [
    ['emrPatientInfo', patient],
    ['emrActivityInfo', dx],
  ] as const) {
    const res = await fetch(`${front.rt.portUrls.data}/hclient/emr/receive/${resource}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(rec),
    });
    expect(res.status, await res.clone().text()).toBe(200);
  }
  // The warning function (as its cron would), until it has raised the case.
  const end = Date.now() + 90_000;
  for (;;) {
    await fetch(`${front.rt.gatewayUrl}/function/warning`, { method: 'POST', headers: { 'x-topic': 'cron-function' } });
    const c = await db.query<{ case_id: string }>('SELECT case_id FROM warning_case WHERE org_code = $1 AND patient_id = $2', [org, patientId]);
    if (c.rows[0]) {
      caseId = String(c.rows[0].case_id);
      break;
    }
    if (Date.now() > end) throw new Error('the warning function raised no case');
    await new Promise((ok) => setTimeout(ok, 200));
  }
}, 180_000);
afterAll(async () => {
  await front?.close();
});

/** A report card of the patient (their identity as the patient record has it) through the data port. */
async function sendCard(cardId: string, over: Record<string, unknown> = {}): Promise<void> {
  const patient = sample('emrPatientInfo', { orgCode: org, id: patientId, seed: 81 });
  const card = {
    ...sample('emrInfReport', { orgCode: org, id: cardId, patientId, seed: 3 }),
    ...Object.fromEntries(['patientName', 'idCardTypeCode', 'idCardTypeName', 'idCard', 'genderCode', 'genderName', 'birthDate'].map((k) => [k, patient[k]])),
    ...over,
  };
  const res = await fetch(`${front!.rt.portUrls.data}/hclient/emr/receive/emrInfReport`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(card),
  });
  expect(res.status, await res.clone().text()).toBe(200);
}

const signIn = async (user: string) => {
  const ctx = await front!.browser.newContext({ locale: 'zh-CN', timezoneId: 'Asia/Shanghai', viewport: { width: 1300, height: 1000 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(20_000);
  await page.goto(`${lan}/cases.html`, { waitUntil: 'load' });
  await page.fill('#username', user);
  await page.fill('#password', password);
  await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: '登录' }).click()]);
  return { ctx, page };
};

describe('the 病例 page', () => {
  it('lists the case, opens it from the queue masked, and reveals the patient with a reason, audited', async () => {
    const { ctx, page } = await signIn(doctor);
    try {
      expect(new URL(page.url()).pathname).toBe('/cases.html');
      const row = page.locator(`#cases tr[data-case="${caseId}"]`);
      expect(await row.locator('td').nth(1).textContent()).toContain('霍乱');
      expect(await row.locator('td').nth(2).textContent()).toBe('待确认');
      // The search narrows to it.
      await page.fill('input[name="q"]', patientId);
      await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: '查询' }).click()]);
      expect(await page.locator('#cases tbody tr').count()).toBe(1);
      await Promise.all([page.waitForURL(new RegExp(`/cases/${caseId}(\\?s=[0-9a-f]{32})?$`)), row.locator('a').click()]);
      const masked = await page.content();
      expect(masked).not.toContain(idCard);
      expect(await page.locator('#patient').textContent()).toContain(String(mask('idno', idCard)));
      // A reveal without a reason is refused by the front (the form's own check bypassed).
      const reason = page.locator('#reveal input[name="reason"]');
      await reason.evaluate((el) => el.removeAttribute('minlength'));
      await reason.fill('x');
      const [bare] = await Promise.all([page.waitForResponse(/\/reveal(\?s=[0-9a-f]{32})?$/), page.getByRole('button', { name: '显示' }).click()]);
      expect(bare.status()).toBe(400);
      expect(await page.content()).not.toContain(idCard);
      await page.goto(`${lan}/cases/${caseId}`, { waitUntil: 'load' });
      await page.fill('#reveal input[name="reason"]', '核实报告卡身份证号');
      await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: '显示' }).click()]);
      expect(await page.locator('#patient').textContent()).toContain(idCard);
      mkdirSync(resolve('.data/screenshots'), { recursive: true });
      await page.screenshot({ path: resolve('.data/screenshots/cases.png'), fullPage: true });
      const audit = await db.query<{ action: string; detail: string; address: string | null }>(
        "SELECT action, detail, address FROM console_audit WHERE username = $1 AND action IN ('view-case', 'reveal') ORDER BY audit_id",
        [doctor],
      );
      expect(audit.rows.map((r) => r.action)).toEqual(['view-case', 'view-case', 'reveal']);
      // Each with the browser's address (here loopback).
      expect(audit.rows.map((r) => r.address)).toEqual(['127.0.0.1', '127.0.0.1', '127.0.0.1']);
      expect(audit.rows[2]!.detail).toContain('核实报告卡身份证号');
      expect(audit.rows.map((r) => r.detail).join(' ')).not.toContain(idCard);
    } finally {
      await ctx.close();
    }
  });

  it('shows a report card the HIS sent with its personal fields masked, and reveals them with a reason, audited', async () => {
    // The card through the data port, for the same (adult) patient.
    const cardId = uniqueId('card');
    await sendCard(cardId);
    const { ctx, page } = await signIn(doctor);
    try {
      // From the card list (报告卡) by a click, as a doctor works it.
      await page.goto(`${lan}/cards.html`, { waitUntil: 'load' });
      await page.fill('#search input[name="q"]', cardId);
      await Promise.all([page.waitForURL(/\/cards\.html\?s=[0-9a-f]{32}$/), page.getByRole('button', { name: '查询' }).click()]);
      expect(await page.locator(`#cards tr[data-card="${cardId}"]`).count()).toBe(1);
      mkdirSync(resolve('.data/screenshots'), { recursive: true });
      await page.screenshot({ path: resolve('.data/screenshots/cards.png'), fullPage: true });
      await Promise.all([page.waitForURL(`**/cards/${org}/${cardId}`), page.locator(`#cards tr[data-card="${cardId}"] a`).click()]);
      expect(await page.locator('#card-status').textContent()).toMatch(/已保存|已上报|平台已接收/);
      expect(await page.content()).not.toContain(idCard);
      expect(await page.locator('#card').textContent()).toContain(String(mask('idno', idCard)));
      await page.fill('#reveal input[name="reason"]', '核对报告卡与病例');
      await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: '显示' }).click()]);
      expect(await page.locator('#card').textContent()).toContain(idCard);
      const audit = await db.query<{ action: string }>('SELECT action FROM console_audit WHERE username = $1 AND detail LIKE $2 ORDER BY audit_id', [
        doctor,
        `%${cardId}%`,
      ]);
      expect(audit.rows.map((r) => r.action)).toEqual(['view-card', 'reveal']);
    } finally {
      await ctx.close();
    }
  });

  it('a search never puts what was typed (a name, an ID number) in a URL or a log; back and reload show the same results', async () => {
    const { ctx, page } = await signIn(doctor);
    const urls: string[] = [];
    page.on('request', (r) => {
      urls.push(r.url());
      const referer = r.headers().referer;
      if (referer) urls.push(referer);
    });
    try {
      // What a doctor types: the patient's name, then the ID number; each finds the case.
      for (const typed of [patientName, idCard]) {
        await page.fill('#search input[name="q"]', typed);
        await Promise.all([page.waitForURL(/\/cases\.html\?s=[0-9a-f]{32}$/), page.getByRole('button', { name: '查询' }).click()]);
        expect(await page.locator('#search input[name="q"]').inputValue()).toBe(typed);
        expect(await page.locator(`#cases tr[data-case="${caseId}"]`).count(), typed).toBe(1);
      }
      // A search that finds the case (its number; other patients' ids may hold the digits too), opened
      // from the list, then back to it: the same list, no resubmission.
      await page.fill('#search input[name="q"]', caseId);
      await Promise.all([page.waitForURL(/\/cases\.html\?s=[0-9a-f]{32}$/), page.getByRole('button', { name: '查询' }).click()]);
      const listUrl = page.url();
      const rows = await page.locator('#cases tbody tr').allTextContents();
      expect(await page.locator(`#cases tr[data-case="${caseId}"]`).count()).toBe(1);
      const open = () =>
        Promise.all([page.waitForURL(new RegExp(`/cases/${caseId}\\?s=[0-9a-f]{32}$`)), page.locator(`#cases tr[data-case="${caseId}"] a`).click()]);
      await open();
      await page.goBack({ waitUntil: 'load' });
      expect(page.url()).toBe(listUrl);
      expect(await page.locator('#search input[name="q"]').inputValue()).toBe(caseId);
      expect(await page.locator('#cases tbody tr').allTextContents()).toEqual(rows);
      await page.reload({ waitUntil: 'load' });
      expect(await page.locator('#cases tbody tr').allTextContents()).toEqual(rows);
      // 返回病例列表 on the case, also after a reveal, leads back to the same list.
      await open();
      await page.fill('#reveal input[name="reason"]', '核实患者身份信息');
      await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: '显示' }).click()]);
      await Promise.all([page.waitForURL(listUrl), page.locator('#back').click()]);
      expect(await page.locator('#cases tbody tr').allTextContents()).toEqual(rows);
    } finally {
      await ctx.close();
    }
    expect(urls.length).toBeGreaterThan(5);
    for (const needle of [patientName, encodeURIComponent(patientName), idCard, patientId]) {
      expect(
        urls.filter((u) => u.includes(needle) || decodeURIComponent(u.replaceAll('+', ' ')).includes(needle)),
        needle,
      ).toEqual([]);
    }
    // Nor in any log of the front (the runtime's and every function's).
    const logs = readdirSync(resolve(front!.dir, 'logs'), { recursive: true, withFileTypes: true })
      .filter((f) => f.isFile())
      .map((f) => readFileSync(resolve(f.parentPath, f.name), 'utf8'))
      .join('\n');
    expect(logs.length).toBeGreaterThan(0);
    expect(logs).not.toContain(patientName);
    expect(logs).not.toContain(idCard);
  });

  // Last: it moves the case on (待核查, then 已报告).
  it('verifies the case once its card has come: the doctor assigns it to herself, finds it in her queue and verifies it with a note by clicks, in its history and the audit', async () => {
    // A cholera card for the patient through the data port; the warning function finds it.
    const cardId = uniqueId('cv');
    await sendCard(cardId, { diseaseCode: '0200', diseaseName: '霍乱' });
    const end = Date.now() + 90_000;
    for (;;) {
      await fetch(`${front!.rt.gatewayUrl}/function/warning`, { method: 'POST', headers: { 'x-topic': 'cron-function' } });
      const st = await db.query<{ state: string }>('SELECT state FROM warning_case WHERE case_id = $1', [caseId]);
      if (st.rows[0]?.state === 'to_verify') break;
      if (Date.now() > end) throw new Error(`the case did not wait for verification: ${st.rows[0]?.state}`);
      await new Promise((ok) => setTimeout(ok, 200));
    }
    const { ctx, page } = await signIn(doctor);
    try {
      await page.goto(`${lan}/cases/${caseId}`, { waitUntil: 'load' });
      expect(await page.locator('#state').textContent()).toBe('待核查');
      expect(await page.locator('#verifier').textContent()).toBe('未指派');
      await Promise.all([page.waitForURL(`**/cases/${caseId}`), page.getByRole('button', { name: '指派给我' }).click()]);
      expect(await page.locator('#verifier').textContent()).toBe(doctor);
      // Her queue (只看指派给我核查的) holds it.
      await page.goto(`${lan}/cases.html`, { waitUntil: 'load' });
      await Promise.all([page.waitForURL('**/cases.html?mine=1'), page.locator('#queue').click()]);
      expect(await page.locator('#cases tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-case')))).toEqual([caseId]);
      await page.goto(`${lan}/cases/${caseId}`, { waitUntil: 'load' });
      mkdirSync(resolve('.data/screenshots'), { recursive: true });
      await page.screenshot({ path: resolve('.data/screenshots/case-verify.png'), fullPage: true });
      await page.fill('#verify input[name="note"]', '已与接诊医生核实诊断');
      await Promise.all([page.waitForURL(`**/cases/${caseId}`), page.getByRole('button', { name: '核查通过' }).click()]);
      expect(await page.locator('#state').textContent()).toBe('已报告');
      // Verified: nothing left to decide on the page.
      expect(await page.locator('#verify').count()).toBe(0);
      const last = page.locator('#events tbody tr').last();
      expect(await last.locator('td').nth(1).textContent()).toBe(`console:${doctor}`);
      expect(await last.locator('td').nth(2).textContent()).toBe('待核查 → 已报告');
      expect(await last.locator('td').nth(3).textContent()).toContain('已与接诊医生核实诊断');
      await page.screenshot({ path: resolve('.data/screenshots/case-verified.png'), fullPage: true });
      // A reload is a GET (the post answered 303): the case stays as it is.
      await page.reload({ waitUntil: 'load' });
      expect(await page.locator('#state').textContent()).toBe('已报告');
      // Posted again (a second tab, a replayed form): refused, the state named.
      // (a form built in the page: the console's pages allow no script requests, only form posts)
      const [again] = await Promise.all([
        page.waitForResponse(new RegExp(`/cases/${caseId}/verify$`)),
        page.evaluate((id) => {
          const f = document.createElement('form');
          f.method = 'post';
          f.action = `/cases/${id}/verify`;
          const csrf = (document.querySelector('input[name="_csrf"]') as HTMLInputElement).value;
          for (const [name, value] of [
            ['_csrf', csrf],
            ['note', '再次核查'],
          ]) {
            const i = document.createElement('input');
            i.name = name!;
            i.value = value!;
            f.append(i);
          }
          document.body.append(f);
          f.submit();
        }, caseId),
      ]);
      expect(again.status()).toBe(409);
      expect(await again.text()).toContain('病例当前状态为已报告，不能核查');
      const row = await db.query<{ state: string; verified_at: Date | null; verifier: string }>(
        'SELECT state, verified_at, verifier FROM warning_case WHERE case_id = $1',
        [caseId],
      );
      expect(row.rows[0]).toMatchObject({ state: 'reported', verifier: doctor });
      expect(row.rows[0]!.verified_at).toBeInstanceOf(Date);
      const audit = await db.query<{ action: string; detail: string }>(
        "SELECT action, detail FROM console_audit WHERE username = $1 AND action IN ('assign-case', 'verify-case') ORDER BY audit_id",
        [doctor],
      );
      expect(audit.rows.map((r) => r.action)).toEqual(['assign-case', 'verify-case']);
      expect(audit.rows[1]!.detail).toContain('已与接诊医生核实诊断');
    } finally {
      await ctx.close();
    }
  });

  it('a clinician cannot open the cases', async () => {
    const { ctx, page } = await signIn(clinician);
    try {
      const res = await page.goto(`${lan}/cases/${caseId}`);
      expect(res!.status()).toBe(403);
    } finally {
      await ctx.close();
    }
  });
});
