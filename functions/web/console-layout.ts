/**
 * The frame every signed-in console page shares (docs/console.md "Pages"): the header with the
 * navigation — only the pages the user's role may open —, who is signed in and the sign-out form
 * (with the session's CSRF token), and one style sheet inlined (no file to fetch: the CSP allows
 * nothing from elsewhere, and a hospital's old PC gets the page in one answer) — a page's own rules
 * appended to it. Printed, a page leaves out the navigation and the sign-out.
 */
import { html, raw } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import { ROLE_NAMES, type Role, type Session } from '../../shared/console/index.js';
import { formatLocal } from '../../shared/time/index.js';

/** The console's pages, and who may open each (the routes' guards say the same: handler.ts). */
export const NAV: ReadonlyArray<{ path: string; name: string; roles: readonly Role[] }> = [
  { path: '/status.html', name: '运行状态', roles: ['clinician', 'public_health', 'operator', 'admin'] },
  { path: '/dashboard.html', name: '仪表盘', roles: ['public_health', 'operator', 'admin'] },
  { path: '/cases.html', name: '病例', roles: ['public_health', 'admin'] },
  { path: '/cards.html', name: '报告卡', roles: ['public_health', 'admin'] },
  { path: '/signals.html', name: '预警信号', roles: ['public_health', 'admin'] },
  { path: '/quality.html', name: '数据质量', roles: ['public_health', 'operator', 'admin'] },
  { path: '/delivery.html', name: '数据上报', roles: ['public_health', 'operator', 'admin'] },
  { path: '/backups.html', name: '备份', roles: ['public_health', 'operator', 'admin'] },
  { path: '/settings.html', name: '设置', roles: ['public_health', 'operator', 'admin'] },
  { path: '/codes.html', name: '代码映射', roles: ['public_health', 'admin'] },
  { path: '/compare.html', name: '每日比对', roles: ['public_health', 'admin'] },
  { path: '/evaluation.html', name: '评估', roles: ['public_health', 'operator', 'admin'] },
  { path: '/acceptance.html', name: '验收自检', roles: ['public_health', 'operator', 'admin'] },
  { path: '/users.html', name: '用户管理', roles: ['admin'] },
  { path: '/audit.html', name: '审计日志', roles: ['admin'] },
];

/** Who may open the figure pages (dashboard, quality, delivery, settings). */
export const VIEWERS: readonly Role[] = ['public_health', 'operator', 'admin'];
/** Who may replay a dead letter or wake a platform (a change to what leaves the front). */
export const OPERATORS: readonly Role[] = ['operator', 'admin'];

export const num = new Intl.NumberFormat('zh-CN');
export const h = (x: unknown) => x as HtmlEscapedString;
export const NO_DATA = '暂无数据';

/**
 * The days the pages' date arithmetic carries (shared/time/day.ts): four digits of year from 1000 on,
 * and a range ends at the start of the day after its last — which must still be such a day, so the
 * last is 9999-12-30. A day of a form outside them is refused 400 naming the field (docs/console.md
 * "Audit", "The comparison page").
 */
export const FIRST_DAY = '1000-01-01';
export const LAST_DAY = '9999-12-30';
export const inDayRange = (day: string): boolean => day >= FIRST_DAY && day <= LAST_DAY;
export const DAY_RANGE_MESSAGE = `须在 ${FIRST_DAY} 至 ${LAST_DAY} 之间 (a day from ${FIRST_DAY} to ${LAST_DAY})`;

/** 3 分 20 秒, 2 小时 5 分, 1 天 3 小时; null → —. */
export function age(seconds: number | null): string {
  if (seconds === null) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} 秒`;
  if (s < 3600) return `${Math.floor(s / 60)} 分 ${s % 60} 秒`;
  if (s < 86_400) return `${Math.floor(s / 3600)} 小时 ${Math.floor((s % 3600) / 60)} 分`;
  return `${Math.floor(s / 86_400)} 天 ${Math.floor((s % 86_400) / 3600)} 小时`;
}

/** A share as a percentage with its counts, or 暂无数据 when nothing was counted. */
export function share(timely: number, of: number): HtmlEscapedString {
  if (of === 0) return h(html`<span class="muted nodata">${NO_DATA}</span>`);
  const pct = Math.floor((timely / of) * 1000) / 10;
  return h(html`<span class="${pct < 90 ? 'late' : ''}">${pct}%</span><span class="muted"> ${num.format(timely)}/${num.format(of)}</span>`);
}

export const when = (d: Date | null, tz: string) => (d ? formatLocal(d, tz).slice(0, 16) : '—');

const STYLE = `
body{margin:0;background:#f4f6f8;color:#1f2933;font:14px/1.6 "Noto Sans CJK SC","Source Han Sans SC","PingFang SC","Microsoft YaHei","WenQuanYi Micro Hei",sans-serif}
header{background:#12467a;color:#fff;padding:10px 24px;display:flex;flex-wrap:wrap;align-items:baseline;column-gap:24px;row-gap:4px}
h1{margin:0;font-size:20px;font-weight:600}
nav a{color:#cfe0f1;margin-right:14px;text-decoration:none;white-space:nowrap}nav a.on{color:#fff;font-weight:600;border-bottom:2px solid #fff}
.who{margin-left:auto;color:#cfe0f1;font-size:13px;white-space:nowrap}
main{max-width:1400px;margin:0 auto;padding:8px 24px 32px}
section{background:#fff;border:1px solid #d9e0e7;border-radius:6px;margin:14px 0;padding:10px 18px 14px;overflow-x:auto}
h2{font-size:16px;margin:4px 0 8px;border-left:4px solid #12467a;padding-left:8px}
h3{font-size:14px;margin:12px 0 4px}
.ok{color:#1b7f3b}.bad,.late{color:#b42318;font-weight:600}.muted{color:#6b7785;font-size:12px}
.notice{padding:8px 12px;border-radius:4px;margin:12px 0}.notice.msg{background:#e7f5ec;border:1px solid #9fd3b1}.notice.err{background:#fdecea;border:1px solid #f2b8b5}
table{border-collapse:collapse;width:100%}
.scroll{overflow-x:auto}
th,td{border-bottom:1px solid #e4e9ee;padding:4px 7px;text-align:left;font-weight:normal;vertical-align:top}
thead th{background:#eef2f6;font-weight:600;white-space:nowrap}
tfoot th,tfoot td{font-weight:600;border-bottom:none}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.chart{vertical-align:middle}
form.inline{display:inline;margin:0}
button{font:inherit;padding:1px 10px;border:1px solid #12467a;background:#12467a;color:#fff;border-radius:3px;cursor:pointer}
button.link{background:none;border:none;color:#cfe0f1;padding:0;text-decoration:underline}
dl{display:grid;grid-template-columns:10em 1fr;gap:3px 12px;margin:0}dt{color:#6b7785}dd{margin:0}
code{font-family:ui-monospace,Menlo,Consolas,monospace}
@media print{body{background:#fff}header{background:none;color:#000;padding:0}nav,.who{display:none}section{border:none}}
`;

/**
 * The query marker of a page's automatic reload (docs/console.md "Sign-in, sessions, lockout"): the
 * meta refresh asks for the page's own URL with `_refresh=auto` added, and a request carrying it does
 * not count as the person's activity — an unattended dashboard must not keep its session open past
 * CONSOLE_IDLE_MIN. A query marker, not a header: a meta refresh (the pages run no script) can send
 * nothing else, and Sec-Fetch-User is not sent over plain HTTP. A click on a link or a form of the
 * page leads to a URL without it, and so counts.
 */
export const AUTO_REFRESH = { param: '_refresh', value: 'auto' } as const;

export interface AutoRefresh {
  seconds: number;
  /** The page's path and query, with the marker. */
  url: string;
}

/** The reload of the page at `url` (path and query as asked) every `seconds`, marked as automatic. */
export function autoRefresh(url: string, seconds: number): AutoRefresh {
  const u = new URL(url, 'http://console.invalid');
  u.searchParams.set(AUTO_REFRESH.param, AUTO_REFRESH.value);
  return { seconds, url: u.pathname + u.search };
}

/** Whether a request is a page's automatic reload (a GET or HEAD with the marker), not the person's. */
export function isAutoRefresh(method: string, url: string): boolean {
  if (method !== 'GET' && method !== 'HEAD') return false;
  return new URL(url, 'http://console.invalid').searchParams.get(AUTO_REFRESH.param) === AUTO_REFRESH.value;
}

/** A path and query without the automatic reload's marker (where to return after signing in again). */
export function withoutAutoRefresh(url: string): string {
  const u = new URL(url, 'http://console.invalid');
  if (u.searchParams.has(AUTO_REFRESH.param)) u.searchParams.delete(AUTO_REFRESH.param);
  return u.pathname + u.search;
}

export interface Frame {
  title: string;
  /** The page's path, marked in the navigation. */
  path: string;
  session: Session;
  timeZone: string;
  now: Date;
  msg?: string | undefined;
  err?: string | undefined;
  /** The page's automatic reload (a meta refresh: no script), from `autoRefresh`; none when absent. */
  refresh?: AutoRefresh;
  /** The page's own style rules, after the shared sheet (so they may refine it). */
  style?: string;
  body: HtmlEscapedString | Promise<HtmlEscapedString>;
}

/** The navigation's links for a role, the current page marked: every signed-in page shows the same. */
export function navLinks(role: Role, path: string): HtmlEscapedString[] {
  return NAV.filter((n) => n.roles.includes(role)).map((n) =>
    h(html`<a href="${n.path}"${n.path === path ? raw(' class="on" aria-current="page"') : ''}>${n.name}</a>`),
  );
}

export function consolePage(f: Frame): HtmlEscapedString {
  const role = f.session.user.role;
  const links = navLinks(role, f.path);
  return h(html`<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${f.refresh ? html`<meta http-equiv="refresh" content="${f.refresh.seconds}; url=${f.refresh.url}">` : ''}
<title>${f.title} · 前置软件控制台</title>
<style>${raw(STYLE)}${f.style ? raw(f.style) : ''}</style>
</head>
<body>
<header>
<h1>${f.title}</h1><nav aria-label="控制台">${links}</nav>
<span class="who">${f.session.user.username}（${ROLE_NAMES[role]}）· ${formatLocal(f.now, f.timeZone).slice(0, 16)}
<form method="post" action="/logout" class="inline"><input type="hidden" name="_csrf" value="${f.session.csrf}"><button class="link">退出登录</button></form></span>
</header>
<main>
${f.msg ? html`<p class="notice msg" role="status" id="msg">${f.msg}</p>` : ''}
${f.err ? html`<p class="notice err" role="alert" id="err">${f.err}</p>` : ''}
${f.body}
</main>
</body>
</html>
`);
}

/** The orgs a signed-in user's figures cover: their binding, narrowed by ?org= to one of them. */
export function orgsOf(session: Session, asked: string | undefined): '*' | string[] {
  const bound = session.user.orgs;
  if (!asked) return bound;
  if (bound === '*' || bound.includes(asked)) return [asked];
  return bound;
}
