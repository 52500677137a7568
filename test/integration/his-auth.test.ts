// HIS caller authentication on the real database: a tiny Hono app with hisAuth + assertOrg, and the
// cdc-callers command as a real process.
//
// The file works in a database of its own (created from the test server, migrated, dropped at the
// end): whether the callers table holds an address rule is global to a database — it switches the
// HIS_ALLOW development default off — so rules made here must not reach other files' functions.
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../infra/db/migrate.js';
import { handleError, okAnswer } from '../../shared/http/errors.js';
import { assertOrg, callerOf, generateApiKey, hisAuth, visibleOrgs } from '../../shared/http/auth.js';
import { insertCaller, revokeCaller, type Orgs } from '../../shared/http/auth-store.js';
import { databaseUrl, uniqueOrg } from '../setup/db.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const REFRESH_S = 0.3;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const afterRefresh = () => sleep(REFRESH_S * 1000 + 100);

const dbName = `cdc_his_auth_${randomInt(36 ** 6).toString(36)}`;
const url = (() => {
  const u = new URL(databaseUrl());
  u.pathname = `/${dbName}`;
  return u.toString();
})();
let db: pg.Pool;

function makeApp() {
  const app = new Hono();
  app.onError(handleError);
  app.use(
    '*',
    hisAuth({
      db: () => db,
      config: { hisAllow: '127.0.0.1/8,::1/128', devRatePerMin: 0, refreshS: REFRESH_S, trustCertHeaders: true },
      missRefreshMs: 0,
    }),
  );
  app.post('/records/:org', (c) => {
    const caller = callerOf(c);
    assertOrg(caller, c.req.param('org'));
    return c.json(okAnswer(null, 'stored', { caller: { id: caller.id, kind: caller.kind } }));
  });
  app.get('/visible', (c) => c.json({ orgs: visibleOrgs(callerOf(c)) }));
  return app;
}
const app = makeApp();

function post(org: string, headers: Record<string, string>) {
  return app.request(`/records/${org}`, { method: 'POST', headers: { 'x-forwarded-for': '198.51.100.250', ...headers } });
}

async function newKey(orgs: Orgs, ratePerMin = 0) {
  const k = generateApiKey();
  const row = await insertCaller(db, { kind: 'apikey', name: 'HIS 测试', orgs, ratePerMin, keyPrefix: k.prefix, keyHash: k.hash });
  return { key: k.key, id: row.id };
}

beforeAll(async () => {
  const admin = new pg.Client({ connectionString: databaseUrl() });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  await admin.end();
  await migrate(url);
  db = new pg.Pool({ connectionString: url, max: 4 });
});

afterAll(async () => {
  await server?.close();
  await db?.end();
  const admin = new pg.Client({ connectionString: databaseUrl() });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${dbName}`);
  await admin.end();
});

let server: { close(): Promise<void> } | undefined;

// Runs first: the development default holds only while the table has no address rule.
describe('development default (HIS_ALLOW, no address rule yet)', () => {
  it('admits loopback as the dev caller bound to every org', async () => {
    const res = await post(uniqueOrg(), { 'x-forwarded-for': '127.0.0.1' });
    expect(res.status).toBe(200);
    expect((await res.json()).caller).toEqual({ id: 'dev', kind: 'dev' });
    const vis = await app.request('/visible', { headers: { 'x-forwarded-for': '127.0.0.1' } });
    expect(await vis.json()).toEqual({ orgs: null });
  });
});

describe('API keys', () => {
  it('no identity → 401 naming what is missing', async () => {
    const res = await post(uniqueOrg(), {});
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ result: false, errorCode: 'UNAUTHENTICATED', desc: expect.stringMatching(/no API key.*198\.51\.100\.250/) });
  });

  it('unknown key → 401 that never echoes the key', async () => {
    const key = generateApiKey().key;
    const res = await post(uniqueOrg(), { 'x-api-key': key });
    expect(res.status).toBe(401);
    const text = await res.text();
    expect(text).toMatch(/not registered/);
    expect(text).not.toContain(key.slice(15));
  });

  it('a presented key that fails never falls back to the address (even loopback)', async () => {
    const res = await post(uniqueOrg(), { 'x-forwarded-for': '127.0.0.1', authorization: 'Bearer not-a-key' });
    expect(res.status).toBe(401);
    expect((await res.json()).desc).toMatch(/malformed/);
  });

  it('a key made a moment ago works at once (a prefix miss refreshes the cache)', async () => {
    const org = uniqueOrg();
    await post(org, {}); // the cache is loaded
    const { key, id } = await newKey([org]);
    const res = await post(org, { 'x-api-key': key });
    expect(res.status).toBe(200);
    expect((await res.json()).caller).toEqual({ id, kind: 'apikey' });
  });

  it('key bound to org A posting org B → 403 naming B', async () => {
    const [a, b] = [uniqueOrg(), uniqueOrg()];
    const { key } = await newKey([a]);
    expect((await post(a, { authorization: `Bearer ${key}` })).status).toBe(200);
    const res = await post(b, { authorization: `Bearer ${key}` });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ errorCode: 'FORBIDDEN', desc: expect.stringContaining(b) });
    const vis = await app.request('/visible', { headers: { 'x-api-key': key } });
    expect(await vis.json()).toEqual({ orgs: [a] });
  });

  it('revoked key → 401 after the refresh interval', async () => {
    const org = uniqueOrg();
    const { key, id } = await newKey([org]);
    expect((await post(org, { 'x-api-key': key })).status).toBe(200);
    expect((await revokeCaller(db, id)).status).toBe('revoked');
    await afterRefresh();
    const res = await post(org, { 'x-api-key': key });
    expect(res.status).toBe(401);
    expect((await res.json()).desc).toMatch(/revoked/);
  });

  it('marks last_used_at', async () => {
    const org = uniqueOrg();
    const { key, id } = await newKey([org]);
    expect((await post(org, { 'x-api-key': key })).status).toBe(200);
    await expect
      .poll(async () => (await db.query('SELECT last_used_at FROM his_caller WHERE id = $1', [id])).rows[0].last_used_at, { timeout: 3000 })
      .toBeInstanceOf(Date);
  });

  it('past the per-minute rate → 429 with Retry-After', async () => {
    const org = uniqueOrg();
    const { key } = await newKey([org], 2);
    expect((await post(org, { 'x-api-key': key })).status).toBe(200);
    expect((await post(org, { 'x-api-key': key })).status).toBe(200);
    const res = await post(org, { 'x-api-key': key });
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(29);
    expect(await res.json()).toMatchObject({ result: false, errorCode: 'RATE_LIMITED' });
  });
});

describe('client certificates', () => {
  const fingerprint = Array.from({ length: 32 }, () => randomInt(256).toString(16).padStart(2, '0')).join('');
  const nonLoopback = Object.values(networkInterfaces())
    .flat()
    .find((i) => i && !i.internal && i.family === 'IPv4')?.address;

  it('the fingerprint header from a loopback peer identifies the certificate’s caller', async () => {
    const org = uniqueOrg();
    const row = await insertCaller(db, { kind: 'cert', name: 'HIS 证书', orgs: [org], ratePerMin: 0, certFingerprint: fingerprint });
    await afterRefresh();
    const colons = fingerprint.toUpperCase().match(/../g)!.join(':');
    const res = await post(org, { 'x-client-cert-fingerprint': colons, 'x-client-cert-subject': 'CN=his.example' });
    expect(res.status).toBe(200);
    expect((await res.json()).caller).toEqual({ id: row.id, kind: 'cert' });
    expect((await post(uniqueOrg(), { 'x-client-cert-fingerprint': fingerprint })).status).toBe(403);
  });

  it.skipIf(!nonLoopback)('the fingerprint header from a non-loopback TCP peer is ignored', async () => {
    const s: ServerType = await new Promise((ok) => {
      const srv = serve({ fetch: app.fetch, port: 0, hostname: '0.0.0.0' }, () => ok(srv));
    });
    server = { close: () => new Promise((ok) => s.close(() => ok())) };
    const port = (s.address() as { port: number }).port;
    const org = (await db.query('SELECT org_codes FROM his_caller WHERE cert_fingerprint = $1', [fingerprint])).rows[0].org_codes;
    // The same headers that work from loopback, and a forged X-Forwarded-For: none of it counts.
    const res = await fetch(`http://${nonLoopback}:${port}/records/${org}`, {
      method: 'POST',
      headers: { 'x-client-cert-fingerprint': fingerprint, 'x-forwarded-for': '127.0.0.1' },
    });
    expect(res.status).toBe(401);
    expect((await res.json()).desc).toContain(nonLoopback);
  });
});

// Runs last in this file: from here on the table holds an address rule.
describe('address rules', () => {
  it('admit their CIDR for their orgs only, and switch the development default off', async () => {
    const [a, b] = [uniqueOrg(), uniqueOrg()];
    const row = await insertCaller(db, { kind: 'address', name: 'HIS 旧接口', orgs: [a], ratePerMin: 0, cidr: '203.0.113.0/24' });
    await afterRefresh();
    const ok = await post(a, { 'x-forwarded-for': '203.0.113.17' });
    expect(ok.status).toBe(200);
    expect((await ok.json()).caller).toEqual({ id: row.id, kind: 'address' });
    expect((await post(b, { 'x-forwarded-for': '203.0.113.17' })).status).toBe(403);
    expect((await post(a, { 'x-forwarded-for': '203.0.114.1' })).status).toBe(401);
    expect((await post(a, { 'x-forwarded-for': '127.0.0.1' })).status).toBe(401);
  });
});

// Each command is a fresh `node --import tsx` (1–3 s on a busy 2-core machine): a longer timeout.
describe('cdc-callers (a real process)', { timeout: 90_000 }, () => {
  function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((ok, fail) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'infra/callers/cli.ts', ...args], {
        cwd: root,
        env: { ...process.env, DATABASE_URL: url },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', fail);
      child.on('exit', (code) => ok({ code, stdout, stderr }));
    });
  }

  it('creates a key shown once, lists it without secrets, and revokes it', async () => {
    const org = uniqueOrg();
    const made = await cli('create-key', '--name', 'HIS 东软', '--orgs', `${org},${uniqueOrg()}`, '--rate', '100');
    expect(made, made.stderr).toMatchObject({ code: 0 });
    const key = /^key: (cdc_\S+)$/m.exec(made.stdout)?.[1];
    expect(key).toMatch(/^cdc_[a-z0-9]{10}_[A-Za-z0-9_-]{43}$/);
    const id = /created API key (\d+)/.exec(made.stdout)![1]!;

    expect((await post(org, { 'x-api-key': key! })).status).toBe(200);

    const listed = await cli('list');
    expect(listed.code).toBe(0);
    const line = listed.stdout.split('\n').find((l) => l.startsWith(`${id} `))!;
    expect(line).toContain(`cdc_${key!.slice(4, 14)}_…`);
    expect(line).toContain('HIS 东软');
    expect(line).toContain(org);
    const stored = (await db.query('SELECT key_hash FROM his_caller WHERE id = $1', [id])).rows[0].key_hash;
    expect(listed.stdout).not.toContain(key!.slice(15));
    expect(listed.stdout).not.toContain(stored);
    const json = await cli('list', '--json');
    expect(json.stdout).not.toContain(stored);
    expect(JSON.parse(json.stdout)).toContainEqual(
      expect.objectContaining({ id, kind: 'apikey', orgs: [org, expect.any(String)], ratePerMin: 100, revokedAt: null }),
    );

    const revoked = await cli('revoke', id);
    expect(revoked, revoked.stderr).toMatchObject({ code: 0 });
    await afterRefresh();
    expect((await post(org, { 'x-api-key': key! })).status).toBe(401);
    const after = JSON.parse((await cli('list', '--json')).stdout) as { id: string; revokedAt: string | null; lastUsedAt: string | null }[];
    expect(after.find((c) => c.id === id)).toMatchObject({ revokedAt: expect.any(String), lastUsedAt: expect.any(String) });
  });

  it('adds a certificate from the colon form and an address rule', async () => {
    const fp = Array.from({ length: 32 }, () => randomInt(256).toString(16).padStart(2, '0').toUpperCase()).join(':');
    const cert = await cli('add-cert', '--name', 'HIS 证书', '--fingerprint', fp, '--orgs', '*');
    expect(cert, cert.stderr).toMatchObject({ code: 0 });
    const dup = await cli('add-cert', '--name', 'again', '--fingerprint', fp.toLowerCase(), '--orgs', '*');
    expect(dup.code).toBe(1);
    const addr = await cli('add-address', '--name', 'HIS 旧接口', '--cidr', '10.1.2.0/24', '--orgs', uniqueOrg());
    expect(addr, addr.stderr).toMatchObject({ code: 0 });
    const all = JSON.parse((await cli('list', '--json')).stdout) as Record<string, unknown>[];
    expect(all).toContainEqual(expect.objectContaining({ kind: 'cert', certFingerprint: fp.replace(/:/g, '').toLowerCase(), orgs: '*' }));
    expect(all).toContainEqual(expect.objectContaining({ kind: 'address', cidr: '10.1.2.0/24' }));
  });

  it('refuses bad arguments with exit 2, naming them', async () => {
    const r = await cli('create-key', '--name', 'x', '--orgs', "1'; DROP TABLE his_caller; --");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--orgs/);
    expect((await cli('revoke', '999999999')).code).toBe(1);
  });
});
