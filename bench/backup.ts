/**
 * Backup bench (docs/backup.md): backup, check and restore time for a database holding BENCH_ROWS
 * EMR records from the HIS traffic generator (default 1 000 000), and the peak memory of the backup
 * process, measured at a quarter of the rows and at all of them: it must not grow with the database.
 *
 *   node --import tsx bench/backup.ts                 # BENCH_ROWS=1000000
 *   BENCH_ROWS=20000 node --import tsx bench/backup.ts
 *   BENCH_DATABASE_URL=postgres://… …                 # an existing server (its user must create databases)
 *
 * The records go through the receive functions' pipeline in process (batches of 500, as
 * bench/dataset.ts), so the tables hold what production holds. Each operation is the operator's
 * command (infra/backup/cli.ts) as its own process, against s3rver in this process; its peak RSS is
 * the kernel's VmHWM of that process (pg_dump / pg_restore are separate processes, not counted).
 * Writes bench/results/<date>-backup.json and prints a table.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { startPostgres } from '../infra/dev/postgres.js';
import { startS3 } from '../infra/dev/s3.js';
import { migrate } from '../infra/db/migrate.js';
import { batches, generate } from '../infra/simulators/traffic.js';
import { resources } from '../schemas/index.js';
import type { FaasFunction } from '../shared/fn/index.js';
import { table, writeResult } from './common.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const BATCH = 500;
const root = resolve('.');

function vmHwmMiB(pid: number): number | null {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : null;
  } catch {
    return null;
  }
}

/** Runs the backup command; its wall time and peak RSS. */
function command(args: string[], env: Record<string, string>): Promise<{ ms: number; peakMiB: number; stdout: string; code: number | null }> {
  return new Promise((ok) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'infra/backup/cli.ts'), ...args], {
      cwd: root,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let peak = 0;
    let stdout = '';
    const poll = setInterval(() => {
      peak = Math.max(peak, vmHwmMiB(child.pid!) ?? 0);
    }, 50);
    child.stdout.on('data', (d) => (stdout += d));
    child.on('close', (code) => {
      clearInterval(poll);
      ok({ ms: Date.now() - t0, peakMiB: peak, stdout, code });
    });
  });
}

/** The baseline: the bare tool the backup wraps, `pg_dump -Fc` to /dev/null, on the same database. */
function barePgDump(url: string): Promise<number> {
  return new Promise((ok, fail) => {
    const t0 = Date.now();
    const bin = join(process.env.BACKUP_PG_BIN ?? '/usr/lib/postgresql/15/bin', 'pg_dump');
    const child = spawn(bin, ['-Fc', '--no-sync', '-d', url, '-f', '/dev/null'], { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', fail);
    child.on('close', (code) => (code === 0 ? ok(Date.now() - t0) : fail(new Error(`pg_dump exited ${code}`))));
  });
}

async function load(db: pg.Pool, apps: Map<string, FaasFunction>, from: number, to: number): Promise<void> {
  const t0 = Date.now();
  const items = generate({ seed: 7, count: to - from, idPrefix: `bk${from}`, orgCodes: ['440106001', '440106002', '440106003'] });
  let n = 0;
  for (const u of batches(items, BATCH)) {
    const fn = resources[u.resource]!.fn;
    const res = await apps.get(fn)!.app.request(`/${u.resource}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': '127.0.0.1' },
      body: JSON.stringify(u.items.map((i) => i.record)),
    });
    if (res.status !== 200) throw new Error(`bench: ${u.resource} answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
    n += u.items.length;
    if (n % 50_000 < BATCH) process.stderr.write(`[bench] loaded ${from + n} / ${ROWS} records (${Math.round((n * 1000) / (Date.now() - t0))}/s)\n`);
  }
  void db;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'cdc-bench-backup-'));
  let url = process.env.BENCH_DATABASE_URL;
  let stopPg: (() => Promise<void>) | undefined;
  if (!url) {
    const server = await startPostgres({ dataDir: join(dir, 'pg') });
    url = server.url;
    stopPg = server.stop;
  }
  const s3 = await startS3({ dir: join(dir, 's3') });
  mkdirSync(join(dir, 'secrets'));
  const env = {
    DATABASE_URL: url,
    CDC_SECRETS_DIR: join(dir, 'secrets'),
    BACKUP_S3_ENDPOINT: s3.endpoint,
    BACKUP_S3_ACCESS_KEY: s3.accessKey,
    BACKUP_S3_SECRET_KEY: s3.secretKey,
    BACKUP_S3_PREFIX: 'bench',
    LOG_LEVEL: 'warn',
  };
  const db = new pg.Pool({ connectionString: url, max: 2 });
  const rows: Array<Record<string, string | number>> = [];
  try {
    await migrate(url);
    Object.assign(process.env, { DATABASE_URL: url, HIS_ALLOW: '127.0.0.1/8', LOG_LEVEL: 'warn', PUSH_NUDGE_URL: '' });
    const apps = new Map<string, FaasFunction>();
    for (const fn of ['patient', 'diagnosis', 'card', 'lab', 'exam', 'order', 'death', 'record']) {
      const f = (await import(`../functions/${fn}/handler.js`)).default as FaasFunction;
      await f.init?.();
      apps.set(fn, f);
    }
    let loaded = 0;
    for (const [i, target] of [Math.round(ROWS / 4), ROWS].entries()) {
      await load(db, apps, loaded, target);
      loaded = target;
      const dbBytes = Number((await db.query<{ s: string }>('SELECT pg_database_size(current_database()) AS s')).rows[0]!.s);
      const bareMs = await barePgDump(url);
      const backup = await command(['backup', '--kind', 'logical', '--no-check'], env);
      if (backup.code !== 0) throw new Error(`backup failed:\n${backup.stdout}`);
      const size = Number(/\((\d+) bytes/.exec(backup.stdout)?.[1] ?? 0);
      const check = await command(['check'], env);
      if (check.code !== 0) throw new Error(`check failed:\n${check.stdout}`);
      const restore = await command(['restore', '--target', `bench_restored_${i}`], env);
      if (restore.code !== 0) throw new Error(`restore failed:\n${restore.stdout}`);
      rows.push({
        records: loaded,
        'db MiB': Math.round(dbBytes / 1048576),
        'archive MiB': Number((size / 1048576).toFixed(1)),
        'backup s': Number((backup.ms / 1000).toFixed(1)),
        'bare pg_dump s': Number((bareMs / 1000).toFixed(1)),
        'backup / bare pg_dump': Number((backup.ms / bareMs).toFixed(2)),
        'backup peak RSS MiB': backup.peakMiB,
        'check+drill s': Number((check.ms / 1000).toFixed(1)),
        'check peak RSS MiB': check.peakMiB,
        'restore s': Number((restore.ms / 1000).toFixed(1)),
        'restore peak RSS MiB': restore.peakMiB,
      });
    }
    const file = writeResult('backup', { rows: ROWS, batch: BATCH, results: rows });
    process.stdout.write(table(rows) + `\n${file}\n`);
    for (const f of apps.values()) await f.close?.();
  } finally {
    await db.end();
    await s3.stop();
    await stopPg?.();
    rmSync(dir, { recursive: true, force: true });
  }
}

void main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
