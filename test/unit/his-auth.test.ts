// HIS caller authentication without a database: key format and hash, fingerprints, resolution
// order, the token bucket, and the middleware over the in-memory store (app.request, no port).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { handleError, okAnswer } from '../../shared/http/errors.js';
import {
  CallerCache,
  CidrSchema,
  FingerprintSchema,
  OrgsSchema,
  TokenBuckets,
  apiKeyPrefix,
  assertOrg,
  callerOf,
  callerNow,
  generateApiKey,
  hashApiKey,
  hisAuth,
  normalizeFingerprint,
  pemFingerprint,
  resolveCaller,
  snapshotOf,
  visibleOrgs,
  type Caller,
  type HisAuthOptions,
  type Presented,
} from '../../shared/http/auth.js';
import { memoryCallerStore, type StoredCaller } from '../../shared/http/auth-store.js';
import { parseCommand } from '../../infra/callers/cli.js';

const FP = 'ab'.repeat(32);
let nextId = 1;

function row(over: Partial<StoredCaller> & Pick<StoredCaller, 'kind'>): StoredCaller {
  return {
    id: String(nextId++),
    name: `caller ${nextId}`,
    keyPrefix: null,
    keyHash: null,
    certFingerprint: null,
    cidr: null,
    orgs: ['111111111'],
    ratePerMin: 0,
    createdAt: new Date(),
    revokedAt: null,
    lastUsedAt: null,
    ...over,
  };
}

function keyRow(orgs: StoredCaller['orgs'] = ['111111111'], over: Partial<StoredCaller> = {}) {
  const k = generateApiKey();
  return { key: k.key, row: row({ kind: 'apikey', keyPrefix: k.prefix, keyHash: k.hash, orgs, ...over }) };
}

describe('API keys', () => {
  it('are cdc_<10-char prefix>_<43-char base64url secret> and hash to SHA-256 hex of the whole key', () => {
    const k = generateApiKey();
    expect(k.key).toMatch(/^cdc_[a-z0-9]{10}_[A-Za-z0-9_-]{43}$/);
    expect(apiKeyPrefix(k.key)).toBe(k.prefix);
    expect(k.hash).toBe(hashApiKey(k.key));
    expect(k.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(k.hash).not.toContain(k.key.slice(15));
  });

  it('are different every time', () => {
    const keys = new Set(Array.from({ length: 200 }, () => generateApiKey().key));
    expect(keys.size).toBe(200);
  });

  it.each(['', 'cdc_short_x', 'Bearer abc', `cdc_ABCDEFGHIJ_${'a'.repeat(43)}`, `cdc_abcdefghij_${'a'.repeat(42)}`])('rejects the malformed key %j', (k) => {
    expect(apiKeyPrefix(k)).toBeNull();
  });
});

describe('certificate fingerprints', () => {
  const upperColons = FP.toUpperCase().match(/../g)!.join(':');

  it.each([
    ['lowercase hex', FP],
    ['uppercase with colons', upperColons],
    ['openssl -fingerprint -sha256 output', `sha256 Fingerprint=${upperColons}`],
    ['with spaces', FP.match(/.{8}/g)!.join(' ')],
    ['SHA256: prefix', `SHA256:${FP}`],
  ])('normalises %s to 64 lowercase hex digits', (_, input) => {
    expect(normalizeFingerprint(input)).toBe(FP);
  });

  it('refuses a SHA-1 fingerprint, naming it', () => {
    const sha1 = 'AB:'.repeat(19) + 'AB';
    expect(normalizeFingerprint(sha1)).toBeNull();
    const r = FingerprintSchema.safeParse(sha1);
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.message).toMatch(/SHA-1/);
  });
});

// A real certificate, as nginx passes it ($ssl_client_escaped_cert: URL-encoded PEM).
function selfSigned(): { pem: string; opensslFingerprint: string } | null {
  const dir = mkdtempSync(join(tmpdir(), 'his-auth-cert-'));
  try {
    const [key, crt] = [join(dir, 'k.pem'), join(dir, 'c.pem')];
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt, '-days', '1', '-subj', '/CN=his.example'],
      { stdio: 'ignore' },
    );
    const fp = execFileSync('openssl', ['x509', '-in', crt, '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' }).trim();
    return { pem: readFileSync(crt, 'utf8'), opensslFingerprint: fp };
  } catch {
    return null; // no openssl on this machine
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const cert = selfSigned();

describe.skipIf(!cert)('a PEM client certificate (nginx $ssl_client_escaped_cert)', () => {
  it('has the fingerprint openssl prints', () => {
    expect(pemFingerprint(cert!.pem)).toBe(normalizeFingerprint(cert!.opensslFingerprint));
    expect(pemFingerprint('-----BEGIN CERTIFICATE-----\nnot a cert\n-----END CERTIFICATE-----')).toBeNull();
  });
});

describe('orgs and CIDRs', () => {
  it('parse orgs from "a,b" or *', () => {
    expect(OrgsSchema.parse('123456789, 987654321,123456789')).toEqual(['123456789', '987654321']);
    expect(OrgsSchema.parse('*')).toBe('*');
    expect(OrgsSchema.safeParse('').success).toBe(false);
    expect(OrgsSchema.safeParse("1'; DROP TABLE x").success).toBe(false);
  });

  it('accept CIDRs and bare addresses, refuse the rest', () => {
    expect(CidrSchema.parse('10.1.2.0/24')).toBe('10.1.2.0/24');
    expect(CidrSchema.parse('10.1.2.3')).toBe('10.1.2.3/32');
    expect(CidrSchema.parse('fd00::/64')).toBe('fd00::/64');
    for (const bad of ['10.1.2.0/33', '10.1.2/24', 'fd00::/129', 'example.org', '10.0.0.0/8/1', '10.0.0.0/x']) {
      expect(CidrSchema.safeParse(bad).success, bad).toBe(false);
    }
  });
});

describe('resolution order', () => {
  const dev = { hisAllow: '127.0.0.1/8', ratePerMin: 0 };
  const k = keyRow(['111111111']);
  const revoked = keyRow(['111111111'], { revokedAt: new Date() });
  const cert = row({ kind: 'cert', certFingerprint: FP, orgs: ['222222222'] });
  const addr = row({ kind: 'address', cidr: '10.1.0.0/16', orgs: ['333333333'] });
  const narrow = row({ kind: 'address', cidr: '10.1.2.0/24', orgs: ['444444444'] });
  const snap = snapshotOf([k.row, revoked.row, cert, addr, narrow], 0);
  const at = (p: Partial<Presented>): ReturnType<typeof resolveCaller> => resolveCaller({ address: '10.1.2.3', ...p }, snap, dev);
  const idOf = (r: ReturnType<typeof resolveCaller>) => (r.ok ? r.caller.id : null);

  it('takes the key first, over a certificate and the address', () => {
    expect(idOf(at({ key: k.key, cert: { fingerprint: FP } }))).toBe(k.row.id);
  });

  it('never falls back from a presented key that fails', () => {
    const wrongSecret = k.key.slice(0, 15) + (k.key[15] === 'A' ? 'B' : 'A') + k.key.slice(16);
    for (const key of ['not-a-key', wrongSecret, revoked.key]) {
      const r = at({ key, cert: { fingerprint: FP } });
      expect(r.ok, key).toBe(false);
      expect(JSON.stringify(r)).not.toContain(key.length > 15 ? key.slice(15) : key); // the secret is never echoed
    }
    expect(at({ key: revoked.key })).toMatchObject({ ok: false, reason: expect.stringMatching(/revoked/) });
  });

  it('asks for a refresh on an unknown prefix', () => {
    expect(at({ key: generateApiKey().key })).toMatchObject({ ok: false, missPrefix: expect.any(String) });
  });

  it('refuses two different keys in X-Api-Key and Authorization', () => {
    expect(at({ key: k.key, keyConflict: true })).toMatchObject({ ok: false, reason: expect.stringMatching(/different keys/) });
  });

  it('takes the certificate before the address, and does not fall back from an unknown one', () => {
    expect(idOf(at({ cert: { fingerprint: FP } }))).toBe(cert.id);
    expect(at({ cert: { fingerprint: 'cd'.repeat(32) } })).toMatchObject({ ok: false, reason: expect.stringMatching(/not registered/) });
    expect(at({ cert: { fingerprint: null } })).toMatchObject({ ok: false });
    expect(at({ cert: { fingerprint: FP, verify: 'FAILED:certificate has expired' } })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/not verified/),
    });
    expect(idOf(at({ cert: { fingerprint: FP, verify: 'SUCCESS' } }))).toBe(cert.id);
  });

  it('takes the most specific address rule', () => {
    expect(idOf(at({}))).toBe(narrow.id);
    expect(idOf(at({ address: '10.1.9.9' }))).toBe(addr.id);
    expect(at({ address: '10.2.0.1' })).toMatchObject({ ok: false, reason: expect.stringMatching(/10\.2\.0\.1 matches no rule/) });
  });

  it('admits HIS_ALLOW as the dev caller only while the table has no address rule', () => {
    const none = snapshotOf([k.row, cert], 0);
    expect(resolveCaller({ address: '127.0.0.1' }, none, dev)).toEqual({
      ok: true,
      caller: { id: 'dev', name: 'development (HIS_ALLOW)', kind: 'dev', orgs: '*', ratePerMin: 0 },
    });
    expect(resolveCaller({ address: '127.0.0.1' }, none, { ratePerMin: 0 }).ok).toBe(false); // HIS_ALLOW unset
    expect(resolveCaller({ address: '127.0.0.1' }, snap, dev).ok).toBe(false);
    const onlyRevokedRule = snapshotOf([{ ...addr, revokedAt: new Date() }], 0);
    expect(resolveCaller({ address: '127.0.0.1' }, onlyRevokedRule, dev).ok).toBe(false);
    expect(resolveCaller({ address: '10.1.2.3' }, onlyRevokedRule, dev).ok).toBe(false);
  });
});

describe('token bucket', () => {
  it('allows a minute’s allowance, then answers with the seconds until the next token', () => {
    const b = new TokenBuckets();
    for (let i = 0; i < 60; i++) expect(b.take('a', 60, 0)).toBe(0);
    expect(b.take('a', 60, 0)).toBe(1);
    expect(b.take('a', 60, 999)).toBe(1);
    expect(b.take('a', 60, 1000)).toBe(0);
    expect(b.take('b', 60, 1000)).toBe(0); // per caller
  });

  it('names a longer wait for a slow rate', () => {
    const b = new TokenBuckets();
    expect(b.take('a', 2, 0)).toBe(0);
    expect(b.take('a', 2, 0)).toBe(0);
    expect(b.take('a', 2, 0)).toBe(30);
    expect(b.take('a', 2, 15_000)).toBe(15);
  });

  it('never limits a rate of 0 (unlimited)', () => {
    const b = new TokenBuckets();
    for (let i = 0; i < 10_000; i++) expect(b.take('a', 0, 0)).toBe(0);
  });
});

describe('caller cache', () => {
  it('reads the table at most once per interval, once for concurrent requests', async () => {
    let t = 0;
    const store = memoryCallerStore([]);
    const cache = new CallerCache({ store, refreshMs: 10_000, now: () => t });
    await Promise.all([cache.get(), cache.get(), cache.get()]);
    expect(store.loads).toBe(1);
    t = 9_999;
    await cache.get();
    expect(store.loads).toBe(1);
    t = 10_000;
    await cache.get();
    expect(store.loads).toBe(2);
  });

  it('refreshes on a key-prefix miss at most once a second', async () => {
    let t = 0;
    const store = memoryCallerStore([]);
    const cache = new CallerCache({ store, refreshMs: 10_000, now: () => t });
    await cache.get();
    const first = await cache.onMiss();
    expect(first).not.toBeNull();
    // Within the second: the snapshot as it is, the table not read again.
    expect(await cache.onMiss()).toBe(first);
    expect(store.loads).toBe(2);
    t = 1_000;
    expect(await cache.onMiss()).not.toBe(first);
    expect(store.loads).toBe(3);
  });

  it('lets every request of a burst with a key created a moment ago wait for the refresh under way (a key rotation)', async () => {
    const old = keyRow(['111111111']);
    const base = memoryCallerStore([old.row]);
    // A table read that takes a while, as over a busy database: the burst arrives while it runs.
    const store = { ...base, all: async () => (await new Promise((r) => setTimeout(r, 30)), base.all()) };
    const a = new Hono();
    a.onError(handleError);
    a.use('*', hisAuth({ store, config: { hisAllow: undefined, devRatePerMin: 0, refreshS: 10, trustCertHeaders: true } }));
    a.post('/:org', (c) => c.json(okAnswer(null, 'ok', { caller: callerOf(c).id })));
    expect((await a.request('/111111111', { method: 'POST', headers: { 'x-api-key': old.key } })).status).toBe(200);
    const rotated = keyRow(['111111111']);
    base.rows.push(rotated.row);
    const burst = await Promise.all(
      Array.from({ length: 16 }, async () => (await a.request('/111111111', { method: 'POST', headers: { 'x-api-key': rotated.key } })).status),
    );
    expect(burst).toEqual(Array(16).fill(200));
  });
});

describe('callerNow', () => {
  it('resolves the request’s credentials again against the callers as they are now: a revocation is seen after the refresh', async () => {
    let t = 0;
    const k = keyRow(['111111111']);
    const store = memoryCallerStore([k.row]);
    const a = new Hono();
    a.onError(handleError);
    a.use('*', hisAuth({ store, now: () => t, config: { hisAllow: undefined, devRatePerMin: 0, refreshS: 1, trustCertHeaders: true } }));
    a.get('/again', async (c) => {
      const before = await callerNow(c);
      k.row.revokedAt = new Date();
      const cached = await callerNow(c);
      t += 1_000;
      return c.json({ before, cached, after: await callerNow(c) });
    });
    const body = await (await a.request('/again', { headers: { 'x-api-key': k.key } })).json();
    expect(body.before).toMatchObject({ ok: true, caller: { id: k.row.id } });
    // Within the refresh interval the cached callers answer; after it, the revocation.
    expect(body.cached).toMatchObject({ ok: true });
    expect(body.after).toEqual({ ok: false, reason: expect.stringContaining('API 密钥已吊销') });
  });
});

describe('assertOrg and visibleOrgs', () => {
  const bound: Caller = { id: '1', name: 'HIS 东软', kind: 'apikey', orgs: ['111111111'], ratePerMin: 0 };
  const all: Caller = { ...bound, orgs: '*' };

  it('let a caller through for its own orgs, 403 naming the org otherwise', () => {
    expect(() => assertOrg(bound, '111111111')).not.toThrow();
    expect(() => assertOrg(all, '999999999')).not.toThrow();
    expect(() => assertOrg(bound, '999999999')).toThrow(
      expect.objectContaining({ code: 'FORBIDDEN', status: 403, desc: expect.stringContaining('999999999') }),
    );
  });

  it('give null (every org) or the list', () => {
    expect(visibleOrgs(all)).toBeNull();
    expect(visibleOrgs(bound)).toEqual(['111111111']);
  });
});

describe('hisAuth over the in-memory store', () => {
  function app(rows: StoredCaller[], config: HisAuthOptions['config'] = {}) {
    const store = memoryCallerStore(rows);
    const a = new Hono();
    a.onError(handleError);
    a.use('*', hisAuth({ store, config: { hisAllow: undefined, devRatePerMin: 0, refreshS: 10, trustCertHeaders: true, ...config } }));
    a.post('/:org', (c) => {
      assertOrg(callerOf(c), c.req.param('org'));
      return c.json(okAnswer(null, 'ok', { caller: callerOf(c).id }));
    });
    return { app: a, store };
  }

  it('answers 401 with WWW-Authenticate and the adapters’ envelope when nothing identifies the caller', async () => {
    const { app: a } = app([]);
    const res = await a.request('/111111111', { method: 'POST', headers: { 'x-forwarded-for': '10.0.0.1' } });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await res.json()).toMatchObject({ result: false, errorCode: 'UNAUTHENTICATED', desc: expect.stringContaining('10.0.0.1') });
  });

  it('accepts Authorization: Bearer like X-Api-Key and marks the caller used once a minute', async () => {
    const k = keyRow(['111111111']);
    const { app: a, store } = app([k.row]);
    const forms: Record<string, string>[] = [{ authorization: `Bearer ${k.key}` }, { 'x-api-key': k.key }];
    for (const headers of forms) {
      const res = await a.request('/111111111', { method: 'POST', headers });
      expect(res.status).toBe(200);
      expect((await res.json()).caller).toBe(k.row.id);
    }
    expect(store.touches).toEqual([k.row.id]);
  });

  it('sends Retry-After with 429', async () => {
    const k = keyRow(['111111111'], { ratePerMin: 1 });
    const { app: a } = app([k.row]);
    expect((await a.request('/111111111', { method: 'POST', headers: { 'x-api-key': k.key } })).status).toBe(200);
    const res = await a.request('/111111111', { method: 'POST', headers: { 'x-api-key': k.key } });
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(59);
    expect(await res.json()).toMatchObject({ errorCode: 'RATE_LIMITED' });
  });

  it('ignores certificate headers from a non-loopback TCP peer', async () => {
    const cert = row({ kind: 'cert', certFingerprint: FP, orgs: '*' });
    const { app: a } = app([cert]);
    const headers = { 'x-client-cert-fingerprint': FP };
    // The Node adapter's bindings: what getConnInfo reads the TCP peer from.
    const remote = { incoming: { socket: { remoteAddress: '203.0.113.9', remotePort: 40000, remoteFamily: 'IPv4' } } };
    const local = { incoming: { socket: { remoteAddress: '127.0.0.1', remotePort: 40000, remoteFamily: 'IPv4' } } };
    expect((await a.request('/111111111', { method: 'POST', headers }, remote)).status).toBe(401);
    expect((await a.request('/111111111', { method: 'POST', headers }, local)).status).toBe(200);
  });

  it.skipIf(!cert)('identifies a certificate passed as URL-encoded PEM in X-Client-Cert', async () => {
    const c = row({ kind: 'cert', certFingerprint: normalizeFingerprint(cert!.opensslFingerprint), orgs: ['111111111'] });
    const { app: a } = app([c]);
    const res = await a.request('/111111111', { method: 'POST', headers: { 'x-client-cert': encodeURIComponent(cert!.pem), 'x-client-verify': 'SUCCESS' } });
    expect(res.status).toBe(200);
    expect((await res.json()).caller).toBe(c.id);
    const failed = await a.request('/111111111', {
      method: 'POST',
      headers: { 'x-client-cert': encodeURIComponent(cert!.pem), 'x-client-verify': 'FAILED:unable to verify' },
    });
    expect(failed.status).toBe(401);
  });

  it('ignores certificate headers unless the install trusts its terminator', async () => {
    const cert = row({ kind: 'cert', certFingerprint: FP, orgs: '*' });
    const { app: a } = app([cert], { trustCertHeaders: false });
    expect((await a.request('/111111111', { method: 'POST', headers: { 'x-client-cert-fingerprint': FP } })).status).toBe(401);
  });
});

describe('cdc-callers arguments', () => {
  it('are validated with zod, naming the bad option', () => {
    expect(parseCommand(['create-key', '--name', 'HIS 东软', '--orgs', '123456789,987654321'])).toEqual({
      command: 'create-key',
      name: 'HIS 东软',
      orgs: ['123456789', '987654321'],
      rate: 600,
      json: false,
    });
    expect(parseCommand(['add-cert', '--name', 'x', '--orgs', '*', '--fingerprint', FP.toUpperCase()])).toMatchObject({ fingerprint: FP, orgs: '*' });
    expect(parseCommand(['revoke', '12'])).toEqual({ command: 'revoke', id: '12' });
    expect(() => parseCommand(['create-key', '--name', 'x'])).toThrow(/--orgs/);
    expect(() => parseCommand(['add-address', '--name', 'x', '--orgs', '1', '--cidr', '10.0.0.0/40'])).toThrow(/--cidr/);
    expect(() => parseCommand(['revoke', 'abc'])).toThrow(/--id|caller id/);
    expect(() => parseCommand(['frobnicate'])).toThrow();
    expect(() => parseCommand(['list', '--bogus'])).toThrow();
  });
});
