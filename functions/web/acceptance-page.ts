/**
 * 验收自检 — the acceptance self-test (docs/acceptance.md): one action runs the
 * checks a hospital must pass before going live (shared/console/acceptance.ts) and keeps a report
 * that prints on one sheet per check. Operators and admins run it; public health may read the reports.
 * The page is in the console's frame (printed without the navigation); the report is a document of
 * its own, laid out for print.
 */
import { Hono, type MiddlewareHandler } from 'hono';
import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import { z } from 'zod';
import { acceptanceReport, listAcceptance, runAcceptance, type AcceptanceReport, type AcceptanceRun } from '../../shared/console/acceptance.js';
import type { Session } from '../../shared/console/index.js';
import type { Db } from '../../shared/db/index.js';
import { AppError, validationError } from '../../shared/http/errors.js';
import { formatLocal } from '../../shared/time/index.js';
import { consolePage } from './console-layout.js';

/** The printable report's own sheet: a document, printed one check to a sheet (no console frame). */
const REPORT_STYLE = `body{font-family:"Microsoft YaHei","PingFang SC",sans-serif;margin:0 24px 40px;color:#222}
table{border-collapse:collapse;margin:8px 0 16px}th,td{border:1px solid #ccd;padding:4px 8px;text-align:left;font-size:14px;vertical-align:top}
th{background:#f0f3f6}.ok{color:#067647;font-weight:bold}.bad{color:#b42318;font-weight:bold}.muted{color:#667}
.check{margin:18px 0;page-break-inside:avoid}@media print{nav,form,.noprint{display:none}body{margin:0}}`;

const mark = (ok: boolean) => (ok ? html`<span class="ok">通过</span>` : html`<span class="bad">未通过</span>`);
/** The report's way back to the console (not printed). */
const nav = html`<nav class="noprint"><a href="/status.html">运行状态</a> · <a href="/codes.html">代码映射</a> · <a href="/acceptance.html">验收自检</a></nav>`;

/** The page's own rules, after the console's sheet: printed, the run form is left out too. */
const STYLE = '@media print{#run-form{display:none}}';

export function renderAcceptancePage(d: {
  session: Session;
  canRun: boolean;
  org: string;
  runs: AcceptanceRun[];
  timeZone: string;
  now: Date;
}): HtmlEscapedString {
  const body = html`<section><p>上线前医院须通过的检查：各数据集经数据端口（测试模式）、代码映射完整性、与平台握手、备份、时间同步。结果可打印存档。</p>
${
  d.canRun
    ? html`<form method="post" action="/acceptance/run" id="run-form"><input type="hidden" name="_csrf" value="${d.session.csrf}">
<label>机构代码 <input name="org" value="${d.org}" required pattern="[A-Za-z0-9]{1,50}"></label> <button id="run">开始自检</button></form>`
    : html`<p class="muted">运行自检需运维人员或管理员。</p>`
}</section>
<section><h2>历次自检</h2>
<table id="runs"><thead><tr><th>编号</th><th>时间</th><th>机构</th><th>执行人</th><th>结果</th></tr></thead><tbody>
${d.runs.map((r) => html`<tr><td><a href="/acceptance/${r.id}">#${r.id}</a></td><td>${formatLocal(r.startedAt, d.timeZone)}</td><td>${r.org}</td><td>${r.by}</td><td>${mark(r.ok)}</td></tr>`)}
</tbody></table></section>` as HtmlEscapedString;
  return consolePage({ title: '验收自检', path: '/acceptance.html', session: d.session, timeZone: d.timeZone, now: d.now, style: STYLE, body });
}

export function renderAcceptanceReport(id: string, r: AcceptanceReport, timeZone: string): HtmlEscapedString {
  return html`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>验收自检报告 #${id}</title><style>${REPORT_STYLE}</style></head>
<body>${nav}<h1>前置软件验收自检报告 #${id}</h1>
<table><tbody>
<tr><th>机构代码</th><td>${r.org}</td><th>前置软件版本</th><td>${r.version}</td></tr>
<tr><th>开始</th><td>${formatLocal(new Date(r.startedAt), timeZone)}</td><th>结束</th><td>${formatLocal(new Date(r.finishedAt), timeZone)}</td></tr>
<tr><th>执行人</th><td>${r.by}</td><th>总体结果</th><td id="overall">${mark(r.ok)}</td></tr>
</tbody></table>
${r.checks.map(
  (c, i) => html`<section class="check" id="check-${c.id}"><h2>${i + 1}. ${c.title}：${mark(c.ok)}</h2><p>${c.summary}</p>
${
  c.rows.length
    ? html`<table><thead><tr>${c.head.map((h) => html`<th>${h}</th>`)}</tr></thead><tbody>${c.rows.map((row) => html`<tr>${row.map((v) => html`<td>${v}</td>`)}</tr>`)}</tbody></table>`
    : ''
}</section>`,
)}
<p class="noprint"><a href="/acceptance.html">返回</a> · 打印本页即为自检报告（浏览器“打印”，可另存为 PDF）。</p>
</body></html>` as HtmlEscapedString;
}

export interface AcceptanceRoutes {
  db: () => Db;
  /** Who may read the reports, and who may run the self-test (functions/web/people.ts person()). */
  readers: MiddlewareHandler;
  runners: MiddlewareHandler;
  settings: () => { dataUrl: string; pushUrl: string; frontOrgCode: string | null; version: string; timeZone: string };
}

export function acceptanceRoutes(o: AcceptanceRoutes): Hono {
  const app = new Hono();
  app.get('/acceptance.html', o.readers, async (c) => {
    const s = c.get('person');
    const orgs = s.user.orgs;
    const org = o.settings().frontOrgCode ?? (orgs !== '*' && orgs.length ? orgs[0]! : '');
    c.header('cache-control', 'no-store');
    return c.html(
      renderAcceptancePage({
        session: s,
        canRun: s.user.role === 'operator' || s.user.role === 'admin',
        org,
        runs: await listAcceptance(o.db(), orgs),
        timeZone: o.settings().timeZone,
        now: new Date(),
      }),
    );
  });
  app.post('/acceptance/run', o.runners, async (c) => {
    const s = c.get('person');
    const parsed = z
      .object({
        org: z
          .string()
          .trim()
          .regex(/^[A-Za-z0-9]{1,50}$/, '机构代码：1–50 位字母或数字 (an org code)'),
      })
      .safeParse(await c.req.parseBody());
    if (!parsed.success) throw validationError(parsed.error, 'org: 机构代码不合法 (invalid org code)');
    const org = parsed.data.org;
    if (s.user.orgs !== '*' && !s.user.orgs.includes(org)) throw new AppError('FORBIDDEN', `无权对机构 ${org} 自检 (not one of your orgs)`);
    const st = o.settings();
    const { id } = await runAcceptance({
      db: o.db(),
      org,
      by: s.user.username,
      dataUrl: st.dataUrl,
      pushUrl: st.pushUrl,
      version: st.version,
      timeZone: st.timeZone,
    });
    return c.redirect(`/acceptance/${id}`, 303);
  });
  app.get('/acceptance/:id', o.readers, async (c) => {
    // Another org's run is not found, as a run that does not exist (docs/acceptance.md).
    const r = await acceptanceReport(o.db(), c.req.param('id'), c.get('person').user.orgs);
    if (!r) throw new AppError('NOT_FOUND', `没有这次自检：${c.req.param('id')}`);
    c.header('cache-control', 'no-store');
    return c.html(renderAcceptanceReport(c.req.param('id'), r, o.settings().timeZone));
  });
  return app;
}
