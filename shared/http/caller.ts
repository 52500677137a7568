/**
 * The caller's source address (auth.ts binds addresses, keys and certificates to org codes).
 * Behind a gateway (this runtime or OpenFaaS's watchdog, both on loopback) the
 * address comes from the last X-Forwarded-For entry, which the gateway sets; it is trusted only
 * when the TCP peer itself is loopback.
 */
import type { Context } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import { isLoopback, normalizeAddress } from './net.js';

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
