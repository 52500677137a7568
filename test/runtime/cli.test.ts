/**
 * The operator CLI (cdc-faas) against a running gateway, and the main entry as a real process:
 * started from the environment, stopped cleanly by SIGTERM.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../infra/runtime/cli.js';
import type { RuntimeHandle } from '../../infra/runtime/index.js';
import { freePort } from '../../infra/runtime/replica.js';
import { runtimeBundle } from '../../infra/root.js';
import { RUNTIME_NODE_FLAGS } from '../../infra/runtime/node-flags.js';
import { buildFixtures, fixtureStack, startFixtureRuntime, until } from './helpers.js';

const root = resolve(import.meta.dirname, '../..');
let rt: RuntimeHandle;

beforeAll(async () => {
  ({ rt } = await startFixtureRuntime());
});
afterAll(async () => {
  await rt?.close();
});

async function cli(...args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await run([...args, '--gateway', rt.gatewayUrl, '--secrets', rt.secretsDir], (s) => (out += s));
  return { code, out };
}

function bin(args: string[], input: string, env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done) => {
    const p = spawn(join(root, 'bin/cdc-faas'), args, { env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr.on('data', (c: Buffer) => (err += c.toString()));
    p.on('close', (code) => done({ code, out, err }));
    p.stdin.end(input);
  });
}

describe('cdc-faas', () => {
  it('lists functions with their replicas', async () => {
    const { code, out } = await cli('list');
    expect(code).toBe(0);
    expect(out).toMatch(/^Function\s+Invocations\s+Replicas\s+Image/);
    expect(out).toMatch(/\necho\s+\d+\s+1\/1\s+fixture\/echo:test/);
  });

  it('describes, scales and shows logs', async () => {
    expect((await cli('describe', 'slow')).out).toContain('Name:               slow');
    const scaled = await cli('scale', 'crash', '--replicas', '3');
    expect(scaled.out).toContain('scaled to 3');
    expect(await rt.waitForReplicas('crash')).toBe(true);
    expect(rt.replicas('crash')).toHaveLength(3);
    const logs = await cli('logs', 'echo', '--tail', '5');
    expect(logs.out.trim().split('\n').length).toBeGreaterThan(0);
    for (const l of logs.out.trim().split('\n')) expect(JSON.parse(l)).toHaveProperty('fn', 'echo');
  });

  it('fails clearly without credentials', async () => {
    await expect(run(['list', '--gateway', rt.gatewayUrl, '--secrets', '/nonexistent'], () => undefined)).rejects.toThrow(/unauthorized/);
  });

  it("prints the gateway's own JSON with --json, fields the verbs do not read included", async () => {
    const { code, out } = await cli('list', '--json');
    expect(code).toBe(0);
    const echo = (JSON.parse(out) as Array<Record<string, unknown>>).find((f) => f.name === 'echo');
    expect(echo).toMatchObject({ name: 'echo', namespace: 'openfaas-fn', availableReplicas: 1 });
    expect(echo).toHaveProperty('usage.totalMemoryBytes');
  });

  it("names what is wrong in a gateway answer that is not OpenFaaS's", async () => {
    // A server on the gateway's address that answers 200 with another shape (a proxy's page, an old API).
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify([{ name: 'echo', replicas: '1' }]));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const gateway = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const err = await run(['list', '--gateway', gateway, '--secrets', '/nonexistent'], () => undefined).catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/^list: the gateway's answer is not an OpenFaaS one/);
      for (const field of ['image', 'invocationCount', 'replicas', 'availableReplicas']) expect((err as Error).message).toContain(field);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('invokes a function with the body from stdin (bin/cdc-faas, a real process)', async () => {
    const { code, out } = await bin(['invoke', 'echo', '--path', '/hello?x=1', '--gateway', rt.gatewayUrl], 'abc');
    expect(code).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ method: 'POST', path: '/hello', query: '?x=1', bodyLength: 3 });
  });
});

describe('main entry', () => {
  it('starts from the environment and exits 0 after draining on SIGTERM', async () => {
    await buildFixtures();
    const dir = mkdtempSync(join(tmpdir(), 'cdc-runtime-main-'));
    mkdirSync(join(dir, 'secrets'));
    writeFileSync(join(dir, 'secrets/fixture-secret'), 'x');
    const gw = await freePort();
    const env: Record<string, string> = {
      GATEWAY_PORT: String(gw),
      HOSPITAL_HOST: '127.0.0.1',
      DATA_PORT: String(await freePort()),
      CONFIG_PORT: String(await freePort()),
      MONITOR_PORT: String(await freePort()),
      WEB_PORT: String(await freePort()),
      CDC_SECRETS_DIR: join(dir, 'secrets'),
      CDC_LOGS_DIR: join(dir, 'logs'),
      CRON_ENABLED: 'false',
      RUNTIME_BUILD: 'never',
    };
    // As `npm run up` starts it: node itself running the runtime's bundle with the runtime's flags.
    const p = spawn(process.execPath, [...RUNTIME_NODE_FLAGS, runtimeBundle('main'), '--stack', fixtureStack], {
      cwd: root,
      env: { ...process.env, ...env },
    });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
    try {
      // Generous: the replica starts on a machine CI shares with everything else.
      expect(await until(() => out.includes('"msg":"runtime started"'), 45_000), out).toBe(true);
      expect((await fetch(`http://127.0.0.1:${gw}/function/echo/x`)).status).toBe(200);
      p.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(out).toContain('"msg":"runtime stopped"');
    } finally {
      p.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
