// People on the console (shared/console, functions/web/people.ts; docs/console.md), on the real
// database: scrypt hashes, sign-in and its audit, lockout after failed attempts, idle and absolute
// expiry, sign-out, a password reset ending sessions, roles (a clinician cannot open the mapping
// page), no session → the sign-in page, a change without the session's CSRF token refused, the Host
// allow-list, and bin/cdc-users with its password on stdin.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, testDb, uniqueOrg } from '../setup/db.js';
import { createUser, hashPassword, resetPassword, verifyPassword } from '../../shared/console/index.js';

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
async function login(username: string, password = PW): Promise<Response> {
  return web.app.request('/login', {
    method: 'POST',
    headers: { ...host, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username, password, next: '/codes.html' }).toString(),
  });
}
const cookieOf = (res: Response) => /cdc_console=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')?.[1];
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
    const set = res.headers.get('set-cookie')!;
    expect(set).toMatch(/HttpOnly/);
    expect(set).toMatch(/SameSite=Strict/);
    expect(set).not.toMatch(/Secure/);
    const secure = await web.app.request('/login', {
      method: 'POST',
      headers: { ...host, 'x-forwarded-proto': 'https', 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: u, password: PW }).toString(),
    });
    expect(secure.headers.get('set-cookie')).toMatch(/Secure/);
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
    expect(await third.text()).toContain('账号已锁定');
    expect((await login(u)).status).toBe(423);
    expect(await audits(u)).toEqual(['signin-failed', 'signin-failed', 'lockout', 'signin-refused']);
    await db.query(`UPDATE console_user SET locked_until = now() - interval '1 second' WHERE username = $1`, [u]);
    expect((await login(u)).status).toBe(303);
  });

  it('an unknown user and a wrong password get the same answer', async () => {
    const a = await login(uname('nobody'), 'whatever-password');
    expect(a.status).toBe(401);
    expect(await a.text()).toContain('用户名或密码错误');
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
