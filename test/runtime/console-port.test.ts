// The console's sign-in through the running front (stack.yml's web function on its port, plain HTTP
// as on a hospital LAN): bin/cdc-users makes the first admin with the password on stdin, the admin
// signs in on the web port, a forged cross-site POST carrying the cookie is refused, the same change
// with the session's token goes through, and a Host that is not the console's is refused.
import { spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, uniqueOrg } from '../setup/db.js';
import { startStackRuntime, type StackRuntime } from '../setup/stack-runtime.js';

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
    const res = await fetch(`${web}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: admin, password, next: '/codes.html' }),
    });
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
});
