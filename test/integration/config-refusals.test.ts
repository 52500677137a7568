// Refusals on the configuration port (docs/config-bundles.md §3 "Answers", §4) through the config
// function's app on a private, migrated database: each names what is wrong.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FaasFunction } from '../../shared/fn/index.js';
import { bundleDoc, configFunctionOn, platformKey, signed, triggersWith } from './config-bundles-helpers.js';

const TOKEN = 'cfg-refusal-token-0123456789abcdefghij';
const platform = platformKey();
let fn: FaasFunction;
let db: pg.Pool;
let close: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ fn, db, close } = await configFunctionOn('cfgr', TOKEN, platform.publicKeyPem));
});
afterAll(async () => {
  await close?.();
});

const auth = { authorization: `Bearer ${TOKEN}` };
const post = (path: string, body: string, headers: Record<string, string> = auth) =>
  fn.app.request(path, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body });
type Refusal = { error: { code: string; reason: string; issues?: Array<{ field: string; rule: string }> }; applied: false };

describe('a rollback refusal names what is wrong', () => {
  it('names an unknown key and the reason over its length limit (400 invalid-request, issues)', async () => {
    expect((await post('/bundles', signed(bundleDoc(1, { triggers: triggersWith('cfgr-one', 'r1') }), platform.key))).status).toBe(201);
    expect((await post('/bundles', signed(bundleDoc(2, { triggers: triggersWith('cfgr-two', 'r2') }), platform.key))).status).toBe(201);

    const extra = await post('/bundles/1/rollback', JSON.stringify({ reason: 'x', extra: 1 }));
    expect(extra.status).toBe(400);
    const e = (await extra.json()) as Refusal;
    expect(e.error.code).toBe('invalid-request');
    expect(e.error.reason).toContain('extra');
    expect(e.error.issues).toEqual([expect.objectContaining({ field: 'extra', rule: 'unrecognized_keys' })]);

    const long = await post('/bundles/1/rollback', JSON.stringify({ reason: '回'.repeat(600) }));
    expect(long.status).toBe(400);
    const l = (await long.json()) as Refusal;
    expect(l.error.reason).toMatch(/reason: .*500/);
    expect(l.error.issues).toEqual([expect.objectContaining({ field: 'reason', rule: 'too_big' })]);
    // Nothing rolled back.
    expect((await db.query("SELECT count(*)::int AS n FROM config_bundle WHERE action = 'rollback'")).rows[0].n).toBe(0);
  });
});

describe('a version already applied: an exact replay, or another document under that number', () => {
  it('says an exact replay is one, and that a different document reusing the number differs (both digests)', async () => {
    const doc3 = bundleDoc(3, { triggers: triggersWith('cfgr-three', 'r3') });
    expect((await post('/bundles', signed(doc3, platform.key))).status).toBe(201);
    const digest = (await (await fn.app.request('/bundles/current', { headers: auth })).json()) as { digest: string };

    const replay = await post('/bundles', signed(doc3, platform.key));
    expect(replay.status).toBe(409);
    const r = (await replay.json()) as Refusal;
    expect(r.error.code).toBe('stale-version');
    expect(r.error.reason).toContain('exact replay');
    expect(r.error.issues).toBeUndefined();

    const other = await post('/bundles', signed(bundleDoc(3, { triggers: triggersWith('cfgr-three-b', 'r3b') }), platform.key));
    expect(other.status).toBe(409);
    const o = (await other.json()) as Refusal;
    expect(o.error.code).toBe('stale-version');
    expect(o.error.reason).toContain('content differs');
    expect(o.error.reason).toContain(digest.digest.slice(0, 16));
    expect(o.error.reason).not.toContain('exact replay');
    expect(o.error.issues).toEqual([expect.objectContaining({ field: 'version', rule: 'version-reused' })]);
  });
});

describe('issuedAt far from the front clock', () => {
  const at = (version: number, issuedAt: string) =>
    JSON.stringify({ ...JSON.parse(bundleDoc(version, { triggers: triggersWith(`cfgr-at${version}`, `at${version}`) })), issuedAt });
  it('applies a bundle issued long ago or in the future, with a warning naming it; none for a current one', async () => {
    const old = await post('/bundles', signed(at(10, '2001-01-01T00:00:00+08:00'), platform.key));
    expect(old.status).toBe(201);
    expect(((await old.json()) as { warnings?: string[] }).warnings).toEqual([expect.stringMatching(/issuedAt 2001-01-01T00:00:00\+08:00 is \d+ days before/)]);
    const ahead = await post('/bundles', signed(at(11, new Date(Date.now() + 3 * 86_400_000).toISOString()), platform.key));
    expect(ahead.status).toBe(201);
    expect(((await ahead.json()) as { warnings?: string[] }).warnings).toEqual([expect.stringMatching(/day\(s\) after this front's clock/)]);
    const now = await post('/bundles', signed(at(12, new Date().toISOString()), platform.key));
    expect(now.status).toBe(201);
    expect(((await now.json()) as { warnings?: string[] }).warnings).toBeUndefined();
  });
});
