/**
 * The restore tool is given the archive as a file (docs/backup.md "Restore", docs/opengauss.md "Clients
 * and tools"): openGauss's gs_restore refuses to run without one ("Mandatory to specify dump
 * filename/path for gs_restore") and reads nothing from its stdin. Here a `BACKUP_PG_BIN` folder holds a
 * `pg_restore` that behaves so — its last argument must be an existing regular file, or it exits 1 with
 * gs_restore's words; else it runs the real pg_restore with the same arguments — for `make restore` and
 * for the drill's listing and restore. It also records the file's and its folder's modes.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3, type RunningS3 } from '../../infra/dev/s3.js';
import { samplePatient } from '../../infra/simulators/his.js';
import { resources } from '../../schemas/index.js';
import { checkArchive, getArchive, loadBackupConfig, openStore, runBackup, type BackupConfig, type BackupResult } from '../../shared/backup/index.js';
import { upsertMany } from '../../shared/ingest/index.js';
import { backupCli, backupStoreEnv } from '../setup/backup-store.js';
import { databaseUrl, privateDatabase, adminRows, databaseExists } from '../setup/db.js';

const SM4_HEX = '00112233445566778899aabbccddeeff';
let dir: string;
let s3: RunningS3;
let bin: string;
let calls: string;
let cfg: BackupConfig;
let src: Awaited<ReturnType<typeof privateDatabase>>;
let backup: BackupResult;
const created: string[] = [];

const s3Env = () => backupStoreEnv(s3, 'rf');

const admin = adminRows;
const exists = databaseExists;
const leftovers = (d: string) => readdirSync(d).filter((n) => n.startsWith('cdc-restore-'));

/** The tool's calls the shim recorded: its arguments, and the modes of the file and its folder. */
const recorded = () =>
  existsSync(calls)
    ? readFileSync(calls, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { args: string; file: string; fileMode: string; dirMode: string })
    : [];

/** A process id that is no longer running (a shell that has ended). */
function deadPid(): number {
  const r = spawnSync('sh', ['-c', 'echo $$']);
  return Number(r.stdout.toString().trim());
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cdc-restore-file-'));
  s3 = await startS3({ dir: join(dir, 's3') });
  cfg = loadBackupConfig({ ...s3Env(), TZ_LOCAL: 'Asia/Shanghai' }, (n) => (n === 'backup-sm4-key' ? SM4_HEX : undefined));
  // gs_restore's refusal (openGauss 5.0, src/bin/pg_dump/pg_restore.cpp): no file named last, no run.
  bin = join(dir, 'bin');
  calls = join(dir, 'calls.jsonl');
  mkdirSync(bin);
  writeFileSync(
    join(bin, 'pg_restore'),
    `#!/bin/bash
last="\${@: -1}"
if [ $# -eq 0 ] || [ ! -f "$last" ]; then
  echo "gs_restore: Mandatory to specify dump filename/path for gs_restore" >&2
  exit 1
fi
printf '{"args":"%s","file":"%s","fileMode":"%s","dirMode":"%s"}\\n' "$*" "$last" "$(stat -c %a "$last")" "$(stat -c %a "$(dirname "$last")")" >> '${calls}'
exec '${join(cfg.pgBin, 'pg_restore')}' "$@"
`,
  );
  chmodSync(join(bin, 'pg_restore'), 0o755);
  mkdirSync(join(dir, 'secrets'), { mode: 0o700 });
  writeFileSync(join(dir, 'secrets', 'backup-sm4-key'), `${SM4_HEX}\n`, { mode: 0o600 });
  // An encrypted archive with records: the download decrypts it and checks its MAC.
  src = await privateDatabase('cdc_rf_src');
  const sent = Array.from({ length: 40 }, (_, i) => samplePatient({ orgCode: 'RFORG0001', id: `rf-${i}`, seed: 700 + i }) as Record<string, string>);
  const res = await upsertMany(src.db, resources.emrPatientInfo!, sent, { callId: null, test: false, now: new Date() });
  expect(res.every((r) => r.ok)).toBe(true);
  backup = await runBackup(src.db, src.url, cfg, 'logical');
  expect(backup.ok, backup.error).toBe(true);
}, 120_000);

afterAll(async () => {
  for (const n of created) await admin(`DROP DATABASE IF EXISTS ${n} WITH (FORCE)`).catch(() => undefined);
  await src?.drop();
  await s3?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('the restore tool reads a named file (as gs_restore must)', () => {
  it('make restore gives it a private file (0600 in a 0700 folder under $TMPDIR), removed afterwards; a killed restore’s leftover is swept, a running one’s kept', async () => {
    const tmp = join(dir, 'tmp');
    mkdirSync(tmp);
    // What a restore killed by SIGKILL leaves; and the folder of a restore still running (this worker).
    const dead = join(tmp, `cdc-restore-${deadPid()}-Ab12Cd`);
    const live = join(tmp, `cdc-restore-${process.pid}-Ef34Gh`);
    for (const d of [dead, live]) {
      mkdirSync(d, { mode: 0o700 });
      writeFileSync(join(d, 'archive.dump'), 'plain archive', { mode: 0o600 });
    }
    const target = `cdc_rf_t_${process.pid}`;
    created.push(target, `${target}__restoring`);
    const before = recorded().length;
    const r = await backupCli(
      ['restore', '--target', target, '--archive', backup.objectKey],
      { ...s3Env(), DATABASE_URL: databaseUrl(), CDC_SECRETS_DIR: join(dir, 'secrets'), BACKUP_PG_BIN: bin, TMPDIR: tmp },
      120_000,
    );
    expect(r.stderr).not.toContain('Mandatory to specify dump filename/path');
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/^restored: restored \d+ tables, \d+ rows, every count as recorded/m);
    expect(r.stderr).toContain(`removed ${dead}: the archive file of an earlier restore or drill on this machine whose process is gone`);
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(live)).toBe(true);
    expect(leftovers(tmp)).toEqual([`cdc-restore-${process.pid}-Ef34Gh`]);
    expect(await exists(target)).toBe(true);
    const c = new pg.Client({ connectionString: Object.assign(new URL(databaseUrl()), { pathname: `/${target}` }).toString() });
    await c.connect();
    try {
      expect((await c.query(`SELECT count(*)::int AS n FROM emr_patient_info WHERE org_code = 'RFORG0001'`)).rows[0].n).toBe(40);
    } finally {
      await c.end();
    }
    const restored = recorded().slice(before);
    expect(restored).toHaveLength(1);
    expect(restored[0]!.file).toMatch(new RegExp(`^${tmp}/cdc-restore-\\d+-[A-Za-z0-9]{6}/archive\\.dump$`));
    expect(restored[0]!.args).toBe(`-d ${target}__restoring --no-owner --no-privileges --exit-on-error --verbose ${restored[0]!.file}`);
    expect(restored[0]!).toMatchObject({ fileMode: '600', dirMode: '700' });
  }, 150_000);

  it('the drill gives it a private file for the listing and for its restore, removed afterwards', async () => {
    const tmp = join(dir, 'tmp-drill');
    mkdirSync(tmp);
    const before = recorded().length;
    // The drill runs in the backup function's process: this one, its temporary folder the test's.
    const was = process.env.TMPDIR;
    process.env.TMPDIR = tmp;
    try {
      const a = (await getArchive(src.db, backup.archiveId))!;
      const checks = await checkArchive(src.db, openStore(cfg.store!), { ...cfg, pgBin: bin }, a, { databaseUrl: src.url, drill: true });
      expect(
        checks.map((k) => [k.check, k.ok, k.message]),
        JSON.stringify(checks),
      ).toEqual([
        ['integrity', true, expect.any(String)],
        ['listing', true, expect.stringMatching(/^listing: the archive holds the data of all \d+ tables$/)],
        ['drill', true, expect.stringMatching(/^drill: restored \d+ tables, \d+ rows, every count as recorded$/)],
      ]);
    } finally {
      if (was === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = was;
    }
    const drill = recorded().slice(before);
    expect(drill.map((d) => d.args.split(' ')[0])).toEqual(['-l', '-d']);
    for (const d of drill) {
      expect(d.file).toMatch(new RegExp(`^${tmp}/cdc-restore-${process.pid}-[A-Za-z0-9]{6}/archive\\.dump$`));
      expect(d.args.endsWith(` ${d.file}`)).toBe(true);
      expect(d).toMatchObject({ fileMode: '600', dirMode: '700' });
    }
    expect(leftovers(tmp)).toEqual([]);
  }, 150_000);
});
