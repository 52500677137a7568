/**
 * 病例 — the pending cases and their report cards (docs/console.md "Cases"): the early-warning queue
 * by state, overdue first, searchable; a case's evidence, history and cards. The patient is shown
 * masked; revealing the name, ID number, phone or address needs a reason, and every view of a case
 * and every reveal is audited with the signed-in user (docs/console.md "Audit").
 */
import { Hono, type Context, type Env, type MiddlewareHandler } from 'hono';
import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import { z } from 'zod';
import { audit, listUsers, type Session } from '../../shared/console/index.js';
import { loadSearch, saveSearch, type SearchPage } from '../../shared/console/search.js';
import { getCookie } from 'hono/cookie';
import { COOKIE } from './people.js';
import type { Db } from '../../shared/db/index.js';
import { requestSource } from '../../shared/http/caller.js';
import { AppError, validationError } from '../../shared/http/errors.js';
import { mask } from '../../shared/ingest/mask.js';
import { pii, PiiKeyError, PiiValueError } from '../../shared/pii/index.js';
import {
  assignVerifier,
  CASE_STATE_NAME,
  CASE_STATES,
  caseDetail,
  decideCase,
  evidenceOfReason,
  listCases,
  type CaseListing,
  type CaseState,
} from '../../shared/warning/store.js';
import { CARD_STATUS_NAME, cardStatus, listCards, type CardListing, type CardStatus } from '../../shared/warning/duplicates.js';
import { resources } from '../../schemas/index.js';
import { EFFECT_NAME, EVIDENCE_KIND_NAME, type Effect, type EvidenceKind } from '../../shared/warning/evaluate.js';
import { formatLocal } from '../../shared/time/index.js';
import { consolePage, h, when } from './console-layout.js';
import type pg from 'pg';

/** The states as the console names them: shared/warning's names, a known case said as public health reads it. */
export const STATE_ZH: Record<CaseState, string> = { ...CASE_STATE_NAME, known: '已报告（既往）' };
const kindName = (k: string) => EVIDENCE_KIND_NAME[k as EvidenceKind] ?? k;
const effectName = (e: string) => EFFECT_NAME[e as Effect] ?? e;

/**
 * A case event's reason as the doctor reads it: a warning run's evidence (shared/warning/store.ts
 * evidenceOfReason) each shown in Chinese, the trigger as it is (the trigger list's id). A person's
 * decision is written in Chinese already.
 */
function reasonText(reason: string | null): string {
  const ev = evidenceOfReason(reason);
  if (ev === null) return reason ?? '';
  if (ev.length === 0) return '证据：无';
  return `证据：${ev.map((e) => `${kindName(e.kind)} ${e.trigger} ${effectName(e.effect)}`).join('；')}`;
}

/** The patient as the case page shows it: the personal fields, masked unless revealed. */
interface Patient {
  name: string | null;
  idCard: string | null;
  tel: string | null;
  address: string | null;
}

const open = (v: string | null): string | null => {
  if (!v) return null;
  try {
    return pii().open(v);
  } catch (err) {
    if (err instanceof PiiKeyError || err instanceof PiiValueError) return `（无法解密：${err.message}）`;
    throw err;
  }
};

async function patientOf(db: Db, org: string, patientId: string): Promise<Patient | null> {
  const r = await db.query<{ patient_name: string | null; id_card: string | null; tel: string | null; current_addr_detail: string | null }>(
    'SELECT patient_name, id_card, tel, current_addr_detail FROM emr_patient_info WHERE org_code = $1 AND id = $2',
    [org, patientId],
  );
  const p = r.rows[0];
  // Stored sealed (docs/keys.md): opened here, masked by the page unless revealed.
  return p ? { name: open(p.patient_name), idCard: open(p.id_card), tel: open(p.tel), address: open(p.current_addr_detail) } : null;
}

const masked = (p: Patient): Patient => ({
  name: p.name ? String(mask('name', p.name)) : null,
  idCard: p.idCard ? String(mask('idno', p.idCard)) : null,
  tel: p.tel ? String(mask('phone', p.tel)) : null,
  address: p.address ? String(mask('address', p.address)) : null,
});

const inScope = (s: Session, org: string) => s.user.orgs === '*' || s.user.orgs.includes(org);

/**
 * A list's search form: posted with the session's token, never a GET — what is typed (a name, an ID
 * number) is kept server-side and the list's URL names it by an opaque id (docs/console.md "Cases").
 */
const searchForm = (action: string, csrf: string, filter: HtmlEscapedString, search: string, placeholder: string) =>
  h(html`<form method="post" action="${action}" class="filters" id="search"><input type="hidden" name="_csrf" value="${csrf}">
${filter}
<label>搜索 <input name="q" value="${search}" placeholder="${placeholder}" autocomplete="off"></label> <button>查询</button></form>`);

/** `?s=<id>` of a list's search (an opaque id, no personal data), carried to a case and back; '' without one. */
const searchParam = (id: string | null) => (id ? `?s=${id}` : '');
/** A search id as a URL may carry it; anything else is dropped. */
const searchIdOf = (c: Context) =>
  z
    .string()
    .regex(/^[0-9a-f]{32}$/)
    .nullable()
    .catch(null)
    .parse(c.req.query('s') ?? null);

function renderList(
  rows: CaseListing[],
  q: { state: string; search: string; id: string | null; mine: string | null },
  tz: string,
  csrf: string,
): HtmlEscapedString {
  const filter = h(
    html`<label>状态 <select name="state"><option value="">全部待处理</option>${CASE_STATES.map(
      (s) => html`<option value="${s}"${q.state === s ? html` selected` : ''}>${STATE_ZH[s]}</option>`,
    )}</select></label>`,
  );
  return h(html`${searchForm('/cases.html', csrf, filter, q.search, '病种、患者编号、病例号、姓名、身份证号')}
<p class="muted">${q.mine ? html`指派给我（${q.mine}）核查的` : ''}共 ${rows.length} 例，超时的在前。 ${
    q.mine ? html`<a href="/cases.html" id="queue">查看全部病例</a>` : html`<a href="/cases.html?mine=1" id="queue">只看指派给我核查的</a>`
  }</p>
<div class="scroll"><table id="cases"><thead><tr><th>病例号</th><th>病种</th><th>状态</th><th>报告时限</th><th>机构</th><th>患者编号</th><th>科室</th><th>医生</th><th>核查人</th><th>证据</th><th>更新</th></tr></thead><tbody>
${rows.map(
  (c) => html`<tr data-case="${c.caseId}"${c.overdue ? html` class="late"` : ''}><td><a href="/cases/${c.caseId}${searchParam(q.id)}">${c.caseId}</a></td>
<td>${c.disease}${c.classA ? html` <span class="bad">甲类</span>` : ''}</td><td>${STATE_ZH[c.state]}</td>
<td>${c.dueAt ? html`${when(c.dueAt, tz)}${c.overdue ? html` <span class="bad">已超时</span>` : ''}` : '—'}</td>
<td>${c.orgCode}</td><td>${c.patientId}</td><td>${c.deptCode ?? '—'}</td><td>${c.doctorId ?? '—'}</td><td>${c.verifier ?? '—'}</td><td class="n">${c.evidenceCount}</td><td>${when(c.updatedAt, tz)}</td></tr>`,
)}
</tbody></table></div>`);
}

/** The card statuses, in the order the list shows them. */
const CARD_STATUSES: readonly CardStatus[] = ['returned', 'stored', 'sent', 'accepted', 'corrected'];
/** How far back the card list reaches (a returned card older than this is still found by its id). */
const CARD_DAYS = 90;

function renderCards(rows: CardListing[], q: { status: string; search: string }, tz: string, csrf: string): HtmlEscapedString {
  const filter = h(
    html`<label>状态 <select name="status"><option value="">全部</option>${CARD_STATUSES.map(
      (s) => html`<option value="${s}"${q.status === s ? html` selected` : ''}>${CARD_STATUS_NAME[s]}</option>`,
    )}</select></label>`,
  );
  return h(html`${searchForm('/cards.html', csrf, filter, q.search, '卡片编号、患者编号、疾病名称、姓名、身份证号')}
<p class="muted">近 ${CARD_DAYS} 天收到的报告卡共 ${rows.length} 张：平台退回的在前，其次待上报、待回执；个人信息不在列表中显示，打开卡片查看（脱敏）。</p>
<div class="scroll"><table id="cards"><thead><tr><th>卡片编号</th><th>疾病</th><th>国家平台状态</th><th>报告时间</th><th>机构</th><th>患者编号</th><th>收到时间</th></tr></thead><tbody>
${rows.map(
  (
    c,
  ) => html`<tr data-card="${c.id}" data-status="${c.status}"${c.status === 'returned' ? html` class="late"` : ''}><td><a href="/cards/${encodeURIComponent(c.orgCode)}/${encodeURIComponent(c.id)}">${c.id}</a></td>
<td>${c.disease}</td><td>${c.name}${c.reason ? html`<br><span class="bad">${c.reason}</span>` : ''}</td>
<td>${c.reportedAt ? when(c.reportedAt, tz) : '—'}</td><td>${c.orgCode}</td><td>${c.patientId ?? '—'}</td><td>${when(c.receivedAt, tz)}</td></tr>`,
)}
</tbody></table></div>`);
}

type Detail = NonNullable<Awaited<ReturnType<typeof caseDetail>>>;

/**
 * Public health's part of a case (docs/console.md "Verifying a case"): a case whose card has arrived
 * (待核查) is verified here, with an optional note; a waiting case's verification is assigned to a
 * person, or to the signed-in user (指派给我, whose queue is ?mine=1). Posted with the session's token,
 * the author taken from the session.
 */
function decisions(
  caseId: string,
  state: CaseState,
  verifier: string | null,
  me: string,
  verifiers: string[],
  csrf: string,
  searchId: string | null,
): HtmlEscapedString | '' {
  if (!PENDING.includes(state)) return '';
  const token = html`<input type="hidden" name="_csrf" value="${csrf}">`;
  return h(html`<section id="decide"><h2>公共卫生核查</h2>
${
  state === 'to_verify'
    ? html`<form method="post" action="/cases/${caseId}/verify${searchParam(searchId)}" id="verify">${token}
<label>核查说明（选填） <input name="note" maxlength="200" size="40" placeholder="例如：已与报告医生核实诊断"></label> <button>核查通过</button>
<span class="muted">报告卡已收到：核实卡片与病历一致后点击核查通过，病例转为已报告；本操作记入病例处理记录和审计。说明中请勿填写姓名、身份证号等个人信息。</span></form>`
    : html`<p class="muted">报告卡尚未收到：收到后方可核查（当前：${STATE_ZH[state]}）。</p>`
}
<form method="post" action="/cases/${caseId}/assign${searchParam(searchId)}" id="assign">${token}
<label>核查人 <input name="verifier" required maxlength="80" value="${verifier ?? ''}" placeholder="公共卫生科人员的用户名" list="verifiers" autocomplete="off"></label> <button>${verifier ? '改派' : '指派'}</button>
<datalist id="verifiers">${verifiers.map((u) => html`<option value="${u}"></option>`)}</datalist></form>${
    verifier === me
      ? ''
      : html`
<form method="post" action="/cases/${caseId}/assign${searchParam(searchId)}" id="assign-me">${token}<input type="hidden" name="verifier" value="${me}"><button>指派给我</button></form>`
  }</section>`);
}

function renderDetail(
  d: Detail,
  p: Patient | null,
  revealed: boolean,
  s: Session,
  verifiers: string[],
  tz: string,
  searchId: string | null,
): HtmlEscapedString {
  const csrf = s.csrf;
  const c = d.case as {
    case_id: string;
    org_code: string;
    patient_id: string;
    disease: string;
    state: CaseState;
    due_at: Date | null;
    class_a: boolean;
    verifier: string | null;
  };
  const row = (label: string, v: string | null) => html`<dt>${label}</dt><dd>${v ?? '—'}</dd>`;
  return h(html`<p><a href="/cases.html${searchParam(searchId)}" id="back">← 返回病例列表</a></p>
<section><h2>病例 ${c.case_id}：${c.disease}${c.class_a ? '（甲类或按甲类管理）' : ''}</h2>
<dl><dt>状态</dt><dd id="state">${STATE_ZH[c.state]}</dd><dt>报告时限</dt><dd>${when(c.due_at, tz)}</dd><dt>机构</dt><dd>${c.org_code}</dd><dt>患者编号</dt><dd>${c.patient_id}</dd><dt>核查人</dt><dd id="verifier">${c.verifier ?? '未指派'}</dd></dl></section>
${decisions(c.case_id, c.state, c.verifier, s.user.username, verifiers, csrf, searchId)}
<section id="patient"><h2>患者${revealed ? '（已显示，已记录审计）' : '（已脱敏）'}</h2>
${p ? html`<dl>${row('姓名', p.name)}${row('身份证件号', p.idCard)}${row('联系电话', p.tel)}${row('现住址', p.address)}</dl>` : html`<p class="muted">前置尚未收到该患者的基本信息。</p>`}
${
  p && !revealed
    ? html`<form method="post" action="/cases/${c.case_id}/reveal${searchParam(searchId)}" id="reveal"><input type="hidden" name="_csrf" value="${csrf}">
<label>显示完整信息的原因 <input name="reason" required minlength="4" maxlength="200" placeholder="例如：核实报告卡身份证号"></label> <button>显示</button>
<span class="muted">显示个人信息须说明原因，将记入审计。</span></form>`
    : ''
}</section>
<section><h2>证据</h2><table id="evidence"><thead><tr><th>时间</th><th>来源</th><th>类型</th><th>作用</th><th>说明</th></tr></thead><tbody>
${(d.evidence as Array<{ evidence_at: Date | null; source_resource: string; source_id: string; kind: string; effect: string; detail: string | null }>).map(
  (e) =>
    html`<tr><td>${when(e.evidence_at, tz)}</td><td>${resources[e.source_resource]?.title ?? e.source_resource} ${e.source_id}</td><td>${kindName(e.kind)}</td><td data-effect="${e.effect}">${effectName(e.effect)}</td><td>${e.detail ?? ''}</td></tr>`,
)}</tbody></table></section>
<section><h2>报告卡</h2>${
    d.cards.length
      ? html`<table id="cards"><thead><tr><th>卡片</th><th>状态</th></tr></thead><tbody>${d.cards.map(
          (k) =>
            html`<tr><td><a href="/cards/${encodeURIComponent(c.org_code)}/${encodeURIComponent(k.cardId)}?case=${c.case_id}">${k.cardId}</a></td><td>${(k as { name?: string }).name ?? ''}</td></tr>`,
        )}</tbody></table>`
      : html`<p class="muted">尚无报告卡。</p>`
  }</section>
<section><h2>处理记录</h2><table id="events"><thead><tr><th>时间</th><th>操作人</th><th>状态变化</th><th>说明</th></tr></thead><tbody>
${(d.events as Array<{ at: Date; actor: string | null; from_state: CaseState | null; to_state: CaseState; reason: string | null }>).map(
  (e) =>
    html`<tr><td>${when(e.at, tz)}</td><td>${e.actor ?? ''}</td><td>${e.from_state ? STATE_ZH[e.from_state] : '—'} → ${STATE_ZH[e.to_state]}</td><td>${reasonText(e.reason)}</td></tr>`,
)}</tbody></table></section>`);
}

type CardField = { label: string; value: string; personal: boolean };

/** A report card's fields with their labels, personal ones opened and (unless revealed) masked. */
async function cardFields(db: Db, org: string, id: string, revealed: boolean, tz: string): Promise<CardField[] | null> {
  const r = resources.emrInfReport!;
  const row = (await db.query<Record<string, unknown>>('SELECT * FROM emr_inf_report WHERE org_code = $1 AND id = $2 AND NOT rec_retired', [org, id])).rows[0];
  if (!row) return null;
  const out: CardField[] = [];
  for (const def of Object.values(r.fields as Record<string, { column: string; label: string; personal?: Parameters<typeof mask>[0] }>)) {
    const raw = row[def.column];
    if (raw === null || raw === undefined || raw === '') continue;
    let value = raw instanceof Date ? formatLocal(raw, tz) : String(raw);
    if (def.personal) {
      value = open(value) ?? '';
      if (!revealed) value = String(mask(def.personal, value));
    }
    out.push({ label: def.label, value, personal: def.personal !== undefined });
  }
  return out;
}

function renderCard(
  org: string,
  id: string,
  fields: CardField[],
  status: Awaited<ReturnType<typeof cardStatus>>,
  caseId: string | null,
  revealed: boolean,
  csrf: string,
  tz: string,
): HtmlEscapedString {
  // Opened from its case, back to the case; else from 报告卡, back to the card list.
  const back = caseId ? `/cases/${caseId}` : '/cards.html';
  return h(html`<p><a href="${back}">← 返回${caseId ? `病例 ${caseId}` : '报告卡列表'}</a></p>
<section><h2>报告卡 ${id}</h2><dl><dt>机构</dt><dd>${org}</dd><dt>国家平台</dt><dd id="card-status">${status.name}${status.reason ? `：${status.reason}` : ''}${
    status.at ? `（${when(status.at, tz)}）` : ''
  }</dd><dt>版本</dt><dd>${status.version ?? '—'}</dd></dl></section>
<section id="card"><h2>卡片内容${revealed ? '（已显示，已记录审计）' : '（个人信息已脱敏）'}</h2>
<table><tbody>${fields.map((f) => html`<tr${f.personal ? html` class="personal"` : ''}><th>${f.label}</th><td>${f.value}</td></tr>`)}</tbody></table>
${
  revealed
    ? ''
    : html`<form method="post" action="/cards/${encodeURIComponent(org)}/${encodeURIComponent(id)}/reveal${caseId ? `?case=${caseId}` : ''}" id="reveal"><input type="hidden" name="_csrf" value="${csrf}">
<label>显示完整信息的原因 <input name="reason" required minlength="4" maxlength="200"></label> <button>显示</button> <span class="muted">将记入审计。</span></form>`
}</section>`);
}

/** The queue's states: a case still waiting for someone (docs/console.md "Cases"). */
const PENDING: readonly CaseState[] = ['to_confirm', 'to_diagnose', 'to_verify'];

export interface CasesRoutesOptions {
  db: () => Db;
  viewer: MiddlewareHandler;
  timeZone: () => string;
  trustedProxies: () => string;
  /** WARNING_CASE_WINDOW_DAYS: a decision re-derives the case's state as the warning function does. */
  caseWindowDays: () => number;
}

// Every view and reveal is audited with the browser's address (docs/console.md "Audit").
const address = (o: CasesRoutesOptions, c: Context) => requestSource(c, o.trustedProxies()).address;

const page = (o: CasesRoutesOptions, s: Session, title: string, path: string, body: HtmlEscapedString, msg?: string) =>
  consolePage({ title, path, session: s, timeZone: o.timeZone(), now: new Date(), body, msg });

/** The case list's search as posted and as kept (shared/console/search.ts). */
const CaseSearch = z.object({
  state: z.enum(CASE_STATES).or(z.literal('')).default(''),
  q: z.string().trim().max(60, '搜索最多 60 个字 (at most 60 characters)').default(''),
});
/** The card list's search as posted and as kept. */
const CardSearch = z.object({
  status: z
    .enum(CARD_STATUSES as [CardStatus, ...CardStatus[]])
    .or(z.literal(''))
    .default(''),
  q: z.string().trim().max(80, '搜索最多 80 个字 (at most 80 characters)').default(''),
});
const EXPIRED_SEARCH = '该查询已失效（已退出登录或已过期），请重新查询';

/**
 * The search a list's URL names (`?s=`, this session's), else only the filter of the URL (a state or
 * status: no personal data); `lost` when the URL names a search this session no longer has.
 */
async function searchOf<T extends Record<string, string>>(
  o: CasesRoutesOptions,
  c: Context,
  page: SearchPage,
  schema: z.ZodType<T>,
  fromUrl: T,
): Promise<{ query: T; id: string | null; lost: boolean }> {
  const id = c.req.query('s');
  if (!id) return { query: fromUrl, id: null, lost: false };
  const query = await loadSearch(o.db(), getCookie(c, COOKIE) ?? '', page, id, schema);
  return query ? { query, id, lost: false } : { query: fromUrl, id: null, lost: true };
}

/** A posted search: kept, and the list shown at a URL that names it only by its id (303, so that reload and back work). */
async function postSearch<T extends { q: string }>(o: CasesRoutesOptions, c: Context, page: SearchPage, schema: z.ZodType<T>, filter: keyof T & string) {
  const body = schema.safeParse(await c.req.parseBody());
  if (!body.success) throw validationError(body.error, 'q: 搜索条件不合法 (invalid search)');
  const path = `/${page}.html`;
  const f = String(body.data[filter] ?? '');
  if (!body.data.q) return c.redirect(f ? `${path}?${filter}=${encodeURIComponent(f)}` : path, 303);
  const id = await saveSearch(o.db(), getCookie(c, COOKIE) ?? '', page, { ...(body.data as Record<string, string>) });
  return c.redirect(`${path}?s=${id}`, 303);
}

async function listPage(o: CasesRoutesOptions, c: Context) {
  const s = c.get('person');
  const state = z
    .enum(CASE_STATES)
    .optional()
    .catch(undefined)
    .parse(c.req.query('state') || undefined);
  const { query, id, lost } = await searchOf<z.infer<typeof CaseSearch>>(o, c, 'cases', CaseSearch, { state: state ?? '', q: '' });
  const asked = query.state || undefined;
  const search = query.q;
  const orgs = s.user.orgs === '*' ? [undefined] : s.user.orgs;
  const now = new Date();
  // Without a state asked, the queue is what still needs someone: not reported, excluded or closed.
  // States and search are the query's, so a busy org's many closed cases never push a pending one out.
  const which = asked ? { state: asked } : { states: PENDING };
  // ?mine=1: the signed-in user's verification queue (the cases assigned to them, docs/console.md "Verifying a case").
  const mine = c.req.query('mine') === '1' ? s.user.username : null;
  const lists = await Promise.all(
    orgs.map((org) =>
      listCases(o.db() as pg.Pool, { orgCode: org, ...which, ...(search ? { search } : {}), ...(mine ? { verifier: mine } : {}), limit: 500, now }),
    ),
  );
  const rows = lists.flat();
  rows.sort((a, b) => Number(b.overdue) - Number(a.overdue) || b.updatedAt.getTime() - a.updatedAt.getTime());
  c.header('cache-control', 'no-store');
  const body = renderList(rows.slice(0, 500), { state: asked ?? '', search, id, mine }, o.timeZone(), s.csrf);
  return c.html(consolePage({ title: '病例', path: '/cases.html', session: s, timeZone: o.timeZone(), now, body, err: lost ? EXPIRED_SEARCH : undefined }));
}

/** The usernames 核查人 offers: the public-health doctors who may work the org's cases, not disabled. */
async function verifiersOf(o: CasesRoutesOptions, org: string): Promise<string[]> {
  return (await listUsers(o.db())).filter((u) => u.role === 'public_health' && !u.disabled && (u.orgs === '*' || u.orgs.includes(org))).map((u) => u.username);
}

/** A decision's case `id`: its org and state if the user's orgs hold it, or NOT_FOUND (no evidence, cards or history read). */
async function caseHead(o: CasesRoutesOptions, s: Session, id: string): Promise<{ org: string; state: CaseState }> {
  const c = /^\d{1,18}$/.test(id)
    ? (await o.db().query<{ org_code: string; state: CaseState }>('SELECT org_code, state FROM warning_case WHERE case_id = $1', [id])).rows[0]
    : undefined;
  if (!c || !inScope(s, c.org_code)) throw new AppError('NOT_FOUND', `没有这个病例：${id}`);
  return { org: c.org_code, state: c.state };
}

/** Case `id` if the user's orgs hold it, or NOT_FOUND. */
async function detail(o: CasesRoutesOptions, s: Session, id: string) {
  if (!/^\d{1,18}$/.test(id)) throw new AppError('NOT_FOUND', `没有这个病例：${id}`);
  const d = await caseDetail(o.db() as pg.Pool, id);
  const c = d?.case as { org_code: string; patient_id: string } | undefined;
  if (!d || !c || !inScope(s, c.org_code)) throw new AppError('NOT_FOUND', `没有这个病例：${id}`);
  return { d, org: c.org_code, patientId: c.patient_id };
}

async function casePage(o: CasesRoutesOptions, c: Context<Env, '/cases/:id'>) {
  const s = c.get('person');
  const { d, org, patientId } = await detail(o, s, c.req.param('id'));
  const p = await patientOf(o.db(), org, patientId);
  // A view of a case shows personal data (masked): audited all the same.
  await audit(o.db(), 'view-case', s.user.username, `病例 ${c.req.param('id')}（机构 ${org}）`, address(o, c));
  c.header('cache-control', 'no-store');
  return c.html(
    page(
      o,
      s,
      `病例 ${c.req.param('id')}`,
      '/cases.html',
      renderDetail(d, p ? masked(p) : null, false, s, await verifiersOf(o, org), o.timeZone(), searchIdOf(c)),
    ),
  );
}

async function revealCase(o: CasesRoutesOptions, c: Context<Env, '/cases/:id/reveal'>) {
  const s = c.get('person');
  const body = z.object({ reason: z.string().trim().min(4, '原因至少 4 个字 (at least 4 characters)').max(200) }).safeParse(await c.req.parseBody());
  if (!body.success) throw validationError(body.error, 'reason: 显示个人信息须说明原因 (a reason is required)');
  const { d, org, patientId } = await detail(o, s, c.req.param('id'));
  const p = await patientOf(o.db(), org, patientId);
  await audit(o.db(), 'reveal', s.user.username, `病例 ${c.req.param('id')}（机构 ${org}）显示患者个人信息，原因：${body.data.reason}`, address(o, c));
  // Shown once, in this answer: never cached, never in a URL.
  c.header('cache-control', 'no-store');
  return c.html(
    page(
      o,
      s,
      `病例 ${c.req.param('id')}`,
      '/cases.html',
      renderDetail(d, p, true, s, await verifiersOf(o, org), o.timeZone(), searchIdOf(c)),
      '已显示完整信息，本次操作已记入审计',
    ),
  );
}

/** A case's history names the person who decided as the console knows them. */
const actorOf = (s: Session) => `console:${s.user.username}`;
const Verify = z.object({ note: z.string().trim().max(200, '核查说明最多 200 个字 (at most 200 characters)').default('') });
const Assign = z.object({
  verifier: z.string().trim().min(1, '请填写核查人 (a verifier is required)').max(80, '核查人最多 80 个字 (at most 80 characters)'),
});

// Public health verifies a case's card (docs/console.md "Verifying a case"): the state re-derived by
// shared/warning's decideCase, the case's history and the console's audit naming the user.
async function verifyCase(o: CasesRoutesOptions, c: Context<Env, '/cases/:id/verify'>) {
  const s = c.get('person');
  const body = Verify.safeParse(await c.req.parseBody());
  if (!body.success) throw validationError(body.error, 'note: 核查说明不合法 (invalid note)');
  const id = c.req.param('id');
  const { org } = await caseHead(o, s, id);
  const note = body.data.note;
  await decideCase(o.db() as pg.Pool, id, 'verify', { actor: actorOf(s), reason: note || null }, s.user.orgs === '*' ? null : s.user.orgs, {
    caseWindowDays: o.caseWindowDays(),
    // The audit row with the decision, in its transaction: both or neither.
    within: (tx, state) =>
      audit(tx, 'verify-case', s.user.username, `病例 ${id}（机构 ${org}）核查通过，状态 ${STATE_ZH[state]}${note ? `，说明：${note}` : ''}`, address(o, c)),
  });
  return c.redirect(`/cases/${id}${searchParam(searchIdOf(c))}`, 303);
}

async function assignCase(o: CasesRoutesOptions, c: Context<Env, '/cases/:id/assign'>) {
  const s = c.get('person');
  const body = Assign.safeParse(await c.req.parseBody());
  if (!body.success) throw validationError(body.error, 'verifier: 核查人不合法 (invalid verifier)');
  const id = c.req.param('id');
  const { org, state } = await caseHead(o, s, id);
  // Only a case still waiting for someone takes a verifier, as its page offers.
  if (!PENDING.includes(state)) throw new AppError('CONFLICT', `病例当前状态为${STATE_ZH[state]}，不能指派核查人 (not possible in state ${state})`, [], id);
  // A verifier is someone whose queue (只看指派给我核查的) will show the case: one of the org's
  // public-health doctors the field offers, or the user deciding (指派给我, an admin's too).
  const verifier = body.data.verifier;
  if (verifier !== s.user.username && !(await verifiersOf(o, org)).includes(verifier)) {
    throw new AppError('VALIDATION_FAILED', `核查人「${verifier}」不是本机构可核查病例的公共卫生人员 (not a public-health user of org ${org})`, [
      { field: 'verifier', rule: 'known-verifier', message: '请从列表中选择本机构的公共卫生人员 (pick one of the org’s public-health users)' },
    ]);
  }
  await assignVerifier(o.db() as pg.Pool, id, verifier, actorOf(s), new Date(), (tx) =>
    audit(tx, 'assign-case', s.user.username, `病例 ${id}（机构 ${org}）指派核查人：${verifier}`, address(o, c)),
  );
  return c.redirect(`/cases/${id}${searchParam(searchIdOf(c))}`, 303);
}

// The report cards (docs/console.md "Report cards"): the ones that need someone first.
async function cardsPage(o: CasesRoutesOptions, c: Context) {
  const s = c.get('person');
  const status = z
    .enum(CARD_STATUSES as [CardStatus, ...CardStatus[]])
    .optional()
    .catch(undefined)
    .parse(c.req.query('status') || undefined);
  const { query, lost } = await searchOf<z.infer<typeof CardSearch>>(o, c, 'cards', CardSearch, { status: status ?? '', q: '' });
  const asked = query.status || undefined;
  const rows = await listCards(o.db(), {
    orgs: s.user.orgs === '*' ? null : s.user.orgs,
    ...(asked ? { status: asked } : {}),
    ...(query.q ? { search: query.q } : {}),
    days: CARD_DAYS,
    limit: 500,
    now: new Date(),
  });
  c.header('cache-control', 'no-store');
  const body = renderCards(rows, { status: asked ?? '', search: query.q }, o.timeZone(), s.csrf);
  return c.html(
    consolePage({ title: '报告卡', path: '/cards.html', session: s, timeZone: o.timeZone(), now: new Date(), body, err: lost ? EXPIRED_SEARCH : undefined }),
  );
}

// A report card, from its case or the card list (docs/console.md "Cases"): every field with its label, the personal
// ones masked; its state at the national platform. Viewed and revealed as a case is, audited.
async function card(o: CasesRoutesOptions, s: Session, org: string, id: string, revealed: boolean, caseId: string | null) {
  if (!inScope(s, org)) throw new AppError('NOT_FOUND', `没有这张报告卡：${id}`);
  const fields = await cardFields(o.db(), org, id, revealed, o.timeZone());
  if (!fields) throw new AppError('NOT_FOUND', `没有这张报告卡：${id}`);
  const status = await cardStatus(o.db(), org, id);
  return renderCard(org, id, fields, status, caseId && /^\d{1,18}$/.test(caseId) ? caseId : null, revealed, s.csrf, o.timeZone());
}

async function cardPage(o: CasesRoutesOptions, c: Context<Env, '/cards/:org/:id'>) {
  const s = c.get('person');
  const { org, id } = c.req.param();
  const body = await card(o, s, org, id, false, c.req.query('case') ?? null);
  await audit(o.db(), 'view-card', s.user.username, `报告卡 ${id}（机构 ${org}）`, address(o, c));
  c.header('cache-control', 'no-store');
  return c.html(page(o, s, `报告卡 ${id}`, '/cards.html', body));
}

async function revealCard(o: CasesRoutesOptions, c: Context<Env, '/cards/:org/:id/reveal'>) {
  const s = c.get('person');
  const { org, id } = c.req.param();
  const reason = z.object({ reason: z.string().trim().min(4, '原因至少 4 个字 (at least 4 characters)').max(200) }).safeParse(await c.req.parseBody());
  if (!reason.success) throw validationError(reason.error, 'reason: 显示个人信息须说明原因 (a reason is required)');
  const body = await card(o, s, org, id, true, c.req.query('case') ?? null);
  await audit(o.db(), 'reveal', s.user.username, `报告卡 ${id}（机构 ${org}）显示个人信息，原因：${reason.data.reason}`, address(o, c));
  c.header('cache-control', 'no-store');
  return c.html(page(o, s, `报告卡 ${id}`, '/cards.html', body, '已显示完整信息，本次操作已记入审计'));
}

/** The cases and report cards, each route its own handler above, every one for a signed-in viewer. */
export function casesRoutes(o: CasesRoutesOptions): Hono {
  const app = new Hono();
  app.get('/cases.html', o.viewer, (c) => listPage(o, c));
  app.post('/cases.html', o.viewer, (c) => postSearch(o, c, 'cases', CaseSearch, 'state'));
  app.get('/cases/:id', o.viewer, (c) => casePage(o, c));
  app.post('/cases/:id/reveal', o.viewer, (c) => revealCase(o, c));
  app.post('/cases/:id/verify', o.viewer, (c) => verifyCase(o, c));
  app.post('/cases/:id/assign', o.viewer, (c) => assignCase(o, c));
  app.get('/cards.html', o.viewer, (c) => cardsPage(o, c));
  app.post('/cards.html', o.viewer, (c) => postSearch(o, c, 'cards', CardSearch, 'status'));
  app.get('/cards/:org/:id', o.viewer, (c) => cardPage(o, c));
  app.post('/cards/:org/:id/reveal', o.viewer, (c) => revealCard(o, c));
  return app;
}
