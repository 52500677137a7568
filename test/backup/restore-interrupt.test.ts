/**
 * An interrupted `make restore` (docs/backup.md "An interrupted restore"): the operator's command as a
 * process on the real PostgreSQL of the test run and a real S3 store, stopped by a signal.
 *
 * While pg_restore runs: the restore downloads the archive into a file first, then gives pg_restore its
 * path. The tool is taken from a `BACKUP_PG_BIN` folder whose `pg_restore` feeds the real one 90 % of
 * that file on its stdin and then holds it open, so the real pg_restore is certainly at work (connected
 * to the database it fills) when the signal comes.
 *
 * While downloading: the store is reached through a proxy that stops passing the archive at 90 %, so the
 * signal comes before any database is made.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3, type RunningS3 } from '../../infra/dev/s3.js';
import { samplePatient } from '../../infra/simulators/his.js';
import { resources } from '../../schemas/index.js';
import { loadBackupConfig, runBackup } from '../../shared/backup/index.js';
import { restoringName } from '../../shared/backup/restore.js';
import { upsertMany } from '../../shared/ingest/index.js';
import { backupCli, backupStoreEnv } from '../setup/backup-store.js';
import { databaseUrl, privateDatabase, adminRows, databaseExists } from '../setup/db.js';

let dir: string;
let s3: RunningS3;
let proxy: Server;
let proxyPort: number;
let archiveKey: string;
let archiveSize: number;
/** The BACKUP_PG_BIN folder of the pg_restore that stalls at 90 % of its file. */
let stallingBin: string;
/** The restores' $TMPDIR: their archive files' folders (cdc-restore-<pid>-XXXXXX). */
let tmp: string;
const sockets = new Set<Socket>();
const created: string[] = [];
const root = resolve(import.meta.dirname, '../..');

const admin = adminRows;
const exists = databaseExists;
const sessions = async (name: string) =>
  (await admin<{ app: string }>('SELECT application_name AS app FROM pg_stat_activity WHERE datname = $1', [name])).map((r) => r.app);
/** The archive folders left in the restores' $TMPDIR. */
const leftovers = () => readdirSync(tmp).filter((n) => n.startsWith('cdc-restore-'));
/** Processes of this machine whose command line names the database (pg_restore -d <name>). */
const toolsOn = (name: string) =>
  execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(`-d ${name} `) && !l.includes('ps -eo'));

async function until(what: string, f: () => Promise<boolean> | boolean, ms = 30_000, said: () => string = () => ''): Promise<void> {
  const t0 = Date.now();
  while (!(await f())) {
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms: ${what} ${said()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A TCP proxy to the store that passes each connection's answers up to `cap` bytes and then holds
 * them back: the manifests (a few KiB) pass, the archive stops half-way.
 */
function stallingProxy(cap: number): Promise<Server> {
  const server = createServer((client) => {
    const up = connect(s3.port, '127.0.0.1');
    sockets.add(client);
    sockets.add(up);
    let passed = 0;
    client.pipe(up);
    up.on('data', (d: Buffer) => {
      if (passed >= cap) return;
      const room = cap - passed;
      passed += d.length;
      client.write(d.length > room ? d.subarray(0, room) : d);
    });
    const end = () => {
      client.destroy();
      up.destroy();
    };
    client.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(server)));
}

/**
 * A `pg_restore` that feeds the real one 90 % of the archive file it is given (its last argument) on
 * its stdin, and keeps that open as long as the real one lives (the feeder's parent; a dead parent,
 * reaped or not, is no longer its parent): it execs the real pg_restore, which keeps its process id, its
 * process group and the restore's setpriv --pdeathsig.
 */
function stallingPgRestore(folder: string, real: string): string {
  mkdirSync(folder);
  writeFileSync(
    join(folder, 'pg_restore'),
    `#!/bin/bash
file="\${@: -1}"
size=$(stat -c %s "$file")
exec '${real}' "\${@:1:$#-1}" < <(head -c $((size * 9 / 10)) "$file"; while read -r _ _ _ parent _ < /proc/$BASHPID/stat && [ "$parent" = $$ ]; do sleep 0.2; done)
`,
  );
  chmodSync(join(folder, 'pg_restore'), 0o755);
  return folder;
}

/** The restore command as the operator's process, its own process group, with its output gathered. */
function startRestore(target: string, endpoint: string, env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'infra/backup/cli.ts'), 'restore', '--target', target, '--archive', archiveKey], {
    cwd: root,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: databaseUrl(),
      CDC_SECRETS_DIR: join(dir, 'no-secrets'),
      ...backupStoreEnv(s3, 'ri'),
      BACKUP_S3_ENDPOINT: endpoint,
      TMPDIR: tmp,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((ok) => child.on('close', (code, signal) => ok({ code, signal })));
  return { child, ended, output: () => out };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cdc-restore-interrupt-'));
  tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  s3 = await startS3({ dir: join(dir, 's3') });
  const src = await privateDatabase('cdc_ri_src');
  try {
    const sent = Array.from({ length: 300 }, (_, i) => samplePatient({ orgCode: 'RIORG0001', id: `ri-${i}`, seed: 900 + i }) as Record<string, string>);
    const res = await upsertMany(src.db, resources.emrPatientInfo!, sent, { callId: null, test: false, now: new Date() });
    expect(res.every((r) => r.ok)).toBe(true);
    const cfg = loadBackupConfig(backupStoreEnv(s3, 'ri'), () => undefined);
    const b = await runBackup(src.db, src.url, cfg, 'logical');
    expect(b.ok, b.error).toBe(true);
    archiveKey = b.objectKey;
    archiveSize = b.size!;
    stallingBin = stallingPgRestore(join(dir, 'bin'), join(cfg.pgBin, 'pg_restore'));
    proxy = await stallingProxy(Math.floor(b.size! * 0.9));
    proxyPort = (proxy.address() as { port: number }).port;
  } finally {
    await src.drop();
  }
}, 180_000);

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => proxy?.close(r));
  for (const n of created) await admin(`DROP DATABASE IF EXISTS ${n} WITH (FORCE)`).catch(() => undefined);
  await s3?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('make restore stopped while pg_restore runs', () => {
  for (const sig of ['SIGINT', 'SIGHUP', 'SIGTERM'] as const)
    it(`${sig}: pg_restore stopped, the unfinished database dropped, no database under the target's name, exit 1 saying so`, async () => {
      const target = `cdc_ri_${sig.toLowerCase()}_${process.pid}`;
      created.push(target, restoringName(target));
      const r = startRestore(target, s3.endpoint, { BACKUP_PG_BIN: stallingBin });
      await until('pg_restore at work on the unfinished database', async () => (await sessions(restoringName(target))).length > 0, 30_000, r.output);
      expect(await exists(target)).toBe(false);
      process.kill(r.child.pid!, sig);
      const end = await r.ended;
      expect(end.code, r.output()).toBe(1);
      expect(r.output()).toContain(`restore interrupted by ${sig}: pg_restore stopped, the unfinished database dropped, nothing restored`);
      expect(await exists(restoringName(target))).toBe(false);
      expect(await exists(target)).toBe(false);
      expect(toolsOn(restoringName(target))).toEqual([]);
      // The archive file is removed with its folder.
      expect(leftovers()).toEqual([]);
    }, 90_000);

  it('SIGKILL: pg_restore dies with it; the unfinished database is named <target>__restoring, never the target; the next run says what it is, drops it and restores', async () => {
    const target = `cdc_ri_kill_${process.pid}`;
    created.push(target, restoringName(target));
    const r = startRestore(target, s3.endpoint, { BACKUP_PG_BIN: stallingBin });
    await until('pg_restore at work on the unfinished database', async () => (await sessions(restoringName(target))).length > 0, 30_000, r.output);
    process.kill(r.child.pid!, 'SIGKILL');
    expect((await r.ended).signal).toBe('SIGKILL');
    // Nothing of it goes on: no pg_restore process, no session on the database it was filling.
    await until('pg_restore gone', () => toolsOn(restoringName(target)).length === 0, 10_000);
    await until('no session left on the unfinished database', async () => (await sessions(restoringName(target))).length === 0, 15_000);
    expect(await exists(target)).toBe(false);
    expect(await exists(restoringName(target))).toBe(true);
    // Its archive file stays too, in a folder named after its process, which is gone.
    const left = leftovers();
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(new RegExp(`^cdc-restore-${r.child.pid}-[A-Za-z0-9]{6}$`));
    // The runbook's re-check gives it no green light.
    const keys = await backupCli(['check-keys', '--target', restoringName(target)], {
      DATABASE_URL: databaseUrl(),
      CDC_SECRETS_DIR: join(dir, 'no-secrets'),
      ...backupStoreEnv(s3, 'ri'),
    });
    expect(keys.code, keys.stderr).toBe(1);
    expect(keys.stdout).toContain(
      `${restoringName(target)} is the unfinished database of a restore into ${target} that was stopped before it finished: do not start the front on it`,
    );

    const again = await backupCli(
      ['restore', '--target', target, '--archive', archiveKey],
      { DATABASE_URL: databaseUrl(), CDC_SECRETS_DIR: join(dir, 'no-secrets'), ...backupStoreEnv(s3, 'ri'), TMPDIR: tmp },
      120_000,
    );
    expect(again.code, again.stderr + again.stdout).toBe(0);
    expect(again.stderr).toContain(`removed ${join(tmp, left[0]!)}: the archive file of an earlier restore or drill on this machine whose process is gone`);
    expect(leftovers()).toEqual([]);
    expect(again.stderr).toContain(
      `dropped ${restoringName(target)}: the unfinished database of an earlier restore into ${target} that was stopped before it finished`,
    );
    expect(again.stdout).toMatch(/^restored: restored \d+ tables/m);
    expect(await exists(target)).toBe(true);
    expect(await exists(restoringName(target))).toBe(false);
    const c = new pg.Client({ connectionString: Object.assign(new URL(databaseUrl()), { pathname: `/${target}` }).toString() });
    await c.connect();
    try {
      expect((await c.query(`SELECT count(*)::int AS n FROM emr_patient_info WHERE org_code = 'RIORG0001'`)).rows[0].n).toBe(300);
      expect((await c.query('SELECT base FROM record_version_base WHERE id = 1')).rows[0].base).toBeGreaterThan(0);
    } finally {
      await c.end();
    }
  }, 180_000);
});

describe('make restore stopped while it downloads the archive', () => {
  it('SIGINT while the store stalls: the download stopped, its file removed, no database made, exit 1 saying so', async () => {
    const target = `cdc_ri_dl_${process.pid}`;
    created.push(target, restoringName(target));
    const r = startRestore(target, `http://127.0.0.1:${proxyPort}`);
    // Most of the archive is in its file, and the store gives no more.
    const file = () => {
      const d = leftovers()[0];
      return d ? join(tmp, d, 'archive.dump') : null;
    };
    await until(
      'the download stalled at 90 %',
      () => {
        const f = file();
        return f !== null && existsSync(f) && statSync(f).size >= archiveSize * 0.8;
      },
      30_000,
      r.output,
    );
    // The bytes are checked before the database is made: there is none yet.
    expect(await exists(restoringName(target))).toBe(false);
    expect(toolsOn(restoringName(target))).toEqual([]);
    process.kill(r.child.pid!, 'SIGINT');
    const end = await r.ended;
    expect(end.code, r.output()).toBe(1);
    expect(r.output()).toContain(
      'restore interrupted by SIGINT while downloading the archive: no database made, the archive file removed, nothing restored — run make restore again',
    );
    expect(await exists(restoringName(target))).toBe(false);
    expect(await exists(target)).toBe(false);
    expect(leftovers()).toEqual([]);
  }, 90_000);
});
