/**
 * Shared set-up of the runtime tests: fixture bundles built once (under a lock: vitest runs two
 * files at a time), a private secrets/logs folder, free loopback ports, a started runtime (in the
 * test's process, or as its own process with spawnRuntime).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bootStack } from '../../infra/runtime/boot.js';
import type { RuntimeHandle, RuntimeOptions } from '../../infra/runtime/index.js';
import { runtimeBundle } from '../../infra/root.js';
import { RUNTIME_NODE_FLAGS } from '../../infra/runtime/node-flags.js';
import { freePort } from '../../infra/runtime/replica.js';
import { basicAuthHeader } from '../../shared/http/basic.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const fixtureDir = join(root, 'test/fixtures/runtime');
export const fixtureStack = join(fixtureDir, 'stack.yml');
const FIXTURES = ['echo', 'slow', 'crash', 'tick', 'limited'];

type BuildModule = { buildFunction(f: { name: string; handler: string }): Promise<string> };

async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  const lock = join(fixtureDir, '.build-lock');
  const until = Date.now() + 60_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (Date.now() > until) throw new Error(`fixture build lock ${lock} held for 60 s (remove it if stale)`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  try {
    return await fn();
  } finally {
    rmdirSync(lock);
  }
}

/** Builds the fixture bundles that are missing or older than their handler or the template. */
export async function buildFixtures(): Promise<void> {
  const template = join(root, 'infra/openfaas/template/hono/index.ts');
  await withLock(async () => {
    const { buildFunction } = (await import(join(root, 'infra/build/build.mjs'))) as BuildModule;
    for (const name of FIXTURES) {
      const handler = join(fixtureDir, 'functions', name);
      const bundle = join(handler, 'dist/index.js');
      const newest = Math.max(statSync(join(handler, 'handler.ts')).mtimeMs, statSync(template).mtimeMs);
      if (!existsSync(bundle) || statSync(bundle).mtimeMs < newest) await buildFunction({ name, handler });
    }
  });
}

export interface Started {
  rt: RuntimeHandle;
  dir: string;
  env: Record<string, string>;
}

export async function startFixtureRuntime(over: Partial<RuntimeOptions> = {}, env: Record<string, string> = {}): Promise<Started> {
  await buildFixtures();
  // The fixture stack is not the front's: none of the front's defaults, the fixtures' own secret,
  // the autoscaler left on (infra/runtime/boot.ts). The folder goes with rt.close().
  const booted = await bootStack({
    name: 'runtime-test',
    stackFile: fixtureStack,
    frontDefaults: false,
    secrets: { 'fixture-secret': 'not-a-real-secret\n' },
    env,
    runtime: { gateway: { host: '127.0.0.1', port: 0 }, autoscaler: undefined, build: 'never', ...over },
    envFrom: (dir) => ({ TICK_LOG: join(dir, 'tick.log') }),
  });
  return { rt: booted.rt, dir: booted.dir, env: booted.env };
}

export function auth(rt: RuntimeHandle): Record<string, string> {
  return { authorization: basicAuthHeader(rt.credentials) };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` until it holds (true) or `ms` elapse (false). */
export async function until(cond: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(25);
  }
  return cond();
}

export interface SpawnedRuntime {
  child: ChildProcess;
  gatewayUrl: string;
  portUrls: Record<string, string>;
  logsDir: string;
  secretsDir: string;
  /** Everything the process wrote on stderr (an uncaught error ends up here). */
  stderr(): string;
  /** SIGTERM and wait for the exit (SIGKILL after 15 s); removes the temp folder. */
  stop(): Promise<void>;
}

/**
 * The runtime as `npm run up` and systemd run it: its own process (its bundle of infra/runtime/main.ts,
 * the runtime's node flags), so a test can see that nothing a caller sends ends it (`child.exitCode`
 * stays null). Fixture bundles built.
 */
export async function spawnRuntime(stackFile: string, env: Record<string, string> = {}): Promise<SpawnedRuntime> {
  // A port found free can be taken before the runtime binds it (another file's server, or the local
  // end of an outgoing connection: both come from the ephemeral range): then new ports, twice at most.
  for (let attempt = 1; ; attempt++) {
    try {
      return await spawnOnce(stackFile, env);
    } catch (err) {
      if (attempt >= 3 || !/is already in use/.test((err as Error).message)) throw err;
    }
  }
}

async function spawnOnce(stackFile: string, env: Record<string, string>): Promise<SpawnedRuntime> {
  await buildFixtures();
  const dir = mkdtempSync(join(tmpdir(), 'cdc-runtime-proc-'));
  const secretsDir = join(dir, 'secrets');
  const logsDir = join(dir, 'logs');
  mkdirSync(secretsDir, { recursive: true });
  writeFileSync(join(secretsDir, 'fixture-secret'), 'not-a-real-secret\n', { mode: 0o600 });
  const child = spawn(process.execPath, [...RUNTIME_NODE_FLAGS, runtimeBundle('main'), '--stack', stackFile], {
    cwd: root,
    env: {
      ...process.env,
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_PORT: String(await freePort()),
      HOSPITAL_HOST: '127.0.0.1',
      DATA_PORT: String(await freePort()),
      CONFIG_PORT: String(await freePort()),
      MONITOR_PORT: String(await freePort()),
      WEB_PORT: String(await freePort()),
      CDC_SECRETS_DIR: secretsDir,
      CDC_LOGS_DIR: logsDir,
      CRON_ENABLED: 'false',
      RUNTIME_BUILD: 'never',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const started = await new Promise<{ gateway: string; ports: Record<string, string> } | null>((done) => {
    let out = '';
    const onData = (c: Buffer) => {
      out += c.toString();
      for (const line of out.split('\n')) {
        if (!line.includes('"runtime started"')) continue;
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        done(JSON.parse(line) as { gateway: string; ports: Record<string, string> });
        return;
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', () => done(null));
    setTimeout(() => done(null), 60_000).unref();
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  if (!started) {
    await stop();
    throw new Error(`the runtime did not start: ${err}`);
  }
  return { child, gatewayUrl: started.gateway, portUrls: started.ports, logsDir, secretsDir, stderr: () => err, stop };
}
