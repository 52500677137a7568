// The runtime's own refusals on the console's port (docs/console.md "Errors", docs/runtime.md
// "Hospital ports"): a browser's page request gets a small Chinese page with the same status and
// Retry-After — opening again by itself only for a GET —, the console's scripts and every other port
// the JSON envelope. The fixture's `slow` function is the console port's root, max_inflight 2 on one
// replica, exec_timeout 1 s.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, startFixtureRuntime, until, type Started } from './helpers.js';

let s: Started;
let web: string;

beforeAll(async () => {
  s = await startFixtureRuntime();
  web = s.rt.portUrls.web!;
}, 60_000);

afterAll(async () => {
  await s?.rt.close();
});

/** What a browser sends when it opens a page (Chromium's navigation Accept). */
const BROWSER = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';
const FORM = { 'content-type': 'application/x-www-form-urlencoded', accept: BROWSER };

/** Runs `check` while both of the console function's slots are held by slow requests. */
async function whileFull<T>(check: () => Promise<T>): Promise<T> {
  const held = [0, 1].map(() => fetch(`${web}/hold?ms=900`).then((r) => r.arrayBuffer()));
  try {
    expect(await until(() => s.rt.replicas('slow').reduce((n, r) => n + r.inflight, 0) === 2, 2000)).toBe(true);
    return await check();
  } finally {
    await Promise.all(held);
  }
}

async function page(res: Response): Promise<string> {
  expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
  expect(res.headers.get('cache-control')).toBe('no-store');
  expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
  const text = await res.text();
  expect(text).toMatch(/^<!doctype html>/);
  expect(text).toContain('<meta charset="utf-8">');
  return text;
}

async function envelope(res: Response): Promise<Record<string, unknown>> {
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const a = (await res.json()) as Record<string, unknown>;
  expect(a).toMatchObject({ result: false, id: null, errorCode: expect.any(String) });
  return a;
}

describe("the runtime's own refusals on the console's port", () => {
  it('at max_inflight: a page to a browser opening a page (429, Retry-After, opens again after it), JSON to a script', async () => {
    const [opened, script, asJson, api] = await whileFull(() =>
      Promise.all([
        fetch(`${web}/sso?token=abc`, { headers: { accept: BROWSER } }),
        // The card form's script (functions/web/card-form.ts) asks for JSON, or names no type.
        fetch(`${web}/api/card/check`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }),
        fetch(`${web}/popup.html`, { headers: { accept: 'application/json' } }),
        // An API path is a page only for a page's form posted to it.
        fetch(`${web}/api/card/session`, { headers: { accept: BROWSER } }),
      ]),
    );
    expect(opened.status).toBe(429);
    expect(opened.headers.get('retry-after')).toBe('2');
    expect(opened.headers.get('x-openfaas-internal')).toBe('of-watchdog');
    const text = await page(opened);
    expect(text).toContain('系统繁忙，请稍后重试');
    expect(text).toContain('请约 2 秒后重试');
    expect(text).toContain('<meta http-equiv="refresh" content="2">');
    expect(text).toContain('concurrent request limit (max_inflight=2) reached');
    for (const res of [script, asJson, api]) {
      expect(res.status).toBe(429);
      expect(res.headers.get('retry-after')).toBe('2');
      expect(await envelope(res)).toMatchObject({ errorCode: 'RATE_LIMITED', errorName: '前置软件繁忙，请稍后重试' });
    }
  });

  it('at max_inflight: a page’s form posted (also to an API path) gets the page, never sent again by itself', async () => {
    const posts = await whileFull(() =>
      Promise.all(
        ['/popup/exclude', '/api/codes/mappings'].map((path) =>
          fetch(`${web}${path}`, { method: 'POST', headers: { ...FORM, referer: `${web}/popup.html?x=1` }, body: 'a=1' }),
        ),
      ),
    );
    for (const res of posts) {
      expect(res.status).toBe(429);
      expect(res.headers.get('retry-after')).toBe('2');
      const text = await page(res);
      expect(text).toContain('系统繁忙，请稍后重试');
      expect(text).toContain('刚才提交的内容未被处理，也不会自动重新提交');
      expect(text).not.toContain('http-equiv="refresh"');
      // The way back: the page the form was on (same host).
      expect(text).toContain('<a href="/popup.html?x=1">返回上一页</a>');
    }
  });

  it('a page past the exec timeout: 504 page, not opened again by itself; a post there may have been done', async () => {
    const get = await fetch(`${web}/report?ms=3000`, { headers: { accept: BROWSER } });
    expect(get.status).toBe(504);
    expect(get.headers.get('retry-after')).toBe('2');
    const text = await page(get);
    expect(text).toContain('前置软件处理超时，请稍后重试');
    expect(text).not.toContain('http-equiv="refresh"');
    expect(text).toContain('重新打开本页');
    const post = await fetch(`${web}/card?ms=3000`, { method: 'POST', headers: FORM, body: 'a=1' });
    expect(post.status).toBe(504);
    expect(await page(post)).toContain('刚才的操作可能已经完成，也可能没有完成');
  });

  it('a form over the body limit: 413 page before the body is read', async () => {
    const status = await new Promise<{ status: number; type: string; text: string }>((done, fail) => {
      const u = new URL(web);
      const req = request(
        { host: u.hostname, port: u.port, method: 'POST', path: '/card', headers: { ...FORM, 'content-length': String(9 * 1024 * 1024) } },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => done({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), text }));
        },
      );
      req.on('error', fail);
      req.end(Buffer.alloc(9 * 1024 * 1024, 0x61));
    });
    expect(status.status).toBe(413);
    expect(status.type).toBe('text/html; charset=utf-8');
    expect(status.text).toContain('提交的内容过大');
    expect(status.text).toContain('刚才提交的内容过大，未被处理');
  });

  it('a path it does not serve: a 404 page', async () => {
    const res = await fetch(`${web}/function/echo/x`, { headers: { accept: BROWSER } });
    expect(res.status).toBe(404);
    const text = await page(res);
    expect(text).toContain('页面不存在');
    expect(text).toContain('function echo is not served on this port');
  });

  it('the other hospital ports keep the JSON envelope for a browser too', async () => {
    for (const url of [`${s.rt.portUrls.data}/hclient/emr/receive/emrNoSuchThing`, `${s.rt.portUrls.config}/bundles.html`]) {
      const res = await fetch(url, { headers: { accept: BROWSER } });
      expect(res.status, url).toBeGreaterThanOrEqual(400);
      expect(res.headers.get('content-type'), url).toMatch(/^application\/json/);
      await res.arrayBuffer();
    }
  });

  // Last: it takes the console's function away.
  it('its function not running (a start, a redeploy): a 503 page opening again after Retry-After, JSON to a script', async () => {
    const del = await fetch(`${s.rt.gatewayUrl}/system/functions`, {
      method: 'DELETE',
      headers: { ...auth(s.rt), 'content-type': 'application/json' },
      body: JSON.stringify({ functionName: 'slow' }),
    });
    expect(del.status).toBe(202);
    const res = await fetch(`${web}/popup.html`, { headers: { accept: BROWSER } });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    const text = await page(res);
    expect(text).toContain('系统繁忙，请稍后重试');
    expect(text).toContain('<meta http-equiv="refresh" content="5">');
    const script = await fetch(`${web}/api/card/session`, { headers: { accept: 'application/json' } });
    expect(script.status).toBe(503);
    expect(await envelope(script)).toMatchObject({ errorCode: 'UNAVAILABLE', error: 'no_function' });
  });
});
