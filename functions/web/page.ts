/**
 * The status page of the web console (前置软件运行状态, /status.html, which the notice requires to
 * answer on port 8884), rendered on the server from the same FrontStatus the monitoring port serves.
 * hono/html escapes every interpolated value unless it is itself an html`` fragment, so a value
 * from the database can never become markup. No script, no external asset: the page must work on a
 * hospital LAN without internet, and the Content-Security-Policy set by the handler forbids both.
 */
import { html, raw } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { DestinationStatus, FrontStatus } from '../../shared/status/index.js';
import { formatLocal } from '../../shared/time/index.js';
import { ROLE_NAMES, type Session } from '../../shared/console/index.js';
import { autoRefresh, navLinks } from './console-layout.js';

export const REFRESH_SECONDS = 30;

/** Pending rows older than this are highlighted: 2 hours is the notice's deadline for lab results,
 *  the shortest deadline after the realtime ones, so such a row is late whatever its resource. */
const LATE_AFTER_S = 2 * 3600;

const KIND: Record<string, string> = { national: '国家平台', provincial: '省级平台' };
const TRIGGER: Record<string, string> = { cron: '定时任务', nudge: '接收后触发', manual: '手动' };
const DIALECT: Record<string, string> = { postgresql: 'PostgreSQL', opengauss: 'openGauss' };

const num = new Intl.NumberFormat('zh-CN');

/** 最早未发送时长 as a doctor reads it: "3 分 20 秒", "2 小时 5 分", "1 天 3 小时". */
export function formatAge(seconds: number | null): string {
  if (seconds === null) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} 秒`;
  if (s < 3600) return `${Math.floor(s / 60)} 分 ${s % 60} 秒`;
  if (s < 86_400) return `${Math.floor(s / 3600)} 小时 ${Math.floor((s % 3600) / 60)} 分`;
  return `${Math.floor(s / 86_400)} 天 ${Math.floor((s % 86_400) / 3600)} 小时`;
}

function local(iso: string | null, timeZone: string): string {
  return iso === null ? '—' : formatLocal(new Date(iso), timeZone);
}

function destinationLabel(d: DestinationStatus): HtmlEscapedString {
  const kind = d.kind === null ? '未配置' : (KIND[d.kind] ?? d.kind);
  const off = d.enabled ? '' : '，已停用';
  return html`${d.destination}<span class="muted">（${kind}${off}）</span>` as HtmlEscapedString;
}

/**
 * The release running (version and git commit, shared/status/version.ts) and, when the database's
 * schema is not this release's, the migrations to apply or the newer release's (docs/deploy.md "Upgrade").
 */
function versionDetail(s: FrontStatus): HtmlEscapedString {
  const schema = s.database.schema;
  const release = s.release ? html`<p data-k="release">发布版本：${s.release}</p>` : '';
  const behind =
    schema?.state === 'behind'
      ? html`<p data-k="schema" class="late">数据库结构落后于本版本，缺少迁移：${schema.missing.join('、')}；请运行 bin/cdc-migrate（docs/deploy.md「升级」）</p>`
      : schema?.state === 'ahead'
        ? html`<p data-k="schema" class="late">数据库已由更新的版本迁移（${schema.unknown.join('、')}）：请运行该版本，或恢复升级前的备份</p>`
        : '';
  return html`${release}${behind}` as HtmlEscapedString;
}

function databaseSection(s: FrontStatus, timeZone: string): HtmlEscapedString {
  const db = s.database;
  if (!db.reachable) {
    return html`<section id="database"><h2>数据库</h2>
<p class="state bad">数据库：不可用</p>
<p class="muted">前置软件暂时无法连接数据库；数据接收与上报将暂停，恢复后自动继续。请联系前置软件运维。</p>
</section>` as HtmlEscapedString;
  }
  return html`<section id="database"><h2>数据库</h2>
<p class="state ok">数据库：正常</p>
<dl>
<dt>类型</dt><dd>${db.dialect === null ? '—' : (DIALECT[db.dialect] ?? db.dialect)}</dd>
<dt>数据库时间</dt><dd>${local(db.serverTime, timeZone)}</dd>
</dl>
</section>` as HtmlEscapedString;
}

function uplinkSection(s: FrontStatus): HtmlEscapedString {
  const o = s.outbox;
  if (o === null) {
    return html`<section id="uplink"><h2>数据上报</h2><p class="muted">数据库不可用，暂无上报数据。</p></section>` as HtmlEscapedString;
  }
  const rows = o.byDestination.map(
    (d) => html`<tr>
<th scope="row">${destinationLabel(d)}</th>
<td class="n">${num.format(d.pending)}</td>
<td class="n${d.oldestPendingAgeS !== null && d.oldestPendingAgeS > LATE_AFTER_S ? ' late' : ''}">${formatAge(d.oldestPendingAgeS)}</td>
<td class="n">${num.format(d.sent)}</td>
<td class="n${d.dead > 0 ? ' late' : ''}">${num.format(d.dead)}</td>
<td class="n">${num.format(d.held)}${d.oldestHeldAgeS !== null ? html`（最早 ${formatAge(d.oldestHeldAgeS)}）` : ''}</td>
</tr>`,
  );
  const detail = o.lag.map(
    (l) =>
      html`<tr><td>${l.destination}</td><td>${l.resource}</td><td class="n">${num.format(l.pending)}</td><td class="n">${formatAge(l.oldestAgeS)}</td></tr>`,
  );
  return html`<section id="uplink"><h2>数据上报</h2>
<table>
<thead><tr><th scope="col">上报目标</th><th scope="col">待发送</th><th scope="col">最早未发送时长</th><th scope="col">已发送</th><th scope="col">已放弃</th><th scope="col" title="已保存，等待上级记录、代码映射或规则放行">暂缓上报</th></tr></thead>
<tbody>${rows.length ? rows : html`<tr><td colspan="6" class="muted">未配置上报目标</td></tr>`}</tbody>
<tfoot><tr><th scope="row">合计</th><td class="n">${num.format(o.totals.pending)}</td><td></td><td class="n">${num.format(o.totals.sent)}</td><td class="n">${num.format(o.totals.dead)}</td><td class="n">${num.format(o.totals.held)}</td></tr></tfoot>
</table>
${
  detail.length
    ? html`<h3>待发送明细（按数据类型）</h3>
<table class="detail">
<thead><tr><th scope="col">上报目标</th><th scope="col">数据类型</th><th scope="col">待发送</th><th scope="col">最早未发送时长</th></tr></thead>
<tbody>${detail}</tbody>
</table>`
    : html`<p class="muted">没有待发送的数据。</p>`
}
</section>` as HtmlEscapedString;
}

function lastPushSection(s: FrontStatus, timeZone: string): HtmlEscapedString {
  const r = s.lastPushRun;
  let body: HtmlEscapedString;
  if (!s.database.reachable) body = html`<p class="muted">数据库不可用，暂无记录。</p>` as HtmlEscapedString;
  else if (r === null) body = html`<p class="muted">尚未进行过上报。</p>` as HtmlEscapedString;
  else {
    body = html`<dl>
<dt>时间</dt><dd>${local(r.startedAt, timeZone)}</dd>
<dt>触发方式</dt><dd>${TRIGGER[r.trigger] ?? r.trigger}</dd>
<dt>已发送</dt><dd>${num.format(r.sent)} 条</dd>
<dt>失败</dt><dd class="${r.failed > 0 ? 'late' : ''}">${num.format(r.failed)} 条</dd>
<dt>备注</dt><dd>${r.note ?? '—'}</dd>
</dl>` as HtmlEscapedString;
  }
  return html`<section id="last-push"><h2>最近一次上报</h2>${body}</section>` as HtmlEscapedString;
}

const CHECK: Record<string, string> = { integrity: '完整性校验', listing: '归档目录校验', drill: '恢复演练', verify: '物理备份校验', freshness: '时效性检查' };
const ARCHIVE: Record<string, string> = { logical: '逻辑备份', physical: '物理备份', system: '系统数据备份', software: '软件备份' };

/** Backups (docs/backup.md): the last good archives, the one running with its progress, the last check. */
function backupSection(s: FrontStatus, timeZone: string): HtmlEscapedString {
  const b = s.backup;
  if (!b) return html`<section id="backup"><h2>备份</h2><p class="muted">数据库不可用，暂无记录。</p></section>` as HtmlEscapedString;
  const size = (n: number | null) => (n === null ? '—' : `${(n / 1048576).toFixed(1)} MB`);
  const r = b.running;
  return html`<section id="backup"><h2>备份</h2>
<p class="state ${b.fresh && b.failedChecks24h === 0 ? 'ok' : 'bad'}">备份：${!b.lastLogical ? '尚无成功的逻辑备份' : !b.fresh ? '逻辑备份已超过一天未更新' : b.failedChecks24h > 0 ? `近 24 小时有 ${b.failedChecks24h} 项校验失败` : '正常'}</p>
<dl>
<dt>最近逻辑备份</dt><dd>${b.lastLogical ? html`${local(b.lastLogical.finishedAt, timeZone)}（${size(b.lastLogical.sizeBytes)}）` : '—'}</dd>
<dt>最近物理备份</dt><dd>${b.lastPhysical ? html`${local(b.lastPhysical.finishedAt, timeZone)}（${size(b.lastPhysical.sizeBytes)}）` : '—'}</dd>
<dt>正在进行</dt><dd>${r ? html`${ARCHIVE[r.kind] ?? r.kind}：已写入 ${size(r.bytesDone)}，表 ${r.tablesDone}/${r.tablesTotal}，${size(r.rate)}/秒，预计剩余 ${r.etaS === null ? '—' : formatAge(r.etaS)}` : '无'}${
    b.stalled
      ? html`<br><span class="late">已停止：${ARCHIVE[b.stalled.kind] ?? b.stalled.kind}（归档 ${b.stalled.archiveId}）自 ${b.stalled.lastProgressAt ? local(b.stalled.lastProgressAt, timeZone) : '—'} 起无进展，备份进程已不在运行；下一次备份运行时记为失败</span>`
      : ''
  }</dd>
<dt>最近校验</dt><dd>${b.lastCheck ? html`${CHECK[b.lastCheck.check] ?? b.lastCheck.check}：<span class="${b.lastCheck.ok ? 'ok' : 'late'}">${b.lastCheck.ok ? '通过' : '失败'}</span>（${local(b.lastCheck.checkedAt, timeZone)}）<br><span class="muted">${b.lastCheck.message}</span>` : '—'}</dd>
</dl>
</section>` as HtmlEscapedString;
}

// A constant, inserted raw: escaping would turn the font names' quotes into entities, which CSS
// does not decode.
const STYLE = `
body{margin:0;background:#f4f6f8;color:#1f2933;font:15px/1.6 "Noto Sans CJK SC","Source Han Sans SC","PingFang SC","Microsoft YaHei","WenQuanYi Micro Hei",sans-serif}
header{background:#12467a;color:#fff;padding:16px 24px;display:flex;flex-wrap:wrap;align-items:baseline;column-gap:24px;row-gap:4px}
h1{margin:0;font-size:22px;font-weight:600}
header p{margin:4px 0 0;color:#cfe0f1;font-size:13px;flex-basis:100%}
nav a{color:#cfe0f1;margin-right:14px;text-decoration:none;white-space:nowrap}nav a.on{color:#fff;font-weight:600;border-bottom:2px solid #fff}
.who{margin-left:auto;color:#cfe0f1;font-size:13px;white-space:nowrap}
form.inline{display:inline;margin:0}button.link{font:inherit;background:none;border:none;color:#cfe0f1;padding:0;text-decoration:underline;cursor:pointer}
@media print{nav,.who{display:none}}
main{max-width:960px;margin:0 auto;padding:16px 24px 32px}
section{background:#fff;border:1px solid #d9e0e7;border-radius:6px;margin:16px 0;padding:12px 20px 16px;overflow-x:auto}
h2{font-size:17px;margin:4px 0 10px;border-left:4px solid #12467a;padding-left:8px}
h3{font-size:15px;margin:16px 0 6px}
.state{font-size:16px;font-weight:600;margin:4px 0 8px}
.ok{color:#1b7f3b}.bad{color:#b42318}.late{color:#b42318;font-weight:600}
.muted{color:#6b7785}
dl{display:grid;grid-template-columns:8em 1fr;gap:4px 12px;margin:0}
dt{color:#6b7785}dd{margin:0;min-width:0;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #e4e9ee;padding:6px 8px;text-align:left;font-weight:normal}
thead th{background:#eef2f6;font-weight:600}
tfoot th,tfoot td{font-weight:600;border-bottom:none}
td.n{text-align:right;font-variant-numeric:tabular-nums}
`;

const NETWORK: Record<string, string> = { none: '未激活', test: '测试网（试运行）', production: '正式网' };

/** The network the front is on (docs/activation.md): 未激活 until an authorization code is applied. */
function networkSection(s: FrontStatus, timeZone: string): HtmlEscapedString {
  const a = s.activation;
  return html`<section id="network"><h2>入网状态</h2>${
    a === null
      ? html`<p class="bad">数据库不可达，无法读取</p>`
      : html`<p data-k="network" class="${a.network === 'none' ? 'late' : ''}">${NETWORK[a.network]}</p>${
          a.network === 'none'
            ? html`<p>尚未导入国家平台签发的授权码文件（docs/activation.md）。</p>`
            : html`<dl><dt>机构</dt><dd>${a.orgCode}</dd><dt>前置编号</dt><dd>${a.frontId}</dd><dt>激活时间</dt><dd>${a.activatedAt ? local(a.activatedAt, timeZone) : '—'}</dd></dl>`
        }`
  }</section>` as HtmlEscapedString;
}

/** The whole page; times are shown in `timeZone` (the hospital's, config TZ_LOCAL). */
/**
 * What a signed-in person gets on the status page beside the public one: the console's navigation
 * (运行状态 marked) and who is signed in with the sign-out form (docs/console.md "Pages") — the page
 * is every role's first page after sign-in, and must not be a dead end.
 */
function signedIn(frame: Session, timeZone: string, now: Date): HtmlEscapedString {
  const role = frame.user.role;
  return html`<nav aria-label="控制台">${navLinks(role, '/status.html')}</nav>
<span class="who">${frame.user.username}（${ROLE_NAMES[role]}）· ${formatLocal(now, timeZone).slice(0, 16)}
<form method="post" action="/logout" class="inline"><input type="hidden" name="_csrf" value="${frame.csrf}"><button class="link">退出登录</button></form></span>` as HtmlEscapedString;
}

export function renderStatusPage(s: FrontStatus, timeZone: string, session: Session | null = null, now = new Date()): HtmlEscapedString {
  return html`<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="${REFRESH_SECONDS}; url=${autoRefresh('/status.html', REFRESH_SECONDS).url}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>前置软件运行状态</title>
<style>${raw(STYLE)}</style>
</head>
<body>
<header>
<h1>前置软件运行状态</h1>
${session ? signedIn(session, timeZone, now) : ''}
<p>更新时间：${local(s.checkedAt, timeZone)}（${timeZone}）· 每 ${REFRESH_SECONDS} 秒自动刷新</p>
</header>
<main>
${databaseSection(s, timeZone)}
${uplinkSection(s)}
${lastPushSection(s, timeZone)}
${s.backup === undefined ? '' : backupSection(s, timeZone)}
${networkSection(s, timeZone)}
<section id="version"><h2>软件版本</h2><p>${s.version}</p>${versionDetail(s)}</section>
</main>
</body>
</html>
` as HtmlEscapedString;
}
