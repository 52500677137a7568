/**
 * Authentication of HIS callers (接入认证, docs/his-auth.md).
 *
 * A caller is identified by, in this order:
 *   1. an API key (X-Api-Key, or Authorization: Bearer <key>) — a key that is presented but unknown,
 *      malformed or revoked is a 401; it never falls back to the source address;
 *   2. an mTLS client certificate — verified by the TLS terminator in front (nginx, or a runtime that
 *      terminates TLS), which passes its SHA-256 fingerprint in X-Client-Cert-Fingerprint (or the
 *      URL-encoded PEM in X-Client-Cert, nginx's $ssl_client_escaped_cert). These headers are trusted
 *      only from a loopback TCP peer (the rule caller.ts applies to X-Forwarded-For) and only when the
 *      install says its terminator overwrites them (HIS_TRUST_CERT_HEADERS=1);
 *   3. the source address (caller.ts: proxies are believed only when in HIS_TRUSTED_PROXIES)
 *      against the address rules (adapters that send no credentials); with no address rule in the
 *      table at all, HIS_ALLOW (development only: empty in stack.yml, loopback under make up,
 *      refused with CDC_ENV=production) admits a 'dev' caller bound to every org.
 * Every identity is bound to org codes; `assertOrg` answers 403 for any other org.
 *
 * The callers table is read whole into an in-process cache, refreshed every HIS_AUTH_REFRESH_S
 * seconds (default 10) and at once (at most once a second) when a key prefix is not in it: a
 * revocation takes effect within the refresh interval. Rates are token buckets per caller in this
 * process: with several replicas the limit applies per replica.
 */
import { createHash, randomBytes, timingSafeEqual, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import type { Context, MiddlewareHandler } from 'hono';
import { z } from 'zod';
import { getPool, isUnavailable, type Db } from '../db/index.js';
import { log } from '../log/index.js';
import { requestSource, tcpPeer } from './caller.js';
import { concern, flagVar, frontConcern, parseConcern } from '../config/index.js';
import { AppError, unstorableText } from './errors.js';
import { inAnyCidr, inCidr, isLoopback } from './net.js';
import { pgCallerStore, type CallerStore, type StoredCaller } from './auth-store.js';

// ---- schemas: what crosses a boundary --------------------------------------------------------

/** An org code (机构编码) as senders and the records use it (org_code varchar(50)). */
export const OrgCodeSchema = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9-]{1,50}$/, 'an org code is 1–50 letters, digits or -');

/** '*' (every org: a single-hospital install) or a non-empty list of org codes; accepts "a,b" too. */
export const OrgsSchema = z.union([
  z.literal('*'),
  z.preprocess(
    (v) =>
      typeof v === 'string'
        ? v
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : v,
    z
      .array(OrgCodeSchema)
      .min(1, 'at least one org code, or * for all')
      .transform((a) => [...new Set(a)]),
  ),
]);

export const CallerSchema = z.object({
  id: z.string(),
  name: z.string(),
  /** person: a signed-in user of the console (docs/console.md), never a HIS caller. */
  kind: z.enum(['apikey', 'cert', 'address', 'dev', 'person']),
  orgs: OrgsSchema,
  /** Requests per minute in this process; 0 = unlimited. */
  ratePerMin: z.number().int().nonnegative(),
});
export type Caller = z.infer<typeof CallerSchema>;
export type CallerKind = Caller['kind'];

declare module 'hono' {
  interface ContextVariableMap {
    caller: Caller;
    /** The request's credentials resolved again from the callers as they are now (callerNow). */
    callerAgain: () => Promise<CallerNow>;
  }
}

/** A caller resolved again: still the one it was, or why not (a revocation, an expiry, a key gone). */
export type CallerNow = { ok: true; caller: Caller } | { ok: false; reason: string };

// The middleware's settings: the concern `hisAuthConcern` below (after CidrSchema), parsed once
// per function with the rest of its configuration (shared/config).

// ---- API keys --------------------------------------------------------------------------------

/**
 * `cdc_<prefix>_<secret>`: a 10-character random lookup prefix (public: shown by `list`) and a
 * 32-byte random secret (base64url). The store keeps the prefix and SHA-256(key): with 256 bits of
 * entropy a slow hash (scrypt) or a pepper adds nothing against guessing, and SHA-256 costs
 * microseconds per request (docs/his-auth.md).
 */
const KEY_PATTERN = /^cdc_([a-z0-9]{10})_([A-Za-z0-9_-]{43})$/;
const PREFIX_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

export interface NewApiKey {
  /** The whole key: shown once, never stored. */
  key: string;
  prefix: string;
  /** SHA-256 hex of the whole key: what the table stores. */
  hash: string;
}

export function generateApiKey(): NewApiKey {
  const bytes = randomBytes(10);
  const prefix = Array.from(bytes, (b) => PREFIX_ALPHABET[b % PREFIX_ALPHABET.length]).join('');
  const key = `cdc_${prefix}_${randomBytes(32).toString('base64url')}`;
  return { key, prefix, hash: hashApiKey(key) };
}

/** The lookup prefix of a well-formed key; null for anything else. */
export function apiKeyPrefix(key: string): string | null {
  return KEY_PATTERN.exec(key)?.[1] ?? null;
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === 32 && y.length === 32 && timingSafeEqual(x, y);
}

// ---- certificates ----------------------------------------------------------------------------

/**
 * A SHA-256 certificate fingerprint as 64 lowercase hex digits, from the forms operators and
 * terminators write: "AB:CD:…", "abcd…", with spaces, or `openssl x509 -fingerprint -sha256`'s
 * "sha256 Fingerprint=AB:…". Null when it is not 32 bytes of hex (a SHA-1 fingerprint has 20).
 */
export function normalizeFingerprint(input: string): string | null {
  let s = input.trim();
  const eq = s.lastIndexOf('=');
  if (eq >= 0 && /fingerprint|sha-?256/i.test(s.slice(0, eq))) s = s.slice(eq + 1);
  s = s
    .replace(/^sha-?256:/i, '')
    .replace(/[\s:]/g, '')
    .toLowerCase();
  return /^[0-9a-f]{64}$/.test(s) ? s : null;
}

export const FingerprintSchema = z.string().transform((s, ctx) => {
  const f = normalizeFingerprint(s);
  if (f) return f;
  const hex = s.replace(/[\s:]/g, '');
  ctx.addIssue({
    code: 'custom',
    message: /^[0-9a-f]{40}$/i.test(hex)
      ? 'that is a SHA-1 fingerprint (20 bytes): give the SHA-256 one (openssl x509 -noout -fingerprint -sha256)'
      : 'a SHA-256 fingerprint is 32 bytes: 64 hex digits, with or without colons',
  });
  return z.NEVER;
});

/** SHA-256 fingerprint of a PEM certificate (nginx's $ssl_client_escaped_cert, URL-decoded). */
export function pemFingerprint(pem: string): string | null {
  try {
    return normalizeFingerprint(new X509Certificate(pem).fingerprint256);
  } catch {
    return null;
  }
}

// ---- CIDRs -----------------------------------------------------------------------------------

/** A CIDR or a bare address ("10.1.2.3" → "10.1.2.3/32"), checked; the address part as given. */
export const CidrSchema = z
  .string()
  .trim()
  .transform((s, ctx) => {
    const [net, bits, extra] = s.split('/');
    const fam = net ? isIP(net) : 0;
    const max = fam === 4 ? 32 : 128;
    const n = bits === undefined ? max : Number(bits);
    if (!fam || extra !== undefined || !Number.isInteger(n) || n < 0 || n > max || (bits !== undefined && !/^\d+$/.test(bits))) {
      ctx.addIssue({ code: 'custom', message: 'a CIDR such as 10.1.2.0/24 or fd00::/64, or one address' });
      return z.NEVER;
    }
    return `${net}/${n}`;
  });

/** A comma/space separated list of CIDRs, each checked; unset = none. */
const CidrListSchema = z
  .string()
  .optional()
  .transform((s, ctx) => {
    const out: string[] = [];
    for (const item of (s ?? '').split(/[\s,]+/).filter(Boolean)) {
      const c = CidrSchema.safeParse(item);
      if (c.success) out.push(c.data);
      else ctx.addIssue({ code: 'custom', message: `${item.slice(0, 60)} is not a CIDR (10.1.2.0/24, fd00::/64, or one address)` });
    }
    return out.join(',');
  });

/**
 * HIS caller authentication settings (docs/his-auth.md, "Settings").
 *   HIS_ALLOW              development fallback: CIDRs admitted as the 'dev' caller while the
 *                          callers table has no address rule; unset = none (stack.yml's default).
 *                          Refused at start when CDC_ENV=production.
 *   HIS_DEV_RATE           requests per minute of the 'dev' caller; 0 = unlimited
 *   HIS_AUTH_REFRESH_S     seconds between refreshes of the callers cache (the revocation delay)
 *   HIS_TRUST_CERT_HEADERS trust X-Client-Cert-* from the gateway: only behind a terminator that overwrites them
 *   HIS_TRUSTED_PROXIES    CIDRs of proxies whose X-Forwarded-For / Forwarded claims are believed
 */
export const hisAuthConcern = concern({
  name: 'HIS auth',
  vars: {
    CDC_ENV: frontConcern.vars.CDC_ENV,
    HIS_ALLOW: CidrListSchema,
    HIS_DEV_RATE: z.coerce.number().int().nonnegative().default(0),
    HIS_AUTH_REFRESH_S: z.coerce.number().positive().max(3600).default(10),
    HIS_TRUST_CERT_HEADERS: flagVar,
    HIS_TRUSTED_PROXIES: CidrListSchema,
  },
  build: (v) => {
    if (v.CDC_ENV === 'production' && v.HIS_ALLOW) {
      throw new Error(
        'HIS_ALLOW is the development fallback (callers admitted by address without registration) and is refused when CDC_ENV=production: ' +
          'register callers with cdc-callers and unset HIS_ALLOW',
      );
    }
    return {
      ...(v.HIS_ALLOW ? { hisAllow: v.HIS_ALLOW } : {}),
      devRatePerMin: v.HIS_DEV_RATE,
      refreshS: v.HIS_AUTH_REFRESH_S,
      trustCertHeaders: v.HIS_TRUST_CERT_HEADERS,
      trustedProxies: v.HIS_TRUSTED_PROXIES,
    };
  },
});
export type AuthConfig = ReturnType<typeof hisAuthConcern.build>;

/** The settings from an environment alone (tests, tools); a function gets them from its composed config. */
export function authConfig(env: Record<string, string | undefined> = process.env): AuthConfig {
  return parseConcern(hisAuthConcern, env);
}

function prefixLength(cidr: string): number {
  const [net, bits] = cidr.split('/');
  return bits === undefined ? (isIP(net ?? '') === 6 ? 128 : 32) : Number(bits);
}

// ---- what a request presents -----------------------------------------------------------------

export interface Presented {
  /** The API key, when one was sent (never logged, never echoed). */
  key?: string;
  /** X-Api-Key and Authorization: Bearer carried two different keys. */
  keyConflict?: boolean;
  /** A client certificate the terminator vouched for (trusted headers only). */
  cert?: { fingerprint: string | null; subject?: string; verify?: string };
  /** The source address (caller.ts requestSource), or null when unknown. */
  address: string | null;
  /** A local proxy that relayed the request and is not in HIS_TRUSTED_PROXIES. */
  untrustedRelay?: string;
}

export function presentedCredentials(c: Context, opts: { trustCertHeaders: boolean; trustedProxies?: string }): Presented {
  const src = requestSource(c, opts.trustedProxies ?? '');
  const out: Presented = { address: src.address, ...(src.untrustedRelay ? { untrustedRelay: src.untrustedRelay } : {}) };
  const headerKey = c.req.header('x-api-key')?.trim() || undefined;
  const auth = c.req.header('authorization')?.trim();
  const bearer = auth && /^bearer\s+/i.test(auth) ? auth.replace(/^bearer\s+/i, '').trim() || undefined : undefined;
  if (headerKey && bearer && headerKey !== bearer) out.keyConflict = true;
  const key = headerKey ?? bearer;
  if (key) out.key = key;

  const fpHeader = c.req.header('x-client-cert-fingerprint')?.trim();
  const pemHeader = c.req.header('x-client-cert')?.trim();
  if (fpHeader || pemHeader) {
    const peer = tcpPeer(c);
    if (opts.trustCertHeaders && (!peer || isLoopback(peer))) {
      let fingerprint: string | null = null;
      if (fpHeader) fingerprint = normalizeFingerprint(fpHeader);
      else if (pemHeader) {
        let pem: string | null = null;
        try {
          pem = decodeURIComponent(pemHeader);
        } catch {
          pem = null;
        }
        fingerprint = pem ? pemFingerprint(pem) : null;
      }
      const subject = c.req.header('x-client-cert-subject')?.trim();
      const verify = c.req.header('x-client-verify')?.trim();
      out.cert = { fingerprint, ...(subject ? { subject } : {}), ...(verify ? { verify } : {}) };
    } else {
      // Anyone can write these headers: from a remote peer (or with trust off) they prove nothing.
      log('debug', 'client certificate headers ignored', { peer, trusted: opts.trustCertHeaders });
    }
  }
  return out;
}

// ---- resolution ------------------------------------------------------------------------------

/** The cache's view of the table, indexed for the three lookups. */
export interface CallerSnapshot {
  byPrefix: Map<string, StoredCaller>;
  byFingerprint: Map<string, StoredCaller[]>;
  /** Active address rules, most specific first. */
  addressRules: StoredCaller[];
  /** Whether the table holds any address rule (revoked ones too): if so, HIS_ALLOW is not used. */
  hasAddressRules: boolean;
  loadedAt: number;
}

export function snapshotOf(rows: StoredCaller[], loadedAt: number): CallerSnapshot {
  const byPrefix = new Map<string, StoredCaller>();
  const byFingerprint = new Map<string, StoredCaller[]>();
  const addressRules: StoredCaller[] = [];
  let hasAddressRules = false;
  for (const r of rows) {
    if (r.kind === 'apikey' && r.keyPrefix) byPrefix.set(r.keyPrefix, r);
    if (r.kind === 'cert' && r.certFingerprint) byFingerprint.set(r.certFingerprint, [...(byFingerprint.get(r.certFingerprint) ?? []), r]);
    if (r.kind === 'address' && r.cidr) {
      hasAddressRules = true;
      if (!r.revokedAt) addressRules.push(r);
    }
  }
  addressRules.sort((a, b) => prefixLength(b.cidr!) - prefixLength(a.cidr!) || Number(a.id) - Number(b.id));
  return { byPrefix, byFingerprint, addressRules, hasAddressRules, loadedAt };
}

export type Resolution =
  | { ok: true; caller: Caller }
  | { ok: false; reason: string }
  /** A well-formed key whose prefix the snapshot does not hold: refresh and resolve again. */
  | { ok: false; missPrefix: string };

function asCaller(r: StoredCaller): Caller {
  return { id: r.id, name: r.name, kind: r.kind, orgs: r.orgs, ratePerMin: r.ratePerMin };
}

export interface DevFallback {
  hisAllow?: string;
  ratePerMin: number;
}

/**
 * Key if presented, else certificate if presented, else address rule, else (no address rule in
 * the table) HIS_ALLOW. A presented credential that fails is final: never a fallback to the next.
 * Reasons name what was missing or wrong, bilingual, and never contain the key.
 */
export function resolveCaller(p: Presented, snap: CallerSnapshot, dev: DevFallback): Resolution {
  if (p.keyConflict) return { ok: false, reason: 'X-Api-Key 与 Authorization 中的密钥不一致 (X-Api-Key and Authorization: Bearer carry different keys)' };
  if (p.key !== undefined) {
    const prefix = apiKeyPrefix(p.key);
    if (!prefix) return { ok: false, reason: 'API 密钥格式不正确 (the API key is malformed: expected cdc_<prefix>_<secret>)' };
    const row = snap.byPrefix.get(prefix);
    if (!row) return { ok: false, missPrefix: prefix };
    if (!row.keyHash || !sameHash(hashApiKey(p.key), row.keyHash)) {
      return { ok: false, reason: `API 密钥无效 (API key cdc_${prefix}_… is not valid)` };
    }
    if (row.revokedAt) return { ok: false, reason: `API 密钥已吊销 (API key cdc_${prefix}_… was revoked)` };
    return { ok: true, caller: asCaller(row) };
  }
  if (p.cert) {
    if (p.cert.verify && p.cert.verify.toUpperCase() !== 'SUCCESS') {
      return { ok: false, reason: `客户端证书未通过校验 (client certificate not verified by the TLS terminator: ${p.cert.verify.slice(0, 60)})` };
    }
    if (!p.cert.fingerprint) return { ok: false, reason: '客户端证书指纹格式不正确 (client certificate fingerprint is not a SHA-256 fingerprint)' };
    const rows = snap.byFingerprint.get(p.cert.fingerprint) ?? [];
    const active = rows.find((r) => !r.revokedAt);
    const short = p.cert.fingerprint.slice(0, 16);
    if (active) return { ok: true, caller: asCaller(active) };
    if (rows.length) return { ok: false, reason: `客户端证书已吊销 (client certificate ${short}… was revoked)` };
    return { ok: false, reason: `客户端证书未登记 (client certificate ${short}… is not registered)` };
  }
  const addr = p.address;
  if (addr) {
    const rule = snap.addressRules.find((r) => inCidr(addr, r.cidr!));
    if (rule) return { ok: true, caller: asCaller(rule) };
    if (!snap.hasAddressRules && dev.hisAllow && inAnyCidr(addr, dev.hisAllow)) {
      return { ok: true, caller: { id: 'dev', name: 'development (HIS_ALLOW)', kind: 'dev', orgs: '*', ratePerMin: dev.ratePerMin } };
    }
  }
  if (p.untrustedRelay) {
    return {
      ok: false,
      reason: `请求经未受信任的代理 ${p.untrustedRelay} 转发，无法确定来源地址 (relayed by ${p.untrustedRelay}, which is not in HIS_TRUSTED_PROXIES: no source address)`,
    };
  }
  return {
    ok: false,
    reason: `未提供有效身份：无 API 密钥、客户端证书，来源地址 ${addr ?? '未知'} 未登记 (no API key, no client certificate, and source address ${addr ?? 'unknown'} matches no rule)`,
  };
}

// ---- the cache -------------------------------------------------------------------------------

export interface CallerCacheOptions {
  store: CallerStore;
  /** Longest age of the snapshot (ms): the revocation delay. */
  refreshMs: number;
  /** Shortest gap (ms) between refreshes forced by unknown key prefixes (a flood of random keys must not flood the database). */
  missRefreshMs?: number;
  now?: () => number;
}

/** The callers table in memory: read whole, at most every refreshMs, single-flight. */
export class CallerCache {
  private snap: CallerSnapshot | undefined;
  private inflight: Promise<CallerSnapshot> | undefined;
  private lastMissRefresh = -Infinity;
  private readonly now: () => number;

  constructor(private readonly opts: CallerCacheOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** The snapshot, refreshed first when older than refreshMs. */
  async get(): Promise<CallerSnapshot> {
    const s = this.snap;
    if (s && this.now() - s.loadedAt < this.opts.refreshMs) return s;
    return this.refresh();
  }

  /**
   * After a miss on a key prefix: the refresh under way, if any — another request's miss or the
   * interval's, which can be the one that brings a key created a moment ago, so every request of a
   * burst with a new key waits for it (docs/his-auth.md "Caching and the revocation delay") —, else a refresh unless one
   * was forced less than missRefreshMs ago, else the snapshot as it is now (one read since the request
   * looked may hold the key).
   */
  async onMiss(): Promise<CallerSnapshot | null> {
    if (this.inflight) return this.inflight;
    const t = this.now();
    if (t - this.lastMissRefresh < (this.opts.missRefreshMs ?? 1000)) return this.snap ?? null;
    this.lastMissRefresh = t;
    return this.refresh();
  }

  refresh(): Promise<CallerSnapshot> {
    this.inflight ??= this.opts.store
      .all()
      .then((rows) => (this.snap = snapshotOf(rows, this.now())))
      .finally(() => {
        this.inflight = undefined;
      });
    return this.inflight;
  }
}

// ---- rate limits -----------------------------------------------------------------------------

/**
 * One token bucket per caller: holds up to ratePerMin tokens (a minute's allowance as a burst),
 * refilled at ratePerMin per minute; each request takes one. In-process, so per replica.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number; rate: number }>();

  /** 0 when the request may pass; otherwise the whole seconds until a token is back (Retry-After). */
  take(id: string, ratePerMin: number, now: number): number {
    if (ratePerMin <= 0) return 0;
    let b = this.buckets.get(id);
    if (!b) {
      b = { tokens: ratePerMin, at: now, rate: ratePerMin };
      this.buckets.set(id, b);
    }
    if (b.rate !== ratePerMin) b.rate = ratePerMin; // the rate was changed: keep the tokens, refill at the new rate
    b.tokens = Math.min(ratePerMin, b.tokens + (Math.max(0, now - b.at) * ratePerMin) / 60_000);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil(((1 - b.tokens) * 60_000) / ratePerMin / 1000));
  }
}

// ---- the middleware --------------------------------------------------------------------------

export interface HisAuthOptions {
  /** Where callers are stored; default the function's pool (getPool(), opened by its init). */
  store?: CallerStore;
  /** Database for the default store; default getPool. */
  db?: () => Db;
  /**
   * The settings: a function giving the ones the function parsed at start (shared/config), or
   * overrides of the environment's (authConfig()).
   */
  config?: Partial<AuthConfig> | (() => AuthConfig);
  /** Shortest gap between refreshes forced by unknown key prefixes (ms); default 1000. */
  missRefreshMs?: number;
  /** Clock (ms), for tests. */
  now?: () => number;
}

const WWW_AUTHENTICATE = 'Bearer realm="cdc-front", charset="UTF-8"';
const TOUCH_EVERY_MS = 60_000;

/**
 * Hono middleware: resolves the caller (or 401), applies its rate (or 429 with Retry-After), sets
 * `c.set('caller', caller)`, and marks the caller used (at most once a minute).
 */
export function hisAuth(opts: HisAuthOptions = {}): MiddlewareHandler {
  let cfg: AuthConfig | undefined;
  let cache: CallerCache | undefined;
  const now = opts.now ?? Date.now;
  const store = opts.store ?? pgCallerStore(opts.db ?? getPool);
  const buckets = new TokenBuckets();
  const touched = new Map<string, number>();

  // Configuration is read at the first request, not at import (functions import before env is final in tests).
  const setup = (): { cfg: AuthConfig; cache: CallerCache } => {
    if (!cfg || !cache) {
      cfg = typeof opts.config === 'function' ? opts.config() : { ...authConfig(), ...opts.config };
      cache = new CallerCache({
        store,
        refreshMs: cfg.refreshS * 1000,
        now,
        ...(opts.missRefreshMs !== undefined ? { missRefreshMs: opts.missRefreshMs } : {}),
      });
    }
    return { cfg, cache };
  };

  const snapshot = async (f: () => Promise<CallerSnapshot | null>): Promise<CallerSnapshot | null> => {
    try {
      return await f();
    } catch (err) {
      if (isUnavailable(err)) throw new AppError('UNAVAILABLE', '数据库暂不可用，请稍后重试 (database unavailable; retry)');
      throw err;
    }
  };

  return async (c, next) => {
    const { cfg, cache } = setup();
    const presented = presentedCredentials(c, cfg);
    const dev: DevFallback = { ratePerMin: cfg.devRatePerMin, ...(cfg.hisAllow ? { hisAllow: cfg.hisAllow } : {}) };
    let res = resolveCaller(presented, (await snapshot(() => cache.get()))!, dev);
    if (!res.ok && 'missPrefix' in res) {
      // A key created a moment ago: look again now rather than after the refresh interval.
      const fresh = await snapshot(() => cache.onMiss());
      res = fresh ? resolveCaller(presented, fresh, dev) : res;
    }
    if (!res.ok) {
      c.header('WWW-Authenticate', WWW_AUTHENTICATE);
      throw new AppError('UNAUTHENTICATED', refusal(res));
    }
    const caller = res.caller;
    const t = now();
    const wait = buckets.take(caller.id, caller.ratePerMin, t);
    if (wait > 0) {
      c.header('Retry-After', String(wait));
      throw new AppError(
        'RATE_LIMITED',
        `请求过于频繁：每分钟上限 ${caller.ratePerMin} 次，请 ${wait} 秒后重试 (rate limit ${caller.ratePerMin}/min for "${caller.name}"; retry after ${wait} s)`,
      );
    }
    if (caller.kind !== 'dev' && t - (touched.get(caller.id) ?? -Infinity) >= TOUCH_EVERY_MS) {
      touched.set(caller.id, t);
      // Bookkeeping only: never delays or fails the request.
      store.touch(caller.id).catch((err: Error) => log('warn', 'could not mark HIS caller used', { callerId: caller.id, err: err.message }));
    }
    c.set('caller', caller);
    // For an answer that lasts (a reminders stream): the same credentials against the callers as the
    // cache holds them then, so a revocation reaches it within HIS_AUTH_REFRESH_S as it reaches a poll.
    c.set('callerAgain', async () => {
      const again = resolveCaller(presented, (await snapshot(() => cache.get()))!, dev);
      return again.ok ? again : { ok: false, reason: refusal(again) };
    });
    await next();
  };
}

const refusal = (res: Exclude<Resolution, { ok: true }>): string =>
  'missPrefix' in res ? `API 密钥未登记 (API key cdc_${res.missPrefix}_… is not registered)` : res.reason;

// ---- using the caller ------------------------------------------------------------------------

/**
 * The request's caller as the callers are now (docs/his-auth.md): whether it is still the one hisAuth
 * resolved — not revoked, expired or removed since — for an answer that outlives the request's start.
 */
export function callerNow(c: Context): Promise<CallerNow> {
  const again = c.get('callerAgain') as (() => Promise<CallerNow>) | undefined;
  if (!again) throw new Error('no HIS caller on the context: mount hisAuth() before this route');
  return again();
}

/** The caller hisAuth resolved. Throws (a 500: a wiring error) when hisAuth is not mounted. */
export function callerOf(c: Context): Caller {
  const caller = c.get('caller') as Caller | undefined;
  if (!caller) throw new Error('no HIS caller on the context: mount hisAuth() before this route');
  return caller;
}

export function canSee(caller: Caller, orgCode: string): boolean {
  return caller.orgs === '*' || caller.orgs.includes(orgCode.trim());
}

/**
 * 403 FORBIDDEN unless the caller is bound to orgCode; 400 for an org code no org can have (a NUL, a
 * broken character: docs/his-guide.md), whoever asks, and never echoed.
 */
export function assertOrg(caller: Caller, orgCode: string): void {
  if (unstorableText(orgCode))
    throw new AppError('BAD_REQUEST', '机构代码含有无法存储的字符（NUL 或不成对的代理字符）(the org code holds a NUL or an unpaired surrogate)', [
      { field: 'orgCode', rule: 'invalidText', message: '含有无法存储的字符 (NUL or an unpaired surrogate)' },
    ]);
  if (canSee(caller, orgCode)) return;
  throw new AppError('FORBIDDEN', `无权提交或查看机构 ${orgCode} 的数据 (caller "${caller.name}" is not bound to org ${orgCode})`);
}

/**
 * The orgs a query may show this caller: null = every org (orgs '*'), else the list. Meant for
 * `WHERE ($1::varchar[] IS NULL OR org_code = ANY($1))`; used naively (`org_code = ANY($1)`), null
 * matches nothing — it fails closed.
 */
export function visibleOrgs(caller: Caller): string[] | null {
  return caller.orgs === '*' ? null : [...caller.orgs];
}

// ---- operators ---------------------------------------------------------------------------------

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Constant-time check of `Authorization: Basic` against the operator credentials (hashing first equalises lengths). */
export function isOperator(header: string | undefined, creds: { user: string; password: string }): boolean {
  const m = /^basic\s+(.+)$/i.exec(header?.trim() ?? '');
  if (!m) return false;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i < 0) return false;
  const userOk = timingSafeEqual(digest(decoded.slice(0, i)), digest(creds.user));
  const passOk = timingSafeEqual(digest(decoded.slice(i + 1)), digest(creds.password));
  return userOk && passOk;
}

/**
 * Hono middleware for operator routes (push's /dead, /replay, /circuits, /lag; day-close's /run,
 * /days): `Authorization: Basic` with the gateway's credentials (the secret files basic-auth-user
 * and basic-auth-password, as for /system/*; docs/his-auth.md, "Operator routes"). 401 otherwise.
 */
export function operatorAuth(creds: () => { user: string; password: string } | null): MiddlewareHandler {
  return async (c, next) => {
    const known = creds();
    if (!known || !isOperator(c.req.header('authorization'), known)) {
      c.header('WWW-Authenticate', 'Basic realm="cdc-front operators", charset="UTF-8"');
      throw new AppError(
        'UNAUTHENTICATED',
        known
          ? '需要运维凭据 (operator credentials required: the gateway basic-auth user and password)'
          : '运维凭据未配置 (operator routes closed: the secret files basic-auth-user and basic-auth-password are not given to this function)',
      );
    }
    await next();
  };
}
