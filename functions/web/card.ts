/**
 * The routes of the front's own popup and card form (docs/card-form.md): single sign-on from the
 * HIS, the patient's pending cases, the live check, and the submitted card going through the same
 * ingest pipeline as a card posted on port 8881 (stored, forwarded, readable by the HIS).
 *   GET|POST /sso            token → session cookie (and a clinician's console session) → 303 /popup.html
 *                            (or the case's card form)
 *   GET  /popup.html         the patient's open cases with evidence and clock (each view audited)
 *   POST /popup/exclude      the doctor excludes a case, with a reason (audited on the case)
 *   GET  /card.html?case=    the pre-filled card form (each view audited)
 *   POST /api/card/check     JSON → { issues, warnings } (the live check)
 *   GET  /api/card/session?case=   the form's session: { csrf }, 401 none, 409 another patient's
 *   POST /card               submit (form post) → 303 /card/done?id= , or the form again with errors
 *   GET  /card/done?id=      what became of the card
 *   POST /sso/logout         退出: ends the popup's session and the console session of the same token
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import { Hono } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type pg from 'pg';
import { lists } from '../../schemas/codes/lists.js';
import { emrInfReport } from '../../schemas/card.js';
import type { CodeCache } from '../../shared/codes/cache.js';
import { audit } from '../../shared/console/index.js';
import { maskDigits } from '../../shared/console/figures.js';
import { smallForm } from './people.js';
import { requestSource } from '../../shared/http/caller.js';
import { flash, flashOf } from '../../shared/http/flash.js';
import { sameOrigin } from '../../shared/http/same-origin.js';
import { AppError, errorAnswer, type FieldIssue } from '../../shared/http/errors.js';
import { type GroupOptions, upsertRecord } from '../../shared/ingest/index.js';
import { recordFate } from '../../shared/ingest/receipts.js';
import { validateRecord } from '../../shared/ingest/validate.js';
import { log } from '../../shared/log/index.js';
import { endSession, noteCard, redeem, sessionOf, SSO_COOKIE, type SsoSession, type SsoSettings } from '../../shared/sso/session.js';
import { formatLocal, parseTime } from '../../shared/time/index.js';
import { type ExcludedCase, excludedCases, listCaseCards, listReminders, type Reminder } from '../../shared/warning/reminders.js';
import { decideCase } from '../../shared/warning/store.js';
import { cardStatus, personKey, priorCards, RULE_TEXT, sameDisease } from '../../shared/warning/duplicates.js';
import { openRecord } from '../../shared/pii/index.js';
import { CARD_SCRIPT, clock, FORM_FIELDS, forDoctor, renderCardDone, renderCardForm, renderNoSession, renderPopup, renderSignedOut } from './card-form.js';

export interface CardRoutesOptions {
  db: () => pg.Pool;
  sso: () => SsoSettings;
  codes: () => Promise<CodeCache>;
  timeZone: () => string;
  caseWindowDays: () => number;
  testOrgs: () => ReadonlySet<string>;
  nudge: () => void;
  /** Also opens the doctor's clinician session on the console (docs/console.md "Single sign-on"). */
  person?: (c: Context, doctor: { org: string; doctor: string; name: string | null }) => Promise<void>;
  /** Ends that console session at 退出. */
  personOut?: (c: Context) => Promise<void>;
  /** The proxies whose forwarding headers are believed (HIS_TRUSTED_PROXIES): the audit's address. */
  trustedProxies: () => string;
}

/**
 * The audit row of a view of the patient (docs/card-form.md "Audit"), in the console's audit
 * (console_audit, docs/console.md "Audit"): the doctor as `sso:<doctor>`, the org, the patient's and
 * the case's ids — references only, never the personal data the page shows.
 */
function viewAudit(s: SsoSession, what: string, note = ''): { actor: string; detail: string } {
  const actor = `sso:${s.doctorId}`;
  // console_audit.username holds 64 characters; a longer HIS doctor id is kept whole in the detail.
  const long = actor.length > 64;
  return {
    actor: long ? actor.slice(0, 64) : actor,
    detail: `${what}（机构 ${s.orgCode}，患者 ${s.patientId}${long ? `，医生 ${s.doctorId}` : ''}）${note}`,
  };
}

const NAME_OF: ReadonlyArray<[string, string, keyof typeof lists]> = [
  ['genderCode', 'genderName', 'sex'],
  ['idCardTypeCode', 'idCardTypeName', 'idType'],
  ['nultitudeTypeCode', 'nultitudeTypeName', 'populationClass'],
  ['diseaseCode', 'diseaseName', 'nndrsDisease'],
  ['diagnoseStateCode', 'diagnoseStateName', 'diagnosisStatus'],
  ['caseTypeCode', 'caseTypeName', 'caseType'],
  ['nationCode', 'nationName', 'ethnicity'],
  ['maritalStatusCode', 'maritalStatusName', 'maritalStatus'],
  ['educationCode', 'educationName', 'education'],
];

/** The card record from the pre-filled values and the form: names from the lists, times as sent. */
export function cardRecord(
  s: SsoSession,
  cardId: string,
  prefill: Record<string, unknown>,
  form: Record<string, unknown>,
  now: Date,
  timeZone: string,
): Record<string, unknown> {
  const rec: Record<string, unknown> = { ...prefill };
  for (const f of FORM_FIELDS) {
    const raw = typeof form[f.name] === 'string' ? (form[f.name] as string).trim() : '';
    if (raw === '') {
      if (f.name in form) delete rec[f.name];
      continue;
    }
    // <input type="datetime-local"> sends 2026-12-03T14:05: the data set's form is 2026-12-03 14:05:00.
    rec[f.name] = f.input === 'datetime' && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(raw) ? `${raw.replace('T', ' ')}:00` : raw;
  }
  for (const [code, name, list] of NAME_OF) {
    const c = rec[code];
    const entry = typeof c === 'string' ? (lists[list].codes as ReadonlyArray<{ code: string; name: string }>).find((e) => e.code === c) : undefined;
    if (entry) rec[name] = entry.name;
    else delete rec[name];
  }
  rec.id = cardId;
  rec.orgCode = s.orgCode;
  rec.patientId = s.patientId;
  rec.operatorId = s.doctorId;
  rec.operationTime = formatLocal(now, timeZone);
  if (s.deptCode && !rec.deptCode) rec.deptCode = s.deptCode;
  return Object.fromEntries(Object.entries(rec).filter(([k]) => k in emrInfReport.fields));
}

const now = () => new Date();

// What every route shares: the session, the patient's open cases, the audit of a view, the CSRF check.

const session = async (o: CardRoutesOptions, c: Context): Promise<SsoSession | null> => sessionOf(o.db(), getCookie(c, SSO_COOKIE), now());

function noSession(c: Context, note?: string) {
  c.header('cache-control', 'no-store');
  return c.html(renderNoSession(note), 401);
}

/** Case `id` if it is one of the session's patient's open cases (those the popup lists to decide on). */
async function openCase(o: CardRoutesOptions, s: SsoSession, id: string | undefined): Promise<Reminder | null> {
  const all = await patientCases(o, s);
  return all.find((r) => r.caseId === id) ?? null;
}

/**
 * Case `id` if a card may be filled for it: one of the patient's open cases, or one a doctor excluded —
 * every doctor who sees the patient is a responsible reporter, and a colleague's exclusion does not
 * take that from them (docs/card-form.md "Two doctors, one case").
 */
async function caseOf(o: CardRoutesOptions, s: SsoSession, id: string | undefined): Promise<Reminder | ExcludedCase | null> {
  return (await openCase(o, s, id)) ?? (await excludedOf(o, s)).find((r) => r.caseId === id) ?? null;
}

const excludedOf = (o: CardRoutesOptions, s: SsoSession) => excludedCases(o.db(), s.orgCode, s.patientId, o.caseWindowDays(), now());

async function patientCases(o: CardRoutesOptions, s: SsoSession): Promise<Reminder[]> {
  return (await listReminders(o.db(), { orgs: [s.orgCode], orgCode: s.orgCode, patient: s.patientId, limit: 50 }, now())).reminders;
}

const dueOf = (o: CardRoutesOptions, r: Reminder): Date | null => (r.dueAt ? parseTime(r.dueAt, o.timeZone()) : null);

async function viewed(o: CardRoutesOptions, c: Context, action: 'view-popup' | 'view-card-form', s: SsoSession, what: string, note?: string) {
  const a = viewAudit(s, what, note);
  await audit(o.db(), action, a.actor, a.detail, requestSource(c, o.trustedProxies()).address);
}

/** Back to the popup with a notice only the front can put there (shared/http/flash.ts). */
const toPopup = (c: Context, s: SsoSession, text: string) => c.redirect(`/popup.html?${flash(s.csrf, 'msg', text)}`, 303);

/** The form's CSRF token: the session's, in the form field or the header. */
function checkCsrf(s: SsoSession, sent: unknown) {
  if (typeof sent !== 'string' || sent !== s.csrf) throw new AppError('FORBIDDEN', '表单已失效，请刷新页面后重试 (CSRF token missing or wrong)');
}

// Sign-in and the popup.

async function signIn(o: CardRoutesOptions, c: Context, token: string | undefined) {
  c.header('cache-control', 'no-store');
  if (!token)
    throw new AppError('UNAUTHENTICATED', '缺少单点登录令牌 token (token is required)', [
      { field: 'token', rule: 'required', message: '必填 (token is required)' },
    ]);
  const r = await redeem(o.db(), token, o.sso(), now());
  const https = c.req.header('x-forwarded-proto') === 'https' || new URL(c.req.url).protocol === 'https:';
  setCookie(c, SSO_COOKIE, r.cookie, { httpOnly: true, sameSite: 'Lax', path: '/', secure: https, maxAge: o.sso().sessionS });
  try {
    await o.person?.(c, { org: r.session.orgCode, doctor: r.session.doctorId, name: r.session.doctorName });
  } catch (err) {
    // The popup and card form stand on their own session; the console's is a convenience.
    // The message may name the console user, `<doctor>@<org>`: its digits masked as the doctor's are.
    log('warn', 'sso: no console session', { org: r.session.orgCode, err: maskDigits(err instanceof Error ? err.message : String(err)) });
  }
  // The doctor is a HIS staff id, which a HIS may take from an ID number: digits masked as one (never in a log).
  log('info', 'sso sign-in', { org: r.session.orgCode, doctor: maskDigits(r.session.doctorId), case: r.session.caseId });
  return c.redirect(r.session.caseId ? `/card.html?case=${r.session.caseId}` : '/popup.html', 303);
}

function signOut(c: Context) {
  deleteCookie(c, SSO_COOKIE, { path: '/' });
  return c.html(renderNoSession());
}

/**
 * 退出 on the popup and card pages (a shared PC): the popup's session ends in the database, and the
 * console session the same token opened (docs/card-form.md "Signing out").
 */
async function signOutPost(o: CardRoutesOptions, c: Context) {
  const s = await session(o, c);
  const cookie = getCookie(c, SSO_COOKIE);
  // Only with the session's token: another site's form cannot sign the doctor out of the console.
  if (s && cookie) {
    checkCsrf(s, (await c.req.parseBody()).csrf);
    await endSession(o.db(), cookie, now());
    await o.personOut?.(c);
  }
  deleteCookie(c, SSO_COOKIE, { path: '/' });
  c.header('cache-control', 'no-store');
  return c.html(renderSignedOut());
}

async function showPopup(o: CardRoutesOptions, c: Context) {
  const s = await session(o, c);
  if (!s) return noSession(c);
  c.header('cache-control', 'no-store');
  const reported = (await listCaseCards(o.db(), { orgs: [s.orgCode], orgCode: s.orgCode, patient: s.patientId, limit: 20 }, now())).cases;
  const cases = await patientCases(o, s);
  const excluded = await excludedOf(o, s);
  const shown = [...cases, ...excluded];
  // The popup shows the patient's cases and evidence: audited before it is answered.
  await viewed(o, c, 'view-popup', s, `报告提醒${shown.length ? ` 病例 ${shown.map((r) => r.caseId).join(',')}` : ''}`);
  return c.html(renderPopup(s, cases, (r) => dueOf(o, r), now(), flashOf(c, s.csrf).msg, reported, excluded));
}

async function excludeCase(o: CardRoutesOptions, c: Context) {
  const s = await session(o, c);
  if (!s) return noSession(c);
  const body = await c.req.parseBody();
  checkCsrf(s, body.csrf);
  const r = await openCase(o, s, String(body.case ?? ''));
  if (!r) throw new AppError('NOT_FOUND', `该患者没有这个待处理病例：${String(body.case ?? '')}`);
  const reason = String(body.reason ?? '')
    .trim()
    .slice(0, 200);
  // An exclusion needs a reason (docs/warning.md): back to the popup saying so, nothing changed.
  if (!reason) return toPopup(c, s, `请填写排除理由：${r.disease} 未排除`);
  await decideCase(o.db(), r.caseId, 'exclude', { actor: `sso:${s.doctorId}`, reason: reason || null }, [s.orgCode], { caseWindowDays: o.caseWindowDays() });
  return toPopup(c, s, `已排除：${r.disease}`);
}

// The card form: its pre-filled values, the form itself, the live check, the submission and its fate.

/**
 * The tag that makes a card id this form's (docs/card-form.md "Submitted"): an HMAC, keyed with the
 * org's single-sign-on key, of the org, the patient, the case and the id the server issued when the
 * form was first shown. A hand-edited id has no tag that verifies. Null without a key (no session
 * can be opened then).
 */
function cardTag(o: CardRoutesOptions, s: SsoSession, caseId: string, cardId: string): string | null {
  const key = o.sso().keyOf(s.orgCode);
  if (!key) return null;
  return createHmac('sha256', key).update(`card-form\u0000${s.orgCode}\u0000${s.patientId}\u0000${caseId}\u0000${cardId}`).digest('base64url');
}

/** Whether `sent` is the tag of card id `cardId` issued to a form of case `caseId` of the session's patient. */
function issuedHere(o: CardRoutesOptions, s: SsoSession, caseId: string, cardId: string, sent: unknown): boolean {
  const want = cardTag(o, s, caseId, cardId);
  if (!want || typeof sent !== 'string' || sent.length !== want.length) return false;
  return timingSafeEqual(Buffer.from(sent), Buffer.from(want));
}

function formView(o: CardRoutesOptions, s: SsoSession, r: Reminder | ExcludedCase, cardId: string, values: Record<string, unknown>, issues: FieldIssue[]) {
  const due = dueOf(o, r);
  return renderCardForm({
    session: s,
    caseId: r.caseId,
    cardId,
    cardTag: cardTag(o, s, r.caseId, cardId) ?? undefined,
    disease: r.disease,
    dueText: clock(r.dueAt, now(), due),
    overdue: due !== null && due < now(),
    values,
    issues,
    ...('exclusion' in r ? { exclusion: r.exclusion } : {}),
  });
}

/** A card the platform returned, as the correction form starts from it. */
interface Returned {
  id: string;
  /** The stored version the form starts from: a correction of another version is refused (stale form). */
  version: number;
  /** The stored card (its latest version), personal fields opened. */
  values: Record<string, unknown>;
  /** The platform's reason. */
  reason: string | null;
  disease: string;
}

/**
 * Card `id` of the session's patient if the national platform returned it — its latest version
 * rejected, with the platform's reason (shared/warning/duplicates.ts cardStatus) — else null: a card
 * corrected since, accepted, another patient's or none (docs/card-form.md "Correcting a returned card").
 */
async function returnedCard(o: CardRoutesOptions, s: SsoSession, id: unknown): Promise<Returned | null> {
  if (typeof id !== 'string' || id === '' || id.length > 100) return null;
  const row = (
    await o
      .db()
      .query<{ rec_raw: Record<string, unknown>; rec_version: number }>(
        'SELECT rec_raw, rec_version FROM emr_inf_report WHERE org_code = $1 AND id = $2 AND patient_id = $3 AND NOT rec_retired AND NOT rec_test',
        [s.orgCode, id, s.patientId],
      )
  ).rows[0];
  if (!row) return null;
  const st = await cardStatus(o.db(), s.orgCode, id);
  if (st.status !== 'returned') return null;
  const values = openRecord(emrInfReport, row.rec_raw);
  return { id, version: Number(row.rec_version), values, reason: st.reason, disease: String(values.diseaseName ?? values.diseaseCode ?? '') };
}

/** The patient whose card `id` of the session's org is (null: no card stored under that id). */
async function cardPatient(o: CardRoutesOptions, s: SsoSession, id: string): Promise<string | null> {
  const r = await o.db().query<{ patient_id: string }>('SELECT patient_id FROM emr_inf_report WHERE org_code = $1 AND id = $2', [s.orgCode, id]);
  return r.rows[0]?.patient_id ?? null;
}

/** Whether card `id` of the session's org is another patient's (the HIS opened another patient since). */
async function otherPatientsCard(o: CardRoutesOptions, s: SsoSession, id: string): Promise<boolean> {
  const patient = await cardPatient(o, s, id);
  return patient !== null && patient !== s.patientId;
}

const correctionAudit = (id: string) => `报告卡表单 修改退回卡 报告卡 ${id}`;

function correctionView(s: SsoSession, card: Returned, values: Record<string, unknown>, issues: FieldIssue[]) {
  return renderCardForm({
    session: s,
    caseId: '',
    cardId: card.id,
    disease: card.disease,
    dueText: '',
    overdue: false,
    values,
    issues,
    returned: { reason: card.reason, version: card.version },
  });
}

const NOT_RETURNED = '该报告卡不需要修改（已修改、平台已接收或不存在）';
const CHANGED = '该报告卡已被修改（其他人已提交修改），请重新打开后再修改';

const newCardId = (o: CardRoutesOptions) => `W${formatLocal(now(), o.timeZone()).replace(/\D/g, '')}${randomBytes(4).toString('hex')}`;

/** The reporting area and org as this hospital's last card gave them (the same for every card). */
async function lastCardOrg(o: CardRoutesOptions, org: string): Promise<Record<string, unknown>> {
  const r = (
    await o.db().query<{ zone: string | null; rorg: string | null }>(
      `SELECT rec_raw->>'reportZoneCode' AS zone, rec_raw->>'reportOrgCode' AS rorg FROM emr_inf_report
          WHERE org_code = $1 AND rec_raw->>'reportZoneCode' IS NOT NULL ORDER BY rec_updated_at DESC LIMIT 1`,
      [org],
    )
  ).rows[0];
  return r ? { reportZoneCode: r.zone ?? undefined, reportOrgCode: r.rorg ?? undefined } : {};
}

async function defaults(o: CardRoutesOptions, s: SsoSession, r: Reminder): Promise<Record<string, unknown>> {
  return {
    reportDate: formatLocal(now(), o.timeZone()),
    fillDoctor: s.doctorName ?? s.doctorId,
    ...(await lastCardOrg(o, s.orgCode)),
    ...r.card,
  };
}

async function showCardForm(o: CardRoutesOptions, c: Context) {
  const s = await session(o, c);
  if (!s) return noSession(c);
  if (c.req.query('correct') !== undefined) return showCorrection(o, c, s);
  const r = await caseOf(o, s, c.req.query('case') ?? s.caseId ?? undefined);
  if (!r) return toPopup(c, s, '该病例已处理或不存在');
  c.header('cache-control', 'no-store');
  const values = await defaults(o, s, r);
  // The form shows the patient's identity, pre-filled: every view audited, as the console's are.
  await viewed(o, c, 'view-card-form', s, `报告卡表单 病例 ${r.caseId}`);
  return c.html(formView(o, s, r, newCardId(o), values, []));
}

// A returned card, pre-filled as stored, the platform's reason above it (docs/card-form.md
// "Correcting a returned card"): the same card id, so its next version is the correction.
async function showCorrection(o: CardRoutesOptions, c: Context, s: SsoSession) {
  const card = await returnedCard(o, s, c.req.query('correct'));
  if (!card) return toPopup(c, s, NOT_RETURNED);
  c.header('cache-control', 'no-store');
  await viewed(o, c, 'view-card-form', s, correctionAudit(card.id));
  return c.html(correctionView(s, card, card.values, []));
}

function cardScript(c: Context) {
  c.header('content-type', 'text/javascript; charset=utf-8');
  c.header('cache-control', 'no-cache');
  return c.body(CARD_SCRIPT);
}

async function checkCard(o: CardRoutesOptions, c: Context) {
  const s = await session(o, c);
  if (!s) throw new AppError('UNAUTHENTICATED', '会话已过期，请从 HIS 重新打开 (no session)');
  checkCsrf(s, c.req.header('x-csrf-token'));
  const form = (await c.req.json().catch(() => null)) as Record<string, unknown> | null;
  if (!form || typeof form !== 'object') throw new AppError('BAD_REQUEST', '请求体不是合法的 JSON (body is not valid JSON)');
  const fixing = form.correct !== undefined ? await returnedCard(o, s, form.correct) : null;
  const r = fixing ? null : await caseOf(o, s, String(form.case ?? ''));
  const prefill = fixing ? fixing.values : r ? await defaults(o, s, r) : {};
  const rec = cardRecord(s, fixing ? fixing.id : String(form.cardId || 'check'), prefill, form, now(), o.timeZone());
  const v = validateRecord(emrInfReport, rec, now());
  // Before sending: a card for this person and disease already stored is likely a duplicate (重卡).
  const who = personKey(rec);
  const code = typeof rec.diseaseCode === 'string' ? rec.diseaseCode : null;
  const prior =
    who && code
      ? await priorCards(o.db(), s.orgCode, who, code, { windowDays: o.caseWindowDays(), now: now(), exceptCard: { org: s.orgCode, id: String(rec.id) } })
      : [];
  const dup = prior
    .slice(0, 1)
    .map((p) => ({ field: 'diseaseCode', rule: 'duplicateCard', message: `可能重卡：${RULE_TEXT[p.rule]}，已有报告卡 ${p.cardId}` }));
  // A correction is the card itself again: no other doctor's card since can make it a second report.
  const since = fixing ? null : await reportedSince(o, s, String(rec.id), rec);
  const issues = [...(v.ok ? [] : v.issues), ...(since ? [sinceIssue(since)] : [])];
  return c.json({ issues: forDoctor(issues), warnings: forDoctor([...v.warnings, ...dup]) });
}

/**
 * The session in force for the form of case `?case=` (the form's script asks before a submission and
 * when a check is refused): its CSRF token (a session opened since by the HIS has its own), 401 when
 * there is none, 409 when it is another patient's (`id` other-patient) or the case is no longer open
 * (`id` closed: carded by another doctor, or nothing supports it any more; an excluded case stays open
 * to a card) (docs/card-form.md "Session ending while typing").
 * Read by this origin's script only: no CORS, so another site's page cannot read the token.
 */
async function formSession(o: CardRoutesOptions, c: Context) {
  c.header('cache-control', 'no-store');
  const s = await session(o, c);
  if (!s) throw new AppError('UNAUTHENTICATED', '会话已过期，请从 HIS 重新打开 (no session)');
  const correcting = c.req.query('correct');
  if (correcting !== undefined) {
    if (await returnedCard(o, s, correcting)) return c.json({ csrf: s.csrf });
    const refusal = (await otherPatientsCard(o, s, correcting))
      ? new AppError('CONFLICT', '当前会话是另一位患者的 (the session is for another patient)', [], 'other-patient')
      : new AppError('CONFLICT', `${NOT_RETURNED} (the card is not returned)`, [], 'not-returned');
    return c.json(errorAnswer(refusal), 409);
  }
  const id = c.req.query('case') ?? '';
  if (await caseOf(o, s, id)) return c.json({ csrf: s.csrf });
  // Not open for this session: the session's patient's case carded since by another doctor (submitting
  // would be a duplicate report) or closed (its evidence revised or voided), or another patient's.
  const mine =
    /^\d{1,18}$/.test(id) &&
    (await o.db().query('SELECT 1 FROM warning_case WHERE case_id = $1 AND org_code = $2 AND patient_id = $3', [id, s.orgCode, s.patientId])).rowCount! > 0;
  const refusal = mine
    ? new AppError('CONFLICT', '此病例已处理 (the case is no longer open)', [], 'closed')
    : new AppError('CONFLICT', '当前会话是另一位患者的 (the session is for another patient)', [], 'other-patient');
  return c.json(errorAnswer(refusal), 409);
}

async function submitCard(o: CardRoutesOptions, c: Context) {
  const s = await session(o, c);
  // Without the form's script (which checks the session first and keeps the page): say what was lost.
  if (!s) return noSession(c, '会话已过期，本次填写的报告卡未提交。');
  const form = (await c.req.parseBody()) as Record<string, unknown>;
  checkCsrf(s, form.csrf);
  if (form.correct !== undefined) return submitCorrection(o, c, s, form);
  const r = await caseOf(o, s, String(form.case ?? ''));
  if (!r) return toPopup(c, s, '该病例已处理或不存在');
  const cardId = /^W\d{14}[0-9a-f]{8}$/.test(String(form.cardId ?? '')) ? String(form.cardId) : newCardId(o);
  // The form's id is its own (sent again, the same card); an id that is already another patient's
  // card — ids show on each patient's popup — would store this patient over that card.
  // One look-up for both checks below: whose card the id already is, if anyone's.
  const stored = await cardPatient(o, s, cardId);
  if (stored !== null && stored !== s.patientId) {
    log('warn', 'card form refused: its card id is another patient’s card', { org: s.orgCode, doctor: maskDigits(s.doctorId), case: r.caseId, card: cardId });
    return toPopup(c, s, `报告卡 ${cardId} 是另一位患者的报告卡，未提交；请重新打开报告卡填写`);
  }
  // Only the id this form was issued may name a stored card (the form submitted again updates its own
  // card); any other id must be new. A stored card is changed through the correction path only, so an
  // id changed by hand to this patient's other card (another case, another disease) stores nothing.
  if (stored !== null && !issuedHere(o, s, r.caseId, cardId, form.cardTag)) {
    log('warn', 'card form refused: its card id is a stored card it was not issued', {
      org: s.orgCode,
      doctor: maskDigits(s.doctorId),
      case: r.caseId,
      card: cardId,
    });
    return toPopup(c, s, `报告卡 ${cardId} 是已提交的报告卡，本表单未提交；修改平台退回的报告卡请点击其“修改报告卡”，新报告请重新打开报告卡填写`);
  }
  const rec = cardRecord(s, cardId, await defaults(o, s, r), form, now(), o.timeZone());
  const v = validateRecord(emrInfReport, rec, now());
  // A card refused is the form shown again, with the patient's data: a view, audited.
  const again = async (issues: FieldIssue[]) => {
    await viewed(o, c, 'view-card-form', s, `报告卡表单 病例 ${r.caseId} 报告卡 ${cardId}`, '未通过校验，重新显示');
    return c.html(formView(o, s, r, cardId, rec, forDoctor(issues)), 400);
  };
  if (!v.ok) return again(v.issues);
  // Another doctor's card for this patient and disease stored since this form was shown (two had the
  // case open; the warning loop has not closed it yet): a second card would be a duplicate report.
  const since = await reportedSince(o, s, cardId, rec);
  if (since) return again([sinceIssue(since)]);
  // Two forms of the case submitted at the same instant both pass the check above: it is made again
  // where the card is written, in its transaction, under a lock on the patient and disease
  // (docs/card-form.md "Two doctors, one case"). The lock is held to the commit, so the second
  // transaction, once it has it, sees the first's card and stores nothing.
  let raced: { id: string; at: string } | null = null;
  const refused = await storeCard(o, c, s, rec, {
    inWave: async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [cardLockKey(s, rec)]);
      raced = await reportedSince(o, s, cardId, rec, tx);
      if (raced) throw new AppError('CONFLICT', '本病例已有报告卡 (a card of the case was stored meanwhile)', [], cardId);
    },
  }).catch((err: unknown) => {
    if (raced) return [sinceIssue(raced)];
    throw err;
  });
  if (refused) return again(refused);
  log('info', 'card submitted from the front form', { org: s.orgCode, doctor: maskDigits(s.doctorId), case: r.caseId, card: cardId });
  return c.redirect(`/card/done?id=${cardId}`, 303);
}

/**
 * The card stored through the same pipeline as a card posted on 8881, the session's card noted and
 * the push nudged; the checks' issues when the pipeline refused it.
 */
async function storeCard(o: CardRoutesOptions, c: Context, s: SsoSession, rec: Record<string, unknown>, opts: GroupOptions = {}): Promise<FieldIssue[] | null> {
  try {
    await upsertRecord(
      o.db(),
      emrInfReport,
      rec,
      {
        callId: c.req.header('x-call-id') ?? null,
        test: false,
        testOrgs: o.testOrgs(),
        now: now(),
        caller: `sso:${s.doctorId}`,
        authorize: (org) => {
          if (org !== s.orgCode) throw new AppError('FORBIDDEN', `无权为机构 ${org} 提交报告卡`);
        },
        callerOrgs: [s.orgCode],
        installationOrg: s.orgCode,
        codes: await o.codes(),
      },
      opts,
    );
  } catch (err) {
    if (err instanceof AppError && err.code === 'VALIDATION_FAILED') return err.issues;
    throw err;
  }
  await noteCard(o.db(), getCookie(c, SSO_COOKIE)!, String(rec.id));
  o.nudge();
  return null;
}

// The corrected card: the stored one with the form's values over it, the same id — its next version,
// forwarded to the platforms as any new version is (docs/card-form.md "Correcting a returned card").
async function submitCorrection(o: CardRoutesOptions, c: Context, s: SsoSession, form: Record<string, unknown>) {
  const card = await returnedCard(o, s, form.correct);
  if (!card) return toPopup(c, s, NOT_RETURNED);
  // A form shown for another version (corrected by someone since, and returned again) would undo that correction.
  if (String(form.version ?? '') !== String(card.version)) return toPopup(c, s, CHANGED);
  const rec = cardRecord(s, card.id, card.values, form, now(), o.timeZone());
  const again = async (issues: FieldIssue[]) => {
    await viewed(o, c, 'view-card-form', s, correctionAudit(card.id), '未通过校验，重新显示');
    return c.html(correctionView(s, card, rec, forDoctor(issues)), 400);
  };
  const v = validateRecord(emrInfReport, rec, now());
  if (!v.ok) return again(v.issues);
  let stale = false;
  // The version the form was shown for is checked again where the correction is written, under the
  // card's row lock: of two corrections of one returned card sent at once, the second stores nothing.
  const refused = await storeCard(o, c, s, rec, {
    inWave: async (_tx, [w]) => {
      const from = w && (w.outcome.status === 'unchanged' ? w.outcome.version : w.outcome.version - 1);
      if (from !== card.version) {
        stale = true;
        throw new AppError('CONFLICT', `${CHANGED} (the card was corrected since)`, [], card.id);
      }
    },
  }).catch((err: unknown) => {
    if (stale) return 'stale' as const;
    throw err;
  });
  if (refused === 'stale') return toPopup(c, s, CHANGED);
  if (refused) return again(refused);
  log('info', 'returned card corrected from the front form', { org: s.orgCode, doctor: maskDigits(s.doctorId), card: card.id });
  return c.redirect(`/card/done?id=${encodeURIComponent(card.id)}`, 303);
}

/**
 * A card of the session's patient and the card's disease (a subtype and its family as one) stored
 * after this form was shown — its id says when: W<yyyyMMddHHmmss> — other than this form's own.
 */
async function reportedSince(
  o: CardRoutesOptions,
  s: SsoSession,
  cardId: string,
  rec: Record<string, unknown>,
  q: pg.Pool | pg.PoolClient = o.db(),
): Promise<{ id: string; at: string } | null> {
  const shown = /^W(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})/.exec(cardId);
  const code = typeof rec.diseaseCode === 'string' ? rec.diseaseCode : null;
  const from = shown ? parseTime(`${shown[1]}-${shown[2]}-${shown[3]} ${shown[4]}:${shown[5]}:${shown[6]}`, o.timeZone()) : null;
  if (!from || !code) return null;
  const rows = (
    await q.query<{ id: string; disease_code: string | null; rec_received_at: Date }>(
      `SELECT id, disease_code, rec_received_at FROM emr_inf_report
        WHERE org_code = $1 AND patient_id = $2 AND id <> $3 AND rec_received_at >= $4 AND NOT rec_retired AND NOT rec_test`,
      [s.orgCode, s.patientId, cardId, from],
    )
  ).rows;
  const hit = rows.find((r) => sameDisease(r.disease_code, code));
  return hit ? { id: hit.id, at: formatLocal(hit.rec_received_at, o.timeZone()).slice(11, 16) } : null;
}

/**
 * The transaction-scoped advisory lock of a patient's cards of one disease family (its NNDRS code's
 * first two digits: a subtype and its family are one disease to reportedSince), a 64-bit key from a
 * hash — a number this module computes, never text from the request (docs/opengauss.md: both servers
 * take pg_advisory_xact_lock with a bigint).
 */
function cardLockKey(s: SsoSession, rec: Record<string, unknown>): string {
  const family = typeof rec.diseaseCode === 'string' ? rec.diseaseCode.slice(0, 2) : '';
  const digest = createHash('sha256').update(`card-form\u0000${s.orgCode}\u0000${s.patientId}\u0000${family}`).digest('hex');
  return BigInt.asIntN(64, BigInt(`0x${digest.slice(0, 16)}`)).toString();
}

const sinceIssue = (since: { id: string; at: string }): FieldIssue => ({
  field: 'diseaseCode',
  rule: 'duplicateCard',
  message: `本病例已有报告卡 ${since.id}（${since.at} 由其他医生提交），为避免重复报告，本卡不能提交`,
});

/** A card's fate as the done page names it. */
const FATE: Record<string, string> = {
  forwarded: '已上报',
  stored: '已保存，等待上报',
  held: '已保存，暂缓上报',
  retired: '已作废',
  rejected: '未通过校验',
};

async function cardDone(o: CardRoutesOptions, c: Context) {
  const s = await session(o, c);
  if (!s) return noSession(c);
  const id = c.req.query('id') ?? '';
  // Only a card of the session's own patient: the ids of others show on their popups.
  const own = await o.db().query('SELECT 1 FROM emr_inf_report WHERE org_code = $1 AND id = $2 AND patient_id = $3', [s.orgCode, id, s.patientId]);
  const fate = own.rowCount ? await recordFate(o.db(), emrInfReport, s.orgCode, id) : null;
  if (!fate || fate.fate === 'unknown') throw new AppError('NOT_FOUND', `报告卡不存在：${id}`);
  c.header('cache-control', 'no-store');
  return c.html(renderCardDone(s, { id, status: fate.fate, held: fate.held, fate: FATE[fate.fate] ?? fate.fate }));
}

/** The routes of the header comment, each its own handler above. */
export function cardRoutes(o: CardRoutesOptions): Hono {
  const app = new Hono();
  app.get('/sso', (c) => signIn(o, c, c.req.query('token')));
  app.post('/sso', smallForm, async (c) => {
    const sent = (await c.req.parseBody()).token;
    // A token sent as a file, or twice, is no token (401 as any malformed one), not a 500.
    return signIn(o, c, sent === undefined ? c.req.query('token') : typeof sent === 'string' ? sent : '');
  });
  app.get('/sso/logout', (c) => signOut(c));
  // The popup's and the card form's own posts come from their pages: refused from another site as the
  // console's changes are (docs/console.md "Changes"), beside their token. The single sign-on itself,
  // POST /sso, is the HIS's page arriving: another site by design.
  app.post('/sso/logout', sameOrigin, (c) => signOutPost(o, c));
  app.get('/popup.html', (c) => showPopup(o, c));
  app.post('/popup/exclude', sameOrigin, (c) => excludeCase(o, c));
  app.get('/card.html', (c) => showCardForm(o, c));
  app.get('/card.js', (c) => cardScript(c));
  app.get('/api/card/session', (c) => formSession(o, c));
  app.post('/api/card/check', sameOrigin, (c) => checkCard(o, c));
  app.post('/card', sameOrigin, (c) => submitCard(o, c));
  app.get('/card/done', (c) => cardDone(o, c));
  return app;
}
