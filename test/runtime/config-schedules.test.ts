// A configuration bundle's schedules through the running runtime with stack.yml (docs/config-bundles.md
// "Schedules"): the config function writes them into the scheduled functions' annotations at the
// gateway, moved into the connector's zone (here UTC, as OpenFaaS's connector), and the runtime's
// cron-connector follows; an expression the connector's zone cannot say, a function that is not
// scheduled and one that does not exist are named, not applied; a bad cron refuses the whole bundle;
// a redeploy's stack.yml schedule is written over again; a rollback puts stack.yml's back. No replica
// is replaced for a schedule.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootStack, type Booted } from '../../infra/runtime/boot.js';
import { privateDatabase } from '../setup/db.js';
import { bundleDoc, platformKey, signed } from '../integration/config-bundles-helpers.js';
import { basicAuthHeader } from '../../shared/http/basic.js';

const platform = platformKey();
let front: Booted;
let db: pg.Pool;
let drop: () => Promise<void>;
let token: string;
let port: string;
let databaseUrl: string;

const STACK_DAY_CLOSE = '*/15 * * * *'; // stack.yml's

beforeAll(async () => {
  const p = await privateDatabase('cfgsched');
  db = p.db;
  drop = p.drop;
  databaseUrl = p.url;
  // The connector in UTC, as OpenFaaS's; the hospital in Asia/Shanghai (stack.yml's TZ_LOCAL default).
  front = await boot();
  token = readFileSync(join(front.rt.secretsDir, 'config-token'), 'utf8').trim();
  port = front.rt.portUrls.config!;
}, 180_000);
afterAll(async () => {
  await front?.close();
  await drop?.();
});

const boot = () =>
  bootStack({
    name: 'config-schedules',
    databaseUrl,
    secrets: { 'config-platform-pubkey': platform.publicKeyPem },
    runtime: { cron: { timezone: 'UTC' } },
  });
const bearer = () => ({ authorization: `Bearer ${token}` });
const basic = () => ({ authorization: basicAuthHeader(front.rt.credentials) });
const post = (path: string, body: string) => fetch(`${port}${path}`, { method: 'POST', headers: { ...bearer(), 'content-type': 'application/json' }, body });
const annotations = async (fn: string) =>
  ((await (await fetch(`${front.rt.gatewayUrl}/system/function/${fn}`, { headers: basic() })).json()) as { annotations: Record<string, string> }).annotations;
const state = async () =>
  Object.fromEntries(
    (await db.query<{ function_name: string; schedule: string | null; source: string; problem: string | null }>('SELECT * FROM schedule_state')).rows.map(
      (r) => [r.function_name, { schedule: r.schedule, source: r.source, problem: r.problem }],
    ),
  );
async function until<T>(what: () => Promise<T> | T, ok: (v: T) => boolean, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  let v = await what();
  while (!ok(v) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 200));
    v = await what();
  }
  return v;
}
const pids = (fn: string) => front.rt.replicas(fn).map((r) => r.pid);

describe('schedules from a configuration bundle', () => {
  it('records at start what fires each scheduled function, from stack.yml', async () => {
    const s = await until(state, (x) => Object.keys(x).length >= 5);
    expect(s['day-close']).toEqual({ schedule: STACK_DAY_CLOSE, source: 'stack', problem: null });
    expect(s.push).toMatchObject({ schedule: '* * * * *', source: 'stack' });
    expect(front.rt.schedules()['day-close']).toBe(STACK_DAY_CLOSE);
    // …and the hospital port each function is served on, as the runtime bound them (free ports here).
    const ports = Object.fromEntries(
      (await db.query<{ function_name: string; port: number; root: boolean }>('SELECT function_name, port, root FROM gateway_port')).rows.map((r) => [
        r.function_name,
        r,
      ]),
    );
    expect(ports.patient).toMatchObject({ port: Number(new URL(front.rt.portUrls.data!).port), root: true });
    expect(ports.record).toMatchObject({ port: Number(new URL(front.rt.portUrls.data!).port), root: false });
    expect(ports.config).toMatchObject({ port: Number(new URL(front.rt.portUrls.config!).port), root: true });
    expect(ports.push).toBeUndefined(); // on no hospital port
  });

  it('refuses a bundle whose cron the connector could not run, naming it, and changes nothing', async () => {
    const res = await post('/bundles', signed(bundleDoc(1, { schedules: [{ function: 'day-close', schedule: '61 * * * *' }] }), platform.key));
    expect(res.status).toBe(422);
    const body = (await res.json()) as { error: { issues: Array<{ field: string; rule: string }> } };
    expect(body.error.issues).toEqual([expect.objectContaining({ field: 'sections.schedules[0].schedule', rule: 'cron' })]);
    expect((await db.query('SELECT count(*)::int AS n FROM config_bundle')).rows[0].n).toBe(0);
    expect((await annotations('day-close')).schedule).toBe(STACK_DAY_CLOSE);
  });

  it('names a schedule the connector could not run in the same refusal as the document’s format issues', async () => {
    // Entry 0's cron cannot run, entry 1 names no function: the platform learns both at once.
    const doc = bundleDoc(1, { schedules: [{ function: 'day-close', schedule: '61 * * * *' }, { schedule: '5 * * * *' }] });
    const res = await post('/bundles', signed(doc, platform.key));
    expect(res.status).toBe(422);
    const body = (await res.json()) as { error: { code: string; issues: Array<{ field: string; rule: string }> } };
    expect(body.error.code).toBe('invalid-bundle');
    expect(body.error.issues.map((i) => i.field)).toEqual(expect.arrayContaining(['sections.schedules.1.function', 'sections.schedules[0].schedule']));
    expect(body.error.issues.find((i) => i.field === 'sections.schedules[0].schedule')?.rule).toBe('cron');
    expect((await db.query('SELECT count(*)::int AS n FROM config_bundle')).rows[0].n).toBe(0);
  });

  it('answers a JSON body that is not an object (an array, a number, null) 400 invalid-request, through the port', async () => {
    for (const body of ['[]', '[{"bundle": "x"}]', '42', 'null', '"x"']) {
      const res = await post('/bundles', body);
      const r = (await res.json()) as { error: { code: string }; applied: boolean };
      expect([body, res.status, r.error.code]).toEqual([body, 400, 'invalid-request']);
      expect(r.applied).toBe(false);
    }
  });

  it('writes a bundle’s schedules at the gateway in the connector’s zone; the connector follows, no replica replaced', async () => {
    expect((await post('/bundles', signed(bundleDoc(1, { release: { version: '0.0.1' } }), platform.key))).status).toBe(201);
    const before = pids('day-close');
    const res = await post(
      '/bundles',
      signed(
        bundleDoc(2, {
          schedules: [
            { function: 'day-close', schedule: '20 2 * * *' }, // 02:20 in Shanghai = 18:20 UTC
            { function: 'backup', schedule: '40 1 * * 1-5' }, // 01:40 Mon–Fri in Shanghai is Sun–Thu in UTC
            { function: 'patient', schedule: '* * * * *' },
            { function: 'no-such-fn', schedule: '* * * * *' },
          ],
        }),
        platform.key,
      ),
    );
    expect(res.status, await res.clone().text()).toBe(201);
    const body = (await res.json()) as { changed: string[]; schedules: Array<{ function: string; written: string | null; problem: string | null }> };
    expect(body.changed).toEqual(['schedules']);
    const by = Object.fromEntries(body.schedules.map((s) => [s.function, s]));
    expect(by['day-close']).toMatchObject({ written: '20 18 * * *', problem: null });
    expect(by.backup!.problem).toMatch(/another day/);
    expect(by.patient!.problem).toMatch(/not a scheduled function/);
    expect(by['no-such-fn']!.problem).toMatch(/no such function/);

    const a = await annotations('day-close');
    expect(a.schedule).toBe('20 18 * * *');
    expect(a['com.cdc-front.schedule.base']).toBe(STACK_DAY_CLOSE);
    expect((await annotations('backup')).schedule).toBe('7 * * * *'); // stack.yml's, untouched
    expect((await annotations('patient')).topic).toBeUndefined();
    expect(
      await until(
        () => front.rt.schedules()['day-close'],
        (v) => v === '20 18 * * *',
        5000,
      ),
    ).toBe('20 18 * * *');
    expect(pids('day-close')).toEqual(before);

    const s = await state();
    expect(s['day-close']).toEqual({ schedule: '20 2 * * *', source: 'bundle', problem: null });
    expect(s.backup).toMatchObject({ schedule: '7 * * * *', problem: expect.stringMatching(/another day/) });
    expect(s['no-such-fn']!.problem).toMatch(/no such function/);
  });

  it('writes the bundle’s schedule again over a redeploy of stack.yml’s', async () => {
    // As `faas-cli deploy` would: the function deployed again with stack.yml's annotations.
    const fn = (await (await fetch(`${front.rt.gatewayUrl}/system/function/day-close`, { headers: basic() })).json()) as Record<string, unknown> & {
      name: string;
      annotations: Record<string, string>;
    };
    const { 'com.cdc-front.schedule.base': _b, ...stackAnnotations } = fn.annotations;
    const put = await fetch(`${front.rt.gatewayUrl}/system/functions`, {
      method: 'PUT',
      headers: { ...basic(), 'content-type': 'application/json' },
      body: JSON.stringify({ ...fn, service: fn.name, annotations: { ...stackAnnotations, schedule: STACK_DAY_CLOSE } }),
    });
    expect(put.status).toBe(202);
    // The config function's next pass writes the bundle's again: one of its first passes after start
    // (1 s, 2 s, 4 s …) may already have done so, so stack.yml's is not waited for here; the
    // operator's command asks for a pass now.
    const { stdout } = await promisify(execFile)('bin/cdc-config', ['schedules', '--url', port, '--token-file', join(front.rt.secretsDir, 'config-token')]);
    const answer = JSON.parse(stdout) as { schedules: Array<{ function: string; schedule: string; written: string }> };
    expect(answer.schedules.find((s) => s.function === 'day-close')).toMatchObject({ schedule: '20 2 * * *', written: '20 18 * * *' });
    expect((await annotations('day-close')).schedule).toBe('20 18 * * *');
    expect(
      await until(
        () => front.rt.schedules()['day-close'],
        (v) => v === '20 18 * * *',
        5000,
      ),
    ).toBe('20 18 * * *');
  });

  it('puts stack.yml’s schedule back on a rollback to a version without schedules', async () => {
    const res = await post('/bundles/1/rollback', JSON.stringify({ reason: '恢复默认计划' }));
    expect(res.status, await res.clone().text()).toBe(200);
    const a = await annotations('day-close');
    expect(a.schedule).toBe(STACK_DAY_CLOSE);
    expect(a['com.cdc-front.schedule.base']).toBeUndefined();
    expect(
      await until(
        () => front.rt.schedules()['day-close'],
        (v) => v === STACK_DAY_CLOSE,
        5000,
      ),
    ).toBe(STACK_DAY_CLOSE);
    const s = await state();
    expect(s['day-close']).toEqual({ schedule: STACK_DAY_CLOSE, source: 'stack', problem: null });
    expect(s['no-such-fn']).toBeUndefined();
  });

  it('writes the bundle’s schedules again when the front restarts from stack.yml', async () => {
    const res = await post(
      '/bundles',
      signed(
        bundleDoc(3, {
          schedules: [
            { function: 'day-close', schedule: '20 2 * * *' },
            { function: 'backup', schedule: '30 9 * * *' }, // backup comes after config in stack.yml
          ],
        }),
        platform.key,
      ),
    );
    expect(res.status, await res.clone().text()).toBe(201);
    await front.close();
    front = await boot();
    token = readFileSync(join(front.rt.secretsDir, 'config-token'), 'utf8').trim();
    port = front.rt.portUrls.config!;
    const both = (v: Record<string, string>) => v['day-close'] === '20 18 * * *' && v.backup === '30 1 * * *';
    expect(await until(() => front.rt.schedules(), both, 30_000)).toMatchObject({ 'day-close': '20 18 * * *', backup: '30 1 * * *' });
  }, 120_000);
});
