/**
 * The backup settings that point the backup code at the tests' S3 store (infra/dev/s3.ts, MinIO's
 * stand-in), under a prefix of the caller's: what the backup tests give loadBackupConfig and the CLI.
 */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import type { RunningS3 } from '../../infra/dev/s3.js';

export function backupStoreEnv(s3: RunningS3, prefix: string, o: { partMb?: string } = {}): Record<string, string> {
  return {
    BACKUP_S3_ENDPOINT: s3.endpoint,
    BACKUP_S3_ACCESS_KEY: s3.accessKey,
    BACKUP_S3_SECRET_KEY: s3.secretKey,
    BACKUP_S3_BUCKET: s3.bucket,
    BACKUP_S3_PREFIX: prefix,
    ...(o.partMb ? { BACKUP_PART_MB: o.partMb } : {}),
  };
}

/** What the operator's backup command printed and how it ended (`hung`: killed at the caller's limit). */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
  hung: boolean;
}

/**
 * The operator's backup command (infra/backup/cli.ts: `make backup`, `make restore`, …) as a process,
 * with PATH and HOME and the caller's variables only. With `limitMs`, killed with whatever it spawned
 * (its own process group) when it has not ended by then, and reported `hung`.
 */
export function backupCli(args: string[], env: Record<string, string>, limitMs?: number): Promise<CliRun> {
  const root = resolve(import.meta.dirname, '../..');
  const t0 = Date.now();
  return new Promise((ok) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'infra/backup/cli.ts'), ...args], {
      cwd: root,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    let hung = false;
    const timer =
      limitMs === undefined
        ? undefined
        : setTimeout(() => {
            hung = true;
            process.kill(-child.pid!, 'SIGKILL');
          }, limitMs);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => {
      clearTimeout(timer);
      ok({ code, stdout, stderr, ms: Date.now() - t0, hung });
    });
  });
}

/**
 * A stack file with the backup function as stack.yml declares it (its optional secrets, the gateway's
 * credentials for its operator routes), pointed at the tests' store under `prefix`; `more`: further
 * environment lines of the function, then further functions, as stack.yml lines.
 */
export function backupStackYaml(s3: RunningS3, prefix: string, o: { env?: string[]; functions?: string[] } = {}): string {
  return [
    'version: 1.0',
    'provider: { name: openfaas, gateway: "http://127.0.0.1:8080" }',
    'functions:',
    '  backup:',
    '    lang: hono',
    `    handler: ${join(resolve(import.meta.dirname, '../..'), 'functions/backup')}`,
    '    image: cdc-front/backup:test',
    '    environment:',
    '      exec_timeout: 0s',
    `      BACKUP_S3_ENDPOINT: ${s3.endpoint}`,
    `      BACKUP_S3_BUCKET: ${s3.bucket}`,
    `      BACKUP_S3_PREFIX: ${prefix}`,
    ...(o.env ?? []).map((l) => `      ${l}`),
    // As stack.yml gives them: each replica sees only its own secrets (docs/runtime.md "Secrets").
    '    secrets: [cdc-database-url, basic-auth-user, basic-auth-password]',
    '    annotations:',
    '      com.cdc-front.optional-secrets: "backup-s3-access-key backup-s3-secret-key backup-sm4-key"',
    ...(o.functions ?? []),
    '',
  ].join('\n');
}
