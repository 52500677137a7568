/**
 * Replicas: scaling through the API spreads traffic round robin; a replica killed with SIGKILL is
 * restarted while traffic flows, and only requests in flight in it may fail; the capacity autoscaler.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../infra/runtime/cli.js';
import type { RuntimeHandle } from '../../infra/runtime/index.js';
import { auth, sleep, startFixtureRuntime, until } from './helpers.js';

let rt: RuntimeHandle;

beforeAll(async () => {
  // The autoscaler's ceiling defaults to the server's cores; these tests scale past that on purpose
  // (the ceiling has its own test below).
  ({ rt } = await startFixtureRuntime({ autoscaler: { intervalMs: 200, scaleDownWindowMs: 1500 } }, { RUNTIME_AUTOSCALE_CEILING: '8' }));
});
afterAll(async () => {
  await rt?.close();
});

async function scale(fn: string, replicas: number): Promise<Response> {
  return fetch(`${rt.gatewayUrl}/system/scale-function/${fn}`, {
    method: 'POST',
    headers: { ...auth(rt), 'content-type': 'application/json' },
    body: JSON.stringify({ serviceName: fn, replicas }),
  });
}

/** Deploys the slow fixture as a capacity function (one call in flight per replica wanted) with scale.max `max`. */
async function deployCapacity(on: RuntimeHandle, service: string, max: number): Promise<number> {
  const res = await fetch(`${on.gatewayUrl}/system/functions`, {
    method: 'POST',
    headers: { ...auth(on), 'content-type': 'application/json' },
    body: JSON.stringify({
      service,
      image: 'fixture/slow:test',
      envVars: { exec_timeout: '10s', write_timeout: '2s' },
      labels: { 'com.openfaas.scale.min': '1', 'com.openfaas.scale.max': String(max), 'com.openfaas.scale.type': 'capacity', 'com.openfaas.scale.target': '1' },
      annotations: { 'com.cdc-front.handler': 'functions/slow' },
    }),
  });
  return res.status;
}

async function status(fn: string): Promise<{ replicas: number; availableReplicas: number; invocationCount: number }> {
  const res = await fetch(`${rt.gatewayUrl}/system/function/${fn}`, { headers: auth(rt) });
  return (await res.json()) as { replicas: number; availableReplicas: number; invocationCount: number };
}

describe('scaling', () => {
  it('scales echo to 3 replicas and spreads requests over all three, round robin', async () => {
    expect((await scale('echo', 3)).status).toBe(202);
    expect(await rt.waitForReplicas('echo', 10_000)).toBe(true);
    const pids = new Set(rt.replicas('echo').map((r) => r.pid));
    expect(pids.size).toBe(3);
    const seen = new Map<number, number>();
    for (let i = 0; i < 30; i++) {
      const { pid } = (await (await fetch(`${rt.gatewayUrl}/function/echo/`)).json()) as { pid: number };
      seen.set(pid, (seen.get(pid) ?? 0) + 1);
    }
    expect(new Set(seen.keys())).toEqual(pids);
    expect([...seen.values()]).toEqual([10, 10, 10]);
    const s = await status('echo');
    expect(s.replicas).toBe(3);
    expect(s.availableReplicas).toBe(3);
  });

  it('clamps the requested count to com.openfaas.scale.max / .min', async () => {
    const res = await scale('slow', 9);
    expect(((await res.json()) as { replicas: number }).replicas).toBe(1);
    const res2 = await scale('crash', 0);
    expect(((await res2.json()) as { replicas: number }).replicas).toBe(2);
  });

  it('restarts a replica killed with SIGKILL under load; only requests in flight in it may fail', async () => {
    expect(await rt.waitForReplicas('echo', 10_000)).toBe(true);
    const before = rt.replicas('echo');
    expect(before).toHaveLength(3);
    const victim = before[1]!;
    // Counted on the metrics the monitoring port republishes (docs/monitoring.md): a replica that died.
    const exits = async () =>
      Number(/cdc_runtime_replica_exits_total\{function_name="echo"\} (\d+)/.exec(await (await fetch(`${rt.gatewayUrl}/metrics`)).text())?.[1]);
    const exitsBefore = await exits();
    expect(exitsBefore).toBeGreaterThanOrEqual(0);
    let stop = false;
    let ok = 0;
    const failures: number[] = [];
    const worker = async () => {
      while (!stop) {
        try {
          const res = await fetch(`${rt.gatewayUrl}/function/echo/stream`, { method: 'POST', body: 'x'.repeat(256) });
          await res.arrayBuffer();
          if (res.status === 200) ok++;
          else failures.push(res.status);
        } catch {
          failures.push(0);
        }
      }
    };
    const workers = Array.from({ length: 6 }, worker);
    await sleep(400);
    const atKill = rt.replicas('echo').find((r) => r.id === victim.id)!;
    process.kill(victim.pid!, 'SIGKILL');
    const restarted = await until(() => {
      const now = rt.replicas('echo');
      return now.length === 3 && now.every((r) => r.state === 'ready') && !now.some((r) => r.pid === victim.pid);
    }, 10_000);
    await sleep(300);
    stop = true;
    await Promise.all(workers);

    expect(restarted).toBe(true);
    const after = rt.replicas('echo');
    expect(after.map((r) => r.pid)).not.toContain(victim.pid);
    expect(after.filter((r) => !before.some((b) => b.pid === r.pid))).toHaveLength(1);
    expect(ok).toBeGreaterThan(50);
    // In flight in the victim: those it held when killed, plus those dispatched to it before its exit
    // was seen (the kernel tears a killed process's sockets down shortly after the signal).
    const exitLine = readFileSync(join(rt.logsDir, 'runtime.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { msg: string; replica?: string; served?: number })
      .find((l) => l.msg === 'replica exited, restarting' && l.replica === victim.id)!;
    const inflightInVictim = atKill.inflight + (exitLine.served! - atKill.served);
    expect(inflightInVictim).toBeLessThanOrEqual(6);
    expect(failures.length).toBeLessThanOrEqual(inflightInVictim);
    for (const f of failures) expect(f).toBe(502);
    expect(await exits()).toBe(exitsBefore + 1);
  });
});

describe('capacity autoscaler', () => {
  it('scales a capacity function up on in-flight requests and back down when the load is gone', async () => {
    expect(await deployCapacity(rt, 'auto', 3)).toBe(202);
    expect(await rt.waitForReplicas('auto', 10_000)).toBe(true);
    const load = Array.from({ length: 4 }, () => fetch(`${rt.gatewayUrl}/function/auto/?ms=1500`).then((r) => r.status));
    expect(await until(() => rt.replicas('auto').length === 3, 3000)).toBe(true);
    expect(await Promise.all(load)).toEqual([200, 200, 200, 200]);
    expect(await until(() => rt.replicas('auto').length === 1, 6000)).toBe(true);
    expect((await status('auto')).replicas).toBe(1);
  });

  it('keeps a scale by hand (cdc-faas scale) as a floor: above it under load, back to it, never below', async () => {
    expect(await deployCapacity(rt, 'floor', 4)).toBe(202);
    expect(await rt.waitForReplicas('floor', 10_000)).toBe(true);
    const cli = async (...args: string[]) => {
      let out = '';
      const code = await run([...args, '--gateway', rt.gatewayUrl, '--secrets', rt.secretsDir], (s) => (out += s));
      expect(code, out).toBe(0);
      return out;
    };
    /** The fewest live replicas seen while sampling for `ms`. */
    const lowestFor = async (ms: number) => {
      let low = Infinity;
      const end = Date.now() + ms;
      while (Date.now() < end) {
        low = Math.min(low, (await status('floor')).replicas);
        await sleep(100);
      }
      return low;
    };

    expect(await cli('scale', 'floor', '--replicas', '2')).toContain('scaled to 2');
    expect(await rt.waitForReplicas('floor', 10_000)).toBe(true);
    // Idle for more than the autoscaler's scale-down window (1.5 s here): the count set by hand stays.
    expect(await lowestFor(3000)).toBe(2);
    expect(rt.replicas('floor').filter((r) => r.state === 'ready')).toHaveLength(2);

    // Load takes it above the floor; once the load is gone it comes back to the floor, not to min.
    const load = Array.from({ length: 4 }, () => fetch(`${rt.gatewayUrl}/function/floor/?ms=1500`).then((r) => r.status));
    expect(await until(() => rt.replicas('floor').length >= 3, 3000)).toBe(true);
    expect(await Promise.all(load)).toEqual([200, 200, 200, 200]);
    expect(await until(() => rt.replicas('floor').filter((r) => r.state === 'ready').length === 2, 8000)).toBe(true);
    expect(await lowestFor(2500)).toBe(2);

    // A new scale by hand moves the floor: down to 1, and the autoscaler keeps that too.
    expect(await cli('scale', 'floor', '--replicas', '1')).toContain('scaled to 1');
    expect(await until(() => rt.replicas('floor').length === 1, 8000)).toBe(true);
  }, 40_000);
});

describe('the autoscaler ceiling (RUNTIME_AUTOSCALE_CEILING)', () => {
  it('holds a capacity function below its scale.max under load; a scale by hand may go above it', async () => {
    const { rt: capped } = await startFixtureRuntime({ autoscaler: { intervalMs: 200, scaleDownWindowMs: 1500 } }, { RUNTIME_AUTOSCALE_CEILING: '2' });
    try {
      expect(await deployCapacity(capped, 'capped', 4)).toBe(202);
      expect(await capped.waitForReplicas('capped', 10_000)).toBe(true);
      // Four calls in flight, one per replica wanted: the autoscaler goes to the ceiling, not to 4.
      let most = 0;
      const load = Array.from({ length: 4 }, () => fetch(`${capped.gatewayUrl}/function/capped/?ms=2000`).then((r) => r.status));
      const end = Date.now() + 1800;
      while (Date.now() < end) {
        most = Math.max(most, capped.replicas('capped').length);
        await sleep(50);
      }
      expect(await Promise.all(load)).toEqual([200, 200, 200, 200]);
      expect(most).toBe(2);
      // By hand, above the ceiling.
      const res = await fetch(`${capped.gatewayUrl}/system/scale-function/capped`, {
        method: 'POST',
        headers: { ...auth(capped), 'content-type': 'application/json' },
        body: JSON.stringify({ serviceName: 'capped', replicas: 3 }),
      });
      expect(res.status).toBeLessThan(300);
      expect(await until(() => capped.replicas('capped').length === 3, 8000)).toBe(true);
    } finally {
      await capped.close();
    }
  }, 40_000);
});
