// Activation and networks (docs/activation.md) through the config function on a private database: an
// authorization code signed with the national platform's key activates the front on the test network;
// a production code is refused until the org's latest acceptance self-test passed, then moves the
// front to production in one audited step; a code with a bad signature, one signed as a configuration
// bundle, an expired one and a replay are refused and change nothing; production never goes back to test.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activation, CODE_FORMAT } from '../../shared/activation/index.js';
import { settingsFacts } from '../../shared/console/figures.js';
import { renderSettings } from '../../functions/web/settings-page.js';
import { renderStatusPage } from '../../functions/web/page.js';
import { frontStatus } from '../../shared/status/index.js';
import { signBundle } from '../../shared/configbundle/sign.js';
import type { FaasFunction } from '../../shared/fn/index.js';
import { configFunctionOn, platformKey } from './config-bundles-helpers.js';

const TOKEN = 'activation-test-token-0123456789abc';
const platform = platformKey();
const stranger = platformKey();
const ORG = '440106777';
let fn: FaasFunction;
let db: pg.Pool;
let close: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ fn, db, close } = await configFunctionOn('act', TOKEN, platform.publicKeyPem));
});
afterAll(async () => {
  await close?.();
});

const auth = { authorization: `Bearer ${TOKEN}` };
const code = (network: 'test' | 'production', extra: Record<string, unknown> = {}) =>
  JSON.stringify({ format: CODE_FORMAT, orgCode: ORG, frontId: 'FRONT-01', network, issuedAt: new Date().toISOString(), issuer: '国家平台(测试)', ...extra });
const file = (text: string, key = platform.key, tag = CODE_FORMAT) => JSON.stringify(signBundle(text, key, tag));
const post = (body: string) => fn.app.request('/activation', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body });
const state = async () => ({
  rows: (await db.query('SELECT seq, network FROM front_activation ORDER BY seq')).rows,
  audit: (await db.query("SELECT count(*)::int AS n FROM console_audit WHERE action = 'activation'")).rows[0].n,
});
const errorOf = async (res: Response) => ((await res.json()) as { error: { code: string; reason: string } }).error;
const acceptance = (ok: boolean) =>
  db.query(`INSERT INTO console_acceptance (org_code, started_at, finished_at, by_user, ok, report) VALUES ($1, now(), now(), 'op', $2, '{}')`, [ORG, ok]);

describe('activation', () => {
  it('is not activated before a code; the token is required', async () => {
    expect((await fn.app.request('/activation')).status).toBe(401);
    const res = await fn.app.request('/activation', { headers: auth });
    expect(await res.json()).toEqual({ activation: null, history: [] });
  });

  it('a test code activates the front on the test network, audited', async () => {
    const res = await post(file(code('test')));
    expect(res.status, await res.clone().text()).toBe(201);
    const got = (await (await fn.app.request('/activation', { headers: auth })).json()) as { activation: { network: string; orgCode: string } };
    expect(got.activation).toMatchObject({ network: 'test', orgCode: ORG });
    expect((await state()).audit).toBe(1);
    // The status page (运行状态, every role and the HIS's IT staff) says which network.
    const status = String(renderStatusPage(await frontStatus(db), 'Asia/Shanghai'));
    expect(status).toMatch(/<p data-k="network" class="">测试网（试运行）<\/p><dl><dt>机构<\/dt><dd>[^<]+<\/dd><dt>前置编号<\/dt>/);
  });

  it('refuses a bad signature, a bundle signature, an unknown key, an expired code and a replay — nothing changes', async () => {
    const before = await state();
    const text = code('test', { frontId: 'FRONT-02' });
    const signed = JSON.parse(file(text)) as { bundle: string; sig: { value: string } };
    const altered = JSON.stringify({ ...signed, bundle: text.replace('FRONT-02', 'FRONT-03') });
    expect((await errorOf(await post(altered))).code).toBe('bad-signature');
    // Signed by the same platform key, but as a configuration bundle: not an authorization code.
    expect((await errorOf(await post(file(text, platform.key, 'cdc-config-bundle/1')))).code).toBe('bad-signature');
    expect((await errorOf(await post(file(text, stranger.key)))).code).toBe('unknown-key');
    expect((await errorOf(await post(file(code('test', { expiresAt: '2020-01-01T00:00:00Z' }))))).code).toBe('expired');
    const once = file(text);
    expect((await post(once)).status).toBe(201);
    const after = await state();
    expect((await errorOf(await post(once))).code).toBe('already-applied');
    expect(await state()).toEqual(after);
    expect(after.rows.length).toBe(before.rows.length + 1);
  });

  it('the switch to production waits for a passed acceptance self-test, then is one audited step', async () => {
    const before = await state();
    let res = await post(file(code('production')));
    expect(res.status).toBe(409);
    expect((await errorOf(res)).reason).toMatch(/验收自检.*none was run/);
    await acceptance(false);
    res = await post(file(code('production')));
    expect((await errorOf(res)).reason).toMatch(/did not pass/);
    expect(await state()).toEqual(before);
    await acceptance(true);
    res = await post(file(code('production')));
    expect(res.status, await res.clone().text()).toBe(201);
    const a = ((await res.json()) as { activation: { network: string; acceptanceRun: string } }).activation;
    expect(a.network).toBe('production');
    expect(a.acceptanceRun).toMatch(/^\d+$/);
    const audit = await db.query("SELECT detail FROM console_audit WHERE action = 'activation' ORDER BY audit_id DESC LIMIT 1");
    expect(audit.rows[0].detail).toMatch(/test → production（验收自检 #\d+）/);
    // The console's settings page shows the network in force and the self-test it relied on.
    const known = {
      timeZone: 'Asia/Shanghai',
      allowedHosts: ['localhost'],
      idleMin: 30,
      sessionH: 12,
      lockoutAfter: 5,
      lockoutMin: 15,
      pushNudgeUrl: undefined,
      production: false,
    };
    const page = String(renderSettings(await settingsFacts(db as never), known, 'localhost:8884', 'Asia/Shanghai', await activation(db)));
    expect(page).toContain('data-k="network">正式网<');
    expect(page).toMatch(new RegExp(`机构 ${ORG}，前置 FRONT-01[\\s\\S]*?依据验收自检 <a href="/acceptance/${a.acceptanceRun}">`));
  });

  it('a test code never takes a production front back', async () => {
    const res = await post(file(code('test', { frontId: 'FRONT-09' })));
    expect(res.status).toBe(409);
    expect((await errorOf(res)).code).toBe('already-production');
  });
});
