/**
 * The console's sign-in page and its refusals (docs/console.md), in Chinese, server-rendered, no
 * script: a form posting username and password to /login (a page of its own), and the page a
 * signed-in person sees for a page their role does not open (in the console's frame).
 */
import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import { ROLE_NAMES, type Session } from '../../shared/console/index.js';
import type { FieldIssue } from '../../shared/http/errors.js';
import { consolePage } from './console-layout.js';

const STYLE = `body{font-family:"Microsoft YaHei","PingFang SC",sans-serif;margin:0;background:#f4f6f8;color:#222}
main{max-width:360px;margin:12vh auto;background:#fff;padding:28px 32px;border-radius:6px;box-shadow:0 1px 4px rgba(0,0,0,.12)}
h1{font-size:20px;margin:0 0 18px}label{display:block;margin:12px 0 4px}input{width:100%;box-sizing:border-box;padding:8px;font-size:15px}
button{margin-top:18px;width:100%;padding:9px;font-size:15px;background:#1f6feb;color:#fff;border:0;border-radius:4px}
.err{color:#b42318;background:#fef3f2;padding:8px 10px;border-radius:4px}.note{color:#667;font-size:13px;margin-top:16px}`;

export function renderLoginPage(o: { next: string; csrf: string; error?: string | undefined; username?: string | undefined }): HtmlEscapedString {
  return html`<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>登录 - 传染病监测预警前置软件</title><style>${STYLE}</style></head>
<body><main>
<h1>前置软件控制台登录</h1>
${o.error ? html`<p class="err" role="alert">${o.error}</p>` : ''}
<form method="post" action="/login">
<input type="hidden" name="_csrf" value="${o.csrf}">
<input type="hidden" name="next" value="${o.next}">
<label for="username">用户名</label><input id="username" name="username" autocomplete="username" required value="${o.username ?? ''}">
<label for="password">密码</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">登录</button>
</form>
<p class="note">账号由前置软件管理员创建（bin/cdc-users）。连续输错密码会暂时锁定账号。</p>
</main></body></html>` as HtmlEscapedString;
}

/** The 403 page: in the console's frame, so the person still has their navigation and sign-out. */
export function renderForbiddenPage(o: { session: Session; path: string; need: string[]; timeZone: string; now: Date }): HtmlEscapedString {
  const u = o.session.user;
  return consolePage({
    title: '无权访问此页面',
    path: o.path,
    session: o.session,
    timeZone: o.timeZone,
    now: o.now,
    body: html`<section id="forbidden"><p>当前用户 ${u.username}（${ROLE_NAMES[u.role]}）不能打开此页面；需要的角色：${o.need.join('、')}。</p>
<p class="muted">请从上方导航打开您可以使用的页面。</p></section>` as HtmlEscapedString,
  });
}

/**
 * A refusal or failure answered to a browser's own page request (docs/console.md "Errors"): the
 * message and each field's issue, a way back (the page the request came from, when it is this
 * console's) — in the console's frame when the person is signed in, else a page of its own.
 */
export function renderErrorPage(o: {
  status: number;
  desc: string;
  issues: FieldIssue[];
  back: string | null;
  session: Session | null;
  timeZone: string;
  now: Date;
}): HtmlEscapedString {
  const title = o.status === 404 ? '页面不存在' : o.status >= 500 ? '出错了' : '操作未完成';
  const body = html`<section id="error-page"><p id="error" role="alert" class="bad">${o.desc}</p>
${o.issues.length ? html`<ul id="issues">${o.issues.map((i) => html`<li>${i.field}：${i.message}</li>`)}</ul>` : ''}
<p>${o.back ? html`<a href="${o.back}">返回上一页</a>　` : ''}<a href="/status.html">运行状态</a></p></section>` as HtmlEscapedString;
  if (o.session) return consolePage({ title, path: '', session: o.session, timeZone: o.timeZone, now: o.now, body });
  return html`<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${title} - 传染病监测预警前置软件</title><style>${STYLE}.bad{color:#b42318}</style></head>
<body><main><h1>${title}</h1>${body}</main></body></html>` as HtmlEscapedString;
}
