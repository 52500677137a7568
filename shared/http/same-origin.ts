/**
 * Refuses a change a browser was made to send from another site (CSRF), over plain HTTP as over
 * HTTPS (docs/console.md "Changes"). It backs the session's CSRF token, never replaces it.
 *
 * Browsers that send Sec-Fetch-Site are judged by it (same-origin, or none: typed by the user) — only
 * over HTTPS or to localhost: a secure context. Over plain HTTP on a LAN they send none, and are
 * judged by Origin, whose host must be the one asked for; without Origin, by Referer the same way.
 * "Origin: null" is refused: the console's pages answer with Referrer-Policy same-origin, so a
 * browser's own forms carry their real Origin (under no-referrer they would say null). A client that
 * sends none of them (curl, the CLI, a HIS) is no browser and is not at risk.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { AppError } from './errors.js';

/** Whether a request that changes something came from another site, as far as its headers tell. */
export function crossSite(c: Context): boolean {
  if (c.req.method === 'GET' || c.req.method === 'HEAD') return false;
  const site = c.req.header('sec-fetch-site');
  if (site) return site !== 'same-origin' && site !== 'none';
  const origin = c.req.header('origin');
  const referer = c.req.header('referer');
  // An empty Origin says nothing (no browser sends one): the Referer is judged.
  const from = origin || referer;
  if (!from) return false;
  if (from === 'null') return true;
  // Behind the gateway, Host names the replica; X-Forwarded-Host (set by the gateway, never taken
  // from the caller: docs/runtime.md "Host") names what the browser asked for.
  const host = c.req.header('x-forwarded-host') ?? c.req.header('host') ?? new URL(c.req.url).host;
  try {
    return new URL(from).host.toLowerCase() !== host.toLowerCase();
  } catch {
    return true;
  }
}

export const sameOrigin: MiddlewareHandler = async (c, next) => {
  if (crossSite(c)) throw new AppError('FORBIDDEN', '拒绝来自其他网站的请求 (cross-site request refused)');
  await next();
};
