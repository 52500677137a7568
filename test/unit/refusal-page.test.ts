// The runtime's own refusal as a page on the console's port (infra/runtime/refusal-page.ts,
// docs/console.md "Errors"): which requests are a browser's page requests (the console function's
// rule, shared/http/page-request.ts), what the page says for each status and method, and that
// nothing of the request reaches its markup unescaped.
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { answerShape, errorAnswer } from '../../infra/runtime/proxy.js';
import { pageRequest, refusalPage } from '../../infra/runtime/refusal-page.js';
import { isPageRequest } from '../../shared/http/page-request.js';

const BROWSER = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
const req = (url: string, headers: Record<string, string>, method = 'GET') => ({ url, method, headers }) as unknown as IncomingMessage;

describe('a browser’s page request', () => {
  it('asks for HTML, and is not an API call unless a page’s form posted there', () => {
    const form = 'application/x-www-form-urlencoded';
    expect(isPageRequest({ accept: BROWSER, contentType: undefined, path: '/popup.html' })).toBe(true);
    expect(isPageRequest({ accept: 'text/html, application/xhtml+xml, image/jxr, */*', contentType: undefined, path: '/sso' })).toBe(true);
    expect(isPageRequest({ accept: BROWSER, contentType: form, path: '/api/codes/mappings' })).toBe(true);
    expect(isPageRequest({ accept: BROWSER, contentType: 'multipart/form-data; boundary=x', path: '/api/codes/import' })).toBe(true);
    expect(isPageRequest({ accept: BROWSER, contentType: undefined, path: '/api/card/session' })).toBe(false);
    expect(isPageRequest({ accept: 'application/json', contentType: undefined, path: '/popup.html' })).toBe(false);
    expect(isPageRequest({ accept: '*/*', contentType: 'application/json', path: '/api/card/check' })).toBe(false);
    expect(isPageRequest({ accept: undefined, contentType: form, path: '/login' })).toBe(false);
  });

  it('on the console’s port only; the query is not the path; the way back only to the same host', () => {
    const popup = req('/popup.html?x=/api/', { accept: BROWSER, host: 'front.lan:8884', referer: 'http://front.lan:8884/cases.html?p=1' });
    expect(answerShape(popup, 'console')).toEqual({ method: 'GET', back: '/cases.html?p=1' });
    for (const port of ['his', 'config', 'plain'] as const) expect(answerShape(popup, port)).toBe(port);
    expect(answerShape(req('/popup.html', { accept: 'application/json' }), 'console')).toBe('console');
    for (const referer of ['http://evil.example/cases.html', 'http://front.lan:8884//evil.example/x', 'not a url'])
      expect(pageRequest(req('/x', { accept: BROWSER, host: 'front.lan:8884', referer }))?.back).toBeNull();
  });

  it('without a request (a connection’s own error) the console’s port answers the HIS envelope', () => {
    const a = errorAnswer(408, 'request not sent in time', {}, 'console');
    expect(a.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(a.body)).toMatchObject({ result: false, errorCode: 'BAD_REQUEST' });
  });
});

describe('the page', () => {
  const get = { method: 'GET', back: null };
  const post = { method: 'POST', back: '/popup.html' };

  it('429 and 503 to a GET: busy, the seconds to wait, opened again after them', () => {
    for (const [status, retry] of [
      [429, '2'],
      [503, '5'],
    ] as const) {
      const p = refusalPage(status, 'web: busy', { 'retry-after': retry, 'x-call-id': 'c1' }, get);
      expect(p.headers).toMatchObject({ 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'retry-after': retry, 'x-call-id': 'c1' });
      expect(p.body).toContain('系统繁忙，请稍后重试');
      expect(p.body).toContain(`请约 ${retry} 秒后重试`);
      expect(p.body).toContain(`<meta http-equiv="refresh" content="${retry}">`);
    }
  });

  it('a POST is never sent again by itself; what it says of the post depends on whether the function had it', () => {
    const busy = refusalPage(429, 'web: busy', { 'retry-after': '2' }, post);
    expect(busy.body).not.toContain('http-equiv="refresh"');
    expect(busy.body).toContain('刚才提交的内容未被处理');
    expect(busy.body).toContain('<a href="/popup.html">返回上一页</a>');
    for (const status of [500, 502, 504]) {
      const p = refusalPage(status, 'web: failed', { 'retry-after': '2' }, post);
      expect(p.body, String(status)).not.toContain('http-equiv="refresh"');
      expect(p.body, String(status)).toContain('可能已经完成，也可能没有完成');
    }
    expect(refusalPage(413, 'web: too large', {}, post).body).toContain('刚才提交的内容过大，未被处理');
  });

  it('a GET that failed or timed out is not opened again by itself (it may be what is slow)', () => {
    for (const status of [502, 504]) {
      const p = refusalPage(status, 'web: x', { 'retry-after': '2' }, get);
      expect(p.body).not.toContain('http-equiv="refresh"');
      expect(p.body).toContain('重新打开本页');
    }
  });

  it('escapes what it shows of the request', () => {
    const p = refusalPage(404, 'no such path /"><script>alert(1)</script>', {}, { method: 'GET', back: '/x?"><b>' });
    expect(p.body).not.toContain('<script>');
    expect(p.body).not.toContain('<b>');
    expect(p.body).toContain('&#60;script&#62;');
    expect(p.headers['content-security-policy']).toContain("default-src 'none'");
  });
});
