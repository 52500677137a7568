/**
 * 用户管理 — the console's people, for the admin (docs/console.md "The users page"): every user with
 * role, orgs and state, an unlock button for a locked account (a change: the session's CSRF token,
 * the admin as its author in the audit), and the latest audit rows. Adding users, roles and
 * passwords stay with bin/cdc-users, where no password crosses a form.
 */
import { Hono } from 'hono';
import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import { z } from 'zod';
import { listUsers, recentAudit, ROLE_NAMES, unlock, Username, type ConsoleUser, type Session } from '../../shared/console/index.js';
import type { Db } from '../../shared/db/index.js';
import { validationError } from '../../shared/http/errors.js';
import { formatLocal } from '../../shared/time/index.js';
import { consolePage } from './console-layout.js';
import { flash, flashOf } from '../../shared/http/flash.js';

/** The page's own rules, after the console's sheet (functions/web/console-layout.ts). */
const STYLE = '.locked{color:#b42318}';

type AuditRow = Awaited<ReturnType<typeof recentAudit>>[number];

/** The audit's actions (console_audit.action, docs/console.md "Audit") in Chinese; the code kept beside. */
export const ACTIONS: Record<string, string> = {
  signin: '登录',
  'signin-failed': '登录失败',
  'signin-refused': '拒绝登录',
  lockout: '账号锁定',
  signout: '退出登录',
  'user-created': '新增用户',
  'role-changed': '修改角色',
  'password-reset': '重置密码',
  unlocked: '解锁',
  disabled: '停用',
  enabled: '启用',
  'compare-upload': '上传比对',
  'view-case': '查看病例',
  'view-card': '查看报告卡',
  reveal: '显示个人信息',
  'verify-case': '核查病例',
  'assign-case': '指派核查人',
  'view-popup': '查看报告提醒（HIS）',
  'view-card-form': '打开报告卡表单（HIS）',
  'acceptance-run': '验收自检',
  activation: '激活',
  replay: '重发死信',
  'retry-now': '立即重试',
  'mapping-create': '新增代码映射',
  'mapping-update': '修改代码映射',
  'mapping-delete': '删除代码映射',
  'bundle-apply': '应用配置包',
  'bundle-rollback': '回退配置包',
  'bundle-refused': '拒绝配置包（签名无效）',
  'config-token-refused': '配置令牌无效',
};

function state(u: ConsoleUser, now: Date, tz: string): HtmlEscapedString {
  if (u.disabled) return html`<span class="muted">已停用</span>` as HtmlEscapedString;
  if (u.lockedUntil && u.lockedUntil > now) return html`<span class="locked">锁定至 ${formatLocal(u.lockedUntil, tz)}</span>` as HtmlEscapedString;
  return html`正常` as HtmlEscapedString;
}

export function renderUsersPage(d: {
  session: Session;
  users: ConsoleUser[];
  audit: AuditRow[];
  msg?: string | undefined;
  now: Date;
  timeZone: string;
}): HtmlEscapedString {
  const csrf = html`<input type="hidden" name="_csrf" value="${d.session.csrf}">`;
  const body = html`<section><h2>用户</h2>
<table id="users"><thead><tr><th>用户名</th><th>姓名</th><th>角色</th><th>机构</th><th>来源</th><th>状态</th><th></th></tr></thead><tbody>
${d.users.map(
  (u) => html`<tr><td>${u.username}</td><td>${u.displayName ?? ''}</td><td>${ROLE_NAMES[u.role]}</td><td>${u.orgs === '*' ? '全部' : u.orgs.join(', ')}</td>
<td>${u.his ? 'HIS 单点登录' : '本地账号'}</td><td>${state(u, d.now, d.timeZone)}</td>
<td>${
    u.lockedUntil && u.lockedUntil > d.now
      ? html`<form method="post" action="/users/unlock" class="inline">${csrf}<input type="hidden" name="username" value="${u.username}"><button>解锁</button></form>`
      : ''
  }</td></tr>`,
)}
</tbody></table>
<p class="muted">新增用户、修改角色、重置密码请在服务器上使用 bin/cdc-users（密码从标准输入读入，不经网页）。</p>
</section>
<section><h2>最近的审计记录</h2>
<table id="audit"><thead><tr><th>时间</th><th>用户</th><th>动作</th><th>说明</th><th>地址</th></tr></thead><tbody>
${d.audit.map(
  (a) =>
    html`<tr><td>${formatLocal(a.at, d.timeZone)}</td><td>${a.username ?? ''}</td><td>${ACTIONS[a.action] ?? a.action} <span class="muted">${a.action}</span></td><td>${a.detail ?? ''}</td><td>${a.address ?? ''}</td></tr>`,
)}
</tbody></table><p><a href="/audit.html">查看全部审计日志（含代码映射与配置包），可按日期、用户、操作筛选</a></p></section>` as HtmlEscapedString;
  return consolePage({ title: '用户管理', path: '/users.html', session: d.session, timeZone: d.timeZone, now: d.now, msg: d.msg, style: STYLE, body });
}

/** GET /users.html and POST /users/unlock; `admin` admits a signed-in admin (functions/web/people.ts). */
export function usersRoutes(o: { db: () => Db; admin: import('hono').MiddlewareHandler; timeZone: () => string }): Hono {
  const app = new Hono();
  app.get('/users.html', o.admin, async (c) => {
    const s = c.get('person');
    const [users, audit] = await Promise.all([listUsers(o.db()), recentAudit(o.db(), 50)]);
    c.header('cache-control', 'no-store');
    return c.html(renderUsersPage({ session: s, users, audit, msg: flashOf(c, s.csrf).msg, now: new Date(), timeZone: o.timeZone() }));
  });
  app.post('/users/unlock', o.admin, async (c) => {
    const parsed = z.object({ username: Username }).safeParse(await c.req.parseBody());
    if (!parsed.success) throw validationError(parsed.error, 'username: 用户名不合法 (invalid username)');
    // The author is the signed-in admin (docs/console.md "Changes").
    await unlock(o.db(), parsed.data.username, c.get('person').user.username);
    return c.redirect(`/users.html?${flash(c.get('person').csrf, 'msg', `已解锁：${parsed.data.username}`)}`, 303);
  });
  return app;
}
