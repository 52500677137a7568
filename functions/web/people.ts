/**
 * Sign-in for the people on the console (docs/console.md): /login, /logout, and the middleware that
 * admits a signed-in person of the right role to a page or API — with the session's CSRF token on
 * every change, over plain HTTP on a hospital LAN as over HTTPS — and the Host allow-list.
 */
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { csrfMatches, hostAllowed, ROLE_NAMES, sessionOf, signIn, signOut, type ConsoleSettings, type Role, type Session } from '../../shared/console/index.js';
import type { Db } from '../../shared/db/index.js';
import { requestSource } from '../../shared/http/caller.js';
import { AppError } from '../../shared/http/errors.js';
import { renderForbiddenPage, renderLoginPage } from './login-page.js';

export const COOKIE = 'cdc_console';

declare module 'hono' {
  interface ContextVariableMap {
    person: Session;
  }
}

export interface PeopleOptions {
  db: () => Db;
  settings: () => ConsoleSettings;
  trustedProxies: () => string;
}

const https = (c: Context) => c.req.header('x-forwarded-proto') === 'https';
const address = (c: Context, o: PeopleOptions) => requestSource(c, o.trustedProxies()).address;
/** Only a path of this console, never another site: `/x`, not `//x` or `http://…`. */
const safeNext = (n: unknown) => (typeof n === 'string' && /^\/(?![/\\])[^\s]*$/.test(n) ? n : '/status.html');

/** Refuses a request whose Host is not on WEB_ALLOWED_HOSTS (421), as DNS rebinding would send it. */
export function hostCheck(o: PeopleOptions): MiddlewareHandler {
  return async (c, next) => {
    // The caller's Host: X-Forwarded-Host as the gateway or watchdog passes it on (a replica sees its
    // own loopback address as Host), else Host, as HTTP/1.1 always sends it (docs/runtime.md "Host").
    const host = c.req.header('x-forwarded-host') ?? c.req.header('host') ?? new URL(c.req.url).host;
    if (!hostAllowed(host, o.settings())) {
      return c.text('421 此地址不是前置软件控制台的访问地址 (Host not allowed: WEB_ALLOWED_HOSTS)', 421);
    }
    await next();
  };
}

/**
 * A signed-in person of one of `roles`; sets the person and, for the modules that take a caller
 * (code mapping), a caller of kind person bound to the person's orgs — so every change is authored
 * by the session's user. No session: a page redirects to /login, an API answers 401. Every change
 * (any method but GET/HEAD) must carry the session's CSRF token (form field _csrf or header
 * X-CSRF-Token): a cookie alone, as a forged cross-site form would carry it, is refused.
 */
export function person(o: PeopleOptions, roles: readonly Role[]): MiddlewareHandler {
  return async (c, next) => {
    const s = await sessionOf(o.db(), getCookie(c, COOKIE), o.settings());
    const api = c.req.path.startsWith('/api/');
    if (!s) {
      if (api || c.req.method !== 'GET') throw new AppError('UNAUTHENTICATED', '请先登录控制台 (sign in first: /login)');
      return c.redirect(`/login?next=${encodeURIComponent(c.req.path + (new URL(c.req.url).search || ''))}`, 302);
    }
    if (!roles.includes(s.user.role)) {
      if (api) throw new AppError('FORBIDDEN', `角色 ${ROLE_NAMES[s.user.role]} 无权进行此操作 (role not allowed)`);
      return c.html(renderForbiddenPage({ username: s.user.username, role: ROLE_NAMES[s.user.role], need: roles.map((r) => ROLE_NAMES[r]) }), 403);
    }
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
      let sent = c.req.header('x-csrf-token');
      if (!sent && /^(application\/x-www-form-urlencoded|multipart\/form-data)/i.test(c.req.header('content-type') ?? '')) {
        const v = (await c.req.parseBody())._csrf;
        sent = typeof v === 'string' ? v : undefined;
      }
      if (!csrfMatches(sent, s.csrf)) throw new AppError('FORBIDDEN', '页面已过期或请求来自其他网站，请刷新后重试 (CSRF token missing or wrong)');
    }
    c.set('person', s);
    c.set('caller', { id: `user:${s.user.userId}`, name: s.user.username, kind: 'person', orgs: s.user.orgs, ratePerMin: 0 });
    await next();
  };
}

export function peopleRoutes(o: PeopleOptions): Hono {
  const app = new Hono();
  app.get('/login', (c) => {
    c.header('cache-control', 'no-store');
    return c.html(renderLoginPage({ next: safeNext(c.req.query('next')) }));
  });
  app.post('/login', async (c) => {
    const body = await c.req.parseBody();
    const username = typeof body.username === 'string' ? body.username : '';
    const password = typeof body.password === 'string' ? body.password : '';
    const next = safeNext(body.next);
    const r = await signIn(o.db(), username, password, o.settings(), address(c, o));
    c.header('cache-control', 'no-store');
    if (!r.ok) {
      const error = r.locked ? `账号已锁定，请于 ${r.until ? r.until.toISOString().slice(11, 16) : '稍后'}（UTC）后再试，或请管理员解锁` : '用户名或密码错误';
      return c.html(renderLoginPage({ next, error, username }), r.locked ? 423 : 401);
    }
    setCookie(c, COOKIE, r.token, { httpOnly: true, sameSite: 'Strict', path: '/', secure: https(c) });
    return c.redirect(next, 303);
  });
  app.post('/logout', person(o, ['clinician', 'public_health', 'operator', 'admin']), async (c) => {
    const s = c.get('person');
    await signOut(o.db(), getCookie(c, COOKIE)!, s.user.username, address(c, o));
    deleteCookie(c, COOKIE, { path: '/' });
    return c.redirect('/login', 303);
  });
  return app;
}
