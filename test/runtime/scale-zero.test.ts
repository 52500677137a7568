/**
 * Scale to zero (docs/runtime.md "Scale to zero"): a function labelled com.openfaas.scale.zero gives
 * up its replica after its zero-duration with nothing invoked — the process is gone — and the next
 * call wakes it and is answered, as OpenFaaS's idler and gateway do. A function called more often
 * than that, or busy with a long call, keeps its replica. Through the runtime's real gateway.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RuntimeHandle } from '../../infra/runtime/index.js';
import { auth, sleep, startFixtureRuntime, until } from './helpers.js';

let rt: RuntimeHandle;

beforeAll(async () => {
  ({ rt } = await startFixtureRuntime({ idleCheckMs: 100, cron: { timezone: 'Asia/Shanghai' } }));
});
afterAll(async () => {
  await rt?.close();
});

const json = { 'content-type': 'application/json' };
async function deploy(
  service: string,
  handler: string,
  labels: Record<string, string>,
  annotations: Record<string, string> = {},
  envVars: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${rt.gatewayUrl}/system/functions`, {
    method: 'POST',
    headers: { ...auth(rt), ...json },
    body: JSON.stringify({ service, image: `fixture/${service}:test`, envVars, labels, annotations: { 'com.cdc-front.handler': handler, ...annotations } }),
  });
}
const sleepy = { 'com.openfaas.scale.zero': 'true', 'com.openfaas.scale.zero-duration': '1s' };
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const pidOf = async (fn: string) => {
  const res = await fetch(`${rt.gatewayUrl}/function/${fn}/x`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { pid: number }).pid;
};

describe('scale to zero', () => {
  it('an idle function loses its process, and the next call wakes it and is answered', async () => {
    expect((await deploy('nap', 'functions/echo', sleepy)).status).toBe(202);
    expect(await rt.waitForReplicas('nap', 10_000)).toBe(true);
    const first = await pidOf('nap');
    expect(alive(first)).toBe(true);
    // Idle for its zero-duration: no replica, no process.
    expect(await until(() => rt.replicas('nap').length === 0 && !alive(first), 10_000)).toBe(true);
    const status = (await (await fetch(`${rt.gatewayUrl}/system/function/nap`, { headers: auth(rt) })).json()) as {
      replicas: number;
      availableReplicas: number;
    };
    expect(status).toMatchObject({ replicas: 0, availableReplicas: 0 });
    // The next call is held until a new replica is ready, then answered.
    const second = await pidOf('nap');
    expect(second).not.toBe(first);
    expect(rt.replicas('nap')).toHaveLength(1);
  });

  it('a replica slower to start than the zero-duration is not taken back while a call waits for it', async () => {
    expect((await deploy('drowsy', 'functions/echo', sleepy, {}, { START_DELAY_MS: '2500' })).status).toBe(202);
    expect(await rt.waitForReplicas('drowsy', 15_000)).toBe(true);
    expect(await until(() => rt.replicas('drowsy').length === 0, 10_000)).toBe(true);
    // Woken, the replica takes 2.5 s to be ready — longer than the 1 s idle limit — and the call waits.
    const first = await pidOf('drowsy');
    expect(alive(first)).toBe(true);
  });

  it('exec_timeout is the function’s time: a call that waited for its replica to start is not cut by the wait (docs/runtime.md)', async () => {
    // exec_timeout 1 s, a start of 2.5 s: counted from the call's arrival, the call was answered 504
    // (or never sent) though the function itself takes a few milliseconds.
    const fn = 'drowsy-exec';
    expect((await deploy(fn, 'functions/echo', sleepy, {}, { START_DELAY_MS: '2500', exec_timeout: '1s', write_timeout: '2s' })).status).toBe(202);
    expect(await rt.waitForReplicas(fn, 15_000)).toBe(true);
    expect(await until(() => rt.replicas(fn).length === 0, 10_000)).toBe(true);
    const t0 = Date.now();
    const res = await fetch(`${rt.gatewayUrl}/function/${fn}/x`, { method: 'POST', body: 'a card' });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(Date.now() - t0).toBeGreaterThan(2000);
  });

  it('counts idle time from when its replica is ready and its last call ended, not from its deployment or the call’s start', async () => {
    // A replica that takes longer to start than the zero-duration is not taken back the moment it is ready.
    expect((await deploy('slowstart', 'functions/slow', sleepy, {}, { START_DELAY_MS: '1500' })).status).toBe(202);
    expect(await rt.waitForReplicas('slowstart', 15_000)).toBe(true);
    const ready = rt.replicas('slowstart')[0]!.pid!;
    // A call of 1.5 s, longer than the zero-duration: idle time begins when it ends.
    const call = (await (await fetch(`${rt.gatewayUrl}/function/slowstart/x?ms=1500`)).json()) as { pid: number };
    expect(call.pid).toBe(ready);
    await sleep(400);
    expect(rt.replicas('slowstart').map((r) => r.pid)).toEqual([ready]);
    expect(alive(ready)).toBe(true);
  });

  it('a function called more often than its zero-duration keeps its replica', async () => {
    expect((await deploy('busy', 'functions/echo', sleepy)).status).toBe(202);
    expect(await rt.waitForReplicas('busy', 10_000)).toBe(true);
    const pids = new Set<number>();
    for (let i = 0; i < 8; i++) {
      pids.add(await pidOf('busy'));
      await sleep(300);
    }
    expect(pids.size).toBe(1);
  });

  it('a call longer than the zero-duration is not cut off: the replica sleeps only after it', async () => {
    expect((await deploy('long', 'functions/slow', sleepy)).status).toBe(202);
    expect(await rt.waitForReplicas('long', 10_000)).toBe(true);
    const res = await fetch(`${rt.gatewayUrl}/function/long/x?ms=2500`);
    expect(res.status).toBe(200);
    const { pid, slept } = (await res.json()) as { pid: number; slept: number };
    expect(slept).toBe(2500);
    expect(await until(() => rt.replicas('long').length === 0 && !alive(pid), 10_000)).toBe(true);
  });

  it('the cron wakes a sleeping function at each firing', async () => {
    expect((await deploy('tock', 'functions/echo', sleepy, { topic: 'cron-function', schedule: '*/4 * * * * *' })).status).toBe(202);
    const pids = new Set<number>();
    let slept = false;
    const count = async () =>
      ((await (await fetch(`${rt.gatewayUrl}/system/function/tock`, { headers: auth(rt) })).json()) as { invocationCount: number }).invocationCount;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && !(pids.size >= 2 && slept)) {
      const rs = rt.replicas('tock');
      if (rs.length === 0) slept = true;
      for (const r of rs) if (r.pid) pids.add(r.pid);
      await sleep(100);
    }
    // Asleep between firings, a new process at a later firing, and the firings were answered.
    expect(slept).toBe(true);
    expect(pids.size).toBeGreaterThanOrEqual(2);
    expect(await count()).toBeGreaterThanOrEqual(1);
  });

  it('a function without the label never sleeps', async () => {
    const pid = await pidOf('echo');
    await sleep(1500);
    expect(await pidOf('echo')).toBe(pid);
  });

  it('refuses a label it cannot read', async () => {
    const res = await deploy('odd', 'functions/echo', { 'com.openfaas.scale.zero': 'yes' });
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/com\.openfaas\.scale\.zero/);
  });
});
