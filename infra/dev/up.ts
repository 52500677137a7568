/**
 * `make up`: the whole front on one machine with embedded defaults.
 *   - PostgreSQL: DATABASE_URL if set (openGauss or an existing server), else a private PostgreSQL 15
 *     with its data under .data/pg (PG_PORT, default 5432 on 127.0.0.1: the DB-sync port);
 *   - migrations;
 *   - the national platform simulator (NATIONAL_URL unless set: 127.0.0.1:18888), as its own process;
 *   - the backup store, s3rver standing in for MinIO (BACKUP_S3_ENDPOINT unless set: 127.0.0.1:9000);
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
import { startS3, type RunningS3 } from './s3.js';
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
  let s3: RunningS3 | undefined;
  const stop = async () => {
    say('stopping…');
    await rt?.close().catch(() => undefined);
    await s3?.stop().catch(() => undefined);
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
    if (!process.env.NATIONAL_URL) {
      const port = Number(process.env.NATIONAL_SIM_PORT ?? 18888);
      sim = await startSimulator('national', port);
      env.NATIONAL_URL = `http://127.0.0.1:${port}`;
    }
    // Backups (docs/backup.md): an embedded S3 store standing in for MinIO unless BACKUP_S3_ENDPOINT is set.
    if (!process.env.BACKUP_S3_ENDPOINT) {
      s3 = await startS3({ dir: join(dataDir, 's3'), port: Number(process.env.S3_PORT ?? 9000) });
      env.BACKUP_S3_ENDPOINT = s3.endpoint;
      writeSecret('backup-s3-access-key', s3.accessKey);
      writeSecret('backup-s3-secret-key', s3.secretKey);
      say(`backup store (s3rver) ${s3.endpoint}, data in ${join(dataDir, 's3')}`);
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
    await s3?.stop().catch(() => undefined);
    sim?.kill('SIGTERM');
    await pg?.stop().catch(() => undefined);
    process.exit(1);
  }
}

void main();
