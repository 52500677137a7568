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
