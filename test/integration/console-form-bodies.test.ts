// A form body the parser cannot read — a multipart body cut off before its closing boundary, a
// multipart Content-Type without a boundary — is the sender's to correct: 400 naming the problem
// (rule invalidForm), as a form with broken %-escapes is (docs/console.md "Changes"), on the
// anonymous sign-in posts (/login, /sso) and on every signed-in form route alike, with a page for a
// browser and the JSON answer for a script; logged as a warning without a stack, never as an
// unhandled error (500).
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createUser } from '../../shared/console/index.js';
import { consoleFrame, signedInToWeb } from '../setup/console-session.js';
import { webInProcess } from '../setup/web-function.js';

const { web, db, host } = await webInProcess('form-bodies');

/** The malformed bodies, each with its Content-Type. */
const BROKEN = {
  cut: { type: 'multipart/form-data; boundary=XXX', body: '--XXX\r\nContent-Disposition: form-data; name="token"\r\n\r\nabc' },
  noBoundary: { type: 'multipart/form-data', body: 'x' },
  noName: { type: 'multipart/form-data; boundary=XXX', body: '--XXX\r\nContent-Disposition: form-data\r\n\r\nabc\r\n--XXX--\r\n' },
} as const;

/** The log lines the web function writes while `run` runs. */
async function logged<T>(run: () => T | Promise<T>): Promise<{ out: Awaited<T>; lines: Array<Record<string, unknown>> }> {
  const chunks: string[] = [];
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    chunks.push(String(chunk));
    return true;
  });
  try {
    const out = await run();
    const lines = chunks
      .join('')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    return { out, lines };
  } finally {
    write.mockRestore();
  }
}
afterEach(() => {
  vi.restoreAllMocks();
});

/** The answer is the 400 of an unreadable form, and the log holds a warning without a stack, no error. */
async function expectRefused(res: Response, lines: Array<Record<string, unknown>>, label: string) {
  expect(res.status, label).toBe(400);
  const a = (await res.json()) as { result: boolean; errorCode: string; desc: string; errors: Array<{ field: string; rule: string }> };
  expect(a, label).toMatchObject({ result: false, errorCode: 'BAD_REQUEST', errors: [{ field: '(body)', rule: 'invalidForm' }] });
  expect(a.desc, label).toMatch(/^表单无法读取，请重新提交 \(the form body cannot be parsed: .+\)$/);
  expect(
    lines.filter((l) => l.level === 'error'),
    label,
  ).toEqual([]);
  const warned = lines.filter((l) => l.msg === 'unreadable form body');
  expect(warned, label).toHaveLength(1);
  expect(warned[0], label).not.toHaveProperty('stack');
}

describe('a form body that cannot be read', () => {
  it('is refused 400 on the anonymous posts, /login (with its form cookie) and /sso, before any sign-in', async () => {
    const form = await web.app.request('/login', { headers: host });
    const loginCookie = /cdc_login=([^;]+)/.exec(form.headers.get('set-cookie') ?? '')![1]!;
    for (const [name, b] of Object.entries(BROKEN)) {
      for (const [path, headers] of [
        ['/sso', {}],
        ['/login', { cookie: `cdc_login=${loginCookie}` }],
      ] as const) {
        const { out, lines } = await logged(() =>
          web.app.request(path, { method: 'POST', headers: { ...host, ...headers, 'content-type': b.type }, body: b.body }),
        );
        await expectRefused(out, lines, `${path} ${name}`);
      }
    }
  });

  it('names the problem: the boundary missing from the Content-Type, the body cut off', async () => {
    const none = await web.app.request('/sso', { method: 'POST', headers: { ...host, 'content-type': BROKEN.noBoundary.type }, body: 'x' });
    expect(((await none.json()) as { desc: string }).desc).toContain('missing boundary in content-type header');
    const cut = await web.app.request('/sso', { method: 'POST', headers: { ...host, 'content-type': BROKEN.cut.type }, body: BROKEN.cut.body });
    expect(((await cut.json()) as { desc: string }).desc).toContain('expected boundary after body');
  });

  it('is a page saying why for a browser (Accept: text/html), as any refused form post is', async () => {
    const res = await web.app.request('/sso', {
      method: 'POST',
      headers: { ...host, accept: 'text/html', 'content-type': BROKEN.cut.type },
      body: BROKEN.cut.body,
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await res.text()).toContain('表单无法读取，请重新提交');
  });

  describe('on the signed-in form routes', () => {
    let cookie: string;
    let csrf: string;
    beforeAll(async () => {
      cookie = await signedInToWeb(web, db, { role: 'admin', host, next: '/status.html' });
      const page = await web.app.request('/status.html', { headers: { ...host, cookie: `cdc_console=${cookie}` } });
      csrf = consoleFrame(await page.text()).signOutCsrf!;
    });
    const ROUTES = [
      '/users/unlock',
      '/acceptance/run',
      '/delivery/retry',
      '/delivery/replay',
      '/compare.html',
      '/cases.html',
      '/cases/1/verify',
      '/cases/1/reveal',
      '/cases/1/assign',
      '/api/codes/mappings/import',
      '/api/codes/mappings',
    ];

    it('is refused 400 whether the CSRF token is looked for in the body or comes in its header', async () => {
      for (const path of ROUTES) {
        for (const [how, extra] of [
          ['token in the body', {}],
          ['token in X-CSRF-Token', { 'x-csrf-token': csrf }],
        ] as const) {
          for (const [name, b] of Object.entries(BROKEN)) {
            const { out, lines } = await logged(() =>
              web.app.request(path, {
                method: 'POST',
                headers: { ...host, ...extra, cookie: `cdc_console=${cookie}`, 'content-type': b.type },
                body: b.body,
              }),
            );
            await expectRefused(out, lines, `${path} ${how} ${name}`);
          }
        }
      }
    });

    it('a well-formed multipart form still goes through (the session is kept)', async () => {
      const username = `clin${Math.random().toString(36).slice(2, 9)}`;
      await createUser(db as never, { username, role: 'clinician', password: 'a-long-test-password' }, 'test');
      const fd = new FormData();
      fd.set('_csrf', csrf);
      fd.set('username', username);
      const res = await web.app.request('/users/unlock', { method: 'POST', headers: { ...host, cookie: `cdc_console=${cookie}` }, body: fd });
      expect(res.status).toBe(303);
    });
  });
});
