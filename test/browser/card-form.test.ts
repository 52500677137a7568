// The clinician loop of deployment variant A in a real browser (Debian's Chromium, playwright-core),
// against the front running stack.yml: a cholera diagnosis posted on 8881 becomes a pending case; the
// HIS opens the front's popup by single sign-on (a token signed with the installation's his-sso-key);
// the doctor sees the case and its 2-hour clock, opens the pre-filled card, is told live what is
// missing, completes and submits it; the card is stored through the same pipeline as on 8881 (the
// HIS reads its fate there), reaches the national platform simulator, and the popup shows it
// accepted; the case goes to public health's verification. Each view of the popup and of the form
// leaves one audit row (`sso:<doctor>`, the org, case and patient ids), and neither the audit nor any
// log line holds the patient's personal data. A token used twice, or signed with another key, opens
// nothing. A card the platform returns is corrected from the popup under its own id and accepted as
// corrected. Screenshots: .data/screenshots/sso-popup.png, card-form.png, card-done.png, card-correct.png.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codedDiagnosis, sample } from '../../infra/simulators/samples.js';
import { resources } from '../../schemas/index.js';
import { signToken, type SsoClaims } from '../../shared/sso/token.js';
import { startPlatformSimulator, type PlatformHandle } from '../../infra/simulators/platform.js';
import { formatLocal } from '../../shared/time/index.js';
import { onlyNationalPlatform, testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { redeployPush } from '../../infra/soak/harness.js';
import { hisPost } from '../setup/stack-runtime.js';
import { startTestFront, type TestFront } from '../setup/front.js';
import { basicAuthHeader } from '../../shared/http/basic.js';

const SHOTS = resolve('.data/screenshots');
let front: TestFront;
let sim: PlatformHandle;
const db = testDb();
const dest = `cf${Math.random().toString(36).slice(2, 8)}`;
let key: Buffer;
const org = uniqueOrg();
const patient = uniqueId('p');
let caseId = '';
/** The card the first submission stored (the patient's cholera card). */
let choleraCard = '';
let patientRecord: Record<string, unknown> = {};
const personal = new Set<string>();

/** The audit rows of the doctor's views of this org's patient (docs/card-form.md "Audit"). */
async function views(): Promise<Array<{ username: string; action: string; detail: string }>> {
  const r = await db.query<{ username: string; action: string; detail: string }>(
    `SELECT username, action, detail FROM console_audit WHERE action IN ('view-popup', 'view-card-form') AND detail LIKE $1 ORDER BY audit_id`,
    [`%机构 ${org}，%`],
  );
  return r.rows;
}

const basic = () => ({ authorization: basicAuthHeader(front.rt.credentials) });

const his = (resource: string, body: unknown) => hisPost(front.rt, resource, body);

/** Runs the warning function as its cron does until patient `who`'s case is in `state`. */
async function warnUntil(state: string, who = patient): Promise<{ caseId: string; state: string }> {
  const end = Date.now() + 60_000;
  for (;;) {
    await (await fetch(`${front.rt.gatewayUrl}/function/warning`, { method: 'POST', headers: { 'x-topic': 'cron-function' } })).body?.cancel();
    const list = (await (await fetch(`${front.rt.gatewayUrl}/function/warning/cases?org=${org}`, { headers: basic() })).json()) as {
      cases: Array<{ caseId: string; patientId: string; state: string }>;
    };
    const c = list.cases.find((x) => x.patientId === who);
    if (c && c.state === state) return c;
    if (Date.now() > end) throw new Error(`case not ${state} within 60 s: ${JSON.stringify(list.cases)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const claims = (over: Partial<SsoClaims> = {}): SsoClaims => {
  const now = Math.floor(Date.now() / 1000);
  return { org, doctor: 'D042', doctorName: '王医生', dept: 'A16', patient, iat: now, exp: now + 120, nonce: randomBytes(16).toString('hex'), ...over };
};

/** The HIS's outpatient diagnosis of patient `who` (ICD-10 `code`), made `minutesAgo`, through the data port. */
async function diagnose(code: string, name: string, minutesAgo: number, seed: number, who = patient): Promise<void> {
  const at = formatLocal(new Date(Date.now() - minutesAgo * 60_000));
  await his('emrActivityInfo', {
    ...codedDiagnosis({ orgCode: org, id: uniqueId('dx'), patientId: who, seed, code, name, diagnosedAt: at }),
    deptCode: 'A16',
  });
}

/** This org's cards at the national platform are what this file's destination says (test/setup/db.ts). */
const ours = () => onlyNationalPlatform(db, [org], dest);

/** What the form cannot pre-fill, as a doctor completes it; then the live check's verdict. */
async function completeCard(page: Page): Promise<void> {
  await page.locator('#f-onsetDate').fill(formatLocal(new Date(Date.now() - 2 * 86_400_000)).slice(0, 10));
  await page.locator('#f-diagnoseStateCode').selectOption('2');
  await page.locator('#f-nultitudeTypeCode').selectOption({ index: 5 });
  await page.locator('#f-tel').fill('13800000000');
  await page.locator('#f-contacts').fill('王某某');
  await page.locator('#f-reportZoneCode').fill('110101000');
  await page
    .waitForFunction(() => document.querySelector('#card')?.getAttribute('data-checked') === '0', undefined, { timeout: 10_000 })
    .catch(() => undefined);
}

/**
 * Whether version `version` of card `id` has its receipt from this file's platform recorded: the
 * simulator holds a card before push has written its receipt, and the popup reads the receipt.
 */
async function receipted(id: string, version: number): Promise<boolean> {
  const r = await db.query('SELECT 1 FROM uplink_delivery WHERE org_code = $1 AND record_id = $2 AND version = $3 AND destination = $4', [
    org,
    id,
    version,
    dest,
  ]);
  return r.rowCount! > 0;
}

/** Runs the push function as its cron does until `done` holds (60 s at most). */
async function pushUntil(done: () => boolean | Promise<boolean>): Promise<void> {
  const end = Date.now() + 60_000;
  while (!(await done()) && Date.now() < end) {
    await fetch(`${front.rt.gatewayUrl}/function/push`, { method: 'POST', headers: { 'x-topic': 'cron-function' } })
      .then((r) => r.body?.cancel())
      .catch(() => undefined);
    await new Promise((r) => setTimeout(r, 500));
  }
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  sim = await startPlatformSimulator({ role: 'national' });
  // A national destination of this test's own: the shared test database's `national` rows stay with
  // the files that wait on them (NATIONAL_URL empty leaves that destination unconfigured here).
  await db.query(`INSERT INTO uplink_destination (name, kind, enabled) VALUES ($1, 'national', true)`, [dest]);
  front = await startTestFront({ NATIONAL_URL: '', PUSH_NUDGE_URL: '' });
  await redeployPush(front.rt, { [`${dest.toUpperCase()}_URL`]: sim.url });
  key = Buffer.from(readFileSync(join(front.dir, 'secrets', 'his-sso-key'), 'utf8').trim(), 'utf8');
  const p = sample('emrPatientInfo', { orgCode: org, id: patient, seed: 11 });
  patientRecord = p;
  // The patient's personal values, to look for where they must not be (the audit, the logs): names of
  // three characters or more, other values of six or more (shorter ones occur in ordinary text).
  for (const [k, def] of Object.entries(resources.emrPatientInfo!.fields)) {
    const v = p[k];
    if (def.personal && typeof v === 'string' && v.length >= (def.personal === 'name' ? 3 : 6)) personal.add(v);
  }
  await his('emrPatientInfo', p);
  await diagnose('A00.9', '霍乱', 20, 12);
  caseId = (await warnUntil('to_confirm')).caseId;
}, 180_000);

afterAll(async () => {
  await front?.close();
  await sim?.close();
  await db.query('UPDATE uplink_destination SET enabled = false WHERE name = $1', [dest]);
});

describe('the popup and card form opened from the HIS by single sign-on', () => {
  it('refuses a token signed with another key, and opens nothing without a session', async () => {
    const web = front.rt.portUrls.web!;
    const forged = signToken(claims(), randomBytes(32));
    const res = await fetch(`${web}/sso?token=${encodeURIComponent(forged)}`, { redirect: 'manual' });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { desc: string }).desc).toContain('签名不符');
    const popup = await fetch(`${web}/popup.html`, { redirect: 'manual' });
    expect(popup.status).toBe(401);
    expect(await popup.text()).toContain('请从 HIS 中重新打开');
  });

  it('signs in, shows the case, checks the card live, submits it, and the case goes to verification', { timeout: 120_000 }, async () => {
    const web = front.rt.portUrls.web!;
    const token = signToken(claims(), key);
    const ctx = await front.browser.newContext({ locale: 'zh-CN', timezoneId: 'Asia/Shanghai', viewport: { width: 1100, height: 1300 } });
    const page = await ctx.newPage();
    page.setDefaultTimeout(10_000);
    const scriptErrors: string[] = [];
    page.on('pageerror', (e) => scriptErrors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') scriptErrors.push(m.text());
    });
    try {
      const first = await page.goto(`${web}/sso?token=${encodeURIComponent(token)}`, { waitUntil: 'load' });
      expect(first?.status()).toBe(200);
      expect(new URL(page.url()).pathname).toBe('/popup.html');
      expect(await page.title()).toBe('传染病报告提醒');
      const header = await page.locator('header p').textContent();
      expect(header).toContain('王医生');
      expect(header).toContain(patient);
      const caseBox = page.locator('section.case');
      expect(await caseBox.count()).toBe(1);
      expect(await caseBox.locator('h2').textContent()).toMatch(/霍乱（甲类\/按甲类管理，2 小时内报告）\s+剩余 1 小时 (39|40) 分/);
      expect(await caseBox.locator('tbody tr td').first().textContent()).toBe('诊断');
      await page.screenshot({ path: join(SHOTS, 'sso-popup.png'), fullPage: true });
      // The view is audited once, as the doctor's, by reference: the org, the case, the patient's id.
      expect(await views()).toEqual([{ username: 'sso:D042', action: 'view-popup', detail: `报告提醒 病例 ${caseId}（机构 ${org}，患者 ${patient}）` }]);

      // The same token again is a replay: refused, even in the same browser.
      const again = await fetch(`${web}/sso?token=${encodeURIComponent(token)}`, { redirect: 'manual' });
      expect(again.status).toBe(401);
      expect(((await again.json()) as { desc: string }).desc).toContain('已使用过');

      await page.keyboard.press('Alt+F').catch(() => undefined);
      await caseBox.getByText('填写报告卡').click();
      await page.waitForURL(/\/card\.html\?case=/);
      expect(await page.title()).toBe('传染病报告卡');
      // Pre-filled from the patient and the diagnosis.
      expect(await page.locator('#f-diseaseCode').inputValue()).toBe('0200');
      expect(await page.locator('#f-patientName').inputValue()).not.toBe('');
      expect(await page.locator('#f-fillDoctor').inputValue()).toBe('王医生');
      expect(await page.locator('#f-diagnoseTime').inputValue()).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/);
      // The live check names what is still missing, beside the field.
      await page.waitForFunction(() => document.querySelector('#card')?.getAttribute('data-checked') !== null);
      expect(await page.locator('#f-onsetDate-err').textContent()).toContain('必填');
      expect(await page.locator('#f-onsetDate').getAttribute('aria-invalid')).toBe('true');
      expect(await page.locator('#f-diagnoseStateCode-err').textContent()).toContain('必填');
      // The form shows the patient in full: its view is one more audit row, without any of it.
      expect(await views()).toEqual([
        { username: 'sso:D042', action: 'view-popup', detail: `报告提醒 病例 ${caseId}（机构 ${org}，患者 ${patient}）` },
        { username: 'sso:D042', action: 'view-card-form', detail: `报告卡表单 病例 ${caseId}（机构 ${org}，患者 ${patient}）` },
      ]);
      expect(personal.size).toBeGreaterThan(2);
      expect(await page.locator('#f-patientName').inputValue()).toBe(patientRecord.patientName);
      expect(await page.locator('#f-idCard').inputValue()).toBe(patientRecord.idCard);
      expect(personal.has(String(patientRecord.idCard))).toBe(true);

      // A doctor's mistake is caught as they type: an onset in the future. Two days ahead, not one:
      // minutes before the hospital's midnight, tomorrow's date starts within the 5 minutes a clock
      // may run ahead (FUTURE_TOLERANCE_MS, schemas/rules.ts) and is rightly not refused.
      await page.locator('#f-onsetDate').fill(formatLocal(new Date(Date.now() + 2 * 86_400_000)).slice(0, 10));
      await page.waitForFunction(
        () =>
          (document.querySelector('#f-onsetDate-err')?.textContent ?? '').length > 0 &&
          !document.querySelector('#f-onsetDate-err')!.textContent!.includes('必填'),
      );
      await completeCard(page);
      await page.screenshot({ path: join(SHOTS, 'card-form.png'), fullPage: true });
      const remaining = await page.locator('#summary').textContent();
      expect(remaining, (await page.locator('.err, #other li').allTextContents()).filter(Boolean).join(' | ')).toBe('校验通过，可以提交');

      await page.keyboard.press('Alt+S').catch(() => undefined);
      if (!/\/card\/done/.test(page.url())) await page.getByRole('button', { name: /提交报告卡/ }).click();
      await page.waitForURL(/\/card\/done\?id=/);
      const cardId = (await page.locator('#card-id').textContent())!;
      expect(cardId).toMatch(/^W\d{14}[0-9a-f]{8}$/);
      choleraCard = cardId;
      expect(await page.locator('#card-fate').textContent()).toMatch(/已保存|已上报/);
      await page.screenshot({ path: join(SHOTS, 'card-done.png'), fullPage: true });
      expect(scriptErrors).toEqual([]);

      // The HIS reads the card where it reads every card it posts (回传).
      const answer = (await (await fetch(`${front.rt.portUrls.data}/hclient/emr/receive/emrInfReport/${cardId}?orgCode=${org}`)).json()) as {
        fate: { fate: string; orgCode: string; id: string };
      };
      expect([answer.fate.id, answer.fate.orgCode]).toEqual([cardId, org]);
      expect(['stored', 'forwarded']).toContain(answer.fate.fate);
      // And the warning loop sees the card: the case waits for public health's verification (待核查),
      // its clock stopped, and it is no longer a reminder for the doctor.
      await warnUntil('to_verify');
      const reminders = (await (await fetch(`${front.rt.portUrls.data}/function/remind/reminders?orgCode=${org}`)).json()) as {
        reminders: Array<{ patientId: string }>;
      };
      expect(reminders.reminders.filter((r) => r.patientId === patient)).toEqual([]);
      // The card reaches the national platform (the form's submission nudged the push), and the
      // popup shows it accepted, the clock done.
      await pushUntil(() => receipted(cardId, 1));
      const got = sim.records().find((r) => r.id === cardId);
      expect(got).toMatchObject({ resource: 'emrInfReport', orgCode: org });
      expect(got!.payload).toMatchObject({ diseaseCode: '0200', fillDoctor: '王医生' });
      await ours();
      await page.goto(`${web}/popup.html`);
      const row = page.locator(`#reported tr[data-card="${cardId}"]`);
      expect(await row.locator('.card-status').textContent()).toBe('平台已接收');
      expect(await row.locator('td').last().textContent()).toBe('已完成');
      await page.screenshot({ path: join(SHOTS, 'sso-popup-reported.png'), fullPage: true });
      // Three views (popup, form, popup), all audited; none of the patient's personal data in any
      // audit row of the org, nor in any log line the front wrote (the runtime's and each function's).
      expect((await views()).map((v) => v.action)).toEqual(['view-popup', 'view-card-form', 'view-popup']);
      const rows = (await db.query<{ detail: string | null }>('SELECT detail FROM console_audit WHERE detail LIKE $1', [`%${org}%`])).rows;
      const leaks = rows.flatMap((r) => [...personal].filter((v) => r.detail?.includes(v)));
      await new Promise((r) => setTimeout(r, 500)); // log lines are written in batches
      const logs = join(front.dir, 'logs');
      let lines = 0;
      for (const f of readdirSync(logs))
        for (const line of readFileSync(join(logs, f), 'utf8').split('\n')) {
          if (!line) continue;
          lines++;
          for (const v of personal) if (line.includes(v)) leaks.push(`${f}: ${line.slice(0, 200)}`);
        }
      expect(lines).toBeGreaterThan(20);
      expect(leaks).toEqual([]);
    } finally {
      await ctx.close();
    }
  });
  it('corrects a card the platform returned: 修改报告卡 on the popup, the form as stored with the reason, the same id, accepted as corrected', {
    timeout: 120_000,
  }, async () => {
    const web = front.rt.portUrls.web!;
    // A second disease for the same patient: typhoid, a case of its own.
    await diagnose('A01.0', '伤寒', 10, 13);
    const end = Date.now() + 60_000;
    let typhoid = '';
    while (!typhoid) {
      await (await fetch(`${front.rt.gatewayUrl}/function/warning`, { method: 'POST', headers: { 'x-topic': 'cron-function' } })).body?.cancel();
      const r = await db.query<{ case_id: string }>(
        "SELECT case_id FROM warning_case WHERE org_code = $1 AND patient_id = $2 AND disease = '伤寒和副伤寒' AND state = 'to_confirm'",
        [org, patient],
      );
      typhoid = r.rows[0] ? String(r.rows[0].case_id) : '';
      if (!typhoid && Date.now() > end) throw new Error('no typhoid case within 60 s');
      if (!typhoid) await new Promise((ok) => setTimeout(ok, 200));
    }
    const ctx = await front.browser.newContext({ locale: 'zh-CN', timezoneId: 'Asia/Shanghai', viewport: { width: 1100, height: 1300 } });
    const page = await ctx.newPage();
    page.setDefaultTimeout(10_000);
    const scriptErrors: string[] = [];
    page.on('pageerror', (e) => scriptErrors.push(e.message));
    try {
      await page.goto(`${web}/sso?token=${encodeURIComponent(signToken(claims(), key))}`, { waitUntil: 'load' });
      await Promise.all([page.waitForURL(/\/card\.html\?case=/), page.locator(`section.case[data-case="${typhoid}"]`).getByText('填写报告卡').click()]);
      // Typhoid is reported by its sub-type, which the doctor picks.
      await page.locator('#f-diseaseCode').selectOption('0501');
      await completeCard(page);
      expect(await page.locator('#summary').textContent(), (await page.locator('.err, #other li').allTextContents()).filter(Boolean).join(' | ')).toBe(
        '校验通过，可以提交',
      );
      const code = await page.locator('#f-diseaseCode').inputValue();
      expect(code).toBe('0501');
      await Promise.all([page.waitForURL(/\/card\/done\?id=/), page.getByRole('button', { name: /提交报告卡/ }).click()]);
      const cardId = (await page.locator('#card-id').textContent())!;
      await ours();
      await pushUntil(() => receipted(cardId, 1));
      expect(await receipted(cardId, 1)).toBe(true);
      // The national platform returns it after its review (退回) with a reason: its receipt, as push
      // records one. (Not the simulator's rejection fault: that refuses a whole batch of this file's
      // destination, and another file's cards queued there meanwhile would be refused with it.)
      await db.query(
        `INSERT INTO uplink_delivery (batch_id, destination, outbox_id, resource, org_code, record_id, version, status, reason, receipt_sig, sent_at)
         VALUES ($1, $2, 0, 'emrInfReport', $3, $4, 1, 'rejected', '现住址不完整，请补充', 'test', now())`,
        [uniqueId('b'), dest, org, cardId],
      );

      // The popup: 平台退回 with the platform's reason, and the way to correct it.
      await ours();
      await page.goto(`${web}/popup.html`);
      const row = page.locator(`#reported tr[data-card="${cardId}"]`);
      expect(await row.locator('.card-status').textContent()).toContain('平台退回，待修改：现住址不完整，请补充');
      const correct = () => Promise.all([page.waitForURL(/\/card\.html\?correct=/), row.getByText('修改报告卡').click()]);
      await correct();
      expect(await page.locator('#returned').textContent()).toContain('现住址不完整，请补充');
      // A form shown for another version of the card (someone corrected it meanwhile) stores nothing.
      await page.locator('input[name="version"]').evaluate((el) => ((el as HTMLInputElement).value = '99'));
      await Promise.all([page.waitForURL(/\/popup\.html/), page.getByRole('button', { name: /提交报告卡/ }).click()]);
      expect(await page.locator('#msg').textContent()).toContain('已被修改');
      expect((await db.query('SELECT rec_version FROM emr_inf_report WHERE org_code = $1 AND id = $2', [org, cardId])).rows[0]).toEqual({ rec_version: 1 });
      await correct();
      // As stored: the same id, what the doctor typed before.
      expect(await page.locator('input[name="cardId"]').inputValue()).toBe(cardId);
      expect(await page.locator('#f-contacts').inputValue()).toBe('王某某');
      expect(await page.locator('#f-diseaseCode').inputValue()).toBe(code);
      expect(await page.locator('#f-idCard').inputValue()).toBe(patientRecord.idCard);
      await page.locator('#f-contacts').fill('李某某');
      await page.waitForFunction(() => document.querySelector('#summary')?.textContent === '校验通过，可以提交');
      await page.screenshot({ path: join(SHOTS, 'card-correct.png'), fullPage: true });
      await Promise.all([page.waitForURL(/\/card\/done\?id=/), page.getByRole('button', { name: /提交报告卡/ }).click()]);
      expect(await page.locator('#card-id').textContent()).toBe(cardId);
      await ours();
      // Its next version, forwarded: the platform takes the correction.
      await pushUntil(() => receipted(cardId, 2));
      const got = sim.records().find((r) => r.id === cardId && r.version === 2);
      expect(got).toMatchObject({ resource: 'emrInfReport', orgCode: org, version: 2 });
      expect(got!.payload).toMatchObject({ contacts: '李某某', diseaseCode: code });
      await ours();
      await page.goto(`${web}/popup.html`);
      expect(await page.locator(`#reported tr[data-card="${cardId}"] .card-status`).textContent()).toBe('已修改，平台已接收');
      expect(await page.locator(`#reported tr[data-card="${cardId}"]`).getByText('修改报告卡').count()).toBe(0);
      // Not returned any more: the session check says so to a form still open, and the form is not offered again.
      const session = await page.request.get(`${web}/api/card/session?correct=${encodeURIComponent(cardId)}`);
      expect(session.status()).toBe(409);
      expect(((await session.json()) as { id: string }).id).toBe('not-returned');
      await page.goto(`${web}/card.html?correct=${encodeURIComponent(cardId)}`);
      expect(new URL(page.url()).pathname).toBe('/popup.html');
      expect(await page.locator('#msg').textContent()).toContain('不需要修改');
      expect(scriptErrors).toEqual([]);
      // The correction form's view audited by reference, as the form's are.
      const rows = (await views()).filter((v) => v.detail.includes('修改退回卡'));
      const shown = { username: 'sso:D042', action: 'view-card-form', detail: `报告卡表单 修改退回卡 报告卡 ${cardId}（机构 ${org}，患者 ${patient}）` };
      expect(rows).toEqual([shown, shown]);

      // Returned again, and the same form sent twice at once (two doctors, or a double submit that
      // got past the script): one correction is stored, the other stores nothing.
      await db.query(
        `INSERT INTO uplink_delivery (batch_id, destination, outbox_id, resource, org_code, record_id, version, status, reason, receipt_sig, sent_at)
         VALUES ($1, $2, 0, 'emrInfReport', $3, $4, 2, 'rejected', '联系人电话缺失', 'test', now())`,
        [uniqueId('b'), dest, org, cardId],
      );
      await ours();
      await page.goto(`${web}/card.html?correct=${encodeURIComponent(cardId)}`);
      await page.locator('#f-contacts').fill('张某某');
      const fields = await page
        .locator('form#card')
        .evaluate((f) => Object.fromEntries(new FormData(f as HTMLFormElement) as unknown as Iterable<[string, string]>));
      expect(fields.version).toBe('2');
      const sent = await Promise.all([0, 1].map(() => page.request.post(`${web}/card`, { form: fields, maxRedirects: 0, headers: { origin: web } })));
      const to = sent.map((r) => new URL(r.headers().location ?? '', web).pathname).sort();
      expect(to).toEqual(['/card/done', '/popup.html']);
      expect((await db.query('SELECT rec_version FROM emr_inf_report WHERE org_code = $1 AND id = $2', [org, cardId])).rows[0]).toEqual({ rec_version: 3 });
      expect(
        (await db.query("SELECT count(*)::int AS n FROM record_history WHERE resource = 'emrInfReport' AND org_code = $1 AND record_id = $2", [org, cardId]))
          .rows[0],
      ).toEqual({ n: 3 });
    } finally {
      await ctx.close();
    }
  });

  it("never stores a form over another patient's card: a card id taken from one patient's popup and put in another's form", {
    timeout: 120_000,
  }, async () => {
    expect(choleraCard).not.toBe('');
    const web = front.rt.portUrls.web!;
    const other = uniqueId('p');
    await his('emrPatientInfo', sample('emrPatientInfo', { orgCode: org, id: other, seed: 21 }));
    await his('emrActivityInfo', {
      ...codedDiagnosis({
        orgCode: org,
        id: uniqueId('dx'),
        patientId: other,
        seed: 22,
        code: 'A00.9',
        name: '霍乱',
        diagnosedAt: formatLocal(new Date(Date.now() - 5 * 60_000)),
      }),
      deptCode: 'A16',
    });
    const end = Date.now() + 60_000;
    let otherCase = '';
    while (!otherCase) {
      await (await fetch(`${front.rt.gatewayUrl}/function/warning`, { method: 'POST', headers: { 'x-topic': 'cron-function' } })).body?.cancel();
      const r = await db.query<{ case_id: string }>("SELECT case_id FROM warning_case WHERE org_code = $1 AND patient_id = $2 AND state = 'to_confirm'", [
        org,
        other,
      ]);
      otherCase = r.rows[0] ? String(r.rows[0].case_id) : '';
      if (!otherCase && Date.now() > end) throw new Error('no case for the second patient within 60 s');
      if (!otherCase) await new Promise((ok) => setTimeout(ok, 200));
    }
    const before = (await db.query('SELECT patient_id, rec_version FROM emr_inf_report WHERE org_code = $1 AND id = $2', [org, choleraCard])).rows[0];
    expect(before).toMatchObject({ patient_id: patient });
    const ctx = await front.browser.newContext({ locale: 'zh-CN', timezoneId: 'Asia/Shanghai', viewport: { width: 1100, height: 1300 } });
    const page = await ctx.newPage();
    page.setDefaultTimeout(10_000);
    try {
      await page.goto(`${web}/sso?token=${encodeURIComponent(signToken(claims({ patient: other }), key))}`, { waitUntil: 'load' });
      await Promise.all([page.waitForURL(/\/card\.html\?case=/), page.locator(`section.case[data-case="${otherCase}"]`).getByText('填写报告卡').click()]);
      await completeCard(page);
      await page.locator('input[name="cardId"]').evaluate((el, id) => ((el as HTMLInputElement).value = id), choleraCard);
      await Promise.all([page.waitForURL(/\/popup\.html/), page.getByRole('button', { name: /提交报告卡/ }).click()]);
      expect(await page.locator('#msg').textContent()).toContain('另一位患者');
      // A notice is the front's own: the same text in a link from elsewhere is not shown.
      await page.goto(`${web}/popup.html?msg=${encodeURIComponent('系统通知：请拨打 010-12345678 并提供工号和密码')}`);
      expect(await page.locator('#msg').count()).toBe(0);
      // The first patient's card is as it was: no new version, nothing more queued for the platforms.
      expect((await db.query('SELECT patient_id, rec_version FROM emr_inf_report WHERE org_code = $1 AND id = $2', [org, choleraCard])).rows[0]).toEqual(
        before,
      );
      const queued = await db.query('SELECT 1 FROM outbox WHERE org_code = $1 AND record_id = $2 AND version > $3', [org, choleraCard, before!.rec_version]);
      expect(queued.rowCount).toBe(0);
      // A form whose text is cut off mid-character (%-escapes no browser sends) is refused naming the
      // field, before anything reads it: never stored with "\uFFFD" in its place.
      const cut = await page.request.post(`${web}/card`, {
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: web },
        data: `cardId=${encodeURIComponent(choleraCard)}&contacts=%E7%8E%8B%E6`,
      });
      expect(cut.status()).toBe(400);
      expect(await cut.text()).toContain('表单字段 contacts 的编码无效');
      // Nor does the second patient's session show what became of the first patient's card.
      const done = await page.goto(`${web}/card/done?id=${encodeURIComponent(choleraCard)}`);
      expect(done?.status()).toBe(404);
      expect(await page.content()).not.toContain('已上报');
      // The second patient's case is still open: the doctor reports it with the form's own id.
      expect((await db.query('SELECT state FROM warning_case WHERE case_id = $1', [otherCase])).rows[0]).toEqual({ state: 'to_confirm' });
    } finally {
      await ctx.close();
    }
  });
  it('keeps the page as typed when the session check answers 503 (the front or its database briefly unavailable), and submits once it answers', {
    timeout: 120_000,
  }, async () => {
    const web = front.rt.portUrls.web!;
    const who = uniqueId('p');
    await his('emrPatientInfo', sample('emrPatientInfo', { orgCode: org, id: who, seed: 41 }));
    await diagnose('A00.9', '霍乱', 10, 42, who);
    const id = (await warnUntil('to_confirm', who)).caseId;
    const ctx = await front.browser.newContext({ locale: 'zh-CN', timezoneId: 'Asia/Shanghai', viewport: { width: 1100, height: 1300 } });
    const page = await ctx.newPage();
    page.setDefaultTimeout(10_000);
    const scriptErrors: string[] = [];
    page.on('pageerror', (e) => scriptErrors.push(e.message));
    try {
      await page.goto(`${web}/sso?token=${encodeURIComponent(signToken(claims({ patient: who }), key))}`, { waitUntil: 'load' });
      await Promise.all([page.waitForURL(/\/card\.html\?case=/), page.locator(`section.case[data-case="${id}"]`).getByText('填写报告卡').click()]);
      const formUrl = page.url();
      await completeCard(page);
      await page.locator('#f-notes').fill('503 时仍在本页');
      // The web function (or the database behind it) answers 503 to the session check, as the runtime
      // does while a replica restarts or the database is down; then 504, 502 and 429 alike.
      for (const status of [503, 504, 502, 429]) {
        let asked = 0;
        await page.route('**/api/card/session*', async (route) => {
          asked++;
          await route.fulfill({ status, contentType: 'application/json', body: JSON.stringify({ code: 'UNAVAILABLE', desc: '数据库暂不可用，请稍后重试' }) });
        });
        let posted = 0;
        const onRequest = (r: { method(): string; url(): string }) => {
          if (r.method() === 'POST' && new URL(r.url()).pathname === '/card') posted++;
        };
        page.on('request', onRequest);
        // The message of the status before is hidden first: shown again, it is this status's answer
        // (left visible, the wait below would return at once, before this click's check was asked).
        await page.evaluate(() => document.querySelector('#expired')?.setAttribute('hidden', ''));
        await page.getByRole('button', { name: /提交报告卡/ }).click();
        await page.waitForFunction(() => !document.querySelector('#expired')?.hasAttribute('hidden'));
        expect(asked, String(status)).toBe(1);
        expect(posted, String(status)).toBe(0);
        expect(page.url()).toBe(formUrl);
        const said = (await page.locator('#expired').textContent()) ?? '';
        expect(said).toContain('暂时不可用');
        expect(said).toContain('报告卡尚未提交');
        expect(said).toContain('再点击“提交报告卡”');
        // Everything typed is still there.
        expect(await page.locator('#f-notes').inputValue()).toBe('503 时仍在本页');
        expect(await page.locator('#f-tel').inputValue()).toBe('13800000000');
        expect(await page.locator('#f-contacts').inputValue()).toBe('王某某');
        expect(await page.locator('#f-diagnoseStateCode').inputValue()).toBe('2');
        page.off('request', onRequest);
        await page.unroute('**/api/card/session*');
      }
      await page.screenshot({ path: join(SHOTS, 'card-form-unavailable.png'), fullPage: true });
      expect((await db.query('SELECT 1 FROM emr_inf_report WHERE org_code = $1 AND patient_id = $2', [org, who])).rowCount).toBe(0);
      // The front answers again: the same page submits, with what was typed.
      await Promise.all([page.waitForURL(/\/card\/done\?id=/), page.getByRole('button', { name: /提交报告卡/ }).click()]);
      const cardId = (await page.locator('#card-id').textContent())!;
      const stored = await db.query<{ notes: string | null }>("SELECT rec_raw->>'notes' AS notes FROM emr_inf_report WHERE org_code = $1 AND id = $2", [
        org,
        cardId,
      ]);
      expect(stored.rows).toEqual([{ notes: '503 时仍在本页' }]);
      expect(scriptErrors).toEqual([]);
    } finally {
      await ctx.close();
    }
  });
  it('lets a doctor report a case a colleague excluded: the popup lists it with who, when and why, and 仍要报告 opens the form', {
    timeout: 120_000,
  }, async () => {
    const web = front.rt.portUrls.web!;
    const third = uniqueId('p');
    await his('emrPatientInfo', sample('emrPatientInfo', { orgCode: org, id: third, seed: 31 }));
    await diagnose('A00.9', '霍乱', 15, 32, third);
    const id = (await warnUntil('to_confirm', third)).caseId;
    const open = async (doctor: string, doctorName: string) => {
      const ctx = await front.browser.newContext({ locale: 'zh-CN', timezoneId: 'Asia/Shanghai', viewport: { width: 1100, height: 1300 } });
      const page = await ctx.newPage();
      page.setDefaultTimeout(10_000);
      await page.goto(`${web}/sso?token=${encodeURIComponent(signToken(claims({ patient: third, doctor, doctorName }), key))}`, { waitUntil: 'load' });
      return { ctx, page };
    };
    // Two doctors see the patient: 张医生 has the popup open when 李医生 excludes the case.
    const b = await open('D051', '张医生');
    const a = await open('D050', '李医生');
    try {
      expect(await b.page.locator(`section.case[data-case="${id}"]`).count()).toBe(1);
      const box = a.page.locator(`section.case[data-case="${id}"]`);
      await box.getByLabel('排除理由').fill('考虑药疹，非霍乱');
      await Promise.all([a.page.waitForURL(/\/popup\.html/), box.getByRole('button', { name: '排除' }).click()]);
      expect(await a.page.locator('#msg').textContent()).toContain('已排除');
      expect((await db.query('SELECT state FROM warning_case WHERE case_id = $1', [id])).rows[0]).toEqual({ state: 'excluded' });

      // The form's session check (made before every submission) still accepts the excluded case: a
      // form opened before the exclusion goes on to submit.
      const sessionCheck = await b.page.request.get(`${web}/api/card/session?case=${id}`);
      expect(sessionCheck.status()).toBe(200);
      // 张医生's popup again: no reminder any more, the case under 已排除的病例 with the exclusion.
      await b.page.goto(`${web}/popup.html`);
      expect(await b.page.locator('section.case').count()).toBe(0);
      const item = b.page.locator(`#excluded .case[data-case="${id}"]`);
      const text = (await item.textContent()) ?? '';
      expect(text).toContain('排除医生：D050');
      expect(await item.locator('.reason').textContent()).toBe('考虑药疹，非霍乱');
      expect(text).toContain('霍乱');
      await b.page.screenshot({ path: join(SHOTS, 'sso-popup-excluded.png'), fullPage: true });
      await Promise.all([b.page.waitForURL(/\/card\.html\?case=/), item.getByText('仍要报告').click()]);
      const note = (await b.page.locator('#excluded-note').textContent()) ?? '';
      expect(note).toContain('D050');
      expect(note).toContain('考虑药疹，非霍乱');
      expect(await b.page.locator('#f-diseaseCode').inputValue()).toBe('0200');
      expect(await b.page.locator('#f-fillDoctor').inputValue()).toBe('张医生');
      await completeCard(b.page);
      expect(await b.page.locator('#summary').textContent()).toBe('校验通过，可以提交');
      await Promise.all([b.page.waitForURL(/\/card\/done\?id=/), b.page.getByRole('button', { name: /提交报告卡/ }).click()]);
      const cardId = (await b.page.locator('#card-id').textContent())!;
      expect(
        (await db.query("SELECT patient_id, rec_raw->>'fillDoctor' AS doctor FROM emr_inf_report WHERE org_code = $1 AND id = $2", [org, cardId])).rows,
      ).toEqual([{ patient_id: third, doctor: '张医生' }]);
      // The card weighs over the exclusion: the case goes to public health's verification, and its
      // history keeps both — 李医生's exclusion with the reason, then the card.
      await warnUntil('to_verify', third);
      const history = (
        await db.query<{ actor: string; from_state: string; to_state: string; reason: string }>(
          'SELECT actor, from_state, to_state, reason FROM warning_case_event WHERE case_id = $1 ORDER BY event_id',
          [id],
        )
      ).rows;
      expect(history.find((e) => e.to_state === 'excluded')).toMatchObject({ actor: 'sso:D050', reason: '医生排除 (excluded)：考虑药疹，非霍乱' });
      expect(history.at(-1)).toMatchObject({ from_state: 'excluded', to_state: 'to_verify' });
      // 李医生's popup: the case is neither a reminder nor excluded any more; the card shows as reported.
      await a.page.goto(`${web}/popup.html`);
      expect(await a.page.locator('#excluded').count()).toBe(0);
      expect(await a.page.locator(`#reported tr[data-card="${cardId}"]`).count()).toBe(1);
    } finally {
      await a.ctx.close();
      await b.ctx.close();
    }
  });
});
