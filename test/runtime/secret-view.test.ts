// Each replica sees only its function's secrets (infra/runtime/secret-view.ts): the files stack.yml
// lists for it, and those its optional-secrets annotation names when they exist — never the gateway's
// credentials, another function's keys, or a file added for someone else; a secret added later is
// seen at once when the annotation names it exactly, after the replica restarts when under a
// `prefix*` (as on OpenFaaS after a redeploy).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFixtureRuntime, type Started } from './helpers.js';

let s: Started;
beforeAll(async () => {
  s = await startFixtureRuntime();
}, 60_000);
afterAll(async () => {
  await s?.rt.close();
});

const seen = async (): Promise<{ pid: number; secretNames: string[] }> =>
  (await fetch(`${s.rt.gatewayUrl}/function/echo/`)).json() as Promise<{ pid: number; secretNames: string[] }>;

describe('secret view', () => {
  it('a replica sees its listed secret and nothing of the runtime’s own', async () => {
    const r = await seen();
    expect(r.secretNames).toEqual(['fixture-secret']);
  });

  it('an optional secret added later is seen at once when named exactly, after a restart under a pattern; another function’s never', async () => {
    writeFileSync(join(s.rt.secretsDir, 'opt-province-key'), 'x\n', { mode: 0o600 });
    writeFileSync(join(s.rt.secretsDir, 'extra-key'), 'x\n', { mode: 0o600 });
    writeFileSync(join(s.rt.secretsDir, 'other-function-key'), 'x\n', { mode: 0o600 });
    const before = await seen();
    expect(before.secretNames).toEqual(['extra-key', 'fixture-secret']);
    process.kill(before.pid, 'SIGKILL');
    let after = before;
    for (let i = 0; i < 100 && after.pid === before.pid; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await seen().catch(() => before);
    }
    expect(after.pid).not.toBe(before.pid);
    expect(after.secretNames).toEqual(['extra-key', 'fixture-secret', 'opt-province-key']);
  });
});
