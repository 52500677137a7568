/**
 * vitest globalSetup: runs once, in the main vitest process, before any test file.
 *
 * 1. Builds the bundle of every function in stack.yml and the runtime's own (`node infra/build/build.mjs`):
 *    the e2e and runtime tests run the same artifacts production runs.
 * 2. Unless TEST_DATABASE_URL is set (an outside PostgreSQL or openGauss), starts a private
 *    PostgreSQL in a temp dir (fsync off: the data is thrown away) and stops it at the end.
 * 3. Runs the migrations once.
 * 4. Hands the URL to tests: `process.env.TEST_DATABASE_URL` (inherited by the forked workers) and
 *    `inject('databaseUrl')` (typed in ./types.d.ts). Tests use ./db.ts rather than either directly.
 *
 * TEST_PG_LOG=1 prints the private server's log to stderr.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { startPostgres, type RunningPostgres } from '../../infra/dev/postgres.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const t0 = Date.now();
  const [built, db] = await Promise.allSettled([buildFunctions(), startDatabase()]);
  const teardown = async (): Promise<void> => {
    if (db.status !== 'fulfilled') return;
    await db.value.close();
    // A watch-mode rerun must start a new private server, not take the dead one's URL as given.
    if (db.value.private) delete process.env.TEST_DATABASE_URL;
  };
  try {
    if (built.status === 'rejected') throw built.reason;
    if (db.status === 'rejected') throw db.reason;
    const url = db.value.url;
    // migrate.ts is written against the NodeNext layout: import it by its .js name, like all TS here.
    const { migrate } = await import('../../infra/db/migrate.js');
    const applied = await migrate(url);
    process.env.TEST_DATABASE_URL = url;
    project.provide('databaseUrl', url);
    log(
      `${db.value.private ? 'private PostgreSQL' : 'TEST_DATABASE_URL'} ready, ` +
        `${applied.length} migration(s) applied, ${built.value.length} bundle(s) built, in ${Date.now() - t0} ms`,
    );
  } catch (err) {
    await teardown();
    throw err;
  }
  return teardown;
}

function log(msg: string): void {
  process.stderr.write(`[test setup] ${msg}\n`);
}

/** Builds the runtime's bundles and the functions of stack.yml whose handler exists; warns about the others. */
async function buildFunctions(): Promise<string[]> {
  const { stackFunctions } = (await import(join(root, 'infra/build/build.mjs'))) as {
    stackFunctions(): { name: string; handler: string }[];
  };
  const all = stackFunctions();
  const ready = all.filter((f) => existsSync(join(f.handler, 'handler.ts'))).map((f) => f.name);
  const missing = all.filter((f) => !ready.includes(f.name)).map((f) => f.name);
  if (missing.length > 0) log(`not built, no handler.ts yet: ${missing.join(', ')}`);
  if (ready.length === 0) return [];
  await new Promise<void>((resolvePromise, reject) => {
    let output = '';
    const child = spawn(process.execPath, [join(root, 'infra/build/build.mjs'), '--runtime', ...ready], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolvePromise() : reject(new Error(`node infra/build/build.mjs failed (exit ${code}):\n${output}`))));
  });
  return ready;
}

interface TestDatabase {
  url: string;
  private: boolean;
  close(): Promise<void>;
}

async function startDatabase(): Promise<TestDatabase> {
  const given = process.env.TEST_DATABASE_URL;
  if (given) return { url: given, private: false, close: async () => undefined };
  const dir = mkdtempSync(join(tmpdir(), 'cdc-front-test-'));
  let server: RunningPostgres;
  try {
    server = await startPostgres({
      dataDir: join(dir, 'pg'),
      fsync: false,
      log: process.env.TEST_PG_LOG ? (line) => process.stderr.write(`[postgres] ${line}\n`) : undefined,
    });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    url: server.url,
    private: true,
    close: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
