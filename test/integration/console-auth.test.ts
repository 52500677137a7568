// People on the console (shared/console, functions/web/people.ts; docs/console.md), on the real
// database: scrypt hashes, sign-in and its audit, lockout after failed attempts, idle and absolute
// expiry, sign-out, a password reset ending sessions, roles (a clinician cannot open the mapping
// page), no session → the sign-in page, a change without the session's CSRF token refused, the Host
// allow-list, and bin/cdc-users with its password on stdin; the sign-in form's own CSRF token, a
// change from another site refused even with the session's token, a clinician's session from the
// HIS's single sign-on (each view of its popup audited as the doctor's), and the admin's users page
// (unlock, authored by the admin) in the console's frame; the 403 page with the person's own
// navigation.
import { formatLocal } from '../../shared/time/index.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, testDb, uniqueOrg } from '../setup/db.js';
import { createUser, hashPassword, resetPassword, setDisabled, setRole, verifyPassword } from '../../shared/console/index.js';
import { signToken } from '../../shared/sso/token.js';
import { NAV } from '../../functions/web/console-layout.js';
import { consoleFrame, expectConsoleFrame } from '../setup/console-session.js';

// The single sign-on key the HIS shares with the front (docs/card-form.md), in a secrets folder of this test's own.
const secrets = mkdtempSync(join(tmpdir(), 'console-auth-'));
const ssoKey = randomBytes(24).toString('hex');
writeFileSync(join(secrets, 'his-sso-key'), ssoKey);
process.env.CDC_SECRETS_DIR = secrets;
process.env.DATABASE_URL = databaseUrl();
process.env.WEB_ALLOWED_HOSTS = 'front.local,localhost';
process.env.CONSOLE_LOCKOUT_AFTER = '3';
const { default: web } = await import('../../functions/web/handler.js');
const db = testDb();
const org = uniqueOrg();
const uname = (p: string) => `${p}${Math.random().toString(36).slice(2, 9)}`;
const PW = 'a-long-test-password';

beforeAll(async () => {
  await web.init?.();
});
afterAll(async () => web.close?.());

const host = { host: 'front.local:8884' };
/** The sign-in form as a browser gets it: its CSRF token and the cookie that goes with it. */
async function loginForm(headers: Record<string, string> = {}): Promise<{ token: string; cookie: string }> {
  const res = await web.app.request('/login', { headers: { ...host, ...headers } });
  const token = /name="_csrf" value="([^"]+)"/.exec(await res.text())![1]!;
  const cookie = /cdc_login=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')![1]!;
  return { token, cookie };
}
/** Signs in through the form, as a browser does. */
async function login(username: string, password = PW, headers: Record<string, string> = {}): Promise<Response> {
  const f = await loginForm(headers);
  return web.app.request('/login', {
    method: 'POST',
    headers: { ...host, cookie: `cdc_login=${f.cookie}`, 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams({ username, password, next: '/codes.html', _csrf: f.token }).toString(),
  });
}
const cookieOf = (res: Response) => /cdc_console=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')?.[1];
/** The Set-Cookie of the session cookie alone (the response also clears the sign-in form's). */
const sessionCookie = (res: Response) => res.headers.getSetCookie().find((c) => c.startsWith('cdc_console=')) ?? '';
/** What was audited of a user's own doing (their creation is audited under its author). */
const audits = async (username: string) =>
  (await db.query<{ action: string }>('SELECT action FROM console_audit WHERE username = $1 ORDER BY audit_id', [username])).rows.map((r) => r.action);

describe('passwords', () => {
  it('are hashed with scrypt and a salt of their own; the hash verifies only its password', async () => {
    const a = await hashPassword(PW);
    const b = await hashPassword(PW);
    expect(a).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(a).not.toBe(b);
    expect(await verifyPassword(PW, a)).toBe(true);
    expect(await verifyPassword(`${PW}x`, a)).toBe(false);
  });

  it('shorter than 10 characters are refused', async () => {
    await expect(createUser(db, { username: uname('s'), role: 'clinician', password: 'short' }, 'test')).rejects.toThrow(/10 characters/);
  });
});

describe('sign-in', () => {
  it('opens a session in an HttpOnly, SameSite=Strict cookie and audits it; the cookie is Secure over HTTPS', async () => {
    const u = uname('a');
    await createUser(db, { username: u, role: 'public_health', password: PW, orgs: [org] }, 'test');
    const res = await login(u);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/codes.html');
    const set = sessionCookie(res);
    expect(set).toMatch(/HttpOnly/);
    expect(set).toMatch(/SameSite=Strict/);
    expect(set).not.toMatch(/Secure/);
    const secure = await login(u, PW, { 'x-forwarded-proto': 'https' });
    expect(sessionCookie(secure)).toMatch(/Secure/);
    expect(secure.headers.get('strict-transport-security')).toBe('max-age=31536000');
    const page = await web.app.request('/codes.html', { headers: { ...host, cookie: `cdc_console=${cookieOf(res)}` } });
    expect(page.status).toBe(200);
    expect(await audits(u)).toEqual(['signin', 'signin']);
    // Only the token's hash is stored.
    const stored = await db.query<{ token_hash: string }>(
      'SELECT token_hash FROM console_session s JOIN console_user u USING (user_id) WHERE u.username = $1',
      [u],
    );
    expect(stored.rows.map((r) => r.token_hash)).not.toContain(cookieOf(res));
  });

  it('locks the account after 3 wrong passwords; the right one is refused while locked; unlock (or time) lets it in', async () => {
    const u = uname('l');
    await createUser(db, { username: u, role: 'admin', password: PW }, 'test');
    for (let i = 0; i < 2; i++) expect((await login(u, 'wrong-password-x')).status).toBe(401);
    const third = await login(u, 'wrong-password-x');
    expect(third.status).toBe(423);
    // The time it opens again, as the doctor's clock reads it (TZ_LOCAL), not UTC.
    const until = (await db.query<{ t: Date }>('SELECT locked_until AS t FROM console_user WHERE username = $1', [u])).rows[0]!.t;
    const text = await third.text();
    expect(text).toContain(`账号已锁定，请于 ${formatLocal(until, 'Asia/Shanghai').slice(11, 16)} 后再试`);
    // The notice itself, not the page: the form's random CSRF token may hold the letters "UTC".
    expect(/<p class="err"[^>]*>([^<]*)<\/p>/.exec(text)?.[1]).not.toContain('UTC');
    expect((await login(u)).status).toBe(423);
    expect(await audits(u)).toEqual(['signin-failed', 'signin-failed', 'lockout', 'signin-refused']);
    await db.query(`UPDATE console_user SET locked_until = now() - interval '1 second' WHERE username = $1`, [u]);
    expect((await login(u)).status).toBe(303);
  });

  it('counts wrong passwords sent together one by one: the lockout holds, for a user and for a name no one has alike', async () => {
    const u = uname('burst');
    await createUser(db, { username: u, role: 'admin', password: PW }, 'test');
    for (const name of [u, uname('nobody')]) {
      // Eight at once (3 lock): two wrong, the third locks, the rest are refused as locked.
      const statuses = await Promise.all(Array.from({ length: 8 }, () => login(name, 'wrong-password-x').then((r) => r.status)));
      expect(statuses.sort(), name).toEqual([401, 401, 423, 423, 423, 423, 423, 423]);
    }
    // The right password after the burst: still locked.
    expect((await login(u)).status).toBe(423);
    expect((await audits(u)).filter((a) => a === 'lockout')).toHaveLength(1);
  });

  it('an unknown user and a wrong password get the same answer, the lockout included', async () => {
    const a = await login(uname('nobody'), 'whatever-password');
    expect(a.status).toBe(401);
    expect(await a.text()).toContain('用户名或密码错误');
    // A name no one has is locked after as many attempts as a user's, so a 423 tells nothing.
    const nobody = uname('nobody');
    const known = uname('known');
    await createUser(db, { username: known, role: 'public_health', password: PW }, 'test');
    for (const name of [nobody, known]) {
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push((await login(name, 'wrong-password-x')).status);
      expect(statuses, name).toEqual([401, 401, 423, 423]);
    }
  });

  it('keeps only the shape of a sign-in name no one has in the audit, never what was typed', async () => {
    // An ID number's shape, this test's own (the database is shared with the other files).
    const typed = `110105${String(Math.floor(Math.random() * 1e12)).padStart(12, '0')}`;
    expect((await login(typed, 'whatever-password')).status).toBe(401);
    const before = (await db.query<{ n: string }>('SELECT coalesce(max(audit_id), 0) AS n FROM console_audit')).rows[0]!.n;
    expect((await login(typed, 'whatever-password')).status).toBe(401);
    const rows = await db.query<{ username: string; detail: string }>(
      `SELECT username, detail FROM console_audit WHERE action = 'signin-failed' AND audit_id > $1 AND username LIKE '1%' ORDER BY audit_id`,
      [before],
    );
    expect(rows.rows).toContainEqual({ username: '1********[18]', detail: 'unknown user, failed attempt 2' });
    const all = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM console_audit WHERE username LIKE $1 OR detail LIKE $1`, [`%${typed}%`]);
    expect(all.rows[0]!.n).toBe(0);
  });
});

describe('sessions', () => {
  it('end when idle too long, past their absolute end, at sign-out, and at a password reset', async () => {
    const u = uname('e');
    await createUser(db, { username: u, role: 'public_health', password: PW }, 'test');
    const open = async () => cookieOf(await login(u))!;
    const page = (c: string) => web.app.request('/codes.html', { headers: { ...host, cookie: `cdc_console=${c}` } });
    const idle = await open();
    await db.query(
      `UPDATE console_session SET last_seen_at = now() - interval '31 minutes' WHERE user_id = (SELECT user_id FROM console_user WHERE username = $1)`,
      [u],
    );
    expect((await page(idle)).status).toBe(302);
    const old = await open();
    await db.query(
      `UPDATE console_session SET expires_at = now() - interval '1 second' WHERE ended_at IS NULL AND user_id = (SELECT user_id FROM console_user WHERE username = $1)`,
      [u],
    );
    expect((await page(old)).status).toBe(302);
    const c = await open();
    const html = await (await page(c)).text();
    const csrf = /name="_csrf" value="([^"]+)"/.exec(html)![1]!;
    const out = await web.app.request('/logout', {
      method: 'POST',
      headers: { ...host, cookie: `cdc_console=${c}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: csrf }).toString(),
    });
    expect(out.status).toBe(303);
    expect((await page(c)).status).toBe(302);
    // Disabling ends the user's sessions: enabled again, the person signs in again.
    const e = await open();
    expect((await page(e)).status).toBe(200);
    await setDisabled(db, u, true, 'test');
    await setDisabled(db, u, false, 'test');
    expect((await page(e)).status).toBe(302);
    const d = await open();
    expect((await page(d)).status).toBe(200);
    await resetPassword(db, u, 'another-long-password', 'test');
    expect((await page(d)).status).toBe(302);
  });
});

describe('roles, CSRF and the Host list', () => {
  it('a clinician cannot open the mapping page or change a mapping', async () => {
    const u = uname('c');
    await createUser(db, { username: u, role: 'clinician', password: PW }, 'test');
    const c = cookieOf(await login(u))!;
    const res = await web.app.request('/codes.html', { headers: { ...host, cookie: `cdc_console=${c}` } });
    expect(res.status).toBe(403);
    expect(await res.text()).toContain('无权访问此页面');
    const api = await web.app.request(`/api/codes/mappings?org=${org}`, { headers: { ...host, cookie: `cdc_console=${c}` } });
    expect(api.status).toBe(403);
  });

  it('a change without the session’s CSRF token is refused, with it accepted, and authored by the user', async () => {
    const u = uname('w');
    await createUser(db, { username: u, role: 'public_health', password: PW, orgs: [org] }, 'test');
    const c = cookieOf(await login(u))!;
    const post = (fields: Record<string, string>) =>
      web.app.request('/api/codes/mappings', {
        method: 'POST',
        headers: { ...host, cookie: `cdc_console=${c}`, 'content-type': 'application/x-www-form-urlencoded', origin: 'http://front.local:8884' },
        body: new URLSearchParams({
          org,
          domain: 'sex',
          localCode: 'Q',
          nationalCode: '9',
          equivalence: 'equal',
          madeBy: 'someone else',
          ...fields,
        }).toString(),
      });
    const forged = await post({});
    expect(forged.status).toBe(403);
    expect(await forged.text()).toContain('CSRF');
    expect((await post({ _csrf: 'not-the-token' })).status).toBe(403);
    const page = await (await web.app.request(`/codes.html?org=${org}`, { headers: { ...host, cookie: `cdc_console=${c}` } })).text();
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page)![1]!;
    expect((await post({ _csrf: csrf })).status).toBe(303);
    const made = await db.query<{ made_by: string }>(`SELECT made_by FROM code_mapping WHERE org_code = $1 AND domain = 'sex' AND local_code = 'Q'`, [org]);
    expect(made.rows.map((r) => r.made_by)).toEqual([u]);
  });

  it('answers 421 to a Host that is not on the list', async () => {
    const res = await web.app.request('/login', { headers: { host: 'evil.example:8884' } });
    expect(res.status).toBe(421);
  });

  it('no session: a page goes to the sign-in page (and back after it), an API answers 401', async () => {
    const res = await web.app.request('/codes.html?org=1', { headers: host });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/login?next=%2Fcodes.html%3Forg%3D1');
    const login = await (await web.app.request('/login?next=//evil.example/x', { headers: host })).text();
    expect(login).toContain('name="next" value="/status.html"');
  });
});

describe('the sign-in form and changes from another site', () => {
  it('a sign-in posted without the form’s own token and cookie (as another site would) opens no session', async () => {
    const u = uname('f');
    await createUser(db, { username: u, role: 'public_health', password: PW }, 'test');
    const post = (headers: Record<string, string>, fields: Record<string, string>) =>
      web.app.request('/login', {
        method: 'POST',
        headers: { ...host, 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: new URLSearchParams({ username: u, password: PW, ...fields }).toString(),
      });
    // Another site's form: right username and password, no cookie, no token (plain HTTP).
    const forged = await post({ origin: 'http://evil.example' }, {});
    expect(forged.status).toBe(403);
    expect(cookieOf(forged)).toBeUndefined();
    expect(await forged.text()).toContain('登录页面已过期或请求来自其他网站');
    // The sign-in page left open past its cookie: refused, the page it was for kept for the next try.
    const stale = await post({ referer: 'http://front.local:8884/login?next=%2Fcodes.html' }, { next: '/codes.html' });
    expect(stale.status).toBe(403);
    expect(await stale.text()).toContain('name="next" value="/codes.html"');
    // A token from another form than this browser's own cookie.
    const a = await loginForm();
    const b = await loginForm();
    expect((await post({ cookie: `cdc_login=${a.cookie}` }, { _csrf: b.token })).status).toBe(403);
    // The right pair, from another site: refused too.
    expect((await post({ cookie: `cdc_login=${a.cookie}`, 'sec-fetch-site': 'cross-site' }, { _csrf: a.token })).status).toBe(403);
    expect(await audits(u)).toEqual([]);
    // The right pair from the page itself.
    const ok = await post({ cookie: `cdc_login=${a.cookie}`, 'sec-fetch-site': 'same-origin' }, { _csrf: a.token });
    expect(ok.status).toBe(303);
    expect(sessionCookie(ok)).toMatch(/HttpOnly/);
    expect(await audits(u)).toEqual(['signin']);
  });

  it('a change carrying the session’s token is still refused when Origin, Referer or Sec-Fetch-Site say another site', async () => {
    const u = uname('x');
    await createUser(db, { username: u, role: 'public_health', password: PW }, 'test');
    const c = cookieOf(await login(u))!;
    const page = () => web.app.request('/codes.html', { headers: { ...host, cookie: `cdc_console=${c}` } });
    const csrf = /name="_csrf" value="([^"]+)"/.exec(await (await page()).text())![1]!;
    const logout = (headers: Record<string, string>) =>
      web.app.request('/logout', {
        method: 'POST',
        headers: { ...host, cookie: `cdc_console=${c}`, 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: new URLSearchParams({ _csrf: csrf }).toString(),
      });
    for (const h of [
      { origin: 'http://evil.example' },
      { referer: 'http://evil.example/page' },
      { 'sec-fetch-site': 'cross-site' },
      { origin: 'null' },
      // An empty Origin says nothing: the Referer is judged.
      { origin: '', referer: 'http://evil.example/page' },
    ] as Record<string, string>[]) {
      const res = await logout(h);
      expect(res.status, JSON.stringify(h)).toBe(403);
    }
    expect((await page()).status).toBe(200);
    // What a browser on a hospital PC sends for the console's own form over plain HTTP: no
    // Sec-Fetch-Site (no secure context), its real Origin and Referer — which the pages' policy allows.
    expect((await page()).headers.get('referrer-policy')).toBe('same-origin');
    // Framing refused for browsers that do not read CSP's frame-ancestors too (IE mode on hospital PCs).
    expect((await page()).headers.get('x-frame-options')).toBe('DENY');
    expect((await page()).headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect((await logout({ origin: 'http://front.local:8884', referer: 'http://front.local:8884/codes.html' })).status).toBe(303);
    expect((await page()).status).toBe(302);
  });
});

describe('single sign-on from the HIS', () => {
  const sso = (org: string, doctor: string) => {
    const now = Math.floor(Date.now() / 1000);
    return signToken(
      { org, doctor, doctorName: '李医生', patient: 'P1', iat: now, exp: now + 60, nonce: randomBytes(12).toString('base64url') },
      Buffer.from(ssoKey, 'utf8'),
    );
  };
  const open = (token: string) => web.app.request(`/sso?token=${encodeURIComponent(token)}`, { headers: host });

  it('gives the doctor a clinician’s console session beside the popup’s, the user made once and linked to the org and doctor', async () => {
    const o = uniqueOrg();
    const doctor = uname('D');
    const res = await open(sso(o, doctor));
    expect(res.status).toBe(303);
    expect(res.headers.getSetCookie().some((c) => c.startsWith('cdc_sso='))).toBe(true);
    const set = sessionCookie(res);
    expect(set).toMatch(/HttpOnly/);
    expect(set).toMatch(/SameSite=Strict/);
    const c = cookieOf(res)!;
    const users = await db.query<{ username: string; role: string; orgs: string; his_org: string; his_doctor: string; display_name: string }>(
      'SELECT username, role, orgs, his_org, his_doctor, display_name FROM console_user WHERE his_org = $1',
      [o],
    );
    expect(users.rows).toEqual([{ username: `${doctor}@${o}`, role: 'clinician', orgs: o, his_org: o, his_doctor: doctor, display_name: '李医生' }]);
    expect(await audits(`${doctor}@${o}`)).toEqual(['signin']);
    // A session the console knows (403, not the sign-in page), a clinician's.
    const codes = await web.app.request('/codes.html', { headers: { ...host, cookie: `cdc_console=${c}` } });
    expect(codes.status).toBe(403);
    expect(await codes.text()).toContain('临床医生');
    // The same doctor again: the same user.
    expect((await open(sso(o, doctor))).status).toBe(303);
    expect((await db.query('SELECT 1 FROM console_user WHERE his_org = $1', [o])).rowCount).toBe(1);
    // No password opens it.
    expect((await login(`${doctor}@${o}`, 'any-password-at-all')).status).toBe(401);
  });

  it('never replaces a session opened with a password in the same browser: a HIS link (anyone holding a token) opens the popup only', async () => {
    const u = uname('pw');
    await createUser(db, { username: u, role: 'public_health', password: PW }, 'test');
    const mine = cookieOf(await login(u))!;
    const res = await web.app.request(`/sso?token=${encodeURIComponent(sso(uniqueOrg(), uname('F')))}`, {
      headers: { ...host, cookie: `cdc_console=${mine}` },
    });
    expect(res.status).toBe(303);
    expect(res.headers.getSetCookie().some((c) => c.startsWith('cdc_sso='))).toBe(true);
    expect(cookieOf(res)).toBeUndefined();
    // Still the public-health doctor's session, with what it may see.
    expect((await web.app.request('/codes.html', { headers: { ...host, cookie: `cdc_console=${mine}` } })).status).toBe(200);
  });

  it('a HIS token never gives more than a clinician’s session, and a disabled user gets none (the popup still opens)', async () => {
    const o = uniqueOrg();
    const doctor = uname('E');
    await open(sso(o, doctor));
    const name = `${doctor}@${o}`;
    await setRole(db, name, 'admin', 'test');
    const c = cookieOf(await open(sso(o, doctor)))!;
    expect((await web.app.request('/users.html', { headers: { ...host, cookie: `cdc_console=${c}` } })).status).toBe(403);
    expect((await web.app.request('/codes.html', { headers: { ...host, cookie: `cdc_console=${c}` } })).status).toBe(403);
    await setDisabled(db, name, true, 'test');
    const off = await open(sso(o, doctor));
    expect(off.status).toBe(303);
    expect(cookieOf(off)).toBeUndefined();
    expect((await web.app.request('/users.html', { headers: { ...host, cookie: `cdc_console=${c}` } })).status).toBe(302);
    expect((await audits(name)).slice(-1)).toEqual(['signin-refused']);
  });

  it('audits each view of the popup in the console’s audit: the doctor as sso:<doctor>, the org and patient, nothing personal', async () => {
    const o = uniqueOrg();
    const doctor = uname('V');
    const ssoCookie = (res: Response) =>
      res.headers
        .getSetCookie()
        .find((c) => c.startsWith('cdc_sso='))!
        .split(';')[0]!;
    const views = async () =>
      (
        await db.query<{ username: string; action: string; detail: string; address: string | null }>(
          `SELECT username, action, detail, address FROM console_audit WHERE action IN ('view-popup', 'view-card-form') AND detail LIKE $1 ORDER BY audit_id`,
          [`%机构 ${o}，%`],
        )
      ).rows;
    const cookie = ssoCookie(await open(sso(o, doctor)));
    expect(await views()).toEqual([]);
    const popup = await web.app.request('/popup.html', { headers: { ...host, cookie } });
    expect(popup.status).toBe(200);
    expect(await popup.text()).toContain('传染病报告提醒');
    const one = await views();
    expect(one.map(({ username, action, detail }) => ({ username, action, detail }))).toEqual([
      { username: `sso:${doctor}`, action: 'view-popup', detail: `报告提醒（机构 ${o}，患者 P1）` },
    ]);
    // The doctor's name the token carried is not in it either.
    expect(one[0]!.detail).not.toContain('李医生');
    // Each view is one more row; no session, no page and no row.
    await web.app.request('/popup.html', { headers: { ...host, cookie } });
    expect((await views()).map((r) => r.action)).toEqual(['view-popup', 'view-popup']);
    expect((await web.app.request('/popup.html', { headers: host })).status).toBe(401);
    expect(await views()).toHaveLength(2);

    // A HIS doctor id longer than the audit's 64-character author: cut there, kept whole in the detail.
    const o2 = uniqueOrg();
    const long = `L${'d'.repeat(78)}9`;
    const now = Math.floor(Date.now() / 1000);
    const token = signToken(
      { org: o2, doctor: long, patient: 'P2', iat: now, exp: now + 60, nonce: randomBytes(12).toString('base64url') },
      Buffer.from(ssoKey, 'utf8'),
    );
    const c2 = ssoCookie(await open(token));
    expect((await web.app.request('/popup.html', { headers: { ...host, cookie: c2 } })).status).toBe(200);
    const row = await db.query<{ username: string; detail: string }>(
      `SELECT username, detail FROM console_audit WHERE action = 'view-popup' AND detail LIKE $1`,
      [`%机构 ${o2}，%`],
    );
    expect(row.rows).toEqual([{ username: `sso:${long}`.slice(0, 64), detail: `报告提醒（机构 ${o2}，患者 P2，医生 ${long}）` }]);
  });
});

describe('the users page (用户管理)', () => {
  it('is the admin’s: a clinician and a public-health doctor get the 403 page, no session the sign-in page', async () => {
    for (const role of ['clinician', 'public_health', 'operator'] as const) {
      const u = uname('r');
      await createUser(db, { username: u, role, password: PW }, 'test');
      const res = await web.app.request('/users.html', { headers: { ...host, cookie: `cdc_console=${cookieOf(await login(u))}` } });
      expect(res.status, role).toBe(403);
      const page = await res.text();
      expect(page).toContain('无权访问此页面');
      // The 403 page keeps the person's own navigation (never the admin's page) and the sign-out.
      expectConsoleFrame(page, role, '/users.html');
      expect(consoleFrame(page).links).not.toContain('/users.html');
      if (role === 'clinician') expect(consoleFrame(page).links).toEqual(['/status.html']);
    }
    const none = await web.app.request('/users.html', { headers: host });
    expect(none.status).toBe(302);
    expect(none.headers.get('location')).toBe('/login?next=%2Fusers.html');
  });

  it('lists the users and unlocks a locked one with the session’s token, the admin as the author', async () => {
    const admin = uname('adm');
    const locked = uname('lk');
    await createUser(db, { username: admin, role: 'admin', password: PW }, 'test');
    await createUser(db, { username: locked, role: 'public_health', password: PW, displayName: '王医生' }, 'test');
    for (let i = 0; i < 3; i++) await login(locked, 'wrong-password-x');
    expect((await login(locked)).status).toBe(423);
    const c = cookieOf(await login(admin))!;
    const html = await (await web.app.request('/users.html', { headers: { ...host, cookie: `cdc_console=${c}` } })).text();
    expect(html).toContain('用户管理');
    // In the console's frame: the admin's navigation — every page — with this one marked, the sign-out.
    expectConsoleFrame(html, 'admin', '/users.html');
    expect(consoleFrame(html).links).toHaveLength(NAV.length);
    expect(html).toContain('王医生');
    expect(html).toMatch(new RegExp(`${locked}[\\s\\S]*?锁定至`));
    const csrf = /name="_csrf" value="([^"]+)"/.exec(html)![1]!;
    const unlock = (fields: Record<string, string>) =>
      web.app.request('/users/unlock', {
        method: 'POST',
        headers: { ...host, cookie: `cdc_console=${c}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ username: locked, ...fields }).toString(),
      });
    expect((await unlock({})).status).toBe(403);
    expect((await login(locked)).status).toBe(423);
    expect((await unlock({ _csrf: csrf })).status).toBe(303);
    const by = await db.query<{ username: string }>(`SELECT username FROM console_audit WHERE action = 'unlocked' AND detail = $1`, [`${locked}: unlocked`]);
    expect(by.rows.map((r) => r.username)).toEqual([admin]);
    expect((await login(locked)).status).toBe(303);
  });
});
