/**
 * 每日比对 — the direct-report system's card export against the front's cards (/compare.html;
 * docs/console.md "The comparison page"), for public health and the admin. Server-rendered, no
 * script, nothing from elsewhere: a multipart form (with the session's CSRF token) uploads the
 * export, the answer is the comparison itself — counts, every difference with its fields and causes,
 * the day-close figures of the days — with personal data masked. Only the summary is kept
 * (compare_run) and the upload audited; past comparisons are listed under the form.
 */
import { Hono, type MiddlewareHandler } from 'hono';
import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import { z } from 'zod';
import { audit, type Session } from '../../shared/console/index.js';
import {
  CAUSE_NAMES,
  COMPARE_MAX_BYTES,
  compareExport,
  EXPORT_COLUMNS,
  listComparisons,
  parseExport,
  REQUIRED_COLUMNS,
  saveComparison,
  type Cause,
  type Comparison,
  type CompareRun,
  type Difference,
} from '../../shared/console/compare.js';
import { requestSource } from '../../shared/http/caller.js';
import { AppError } from '../../shared/http/errors.js';
import { formatLocal } from '../../shared/time/index.js';
import { consolePage, DAY_RANGE_MESSAGE, FIRST_DAY, inDayRange, LAST_DAY } from './console-layout.js';
import { person, type PeopleOptions } from './people.js';

/** The page's own rules, after the console's sheet (functions/web/console-layout.ts). */
const STYLE = `
.counts{display:flex;flex-wrap:wrap;gap:12px}.counts div{border:1px solid #d9e0e7;border-radius:4px;padding:6px 14px;min-width:7em}
.counts strong{display:block;font-size:22px;color:#12467a}
.cause{display:inline-block;background:#fff4e5;border:1px solid #f3c27a;border-radius:3px;padding:0 6px;margin:1px 4px 1px 0;font-size:12px}
ul.fields{margin:0;padding-left:18px}
form.grid{display:grid;grid-template-columns:9em minmax(12em,28em);gap:6px 12px;align-items:center}input,select{font:inherit;padding:2px 4px}
`;

const KIND_NAMES: Record<Difference['kind'], string> = { matched: '两边都有，内容不同', export_only: '仅直报系统有', front_only: '仅前置有' };
const num = new Intl.NumberFormat('zh-CN');
const h = (x: unknown) => x as HtmlEscapedString;

export interface ComparePageData {
  /** Who is signed in: the navigation's role, and the CSRF token the upload form carries. */
  session: Session;
  now: Date;
  /** The orgs the user may pick (null: any, typed). */
  orgChoices: string[] | null;
  result?: Comparison | undefined;
  fileName?: string | undefined;
  err?: string | undefined;
  runs: CompareRun[];
  timeZone: string;
}

function uploadForm(d: ComparePageData): HtmlEscapedString {
  const org = d.orgChoices
    ? d.orgChoices.length > 1
      ? html`<select id="c-org" name="org"><option value="">全部（${d.orgChoices.join('、')}）</option>${d.orgChoices.map((o) => html`<option value="${o}">${o}</option>`)}</select>`
      : html`<input id="c-org" name="org" value="${d.orgChoices[0] ?? ''}" readonly>`
    : html`<input id="c-org" name="org" placeholder="留空：全部机构" pattern="[A-Za-z0-9-]{1,50}">`;
  return h(html`<section id="upload"><h2>上传直报系统导出的报告卡</h2>
<form method="post" action="/compare.html" enctype="multipart/form-data" class="grid">
<input type="hidden" name="_csrf" value="${d.session.csrf}">
<label for="c-file">导出文件（CSV）</label><input type="file" id="c-file" name="file" accept=".csv,.txt,text/csv" required>
<label for="c-org">机构</label>${org}
<label for="c-from">报告日期 自</label><input type="date" id="c-from" name="from" min="${FIRST_DAY}" max="${LAST_DAY}">
<label for="c-to">至</label><input type="date" id="c-to" name="to" min="${FIRST_DAY}" max="${LAST_DAY}">
<span></span><button type="submit">比对</button>
</form>
<p class="muted">UTF-8 或 GBK 编码均可（直报系统导出、Excel“CSV（逗号分隔）”），不超过 ${COMPARE_MAX_BYTES / 1024 / 1024} MB。日期留空时按文件中的报告日期范围比对。
必需的列：${REQUIRED_COLUMNS.map((k) => EXPORT_COLUMNS[k].join('/')).join('、')}；可选：${(Object.keys(EXPORT_COLUMNS) as Array<keyof typeof EXPORT_COLUMNS>)
    .filter((k) => !(REQUIRED_COLUMNS as readonly string[]).includes(k))
    .map((k) => EXPORT_COLUMNS[k].join('/'))
    .join('、')}。文件本身不保存，只保存比对结果的汇总。</p>
</section>`);
}

function causeTags(d: Difference): HtmlEscapedString {
  return h(
    html`${d.causes.map(
      (c) => html`<div><span class="cause" data-cause="${c.cause}">${CAUSE_NAMES[c.cause]}</span><span class="muted">${c.detail}</span></div>`,
    )}`,
  );
}

function resultSection(r: Comparison, fileName: string | undefined): HtmlEscapedString {
  const c = r.counts;
  const box = (id: string, name: string, n: number) => html`<div id="${id}"><strong>${num.format(n)}</strong>${name}</div>`;
  const causes = (Object.entries(r.causes) as Array<[Cause, number]>).map(
    ([k, n]) => html`<li data-cause="${k}">${CAUSE_NAMES[k]}：<span class="n">${num.format(n)}</span></li>`,
  );
  const rows = r.differences.map(
    (d) => html`<tr data-kind="${d.kind}" data-line="${d.line ?? ''}" data-card="${d.card?.id ?? ''}">
<td>${KIND_NAMES[d.kind]}${d.matchedBy ? html`<br><span class="muted">${d.matchedBy === 'card' ? '按卡片编号匹配' : '按证件号+病种+诊断日期匹配'}</span>` : ''}</td>
<td>${d.line ?? '—'}</td><td>${d.card ? html`<code>${d.card.id}</code><br><span class="muted">${d.card.org}</span>` : '—'}</td>
<td>${d.patient}<br><span class="muted">${d.idCard}</span></td><td>${d.disease}</td>
<td>${d.fields.length ? html`<ul class="fields">${d.fields.map((f) => html`<li data-field="${f.field}">${f.field}：直报 ${f.exported || '（空）'} ／ 前置 ${f.front || '（空）'}</li>`)}</ul>` : '—'}</td>
<td>${causeTags(d)}</td></tr>`,
  );
  const day = (n: number | null) => (n === null ? html`<span class="muted">暂无数据</span>` : num.format(n));
  return h(html`<section id="result"><h2>比对结果</h2>
<p>${fileName ? html`文件 ${fileName} · ` : ''}编码 ${r.encoding.toUpperCase()} · 报告日期 ${r.from} 至 ${r.to} · 机构 ${r.orgs === '*' ? '全部' : r.orgs.join('、')}</p>
<div class="counts">${box('n-export', '直报导出', c.exportRows)}${box('n-front', '前置报告卡', c.frontCards)}${box('n-matched', '已匹配', c.matched)}${box('n-identical', '完全一致', c.identical)}${box('n-differing', '匹配但不一致', c.differing)}${box('n-export-only', '仅直报有', c.exportOnly)}${box('n-front-only', '仅前置有', c.frontOnly)}</div>
${causes.length ? html`<h3>差异原因</h3><ul id="causes">${causes}</ul>` : html`<p id="no-diff">两边一致，没有差异。</p>`}
${
  rows.length
    ? html`<table id="diffs"><thead><tr><th>差异</th><th>导出行</th><th>前置卡片</th><th>患者（已脱敏）</th><th>疾病</th><th>不一致的字段</th><th>可能原因</th></tr></thead><tbody>${rows}</tbody></table>`
    : ''
}
</section>
<section id="days"><h2>日终数据</h2>
<table><thead><tr><th>日期</th><th>门诊人次</th><th>急诊人次</th><th>传染病入院</th><th>前置报告卡</th><th>日终</th></tr></thead><tbody>
${r.days.map((x) => html`<tr data-day="${x.day}"><td>${x.day}</td><td class="n">${day(x.outpatientVisits)}</td><td class="n">${day(x.emergencyVisits)}</td><td class="n">${day(x.infectiousAdmissions)}</td><td class="n">${day(x.reportCards)}</td><td>${x.kind ?? html`<span class="muted">未日终</span>`}</td></tr>`)}
</tbody></table>
<p class="muted">来自日终处理（T+1 优先，否则 T+0）；某日尚未日终时显示“暂无数据”。</p></section>`);
}

function runsSection(runs: CompareRun[], tz: string): HtmlEscapedString {
  return h(html`<section id="runs"><h2>历次比对</h2>
<table><thead><tr><th>上传时间</th><th>上传人</th><th>报告日期</th><th>机构</th><th>直报</th><th>前置</th><th>匹配</th><th>不一致</th><th>仅直报</th><th>仅前置</th><th>原因</th></tr></thead><tbody>
${
  runs.length
    ? runs.map(
        (
          r,
        ) => html`<tr data-run="${r.compare_id}"><td>${formatLocal(r.uploaded_at, tz).slice(0, 16)}</td><td>${r.uploaded_by}</td><td>${r.period_from}${r.period_to !== r.period_from ? html` 至 ${r.period_to}` : ''}</td>
<td>${r.orgs === '*' ? '全部' : r.orgs}</td><td class="n">${r.export_rows}</td><td class="n">${r.front_cards}</td><td class="n">${r.matched}</td><td class="n">${r.differing}</td><td class="n">${r.export_only}</td><td class="n">${r.front_only}</td>
<td>${(Object.entries(r.causes) as Array<[Cause, number]>).map(([k, n]) => html`${CAUSE_NAMES[k]} ${n}；`)}</td></tr>`,
      )
    : html`<tr><td colspan="11" class="muted">尚无比对。</td></tr>`
}
</tbody></table></section>`);
}

export function renderComparePage(d: ComparePageData): HtmlEscapedString {
  return consolePage({
    title: '每日比对',
    path: '/compare.html',
    session: d.session,
    timeZone: d.timeZone,
    now: d.now,
    err: d.err,
    style: STYLE,
    body: h(html`<p class="muted">直报系统（中国疾病预防控制信息系统）导出的报告卡与前置软件的报告卡逐张比对</p>
${d.result ? resultSection(d.result, d.fileName) : ''}
${uploadForm(d)}
${runsSection(d.runs, d.timeZone)}`),
  });
}

/** The org field of the form: one of the user's orgs, or none (all of them). */
const OrgField = z.union([z.literal(''), z.string().regex(/^[A-Za-z0-9-]{1,50}$/, '机构编码不合法 (org: letters, digits, -)')]).optional();
const DayField = z
  .union([
    z.literal(''),
    z
      .string()
      .regex(/^\d{4}-\d{2}-\d{2}$/, '日期格式应为 yyyy-MM-dd')
      // A well-formed day the comparison's arithmetic cannot carry (9999-12-31): refused, not a 500.
      .refine((d) => !/^\d{4}-\d{2}-\d{2}$/.test(d) || inDayRange(d), DAY_RANGE_MESSAGE),
  ])
  .optional();

/** Who may compare: public health and the admin (docs/console.md "Users and roles"). */
export const COMPARE_ROLES = ['public_health', 'admin'] as const;

/**
 * GET /compare.html (the form and past comparisons) and POST /compare.html (an upload, answered with
 * its comparison), for a signed-in person of COMPARE_ROLES.
 */
export function compareRoutes(people: PeopleOptions, settings: () => { front: { timeZone: string } }): Hono {
  const o = { db: people.db, person: person(people, COMPARE_ROLES), timeZone: () => settings().front.timeZone, trustedProxies: people.trustedProxies };
  const app = new Hono();
  const page = async (s: Session, extra: Partial<ComparePageData>) =>
    renderComparePage({
      session: s,
      now: new Date(),
      orgChoices: s.user.orgs === '*' ? null : s.user.orgs,
      runs: await listComparisons(o.db(), s.user.orgs),
      timeZone: o.timeZone(),
      ...extra,
    });
  app.get('/compare.html', o.person, async (c) => {
    c.header('cache-control', 'no-store');
    return c.html(await page(c.get('person'), {}));
  });
  // A body well above the cap is refused before it is read (and before the session's form is parsed).
  const cap: MiddlewareHandler = async (c, next) => {
    const len = Number(c.req.header('content-length') ?? '0');
    if (len > COMPARE_MAX_BYTES + 64 * 1024) {
      return c.text(`413 文件超过 ${COMPARE_MAX_BYTES / 1024 / 1024} MB 上限，未比对 (file too large)`, 413);
    }
    await next();
  };
  app.post('/compare.html', cap, o.person, async (c) => {
    const s = c.get('person');
    c.header('cache-control', 'no-store');
    const body = await c.req.parseBody();
    const file = body.file;
    const fileName = file instanceof File ? file.name.slice(0, 200) : undefined;
    try {
      if (!(file instanceof File) || file.size === 0) throw new AppError('BAD_REQUEST', '请选择直报系统导出的 CSV 文件 (file: required)');
      if (file.size > COMPARE_MAX_BYTES)
        throw new AppError('PAYLOAD_TOO_LARGE', `文件超过 ${COMPARE_MAX_BYTES / 1024 / 1024} MB 上限，未比对 (file too large)`);
      const f = z.object({ org: OrgField, from: DayField, to: DayField }).safeParse({ org: body.org, from: body.from, to: body.to });
      if (!f.success) throw new AppError('BAD_REQUEST', f.error.issues.map((i) => `${String(i.path[0])}：${i.message}`).join('；'));
      const mine = s.user.orgs;
      const org = f.data.org || null;
      if (org && mine !== '*' && !mine.includes(org)) throw new AppError('FORBIDDEN', `无权比对机构 ${org} 的数据 (org not bound to the user)`);
      const orgs = org ? [org] : mine;
      const parsed = parseExport(new Uint8Array(await file.arrayBuffer()), o.timeZone());
      const result = await compareExport(o.db(), parsed, { orgs, timeZone: o.timeZone(), from: f.data.from || undefined, to: f.data.to || undefined });
      const id = await saveComparison(o.db(), result, s.user.username, fileName ?? null);
      const k = result.counts;
      await audit(
        o.db(),
        'compare-upload',
        s.user.username,
        `#${id} ${result.from}..${result.to} orgs ${orgs === '*' ? '*' : orgs.join(',')}: export ${k.exportRows}, front ${k.frontCards}, matched ${k.matched}, differing ${k.differing}, export-only ${k.exportOnly}, front-only ${k.frontOnly}`,
        requestSource(c, o.trustedProxies()).address,
      );
      return c.html(await page(s, { result, fileName }));
    } catch (err) {
      if (!(err instanceof AppError) || err.status >= 500) throw err;
      return c.html(await page(s, { err: err.desc, fileName }), err.status as 400 | 403 | 413);
    }
  });
  return app;
}
