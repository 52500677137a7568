// The configuration port (8882) as the national platform meets it, through the running runtime with
// stack.yml on a private database: the token the runtime made opens it; a signed bundle is applied and
// another function (warning, through the gateway) works with the trigger list it carried; a bundle
// with a bad signature is refused and changes nothing; history, the bundle in force, the version check
// and a rollback answer on the port; a code list that drops a code the HIS sent on 8881 and a mapping
// points at is applied with a warning naming both.
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootStack, type Booted } from '../../infra/runtime/boot.js';
import { privateDatabase, uniqueId, uniqueOrg } from '../setup/db.js';
import { sample } from '../../infra/simulators/samples.js';
import { saveMapping } from '../../shared/codes/store.js';
import { MappingInputSchema } from '../../shared/codes/model.js';
import { bundleDoc, platformKey, signed, triggersWith } from '../integration/config-bundles-helpers.js';
import type pg from 'pg';
import { basicAuthHeader } from '../../shared/http/basic.js';

const platform = platformKey();
let front: Booted;
let db: pg.Pool;
let drop: () => Promise<void>;
let token: string;
let port: string;

beforeAll(async () => {
  const p = await privateDatabase('cfgport');
  db = p.db;
  drop = p.drop;
  // Statements bounded at 3 s (stack.yml's DB_STATEMENT_TIMEOUT_MS): a lock held elsewhere times out soon.
  front = await bootStack({
    name: 'config-port',
    databaseUrl: p.url,
    env: { DB_STATEMENT_TIMEOUT_MS: '3000' },
    secrets: { 'config-platform-pubkey': platform.publicKeyPem },
  });
  token = readFileSync(join(front.rt.secretsDir, 'config-token'), 'utf8').trim();
  port = front.rt.portUrls.config!;
}, 180_000);
afterAll(async () => {
  await front?.close();
  await drop?.();
});

const bearer = () => ({ authorization: `Bearer ${token}` });
const push = (body: string) => fetch(`${port}/bundles`, { method: 'POST', headers: { ...bearer(), 'content-type': 'application/json' }, body });
const snoozeNew = () =>
  fetch(`${front.rt.gatewayUrl}/function/warning/snooze`, {
    method: 'POST',
    headers: {
      authorization: basicAuthHeader(front.rt.credentials),
      'content-type': 'application/json',
    },
    body: JSON.stringify({ trigger: 'cfg-kw-port', until: '2099-01-01 00:00:00', reason: '测试规则', by: 'tester' }),
  });
const rows = async () => ({
  steps: (await db.query('SELECT seq, action, version FROM config_bundle ORDER BY seq')).rows,
  active: (await db.query('SELECT area, version, content, changed_at FROM config_active ORDER BY area')).rows,
});

describe('configuration port through the runtime', () => {
  it('is served by the config function: /healthz open, the rest behind the token the runtime made', async () => {
    expect(token.length).toBeGreaterThanOrEqual(32);
    expect((await fetch(`${port}/healthz`)).status).toBe(200);
    const none = await fetch(`${port}/bundles`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await fetch(`${port}/bundles`, { headers: { 'x-api-key': 'anything' } })).status).toBe(401);
  });

  it('answers a malformed percent-escape in the path 400 in the port’s own shape, and goes on serving', async () => {
    for (const path of ['/bundles/%E0%A4%A', '/bundles/%zz/rollback', '/%']) {
      const res = await fetch(`${port}${path}`, { headers: bearer() });
      const body = (await res.json()) as { error: { code: string; reason: string }; applied: boolean };
      expect([path, res.status, body.error.code, body.applied]).toEqual([path, 400, 'invalid-request', false]);
      expect(body.error.reason).toMatch(/malformed percent-escape/);
    }
    expect((await fetch(`${port}/bundles`, { headers: bearer() })).status).toBe(200);
  });

  it('answers a body over the port’s limit 413 in the port’s own shape, before the token is looked at', async () => {
    // A declared length over max_body (32 MiB, stack.yml): the runtime refuses before reading it.
    const answer = await new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
      const u = new URL(`${port}/bundles`);
      const req = request({
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': String(40 * 2 ** 20) },
      });
      req.on('response', (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.write('{"bundle": "');
    });
    expect(answer.status).toBe(413);
    expect(answer.type).toMatch(/^application\/json/);
    const body = JSON.parse(answer.body) as { error: { code: string; reason: string }; applied: boolean; result?: unknown };
    expect(body).toEqual({ error: { code: 'too-large', reason: expect.stringMatching(/larger than 33554432 bytes/) }, applied: false });
    expect((await fetch(`${port}/bundles`, { headers: bearer() })).status).toBe(200);
  });

  it('applies a signed bundle, and the warning function works with its trigger list', async () => {
    expect((await snoozeNew()).status).toBe(404); // unknown before the bundle
    const res = await push(signed(bundleDoc(1, { triggers: triggersWith('cfg-kw-port', 'port-1'), release: { version: '99.0.0' } }), platform.key));
    expect(res.status, await res.clone().text()).toBe(201);
    expect(await res.json()).toMatchObject({ applied: true, version: 1, changed: ['release', 'triggers'] });
    expect((await snoozeNew()).status).toBe(201);
  });

  it('refuses a bundle with a bad signature, naming the reason, and changes nothing', async () => {
    const before = await rows();
    const good = JSON.parse(signed(bundleDoc(2, { triggers: triggersWith('cfg-kw-bad', 'port-bad') }), platform.key)) as { bundle: string };
    const res = await push(JSON.stringify({ ...good, bundle: good.bundle.replace('port-bad', 'port-b4d') }));
    expect(res.status).toBe(422);
    const body = (await res.json()) as { error: { code: string; reason: string }; applied: boolean };
    expect(body.error.code).toBe('bad-signature');
    expect(body.error.reason).toMatch(/does not verify/);
    expect(body.applied).toBe(false);
    expect(await rows()).toEqual(before);
  });

  it('answers history, the bundle in force, the version check, and rolls back', async () => {
    const h = (await (await fetch(`${port}/bundles`, { headers: bearer() })).json()) as { count: number };
    expect(h.count).toBe(1);
    const cur = (await (await fetch(`${port}/bundles/current`, { headers: bearer() })).json()) as { step: { version: number }; bundle: { issuer: string } };
    expect(cur).toMatchObject({ step: { version: 1 }, bundle: { issuer: '国家平台(测试)' } });
    // Without the document (a full drug list makes it tens of MB): what is in force, by step and digest.
    const slim = (await (await fetch(`${port}/bundles/current?bundle=0`, { headers: bearer() })).json()) as Record<string, unknown>;
    expect(Object.keys(slim).sort()).toEqual(['digest', 'keyId', 'step']);
    expect(slim).toMatchObject({ step: { version: 1 }, digest: (cur as unknown as { digest: string }).digest });
    expect((await fetch(`${port}/bundles/current?bundle=maybe`, { headers: bearer() })).status).toBe(400);
    const vc = (await (await fetch(`${port}/version-check`, { headers: bearer() })).json()) as { newer: boolean; latest: { version: string } };
    expect(vc).toMatchObject({ newer: true, latest: { version: '99.0.0' } });
    expect((await push(signed(bundleDoc(2, { triggers: triggersWith('cfg-kw-two', 'port-2') }), platform.key))).status).toBe(201);
    const rb = await fetch(`${port}/bundles/1/rollback`, {
      method: 'POST',
      headers: { ...bearer(), 'content-type': 'application/json' },
      body: '{"reason":"测试回退"}',
    });
    expect(rb.status, await rb.clone().text()).toBe(200);
    expect(await rb.json()).toMatchObject({ rolledBack: true, version: 1, changed: ['triggers'] });
    expect((await db.query("SELECT content FROM config_active WHERE area = 'triggers'")).rows[0].content).toContain('port-1');
  });
  it('answers a database fault in the port’s own shape, never the HIS’s: a bundle waiting on a lock held elsewhere is 503 timeout, nothing applied', async () => {
    const before = await rows();
    const current = (await (await fetch(`${port}/bundles/current`, { headers: bearer() })).json()) as { bundle: { version: number } };
    const holder = await db.connect();
    try {
      // The bundles' lock, as an apply that runs long holds it (shared/configbundle/store.ts).
      await holder.query('SELECT pg_advisory_lock(7204330)');
      const res = await push(signed(bundleDoc(current.bundle.version + 1, { triggers: triggersWith('cfg-kw-lock', 'port-lock') }), platform.key));
      const body = (await res.json()) as Record<string, unknown>;
      expect(res.status, JSON.stringify(body)).toBe(503);
      expect(body).toEqual({ error: { code: 'timeout', reason: expect.stringMatching(/timeout.*\(nothing applied\)$/) }, applied: false });
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    } finally {
      await holder.query('SELECT pg_advisory_unlock(7204330)').catch(() => undefined);
      holder.release();
    }
    expect(await rows()).toEqual(before);
  });
});

describe('a national list that drops codes in use, through the running front', () => {
  const sexList = async () =>
    (await db.query<{ code: string; name: string }>("SELECT code, name FROM code_national WHERE domain = 'sex' AND valid_to IS NULL ORDER BY code")).rows;
  const highest = async () => Number((await db.query("SELECT max(version) AS v FROM config_bundle WHERE action = 'apply'")).rows[0].v);
  /** A generated patient whose sex (and ID number) is male, 1. */
  const male = (org: string) => {
    for (let seed = 1; ; seed++) {
      const p = sample('emrPatientInfo', { orgCode: org, id: uniqueId('p'), seed }) as { genderCode?: string };
      if (p.genderCode === '1') return p;
    }
  };
  const sexBundle = (version: number, codes: Array<{ code: string; name: string }>) =>
    signed(bundleDoc(version, { codeTables: [{ domain: 'sex', version: `port-sex-${version}`, codes }] }), platform.key);

  it('is applied with a warning naming the codes the HIS sent and the mappings that point at them; a rollback that drops them says so too', {
    timeout: 60_000,
  }, async () => {
    const full = await sexList();
    expect(full.map((c) => c.code)).toContain('1');
    const org = uniqueOrg();
    const mappedOrg = uniqueOrg();
    // The HIS sends 男 as the national code 1 on 8881; the front notes the code it saw (flushed every second).
    const res = await fetch(`${front.rt.portUrls.data}/hclient/emr/receive/emrPatientInfo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(male(org)),
    });
    expect(res.status, await res.text()).toBe(200);
    const end = Date.now() + 20_000;
    while (Date.now() < end) {
      const seen = await db.query("SELECT 1 FROM code_observed WHERE org_code = $1 AND domain = 'sex' AND local_code = '1'", [org]);
      if (seen.rowCount) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    // Another hospital maps its own M onto 1.
    await saveMapping(db, MappingInputSchema.parse({ org: mappedOrg, domain: 'sex', localCode: 'M', nationalCode: '1', equivalence: 'equal' }), { by: 'test' });

    const v = (await highest()) + 1;
    const without1 = full.filter((c) => c.code !== '1');
    const applied = await push(sexBundle(v, without1));
    const a = (await applied.json()) as { applied: boolean; warnings?: string[] };
    expect(applied.status, JSON.stringify(a)).toBe(201);
    expect(a.warnings).toHaveLength(1);
    const w = a.warnings![0]!;
    expect(w).toMatch(/^codeTable:sex: /);
    expect(w).toContain(`1 code(s) the HIS sent in the last 30 days are no longer on the list: 1 (1 times: ${org} ×1)`);
    expect(w).toContain(`1 code(s) mappings point at are no longer on the list: 1 (1 mappings: ${mappedOrg} ×1)`);
    expect(w).not.toMatch(/\b2 \(/);

    // Back to the full list: nothing is dropped, nothing said.
    const back = await push(sexBundle(v + 1, full));
    const b = (await back.json()) as { warnings?: string[] };
    expect(back.status, JSON.stringify(b)).toBe(201);
    expect(b.warnings).toBeUndefined();

    // A rollback to the list without 1 drops it again, and says so.
    const rb = await fetch(`${port}/bundles/${v}/rollback`, { method: 'POST', headers: { ...bearer(), 'content-type': 'application/json' }, body: '{}' });
    const r = (await rb.json()) as { rolledBack: boolean; warnings?: string[] };
    expect(rb.status, JSON.stringify(r)).toBe(200);
    expect(r.warnings?.[0]).toContain(`1 (1 times: ${org} ×1)`);
    expect((await push(sexBundle(v + 2, full))).status).toBe(201);
    expect(await sexList()).toEqual(full);
  });
});
