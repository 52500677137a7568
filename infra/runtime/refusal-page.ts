/**
 * The runtime's own refusal (429 at max_inflight, 503 while a replica starts, 502, 504, 413, …) as a
 * small page, for a browser's own page request on the console's port (docs/console.md "Errors",
 * docs/runtime.md "Hospital ports"): a doctor opening the popup from the HIS at a busy moment reads
 * 系统繁忙，请稍后重试, not the HIS envelope. The console's scripts and every other port keep the
 * JSON (proxy.ts errorAnswer).
 *
 * A GET refused before it reached the function (429, 503) opens again by itself after Retry-After; a
 * POST never does: the browser would send it again, and a post must not be sent twice unasked.
 */
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { isPageRequest } from '../../shared/http/page-request.js';

/** A browser's page request on the console's port, as much of it as its page needs. */
export interface PageRequest {
  method: string;
  /** The page it came from (the Referer's path and query, when on the same host), for a way back. */
  back: string | null;
}

/** The request as a page request (shared/http/page-request.ts), or null: a script's, the HIS's. */
export function pageRequest(req: IncomingMessage): PageRequest | null {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q >= 0 ? url.slice(0, q) : url;
  const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join(', ') : v);
  if (!isPageRequest({ accept: one(req.headers.accept), contentType: req.headers['content-type'], path })) return null;
  return { method: req.method ?? 'GET', back: sameHostReferer(req) };
}

/** The Referer's path and query when it is a page of the host the request was sent to, else null. */
function sameHostReferer(req: IncomingMessage): string | null {
  const ref = req.headers.referer;
  if (!ref || !req.headers.host) return null;
  try {
    const u = new URL(ref);
    const path = u.pathname + u.search;
    return u.host === req.headers.host && /^\/(?![/\\])\S*$/.test(path) ? path : null;
  } catch {
    return null;
  }
}

const TITLES: Record<number, string> = {
  400: '请求格式错误',
  404: '页面不存在',
  408: '请求未在限定时间内发送完毕',
  413: '提交的内容过大',
  429: '系统繁忙，请稍后重试',
  500: '前置软件内部错误',
  502: '前置软件暂不可用，请稍后重试',
  503: '系统繁忙，请稍后重试',
  504: '前置软件处理超时，请稍后重试',
};

/** Refused before the function had the request: nothing of it was done. */
const NOT_DELIVERED = new Set([400, 404, 408, 413, 429, 431, 503]);
/** Busy or starting: the same page asked again soon is likely answered. */
const OPENS_AGAIN = new Set([429, 503]);

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

const STYLE = `body{font-family:"Microsoft YaHei","PingFang SC",sans-serif;margin:0;background:#f4f6f8;color:#222}
main{max-width:420px;margin:12vh auto;background:#fff;padding:28px 32px;border-radius:6px;box-shadow:0 1px 4px rgba(0,0,0,.12)}
h1{font-size:20px;margin:0 0 16px;color:#b42318}p{line-height:1.6}.detail{color:#667;font-size:12px;margin-top:20px;word-break:break-all}`;

/**
 * The page and its headers: UTF-8 HTML, the same status, Retry-After as the JSON answer would have
 * said it (`headers`, already holding it and the call's own headers), never cached or framed.
 */
export function refusalPage(status: number, message: string, headers: OutgoingHttpHeaders, req: PageRequest): { headers: OutgoingHttpHeaders; body: string } {
  const title = TITLES[status] ?? (status >= 500 ? TITLES[503]! : TITLES[400]!);
  const retry = Number(headers['retry-after']);
  const retryS = Number.isInteger(retry) && retry > 0 ? retry : null;
  const get = req.method === 'GET' || req.method === 'HEAD';
  const refresh = get && retryS !== null && OPENS_AGAIN.has(status);
  const lines: string[] = [];
  if (retryS !== null) lines.push(`<p id="retry">请约 ${retryS} 秒后重试。</p>`);
  if (refresh) lines.push(`<p id="refresh">本页将在 ${retryS} 秒后自动重新打开。<a href="">立即重试</a></p>`);
  else if (get) lines.push('<p><a href="">重新打开本页</a></p>');
  else if (status === 413) lines.push('<p id="not-done">刚才提交的内容过大，未被处理。</p>');
  else if (NOT_DELIVERED.has(status)) lines.push('<p id="not-done">刚才提交的内容未被处理，也不会自动重新提交。请稍后返回上一页，重新提交。</p>');
  else lines.push('<p id="maybe-done">刚才的操作可能已经完成，也可能没有完成。请稍后返回上一页，查看结果后再决定是否重新提交。</p>');
  if (req.back) lines.push(`<p><a href="${escapeHtml(req.back)}">返回上一页</a></p>`);
  const body = `<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">${refresh ? `<meta http-equiv="refresh" content="${retryS}">` : ''}<title>${title} - 传染病监测预警前置软件</title><style>${STYLE}</style></head>
<body><main>
<h1 id="error">${title}</h1>
${lines.join('\n')}
<p class="detail">HTTP ${status} · ${escapeHtml(message)}</p>
</main></body></html>
`;
  return {
    headers: {
      ...headers,
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      // As the console's own pages (functions/web/handler.ts): nothing loaded, run or framed.
      'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'referrer-policy': 'same-origin',
    },
    body,
  };
}
