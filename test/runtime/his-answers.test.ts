// The runtime's own answers on hospital ports (docs/his-guide.md §3): every one is the HIS envelope
// {result, desc, id, errorCode, errorName} with a Chinese desc, and 429/5xx say when to retry.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFixtureRuntime, type Started } from './helpers.js';

let s: Started;

beforeAll(async () => {
  s = await startFixtureRuntime();
}, 60_000);

afterAll(async () => {
  await s?.rt.close();
});

async function envelope(res: Response): Promise<Record<string, unknown>> {
  expect(res.headers.get('content-type')).toMatch(/application\/json/);
  const a = (await res.json()) as Record<string, unknown>;
  expect(a).toMatchObject({ result: false, id: null, errorCode: expect.any(String), errorName: expect.stringMatching(/[\u4e00-\u9fff]/) });
  expect(a.desc).toMatch(/^[\u4e00-\u9fff]/);
  return a;
}

describe("the runtime's own answers on hospital ports", () => {
  it('an unknown resource: 404 NOT_FOUND', async () => {
    const res = await fetch(`${s.rt.portUrls.data}/hclient/emr/receive/emrNoSuchThing`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(404);
    expect(await envelope(res)).toMatchObject({ errorCode: 'NOT_FOUND', error: 'unknown_resource' });
  });

  it('a path no function serves on a port without a root function: 404 NOT_FOUND', async () => {
    const res = await fetch(`${s.rt.portUrls.data}/nowhere`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(404);
    expect(await envelope(res)).toMatchObject({ errorCode: 'NOT_FOUND' });
  });

  it('a port whose function is not deployed: 503 UNAVAILABLE with Retry-After', async () => {
    const res = await fetch(`${s.rt.portUrls.config}/anything`);
    expect(res.status).toBe(503);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await envelope(res)).toMatchObject({ errorCode: 'UNAVAILABLE', error: 'no_function' });
  });

  it('a function past its exec timeout: 504 UNAVAILABLE with Retry-After', async () => {
    const res = await fetch(`${s.rt.portUrls.web}/function/slow/?ms=3000`);
    expect(res.status).toBe(504);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await envelope(res)).toMatchObject({ errorCode: 'UNAVAILABLE' });
  });
});

describe('a function restarting', () => {
  it('its resource is answered (or 502/503 with Retry-After in the envelope), never 404, while its replica restarts', async () => {
    const before = s.rt
      .replicas('echo')
      .map((r) => r.pid)
      .filter((p): p is number => p !== undefined);
    expect(before.length).toBeGreaterThan(0);
    for (const pid of before) process.kill(pid, 'SIGKILL');
    const statuses: number[] = [];
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      const res = await fetch(`${s.rt.portUrls.data}/hclient/emr/receive/emrPatientInfo`, { method: 'POST', body: '{}' });
      statuses.push(res.status);
      if (res.status !== 200) {
        // 502: the request found the dead replica's port closed (nothing delivered); 503: none ready yet.
        expect([502, 503]).toContain(res.status);
        expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
        await envelope(res);
      } else {
        await res.arrayBuffer();
        if (s.rt.replicas('echo').some((r) => r.pid !== undefined && !before.includes(r.pid))) break;
      }
    }
    expect(statuses).not.toContain(404);
    expect(s.rt.replicas('echo').some((r) => r.state === 'ready' && r.pid !== undefined && !before.includes(r.pid))).toBe(true);
  });
});
