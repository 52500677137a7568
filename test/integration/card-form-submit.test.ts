// The front's card form submitted (functions/web/card.ts, docs/card-form.md), the web function in
// process on the test database: two doctors submitting one case at the same instant store one card
// and the second is told why ("Two doctors, one case"); a form whose card id was changed by hand to
// the same patient's other card stores nothing over it ("Submitted"); the HIS doctor id, which a HIS
// may take from an ID number, is in no log line; and a typhoid diagnosis coded in ICD-10 (A01.0)
// pre-fills the subtype 伤寒 (0501).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { codedDiagnosis, sample } from '../../infra/simulators/samples.js';
import { lists } from '../../schemas/codes/lists.js';
import { resources } from '../../schemas/index.js';
import { upsertMany } from '../../shared/ingest/index.js';
import { signToken } from '../../shared/sso/token.js';
import { formatLocal } from '../../shared/time/index.js';
import { runWarnings } from '../../shared/warning/store.js';
import { loadTriggers } from '../../shared/warning/triggers.js';
import { databaseUrl, testDb, uniqueId, uniqueOrg } from '../setup/db.js';

// The single sign-on key the HIS shares with the front (docs/card-form.md), in a secrets folder of this test's own.
const secrets = mkdtempSync(join(tmpdir(), 'card-form-submit-'));
const ssoKey = randomBytes(24).toString('hex');
writeFileSync(join(secrets, 'his-sso-key'), ssoKey);
process.env.CDC_SECRETS_DIR = secrets;
process.env.DATABASE_URL = databaseUrl();
process.env.WEB_ALLOWED_HOSTS = 'front.local,localhost';
const { default: web } = await import('../../functions/web/handler.js');
const db = testDb();
const org = uniqueOrg();
const host = { host: 'front.local:8884' };
const warnOpts = { triggers: loadTriggers(), batch: 100, caseWindowDays: 90, orphanWaitMs: 60_000, maxMs: 30_000 };

beforeAll(async () => {
  await web.init?.();
});
afterAll(async () => web.close?.());

async function put(resource: string, body: Record<string, unknown>) {
  const [r] = await upsertMany(db, resources[resource]!, [body], { callId: null, test: false, now: new Date() });
  if (!r!.ok) throw new Error(`${resource}: ${r!.error.desc} ${JSON.stringify(r!.error.issues)}`);
}

/** A patient with a diagnosis (ICD-10 `code`) made 20 minutes ago, and the open case the warning loop made of it. */
async function patientWithCase(
  code: string,
  name: string,
  seed: number,
  patient = uniqueId('p'),
  disease = name,
): Promise<{ patient: string; caseId: string }> {
  if (!(await db.query('SELECT 1 FROM emr_patient_info WHERE org_code = $1 AND id = $2', [org, patient])).rowCount)
    await put('emrPatientInfo', sample('emrPatientInfo', { orgCode: org, id: patient, seed }));
  await put('emrActivityInfo', {
    ...codedDiagnosis({
      orgCode: org,
      id: uniqueId('dx'),
      patientId: patient,
      seed: seed + 1,
      code,
      name,
      diagnosedAt: formatLocal(new Date(Date.now() - 20 * 60_000)),
    }),
    deptCode: 'A16',
  });
  const end = Date.now() + 60_000;
  for (;;) {
    await runWarnings(db, warnOpts);
    const r = await db.query<{ case_id: string }>(
      "SELECT case_id FROM warning_case WHERE org_code = $1 AND patient_id = $2 AND state = 'to_confirm' AND disease = $3",
      [org, patient, disease],
    );
    if (r.rows[0]) return { patient, caseId: String(r.rows[0].case_id) };
    if (Date.now() > end) throw new Error(`no case for ${patient} within 60 s`);
    await new Promise((ok) => setTimeout(ok, 100));
  }
}

/** The doctor's browser: the session the HIS's token opened (its cookie). */
async function signIn(patient: string, doctor: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const token = signToken(
    { org, doctor, doctorName: '王医生', dept: 'A16', patient, iat: now, exp: now + 120, nonce: randomBytes(16).toString('hex') },
    Buffer.from(ssoKey, 'utf8'),
  );
  const res = await web.app.request(`/sso?token=${encodeURIComponent(token)}`, { headers: host });
  expect(res.status).toBe(303);
  return res.headers
    .getSetCookie()
    .find((c) => c.startsWith('cdc_sso='))!
    .split(';')[0]!;
}

/** The card form of `caseId` as shown: its hidden fields and the pre-filled disease. */
async function openForm(cookie: string, caseId: string): Promise<{ hidden: Record<string, string>; diseaseCode: string }> {
  const res = await web.app.request(`/card.html?case=${caseId}`, { headers: { ...host, cookie } });
  expect(res.status).toBe(200);
  const page = await res.text();
  const hidden: Record<string, string> = {};
  for (const m of page.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) hidden[m[1]!] = m[2]!;
  const selected = /<select id="f-diseaseCode"[^>]*>.*?<option value="(\d+)" selected>/s.exec(page);
  return { hidden, diseaseCode: selected?.[1] ?? '' };
}

/** What a doctor completes on the form (the rest is pre-filled), as the browser posts it. */
const completed = (): Record<string, string> => ({
  onsetDate: formatLocal(new Date(Date.now() - 2 * 86_400_000)).slice(0, 10),
  diagnoseStateCode: '2',
  nultitudeTypeCode: lists.populationClass.codes[4]!.code,
  tel: '13800000000',
  contacts: '王某某',
  reportZoneCode: '110101000',
});

const submit = (cookie: string, fields: Record<string, string>) =>
  web.app.request('/card', {
    method: 'POST',
    headers: { ...host, cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });

const cardsOf = async (patient: string) =>
  (
    await db.query<{ id: string; disease_code: string; rec_version: number }>(
      'SELECT id, disease_code, rec_version FROM emr_inf_report WHERE org_code = $1 AND patient_id = $2 ORDER BY id',
      [org, patient],
    )
  ).rows;

describe('the card form submitted', () => {
  it('stores one card when two doctors submit the same case at the same instant; the other is refused and stores nothing', { timeout: 120_000 }, async () => {
    for (let round = 0; round < 3; round++) {
      const { patient, caseId } = await patientWithCase('A00.9', '霍乱', 40 + round * 2);
      const a = await signIn(patient, `D1${round}a`);
      const b = await signIn(patient, `D1${round}b`);
      const fa = await openForm(a, caseId);
      const fb = await openForm(b, caseId);
      expect(fa.hidden.cardId).not.toBe(fb.hidden.cardId);
      const [ra, rb] = await Promise.all([submit(a, { ...fa.hidden, ...completed() }), submit(b, { ...fb.hidden, ...completed() })]);
      const answers = [ra, rb].map((r) => r.status).sort();
      expect(answers, `round ${round}`).toEqual([303, 400]);
      const refused = ra.status === 400 ? ra : rb;
      const text = await refused.text();
      expect(text).toContain('本病例已有报告卡');
      expect(text).toContain('为避免重复报告，本卡不能提交');
      const stored = await cardsOf(patient);
      expect(stored, `round ${round}`).toHaveLength(1);
      expect(stored[0]!.id).toBe((ra.status === 303 ? fa : fb).hidden.cardId);
    }
  });

  it("never stores a form over the same patient's other card: only the id the form was issued may name a stored card", { timeout: 120_000 }, async () => {
    const { patient, caseId: cholera } = await patientWithCase('A00.9', '霍乱', 60);
    const { caseId: typhoid } = await patientWithCase('A01.0', '伤寒', 60, patient, '伤寒和副伤寒');
    const doctor = await signIn(patient, 'D20');
    const first = await openForm(doctor, cholera);
    const stored = await submit(doctor, { ...first.hidden, ...completed() });
    expect(stored.status).toBe(303);
    const choleraCard = first.hidden.cardId!;
    // The same form submitted again (its own id and tag) updates its own card.
    const again = await submit(doctor, { ...first.hidden, ...completed(), notes: '再次提交' });
    expect([again.status, again.headers.get('location')]).toEqual([303, `/card/done?id=${choleraCard}`]);
    const before = await cardsOf(patient);
    expect(before).toEqual([{ id: choleraCard, disease_code: '0200', rec_version: 2 }]);
    // The typhoid form with its card id changed by hand to the cholera card's: with the tag the form
    // has, with none, with the cholera form's.
    const second = await openForm(doctor, typhoid);
    for (const tag of [String(second.hidden.cardTag), '', String(first.hidden.cardTag)]) {
      const res = await submit(doctor, { ...second.hidden, cardId: choleraCard, cardTag: tag, ...completed(), diseaseCode: '0501', notes: '伤寒卡覆盖' });
      expect(res.status).toBe(303);
      const to = res.headers.get('location') ?? '';
      expect(to).toMatch(/^\/popup\.html\?/);
      const popup = await web.app.request(to, { headers: { ...host, cookie: doctor } });
      expect(await popup.text()).toContain(`报告卡 ${choleraCard} 是已提交的报告卡，本表单未提交`);
      expect(await cardsOf(patient)).toEqual(before);
    }
    // Its own id goes: the typhoid card is a card of its own.
    const own = await submit(doctor, { ...second.hidden, ...completed(), diseaseCode: '0501' });
    expect([own.status, own.headers.get('location')]).toEqual([303, `/card/done?id=${second.hidden.cardId}`]);
    expect((await cardsOf(patient)).map((c) => [c.id, c.disease_code])).toEqual(
      [
        [choleraCard, '0200'],
        [second.hidden.cardId, '0501'],
      ].sort(),
    );
    // The tag the form carries beside its id (an HMAC, base64url).
    expect(first.hidden.cardTag).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('never logs a HIS doctor id that is an ID number: signing in, the form, a refused id, a submitted card', { timeout: 120_000 }, async () => {
    const doctorId = '11010519491231002X';
    const { patient, caseId } = await patientWithCase('A00.9', '霍乱', 80);
    const { patient: other, caseId: otherCase } = await patientWithCase('A00.9', '霍乱', 82);
    const lines: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: string | Uint8Array, ...rest: unknown[]) => {
      lines.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stdout.write);
    try {
      // The other patient's card first, then a form of this patient posting its id (refused, logged).
      const o = await signIn(other, doctorId);
      const of = await openForm(o, otherCase);
      expect((await submit(o, { ...of.hidden, ...completed() })).status).toBe(303);
      const doctor = await signIn(patient, doctorId);
      const form = await openForm(doctor, caseId);
      const refused = await submit(doctor, { ...form.hidden, cardId: of.hidden.cardId!, ...completed() });
      expect(refused.headers.get('location')).toMatch(/^\/popup\.html\?/);
      expect((await submit(doctor, { ...form.hidden, ...completed() })).headers.get('location')).toBe(`/card/done?id=${form.hidden.cardId}`);
    } finally {
      spy.mockRestore();
    }
    const ours = lines.filter((l) => l.includes(org));
    expect(ours.some((l) => l.includes('card submitted from the front form'))).toBe(true);
    expect(ours.some((l) => l.includes('card form refused'))).toBe(true);
    expect(ours.some((l) => l.includes('sso sign-in'))).toBe(true);
    expect(lines.filter((l) => l.includes(doctorId) || l.includes(doctorId.slice(0, 17)))).toEqual([]);
  });

  it('pre-fills the subtype a diagnosis names in ICD-10: A01.0 is 伤寒 (0501), A01.1 副伤寒 (0502)', { timeout: 120_000 }, async () => {
    for (const [code, want] of [
      ['A01.0', '0501'],
      ['A01.1', '0502'],
    ] as const) {
      const { patient, caseId } = await patientWithCase(code, code === 'A01.0' ? '伤寒' : '副伤寒', 90, uniqueId('p'), '伤寒和副伤寒');
      const doctor = await signIn(patient, 'D30');
      expect((await openForm(doctor, caseId)).diseaseCode, code).toBe(want);
    }
  });
});
