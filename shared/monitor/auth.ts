/**
 * Who may read the monitoring port (docs/monitoring.md "Who may read it"): the national platform,
 * with the bearer token in the secret file `monitor-token` (one token per line, so a new one can be
 * added before the old one is removed), or with a client certificate whose SHA-256 fingerprint is in
 * MONITOR_CLIENT_CERTS, vouched for by the TLS terminator in front of the port (the runtime's
 * MONITOR_TLS_* settings, or a proxy on loopback). Everything but /healthz needs one of the two.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { z } from 'zod';
import { concern } from '../config/index.js';
import { normalizeFingerprint, presentedCredentials } from '../http/auth.js';
import { AppError } from '../http/errors.js';

export const monitorAuthConcern = concern({
  name: 'monitorAuth',
  vars: {
    MONITOR_CLIENT_CERTS: z.string().default(''),
    HIS_TRUSTED_PROXIES: z.string().default(''),
  },
  secrets: ['monitor-token'],
  build: (v, secret) => {
    const tokens = (secret('monitor-token') ?? '')
      .split(/\r?\n/)
      .map((t) => t.trim())
      .filter((t) => t.length > 0);
    if (!tokens.length) throw new Error('the secret file monitor-token is empty: the monitoring port would be open to nobody');
    if (tokens.some((t) => t.length < 24)) throw new Error('monitor-token: every token must be at least 24 characters');
    const fingerprints = v.MONITOR_CLIENT_CERTS.split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((s) => {
        const fp = normalizeFingerprint(s);
        if (!fp) throw new Error(`MONITOR_CLIENT_CERTS: ${s} is not a SHA-256 fingerprint`);
        return fp;
      });
    return { tokenDigests: tokens.map(digest), fingerprints: new Set(fingerprints), trustedProxies: v.HIS_TRUSTED_PROXIES };
  },
});
export type MonitorAuth = ReturnType<typeof monitorAuthConcern.build>;

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Constant time over the token's digest: neither the token nor its length leaks through timing. */
export function tokenMatches(sent: string, digests: Buffer[]): boolean {
  const d = digest(sent);
  let ok = false;
  for (const x of digests) ok = timingSafeEqual(d, x) || ok;
  return ok;
}

export function monitorAuth(settings: () => MonitorAuth): MiddlewareHandler {
  return async (c, next) => {
    const s = settings();
    const auth = c.req.header('authorization')?.trim() ?? '';
    const bearer = /^bearer\s+/i.test(auth) ? auth.replace(/^bearer\s+/i, '').trim() : '';
    if (bearer && tokenMatches(bearer, s.tokenDigests)) return next();
    if (s.fingerprints.size) {
      const p = presentedCredentials(c, { trustCertHeaders: true, trustedProxies: s.trustedProxies });
      const fp = p.cert?.fingerprint;
      if (fp && (p.cert?.verify === undefined || p.cert.verify === 'SUCCESS') && s.fingerprints.has(fp)) return next();
    }
    c.header('www-authenticate', 'Bearer realm="cdc-front monitor"');
    throw new AppError(
      'UNAUTHENTICATED',
      bearer ? '监控令牌无效 (monitor token not accepted)' : '需要监控令牌或客户端证书 (Authorization: Bearer <monitor-token> or a client certificate)',
    );
  };
}
