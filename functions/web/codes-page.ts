/**
 * 代码映射: the code-mapping page of the web console (/codes.html), in the console's frame
 * (functions/web/console-layout.ts), server-rendered: no script, nothing loaded from elsewhere,
 * every value escaped by hono/html. It shows the completeness figure and its gaps per domain, the
 * unmapped queue with the dangerous gaps first and one-click suggestions, a form to add a mapping,
 * the mappings in force, and CSV import/export. Every form posts to /api/codes/…, which answers a
 * form with 303 back here (?msg= or ?err=).
 */
import { html, raw } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import { DOMAINS } from '../../shared/codes/registry.js';
import { EQUIVALENCES, EQUIVALENCE_ZH, POLICIES, POLICY_ZH } from '../../shared/codes/model.js';
import { GAP_ZH, type CompletenessReport, type MappingRow, type QueueItem } from '../../shared/codes/store.js';
import { formatLocal } from '../../shared/time/index.js';
import type { Session } from '../../shared/console/index.js';
import { consolePage } from './console-layout.js';

export interface CodesPageData {
  org: string | null;
  /** Orgs the caller may pick (null: any; it types one). */
  orgChoices: string[] | null;
  report: CompletenessReport | null;
  queue: QueueItem[];
  mappings: MappingRow[];
  msg?: string | undefined;
  err?: string | undefined;
  timeZone: string;
  now: Date;
  /** Who is signed in — the author of every change made here —, with the CSRF token every form that
   * posts carries (docs/console.md), and the role the navigation is for. */
  session: Session;
}

const num = new Intl.NumberFormat('zh-CN');
const LIST_STATUS: Record<string, string> = { none: '未加载', loaded: '已加载', partial: '不完整', inferred: '推定' };
const NAME_STATUS: Record<string, string> = { numbered: '', named: '（通知列名，无编号）', candidate: '（候选）', unknown: '（名称未知）' };
const domainName = new Map(DOMAINS.map((d) => [d.key, d.nameZh]));

const h = (x: unknown) => x as HtmlEscapedString;

function when(iso: string, tz: string): string {
  return formatLocal(new Date(iso), tz).slice(0, 16);
}

function orgPicker(d: CodesPageData): HtmlEscapedString {
  if (d.orgChoices && d.orgChoices.length === 1) return h(html``);
  const choices = d.orgChoices
    ? html`<select name="org" id="org-pick">${d.orgChoices.map((o) => html`<option value="${o}"${o === d.org ? raw(' selected') : ''}>${o}</option>`)}</select>`
    : html`<input name="org" id="org-pick" value="${d.org ?? ''}" placeholder="机构编码" required pattern="[A-Za-z0-9-]{1,50}">`;
  return h(html`<form method="get" action="/codes.html" class="inline"><label for="org-pick">机构</label> ${choices} <button>查看</button></form>`);
}

function completenessSection(r: CompletenessReport): HtmlEscapedString {
  const gaps = r.gaps.map(
    (g) =>
      html`<li data-domain="${g.domain}" data-kind="${g.kind}">${g.domainName}（${g.domain}）：${GAP_ZH[g.kind]}${g.codes ? html` ${num.format(g.codes)} 个本地代码` : ''}${g.recordsHeld ? html`，持有 ${num.format(g.recordsHeld)} 条记录` : ''}</li>`,
  );
  const rows = r.domains.map(
    (d) => html`<tr data-domain="${d.domain}" class="${d.gapFree ? '' : 'gap'}">
<td class="n">${d.slot}</td>
<th scope="row">${d.nameZh}<span class="muted">${NAME_STATUS[d.nameStatus] ?? ''} ${d.domain}</span></th>
<td>${POLICY_ZH[d.policy].split('（')[0]}</td>
<td>${LIST_STATUS[d.listStatus] ?? d.listStatus}${d.listVersion ? html`<span class="muted"> ${d.listVersion}</span>` : ''}</td>
<td class="n">${num.format(d.nationalCodes)}</td>
<td class="n">${num.format(d.localSeen)}</td>
<td class="n">${num.format(d.national)}</td>
<td class="n mapped">${num.format(d.mapped)}</td>
<td class="n unmapped${d.unmapped ? ' late' : ''}">${num.format(d.unmapped)}</td>
<td class="n">${num.format(d.unmatched)}</td>
<td class="n${d.recordsHeld ? ' late' : ''}">${num.format(d.recordsHeld)}</td>
<td class="state-cell">${d.gapFree ? html`<span class="ok">无缺漏</span>` : html`<span class="bad">有缺漏</span>`}</td>
</tr>`,
  );
  return h(html`<section id="completeness"><h2>映射完整性</h2>
<p class="figure"><strong id="gap-free">${r.gapFreeDomains} / ${r.totalDomains}</strong> 个值域无缺漏（${r.percent}%）
<span class="muted">· 实际数据中的本地代码已解析 ${num.format(r.resolvedCodes)} / ${num.format(r.seenCodes)} · 因代码持有的记录 ${num.format(r.recordsHeld)} 条 · 映射版本 ${r.mapVersion}</span></p>
<details${r.gaps.length <= 12 ? raw(' open') : ''}><summary>缺漏清单（${r.gaps.length} 项）</summary><ul id="gaps">${gaps}</ul></details>
<table id="domains">
<thead><tr><th scope="col">序号</th><th scope="col">值域</th><th scope="col">策略</th><th scope="col">国家值域</th><th scope="col">国家代码数</th><th scope="col">已见本地代码</th><th scope="col">国家代码直传</th><th scope="col">已映射</th><th scope="col">未映射</th><th scope="col">无对应</th><th scope="col">持有记录</th><th scope="col">状态</th></tr></thead>
<tbody>${rows}</tbody>
</table>
</section>`);
}

function queueSection(d: CodesPageData): HtmlEscapedString {
  const tz = d.timeZone;
  const rows = d.queue.map((q) => {
    const adopt = q.suggestions.map(
      (s) => html`<form method="post" action="/api/codes/mappings" class="inline suggestion">
<input type="hidden" name="org" value="${d.org}"><input type="hidden" name="domain" value="${q.domain}">
<input type="hidden" name="localCode" value="${q.localCode}"><input type="hidden" name="localName" value="${q.localName ?? ''}">
<input type="hidden" name="nationalCode" value="${s.code}"><input type="hidden" name="equivalence" value="equivalent">
<button title="相似度 ${s.score}">采用 ${s.code} ${s.name}</button></form>`,
    );
    return html`<tr class="${q.danger ? 'danger' : ''}" data-domain="${q.domain}" data-code="${q.localCode}">
<td>${q.domainName}<span class="muted"> ${q.domain}</span></td>
<td><code>${q.localCode}</code></td>
<td>${q.localName ?? '—'}</td>
<td class="n">${num.format(q.count)}</td>
<td>${when(q.firstSeen, tz)}<br><span class="muted">${when(q.lastSeen, tz)}</span></td>
<td class="n${q.recordsHeld ? ' late' : ''}">${num.format(q.recordsHeld)}</td>
<td>${q.danger ? html`<span class="flag">疑似法定传染病：${q.danger.disease}</span><span class="muted">（${q.danger.by === 'icd10' ? 'ICD-10 ' + q.danger.matched : '名称相似 ' + q.danger.score}）</span>` : q.status === 'unknown' ? '非国家代码' : q.reason === 'retiredTarget' ? '映射的国家代码已停用' : ''}</td>
<td>${adopt.length ? adopt : html`<span class="muted">无候选</span>`}</td>
</tr>`;
  });
  return h(html`<section id="queue"><h2>待映射的本地代码</h2>
<p class="muted">实际数据中出现、尚未映射的本地代码。疑似法定传染病的诊断代码排在最前（红色）：未映射时这些病例不会被任何预警触发。点击“采用”即按建议建立映射。</p>
<table>
<thead><tr><th scope="col">值域</th><th scope="col">本地代码</th><th scope="col">本地名称（样例）</th><th scope="col">出现次数</th><th scope="col">首次 / 最近</th><th scope="col">持有记录</th><th scope="col">提示</th><th scope="col">建议的国家代码</th></tr></thead>
<tbody>${rows.length ? rows : html`<tr><td colspan="8" class="muted">没有待映射的本地代码。</td></tr>`}</tbody>
</table>
</section>`);
}

function addSection(d: CodesPageData): HtmlEscapedString {
  return h(html`<section id="add"><h2>新增或修改映射</h2>
<form method="post" action="/api/codes/mappings" id="add-form" class="grid">
<input type="hidden" name="org" value="${d.org}">
<label for="f-domain">值域</label><select id="f-domain" name="domain" required>${DOMAINS.map((x) => html`<option value="${x.key}">${x.slot} ${x.nameZh}（${x.key}）</option>`)}</select>
<label for="f-local">本地代码</label><input id="f-local" name="localCode" required maxlength="100">
<label for="f-local-name">本地名称</label><input id="f-local-name" name="localName" maxlength="250">
<label for="f-national">国家代码</label><input id="f-national" name="nationalCode" maxlength="50" placeholder="“无对应”时留空">
<label for="f-eq">对应关系</label><select id="f-eq" name="equivalence">${EQUIVALENCES.map((e) => html`<option value="${e}"${e === 'equivalent' ? raw(' selected') : ''}>${EQUIVALENCE_ZH[e]}（${e}）</option>`)}</select>
<label for="f-note">备注</label><input id="f-note" name="note" maxlength="500">
<label for="f-by">操作人</label><input id="f-by" name="madeBy" maxlength="100" value="${d.session.user.username}" readonly>
<span></span><button type="submit">保存映射</button>
</form>
</section>`);
}

function mappingsSection(d: CodesPageData): HtmlEscapedString {
  const rows = d.mappings.map(
    (m) => html`<tr data-domain="${m.domain}" data-code="${m.localCode}">
<td>${domainName.get(m.domain) ?? m.domain}</td><td><code>${m.localCode}</code></td><td>${m.localName ?? '—'}</td>
<td><code>${m.nationalCode ?? '—'}</code> ${m.nationalName ?? ''}</td><td>${EQUIVALENCE_ZH[m.equivalence]}</td>
<td class="n">${m.version}</td><td>${m.madeBy}<br><span class="muted">${when(m.madeAt, d.timeZone)}</span></td>
<td><form method="post" action="/api/codes/mappings/${m.id}/delete" class="inline"><button class="link">删除</button></form></td>
</tr>`,
  );
  return h(html`<section id="mappings"><h2>现有映射（${num.format(d.mappings.length)}）</h2>
<table>
<thead><tr><th scope="col">值域</th><th scope="col">本地代码</th><th scope="col">本地名称</th><th scope="col">国家代码</th><th scope="col">对应关系</th><th scope="col">版本</th><th scope="col">操作人 / 时间</th><th scope="col"></th></tr></thead>
<tbody>${rows.length ? rows : html`<tr><td colspan="8" class="muted">尚无映射。</td></tr>`}</tbody>
</table>
</section>`);
}

function ioSection(d: CodesPageData): HtmlEscapedString {
  const org = encodeURIComponent(d.org ?? '');
  return h(html`<section id="io"><h2>导入与导出（CSV，可用 Excel 打开）</h2>
<p><a href="/api/codes/mappings/export.csv?org=${org}" id="export">导出全部映射</a> ·
<a href="/api/codes/mappings/export.csv?org=${org}&amp;unmapped=1" id="export-template">导出映射及待映射代码（填写国家代码后导入）</a></p>
<form method="post" action="/api/codes/mappings/import" enctype="multipart/form-data" class="inline">
<input type="hidden" name="org" value="${d.org}">
<label for="f-file">导入 CSV</label> <input type="file" id="f-file" name="file" accept=".csv,.txt,text/csv" required>
<label for="f-import-by">操作人</label> <input id="f-import-by" name="madeBy" maxlength="100" value="${d.session.user.username}" readonly>
<button type="submit">导入</button>
</form>
<p class="muted">UTF-8 或 GBK（Excel“CSV（逗号分隔）”）均可。列：值域(domain)、本地代码(local_code)、本地名称(local_name)、国家代码(national_code)、对应关系(equivalence)、备注(note)。有错误时整份文件不导入，并列出行号。</p>
</section>`);
}

function policySection(d: CodesPageData): HtmlEscapedString {
  return h(html`<section id="policy"><h2>映射策略</h2>
<form method="post" action="/api/codes/policies" class="inline">
<input type="hidden" name="org" value="${d.org}">
<label for="p-domain">值域</label> <select id="p-domain" name="domain">${DOMAINS.map((x) => html`<option value="${x.key}">${x.slot} ${x.nameZh}</option>`)}</select>
<label for="p-policy">策略</label> <select id="p-policy" name="policy">${POLICIES.map((p) => html`<option value="${p}"${p === 'auto' ? raw(' selected') : ''}>${POLICY_ZH[p]}</option>`)}</select>
<button type="submit">设置</button>
</form>
</section>`);
}

/** The page's own rules, after the console's sheet (functions/web/console-layout.ts). */
const STYLE = `
.figure{font-size:16px}.figure strong{font-size:24px;color:#12467a}
.state-cell{white-space:nowrap}
tr.gap th{color:#7a2e0e}
tr.danger{background:#fdecea}
.flag{color:#b42318;font-weight:600}
main form.inline{display:inline-block;margin:2px 4px 2px 0}
form.grid{display:grid;grid-template-columns:8em minmax(12em,28em);gap:6px 12px;align-items:center}
.suggestion button{background:#fff;color:#12467a}
main button.link{color:#b42318;text-decoration:none}
input,select{font:inherit;padding:2px 4px}
`;

export function renderCodesPage(d: CodesPageData): HtmlEscapedString {
  // Every form of the page that posts carries the session's CSRF token (base64url: nothing to
  // escape); the frame's sign-out form has its own.
  const token = d.session.csrf.replace(/[^A-Za-z0-9_-]/g, '');
  const body = String(bodyOf(d)).replace(/(<form method="post"[^>]*>)/g, `$1<input type="hidden" name="_csrf" value="${token}">`);
  return consolePage({
    title: '代码映射',
    path: '/codes.html',
    session: d.session,
    timeZone: d.timeZone,
    now: d.now,
    msg: d.msg,
    err: d.err,
    style: STYLE,
    body: raw(body) as HtmlEscapedString,
  });
}

function bodyOf(d: CodesPageData): HtmlEscapedString {
  return h(html`<p class="muted">${d.org ? html`机构 ${d.org} · ` : ''}40 种值域代码一一映射到国家值域，无缺漏方可上线</p>
${orgPicker(d)}
${
  d.org && d.report
    ? html`${completenessSection(d.report)}${queueSection(d)}${addSection(d)}${mappingsSection(d)}${ioSection(d)}${policySection(d)}`
    : html`<section><p>请选择机构。</p></section>`
}
`);
}
