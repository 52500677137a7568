// Configuration bundles (docs/config-bundles.md) through the config function's app on a private,
// migrated database: a signed bundle is applied whole and takes effect where the functions read
// (the code cache ingest uses, the warning function's trigger lists and aberration definitions); a
// bad signature, a section that fails its checks — before any write or halfway through the writes —
// and a replayed version change nothing (the database compared before and after); rollback returns
// to what a version left, audited; history and the version check answer.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import shippedDefs from '../../shared/aberration/definitions.json' with { type: 'json' };
import { createCodeCache } from '../../shared/codes/cache.js';
import { definitionsInForce, platformsInForce, triggersInForce } from '../../shared/configbundle/active.js';
import { compareReleases } from '../../shared/configbundle/release.js';
import type { Definitions } from '../../shared/aberration/config.js';
import type { FaasFunction } from '../../shared/fn/index.js';
import { loadTriggers } from '../../shared/warning/triggers.js';
import { algorithms, bundleDoc, configFunctionOn, platformKey, signed, triggersWith } from './config-bundles-helpers.js';

const TOKEN = 'cfg-test-token-0123456789abcdefghij';
const platform = platformKey();
const stranger = platformKey();
let fn: FaasFunction;
let db: pg.Pool;
let close: (() => Promise<void>) | undefined;
const shippedTriggers = loadTriggers();
const defs = shippedDefs as Definitions;

beforeAll(async () => {
  ({ fn, db, close } = await configFunctionOn('cfgb', TOKEN, platform.publicKeyPem));
});
afterAll(async () => {
  await close?.();
});

const auth = { authorization: `Bearer ${TOKEN}` };
const post = (body: string) => fn.app.request('/bundles', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body });
const get = (path: string) => fn.app.request(path, { headers: auth });
type Refusal = { error: { code: string; reason: string; issues?: Array<{ field: string }> }; applied: false };

/** Everything a bundle may change, as rows: compared before and after a refused bundle. */
async function state(): Promise<unknown> {
  const q = async (sql: string) => (await db.query(sql)).rows;
  return {
    steps: await q('SELECT seq, action, version FROM config_bundle ORDER BY seq'),
    active: await q('SELECT area, version, content, changed_at FROM config_active ORDER BY area'),
    national: await q("SELECT domain, code, version, name, valid_to FROM code_national WHERE domain IN ('sex', 'education', 'region') ORDER BY 1, 2, 3"),
    domains: await q(
      "SELECT domain, list_status, list_source, list_version, code_count, loaded_at FROM code_domain WHERE domain IN ('sex', 'education', 'region') ORDER BY 1",
    ),
    mapVersion: await q("SELECT version FROM code_map_version WHERE org_code = '*'"),
  };
}

const sexCodes = (extra: Array<{ code: string; name: string }>) => ({
  domain: 'sex',
  version: 'cfg-test',
  codes: [{ code: '0', name: '未知的性别' }, { code: '1', name: '男性' }, { code: '2', name: '女性' }, { code: '9', name: '未说明的性别' }, ...extra],
});

let doc1 = '';
const v1 = () =>
  bundleDoc(1, {
    codeTables: [sexCodes([{ code: '7', name: '测试性别七' }])],
    triggers: triggersWith('cfg-kw-one', 'cfg-1'),
    algorithms: algorithms(4.5, 'cfg-alg-1'),
    platforms: [{ name: 'national', kind: 'national', url: 'https://platform.example.cn/', publicKey: platform.publicKeyPem }],
    schedules: [{ function: 'day-close', schedule: '*/15 * * * *' }],
    release: { version: '9.9.9', url: 'https://platform.example.cn/releases/9.9.9', notes: '测试' },
  });

describe('the configuration port refuses callers without the platform token', () => {
  it('401 without or with a wrong token, on every route but /healthz', async () => {
    for (const [m, p] of [
      ['GET', '/bundles'],
      ['GET', '/bundles/current'],
      ['POST', '/bundles'],
      ['POST', '/bundles/1/rollback'],
      ['GET', '/version-check'],
    ] as const) {
      expect((await fn.app.request(p, { method: m })).status, p).toBe(401);
      expect((await fn.app.request(p, { method: m, headers: { authorization: `Bearer ${TOKEN}x` } })).status, p).toBe(401);
    }
    expect((await fn.app.request('/healthz')).status).toBe(200);
  });
});

describe('configuration bundles on a real database', () => {
  it('answers 404 no-bundle before the first, and no release to compare with', async () => {
    expect((await get('/bundles/current')).status).toBe(404);
    const vc = (await (await get('/version-check')).json()) as { running: string; latest: unknown; newer: boolean };
    expect(vc).toMatchObject({ latest: null, newer: false });
  });

  it('applies a good bundle whole, and each section takes effect where it is read', async () => {
    const cache = await createCodeCache(db, { refreshMs: 60_000 });
    try {
      expect(cache.lookup('123456789', 'sex', '7').status).not.toBe('national');
      doc1 = v1();
      const res = await post(signed(doc1, platform.key));
      const body = (await res.json()) as { applied: boolean; version: number; changed: string[] };
      expect(res.status, JSON.stringify(body)).toBe(201);
      expect(body.changed).toEqual(['release', 'schedules', 'platforms', 'algorithms', 'triggers', 'codeTable:sex']);
      // Ingest's code cache sees the national list at its next poll.
      await cache.refresh();
      expect(cache.lookup('123456789', 'sex', '7')).toMatchObject({ status: 'national', nationalName: '测试性别七' });
    } finally {
      await cache.close();
    }
    // The warning function's trigger lists and aberration parameters.
    const t = await triggersInForce(db, shippedTriggers);
    expect(t.version).toBe('cfg-1');
    expect(t.keywords.map((k) => k.id)).toContain('cfg-kw-one');
    const d = await definitionsInForce(db, defs);
    expect(d.ears.limit).toBe(4.5);
    expect(d.syndromes).toEqual(defs.syndromes); // no syndromes section: the shipped ones stay
    // Stored with who and when; the sections without a consumer yet are kept as sent.
    const cur = (await (await get('/bundles/current')).json()) as {
      step: { version: number; appliedBy: string; effective: Record<string, number> };
      bundle: { version: number };
    };
    expect(cur.step.version).toBe(1);
    expect(cur.step.appliedBy).toMatch(/^platform-token:[0-9a-f]{8}$/);
    expect(cur.step.effective).toMatchObject({ triggers: 1, 'codeTable:sex': 1, platforms: 1 });
    const platforms = await db.query("SELECT content FROM config_active WHERE area = 'platforms'");
    expect(JSON.parse(platforms.rows[0].content)[0]).toMatchObject({ name: 'national', url: 'https://platform.example.cn/' });
    const stored = await db.query("SELECT bundle, signature, key_id FROM config_bundle WHERE version = 1 AND action = 'apply'");
    expect(stored.rows[0].bundle).toBe(doc1); // byte for byte as signed
    expect(stored.rows[0].signature).toMatch(/^[A-Za-z0-9+/=]+$/);
  });

  it('tells the operator a newer release exists (the bundle announced 9.9.9)', async () => {
    const vc = (await (await get('/version-check')).json()) as {
      running: string;
      latest: { version: string; source: string };
      newer: boolean;
      message: string;
    };
    expect(vc.latest).toMatchObject({ version: '9.9.9', source: 'bundle v1' });
    expect(vc.newer).toBe(true);
    expect(vc.message).toContain('9.9.9');
    expect(compareReleases('0.1.0', '0.1.0-rc1')).toBeGreaterThan(0);
    expect(compareReleases('0.10.0', '0.9.9')).toBeGreaterThan(0);
  });

  it('refuses a bad signature — altered bytes, a key it does not trust, none — and changes nothing', async () => {
    const before = await state();
    const doc = bundleDoc(2, { triggers: triggersWith('cfg-kw-evil', 'evil') });
    const good = JSON.parse(signed(doc, platform.key)) as { bundle: string; sig: unknown };
    const cases: Array<[string, string]> = [
      ['bad-signature', JSON.stringify({ ...good, bundle: good.bundle.replace('cfg-kw-evil', 'cfg-kw-evi1') })],
      ['unknown-key', signed(doc, stranger.key)],
      ['missing-signature', JSON.stringify({ bundle: doc })],
    ];
    for (const [code, body] of cases) {
      const res = await post(body);
      const r = (await res.json()) as Refusal;
      expect([code, res.status], r.error.reason).toEqual([code, 422]);
      expect(r.error.code).toBe(code);
      expect(r.applied).toBe(false);
    }
    expect(await state()).toEqual(before);
  });

  it('refuses a bundle whose section fails validation, naming the field, and changes nothing', async () => {
    const before = await state();
    const t = triggersWith('cfg-kw-two', 'cfg-2') as { labTests: Array<{ disease: string }> };
    t.labTests[0]!.disease = '不存在的传染病';
    const res = await post(signed(bundleDoc(2, { algorithms: algorithms(9, 'x'), triggers: t }), platform.key));
    const r = (await res.json()) as Refusal;
    expect(res.status).toBe(422);
    expect(r.error.code).toBe('invalid-bundle');
    expect(r.error.issues!.map((i) => i.field)).toContain('sections.triggers.labTests.0.disease');
    expect(await state()).toEqual(before);
  });

  it('refuses an unknown key at any depth — a misspelt trigger setting, a nested key of the aberration sections — naming it, and changes nothing', async () => {
    const before = await state();
    // windowDay for windowDays would leave the default 30 days in force; contexts for context would
    // lift a keyword's restriction (docs/config-bundles.md §1: an unknown key anywhere is refused).
    const t = triggersWith('cfg-kw-typo', 'cfg-typo') as Record<string, unknown> & {
      labTests: Array<Record<string, unknown>>;
      keywords: Array<Record<string, unknown>>;
    };
    t.windowDay = 7;
    t.labTests[0]!.abov = 999;
    t.keywords[0]!.contexts = ['肺'];
    const a = algorithms(4.5, 'cfg-alg-typo') as { mpm: Record<string, unknown>; ears: Record<string, unknown> };
    a.mpm.percentil = 90;
    const syn = { version: 'cfg-syn-typo', syndromes: [{ ...defs.syndromes[0]!, icd: ['J00'] }] };
    const cases: Array<[Record<string, unknown>, string[]]> = [
      [{ triggers: t }, ['sections.triggers.windowDay', 'sections.triggers.labTests.0.abov', 'sections.triggers.keywords.0.contexts']],
      [{ algorithms: a }, ['sections.algorithms.mpm.percentil']],
      [{ syndromes: syn }, ['sections.syndromes.syndromes.0.icd']],
    ];
    for (const [sections, fields] of cases) {
      const res = await post(signed(bundleDoc(2, sections), platform.key));
      const r = (await res.json()) as { error: { code: string; reason: string; issues: Array<{ field: string; rule: string }> } };
      expect([res.status, r.error.code], r.error.reason).toEqual([422, 'invalid-bundle']);
      const named = r.error.issues.filter((i) => i.rule === 'unrecognized_keys').map((i) => i.field);
      expect(named.sort()).toEqual([...fields].sort());
      for (const f of fields) expect(r.error.reason).toContain(f);
    }
    expect(await state()).toEqual(before);
  });

  it('leaves nothing half-applied when a check fails after earlier sections were written', async () => {
    const before = await state();
    // Trigger lists and parameters are written first; the code list is refused by the codes store
    // (permanentAddr takes the region list's codes) inside the same transaction.
    const doc = bundleDoc(2, {
      triggers: triggersWith('cfg-kw-half', 'cfg-half'),
      algorithms: algorithms(7, 'cfg-half'),
      codeTables: [{ domain: 'permanentAddr', version: 'x', codes: [{ code: '110000', name: '北京市' }] }],
    });
    const res = await post(signed(doc, platform.key));
    const r = (await res.json()) as Refusal;
    expect(res.status, r.error.reason).toBe(422);
    expect(r.error.reason).toMatch(/sections\.codeTables\[permanentAddr\].*region/);
    expect(await state()).toEqual(before);
    expect((await triggersInForce(db, shippedTriggers)).version).toBe('cfg-1');
  });

  it('refuses a replay of an applied or older version (409) and changes nothing', async () => {
    const before = await state();
    const res = await post(signed(v1(), platform.key));
    expect(res.status).toBe(409);
    expect(((await res.json()) as Refusal).error.code).toBe('stale-version');
    expect(await state()).toEqual(before);
  });

  it('rolls back to an earlier version in one audited step, areas it never set returning to their state before bundles', async () => {
    const educationBefore = (await db.query("SELECT code, name FROM code_national WHERE domain = 'education' AND valid_to IS NULL ORDER BY code")).rows;
    const doc2 = bundleDoc(2, {
      codeTables: [sexCodes([]), { domain: 'education', version: 'cfg-edu', codes: [{ code: '10', name: '研究生' }] }],
      triggers: triggersWith('cfg-kw-two', 'cfg-2'),
      syndromes: { version: 'cfg-syn-2', syndromes: [defs.syndromes[0]!] },
      release: { version: '0.0.1' },
    });
    expect((await post(signed(doc2, platform.key))).status).toBe(201);
    expect((await triggersInForce(db, shippedTriggers)).version).toBe('cfg-2');
    expect((await definitionsInForce(db, defs)).syndromes).toHaveLength(1);
    expect((await db.query("SELECT count(*)::int AS n FROM code_national WHERE domain = 'education' AND valid_to IS NULL")).rows[0].n).toBe(1);

    const res = await fn.app.request('/bundles/1/rollback', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: '版本2 触发规则误报过多' }),
    });
    const body = (await res.json()) as { rolledBack: boolean; changed: string[] };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.changed.sort()).toEqual(['codeTable:education', 'codeTable:sex', 'release', 'syndromes', 'triggers']);
    // What version 1 left: its trigger list and sex list, and the state before bundles for the rest.
    expect((await triggersInForce(db, shippedTriggers)).version).toBe('cfg-1');
    expect((await definitionsInForce(db, defs)).syndromes).toEqual(defs.syndromes);
    expect((await db.query("SELECT 1 FROM config_active WHERE area = 'syndromes'")).rowCount).toBe(0);
    expect((await db.query("SELECT code FROM code_national WHERE domain = 'sex' AND valid_to IS NULL AND code = '7'")).rowCount).toBe(1);
    expect((await db.query("SELECT code, name FROM code_national WHERE domain = 'education' AND valid_to IS NULL ORDER BY code")).rows).toEqual(
      educationBefore,
    );
    const vc = (await (await get('/version-check')).json()) as { latest: { version: string } };
    expect(vc.latest.version).toBe('9.9.9');

    // The history: three steps, newest first, the rollback with who and why.
    const h = (await (await get('/bundles')).json()) as {
      count: number;
      steps: Array<{ action: string; version: number; reason: string | null; appliedBy: string }>;
    };
    expect(h.steps.map((s) => [s.action, s.version])).toEqual([
      ['rollback', 1],
      ['apply', 2],
      ['apply', 1],
    ]);
    expect(h.steps[0]).toMatchObject({ reason: '版本2 触发规则误报过多', appliedBy: expect.stringMatching(/^platform-token:/) });
    const cur = (await (await get('/bundles/current')).json()) as { step: { action: string; version: number }; bundle: { version: number } };
    expect(cur).toMatchObject({ step: { action: 'rollback', version: 1 }, bundle: { version: 1 } });

    // Versions stay monotonic: 2 is not taken again; returning to it is a rollback (forward) to 2.
    expect((await post(signed(doc2, platform.key))).status).toBe(409);
    expect((await fn.app.request('/bundles/1/rollback', { method: 'POST', headers: auth })).status).toBe(409);
    expect((await fn.app.request('/bundles/5/rollback', { method: 'POST', headers: auth })).status).toBe(404);
    const fwd = await fn.app.request('/bundles/2/rollback', { method: 'POST', headers: auth });
    expect(fwd.status).toBe(200);
    expect((await triggersInForce(db, shippedTriggers)).version).toBe('cfg-2');
    expect((await post(signed(bundleDoc(3, { triggers: triggersWith('cfg-kw-three', 'cfg-3') }), platform.key))).status).toBe(201);
    expect((await triggersInForce(db, shippedTriggers)).version).toBe('cfg-3');
  });

  it('reads back what an older release stored with a key this release refuses: the functions, the bundle in force and a rollback to it', async () => {
    const clean = bundleDoc(4, {
      triggers: triggersWith('cfg-kw-old', 'cfg-old'),
      algorithms: algorithms(5.5, 'cfg-alg-old'),
      platforms: [{ name: 'national', kind: 'national', url: 'https://platform.example.cn/', publicKey: platform.publicKeyPem }],
      release: { version: '9.9.10' },
    });
    expect((await post(signed(clean, platform.key))).status).toBe(201);
    // What a release that dropped unknown keys (or had a key this one dropped) left: the document as
    // signed in config_bundle, and the sections in config_active, each with a key this release refuses.
    const old = JSON.parse(clean) as { sections: Record<string, Record<string, unknown> & { mpm?: Record<string, unknown> }> };
    old.sections.triggers!.windowDay = 7;
    old.sections.algorithms!.mpm!.percentil = 90;
    old.sections.algorithms!.retired = true;
    (old.sections.platforms as unknown as Array<Record<string, unknown>>)[0]!.priority = 1;
    old.sections.release!.channel = 'stable';
    await db.query("UPDATE config_bundle SET bundle = $1 WHERE action = 'apply' AND version = 4", [JSON.stringify(old)]);
    for (const [area, content] of Object.entries(old.sections))
      await db.query('UPDATE config_active SET content = $2, changed_at = now() WHERE area = $1', [area, JSON.stringify(content)]);

    // The functions read their sections (the unknown keys dropped), as before.
    expect(await triggersInForce(db, shippedTriggers)).toMatchObject({ version: 'cfg-old', windowDays: 30 });
    expect((await definitionsInForce(db, defs)).ears.limit).toBe(5.5);
    expect((await platformsInForce(db))?.get('national')).toMatchObject({ url: 'https://platform.example.cn/' });
    expect(((await (await get('/version-check')).json()) as { latest: { version: string } }).latest.version).toBe('9.9.10');
    // The bundle in force is shown, and a rollback away from it and back writes its sections again.
    const cur = await get('/bundles/current');
    expect(cur.status).toBe(200);
    expect(((await cur.json()) as { bundle: { version: number } }).bundle.version).toBe(4);
    expect((await fn.app.request('/bundles/3/rollback', { method: 'POST', headers: auth })).status).toBe(200);
    const back = await fn.app.request('/bundles/4/rollback', { method: 'POST', headers: auth });
    expect(back.status, await back.text()).toBe(200);
    const t = await db.query("SELECT content FROM config_active WHERE area = 'triggers'");
    expect(JSON.parse(t.rows[0].content)).toMatchObject({ version: 'cfg-old', windowDays: 30 });
    expect(JSON.parse(t.rows[0].content)).not.toHaveProperty('windowDay');
  });
});
