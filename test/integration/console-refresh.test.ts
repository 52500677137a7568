// The automatic reload of the dashboard and 数据上报 is not the person's activity (docs/console.md
// "Sign-in, sessions, lockout"): with CONSOLE_IDLE_MIN at 2, a session left to the page's meta refresh
// alone ends 2 minutes after the person's last own request; a request of the person (a click, a link)
// extends it. The web function in process on the real database; time is moved by moving the session's
// last_seen_at back, as the idle check reads it.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { consoleConcern, sessionOf } from '../../shared/console/index.js';
import { parseConcern } from '../../shared/config/index.js';
import { signedInToWeb } from '../setup/console-session.js';
import { webInProcess } from '../setup/web-function.js';

process.env.CONSOLE_IDLE_MIN = '2';
const { web, db, host } = await webInProcess('console-refresh');

const hash = (token: string) => createHash('sha256').update(token).digest('hex');
/** Moves the session's last activity `s` seconds further back. */
const elapse = (token: string, s: number) =>
  db.query(`UPDATE console_session SET last_seen_at = last_seen_at - $2 * interval '1 second' WHERE token_hash = $1`, [hash(token), s]);
/** Seconds since the session's last activity. */
const idleFor = async (token: string) =>
  Number(
    (await db.query<{ s: string }>('SELECT extract(epoch FROM now() - last_seen_at) AS s FROM console_session WHERE token_hash = $1', [hash(token)])).rows[0]!
      .s,
  );
const get = (path: string, token: string) => web.app.request(path, { headers: { ...host, accept: 'text/html', cookie: `cdc_console=${token}` } });
/** The URL the page's meta refresh asks for, as the browser reads the attribute. */
const refreshUrl = async (res: Response) => {
  const m = /<meta http-equiv="refresh" content="60; url=([^"]+)">/.exec(await res.text());
  return m ? m[1]!.replaceAll('&amp;', '&') : null;
};
const signIn = () => signedInToWeb(web, db, { role: 'operator', host, next: '/dashboard.html' });

describe('the automatic reload of a page', () => {
  it('asks for the page’s own URL with the marker _refresh=auto (dashboard, 数据上报 with its query)', async () => {
    const token = await signIn();
    expect(await refreshUrl(await get('/dashboard.html', token))).toBe('/dashboard.html?_refresh=auto');
    expect(await refreshUrl(await get('/delivery.html?msg=%E5%B7%B2%E9%87%8D%E5%8F%91', token))).toBe(
      `/delivery.html?msg=${encodeURIComponent('已重发')}&_refresh=auto`,
    );
    // A reloaded page keeps reloading itself with the one marker.
    expect(await refreshUrl(await get('/dashboard.html?_refresh=auto', token))).toBe('/dashboard.html?_refresh=auto');
  });

  it('alone does not keep the session open: it ends CONSOLE_IDLE_MIN after the person’s last request, and the sign-in returns to the page', async () => {
    const token = await signIn();
    const url = (await refreshUrl(await get('/dashboard.html', token)))!;
    for (const s of [50, 50]) {
      await elapse(token, s);
      expect((await get(url, token)).status).toBe(200);
    }
    // Not touched by the reloads: 100 s since the person's request.
    expect(await idleFor(token)).toBeGreaterThanOrEqual(100);
    await elapse(token, 25);
    const ended = await get(url, token);
    expect(ended.status).toBe(302);
    expect(ended.headers.get('location')).toBe(`/login?next=${encodeURIComponent('/dashboard.html')}`);
    expect((await get('/dashboard.html', token)).status).toBe(302);
  });

  it('a request of the person (a page without the marker) extends the session; reloads after it then run for CONSOLE_IDLE_MIN', async () => {
    const token = await signIn();
    await elapse(token, 100);
    expect((await get('/delivery.html', token)).status).toBe(200);
    expect(await idleFor(token)).toBeLessThan(5);
    for (const s of [50, 50]) {
      await elapse(token, s);
      expect((await get('/delivery.html?_refresh=auto', token)).status).toBe(200);
    }
    await elapse(token, 25);
    expect((await get('/delivery.html?_refresh=auto', token)).status).toBe(302);
  });
});

describe('运行状态 (/status.html), open to all', () => {
  it('reloads itself marked, which does not extend a signed-in session; opening it by a click does', async () => {
    const token = await signIn();
    const first = await get('/status.html', token);
    expect(/<meta http-equiv="refresh" content="30; url=([^"]+)">/.exec(await first.text())?.[1]).toBe('/status.html?_refresh=auto');
    await elapse(token, 100);
    await get('/status.html?_refresh=auto', token);
    expect(await idleFor(token)).toBeGreaterThanOrEqual(100);
    await get('/status.html', token);
    expect(await idleFor(token)).toBeLessThan(5);
  });
});

describe('the idle check with CONSOLE_IDLE_MIN=1', () => {
  it('touches a session used within the minute, so that a person at work is not signed out every minute', async () => {
    const token = await signIn();
    const one = { ...parseConcern(consoleConcern), idleMs: 60_000 };
    await elapse(token, 40);
    expect(await sessionOf(db as never, token, one)).not.toBeNull();
    expect(await idleFor(token)).toBeLessThan(5);
    await elapse(token, 40);
    expect(await sessionOf(db as never, token, one)).not.toBeNull();
  });
});
