// A bundle whose apply outlives the config function's time for a request (stack.yml `exec_timeout`,
// less a margin) is rolled back by the function itself and answered 503 `timeout`, nothing applied —
// never left running past the runtime's 504, whose outcome the platform could not know
// (docs/config-bundles.md "Answers"). A bundle that fits is applied as ever.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FaasFunction } from '../../shared/fn/index.js';
import { DeadlinePassed, withinDeadline, withTx } from '../../shared/db/index.js';
import { bundleDoc, configFunctionOn, platformKey, signed, triggersWith } from './config-bundles-helpers.js';

const TOKEN = 'cfg-deadline-token-0123456789abcdefgh';
const platform = platformKey();
let fn: FaasFunction;
let db: pg.Pool;
let close: (() => Promise<void>) | undefined;
const before = process.env.exec_timeout;
const beforeStatement = process.env.DB_STATEMENT_TIMEOUT_MS;

beforeAll(async () => {
  // Read by the config function's settings at init: 2 s, so an apply may run 1.6 s.
  process.env.exec_timeout = '2s';
  // Statements may run two minutes by the session's own limit: only the deadline can end one sooner.
  process.env.DB_STATEMENT_TIMEOUT_MS = '120000';
  ({ fn, db, close } = await configFunctionOn('cfgdl', TOKEN, platform.publicKeyPem));
}, 60_000);
afterAll(async () => {
  await close?.();
  if (before === undefined) delete process.env.exec_timeout;
  else process.env.exec_timeout = before;
  if (beforeStatement === undefined) delete process.env.DB_STATEMENT_TIMEOUT_MS;
  else process.env.DB_STATEMENT_TIMEOUT_MS = beforeStatement;
});

const post = (body: string) =>
  fn.app.request('/bundles', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body });

const state = async () => ({
  steps: (await db.query('SELECT seq, version FROM config_bundle ORDER BY seq')).rows,
  drugs: (await db.query("SELECT count(*)::int AS n FROM code_national WHERE domain = 'drug'")).rows[0].n,
  domain: (await db.query("SELECT list_version, code_count, list_seq FROM code_domain WHERE domain = 'drug'")).rows,
});

describe('an apply bounded by the function’s own time', () => {
  it('a national list too large for the time is rolled back and answered 503 timeout, nothing applied; a small bundle then applies', {
    timeout: 120_000,
  }, async () => {
    const was = await state();
    const codes = Array.from({ length: 200_000 }, (_, i) => ({ code: `T${String(i).padStart(7, '0')}`, name: `时限药品${i}号注射液` }));
    const res = await post(signed(bundleDoc(1, { codeTables: [{ domain: 'drug', version: 'deadline-1', codes }] }), platform.key));
    const body = (await res.json()) as { error: { code: string; reason: string }; applied: boolean };
    expect(res.status, JSON.stringify(body).slice(0, 500)).toBe(503);
    expect(body.applied).toBe(false);
    expect(body.error.code).toBe('timeout');
    expect(body.error.reason).toMatch(/did not finish within this front's time for a request.*rolled back, nothing applied/);
    expect(await state()).toEqual(was);

    const small = await post(signed(bundleDoc(1, { triggers: triggersWith('cfg-kw-deadline', 'deadline-small') }), platform.key));
    expect(small.status, await small.clone().text()).toBe(201);
    expect(await small.json()).toMatchObject({ applied: true, version: 1, changed: ['triggers'] });
  });
});

describe('the deadline inside the database', () => {
  it('a statement running past it is cancelled by the server (57014); one started after it is not sent', async () => {
    const slow = withTx(db, async (tx) => {
      await withinDeadline(tx, { at: Date.now() + 300, capMs: 20_000 });
      await tx.query('SELECT pg_sleep(5)');
    });
    await expect(slow).rejects.toMatchObject({ code: '57014' });
    const late = withTx(db, async (tx) => {
      await withinDeadline(tx, { at: Date.now() - 1, capMs: 20_000 });
      await tx.query('SELECT 1');
    });
    await expect(late).rejects.toBeInstanceOf(DeadlinePassed);
  });

  it('a bundle waiting for the bundles’ lock gives up at the deadline, not at the session’s statement timeout', { timeout: 30_000 }, async () => {
    const was = await state();
    const holder = await db.connect();
    try {
      // The bundles' lock, as a long apply holds it (shared/configbundle/store.ts).
      await holder.query('SELECT pg_advisory_lock(7204330)');
      const res = await post(signed(bundleDoc(2, { triggers: triggersWith('cfg-kw-locked', 'deadline-locked') }), platform.key));
      const body = (await res.json()) as { error: { code: string; reason: string }; applied: boolean };
      expect(res.status, JSON.stringify(body)).toBe(503);
      expect(body).toMatchObject({ applied: false, error: { code: 'timeout', reason: expect.stringMatching(/did not finish within this front's time/) } });
    } finally {
      await holder.query('SELECT pg_advisory_unlock(7204330)').catch(() => undefined);
      holder.release();
    }
    expect(await state()).toEqual(was);
  });
});
