/**
 * Who is calling. The existing hospital adapters send no credentials, so a HIS caller is, at the
 * least, identified by its source address against an allow-list (HIS_ALLOW, CIDRs; loopback in
 * development). Behind a gateway (this runtime or OpenFaaS's watchdog, both on loopback) the
 * address comes from the last X-Forwarded-For entry, which the gateway sets; it is trusted only
 * when the TCP peer itself is loopback.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import { AppError } from './errors.js';
import { inAnyCidr, isLoopback, normalizeAddress } from './net.js';

export function sourceAddress(c: Context): string | null {
  let peer: string | undefined;
  try {
    peer = getConnInfo(c).remote.address;
  } catch {
    peer = undefined; // app.request() in unit tests has no socket
  }
  const xff = c.req.header('x-forwarded-for');
  if (xff && (!peer || isLoopback(peer))) {
    const last = xff.split(',').map((s) => s.trim()).filter(Boolean).at(-1);
    if (last) return normalizeAddress(last);
  }
  return peer ? normalizeAddress(peer) : null;
}

export function hisCaller(allow: () => string): MiddlewareHandler {
  return async (c, next) => {
    const addr = sourceAddress(c);
    if (!addr || !inAnyCidr(addr, allow())) {
      throw new AppError('UNAUTHENTICATED', `来源地址未登记 (source address ${addr ?? 'unknown'} is not on the allow-list)`);
    }
    c.set('callerAddress' as never, addr as never);
    await next();
  };
}
