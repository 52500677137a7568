/**
 * `make up`: the whole front on one machine with embedded defaults.
 *   - PostgreSQL: DATABASE_URL if set (openGauss or an existing server), else a private PostgreSQL 15
 *     with its data under .data/pg (PG_PORT, default 5432 on 127.0.0.1: the DB-sync port);
 *   - migrations;
 *   - the national platform simulator (NATIONAL_URL unless set: 127.0.0.1:18888), as its own process;
 *   - the runtime (infra/runtime) with every function of stack.yml, its gateway on 127.0.0.1:8080
 *     and the hospital ports 8881–8884.
 * Everything stops on Ctrl-C / SIGTERM, in reverse order.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { migrate } from '../db/migrate.js';
import { startPostgres, type RunningPostgres } from './postgres.js';
import { startRuntime, type RuntimeHandle } from '../runtime/index.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const dataDir = resolve(process.env.CDC_DATA_DIR ?? join(root, '.data'));
const secretsDir = join(dataDir, 'secrets');

function say(msg: string): void {
  process.stdout.write(`[make up] ${msg}\n`);
}

function writeSecret(name: string, value: string): void {
  mkdirSync(secretsDir, { recursive: true, mode: 0o700 });
  const file = join(secretsDir, name);
  writeFileSync(file, value + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
}

async function startSimulator(role: 'national' | 'provincial', port: number): Promise<ChildProcess> {
  mkdirSync(join(dataDir, 'simulators'), { recursive: true });
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(root, 'infra/simulators/main.ts'), '--role', role, '--port', String(port), '--store', join(dataDir, 'simulators', `${role}.ndjson`)],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((ok, fail) => {
    child.stdout!.once('data', () => ok());
    child.once('exit', (code) => fail(new Error(`${role} platform simulator exited (${code}); is port ${port} taken?`)));
  });
  child.stdout!.pipe(process.stdout);
  return child;
}

async function main(): Promise<void> {
  let pg: RunningPostgres | undefined;
  let sim: ChildProcess | undefined;
  let rt: RuntimeHandle | undefined;
  const stop = async () => {
    say('stopping…');
    await rt?.close().catch(() => undefined);
    sim?.kill('SIGTERM');
    await pg?.stop().catch(() => undefined);
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  try {
    let databaseUrl = process.env.DATABASE_URL;
    if (!databaseUrl) {
      pg = await startPostgres({ dataDir: join(dataDir, 'pg'), port: Number(process.env.PG_PORT ?? 5432) });
      databaseUrl = pg.url;
      say(`PostgreSQL ${pg.host}:${pg.port} (data in ${join(dataDir, 'pg')})`);
    }
    const applied = await migrate(databaseUrl);
    say(applied.length ? `migrations applied: ${applied.join(', ')}` : 'database schema is up to date');
    writeSecret('cdc-database-url', databaseUrl);

    const env: Record<string, string> = {};
    // make up is development: loopback callers are admitted without registration (HIS_ALLOW, which
    // stack.yml leaves empty), unless set otherwise or CDC_ENV=production (docs/his-auth.md).
    if (process.env.HIS_ALLOW === undefined && process.env.CDC_ENV !== 'production') env.HIS_ALLOW = '127.0.0.1/8,::1/128';
    if (!process.env.NATIONAL_URL) {
      const port = Number(process.env.NATIONAL_SIM_PORT ?? 18888);
      sim = await startSimulator('national', port);
      env.NATIONAL_URL = `http://127.0.0.1:${port}`;
    }
    rt = await startRuntime({
      stackFile: join(root, 'stack.yml'),
      env,
      secretsDir,
      logsDir: join(dataDir, 'logs'),
      build: 'always',
    });
    say(`gateway ${rt.gatewayUrl} (basic auth: ${join(secretsDir, 'basic-auth-user')} / basic-auth-password)`);
    for (const [k, u] of Object.entries(rt.portUrls)) say(`${k.padEnd(8)} ${u}`);
    say(`national platform simulator ${env.NATIONAL_URL ?? process.env.NATIONAL_URL}`);
    say(`functions: ${rt.functions().join(', ')}; logs in ${join(dataDir, 'logs')}; Ctrl-C stops everything`);
  } catch (err) {
    process.stderr.write(`[make up] ${(err as Error).message}\n`);
    await rt?.close().catch(() => undefined);
    sim?.kill('SIGTERM');
    await pg?.stop().catch(() => undefined);
    process.exit(1);
  }
}

void main();
