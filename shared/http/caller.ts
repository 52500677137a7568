/**
 * The caller's source address (auth.ts binds addresses, keys and certificates to org codes;
 * docs/his-auth.md, "Source address and proxies").
 *
 * A function's TCP peer is its gateway (this runtime, or OpenFaaS's watchdog), on loopback. The
 * gateway writes X-Forwarded-For with the TCP peer of the port the caller connected to, replacing
 * whatever the caller sent; when the caller itself sent forwarding headers (X-Forwarded-For,
 * Forwarded, X-Real-IP: it is a proxy relaying someone else), this runtime passes the addresses it
 * claimed in the relay marker `X-Cdc-Relayed-For`. So the hops, nearest last, are: the claimed
 * addresses (Forwarded, the relay marker, X-Forwarded-For's earlier entries), X-Forwarded-For's
 * last entry (what the gateway saw), and the TCP peer.
 *
 * A hop's claim is believed only when the hop is a trusted proxy (HIS_TRUSTED_PROXIES); the
 * gateway on loopback is trusted for its own X-Forwarded-For. A remote hop that is not trusted is
 * judged as itself; a loopback hop that relays someone else and is not trusted (a local proxy)
 * has no usable client address: the request is not a loopback caller.
 */
import type { Context } from 'hono';
import { isIP } from 'node:net';
import { inAnyCidr, isLoopback, normalizeAddress } from './net.js';

/** Set by this runtime (infra/runtime/proxy.ts) when the caller relayed forwarding headers. */
export const RELAY_HEADER = 'x-cdc-relayed-for';

export interface Source {
  /** The client address the request is judged by; null when unknown. */
  address: string | null;
  /** Set when a hop that is not a trusted proxy relayed the request: its address. */
  untrustedRelay?: string;
}

/** The TCP peer (@hono/node-server puts the request in env.incoming); undefined under app.request(). */
export function tcpPeer(c: Context): string | undefined {
  // Read directly: getConnInfo throws without a socket, and exceptions on a hot path are slow.
  const a = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming?.socket?.remoteAddress;
  return a ? normalizeAddress(a) : undefined;
}

const split = (v: string | undefined): string[] =>
  v
    ? v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : [];

/**
 * An address as a hop writes it, without brackets and port: OpenFaaS's gateway writes
 * X-Forwarded-For entries as `ip:port` (`10.1.2.3:51234`, `[::1]:5000`); a bare IPv6 address keeps
 * its colons.
 */
export function hostOf(entry: string): string {
  const a = entry.trim();
  const br = /^\[([^\]]+)\](?::\d+)?$/.exec(a);
  if (br) return br[1]!;
  if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(a)) return a.replace(/:\d+$/, '');
  return a;
}

/** The for= addresses of a Forwarded header (RFC 7239): quotes, brackets and ports removed. */
export function forwardedFor(v: string | undefined): string[] {
  const out: string[] = [];
  for (const part of split(v)) {
    for (const pair of part.split(';')) {
      const m = /^\s*for\s*=\s*"?([^";]*)"?\s*$/i.exec(pair);
      if (!m) continue;
      out.push(hostOf(m[1]!));
    }
  }
  return out;
}

/**
 * The source of a request. `trustedProxies` (CIDR list) names the proxies whose claims about
 * their client are believed; the gateway on loopback is always believed for its X-Forwarded-For.
 */
export function requestSource(c: Context, trustedProxies = ''): Source {
  const peer = tcpPeer(c);
  const xff = split(c.req.header('x-forwarded-for')).map(hostOf);
  // Only a gateway on loopback writes X-Forwarded-For and the relay marker; from any other peer
  // (or with no gateway header) the peer is the caller. app.request() (no socket) stands for a gateway.
  if (peer && !isLoopback(peer) && !inAnyCidr(peer, trustedProxies)) return { address: peer };
  if (xff.length === 0 && peer) {
    // Straight to the function's own port, not through a gateway: the peer is the caller,
    // unless it sent forwarding headers of its own (then it is a relay).
    const claims = [...forwardedFor(c.req.header('forwarded')), ...split(c.req.header('x-real-ip'))];
    if (claims.length === 0) return { address: peer };
    return inAnyCidr(peer, trustedProxies) ? judge(claims, trustedProxies) : { address: null, untrustedRelay: peer };
  }
  const hops = [
    ...forwardedFor(c.req.header('forwarded')),
    ...split(c.req.header(RELAY_HEADER)).map(hostOf),
    ...split(c.req.header('x-real-ip')).map(hostOf),
    ...xff,
  ];
  return judge(hops, trustedProxies);
}

/** Walks the hops from the nearest: trusted proxies hand over to the hop before them. */
function judge(hops: string[], trustedProxies: string): Source {
  for (let i = hops.length - 1; i >= 0; i--) {
    const a = normalizeAddress(hops[i]!);
    if (!isIP(a)) return { address: null, untrustedRelay: a.slice(0, 64) };
    if (i === 0) return { address: a };
    if (!inAnyCidr(a, trustedProxies)) {
      // Its claims are not believed. A remote hop is judged as itself; a loopback hop relaying
      // someone else (a local proxy) is not a loopback caller: it has no usable address.
      return isLoopback(a) ? { address: null, untrustedRelay: a } : { address: a };
    }
  }
  return { address: null };
}

/** The client address, or null when unknown or relayed by an untrusted proxy. */
export function sourceAddress(c: Context, trustedProxies = ''): string | null {
  return requestSource(c, trustedProxies).address;
}
