/**
 * Sign-in for the people on the console (docs/console.md): /login, /logout, and the middleware that
 * admits a signed-in person of the right role to a page or API — with the session's CSRF token on
 * every change, over plain HTTP on a hospital LAN as over HTTPS — and the Host allow-list.
 */
import { isIP } from 'node:net';
import { formatLocal } from '../../shared/time/index.js';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { randomBytes } from 'node:crypto';
import {
  csrfMatches,
  hostAllowed,
  ROLE_NAMES,
  sessionOf,
  signIn,
  signOut,
  ssoSignIn,
  type ConsoleSettings,
  type Role,
  type Session,
} from '../../shared/console/index.js';
import type { Db } from '../../shared/db/index.js';
import { requestSource } from '../../shared/http/caller.js';
import { AppError } from '../../shared/http/errors.js';
import { FORM_POST, isPageRequest } from '../../shared/http/page-request.js';
import { crossSite } from '../../shared/http/same-origin.js';
import { renderForbiddenPage, renderLoginPage } from './login-page.js';
import { isAutoRefresh, withoutAutoRefresh } from './console-layout.js';

export const COOKIE = 'cdc_console';
/** The sign-in form's own CSRF token, before any session (docs/console.md "Sign-in"). */
export const LOGIN_COOKIE = 'cdc_login';

declare module 'hono' {
  interface ContextVariableMap {
    person: Session;
  }
}

export interface PeopleOptions {
  db: () => Db;
  settings: () => ConsoleSettings;
  trustedProxies: () => string;
  /** The hospital's zone (TZ_LOCAL), for the time in the console's header. */
  timeZone: () => string;
}

const https = (c: Context) => c.req.header('x-forwarded-proto') === 'https' || new URL(c.req.url).protocol === 'https:';
const CROSS_SITE = '拒绝来自其他网站的请求 (cross-site request refused)';
const address = (c: Context, o: PeopleOptions) => requestSource(c, o.trustedProxies()).address;
/**
 * The address a sign-in is counted and audited under: the caller's, or — relayed by a hop that is not a
 * trusted proxy, whose claims are not believed — that relay's own (docs/console.md "Sign-in, sessions,
 * lockout": every PC behind it counts as the proxy). Never none: a sign-in under no address escaped
 * the per-address limit, and a claimed X-Forwarded-For was all it took.
 */
const signInAddress = (c: Context, o: PeopleOptions) => {
  const s = requestSource(c, o.trustedProxies());
  return s.address ?? (s.untrustedRelay && isIP(s.untrustedRelay) ? s.untrustedRelay : null);
};
/** Only a path of this console, never another site: `/x`, not `//x` or `http://…`. */
const safeNext = (n: unknown) => (typeof n === 'string' && /^\/(?![/\\])[^\s]*$/.test(n) ? n : '/status.html');

/**
 * A browser's own request for a page (it asks for HTML), not a script's or the HIS's: a page, or a
 * page's form posted (also to an API path, as 代码映射's forms post to /api/codes).
 */
export const wantsPage = (c: Context): boolean =>
  isPageRequest({ accept: c.req.header('accept'), contentType: c.req.header('content-type'), path: c.req.path });

/** The path (and query) of the Referer when it is a page of this console (the same host), else null. */
export function refererPath(c: Context): string | null {
  const ref = c.req.header('referer');
  if (!ref) return null;
  try {
    const u = new URL(ref);
    const host = c.req.header('x-forwarded-host') ?? c.req.header('host') ?? new URL(c.req.url).host;
    const path = u.pathname + u.search;
    return u.host === host && safeNext(path) === path ? path : null;
  } catch {
    return null;
  }
}

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
    // A page's automatic reload is not the person's activity (docs/console.md "Sign-in, sessions, lockout").
    const s = await sessionOf(o.db(), getCookie(c, COOKIE), o.settings(), { touch: !isAutoRefresh(c.req.method, c.req.url) });
    const api = c.req.path.startsWith('/api/');
    if (!s) {
      // A page's own form posted after the session ended (idle, signed out elsewhere) — a browser's
      // form navigation, also to an API path the page posts to (代码映射 → /api/codes/mappings): the
      // sign-in page, then back to the page it was posted from; scripts still get 401
      // (docs/console.md "Sign-in"). Nothing of the post is done.
      if (c.req.method === 'POST' && FORM_POST.test(c.req.header('content-type') ?? '') && wantsPage(c)) {
        return c.redirect(`/login?expired=1&next=${encodeURIComponent(refererPath(c) ?? '/status.html')}`, 303);
      }
      if (api || c.req.method !== 'GET') throw new AppError('UNAUTHENTICATED', '请先登录控制台 (sign in first: /login)');
      return c.redirect(`/login?next=${encodeURIComponent(withoutAutoRefresh(c.req.url))}`, 302);
    }
    if (!roles.includes(s.user.role)) {
      if (api) throw new AppError('FORBIDDEN', `角色 ${ROLE_NAMES[s.user.role]} 无权进行此操作 (role not allowed)`);
      return c.html(renderForbiddenPage({ session: s, path: c.req.path, need: roles.map((r) => ROLE_NAMES[r]), timeZone: o.timeZone(), now: new Date() }), 403);
    }
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
      if (crossSite(c)) throw new AppError('FORBIDDEN', CROSS_SITE);
      let sent = c.req.header('x-csrf-token');
      if (!sent && FORM_POST.test(c.req.header('content-type') ?? '')) {
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

/**
 * The posts anyone may send before signing in (/login, the single sign-on's /sso) are a few short
 * fields: a body over 16 KiB is refused 413 before it is read — by its Content-Length at once, a
 * chunked one as it passes the limit — so that no one can keep the console's process busy parsing
 * megabytes of fields (docs/console.md "Sign-in, sessions, lockout").
 */
export const SMALL_FORM_BYTES = 16 * 1024;
export const smallForm: MiddlewareHandler = bodyLimit({
  maxSize: SMALL_FORM_BYTES,
  onError: () => {
    throw new AppError('PAYLOAD_TOO_LARGE', `表单过大：不超过 ${SMALL_FORM_BYTES} 字节 (form larger than ${SMALL_FORM_BYTES} bytes)`);
  },
});

export function peopleRoutes(o: PeopleOptions): Hono {
  const app = new Hono();
  /**
   * The sign-in form carries a token of its own, also set in a SameSite=Strict cookie: a form on
   * another site can make a browser post a username and password (signing the doctor in as someone
   * else), never read or send that cookie — so it is refused, over plain HTTP as over HTTPS.
   */
  const loginForm = (c: Context, o2: { next: string; error?: string; username?: string }, status: 200 | 401 | 403 | 423 | 429) => {
    const token = randomBytes(24).toString('base64url');
    setCookie(c, LOGIN_COOKIE, token, { httpOnly: true, sameSite: 'Strict', path: '/login', secure: https(c), maxAge: 3600 });
    c.header('cache-control', 'no-store');
    return c.html(renderLoginPage({ ...o2, csrf: token }), status);
  };
  app.get('/login', (c) =>
    loginForm(
      c,
      { next: safeNext(c.req.query('next')), ...(c.req.query('expired') ? { error: '会话已过期，请重新登录；刚才的操作未完成，登录后请再做一次' } : {}) },
      200,
    ),
  );
  app.post('/login', smallForm, async (c) => {
    // A post without the sign-in form's cookie, or from another site, is refused before its body is
    // read; the page asked for is taken from the sign-in page's own address (its Referer).
    if (crossSite(c) || !getCookie(c, LOGIN_COOKIE)) {
      const next = safeNext(URL.parse(c.req.header('referer') ?? '')?.searchParams.get('next'));
      return loginForm(c, { next, error: '登录页面已过期或请求来自其他网站，请重新登录 (sign-in form expired or cross-site)' }, 403);
    }
    const body = await c.req.parseBody();
    const username = typeof body.username === 'string' ? body.username : '';
    const password = typeof body.password === 'string' ? body.password : '';
    const next = safeNext(body.next);
    const sent = typeof body._csrf === 'string' ? body._csrf : undefined;
    const expected = getCookie(c, LOGIN_COOKIE);
    if (crossSite(c) || !expected || !csrfMatches(sent, expected)) {
      return loginForm(c, { next, error: '登录页面已过期或请求来自其他网站，请重新登录 (sign-in form expired or cross-site)' }, 403);
    }
    const r = await signIn(o.db(), username, password, o.settings(), signInAddress(c, o));
    if (!r.ok) {
      const at = r.until ? formatLocal(r.until, o.timeZone()).slice(11, 16) : '稍后';
      if (r.fromAddress)
        return loginForm(c, { next, error: `本机登录失败次数过多，请于 ${at} 后再试 (too many failed sign-ins from this address)`, username }, 429);
      const error = r.locked ? `账号已锁定，请于 ${at} 后再试，或请管理员解锁` : '用户名或密码错误';
      return loginForm(c, { next, error, username }, r.locked ? 423 : 401);
    }
    deleteCookie(c, LOGIN_COOKIE, { path: '/login' });
    setCookie(c, COOKIE, r.token, { httpOnly: true, sameSite: 'Strict', path: '/', secure: https(c) });
    c.header('cache-control', 'no-store');
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

/** Ends the console session of this browser (退出 on the HIS's popup), if one is open. */
export async function ssoPersonOut(o: PeopleOptions, c: Context): Promise<void> {
  const token = getCookie(c, COOKIE);
  const s = await sessionOf(o.db(), token, o.settings(), { touch: false });
  if (s && token) await signOut(o.db(), token, s.user.username, address(c, o));
  deleteCookie(c, COOKIE, { path: '/' });
}

/**
 * Opens a clinician's console session for the doctor a verified HIS single-sign-on token names (the
 * popup's /sso, docs/console.md "Single sign-on"), beside the popup's own session. A disabled user
 * gets none; the popup works either way. A session opened with a password in this browser is kept:
 * a token arrives by a link, which anyone holding one can send.
 */
export async function ssoPerson(o: PeopleOptions, c: Context, doctor: { org: string; doctor: string; name: string | null }): Promise<void> {
  const current = await sessionOf(o.db(), getCookie(c, COOKIE), o.settings(), { touch: false });
  if (current?.via === 'password') return;
  const r = await ssoSignIn(o.db(), doctor, o.settings(), address(c, o));
  if (r) setCookie(c, COOKIE, r.token, { httpOnly: true, sameSite: 'Strict', path: '/', secure: https(c) });
}
