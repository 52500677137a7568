// Refusals on the configuration port (docs/config-bundles.md §3 "Answers", "Refusals kept", §4) through
// the config function's app on a private, migrated database: each names what is wrong; each is logged
// (who, what, never the document), and failed signatures and tokens not accepted are in the console's
// audit, counted so that a flood adds to a count instead of rows.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { FaasFunction } from '../../shared/fn/index.js';
import { auditTrail } from '../../shared/console/audit.js';
import { HOUR_ROWS, noteRefusal } from '../../shared/configbundle/refusals.js';
import { tokenLabel } from '../../shared/configbundle/store.js';
import { signBundle } from '../../shared/configbundle/sign.js';
import { bundleDoc, configFunctionOn, platformKey, signed, triggersWith } from './config-bundles-helpers.js';

const TOKEN = 'cfg-refusal-token-0123456789abcdefghij';
const platform = platformKey();
const stranger = platformKey();
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

describe('a version already applied: the bundle in force sent again, an exact replay, or another document under that number', () => {
  it('answers the bundle in force sent again as applied, says an exact replay of an older one is one, and that a different document reusing the number differs (both digests)', async () => {
    const doc3 = bundleDoc(3, { triggers: triggersWith('cfgr-three', 'r3') });
    const first = await post('/bundles', signed(doc3, platform.key));
    expect(first.status).toBe(201);
    const { seq } = (await first.json()) as { seq: number };
    const digest = (await (await fn.app.request('/bundles/current', { headers: auth })).json()) as { digest: string };
    const steps = async () => (await db.query('SELECT count(*)::int AS n FROM config_bundle')).rows[0].n as number;
    const before = await steps();

    // The same request again — the platform's retry, or the runtime's after a replica died between
    // the commit and the answer: the bundle is in force, and the answer says so; nothing is written.
    const again = await post('/bundles', signed(doc3, platform.key));
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ applied: true, replay: true, version: 3, seq, changed: [] });
    expect(await steps()).toBe(before);

    // Once a later bundle is in force, version 3 sent again is an exact replay of an applied version: refused.
    expect((await post('/bundles', signed(bundleDoc(4, { triggers: triggersWith('cfgr-four', 'r4') }), platform.key))).status).toBe(201);
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

describe('refusals leave a trace: the log, and the audit for signatures and tokens', () => {
  const trail = () => auditTrail(db, { from: new Date(Date.now() - 3_600_000), to: new Date(Date.now() + 60_000), limit: 1000 });
  type Write = { mock: { calls: unknown[][] } };
  const logged = (write: Write) =>
    write.mock.calls
      .map((c) => String(c[0]))
      .filter((l: string) => l.startsWith('{'))
      .map((l: string) => JSON.parse(l) as Record<string, unknown>);

  it('a bundle by an untrusted key, an altered one, one without signature: logged and audited with key id, version and digest, never the content', async () => {
    const write = vi.spyOn(process.stdout, 'write');
    try {
      const doc = bundleDoc(20, { triggers: triggersWith('cfgr-secretterm', 'r20') });
      expect((await post('/bundles', signed(doc, stranger.key))).status).toBe(422);
      const altered = signBundle(doc, platform.key);
      altered.bundle = altered.bundle.replace('r20', 'r2O');
      expect((await post('/bundles', JSON.stringify(altered))).status).toBe(422);
      expect((await post('/bundles', JSON.stringify({ bundle: doc }))).status).toBe(422);

      const lines = logged(write).filter((l) => l.msg === 'configuration port refused a request');
      const strangerId = signBundle(doc, stranger.key).sig.keyId;
      expect(lines).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            code: 'unknown-key',
            status: 422,
            route: 'POST /bundles',
            by: tokenLabel(TOKEN),
            version: 20,
            keyId: strangerId,
            digest: expect.stringMatching(/^[0-9a-f]{64}$/),
          }),
          expect.objectContaining({ code: 'bad-signature', version: 20 }),
          expect.objectContaining({ code: 'missing-signature', version: 20 }),
        ]),
      );
      // Never the document: not its terms, not its text.
      const all = (write as Write).mock.calls.map((c) => String(c[0])).join('');
      expect(all).not.toContain('cfgr-secretterm');
    } finally {
      write.mockRestore();
    }
    const rows = (await trail()).filter((r) => r.action === 'bundle-refused');
    expect(rows.map((r) => r.detail?.split(' ')[0]).sort()).toEqual(['bad-signature', 'missing-signature', 'unknown-key']);
    const unknown = rows.find((r) => r.detail?.startsWith('unknown-key'))!;
    expect(unknown).toMatchObject({ source: 'bundle', username: tokenLabel(TOKEN) });
    expect(unknown.detail).toMatch(/^unknown-key POST \/bundles ×1（该小时内） 声称 v20 key [0-9a-f]{16}… SM3 [0-9a-f]{16}…$/);
  });

  it('a wrong or missing token is logged and audited (no token label: none was accepted), counted not repeated', async () => {
    for (let i = 0; i < 5; i++)
      expect((await fn.app.request('/bundles', { headers: { authorization: `Bearer wrong-token-${i}-0123456789abcdef` } })).status).toBe(401);
    expect((await fn.app.request('/bundles', { method: 'POST', body: '{}' })).status).toBe(401);
    const rows = (await trail()).filter((r) => r.action === 'config-token-refused');
    expect(rows.map((r) => [r.username, r.detail])).toEqual(
      expect.arrayContaining([
        [null, 'unauthenticated GET /bundles ×5（该小时内）'],
        [null, 'unauthenticated POST /bundles ×1（该小时内）'],
      ]),
    );
  });

  it('a stale version and a bad format are logged but not audited', async () => {
    const before = (await db.query('SELECT count(*)::int AS n, coalesce(sum(attempts), 0)::int AS a FROM config_refusal')).rows[0];
    const write = vi.spyOn(process.stdout, 'write');
    try {
      expect((await post('/bundles', signed(bundleDoc(1, { triggers: triggersWith('cfgr-stale', 'rs') }), platform.key))).status).toBe(409);
      expect((await post('/bundles', signed(bundleDoc(22, { triggers: { nonsense: true } }), platform.key))).status).toBe(422);
      // stale-version was said earlier this minute (the replay above): once a minute per kind, caller and address.
      expect(logged(write)).toEqual(
        expect.arrayContaining([expect.objectContaining({ msg: 'configuration port refused a request', code: 'invalid-bundle', version: 22 })]),
      );
    } finally {
      write.mockRestore();
    }
    expect((await db.query('SELECT count(*)::int AS n, coalesce(sum(attempts), 0)::int AS a FROM config_refusal')).rows[0]).toEqual(before);
  });

  it('a flood adds to counts: 300 bad signatures are one row, and 3×HOUR_ROWS addresses at most HOUR_ROWS + 1 rows', async () => {
    const altered = signBundle(bundleDoc(21, { triggers: triggersWith('cfgr-flood', 'r21') }), platform.key);
    altered.bundle = altered.bundle.replace('r21', 'r2l');
    const bad = "SELECT attempts::int AS n, version::int AS v FROM config_refusal WHERE code = 'bad-signature'";
    expect((await db.query(bad)).rows).toEqual([{ n: 1, v: 20 }]); // the altered v20 above
    const write = vi.spyOn(process.stdout, 'write');
    try {
      for (let i = 0; i < 300; i++) expect((await post('/bundles', JSON.stringify(altered))).status).toBe(422);
      // Said once this minute (bad-signature was said above), not 300 times.
      expect(logged(write).filter((l) => l.code === 'bad-signature')).toHaveLength(0);
    } finally {
      write.mockRestore();
    }
    expect((await db.query(bad)).rows).toEqual([{ n: 301, v: 21 }]);

    const hour = new Date('2030-01-01T03:30:00Z');
    for (let i = 0; i < 3 * HOUR_ROWS; i++)
      await noteRefusal(
        db,
        { status: 401, code: 'unauthenticated', caller: null, address: `10.9.${i >> 8}.${i & 255}`, method: 'GET', path: '/bundles' },
        hour,
      );
    const r = (await db.query("SELECT count(*)::int AS rows, sum(attempts)::int AS attempts FROM config_refusal WHERE hour = '2030-01-01T03:00:00Z'")).rows[0];
    expect(r).toEqual({ rows: HOUR_ROWS + 1, attempts: 3 * HOUR_ROWS });
  }, 60_000);
});
