// Trust only what is configured, through the runtime running stack.yml (docs/his-auth.md,
// docs/configuration.md):
// - TEST_ORG_CODES reaches the receive functions: a test organisation's records never reach a
//   destination that takes no test records, while another organisation's do;
// - a local proxy relaying a client (X-Forwarded-For, Forwarded, X-Real-IP from a loopback peer)
//   is not a loopback caller unless it is a trusted proxy (HIS_TRUSTED_PROXIES), and then the
//   forwarded address is judged;
// - push's and day-close's operator routes need the gateway's basic-auth credentials;
// - the push run's note (shown on the open status page) carries an error category, not the
//   platform's text.
// Isolation as in traffic.test.ts: a destination of this file's own, known only to this runtime's push.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { request } from 'node:http';
import { join, resolve } from 'node:path';
import { testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { startStackRuntime, type StackRuntime } from '../setup/stack-runtime.js';
import type { RuntimeHandle } from '../../infra/runtime/index.js';
import { startPlatformSimulator, type PlatformHandle } from '../../infra/simulators/platform.js';
import { samplePatient } from '../../infra/simulators/his.js';
import { emrPatientInfo } from '../../schemas/index.js';
import { basicAuthHeader } from '../../shared/http/basic.js';

const dest = `tru${randomInt(36 ** 5, 36 ** 6).toString(36)}`;
const testOrg = uniqueOrg();
const db = testDb();

let rt: RuntimeHandle;
let sim: PlatformHandle;
let dir: string;
let front: StackRuntime | undefined;
let basic: string;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

/** One request from a chosen loopback source address (127.0.0.2 plays a local proxy). */
function send(url: string, opts: { method?: string; body?: unknown; headers?: Record<string, string>; from?: string } = {}): Promise<Answer> {
  return new Promise((done, fail) => {
    const text = opts.body === undefined ? '' : JSON.stringify(opts.body);
    const req = request(
      url,
      {
        method: opts.method ?? (opts.body === undefined ? 'GET' : 'POST'),
        localAddress: opts.from ?? '127.0.0.1',
        headers: { ...(text ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) } : {}), ...opts.headers },
      },
      (res) => {
        let raw = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (raw += c));
        res.on('end', () => {
          let body: Record<string, unknown> = {};
          try {
            body = JSON.parse(raw) as Record<string, unknown>;
          } catch {
            body = { text: raw };
          }
          done({ status: res.statusCode ?? 0, body });
        });
      },
    );
    req.on('error', fail);
    req.end(text || undefined);
  });
}

const patientUrl = () => `${rt.portUrls.data}/hclient/emr/receive/emrPatientInfo`;
const invokePush = () => send(`${rt.gatewayUrl}/function/push`, { method: 'POST', body: {} });

async function until<T>(fn: () => Promise<T | undefined> | T | undefined, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(200);
  }
}

beforeAll(async () => {
  sim = await startPlatformSimulator({ role: 'national' });
  // A live platform: takes no test records (accepts_test false, the default).
  await db.query(`INSERT INTO uplink_destination (name, kind, enabled) VALUES ($1, 'simulator', true)`, [dest]);
  front = await startStackRuntime('trust', {
    TEST_ORG_CODES: `${testOrg},TESTONLY-1`,
    // Loopback (as make up) and one remote network, the development fallback.
    HIS_ALLOW: '127.0.0.0/8,::1/128,10.9.9.0/24',
    // The local proxy of these tests connects from 127.0.0.2.
    HIS_TRUSTED_PROXIES: '127.0.0.2/32',
    // The test drives the push (the nudge goes to a closed port).
    NATIONAL_URL: '',
  });
  rt = front.rt;
  dir = front.dir;
  basic = basicAuthHeader(rt.credentials);
  // The push function with this file's destination URL (faas-cli's PUT /system/functions).
  const current = (await (await fetch(`${rt.gatewayUrl}/system/function/push`, { headers: { authorization: basic } })).json()) as {
    image: string;
    envVars: Record<string, string>;
    labels: Record<string, string>;
    annotations: Record<string, string>;
  };
  const envVars = { ...current.envVars, [`${dest.toUpperCase()}_URL`]: sim.url };
  const put = await fetch(`${rt.gatewayUrl}/system/functions`, {
    method: 'PUT',
    headers: { authorization: basic, 'content-type': 'application/json' },
    body: JSON.stringify({
      service: 'push',
      image: current.image,
      envVars,
      labels: current.labels,
      annotations: current.annotations,
      // stack.yml's secrets for push, the personal-data keys among them (docs/keys.md).
      secrets: ['cdc-database-url', 'basic-auth-user', 'basic-auth-password', 'pii-field-keys', 'pii-hash-key'],
    }),
  });
  expect(put.status, await put.text()).toBe(202);
  await until(async () => {
    const st = (await (await fetch(`${rt.gatewayUrl}/system/function/push`, { headers: { authorization: basic } })).json()) as {
      envVars: Record<string, string>;
    };
    return st.envVars[`${dest.toUpperCase()}_URL`] === sim.url && (await rt.waitForReplicas('push', 5_000)) ? true : undefined;
  });
}, 180_000);

afterAll(async () => {
  await db.query(`UPDATE uplink_destination SET enabled = false WHERE name = $1`, [dest]).catch(() => undefined);
  await front?.close();
  await sim?.close();
});

describe('TEST_ORG_CODES reaches the receive functions', () => {
  it("keeps a test organisation's records from a live platform, and sends another organisation's", { timeout: 90_000 }, async () => {
    const liveOrg = uniqueOrg();
    const t = samplePatient({ orgCode: testOrg, id: uniqueId('tst') });
    const l = samplePatient({ orgCode: liveOrg, id: uniqueId('liv') });
    const rt1 = await send(patientUrl(), { body: t });
    expect(rt1.status, JSON.stringify(rt1.body)).toBe(200);
    expect(rt1.body).toMatchObject({ result: true, test: true });
    const rl = await send(patientUrl(), { body: l });
    expect(rl.status).toBe(200);
    expect(rl.body.test).toBeUndefined();
    // Push until the live record has arrived: the test record was stored first, so it had its chance.
    await until(async () => {
      await invokePush();
      return sim.records().some((r) => r.id === l.id) ? true : undefined;
    });
    await invokePush();
    expect(sim.records().filter((r) => r.orgCode === testOrg)).toEqual([]);
    expect(sim.records().find((r) => r.id === l.id)).toMatchObject({ orgCode: liveOrg, test: false });
    // Stored as test data, queued for no destination that refuses test records.
    const stored = await db.query(`SELECT rec_test FROM ${emrPatientInfo.table} WHERE org_code = $1 AND id = $2`, [testOrg, t.id]);
    expect(stored.rows).toEqual([{ rec_test: true }]);
    const queued = await db.query(
      `SELECT o.destination FROM outbox o JOIN uplink_destination d ON d.name = o.destination WHERE o.org_code = $1 AND d.accepts_test = false`,
      [testOrg],
    );
    expect(queued.rows).toEqual([]);
  });
});

describe('source addresses behind proxies', () => {
  const post = (headers: Record<string, string>, from = '127.0.0.1') =>
    send(patientUrl(), { body: samplePatient({ orgCode: uniqueOrg(), id: uniqueId('src') }), headers, from });

  it('admits a loopback caller that relays nobody (make up, the adapters on the same host)', async () => {
    expect((await post({})).status).toBe(200);
  });

  it('refuses a loopback peer that relays a client and is not a trusted proxy', async () => {
    const relayed: Record<string, string>[] = [{ 'x-forwarded-for': '10.9.9.9' }, { forwarded: 'for=10.9.9.9;proto=http' }, { 'x-real-ip': '10.9.9.9' }];
    for (const headers of relayed) {
      const r = await post(headers);
      expect(r.status, JSON.stringify(headers)).toBe(401);
      expect(r.body).toMatchObject({ errorCode: 'UNAUTHENTICATED' });
      expect(String(r.body.desc)).toMatch(/HIS_TRUSTED_PROXIES/);
    }
  });

  it('judges the forwarded address when the relaying peer is a trusted proxy', async () => {
    expect((await post({ 'x-forwarded-for': '10.9.9.9' }, '127.0.0.2')).status).toBe(200);
    const outside = await post({ 'x-forwarded-for': '10.8.8.8' }, '127.0.0.2');
    expect(outside.status).toBe(401);
    expect(String(outside.body.desc)).toContain('10.8.8.8');
    // A hop the trusted proxy names but that is itself an untrusted local relay: no address.
    expect((await post({ 'x-forwarded-for': '10.9.9.9, 127.0.0.1' }, '127.0.0.2')).status).toBe(401);
  });

  it('drops a relay marker the caller wrote itself', async () => {
    expect((await post({ 'x-cdc-relayed-for': '10.9.9.9' })).status).toBe(200);
  });
});

describe('personal data in rejections', () => {
  it('masks birthDate like the other personal fields, in the value and the message', async () => {
    const p = samplePatient({ orgCode: uniqueOrg(), id: uniqueId('bd') });
    const idBirth = String(p.idCard)
      .slice(6, 14)
      .replace(/(\d{4})(\d{2})(\d{2})/, '$1-$2-$3');
    const other = idBirth.endsWith('-01') ? `${idBirth.slice(0, 8)}02` : `${idBirth.slice(0, 8)}01`;
    const r = await send(patientUrl(), { body: { ...p, birthDate: other, patientName: '张三丰' } });
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    const text = JSON.stringify(r.body);
    const issue = (r.body.errors as { field: string; rule: string; value?: string; message: string }[]).find((e) => e.field === 'birthDate');
    expect(issue).toMatchObject({ rule: 'idConsistency', value: `${other.slice(0, 4)}-**-**` });
    // Neither date appears anywhere in the answer, nor the ID number.
    expect(text).not.toContain(other);
    expect(text).not.toContain(idBirth);
    expect(text).not.toContain(String(p.idCard));
  });
});

describe('operator routes need the operator credentials', () => {
  const routes: [string, string, unknown?][] = [
    ['GET', '/function/push/dead'],
    ['POST', '/function/push/replay', { destination: dest, orgCode: 'x' }],
    ['GET', '/function/push/circuits'],
    ['POST', '/function/push/circuits/reset', { destination: dest }],
    ['GET', '/function/push/lag'],
    ['POST', '/function/day-close/run', { day: '2026-01-01', kind: 'T+1', orgCode: 'nobody' }],
    ['GET', '/function/day-close/days'],
  ];

  it.each(routes)('%s %s: 401 without, wrong or HIS credentials', async (method, path, body) => {
    for (const authorization of [undefined, basicAuthHeader({ user: rt.credentials.user, password: 'wrong' }), 'Bearer cdc_abcdefghij_' + 'x'.repeat(43)]) {
      const r = await send(`${rt.gatewayUrl}${path}`, { method, ...(body ? { body } : {}), headers: authorization ? { authorization } : {} });
      expect(r.status, `${authorization ?? 'none'}`).toBe(401);
      expect(r.body).toMatchObject({ errorCode: 'UNAUTHENTICATED' });
    }
  });

  it.each(routes)('%s %s: served with the gateway basic-auth credentials', async (method, path, body) => {
    const r = await send(`${rt.gatewayUrl}${path}`, { method, ...(body ? { body } : {}), headers: { authorization: basic } });
    expect(r.status, JSON.stringify(r.body)).toBeLessThan(400);
  });

  it('are reached by bin/cdc-faas invoke with the credentials of its secrets folder', { timeout: 30_000 }, async () => {
    const run = (secrets: string) =>
      new Promise<{ code: number | null; out: string }>((done) => {
        const p = spawn(resolve('bin/cdc-faas'), ['invoke', 'push', '--path', '/lag', '--gateway', rt.gatewayUrl, '--secrets', secrets], {
          env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
        });
        let out = '';
        p.stdout.on('data', (d: Buffer) => (out += d.toString()));
        p.stdin.end();
        p.on('exit', (code) => done({ code, out }));
      });
    const ok = await run(join(dir, 'secrets'));
    expect(ok.code, ok.out).toBe(0);
    expect(JSON.parse(ok.out)).toHaveProperty('lag');
    const none = await run(join(dir, 'no-secrets-here'));
    expect(none.code).not.toBe(0);
    expect(none.out).toMatch(/UNAUTHENTICATED/);
  });
});

describe('the open status shows error categories', () => {
  it("records a failed push as 'HTTP 500', never the platform's own text", { timeout: 60_000 }, async () => {
    await sim.fault({ mode: 'down500', times: 1 });
    const p = samplePatient({ orgCode: uniqueOrg(), id: uniqueId('ert') });
    expect((await send(patientUrl(), { body: p })).status).toBe(200);
    const run = await invokePush();
    const result = (run.body.results as { destination: string; error?: string }[]).find((r) => r.destination === dest);
    expect(result?.error).toMatch(/simulated outage/); // the operator's answer keeps the reason
    const notes = await db.query<{ note: string }>(`SELECT note FROM push_run WHERE note LIKE $1 ORDER BY run_id DESC LIMIT 1`, [`%${dest}:%`]);
    expect(notes.rows[0]?.note).toMatch(new RegExp(`${dest}: 平台应答 HTTP 500`));
    expect(notes.rows[0]?.note).not.toMatch(/simulated outage|unavailable/);
    const page = await fetch(`${rt.portUrls.web}/status.html`);
    expect(await page.text()).not.toContain('simulated outage');
    // A mistyped destination is no success: 404, for a reset as for a replay.
    for (const path of ['/function/push/circuits/reset', '/function/push/replay']) {
      const typo = await send(`${rt.gatewayUrl}${path}`, { body: { destination: `${dest}x`, orgCode: 'x' }, headers: { authorization: basic } });
      expect(typo.status, path).toBe(404);
    }
    // The destination waits in backoff: an operator's "retry now" sends the record at once, without
    // waiting for the next cron minute or another record's nudge.
    expect((await send(`${rt.gatewayUrl}/function/push/circuits/reset`, { body: { destination: dest }, headers: { authorization: basic } })).status).toBe(200);
    const end = Date.now() + 15_000;
    while (!sim.records().some((r) => r.id === p.id) && Date.now() < end) await new Promise((ok) => setTimeout(ok, 100));
    expect(sim.records().some((r) => r.id === p.id)).toBe(true);
  });
});
