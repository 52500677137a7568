// web: the PC web console on port 8884 (requirements §2), for public-health doctors and clinicians.
// Served as the port's root function (stack.yml com.cdc-front.root), so it sees every path as sent.
//   GET /status.html   the status page (the notice requires it to answer); 503 with the page, saying
//                      数据库：不可用, when the database is unreachable
//   GET /              redirects to /status.html
//   GET /codes.html    代码映射: completeness, the unmapped queue, mappings, CSV import/export
//   /api/codes/...     the code-mapping REST API (shared/codes/api.ts; docs/code-mapping.md)
//   /sso, /popup.html, /card.html, /card, /api/card/check   the popup and report-card form opened
//                      from the HIS by single sign-on (functions/web/card.ts; docs/card-form.md)
//   GET /login, POST /login, POST /logout   sign-in for people (functions/web/people.ts; docs/console.md)
//   GET /users.html, POST /users/unlock      用户管理, the admin's (functions/web/users-page.ts)
// The code-mapping page needs a signed-in public-health doctor or admin, the users page an admin; a
// doctor arriving by the HIS's single sign-on also gets a clinician's session. The mapping API takes the same
// session (with its CSRF token) or a machine credential (API key, client certificate) — never an
// address rule, which is no person. /status.html stays open, as the notice requires. Every route
// answers only to the hosts of WEB_ALLOWED_HOSTS.
import { Hono } from 'hono';
import { defineFunction } from '../../shared/fn/index.js';
import { AnswerSchema, AppError, errorAnswer, handleError } from '../../shared/http/errors.js';
import { webConfig, type WebSettings } from '../../shared/config/functions/web.js';
import { closePool, getPool, openPool } from '../../shared/db/index.js';
import { frontStatus, softwareVersion } from '../../shared/status/index.js';
import { renderStatusPage } from './page.js';
import { codesApi, orgOf } from '../../shared/codes/api.js';
import { completeness, listMappings, unmappedQueue } from '../../shared/codes/store.js';
import { callerOf, hisAuth } from '../../shared/http/auth.js';
import { getCookie } from 'hono/cookie';
import type { Context, MiddlewareHandler } from 'hono';
import { COOKIE, hostCheck, peopleRoutes, person, refererPath, ssoPerson, ssoPersonOut, wantsPage, type PeopleOptions } from './people.js';
import { renderErrorPage } from './login-page.js';
import { consoleConcern, sessionOf, type ConsoleSettings } from '../../shared/console/index.js';
import { parseConcern } from '../../shared/config/index.js';
import { renderCodesPage } from './codes-page.js';
import { auditRoutes } from './audit-page.js';
import { usersRoutes } from './users-page.js';
import { acceptanceRoutes } from './acceptance-page.js';
import { casesRoutes } from './cases-page.js';
import { backupsRoutes } from './backups-page.js';
import { signalsRoutes } from './signals-page.js';
import { compareRoutes } from './compare-page.js';
import { evaluationRoutes } from './evaluation-page.js';
import { cardRoutes } from './card.js';
import { createCodeCache, lazyCodeCache, listsOfAllRecords } from '../../shared/codes/cache.js';
import { nudger } from '../../shared/ingest/nudge.js';
import { isAutoRefresh, OPERATORS, VIEWERS } from './console-layout.js';
import { dashboardRoutes } from './dashboard-page.js';
import { qualityRoutes } from './quality-page.js';
import { deliveryRoutes } from './delivery-page.js';
import { settingsRoutes } from './settings-page.js';
import { flashOf } from '../../shared/http/flash.js';

// Parsed once: at start (init), or at the first request when a test drives app.request() without init.
let parsed: WebSettings | undefined;
const settings = (): WebSettings => (parsed ??= webConfig.parse());

const app = new Hono();
/**
 * A browser's own page request (Accept: text/html) refused or failed gets a page saying why, with
 * a way back (docs/console.md "Errors"); scripts, the HIS and the APIs keep the JSON answer, whose
 * status, headers and logging stay handleError's.
 */
async function answer(c: Context, res: Response): Promise<Response> {
  if (!wantsPage(c)) return res;
  const a = AnswerSchema.safeParse(
    await res
      .clone()
      .json()
      .catch(() => null),
  );
  if (!a.success) return res;
  const signed = await sessionOf(getPool(), getCookie(c, COOKIE), consoleSettings(), { touch: false }).catch(() => null);
  const page = renderErrorPage({
    status: res.status,
    desc: a.data.desc,
    issues: a.data.errors ?? [],
    back: refererPath(c),
    session: signed,
    timeZone: settings().front.timeZone,
    now: new Date(),
  });
  const out = new Response(await Promise.resolve(page).then(String), { status: res.status, headers: res.headers });
  out.headers.set('content-type', 'text/html; charset=UTF-8');
  out.headers.set('cache-control', 'no-store');
  return out;
}
app.onError((err, c) => answer(c, handleError(err, c)));
app.notFound((c) => answer(c, c.json(errorAnswer(new AppError('NOT_FOUND', `页面不存在：${c.req.path}`)), 404)));

// The pages load nothing from elsewhere; the policy makes that a guarantee. The code-mapping page
// and the popup and card form have forms posting to this origin; only the card form runs a script,
// this origin's /card.js (the live check).
const FORMS = new Set([
  '/status.html',
  '/codes.html',
  '/users.html',
  '/popup.html',
  '/card.html',
  '/card',
  '/card/done',
  '/login',
  '/dashboard.html',
  '/quality.html',
  '/delivery.html',
  '/settings.html',
  '/acceptance.html',
  '/compare.html',
  '/evaluation.html',
  '/cases.html',
  '/cards.html',
  '/backups.html',
  '/signals.html',
]);
app.use('*', async (c, next) => {
  await next();
  // A refusal's page (403, and any error page of a signed-in person) is in the console's frame, with
  // its sign-out form, whatever the path asked.
  const formAction = FORMS.has(c.req.path) || c.req.path.startsWith('/cases/') || c.req.path.startsWith('/cards/') || c.res.status >= 400 ? "'self'" : "'none'";
  const script = c.req.path === '/card.html' || c.req.path === '/card' ? " script-src 'self'; connect-src 'self';" : '';
  c.header(
    'content-security-policy',
    `default-src 'none'; style-src 'unsafe-inline';${script} base-uri 'none'; form-action ${formAction}; frame-ancestors 'none'`,
  );
  c.header('x-content-type-options', 'nosniff');
  // Framing refused for the browsers that ignore CSP's frame-ancestors (IE mode of the domestic
  // browsers on hospital PCs), against clickjacking of the console's pages.
  c.header('x-frame-options', 'DENY');
  // same-origin, not no-referrer: over plain HTTP on a hospital LAN a browser sends no
  // Sec-Fetch-Site (not a secure context), and under no-referrer its own form posts would carry
  // "Origin: null" and no Referer — nothing to tell them from a forged post by (docs/console.md
  // "Changes"). Other sites still get no Referer.
  c.header('referrer-policy', 'same-origin');
});

// Strict-Transport-Security on every answer that came over HTTPS (the runtime or the terminator says so).
app.use('*', async (c, next) => {
  await next();
  if (c.req.header('x-forwarded-proto') === 'https') c.header('strict-transport-security', 'max-age=31536000');
});

/**
 * A form post whose %-escapes are no UTF-8 text (a value cut off mid-character by hand: no browser
 * sends one) is refused naming the field, before any route reads it: parsed as it is, each broken
 * escape would be stored as "\uFFFD" in a card or a reason (docs/console.md "Changes").
 */
const decoded = (v: string): string | null => {
  try {
    return decodeURIComponent(v.replace(/\+/g, ' '));
  } catch {
    return null;
  }
};
const formEncoding: MiddlewareHandler = async (c, next) => {
  if (c.req.method !== 'POST' || !/^application\/x-www-form-urlencoded/i.test(c.req.header('content-type') ?? '')) return next();
  // A copy of the body: the routes' own size limit (bodyLimit) reads the request's stream itself.
  const text = await c.req.raw.clone().text();
  if (!text.includes('%')) return next();
  for (const pair of text.split('&')) {
    const [name = '', value = ''] = pair.split('=', 2);
    if (decoded(name) !== null && decoded(value) !== null) continue;
    const field = (decoded(name) ?? name).replace(/[^\w.-]/g, '').slice(0, 40) || '(field)';
    throw new AppError('BAD_REQUEST', `表单字段 ${field} 的编码无效，请重新提交 (form field ${field}: its %-escapes are not UTF-8 text)`, [
      { field, rule: 'invalidEncoding', message: '含有无效的 UTF-8 编码 (%-escapes that are not UTF-8 text)' },
    ]);
  }
  return next();
};

// The console's own settings, parsed alone: the Host check runs before any route, and a path no route
// takes must answer 404 without the database's settings (the image's self-test, docs/runtime.md).
let consoleParsed: ConsoleSettings | undefined;
const consoleSettings = (): ConsoleSettings => (consoleParsed ??= parseConcern(consoleConcern));
const people: PeopleOptions = {
  db: getPool,
  settings: consoleSettings,
  trustedProxies: () => settings().hisAuth.trustedProxies,
  timeZone: () => settings().front.timeZone,
};
app.use('*', hostCheck(people));
app.use('*', formEncoding);
app.get('/', (c) => c.redirect('/status.html', 302));
app.route('/', peopleRoutes(people));

// Code mapping is public health's and the admin's; the users page the admin's (docs/console.md "Roles").
const mappers = person(people, ['public_health', 'admin']);
app.route('/', usersRoutes({ db: getPool, admin: person(people, ['admin']), timeZone: () => settings().front.timeZone }));
app.route('/', auditRoutes({ db: getPool, admin: person(people, ['admin']), timeZone: () => settings().front.timeZone }));
// The figure pages (docs/console.md "Pages"): public health, operators, admins; a replay only operators and admins.
const viewers = person(people, VIEWERS);
app.route('/', dashboardRoutes({ db: getPool, viewer: viewers, timeZone: () => settings().front.timeZone }));
app.route('/', qualityRoutes({ db: getPool, viewer: viewers, timeZone: () => settings().front.timeZone }));
app.route(
  '/',
  deliveryRoutes({
    db: getPool,
    viewer: viewers,
    operator: person(people, OPERATORS),
    timeZone: () => settings().front.timeZone,
    trustedProxies: () => settings().hisAuth.trustedProxies,
    nudgePush: () => nudgePush(),
  }),
);
app.route(
  '/',
  settingsRoutes({
    db: getPool,
    viewer: viewers,
    known: () => ({
      timeZone: settings().front.timeZone,
      allowedHosts: [...consoleSettings().allowedHosts],
      idleMin: consoleSettings().idleMs / 60_000,
      sessionH: consoleSettings().sessionMs / 3_600_000,
      lockoutAfter: consoleSettings().lockoutAfter,
      lockoutMin: consoleSettings().lockoutMs / 60_000,
      pushNudgeUrl: settings().ingest.pushNudgeUrl,
      production: settings().front.production,
    }),
  }),
);
app.route(
  '/',
  acceptanceRoutes({
    db: getPool,
    readers: person(people, ['public_health', 'operator', 'admin']),
    runners: person(people, ['operator', 'admin']),
    settings: () => ({ ...settings().acceptance, frontOrgCode: settings().ingest.frontOrgCode, version: softwareVersion, timeZone: settings().front.timeZone }),
  }),
);
// The pending cases show patients (masked; a reveal needs a reason): public health and the admin.
app.route(
  '/',
  casesRoutes({
    db: getPool,
    viewer: person(people, ['public_health', 'admin']),
    timeZone: () => settings().front.timeZone,
    trustedProxies: () => settings().hisAuth.trustedProxies,
    caseWindowDays: () => settings().warning.caseWindowDays,
  }),
);
app.route('/', signalsRoutes({ db: getPool, viewer: person(people, ['public_health', 'admin']), timeZone: () => settings().front.timeZone }));
app.route('/', backupsRoutes({ db: getPool, viewer: viewers, timeZone: () => settings().front.timeZone }));
app.route('/', compareRoutes(people, settings));
app.route('/', evaluationRoutes(people, settings));

app.get('/status.html', async (c) => {
  const s = await frontStatus(getPool());
  // Open to all; a signed-in person also gets the console's navigation and sign-out (docs/console.md
  // "Pages"). The page answers even when the database, and so the session, cannot be read; its
  // 30-second reload (marked _refresh=auto) does not keep the session from ending when idle, a click does.
  const touch = !isAutoRefresh(c.req.method, c.req.url);
  const signed = s.database.reachable ? await sessionOf(getPool(), getCookie(c, COOKIE), consoleSettings(), { touch }).catch(() => null) : null;
  c.header('cache-control', 'no-store');
  return c.html(renderStatusPage(s, settings().front.timeZone, signed), s.database.reachable ? 200 : 503);
});

const his = hisAuth({ config: () => settings().hisAuth });
/** A signed-in person (cookie), or else a machine credential of a HIS caller — not an address rule. */
const codesAuth: MiddlewareHandler = async (c, next) => {
  if (getCookie(c, COOKIE)) return mappers(c, next);
  return his(c, async () => {
    const kind = callerOf(c).kind;
    if (kind === 'address' || kind === 'dev')
      throw new AppError('UNAUTHENTICATED', '代码映射需登录控制台，或使用 API 密钥或客户端证书 (sign in, or use an API key or client certificate)');
    await next();
  });
};
// A mapping, policy or import saved: the push function's sweep re-maps and releases what it held at
// once, not at the next cron minute (docs/code-mapping.md "Refresh").
app.use('/api/codes/*', async (c, next) => {
  await next();
  if (c.req.method !== 'GET' && c.req.method !== 'HEAD' && c.res.status < 400) nudgePush();
});
app.route('/api/codes', codesApi({ db: getPool, auth: codesAuth, flashSecret: (c) => c.get('person')?.csrf }));

app.get('/codes.html', mappers, async (c) => {
  const caller = callerOf(c);
  const q = c.req.query('org');
  const org = q || (caller.orgs !== '*' && caller.orgs.length === 1 ? caller.orgs[0]! : null);
  if (org) orgOf(c, org); // 403 for an org the caller is not bound to
  const db = getPool();
  const [report, queue, mappings] = org
    ? await Promise.all([completeness(db, org), unmappedQueue(db, org, { limit: 100 }), listMappings(db, org)])
    : [null, [], []];
  c.header('cache-control', 'no-store');
  return c.html(
    renderCodesPage({
      org,
      orgChoices: caller.orgs === '*' ? null : caller.orgs,
      report,
      queue,
      mappings,
      ...flashOf(c, c.get('person').csrf),
      session: c.get('person'),
      timeZone: settings().front.timeZone,
      now: new Date(),
    }),
  );
});

// The code mappings a submitted card is mapped with, loaded at the first card (as the receive
// functions do), and the push nudge after it is stored.
const codes = lazyCodeCache(() => createCodeCache(getPool(), { refreshMs: settings().codes.refreshMs, lists: listsOfAllRecords() }));
let nudge: () => void = () => undefined;
let nudgePush: () => void = () => undefined;
app.route(
  '/',
  cardRoutes({
    db: getPool,
    sso: () => settings().sso,
    codes: () => codes.get(),
    timeZone: () => settings().front.timeZone,
    caseWindowDays: () => settings().warning.caseWindowDays,
    testOrgs: () => settings().ingest.testOrgs,
    nudge: () => nudge(),
    person: (c, doctor) => ssoPerson(people, c, doctor),
    personOut: (c) => ssoPersonOut(people, c),
    trustedProxies: () => settings().hisAuth.trustedProxies,
  }),
);

export default defineFunction({
  app,
  config: webConfig,
  async init() {
    openPool(settings().database.url, 2, settings().database.limits);
    const push = nudger(settings().ingest.pushNudgeUrl);
    const warning = nudger(settings().ingest.warningNudgeUrl);
    nudgePush = push;
    nudge = () => {
      push();
      warning();
    };
  },
  async close() {
    await codes.close();
    await closePool();
  },
});
