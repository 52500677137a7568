// The console's sign-in through the running front (stack.yml's web function on its port, plain HTTP
// as on a hospital LAN): bin/cdc-users makes the first admin with the password on stdin, the admin
// signs in on the web port (a sign-in posted by another site is refused), a forged cross-site POST
// carrying the cookie is refused, the same change with the session's token goes through, a doctor
// arriving by the HIS's single sign-on gets a clinician's session, and a Host that is not the
// console's is refused.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, uniqueOrg } from '../setup/db.js';
import { startStackRuntime, type StackRuntime } from '../setup/stack-runtime.js';
import { signToken } from '../../shared/sso/token.js';

let front: StackRuntime;
let web: string;
const admin = `adm${Math.random().toString(36).slice(2, 8)}`;
const password = 'first-admin-password';

beforeAll(async () => {
  front = await startStackRuntime('console-port');
  web = front.rt.portUrls.web!;
}, 120_000);
afterAll(async () => {
  await front?.close();
});

/** The sign-in form's token and the cookie that goes with it, as a browser gets them. */
async function signInForm(path = '/login'): Promise<{ token: string; formCookie: string }> {
  const form = await fetch(`${web}${path}`);
  const token = /name="_csrf" value="([^"]+)"/.exec(await form.text())![1]!;
  const formCookie = /cdc_login=[^;]+/.exec(form.headers.get('set-cookie') ?? '')![0];
  return { token, formCookie };
}

describe('console sign-in on the web port', () => {
  it('bin/cdc-users creates the first admin from stdin, never from the command line', () => {
    const r = spawnSync('bin/cdc-users', ['create-admin', '--username', admin], {
      input: `${password}\n`,
      env: { ...process.env, DATABASE_URL: databaseUrl() },
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`user ${admin} created (管理员)`);
    const list = spawnSync('bin/cdc-users', ['list'], { env: { ...process.env, DATABASE_URL: databaseUrl() }, encoding: 'utf8' });
    expect(list.stdout).toMatch(new RegExp(`${admin}\\s+admin\\s+\\*\\s+active`));
    const bad = spawnSync('bin/cdc-users', ['create-admin', '--username', `${admin}2`], {
      input: 'short\n',
      env: { ...process.env, DATABASE_URL: databaseUrl() },
      encoding: 'utf8',
    });
    expect(bad.status).toBe(1);
  });

  it('signs in over plain HTTP; a forged cross-site POST with the cookie is refused, the real one goes through', async () => {
    const signIn = (headers: Record<string, string>, fields: Record<string, string>) =>
      fetch(`${web}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: new URLSearchParams({ username: admin, password, next: '/codes.html', ...fields }),
      });
    // Another site's form posting the right password: no form token, no form cookie — no session.
    const forged = await signIn({ origin: 'http://evil.example' }, {});
    expect(forged.status).toBe(403);
    expect(forged.headers.getSetCookie().some((c) => c.startsWith('cdc_console='))).toBe(false);
    // The sign-in page's form, as a browser posts it.
    const { token, formCookie } = await signInForm('/login?next=/codes.html');
    const res = await signIn({ cookie: formCookie }, { _csrf: token });
    expect(res.status).toBe(303);
    const cookie = /cdc_console=[^;]+/.exec(res.headers.get('set-cookie') ?? '')![0];
    const org = uniqueOrg();
    const change = (extra: Record<string, string>, headers: Record<string, string> = {}) =>
      fetch(`${web}/api/codes/mappings`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: new URLSearchParams({ org, domain: 'sex', localCode: 'Z', nationalCode: '9', equivalence: 'equal', ...extra }),
      });
    // What a page on another site could make a browser send: the cookie, no token.
    expect((await change({}, { origin: 'http://evil.example' })).status).toBe(403);
    expect((await change({})).status).toBe(403);
    const page = await (await fetch(`${web}/codes.html?org=${org}`, { headers: { cookie } })).text();
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page)![1]!;
    expect((await change({ _csrf: csrf })).status).toBe(303);
  });

  it('a doctor opening the popup by single sign-on gets a clinician’s console session', async () => {
    const key = Buffer.from(readFileSync(join(front.dir, 'secrets', 'his-sso-key'), 'utf8').trim(), 'utf8');
    const now = Math.floor(Date.now() / 1000);
    const org = uniqueOrg();
    const token = signToken({ org, doctor: 'D0042', patient: 'P42', iat: now, exp: now + 60, nonce: randomBytes(12).toString('base64url') }, key);
    const res = await fetch(`${web}/sso?token=${encodeURIComponent(token)}`, { redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/popup.html');
    const cookie = /cdc_console=[^;]+/.exec(res.headers.getSetCookie().find((c) => c.startsWith('cdc_console=')) ?? '')![0];
    const users = spawnSync('bin/cdc-users', ['list'], { env: { ...process.env, DATABASE_URL: databaseUrl() }, encoding: 'utf8' });
    expect(users.stdout).toMatch(new RegExp(`D0042@${org}\\s+clinician\\s+${org}\\s+active\\s+HIS single sign-on`));
    // Known to the console (not sent to sign in), and a clinician's: the admin's page is refused.
    const page = await fetch(`${web}/users.html`, { headers: { cookie }, redirect: 'manual' });
    expect(page.status).toBe(403);
    expect(await page.text()).toContain('临床医生');
  });

  it('refuses the popup’s and the card form’s posts from another site before anything else (the HIS’s own /sso still arrives)', async () => {
    for (const [path, headers] of [
      ['/card', { 'sec-fetch-site': 'cross-site' }],
      ['/api/card/check', { origin: 'http://evil.example' }],
      ['/popup/exclude', { origin: 'null' }],
      ['/sso/logout', { referer: 'http://evil.example/page' }],
    ] as const) {
      const res = await fetch(`${web}${path}`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: 'csrf=x',
      });
      expect(res.status, path).toBe(403);
      expect(await res.text(), path).toContain('cross-site request refused');
    }
  });

  it('logs a single sign-on without the doctor id in full when it is an ID number', async () => {
    const key = Buffer.from(readFileSync(join(front.dir, 'secrets', 'his-sso-key'), 'utf8').trim(), 'utf8');
    const now = Math.floor(Date.now() / 1000);
    const doctor = '11010519491231002X';
    const token = signToken({ org: uniqueOrg(), doctor, patient: 'P43', iat: now, exp: now + 60, nonce: randomBytes(12).toString('base64url') }, key);
    expect((await fetch(`${web}/sso?token=${encodeURIComponent(token)}`, { redirect: 'manual' })).status).toBe(303);
    const logged = async () => readFileSync(join(front.dir, 'logs', 'web.log'), 'utf8');
    for (let i = 0; i < 50 && !(await logged()).includes('110*************2X'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await logged()).toContain('110*************2X');
    expect(await logged()).not.toContain(doctor);
  });

  it('answers 421 to a Host that is not on WEB_ALLOWED_HOSTS', async () => {
    const u = new URL(web);
    const status = await new Promise<number>((ok, fail) => {
      const req = request({ host: u.hostname, port: u.port, path: '/login', headers: { host: 'rebound.example' } }, (res) => {
        res.resume();
        ok(res.statusCode!);
      });
      req.on('error', fail);
      req.end();
    });
    expect(status).toBe(421);
  });

  it('answers 421 to a request with an empty Host, or none (HTTP/1.0), not taking the replica’s own name for it; 400 to two Hosts', async () => {
    const u = new URL(web);
    const raw = (head: string) =>
      new Promise<string>((ok, fail) => {
        // Written, not ended: the answer comes before the front closes the connection.
        const s = connect(Number(u.port), u.hostname, () => s.write(`${head}\r\n\r\n`));
        let got = '';
        s.on('data', (d: Buffer) => (got += d.toString()));
        s.on('close', () => ok(got));
        s.on('error', fail);
      });
    expect(await raw('GET /login HTTP/1.1\r\nHost:\r\nConnection: close')).toMatch(/^HTTP\/1\.1 421 /);
    expect(await raw('GET /login HTTP/1.0')).toMatch(/^HTTP\/1\.1 421 /);
    // Two Host headers, its own name first or second: which one a proxy in front used is unknown.
    for (const hosts of [
      [u.host, 'evil.example'],
      ['evil.example', u.host],
    ])
      expect(await raw(`GET /login HTTP/1.1\r\nHost: ${hosts[0]}\r\nHost: ${hosts[1]}\r\nConnection: close`)).toMatch(/^HTTP\/1\.1 400 /);
    // The console's own name still gets the page.
    expect(await raw(`GET /login HTTP/1.1\r\nHost: ${u.host}\r\nConnection: close`)).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('takes a sign-in or a single sign-on of a few short fields: a large body 413 before it is read, a token sent as a file 401', async () => {
    const { token, formCookie } = await signInForm();
    const pad = 'x'.repeat(200_000);
    // The right password, the form's token and cookie — and 200 kB more: refused, no session.
    const big = await fetch(`${web}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: formCookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: admin, password, next: '/codes.html', _csrf: token, pad }),
    });
    expect(big.status).toBe(413);
    expect(big.headers.getSetCookie().some((c) => c.startsWith('cdc_console='))).toBe(false);
    const sso = await fetch(`${web}/sso`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `token=${pad}`,
    });
    expect(sso.status).toBe(413);
    const file = new FormData();
    file.append('token', new Blob(['v1.a.b']), 'token.txt');
    const asFile = await fetch(`${web}/sso`, { method: 'POST', redirect: 'manual', body: file });
    expect(asFile.status).toBe(401);
    // The same, chunked: cut off at the limit (the replica then closes that connection:
    // test/runtime/early-answer.test.ts).
    const chunked = (size: number) =>
      new ReadableStream({
        start(ctl) {
          for (let i = 0; i < size / 1000; i++) ctl.enqueue(new TextEncoder().encode('x'.repeat(1000)));
          ctl.close();
        },
      });
    for (let i = 0; i < 3; i++) {
      const cut = await fetch(`${web}/sso`, {
        method: 'POST',
        body: chunked(200_000),
        duplex: 'half',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      } as RequestInit);
      expect(cut.status).toBe(413);
    }
  });

  it('refuses a form body it cannot read (multipart cut off, or without its boundary) 400, before sign-in and after, logging no error', async () => {
    const cut = { 'content-type': 'multipart/form-data; boundary=XXX' };
    const cutBody = (name: string) => `--XXX\r\nContent-Disposition: form-data; name="${name}"\r\n\r\nab`;
    const { token, formCookie } = await signInForm();
    const signedIn = await fetch(`${web}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: formCookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: admin, password, next: '/users.html', _csrf: token }),
    });
    expect(signedIn.status).toBe(303);
    const session = /cdc_console=[^;]+/.exec(signedIn.headers.get('set-cookie') ?? '')![0];
    const { formCookie: another } = await signInForm();
    for (const [label, path, headers, body] of [
      ['/sso cut off', '/sso', cut, cutBody('token')],
      ['/sso without a boundary', '/sso', { 'content-type': 'multipart/form-data' }, 'x'],
      ['/login cut off, with the form cookie', '/login', { ...cut, cookie: another }, cutBody('_csrf')],
      ['/users/unlock cut off, signed in', '/users/unlock', { ...cut, cookie: session }, cutBody('_csrf')],
    ] as const) {
      const res = await fetch(`${web}${path}`, { method: 'POST', redirect: 'manual', headers, body });
      expect(res.status, label).toBe(400);
      expect(await res.json(), label).toMatchObject({ result: false, errorCode: 'BAD_REQUEST', errors: [{ field: '(body)', rule: 'invalidForm' }] });
    }
    // A browser gets the console's error page saying why.
    const page = await fetch(`${web}/sso`, { method: 'POST', headers: { ...cut, accept: 'text/html' }, body: cutBody('token') });
    expect(page.status).toBe(400);
    expect(await page.text()).toContain('表单无法读取，请重新提交');
    const lines = () =>
      readFileSync(join(front.dir, 'logs', 'web.log'), 'utf8')
        .split('\n')
        .filter((l) => l.includes('unreadable form body') || l.includes('Failed to parse body'));
    for (let i = 0; i < 50 && lines().length < 5; i++) await new Promise((r) => setTimeout(r, 100));
    expect(lines()).toHaveLength(5);
    for (const l of lines()) {
      expect(l).toContain('"level":"warn"');
      expect(l).not.toContain('"stack"');
    }
  });

  it('refuses 400 an audit day its date arithmetic cannot carry (9999-12-31), not 500', async () => {
    const { token, formCookie } = await signInForm();
    const signedIn = await fetch(`${web}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: formCookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: admin, password, next: '/audit.html', _csrf: token }),
    });
    const cookie = /cdc_console=[^;]+/.exec(signedIn.headers.get('set-cookie') ?? '')![0];
    for (const q of ['to=9999-12-31', 'from=9999-12-31']) {
      const res = await fetch(`${web}/audit.html?${q}`, { headers: { cookie, accept: 'text/html' } });
      expect(res.status, q).toBe(400);
      expect(await res.text(), q).toContain('日期超出范围');
    }
    expect((await fetch(`${web}/audit.html?to=9999-12-30`, { headers: { cookie } })).status).toBe(200);
  });

  it('at a busy moment (the web function at its max_inflight) a doctor’s SSO link is a page saying so, which opens again; scripts keep the JSON', async () => {
    const key = Buffer.from(readFileSync(join(front.dir, 'secrets', 'his-sso-key'), 'utf8').trim(), 'utf8');
    const now = Math.floor(Date.now() / 1000);
    const token = signToken({ org: uniqueOrg(), doctor: 'D0077', patient: 'P77', iat: now, exp: now + 60, nonce: randomBytes(12).toString('base64url') }, key);
    const link = `${web}/sso?token=${encodeURIComponent(token)}`;
    const browser = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';
    // The web function's replicas stopped: the pages sent to them hold every slot (16 each) until
    // they are let go on.
    const pids = front.rt.replicas('web').flatMap((r) => (r.pid ? [r.pid] : []));
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) process.kill(pid, 'SIGSTOP');
    const held: Promise<number>[] = [];
    try {
      for (let i = 0; i < 16 * pids.length; i++) held.push(fetch(`${web}/status.html`).then(async (r) => (await r.arrayBuffer(), r.status)));
      const inflight = () => front.rt.replicas('web').reduce((n, r) => n + r.inflight, 0);
      for (let i = 0; i < 100 && inflight() < 16 * pids.length; i++) await new Promise((r) => setTimeout(r, 50));
      expect(inflight()).toBe(16 * pids.length);
      const opened = await fetch(link, { headers: { accept: browser }, redirect: 'manual' });
      expect(opened.status).toBe(429);
      expect(opened.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(opened.headers.get('retry-after')).toBe('2');
      expect(opened.headers.get('cache-control')).toBe('no-store');
      const page = await opened.text();
      expect(page).toContain('系统繁忙，请稍后重试');
      expect(page).toContain('<meta http-equiv="refresh" content="2">');
      // The card form's script asks for JSON: it gets the envelope it reads.
      const script = await fetch(`${web}/api/card/session`, { headers: { accept: 'application/json' } });
      expect(script.status).toBe(429);
      expect(await script.json()).toMatchObject({ result: false, errorCode: 'RATE_LIMITED' });
    } finally {
      for (const pid of pids) process.kill(pid, 'SIGCONT');
    }
    expect(await Promise.all(held)).toEqual(held.map(() => 200));
    // The page's refresh: the same link, its token not spent by the refusal, signs the doctor in.
    const again = await fetch(link, { headers: { accept: browser }, redirect: 'manual' });
    expect(again.status).toBe(303);
    expect(again.headers.get('location')).toBe('/popup.html');
  });

  // Last: it leaves this front's loopback address refused for the lockout's time.
  it('refuses an address after 30 failed sign-ins, whatever the names, before any password is checked (429), even the right one', async () => {
    const attempt = async (username: string, pw: string) => {
      const { token, formCookie } = await signInForm();
      return fetch(`${web}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie: formCookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ username, password: pw, next: '/codes.html', _csrf: token }),
      });
    };
    // Thirty names, one wrong password each: no name reaches its own lockout.
    for (let i = 0; i < 30; i++) expect((await attempt(`spray${i}`, 'wrong-password-x')).status).toBe(401);
    const refused = await attempt(admin, password);
    expect(refused.status).toBe(429);
    expect(await refused.text()).toContain('本机登录失败次数过多');
    expect(refused.headers.getSetCookie().some((c) => c.startsWith('cdc_console='))).toBe(false);
    // A claim of another address, from a relay that is not a trusted proxy (a same-server nginx not in
    // HIS_TRUSTED_PROXIES), is not believed: the sign-in counts as the relay's, which is refused too —
    // not as an unknown address no limit applies to (docs/console.md "Sign-in, sessions, lockout").
    const { token, formCookie } = await signInForm();
    const claimed = await fetch(`${web}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: formCookie, 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': '203.0.113.9' },
      body: new URLSearchParams({ username: admin, password, next: '/codes.html', _csrf: token }),
    });
    expect(claimed.status).toBe(429);
  });
});
