// The function bundles as deployed (functions/<fn>/dist/index.js), with exactly the environment
// stack.yml gives them (no ${VAR} set: what `faas-cli up` deploys):
// - the development fallback is off: a loopback caller without credentials is refused;
// - CDC_ENV=production with HIS_ALLOW set fails the start, naming both.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, uniqueId, uniqueOrg } from '../setup/db.js';
import { loadStack, type FunctionSpec } from '../../infra/runtime/stack.js';
import { freePort } from '../../infra/runtime/replica.js';
import { samplePatient } from '../../infra/simulators/his.js';
import { initKeys } from '../../shared/pii/rotate.js';

const stack = loadStack(resolve('stack.yml'), {});
const spec = (name: string): FunctionSpec => stack.functions.find((f) => f.name === name)!;
let secrets: string;
let bare: string;
const running: ChildProcess[] = [];

beforeAll(() => {
  secrets = mkdtempSync(join(tmpdir(), 'cdc-fnstart-'));
  mkdirSync(secrets, { recursive: true });
  writeFileSync(join(secrets, 'cdc-database-url'), databaseUrl());
  // The personal-data keys production must be given (docs/keys.md); the last test goes without them.
  initKeys(secrets);
  bare = mkdtempSync(join(tmpdir(), 'cdc-fnstart-bare-'));
  writeFileSync(join(bare, 'cdc-database-url'), databaseUrl());
});
afterAll(() => {
  for (const c of running) c.kill('SIGKILL');
  rmSync(secrets, { recursive: true, force: true });
  rmSync(bare, { recursive: true, force: true });
});

interface Started {
  child: ChildProcess;
  output: () => string;
  /** Resolves with the port once listening, or with the exit code when the start fails. */
  outcome: Promise<{ listening: number } | { exited: number | null }>;
}

function start(name: string, extra: Record<string, string> = {}, port?: number, secretsDir = secrets): Started {
  const f = spec(name);
  const child = spawn(process.execPath, [join(f.handler, 'dist/index.js')], {
    env: { PATH: process.env.PATH ?? '', ...f.environment, CDC_SECRETS_DIR: secretsDir, http_port: String(port ?? 0), ...extra },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.push(child);
  let out = '';
  const outcome = new Promise<{ listening: number } | { exited: number | null }>((done) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /"msg":"listening","port":(\d+)/.exec(out);
      if (m) done({ listening: Number(m[1]) });
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => done({ exited: code }));
  });
  return { child, output: () => out, outcome };
}

describe('stack.yml as deployed', () => {
  it('refuses a loopback caller without credentials (no development fallback by default)', { timeout: 30_000 }, async () => {
    const s = start('patient', {}, await freePort());
    const o = await s.outcome;
    expect(o, s.output()).toHaveProperty('listening');
    const port = (o as { listening: number }).listening;
    const res = await fetch(`http://127.0.0.1:${port}/emrPatientInfo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(samplePatient({ orgCode: uniqueOrg(), id: uniqueId('fs') })),
    });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ errorCode: 'UNAUTHENTICATED' });
    s.child.kill('SIGTERM');
  });

  it.each(['patient', 'web'])('%s: CDC_ENV=production with HIS_ALLOW set fails the start, naming it', { timeout: 30_000 }, async (name) => {
    const s = start(name, { CDC_ENV: 'production', HIS_ALLOW: '127.0.0.1/8,::1/128' });
    const o = await s.outcome;
    expect(o, s.output()).toEqual({ exited: 1 });
    expect(s.output()).toMatch(/function failed to start/);
    expect(s.output()).toMatch(/HIS_ALLOW .*refused when CDC_ENV=production/);
  });

  it('starts in production without the fallback', { timeout: 30_000 }, async () => {
    const s = start('patient', { CDC_ENV: 'production' });
    expect(await s.outcome, s.output()).toHaveProperty('listening');
    s.child.kill('SIGTERM');
  });

  it.each(['patient', 'push', 'web'])(
    '%s: CDC_ENV=production without the personal-data keys fails the start, naming the files',
    { timeout: 30_000 },
    async (name) => {
      const s = start(name, { CDC_ENV: 'production' }, undefined, bare);
      expect(await s.outcome, s.output()).toEqual({ exited: 1 });
      expect(s.output()).toMatch(/function failed to start/);
      expect(s.output()).toMatch(/pii-field-keys and pii-hash-key are required when CDC_ENV=production/);
    },
  );

  it('validates as before without zod\'s other locales, its English one kept (docs/runtime.md "Bundles")', { timeout: 30_000 }, async () => {
    const bundle = readFileSync(join(spec('patient').handler, 'dist/index.js'), 'utf8');
    expect(bundle).toContain('zod/v4/locales/en.js');
    expect(bundle).not.toContain('zod/v4/locales/zh-CN.js');
    const s = start('patient', { HIS_ALLOW: '127.0.0.1/8' }, await freePort());
    const o = await s.outcome;
    expect(o, s.output()).toHaveProperty('listening');
    const res = await fetch(`http://127.0.0.1:${(o as { listening: number }).listening}/emrPatientInfo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...samplePatient({ orgCode: uniqueOrg(), id: uniqueId('fs') }), qzrjDataType: { a: 1 } }),
    });
    const body = (await res.json()) as { errors?: Array<{ field: string; rule: string; message: string }> };
    expect(res.status, JSON.stringify(body)).toBe(400);
    expect(body.errors).toEqual([{ field: 'qzrjDataType', rule: 'type', message: '应为文本 (must be text)', value: '[object]' }]);
    s.child.kill('SIGTERM');
  });

  it('names a bad setting when it fails the start', { timeout: 30_000 }, async () => {
    const s = start('patient', { HIS_TRUSTED_PROXIES: 'nginx.local' });
    expect(await s.outcome, s.output()).toEqual({ exited: 1 });
    expect(s.output()).toMatch(/HIS_TRUSTED_PROXIES/);
  });
});
