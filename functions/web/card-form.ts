/**
 * The front's own popup and report-card form (deployment variant A, docs/card-form.md), opened from
 * the HIS by single sign-on: the patient's pending cases with their evidence and clock, and the
 * 传染病报告卡 pre-filled from the patient, the diagnosis and the lab data, checked live by the same
 * validation and report-card rules the card function applies, submitted as an emrInfReport record.
 * Rendered on the server with hono/html (every value escaped); the one script (/card.js) only asks
 * the server to check the form as the doctor types and shows the answers beside the fields.
 */
import { html, raw } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import { lists, type DomainName } from '../../schemas/codes/lists.js';
import { emrInfReport } from '../../schemas/card.js';
import type { FieldMap } from '../../schemas/fields.js';
import type { FieldIssue } from '../../shared/http/errors.js';
import type { SsoSession } from '../../shared/sso/session.js';
import { EVIDENCE_KIND_NAME } from '../../shared/warning/evaluate.js';
import type { CaseCard, ExcludedCase, Reminder } from '../../shared/warning/reminders.js';

type Input = 'text' | 'date' | 'datetime' | 'textarea';
interface FormField {
  name: string;
  /** A select over a national list. */
  list?: DomainName;
  input?: Input;
  required?: boolean;
  hint?: string;
}

/** The card's sections as the national form orders them; labels come from the schema. */
export const SECTIONS: ReadonlyArray<{ title: string; fields: readonly FormField[] }> = [
  {
    title: '患者信息',
    fields: [
      { name: 'patientName', required: true },
      { name: 'genderCode', list: 'sex', required: true },
      { name: 'birthDate', input: 'date', required: true },
      { name: 'idCardTypeCode', list: 'idType' },
      { name: 'idCard', hint: '15 或 18 位；不详填 00000000000000000X' },
      { name: 'tel', hint: '14 岁及以下必填' },
      { name: 'contacts', hint: '14 岁及以下填家长姓名' },
      { name: 'nultitudeTypeCode', list: 'populationClass', required: true },
      { name: 'workunit' },
      { name: 'currentAddrCode', hint: '到乡镇/街道的 9 位代码' },
      { name: 'currentAddrDetail' },
    ],
  },
  {
    // What an AIDS/HIV card (clinical or confirmed) also requires (docs/card-form.md "AIDS/HIV cards"):
    // the HIS's patient record often lacks them, and only the form can add them then.
    title: '艾滋病/HIV 报告卡另需（其他病种可不填）',
    fields: [
      { name: 'nationCode', list: 'ethnicity' },
      { name: 'maritalStatusCode', list: 'maritalStatus' },
      { name: 'educationCode', list: 'education' },
      { name: 'permanentAddrCode', hint: '户籍地址：到乡镇/街道的 9 位代码' },
      { name: 'permanentAddrDetail', hint: '户籍详细地址，不超过 50 字' },
    ],
  },
  {
    title: '疾病信息',
    fields: [
      { name: 'diseaseCode', list: 'nndrsDisease', required: true },
      { name: 'diseaseOther', hint: '“其他”病种填写名称' },
      { name: 'diagnoseStateCode', list: 'diagnosisStatus', required: true },
      { name: 'caseTypeCode', list: 'caseType', hint: '乙肝、丙肝、血吸虫病须分急性/慢性' },
      { name: 'onsetDate', input: 'date', required: true },
      { name: 'diagnoseTime', input: 'datetime', required: true },
      { name: 'deadDate', input: 'date' },
    ],
  },
  {
    title: '报告信息',
    fields: [
      { name: 'reportDate', input: 'datetime', required: true },
      { name: 'reportZoneCode', required: true, hint: '县区级 9 位代码；沿用本院上一张报告卡' },
      { name: 'fillDoctor', required: true },
      { name: 'deptCode' },
      { name: 'notes', input: 'textarea' },
    ],
  },
];
export const FORM_FIELDS: readonly FormField[] = SECTIONS.flatMap((s) => s.fields);

const STYLE = `
body{font:14px/1.5 "Microsoft YaHei","PingFang SC",sans-serif;margin:0;background:#f4f6f8;color:#1c2733}
header{background:#8b1a1a;color:#fff;padding:8px 16px}header h1{font-size:18px;margin:0}header p{margin:0;font-size:13px}
main{max-width:980px;margin:12px auto;padding:0 12px}
section{background:#fff;border:1px solid #d5dbe1;border-radius:4px;margin:0 0 12px;padding:10px 14px}
h2{font-size:15px;margin:0 0 8px;color:#8b1a1a}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(280px,1fr));gap:6px 16px}
label{display:block;font-size:13px;color:#44515e}label .req{color:#c00}
input,select,textarea{width:100%;box-sizing:border-box;padding:4px 6px;border:1px solid #aab4be;border-radius:3px;font:inherit}
input:focus,select:focus,textarea:focus{outline:2px solid #2b6cb0}
[aria-invalid=true]{border-color:#c00;background:#fff5f5}
.err{color:#c00;font-size:12px;min-height:1em;display:block}.hint{color:#6b7785;font-size:12px}
.bar{display:flex;flex-wrap:wrap;gap:8px;align-items:center}button,.btn{padding:6px 16px;border:1px solid #2b6cb0;background:#2b6cb0;color:#fff;border-radius:3px;font:inherit;cursor:pointer;text-decoration:none}
.btn.light{background:#fff;color:#2b6cb0}.overdue{color:#c00;font-weight:bold}.muted{color:#6b7785}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #e3e7eb;padding:4px 6px;text-align:left;font-size:13px}
#summary{color:#c00}
header{display:flex;flex-wrap:wrap;align-items:baseline;column-gap:16px}header h1{flex-basis:100%}form.out{margin:0 0 0 auto}button.link{background:none;border:none;color:#fff;padding:0;text-decoration:underline;cursor:pointer;font:inherit}
`;

function page(title: string, s: SsoSession, body: HtmlEscapedString, script = false): HtmlEscapedString {
  return html`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>${title}</title><meta name="viewport" content="width=device-width">
<style>${raw(STYLE)}</style></head>
<body><header><h1>${title}</h1><p>医生：${s.doctorName ?? s.doctorId}${s.deptCode ? html`　科室：${s.deptCode}` : ''}　机构：${s.orgCode}　患者：${s.patientId}</p>
<form method="post" action="/sso/logout" class="out"><input type="hidden" name="csrf" value="${s.csrf}"><button type="submit" class="link">退出</button></form></header>
<main>${body}</main>${script ? html`<script src="/card.js" defer></script>` : ''}</body></html>` as HtmlEscapedString;
}

const KIND: Record<string, string> = EVIDENCE_KIND_NAME;

/** 剩余 1 小时 20 分 / 已超时 35 分: the reporting clock as the doctor reads it. */
export function clock(dueAt: string | null, now: Date, due: Date | null): string {
  if (!dueAt || !due) return '—';
  const ms = due.getTime() - now.getTime();
  const m = Math.floor(Math.abs(ms) / 60_000);
  const text = m >= 60 ? `${Math.floor(m / 60)} 小时 ${m % 60} 分` : `${m} 分`;
  return ms >= 0 ? `剩余 ${text}` : `已超时 ${text}`;
}

/** The popup: the patient's open cases, each with evidence, clock and its actions. */
export function renderPopup(
  s: SsoSession,
  reminders: Reminder[],
  dueOf: (r: Reminder) => Date | null,
  now: Date,
  msg?: string,
  reported: CaseCard[] = [],
  excluded: ExcludedCase[] = [],
): HtmlEscapedString {
  const rows = reminders.map(
    (r) => html`<section class="case" data-case="${r.caseId}">
<h2>${r.disease}${r.classA ? '（甲类/按甲类管理，2 小时内报告）' : '（24 小时内报告）'}　<span class="${r.overdue ? 'overdue' : 'muted'}">${clock(r.dueAt, now, dueOf(r))}</span></h2>
<p>状态：${r.stateName}　首次发现：${r.firstAt ?? '—'}</p>
<table><thead><tr><th>依据</th><th>内容</th><th>时间</th></tr></thead><tbody>
${r.evidence.map((e) => html`<tr><td>${KIND[e.kind] ?? e.kind}</td><td>${e.detail}</td><td>${e.at ?? '—'}</td></tr>`)}
</tbody></table>
<div class="bar" style="margin-top:8px">
<a class="btn" href="/card.html?case=${r.caseId}" accesskey="f">填写报告卡 (F)</a>
<form method="post" action="/popup/exclude" class="bar" style="margin:0">
<input type="hidden" name="csrf" value="${s.csrf}"><input type="hidden" name="case" value="${r.caseId}">
<input name="reason" required maxlength="200" placeholder="排除理由（如：复查阴性）" aria-label="排除理由" style="width:260px;max-width:100%">
<button type="submit" class="btn light">排除</button></form>
</div></section>`,
  );
  // The patient's cards already sent: their status at the platform, and the clock until accepted.
  const cards = reported.length
    ? html`<section id="reported"><h2>已报告的报告卡</h2><table><thead><tr><th>疾病</th><th>报告卡编号</th><th>上报状态</th><th>报告时限</th></tr></thead><tbody>
${reported.flatMap((c) =>
  c.cards.map(
    (k) =>
      html`<tr data-card="${k.cardId}"><td>${c.disease}</td><td>${k.cardId}</td><td class="card-status">${k.statusName}${k.reason ? html`：${k.reason}` : ''}${k.duplicateOf ? html`（重卡，以 ${k.duplicateOf} 为准）` : ''}${
        k.status === 'returned' ? html` <a class="btn" href="/card.html?correct=${encodeURIComponent(k.cardId)}">修改报告卡</a>` : ''
      }</td><td class="${c.overdue ? 'overdue' : 'muted'}">${c.open ? (c.overdue ? `已超时（应于 ${c.deadlineAt ?? '—'} 前）` : `应于 ${c.deadlineAt ?? '—'} 前被平台接收`) : '已完成'}</td></tr>`,
  ),
)}
</tbody></table></section>`
    : '';
  // Cases a doctor excluded: every doctor who sees the patient is a responsible reporter (责任报告人),
  // so another may still report one (docs/card-form.md "Two doctors, one case").
  const set = excluded.length
    ? html`<section id="excluded"><h2>已排除的病例</h2><p class="muted">以下病例已被医生排除，不再提醒。每位接诊医生均为责任报告人：如您判断仍应报告，可填写报告卡，提交后由公共卫生科室核查。</p>
${excluded.map(
  (r) => html`<div class="case excluded" data-case="${r.caseId}"><h3>${r.disease}${r.classA ? '（甲类/按甲类管理）' : ''}</h3>
<p>排除医生：${r.exclusion.doctor}　排除时间：${r.exclusion.at ?? '—'}　排除理由：<span class="reason">${r.exclusion.reason}</span></p>
<table><thead><tr><th>依据</th><th>内容</th><th>时间</th></tr></thead><tbody>
${r.evidence.map((e) => html`<tr><td>${KIND[e.kind] ?? e.kind}</td><td>${e.detail}</td><td>${e.at ?? '—'}</td></tr>`)}
</tbody></table>
<div class="bar" style="margin-top:8px"><a class="btn light" href="/card.html?case=${r.caseId}">仍要报告（填写报告卡）</a></div></div>`,
)}</section>`
    : '';
  const body = html`${msg ? html`<p id="msg">${msg}</p>` : ''}
${reminders.length ? rows : html`<section><p>该患者暂无待处理的传染病提醒。</p></section>`}
${set}
${cards}`;
  return page('传染病报告提醒', s, body as HtmlEscapedString);
}

const CARD_FIELDS: FieldMap = emrInfReport.fields;
const label = (name: string): string => CARD_FIELDS[name]?.label ?? name;

function control(f: FormField, value: string, issue: FieldIssue | undefined, autofocus: boolean): HtmlEscapedString {
  const id = `f-${f.name}`;
  const common = html`id="${id}" name="${f.name}" ${f.required ? raw('required aria-required="true"') : ''} aria-invalid="${issue ? 'true' : 'false'}" aria-describedby="${id}-err" ${autofocus ? raw('autofocus') : ''}`;
  let input: HtmlEscapedString;
  if (f.list) {
    const codes = lists[f.list].codes as ReadonlyArray<{ code: string; name: string }>;
    input =
      html`<select ${common}><option value="">请选择</option>${codes.map((c) => html`<option value="${c.code}" ${c.code === value ? raw('selected') : ''}>${c.code} ${c.name}</option>`)}</select>` as HtmlEscapedString;
  } else if (f.input === 'textarea') {
    input = html`<textarea ${common} rows="2">${value}</textarea>` as HtmlEscapedString;
  } else if (f.input === 'date') {
    input = html`<input type="date" ${common} value="${value.slice(0, 10)}">` as HtmlEscapedString;
  } else if (f.input === 'datetime') {
    input = html`<input type="datetime-local" step="60" ${common} value="${value.slice(0, 16).replace(' ', 'T')}">` as HtmlEscapedString;
  } else {
    input = html`<input type="text" ${common} value="${value}" maxlength="${CARD_FIELDS[f.name]?.max ?? 250}">` as HtmlEscapedString;
  }
  return html`<div><label for="${id}">${label(f.name)}${f.required ? html`<span class="req">*</span>` : ''}</label>${input}
<span class="err" id="${id}-err">${issue?.message ?? ''}</span>${f.hint ? html`<span class="hint">${f.hint}</span>` : ''}</div>` as HtmlEscapedString;
}

const FIELD_CODE = new RegExp(`\\b(${Object.keys(CARD_FIELDS).join('|')})\\b`, 'g');

/**
 * The checks' messages as the doctor reads them beside the form: a field named by the data set's code
 * (`不能早于 onsetDate`, schemas/rules.ts) is named by its label (不能早于 发病日期), and a date the
 * picker sent that is no time the data set takes (a year before 1850) says so instead of asking for
 * the exchange format (yyyy-MM-dd HH:mm:ss), which the doctor never types.
 */
export function forDoctor(issues: FieldIssue[]): FieldIssue[] {
  return issues.map((i) => {
    const f = FORM_FIELDS.find((x) => x.name === i.field);
    if (i.rule === 'datetime' && (f?.input === 'date' || f?.input === 'datetime'))
      return { ...i, message: `不是有效的${f.input === 'date' ? '日期' : '时间'}，请检查年份 (not a valid date)` };
    return { ...i, message: i.message.replace(FIELD_CODE, (code) => label(code)) };
  });
}

export interface CardFormView {
  session: SsoSession;
  caseId: string;
  /** The card's id, fixed when the form is first shown: a second submission updates the same card. */
  cardId: string;
  /** The server's tag of that id for this form (functions/web/card.ts cardTag): the id is this form's. */
  cardTag?: string;
  disease: string;
  dueText: string;
  overdue: boolean;
  values: Record<string, unknown>;
  issues: FieldIssue[];
  /** A card the platform returned, corrected under its own id (docs/card-form.md "Correcting a returned card"). */
  returned?: { reason: string | null; version: number };
  /** The case was excluded by a doctor: who, when, why (docs/card-form.md "Two doctors, one case"). */
  exclusion?: ExcludedCase['exclusion'];
}

/** The card form: pre-filled values, the errors of the last check, the case's clock. */
export function renderCardForm(v: CardFormView): HtmlEscapedString {
  const byField = new Map(v.issues.map((i) => [i.field, i] as const));
  const firstEmpty = FORM_FIELDS.find((f) => (f.required && !String(v.values[f.name] ?? '')) || byField.has(f.name))?.name;
  const other = v.issues.filter((i) => !FORM_FIELDS.some((f) => f.name === i.field));
  const body = html`<form method="post" action="/card" id="card" novalidate data-csrf="${v.session.csrf}" data-labels="${JSON.stringify(Object.fromEntries(Object.entries(CARD_FIELDS).map(([k, d]) => [k, d.label])))}">
<input type="hidden" name="csrf" value="${v.session.csrf}"><input type="hidden" name="case" value="${v.caseId}"><input type="hidden" name="cardId" value="${v.cardId}">${v.cardTag ? html`<input type="hidden" name="cardTag" value="${v.cardTag}">` : ''}${
    v.returned ? html`<input type="hidden" name="correct" value="${v.cardId}"><input type="hidden" name="version" value="${v.returned.version}">` : ''
  }
<section><h2>${v.disease}　<span class="${v.overdue ? 'overdue' : 'muted'}" id="clock">${v.dueText}</span></h2>${
    v.returned
      ? html`<p id="returned" class="overdue">修改退回的报告卡 ${v.cardId}：平台退回原因：${v.returned.reason ?? '（平台未说明）'}。请按原因修改后重新提交（报告卡编号不变）。</p>`
      : ''
  }${
    v.exclusion
      ? html`<p id="excluded-note">此病例已于 ${v.exclusion.at ?? '—'} 由 ${v.exclusion.doctor} 排除（理由：${v.exclusion.reason}）。您作为责任报告人仍可报告：提交本报告卡后，病例转由公共卫生科室核查。</p>`
      : ''
  }
<p id="summary" role="alert">${v.issues.length ? `还有 ${v.issues.length} 处需要修改` : ''}</p>
<p id="expired" class="overdue" role="alert" hidden></p>
<ul id="other">${other.map((i) => html`<li>${label(i.field)}：${i.message}</li>`)}</ul>
</section>
${SECTIONS.map(
  (s) =>
    html`<section><h2>${s.title}</h2><div class="grid">${s.fields.map((f) => control(f, String(v.values[f.name] ?? ''), byField.get(f.name), f.name === firstEmpty))}</div></section>`,
)}
<div class="bar"><button type="submit" accesskey="s">提交报告卡 (Alt+S)</button><a class="btn light" href="/popup.html">返回</a>
<span class="muted">Tab 逐项填写，Enter 提交；修改后自动校验。</span></div>
</form>`;
  return page('传染病报告卡', v.session, body as HtmlEscapedString, true);
}

/** After submission: what became of the card, and the clock until it is accepted. */
export function renderCardDone(s: SsoSession, o: { id: string; status: string; held: string[]; fate: string }): HtmlEscapedString {
  const body = html`<section><h2>报告卡已提交</h2>
<p>报告卡编号：<b id="card-id">${o.id}</b></p>
<p>状态：<span id="card-fate">${o.fate}</span>${o.held.length ? html`（暂缓上报：${o.held.join('，')}）` : ''}</p>
<p class="muted">报告卡已保存在前置软件中，并将按实时要求上报本前置已启用的上级平台（国家平台；配置了省级平台时也上报省级平台）。HIS 可通过 GET /hclient/emr/receive/emrInfReport/${o.id} 查询其上报结果（回传）。</p>
<p><a class="btn light" href="/popup.html">返回提醒</a></p></section>`;
  return page('传染病报告卡', s, body as HtmlEscapedString);
}

/** After 退出: nothing of the patient, and how to come back. */
export function renderSignedOut(): string {
  return `<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>已退出</title><style>${STYLE}</style></head><body><main><section><h2>已退出</h2><p>传染病报告提醒和控制台均已退出。需要时请从 HIS 中重新打开。</p></section></main></body></html>`;
}

/** The page shown when there is no session (expired, or opened without the HIS). */
export function renderNoSession(note = ''): string {
  const more = note ? `<p class="overdue" id="not-sent">${note}</p>` : '';
  return `<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>请从 HIS 打开</title><style>${STYLE}</style></head><body><main><section><h2>会话已过期或未登录</h2>${more}<p>请从 HIS 中重新打开传染病报告提醒（单点登录）。</p></section></main></body></html>`;
}

/**
 * The live check (served as /card.js): on each change, the form is posted as JSON to
 * /api/card/check and every field's message is shown beside it. Submission stays a plain form post,
 * so the form works without the script too.
 */
export const CARD_SCRIPT = `(() => {
  const form = document.getElementById('card');
  if (!form) return;
  let csrf = form.dataset.csrf;
  const labels = JSON.parse(form.dataset.labels || '{}');
  let timer = null, seq = 0;
  const show = (issues, warnings) => {
    for (const el of form.querySelectorAll('[name]')) {
      const err = document.getElementById('f-' + el.name + '-err');
      if (!err) continue;
      const i = issues.find((x) => x.field === el.name);
      err.textContent = i ? i.message : '';
      el.setAttribute('aria-invalid', i ? 'true' : 'false');
    }
    const other = document.getElementById('other');
    const item = (text, cls) => {
      const li = document.createElement('li');
      li.textContent = text;
      if (cls) li.className = cls;
      return li;
    };
    other.replaceChildren(
      ...issues.filter((i) => !form.querySelector('[name="' + i.field + '"]')).map((i) => item((labels[i.field] || i.field) + '：' + i.message)),
      ...warnings.filter((w) => w.rule === 'duplicateCard').map((w) => item('提示：' + w.message, 'dup')),
    );
    const s = document.getElementById('summary');
    s.textContent = issues.length ? '还有 ' + issues.length + ' 处需要修改' : '校验通过，可以提交';
    form.dataset.checked = String(issues.length);
  };
  // The session ended (SSO_SESSION_S) or another patient was opened from the HIS: the doctor is told at
  // once, and the typing stays on this page (docs/card-form.md "Session ending while typing").
  const expired = document.getElementById('expired');
  const EXPIRED = '会话已过期，报告卡尚未提交。请不要关闭本页：在 HIS 中重新打开本患者的传染病报告提醒（单点登录）后，回到本页点击“提交报告卡”，已填写的内容将一并提交。';
  const OTHER = '报告卡尚未提交：HIS 中最近打开的是另一位患者。请在 HIS 中重新打开本患者的传染病报告提醒后，回到本页点击“提交报告卡”。';
  const CLOSED = '报告卡未提交：此病例已处理（其他医生已提交报告卡，或其诊断依据已撤销），为避免重复报告，本页不再提交。请点击“返回”查看该患者的报告卡。';
  const BUSY = '前置软件或数据库暂时不可用，报告卡尚未提交；已填写的内容仍在本页，请勿关闭。请稍候片刻再点击“提交报告卡”。';
  const FIXED = '报告卡未提交：该报告卡已不需要修改（已由他人修改，或平台已接收）。请点击“返回”查看其状态。';
  // The session is asked about this page's case, or about the returned card it corrects.
  const about = () => form.elements['correct'] ? 'correct=' + encodeURIComponent(form.elements['correct'].value) : 'case=' + encodeURIComponent(form.elements['case'].value);
  // Who put the message up: the network's (a live check or the session check not reaching the front)
  // is taken down by the next check that answers; the session's (expired, another patient, the front
  // busy at a submit) only by the session answering again — a check answering a moment after a refused
  // submit must not hide why it was refused.
  const lost = (text, submitting, byCheck) => {
    expired.textContent = text;
    expired.dataset.by = byCheck ? 'check' : 'session';
    expired.hidden = false;
    if (submitting) expired.scrollIntoView({ block: 'center' });
    document.getElementById('summary').textContent = '';
    form.dataset.checked = 'expired';
  };
  // The session in force for this page's case: its CSRF token is taken (a new session has a new
  // one), or the reason it cannot submit this card is shown. True when the card can be submitted.
  const renew = async (submitting) => {
    let res;
    try {
      res = await fetch('/api/card/session?' + about(), { headers: { accept: 'application/json' }, cache: 'no-store' });
    } catch {
      lost('无法连接前置软件，报告卡尚未提交；已填写的内容仍在本页，请检查网络后再点击“提交报告卡”。', submitting, true);
      return false;
    }
    if (res.status === 401) { lost(EXPIRED, submitting); return false; }
    if (res.status === 409) {
      const why = await res.json().catch(() => ({}));
      lost(why.id === 'closed' ? CLOSED : why.id === 'not-returned' ? FIXED : OTHER, submitting);
      return false;
    }
    // Any other refusal (502, 503, 504, 429: the front or its database briefly unavailable): a post now
    // would leave this page for an error page, and everything typed with it. The page stays as typed.
    if (!res.ok) { lost(BUSY, submitting); return false; }
    const s = await res.json().catch(() => null);
    if (!s || typeof s.csrf !== 'string') { lost(BUSY, submitting); return false; }
    if (s.csrf !== csrf) {
      csrf = s.csrf;
      form.dataset.csrf = csrf;
      form.elements['csrf'].value = csrf;
    }
    expired.hidden = true;
    expired.textContent = '';
    return true;
  };
  const NET = '无法连接前置软件，暂时不能校验或提交；已填写的内容仍在本页，请勿关闭。网络恢复后修改任一项即重新校验。';
  const post = (body) => fetch('/api/card/check', { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': csrf }, body: JSON.stringify(body) });
  const check = async () => {
    const n = ++seq;
    const body = Object.fromEntries(new FormData(form));
    try {
      let res = await post(body);
      if (n !== seq) return;
      if (res.status === 401 || res.status === 403) {
        if (!(await renew()) || n !== seq) return;
        res = await post(body);
        if (n !== seq) return;
      }
      if (!res.ok) return;
      const answer = await res.json();
      if (n !== seq) return;
      if (expired.dataset.by === 'check') {
        expired.hidden = true;
        expired.textContent = '';
      }
      show(answer.issues, answer.warnings || []);
    } catch {
      if (n === seq) lost(NET, false, true);
    }
  };
  const later = () => { clearTimeout(timer); timer = setTimeout(check, 250); };
  form.addEventListener('input', later);
  form.addEventListener('change', later);
  // A plain form post with an ended session would leave this page for one that holds nothing typed:
  // the session is checked first, and the post goes with its current token.
  let sending = false;
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (sending) return;
    sending = true;
    try {
      if (await renew(true)) form.submit();
    } finally {
      sending = false;
    }
  });
  check();
})();
`;
