/**
 * The config function's settings (a concern of shared/config; docs/config-bundles.md "Settings"):
 *
 *   config-token             secret  the national platform's bearer token(s), one per line (made by this
 *                                    project's runtime on first start, like monitor-token)
 *   config-platform-pubkey   secret, optional  the platform's SM2 public key(s) that sign bundles (PEM;
 *                                    several blocks while the platform changes keys). Absent: bundles
 *                                    are refused (503 no-platform-key); `make up` makes a development one
 *   CONFIG_RELEASE_URL       env     where the latest release is announced (JSON {version, url?, notes?}),
 *                                    besides the current bundle's `release` section (GET /version-check)
 *   MAX_BODY_BYTES           env     the largest bundle taken (the runtime refuses larger ones first)
 */
import type { MiddlewareHandler } from 'hono';
import { z } from 'zod';
import { parseDuration } from '../time/duration.js';
import { concern } from '../config/index.js';
import { sourceAddress } from '../http/caller.js';
import { tokenMatches } from '../monitor/auth.js';
import { createHash } from 'node:crypto';
import type { Sm2PublicKey } from '../uplink/sm.js';
import { parseTrustedKeys } from './sign.js';
import type { GatewayAccess } from './schedules.js';
import { BundleError, tokenLabel } from './store.js';

/**
 * How long a step may run within a request of `ms` (exec_timeout, or a caller's shorter X-Timeout):
 * less a fifth, at most 5 s, for the answer (docs/config-bundles.md "Answers").
 */
export function withinRequest(ms: number): number {
  return Math.max(200, ms - Math.min(5000, ms / 5));
}

export const bundlesConcern = concern({
  name: 'bundles',
  vars: {
    CONFIG_RELEASE_URL: z.url({ protocol: /^https?$/ }).optional(),
    MAX_BODY_BYTES: z.coerce
      .number()
      .int()
      .positive()
      .default(32 * 1024 * 1024),
    // The watchdog's own request time (stack.yml `exec_timeout`, which the function's environment
    // carries too): an apply gives its transaction up before it (applyWithinMs).
    exec_timeout: z
      .string()
      .refine((t) => {
        try {
          parseDuration(t, 0);
          return true;
        } catch {
          return false;
        }
      }, 'a duration as the watchdog reads it: 55s, 1m30s')
      .optional(),
  },
  secrets: ['config-token'],
  optionalSecrets: ['config-platform-pubkey'],
  build: (v, secret) => {
    const tokens = (secret('config-token') ?? '')
      .split(/\r?\n/)
      .map((t) => t.trim())
      .filter((t) => t.length > 0);
    if (!tokens.length) throw new Error('the secret file config-token is empty: the configuration port would be open to nobody');
    if (tokens.some((t) => t.length < 24)) throw new Error('config-token: every token must be at least 24 characters');
    const pem = secret('config-platform-pubkey');
    let platformKeys: Sm2PublicKey[] = [];
    if (pem !== undefined) {
      try {
        platformKeys = parseTrustedKeys(pem);
      } catch (err) {
        throw new Error(`secret config-platform-pubkey: ${(err as Error).message}`);
      }
    }
    const execMs = parseDuration(v.exec_timeout, 0);
    return {
      /**
       * How long an apply or a rollback may run from the request's start: exec_timeout less a margin
       * (a fifth, at most 5 s) for the answer; null when exec_timeout is unset or 0 (no limit).
       */
      applyWithinMs: execMs > 0 ? withinRequest(execMs) : null,
      tokens: tokens.map((t) => ({ digest: createHash('sha256').update(t).digest(), label: tokenLabel(t) })),
      platformKeys,
      releaseUrl: v.CONFIG_RELEASE_URL ?? null,
      maxBodyBytes: v.MAX_BODY_BYTES,
    };
  },
});
export type BundleSettings = ReturnType<typeof bundlesConcern.build>;

/**
 * The gateway the config function writes a bundle's schedules through (shared/configbundle/schedules.ts):
 * GATEWAY_URL (stack.yml: http://gateway:8080, which this project's runtime leads to its own gateway)
 * and the gateway's basic-auth secret files. Missing: schedules are recorded as not applied, with the
 * reason; nothing else stops.
 */
export const gatewayConcern = concern({
  name: 'gateway',
  vars: { GATEWAY_URL: z.url({ protocol: /^https?$/ }).optional() },
  secrets: ['basic-auth-user', 'basic-auth-password'],
  build: (v, secret): GatewayAccess | null => {
    const user = secret('basic-auth-user')?.trim();
    const password = secret('basic-auth-password')?.trim();
    return v.GATEWAY_URL && user && password ? { url: v.GATEWAY_URL, user, password } : null;
  },
});

/**
 * The national platform's client identity on the configuration port: a bearer token of config-token.
 * Sets `caller` (the token's label, never the token) and `callerAddress` for the audit.
 */
export function bundleAuth(settings: () => BundleSettings): MiddlewareHandler<{ Variables: { caller: string; callerAddress: string | null } }> {
  return async (c, next) => {
    const s = settings();
    const auth = c.req.header('authorization')?.trim() ?? '';
    const bearer = /^bearer\s+/i.test(auth) ? auth.replace(/^bearer\s+/i, '').trim() : '';
    const match = bearer ? s.tokens.filter((t) => tokenMatches(bearer, [t.digest]))[0] : undefined; // every token compared
    if (!match) {
      c.header('www-authenticate', 'Bearer realm="cdc-front config"');
      throw new BundleError(
        401,
        'unauthenticated',
        bearer ? '配置令牌无效 (config token not accepted)' : '需要配置令牌 (Authorization: Bearer <config-token>, docs/config-bundles.md)',
      );
    }
    c.set('caller', match.label);
    c.set('callerAddress', sourceAddress(c));
    return next();
  };
}
