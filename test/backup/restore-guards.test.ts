/**
 * What keeps a restore from going wrong quietly, and the ledger from claiming more than it has
 * (docs/backup.md "Restore", "Checks"): on the real PostgreSQL of the test run and a real S3 store
 * (s3rver on a loopback port), `make restore` run as the operator's process (infra/backup/cli.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3, type RunningS3 } from '../../infra/dev/s3.js';
import {
  backupSummary,
  checkArchive,
  checkFreshness,
  dueKinds,
  failInterrupted,
  getArchive,
  lastGood,
  listArchives,
  loadBackupConfig,
  manifestKey,
  openStore,
  parseManifest,
  readSmall,
  runBackup,
  runDue,
  statArchive,
  type BackupConfig,
  type Manifest,
} from '../../shared/backup/index.js';
import { loadAlertConfig } from '../../shared/alerts/index.js';
import { samplePatient } from '../../infra/simulators/his.js';
import { resources } from '../../schemas/index.js';
import { upsertMany } from '../../shared/ingest/index.js';
import { piiFromDir, setPii } from '../../shared/pii/index.js';
import { renderBackups } from '../../functions/web/backups-page.js';
import { putSmall } from '../../shared/backup/store.js';
import { sm4Fingerprint } from '../../shared/backup/tools.js';
import { backupCli, backupStoreEnv } from '../setup/backup-store.js';
import { databaseUrl, privateDatabase } from '../setup/db.js';

let dir: string;
let s3: RunningS3;
const created: string[] = [];
const SM4_HEX = '00112233445566778899aabbccddeeff';
const OTHER_SM4_HEX = 'ffeeddccbbaa99887766554433221100';

const s3Env = (prefix: string) => backupStoreEnv(s3, prefix, { partMb: '5' });

function configOf(prefix: string, sm4?: string): BackupConfig {
  return loadBackupConfig({ ...s3Env(prefix), TZ_LOCAL: 'Asia/Shanghai' }, (n) => (n === 'backup-sm4-key' ? sm4 : undefined));
}

/** A secrets folder holding only backup-sm4-key (or nothing). */
function secrets(name: string, sm4?: string): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true, mode: 0o700 });
  if (sm4) writeFileSync(join(d, 'backup-sm4-key'), `${sm4}\n`, { mode: 0o600 });
  return d;
}

async function admin<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<pg.QueryResult<T>> {
  const c = new pg.Client({ connectionString: databaseUrl() });
  await c.connect();
  try {
    return await c.query<T>(sql, params);
  } finally {
    await c.end();
  }
}

const exists = async (name: string) => (await admin('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;

/** The operator's command as a process; killed (and reported) if it has not ended in `limitMs`. */
const cli = (args: string[], env: Record<string, string>, limitMs = 60_000) =>
  backupCli(args, { CDC_SECRETS_DIR: join(dir, 'no-secrets'), DATABASE_URL: databaseUrl(), ...env }, limitMs);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cdc-restore-guards-'));
  s3 = await startS3({ dir: join(dir, 's3') });
}, 120_000);

afterAll(async () => {
  for (const n of created) await admin(`DROP DATABASE IF EXISTS ${n}`).catch(() => undefined);
  await s3?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('make restore that cannot begin', () => {
  it('an encrypted archive without backup-sm4-key: the error and exit 1 at once, no database made, no pg_restore left waiting', async () => {
    const src = await privateDatabase('cdc_rg_nokey');
    try {
      const b = await runBackup(src.db, src.url, configOf('rg-nokey', SM4_HEX), 'logical');
      expect(b.ok, b.error).toBe(true);
      const target = `cdc_rg_nokey_t_${process.pid}`;
      created.push(target);
      const r = await cli(['restore', '--target', target, '--archive', b.objectKey], s3Env('rg-nokey'), 30_000);
      expect(r.hung, r.stderr).toBe(false);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${b.objectKey} is encrypted (sm4-ctr) but the secret file backup-sm4-key is missing`);
      expect(r.ms).toBeLessThan(20_000);
      expect(await exists(target)).toBe(false);
      // An archive that is not in the store: the same, at once.
      const missing = await cli(['restore', '--target', target, '--archive', `${b.objectKey}.nothere`], s3Env('rg-nokey'), 30_000);
      expect(missing.hung).toBe(false);
      expect(missing.code).toBe(1);
      expect(await exists(target)).toBe(false);
      // An object cut short in the store: named as truncated, the database dropped.
      const store = openStore(configOf('rg-nokey').store!);
      const body = (await readSmall(store, b.objectKey))!;
      const info = (await statArchive(store, b.objectKey))!;
      const cut = body.subarray(0, Math.floor(body.length / 2));
      await store.client.putObject(store.bucket, b.objectKey, cut, cut.length, info.meta);
      const short = await cli(
        ['restore', '--target', target, '--archive', b.objectKey],
        { ...s3Env('rg-nokey'), CDC_SECRETS_DIR: secrets('nokey-then-key', SM4_HEX) },
        60_000,
      );
      expect(short.hung).toBe(false);
      expect(short.code).toBe(1);
      expect(short.stderr).toContain(`${b.objectKey} is truncated: the store gave ${cut.length} of the ${body.length} bytes recorded`);
      expect(await exists(target)).toBe(false);
      // The object gone from the store, its manifest still there: named as the archive file, not a key.
      await store.client.removeObject(store.bucket, b.objectKey);
      const withKey = { ...s3Env('rg-nokey'), CDC_SECRETS_DIR: secrets('nokey-then-key', SM4_HEX) };
      const gone = await cli(['restore', '--target', target, '--archive', b.objectKey], withKey, 60_000);
      const fetched = await cli(['fetch', '--archive', b.objectKey, '--out', join(dir, 'gone.dump')], withKey, 60_000);
      for (const g of [gone, fetched]) {
        expect(g.code, g.stderr).toBe(1);
        expect(g.stderr).toContain(`the archive file ${b.objectKey} is missing from bucket`);
        expect(g.stderr).toContain('this is the archive itself, not an encryption key');
        expect(g.stderr).not.toContain('The specified key does not exist');
      }
      expect(await exists(target)).toBe(false);
      expect(await exists(`${target}__restoring`)).toBe(false);
      expect(existsSync(join(dir, 'gone.dump'))).toBe(false);
    } finally {
      await src.drop();
    }
  }, 90_000);
});

describe('make restore with another backup-sm4-key', () => {
  it('names both key fingerprints before anything is restored; an older manifest without one restores as before', async () => {
    const src = await privateDatabase('cdc_rg_wrongkey');
    try {
      const k = configOf('rg-wrongkey', SM4_HEX);
      const b = await runBackup(src.db, src.url, k, 'logical');
      expect(b.ok, b.error).toBe(true);
      const store = openStore(k.store!);
      const manifest = JSON.parse((await readSmall(store, manifestKey(b.objectKey)))!.toString('utf8')) as Manifest;
      const mine = sm4Fingerprint(Buffer.from(SM4_HEX, 'hex'));
      const other = sm4Fingerprint(Buffer.from(OTHER_SM4_HEX, 'hex'));
      expect(manifest.keyFingerprint).toBe(mine);
      expect(JSON.stringify(manifest)).not.toContain(SM4_HEX);

      const target = `cdc_rg_wrongkey_t_${process.pid}`;
      created.push(target);
      const env = { ...s3Env('rg-wrongkey'), CDC_SECRETS_DIR: secrets('wrong-sm4', OTHER_SM4_HEX) };
      const r = await cli(['restore', '--target', target, '--archive', b.objectKey], env);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(`archive encrypted under another backup key (fingerprint ${mine}); this server's backup-sm4-key is ${other}`);
      expect(r.stderr).not.toContain('does not appear to be a valid archive');
      expect(r.stderr + r.stdout).not.toContain(SM4_HEX);
      expect(await exists(target)).toBe(false);
      const list = await cli(['list'], env);
      expect(list.stdout).toContain(`sm4-ctr key ${mine}`);

      // An archive of a release that recorded no fingerprint: restored as before with the right key.
      const { keyFingerprint: _, ...older } = manifest;
      await putSmall(store, manifestKey(b.objectKey), JSON.stringify(older));
      const ok = await cli(['restore', '--target', target, '--archive', b.objectKey], {
        ...s3Env('rg-wrongkey'),
        CDC_SECRETS_DIR: secrets('right-sm4', SM4_HEX),
      });
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout).toMatch(/^restored: restored \d+ tables/m);
    } finally {
      await src.drop();
    }
  }, 90_000);
});

describe('an encrypted archive rewritten in the store by someone without the backup key', () => {
  it('is refused by its MAC even when its SHA-256 and size were rewritten to match, and no database is left', async () => {
    const src = await privateDatabase('cdc_rg_mac');
    try {
      const k = configOf('rg-mac', SM4_HEX);
      const b = await runBackup(src.db, src.url, k, 'logical');
      expect(b.ok, b.error).toBe(true);
      const store = openStore(k.store!);
      const manifest = parseManifest('m', (await readSmall(store, manifestKey(b.objectKey)))!.toString('utf8'));
      expect(manifest.mac).toMatch(/^hmac-sm3:[0-9a-f]{64}$/);
      // Bytes added after the archive (pg_restore reads past none of them), the checksums beside it
      // rewritten: everything but the MAC agrees.
      const body = (await readSmall(store, b.objectKey))!;
      const info = (await statArchive(store, b.objectKey))!;
      const changed = Buffer.concat([body, randomBytes(64)]);
      const sha = createHash('sha256').update(changed).digest('hex');
      await store.client.putObject(store.bucket, b.objectKey, changed, changed.length, { ...info.meta, sha256: sha });
      await putSmall(store, manifestKey(b.objectKey), JSON.stringify({ ...manifest, size: changed.length, sha256: sha }));
      const target = `cdc_rg_mac_t_${process.pid}`;
      created.push(target);
      const r = await cli(['restore', '--target', target, '--archive', b.objectKey], { ...s3Env('rg-mac'), CDC_SECRETS_DIR: secrets('mac-sm4', SM4_HEX) });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain("content altered: the archive's MAC (HMAC-SM3 under backup-sm4-key) is not the one recorded");
      expect(await exists(target)).toBe(false);
      // The MAC dropped from the manifest as well: refused for having none (restore and fetch),
      // unless the operator says the archive is older than MACs.
      const { mac: _dropped, ...withoutMac } = manifest;
      await putSmall(store, manifestKey(b.objectKey), JSON.stringify({ ...withoutMac, size: changed.length, sha256: sha }));
      const noMac = await cli(['restore', '--target', target, '--archive', b.objectKey], { ...s3Env('rg-mac'), CDC_SECRETS_DIR: secrets('mac-sm4', SM4_HEX) });
      expect(noMac.code, noMac.stderr).toBe(1);
      expect(noMac.stderr).toContain(`${b.objectKey} is encrypted but its manifest records no MAC`);
      expect(noMac.stderr).toContain('give --accept-no-mac (make restore ACCEPT_NO_MAC=1)');
      expect(await exists(target)).toBe(false);
      const fetchOut = join(dir, 'rg-mac-fetched.dump');
      const noMacFetch = await cli(['fetch', '--archive', b.objectKey, '--out', fetchOut], {
        ...s3Env('rg-mac'),
        CDC_SECRETS_DIR: secrets('mac-sm4', SM4_HEX),
      });
      expect(noMacFetch.code).toBe(1);
      expect(noMacFetch.stderr).toContain('its manifest records no MAC');
      expect(existsSync(fetchOut)).toBe(false);
      // The archive as it was, its manifest still without a MAC (as an older release wrote it): restored when accepted.
      await store.client.putObject(store.bucket, b.objectKey, body, body.length, info.meta);
      await putSmall(store, manifestKey(b.objectKey), JSON.stringify(withoutMac));
      const older = await cli(['restore', '--target', target, '--archive', b.objectKey, '--accept-no-mac'], {
        ...s3Env('rg-mac'),
        CDC_SECRETS_DIR: secrets('mac-sm4', SM4_HEX),
      });
      expect(older.code, older.stderr).toBe(0);
      await admin(`DROP DATABASE ${target} WITH (FORCE)`);
      // The archive as it was: restored.
      await putSmall(store, manifestKey(b.objectKey), JSON.stringify(manifest));
      const ok = await cli(['restore', '--target', target, '--archive', b.objectKey], { ...s3Env('rg-mac'), CDC_SECRETS_DIR: secrets('mac-sm4', SM4_HEX) });
      expect(ok.code, ok.stderr).toBe(0);
    } finally {
      await src.drop();
    }
  }, 90_000);
});

/** Puts `n` patients into the database (as the receive function stores them), under personal-data keys of this file. */
async function somePatients(db: pg.Pool, org: string, n: number): Promise<string> {
  const d = join(dir, `pii-${org}`);
  mkdirSync(d, { recursive: true, mode: 0o700 });
  writeFileSync(join(d, 'pii-field-keys'), JSON.stringify({ current: 'krg000001', keys: [{ id: 'krg000001', key: randomBytes(16).toString('base64') }] }), {
    mode: 0o600,
  });
  writeFileSync(join(d, 'pii-hash-key'), `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
  setPii(piiFromDir(d));
  try {
    const sent = Array.from({ length: n }, (_, i) => samplePatient({ orgCode: org, id: `${org}-${i}`, seed: 900 + i }) as Record<string, string>);
    const res = await upsertMany(db, resources.emrPatientInfo!, sent, { callId: null, test: false, now: new Date() });
    expect(res.every((r) => r.ok)).toBe(true);
  } finally {
    setPii(undefined);
  }
  return d;
}

const noAlerts = () => loadAlertConfig({}, () => undefined);

describe('an archive the integrity check finds damaged', () => {
  it('is no longer good: freshness fails, the status and the console show it, and the next hourly run takes a new one', async () => {
    const src = await privateDatabase('cdc_rg_damaged');
    try {
      await somePatients(src.db, 'RGDMG', 2);
      const k = configOf('rg-damaged');
      // The other kinds are not due (their archives in another bucket, which the re-check leaves alone).
      for (const kind of ['system', 'software', 'physical'])
        await src.db.query(
          `INSERT INTO backup_archive (kind, status, trigger, bucket, object_key, dialect, tool, started_at, finished_at)
           VALUES ($1, 'good', 'manual', 'elsewhere', 'k', 'postgresql', 't', now(), now())`,
          [kind],
        );
      const first = await runDue(src.db, src.url, k, { kinds: ['logical'], alerts: noAlerts() });
      expect(first.backups.map((b) => b.ok)).toEqual([true]);
      const a1 = (await getArchive(src.db, first.backups[0]!.archiveId))!;
      expect((await backupSummary(src.db)).lastLogical?.archiveId).toBe(a1.archiveId);

      const store = openStore(k.store!);
      const body = (await readSmall(store, a1.objectKey))!;
      const info = (await statArchive(store, a1.objectKey))!;
      body[Math.floor(body.length / 2)]! ^= 0x01;
      await store.client.putObject(store.bucket, a1.objectKey, body, body.length, info.meta);

      // What POST /check runs.
      const checks = await checkArchive(src.db, store, k, a1, { databaseUrl: src.url, drill: true });
      expect(checks.map((c) => [c.check, c.ok])).toEqual([['integrity', false]]);
      const after = (await getArchive(src.db, a1.archiveId))!;
      expect(after.status).toBe('damaged');
      expect(after.error).toMatch(/^integrity check failed: content altered:/);
      expect((await checkFreshness(src.db)).ok).toBe(false);
      const summary = await backupSummary(src.db);
      expect(summary.lastLogical).toBeNull();
      expect(summary.fresh).toBe(false);
      const page = String(
        renderBackups(
          {
            last: [{ kind: 'logical', archive: await lastGood(src.db, 'logical') }],
            archives: await listArchives(src.db, { kind: 'logical' }),
            checks: [],
            now: new Date(),
          },
          'Asia/Shanghai',
        ),
      );
      expect(page).toContain('超过 25 小时没有成功的备份');
      expect(page).toMatch(new RegExp(`data-archive="${a1.archiveId}">.*\\n.*<td class="bad">已损坏</td>`));
      expect(await dueKinds(src.db, k, new Date())).toEqual(['logical']);

      // The hourly run (no kinds given): a new logical archive at once.
      const cron = await runDue(src.db, src.url, k, { trigger: 'cron', alerts: noAlerts() });
      expect(cron.backups.map((b) => [b.kind, b.ok])).toEqual([['logical', true]]);
      const fresh = await backupSummary(src.db);
      expect(fresh.lastLogical?.archiveId).toBe(cron.backups[0]!.archiveId);
      expect(fresh.fresh).toBe(true);
      // A store that cannot be asked says nothing about the archive: it stays good.
      const down = { ...k, store: { ...k.store!, port: 1 } };
      const a2 = (await getArchive(src.db, cron.backups[0]!.archiveId))!;
      const unreachable = await checkArchive(src.db, openStore(down.store), down, a2, { databaseUrl: src.url });
      expect(unreachable[0]!.ok).toBe(false);
      expect((await getArchive(src.db, a2.archiveId))!.status).toBe('good');
    } finally {
      await src.drop();
    }
  }, 120_000);
});

describe('a backup whose process died', () => {
  it('shows as stalled once its progress has not been written for 5 minutes, is failed (stalled) by the next run, and no longer keeps its kind from being taken', async () => {
    const src = await privateDatabase('cdc_rg_stalled');
    try {
      // A live backup writes its progress: the row of a finished one has the time of its last write.
      const b = await runBackup(src.db, src.url, configOf('rg-stalled'), 'system');
      expect(b.ok, b.error).toBe(true);
      expect((await getArchive(src.db, b.archiveId))!.progressAt).toBeInstanceOf(Date);
      await src.db.query(`UPDATE backup_archive SET status = 'removed' WHERE archive_id = $1`, [b.archiveId]);

      const ins = async (kind: string, progressAgoS: number) =>
        String(
          (
            await src.db.query<{ archive_id: string }>(
              `INSERT INTO backup_archive (kind, status, trigger, bucket, object_key, dialect, tool, started_at, progress_at, bytes_done)
               VALUES ($1, 'running', 'cron', 'b', 'k', 'postgresql', 't', now() - interval '20 minutes', now() - $2 * interval '1 second', 12935184)
               RETURNING archive_id`,
              [kind, progressAgoS],
            )
          ).rows[0]!.archive_id,
        );
      const dead = await ins('logical', 6 * 60);
      const live = await ins('physical', 2);
      const k = configOf('rg-stalled');
      const s = await backupSummary(src.db);
      expect(s.running).toMatchObject({ archiveId: live, kind: 'physical' });
      expect(s.running!.progressAgeS).toBeLessThan(60);
      expect(s.stalled).toMatchObject({ archiveId: dead, kind: 'logical', lastProgressAt: expect.any(String) });
      // The dead one does not count as a logical archive in progress; the live one still counts.
      const due = await dueKinds(src.db, k, new Date());
      expect(due).toContain('logical');
      expect(due).not.toContain('physical');

      expect(await failInterrupted(src.db)).toBe(1);
      expect(await getArchive(src.db, dead)).toMatchObject({
        status: 'failed',
        error: 'stalled: no progress for 5 minutes — the backup process stopped (killed, or its machine restarted) before finishing',
      });
      expect((await getArchive(src.db, live))!.status).toBe('running');
      expect((await backupSummary(src.db)).stalled).toBeNull();
    } finally {
      await src.drop();
    }
  }, 60_000);
});

describe("a replacement server beside the lost front's store", () => {
  it('its hourly run takes no archive of its empty database; make restore passes over an empty archive to the newest with records, naming it; a named one is restored as asked', async () => {
    const old = await privateDatabase('cdc_rg_old');
    const fresh = await privateDatabase('cdc_rg_new');
    try {
      const keys = await somePatients(old.db, 'RGOLD', 3);
      const k = configOf('rg-h1');
      const a = await runBackup(old.db, old.url, k, 'logical');
      expect(a.ok, a.error).toBe(true);
      const store = openStore(k.store!);
      const m = JSON.parse((await readSmall(store, manifestKey(a.objectKey)))!.toString('utf8')) as Manifest;
      expect(m.records).toBe(3);

      // The new machine's first hourly run: nothing of the database is archived, and that is no failure.
      const logs: string[] = [];
      const write = process.stdout.write.bind(process.stdout);
      process.stdout.write = ((x: string | Uint8Array) => (logs.push(String(x)), true)) as typeof process.stdout.write;
      let cron: Awaited<ReturnType<typeof runDue>>;
      try {
        cron = await runDue(fresh.db, fresh.url, k, { trigger: 'cron', alerts: noAlerts() });
      } finally {
        process.stdout.write = write;
      }
      expect(cron.skipped).toEqual({
        kinds: ['logical', 'system', 'physical'],
        reason: expect.stringMatching(/^nothing to back up yet: the database holds no records/),
      });
      expect(cron.backups.map((b) => b.kind)).toEqual(['software']);
      expect(cron.checks.find((c) => c.check === 'freshness')).toMatchObject({ ok: true, message: expect.stringContaining('nothing to back up yet') });
      expect(cron.alerted).toEqual([]);
      expect(logs.join('')).toContain('"msg":"backup: nothing to back up yet"');
      expect((await fresh.db.query(`SELECT count(*)::int AS n FROM backup_archive WHERE kind <> 'software'`)).rows[0].n).toBe(0);

      // An operator's explicit run still takes one (or an older release's cron did): the newest archive is empty.
      const empty = await runBackup(fresh.db, fresh.url, k, 'logical');
      expect(empty.ok, empty.error).toBe(true);
      const target = `cdc_rg_h1_t_${process.pid}`;
      created.push(target);
      const env = { ...s3Env('rg-h1'), CDC_SECRETS_DIR: keys };
      const list = await cli(['list'], env);
      expect(list.stdout).toMatch(new RegExp(`${empty.objectKey}\\s+logical\\s+\\S+\\s+\\d+\\s+0\\s`));
      const r = await cli(['restore', '--target', target], env);
      expect(r.code, r.stderr + r.stdout).toBe(0);
      expect(r.stderr).toContain(`passed over ${empty.objectKey}, newer: its manifest shows no records`);
      expect(r.stderr).toContain(`restoring ${a.objectKey} (logical,`);
      expect(r.stderr).toContain(', 3 records) into a new database');
      const back = new pg.Client({
        connectionString: (() => {
          const u = new URL(databaseUrl());
          u.pathname = `/${target}`;
          return u.toString();
        })(),
      });
      await back.connect();
      try {
        expect((await back.query(`SELECT count(*)::int AS n FROM emr_patient_info WHERE org_code = 'RGOLD'`)).rows[0].n).toBe(3);
      } finally {
        await back.end();
      }
      // Named, the empty one is restored as asked.
      const named = `cdc_rg_h1_e_${process.pid}`;
      created.push(named);
      const e = await cli(['restore', '--target', named, '--archive', empty.objectKey], env);
      expect(e.code, e.stderr).toBe(0);
      expect(e.stderr).not.toContain('passed over');
      expect(e.stderr).toContain(', 0 records) into a new database');
    } finally {
      await old.drop();
      await fresh.drop();
    }
  }, 180_000);
});

describe('a damaged newest archive', () => {
  it('make restore names the archive before it with records, to restore by name', async () => {
    const src = await privateDatabase('cdc_rg_dmg');
    try {
      const keys = await somePatients(src.db, 'RGDMG', 2);
      const k = configOf('rg-dmg');
      const older = await runBackup(src.db, src.url, k, 'logical');
      expect(older.ok, older.error).toBe(true);
      const newest = await runBackup(src.db, src.url, k, 'logical');
      expect(newest.ok, newest.error).toBe(true);
      const store = openStore(k.store!);
      const body = (await readSmall(store, newest.objectKey))!;
      const info = (await statArchive(store, newest.objectKey))!;
      const cut = body.subarray(0, Math.floor(body.length / 2));
      await store.client.putObject(store.bucket, newest.objectKey, cut, cut.length, info.meta);
      const target = `cdc_rg_dmg_t_${process.pid}`;
      created.push(target);
      const r = await cli(['restore', '--target', target], { ...s3Env('rg-dmg'), CDC_SECRETS_DIR: keys }, 60_000);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${newest.objectKey} is truncated`);
      expect(r.stderr).toContain(`The archive before it with records: ${older.objectKey}`);
      expect(r.stderr).toContain(`make restore ARCHIVE=${older.objectKey} TARGET=${target}`);
      expect(await exists(target)).toBe(false);
      // A manifest that does not parse: listed as ?, and why said under the table.
      const broken = `${older.objectKey}.copy`;
      await putSmall(store, manifestKey(broken), 'not json');
      const list = await cli(['list'], s3Env('rg-dmg'));
      expect(list.code).toBe(0);
      expect(list.stdout).toMatch(new RegExp(`\\? ${broken.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: \\S`));
    } finally {
      await src.drop();
    }
  });
});
