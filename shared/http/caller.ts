/**
 * The caller's source address (auth.ts binds addresses, keys and certificates to org codes).
 * Behind a gateway (this runtime or OpenFaaS's watchdog, both on loopback) the
 * address comes from the last X-Forwarded-For entry, which the gateway sets; it is trusted only
 * when the TCP peer itself is loopback.
 */
import type { Context } from 'hono';
import { isLoopback, normalizeAddress } from './net.js';

export function sourceAddress(c: Context): string | null {
  // The TCP peer (@hono/node-server puts the request in env.incoming); app.request() in unit tests
  // has no socket. Read directly: getConnInfo throws there, and exceptions on a hot path are slow.
  const peer = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming?.socket?.remoteAddress;
  const xff = c.req.header('x-forwarded-for');
  if (xff && (!peer || isLoopback(peer))) {
    const last = xff.split(',').map((s) => s.trim()).filter(Boolean).at(-1);
    if (last) return normalizeAddress(last);
  }
  return peer ? normalizeAddress(peer) : null;
}
