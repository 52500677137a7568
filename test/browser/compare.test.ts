// 每日比对 in a real browser (Debian's Chromium, driven by playwright-core), served by the web function
// under the runtime as in production, reached by a LAN name over plain HTTP: a public-health doctor
// signs in, chooses the direct-report system's export (GBK, as the system's CSV often is) with the
// file picker, submits the form (multipart, with the session's CSRF token) and sees the counts and the
// differences with their causes, personal data masked; the comparison is then listed under the form.
// Screenshot: .data/screenshots/compare.png.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Browser } from 'playwright-core';
import { testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { startTestFront, type TestFront } from '../setup/front.js';
import { createUser } from '../../shared/console/index.js';
import { expectConsoleFrame } from '../setup/console-session.js';
import { sample } from '../../infra/simulators/samples.js';
import { resources } from '../../schemas/index.js';
import { upsertMany } from '../../shared/ingest/index.js';
import { addDays, localDay } from '../../shared/dayclose/index.js';

const SCREENSHOT = resolve('.data/screenshots/compare.png');
const db = testDb();
const org = uniqueOrg();
const username = `cmp${Math.random().toString(36).slice(2, 8)}`;
const password = 'a-long-browser-password';
const D = localDay(new Date(Date.now() - 2 * 86_400_000), 'Asia/Shanghai');

let browser: Browser | undefined;
let front: TestFront | undefined;
let lan = '';
type Rec = Record<string, unknown> & { id: string };
let patient: Rec;
let stranger: Rec;
let cardId = '';

function adult(seed: number): Rec {
  for (let s = seed; ; s++) {
    const p = sample('emrPatientInfo', { orgCode: org, id: uniqueId('p'), seed: s }) as Rec;
    if (String(p.birthDate) < '2000') return p;
  }
}

/** GBK bytes of a text (the platform has a GBK decoder only: every two-byte code decoded once). */
function gbk(text: string): Buffer {
  const table = new Map<string, number[]>();
  const dec = new TextDecoder('gbk');
  for (let a = 0x81; a <= 0xfe; a++)
    for (let b = 0x40; b <= 0xfe; b++) {
      if (b === 0x7f) continue;
      const ch = dec.decode(new Uint8Array([a, b]));
      if (ch.length === 1 && ch !== '\ufffd' && !table.has(ch)) table.set(ch, [a, b]);
    }
  const out: number[] = [];
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    out.push(...(c < 0x80 ? [c] : (table.get(ch) ?? [0x3f])));
  }
  return Buffer.from(out);
}

beforeAll(async () => {
  await createUser(db, { username, role: 'public_health', password, displayName: '公卫科', orgs: [org] }, 'test');
  patient = adult(401);
  stranger = adult(451);
  const res = await upsertMany(db, resources.emrPatientInfo!, [patient], { callId: null, test: false, now: new Date() });
  expect(res[0]!.ok).toBe(true);
  cardId = uniqueId('card');
  const card = {
    ...sample('emrInfReport', { orgCode: org, id: cardId, patientId: patient.id, seed: 5 }),
    ...Object.fromEntries(
      ['patientName', 'idCardTypeCode', 'idCard', 'genderCode', 'genderName', 'birthDate', 'currentAddrCode', 'currentAddrDetail'].map((k) => [k, patient[k]]),
    ),
    nultitudeTypeCode: '18',
    nultitudeTypeName: '家务及待业',
    diseaseCode: '0200',
    diseaseName: '霍乱',
    diagnoseStateCode: '2',
    diagnoseStateName: '确诊病例',
    caseTypeCode: '3',
    caseTypeName: '未分型',
    onsetDate: addDays(D, -2),
    diagnoseTime: `${D} 08:00:00`,
    reportDate: `${D} 10:00:00`,
    operationTime: `${D} 10:00:00`,
  };
  const c = await upsertMany(db, resources.emrInfReport!, [card], { callId: null, test: false, now: new Date() });
  expect(c[0]!.ok, JSON.stringify(c[0])).toBe(true);
  front = await startTestFront(
    { WEB_ALLOWED_HOSTS: 'localhost,127.0.0.1,[::1],front.lan' },
    { chromiumArgs: ['--host-resolver-rules=MAP front.lan 127.0.0.1'] },
  );
  lan = front.rt.portUrls.web!.replace('127.0.0.1', 'front.lan');
  browser = front.browser;
}, 180_000);

afterAll(async () => {
  await front?.close();
});

describe('the 每日比对 page on the web port', () => {
  it('uploads a GBK export through the file picker and shows the differences with their causes, masked', async () => {
    const ctx = await browser!.newContext({ locale: 'zh-CN', timezoneId: 'Asia/Shanghai', viewport: { width: 1300, height: 1000 } });
    const page = await ctx.newPage();
    page.setDefaultTimeout(10_000);
    try {
      await page.goto(`${lan}/compare.html`, { waitUntil: 'load' });
      expect(new URL(page.url()).pathname).toBe('/login');
      await page.fill('#username', username);
      await page.fill('#password', password);
      await Promise.all([page.waitForURL(/\/compare\.html/), page.getByRole('button', { name: '登录' }).click()]);
      expect(await page.title()).toBe('每日比对 · 前置软件控制台');
      expectConsoleFrame(await page.content(), 'public_health', '/compare.html');

      const csv = [
        '卡片编号,患者姓名,有效证件号,性别,出生日期,疾病名称,发病日期,诊断时间,报告单位,报告卡录入时间',
        // The front's card, its onset entered otherwise in the direct-report system.
        `${cardId},${patient.patientName},${patient.idCard},${patient.genderCode === '1' ? '男' : '女'},${patient.birthDate},霍乱,${addDays(D, -4)},${D} 08:00:00,测试医院,${D} 10:30:00`,
        // Someone the front never heard of.
        `,${stranger.patientName},${stranger.idCard},男,${stranger.birthDate},肺结核,${addDays(D, -3)},${D} 09:00:00,测试医院,${D} 11:00:00`,
      ].join('\r\n');
      await page.setInputFiles('#c-file', { name: '直报导出.csv', mimeType: 'text/csv', buffer: gbk(`${csv}\r\n`) });
      await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: '比对' }).click()]);
      expect(await page.locator('#err').count()).toBe(0);
      expect(await page.locator('#result').textContent()).toContain('编码 GBK');
      const n = async (id: string) => Number((await page.locator(`#${id} strong`).textContent())!.trim());
      expect([
        await n('n-export'),
        await n('n-front'),
        await n('n-matched'),
        await n('n-differing'),
        await n('n-export-only'),
        await n('n-front-only'),
      ]).toEqual([2, 1, 1, 1, 1, 0]);

      const matched = page.locator(`#diffs tr[data-card="${cardId}"]`);
      expect(await matched.locator('li[data-field="发病日期"]').textContent()).toBe(`发病日期：直报 ${addDays(D, -4)} ／ 前置 ${addDays(D, -2)}`);
      expect(await matched.locator('.cause').allTextContents()).toEqual(['前置尚未上报']);
      const only = page.locator('#diffs tr[data-kind="export_only"]');
      expect(await only.locator('.cause').allTextContents()).toEqual(['仅在直报系统手工报告']);
      const html = await page.content();
      expect(html).not.toContain(String(patient.idCard));
      expect(html).not.toContain(String(stranger.idCard));
      expect(html).not.toContain(String(stranger.patientName));

      mkdirSync(resolve('.data/screenshots'), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });

      // Listed under the form on the next visit.
      await page.goto(`${lan}/compare.html`, { waitUntil: 'load' });
      expect(await page.locator('#runs tbody tr').first().textContent()).toContain(username);
    } finally {
      await ctx.close();
    }
  });
});
