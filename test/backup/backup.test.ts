/**
 * Backups that prove themselves (docs/backup.md), end to end on the real PostgreSQL of the test run,
 * its own database, and a real S3 store (s3rver on a loopback port): the round trip through the
 * operator's command (make backup / make restore) with the data compared, the function through the
 * runtime, tampering caught with specific messages, retention, and the store failing mid-upload.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { type AlertConfig, loadAlertConfig } from '../../shared/alerts/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../infra/db/migrate.js';
import { startS3, type RunningS3 } from '../../infra/dev/s3.js';
import { bootStack } from '../../infra/runtime/boot.js';
import type { RuntimeHandle } from '../../infra/runtime/index.js';
import { freePort } from '../../infra/runtime/replica.js';
import {
  applyRetention,
  backupSummary,
  failInterrupted,
  dueKinds,
  lastScheduled,
  runDue,
  checkArchive,
  checkIntegrity,
  getArchive,
  lastGood,
  listKeys,
  loadBackupConfig,
  manifestKey,
  ObjectWriter,
  openStore,
  parseManifest,
  plainStream,
  putSmall,
  readSmall,
  runBackup,
  statArchive,
  type Archive,
  type BackupConfig,
} from '../../shared/backup/index.js';
import { backupCli, backupStackYaml, backupStoreEnv } from '../setup/backup-store.js';
import { databaseUrl, privateDatabase } from '../setup/db.js';
import { samplePatient } from '../../infra/simulators/his.js';
import { resources } from '../../schemas/index.js';
import { upsertMany } from '../../shared/ingest/index.js';
import { piiFromDir, setPii } from '../../shared/pii/index.js';
import { bindStatements, grantStatements } from '../../shared/dbsync/role.js';
import { components } from '../../shared/monitor/components.js';

const root = resolve('.');
let dir: string;
let s3: RunningS3;
let url: string;
let db: pg.Pool;
let cfg: BackupConfig;
const dbName = `cdc_bk_${process.pid}_${Date.now().toString(36)}`;
const created: string[] = [];
const SM4_HEX = '0123456789abcdeffedcba9876543210';

const s3Env = (prefix: string) => backupStoreEnv(s3, prefix, { partMb: '5' });

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: databaseUrl() });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

function urlOf(name: string): string {
  const u = new URL(databaseUrl());
  u.pathname = `/${name}`;
  return u.toString();
}

const cli = (args: string[], env: Record<string, string>) => backupCli(args, { CDC_SECRETS_DIR: join(dir, 'no-secrets'), DATABASE_URL: url, ...env });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cdc-backup-test-'));
  s3 = await startS3({ dir: join(dir, 's3') });
  await admin(`CREATE DATABASE ${dbName}`);
  url = urlOf(dbName);
  await migrate(url);
  db = new pg.Pool({ connectionString: url, max: 3 });
  // Data to keep: destinations, callers' code tables and EMR rows (as the receive functions store them).
  await db.query('CREATE TABLE bk_fixture (id integer PRIMARY KEY, note text NOT NULL)');
  await db.query(`INSERT INTO bk_fixture SELECT g, 'row ' || g || ' ' || md5(g::text) FROM generate_series(1, 5000) g`);
  await db.query('CREATE TABLE bk_second (id integer PRIMARY KEY)');
  await db.query('INSERT INTO bk_second SELECT generate_series(1, 10)');
  cfg = loadBackupConfig({ ...s3Env('t-main'), TZ_LOCAL: 'Asia/Shanghai' }, () => undefined);
}, 120_000);

afterAll(async () => {
  await db?.end();
  for (const n of [dbName, ...created]) await admin(`DROP DATABASE IF EXISTS ${n}`).catch(() => undefined);
  await s3?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `body` and returns what reached the process as an unhandled rejection or uncaught exception meanwhile. */
async function unhandledDuring(body: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const on = (e: unknown) => seen.push(e);
  process.on('unhandledRejection', on);
  process.on('uncaughtException', on);
  try {
    await body();
    // A rejection left without a handler is reported once the microtasks have run, before the next macrotask.
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
  } finally {
    process.off('unhandledRejection', on);
    process.off('uncaughtException', on);
  }
  return seen;
}

/** A webhook alert channel on a loopback port: the bodies it received. */
async function alertHook(): Promise<{ alerts: AlertConfig; got: string[]; close(): void }> {
  const got: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      got.push(body);
      res.setHeader('content-type', 'application/json');
      res.end('{"errcode":0,"errmsg":"ok"}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const hook = `http://127.0.0.1:${(server.address() as AddressInfo).port}/robot`;
  return { alerts: loadAlertConfig({ ALERT_WEBHOOK_URL: hook, ALERT_FRONT_NAME: '测试前置' }, () => undefined), got, close: () => server.close() };
}

/** The JSON log lines (shared/log: stdout) written while `body` runs. */
async function logDuring(body: () => Promise<void>): Promise<Array<Record<string, unknown>>> {
  let out = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string | Uint8Array) => ((out += String(s)), true)) as typeof process.stdout.write;
  try {
    await body();
  } finally {
    process.stdout.write = write;
  }
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * Runs `start` (a backup) with every update of a ledger row held on an advisory lock (a trigger)
 * until the tool the backup started has ended — its pipes closed — then lets the updates go and
 * returns what `start` resolved to. The archive's next ledger write (its object key) comes before
 * the upload reads the tool, so the tool has finished, or failed, before anything reads it.
 */
async function afterToolEnded<T>(start: () => Promise<T>): Promise<T> {
  const lock = 727_271;
  await db.query(`CREATE FUNCTION bk_hold_update() RETURNS trigger LANGUAGE plpgsql AS $$
                  BEGIN PERFORM pg_advisory_xact_lock(${lock}); RETURN NEW; END $$`);
  await db.query('CREATE TRIGGER bk_hold BEFORE UPDATE ON backup_archive FOR EACH ROW EXECUTE FUNCTION bk_hold_update()');
  const holder = new pg.Client({ connectionString: url });
  await holder.connect();
  const pipes = () => process.getActiveResourcesInfo().filter((r) => r === 'PipeWrap').length;
  try {
    await holder.query('SELECT pg_advisory_lock($1)', [lock]);
    const baseline = pipes();
    const run = start();
    let held = false;
    for (let i = 0; i < 500 && !held; i++) {
      await new Promise((r) => setTimeout(r, 10));
      held = (await holder.query(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'advisory'`)).rowCount === 1;
    }
    expect(held, 'the ledger write waits on the lock').toBe(true);
    for (let i = 0; i < 500 && pipes() > baseline; i++) await new Promise((r) => setTimeout(r, 10));
    expect(pipes(), "the tool's pipes closed").toBe(baseline);
    await new Promise((r) => setImmediate(r));
    await holder.query('SELECT pg_advisory_unlock($1)', [lock]);
    return await run;
  } finally {
    await holder.end();
    await db.query('DROP TRIGGER IF EXISTS bk_hold ON backup_archive');
    await db.query('DROP FUNCTION IF EXISTS bk_hold_update()');
  }
}

describe('round trip through make backup / make restore', () => {
  it('backs up, the data is damaged, the archive restores into a new database with the data as it was', async () => {
    const before = (await db.query<{ id: number; note: string }>('SELECT id, note FROM bk_fixture ORDER BY id')).rows;
    const env = s3Env('t-cli');
    // Another backup in progress as the archive is taken: it never finished in the restored database.
    const other = (
      await db.query<{ archive_id: string }>(
        `INSERT INTO backup_archive (kind, status, trigger, bucket, object_key, dialect, tool, started_at, progress_at)
         VALUES ('software', 'running', 'manual', 'b', 'k', 'postgresql', 'tar', now(), now()) RETURNING archive_id`,
      )
    ).rows[0]!.archive_id;
    const b = await cli(['backup', '--kind', 'logical'], env);
    await db.query('DELETE FROM backup_archive WHERE archive_id = $1', [other]);
    expect(b.stderr + b.stdout).toMatch(/check integrity: ok/);
    expect(b.stdout).toMatch(/check listing: ok — listing: the archive holds the data of all \d+ tables/);
    expect(b.stdout).toMatch(/check drill: ok — drill: restored \d+ tables, \d+ rows, every count as recorded/);
    expect(b.stderr).toMatch(/\[backup\] taking a logical archive/);
    expect(b.stderr).toMatch(/\[backup\] logical: [\d.]+ MiB, tables (\d+)\/\1, [\d.]+ MiB\/s, ~0 s left/);
    expect(b.code).toBe(0);
    // The console's words for the same checks (the 备份 page), recorded beside the command line's.
    const archiveId = /archive (\d+) logical:/.exec(b.stdout)![1]!;
    const notes = (
      await db.query<{ check_kind: string; note: string }>('SELECT check_kind, note FROM backup_check WHERE archive_id = $1 ORDER BY check_id', [archiveId])
    ).rows;
    expect(notes.map((n) => n.check_kind)).toEqual(['integrity', 'listing', 'drill']);
    expect(notes[0]!.note).toMatch(/^完整：\d+ 字节，SHA-256 与备份时记录一致$/);
    expect(notes[1]!.note).toMatch(/^清单完整：归档包含备份时记录的全部 \d+ 张表的数据$/);
    expect(notes[2]!.note).toMatch(/^恢复演练通过：已恢复 \d+ 张表、\d+ 行，各表行数与备份时一致$/);

    // Damage: rows deleted, a table dropped.
    await db.query('DELETE FROM bk_fixture WHERE id % 2 = 0');
    await db.query('DROP TABLE bk_second');

    const target = `${dbName}_restored`;
    created.push(target);
    // This database holds no record of the data set (its tables are the fixture's): the newest archive
    // with records is wanted, and there is none; named, it is restored as asked (docs/backup.md).
    const key = /archive \d+ logical: (\S+) \(/.exec(b.stdout)![1]!;
    const none = await cli(['restore', '--target', target], env);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain(`holds records: the newest, ${key}, was taken of a database with no records`);
    const r = await cli(['restore', '--target', target, '--archive', key], env);
    expect(r.stdout).toMatch(/^restored: restored \d+ tables, \d+ rows, every count as recorded/m);
    expect(r.stderr).toMatch(/\[backup\] restore: [\d.]+ MiB of ~[\d.]+ MiB, tables (\d+)\/\1, [\d.]+ MiB\/s, ~0 s left/);
    // Progress never runs past its total: the staging schema's tables, which the archive holds
    // but records no count for, are not counted ("tables 92/71" before).
    const counts = [...r.stderr.matchAll(/restore: .*, tables (\d+)\/(\d+),/g)].map((m) => [Number(m[1]), Number(m[2])] as const);
    expect(counts.length).toBeGreaterThanOrEqual(2);
    for (const [done, total] of counts) expect(done, r.stderr).toBeLessThanOrEqual(total);
    expect(r.code).toBe(0);
    const back = new pg.Client({ connectionString: urlOf(target) });
    await back.connect();
    try {
      const after = (await back.query<{ id: number; note: string }>('SELECT id, note FROM bk_fixture ORDER BY id')).rows;
      expect(after).toEqual(before);
      expect((await back.query('SELECT count(*)::int AS n FROM bk_second')).rows[0].n).toBe(10);
      const mig = await back.query('SELECT name FROM schema_migration');
      expect(mig.rowCount).toBeGreaterThan(8);
      // The archive's own ledger row was `running` in its snapshot: in the restored database it is the
      // good archive it is, under its object key (checked, kept and removed there like any other).
      expect((await back.query(`SELECT 1 FROM backup_archive WHERE status = 'running'`)).rowCount).toBe(0);
      expect(
        (await back.query(`SELECT status, sha256 IS NOT NULL AS summed, size_bytes > 0 AS sized FROM backup_archive WHERE object_key = $1`, [key])).rows,
      ).toEqual([{ status: 'good', summed: true, sized: true }]);
      expect((await back.query('SELECT status, error FROM backup_archive WHERE archive_id = $1', [other])).rows).toEqual([
        { status: 'failed', error: 'in progress when the restored archive was taken' },
      ]);
    } finally {
      await back.end();
    }
    // The target must be new: restoring onto an existing database is refused.
    const again = await cli(['restore', '--target', target, '--archive', key], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/cannot create database .*already exists/);
  }, 120_000);
});

/** A secrets folder holding the two personal-data key files (docs/keys.md), as an operator would restore them. */
function keyFiles(name: string, id: string, key: Buffer, hash: string): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true, mode: 0o700 });
  writeFileSync(join(d, 'pii-field-keys'), JSON.stringify({ current: id, keys: [{ id, key: key.toString('base64') }] }), { mode: 0o600 });
  writeFileSync(join(d, 'pii-hash-key'), `${hash}\n`, { mode: 0o600 });
  return d;
}

describe('make restore where the personal-data keys are not those of the data (a new machine)', () => {
  it('fails naming the missing key id, keeps the database and says not to start the front; a key under the same id or another hash key is caught; with the keys restored it passes', async () => {
    const src = await privateDatabase('cdc_bk_keys');
    const key = randomBytes(16);
    const hash = randomBytes(32).toString('base64url');
    const original = keyFiles('keys-original', 'kaaaa0001', key, hash);
    const target = `${dbName}_keys`;
    created.push(target);
    try {
      setPii(piiFromDir(original));
      const sent = [1, 2, 3].map((i) => samplePatient({ orgCode: 'BKKEYS', id: `bkkeys-${i}`, seed: 700 + i }) as Record<string, string>);
      const res = await upsertMany(src.db, resources.emrPatientInfo!, sent, { callId: null, test: false, now: new Date() });
      expect(res.every((r) => r.ok)).toBe(true);
      setPii(undefined);
      const env = { ...s3Env('t-keys'), DATABASE_URL: src.url };
      const b = await runBackup(
        src.db,
        src.url,
        loadBackupConfig(s3Env('t-keys'), () => undefined),
        'logical',
      );
      expect(b.ok, b.error).toBe(true);

      // The new machine made keys of its own (as make up does): another key under another id.
      const fresh = keyFiles('keys-fresh', 'kbbbb0002', randomBytes(16), randomBytes(32).toString('base64url'));
      const r = await cli(['restore', '--target', target], { ...env, CDC_SECRETS_DIR: fresh });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stdout).toMatch(/^restored: restored \d+ tables/m);
      expect(r.stdout).toContain(`personal-data keys: key id(s) kaaaa0001 are not in ${fresh}/pii-field-keys`);
      expect(r.stdout).toContain(`The restored database ${target} is kept, but do not start the front on it`);
      expect(r.stdout).toContain(`infra/backup/cli.ts check-keys --target ${target}`);
      expect(r.stdout).not.toMatch(/start the front on it \(docs/);
      const back = new pg.Client({ connectionString: urlOf(target) });
      await back.connect();
      try {
        expect((await back.query(`SELECT count(*)::int AS n FROM emr_patient_info WHERE org_code = 'BKKEYS'`)).rows[0].n).toBe(3);
      } finally {
        await back.end();
      }

      // A key file made again under the same id (as every installation once made k1): the values do not verify.
      const sameId = keyFiles('keys-same-id', 'kaaaa0001', randomBytes(16), hash);
      const c1 = await cli(['check-keys', '--target', target], { ...env, CDC_SECRETS_DIR: sameId });
      expect(c1.code).toBe(1);
      expect(c1.stdout).toContain(`key id(s) kaaaa0001 are in ${sameId}/pii-field-keys but hold another key`);
      // The field key restored, another hash key: the stored lookup hashes would miss.
      const otherHash = keyFiles('keys-other-hash', 'kaaaa0001', key, randomBytes(32).toString('base64url'));
      const c2 = await cli(['check-keys', '--target', target], { ...env, CDC_SECRETS_DIR: otherHash });
      expect(c2.code).toBe(1);
      expect(c2.stdout).toContain(`${otherHash}/pii-hash-key is not the key the stored lookup hashes were made with`);
      // Both restored: it passes. No key and no personal value is ever printed.
      const c3 = await cli(['check-keys', '--target', target], { ...env, CDC_SECRETS_DIR: original });
      expect(c3.code, c3.stdout + c3.stderr).toBe(0);
      expect(c3.stdout).toContain('every key id the restored data uses (kaaaa0001) opens with');
      expect(c3.stdout).toContain('pii-hash-key gives the stored lookup hashes');
      for (const out of [r, c1, c2, c3].map((x) => x.stdout + x.stderr)) {
        expect(out).not.toContain(key.toString('base64'));
        expect(out).not.toContain(hash);
        for (const p of sent) expect(out.includes(p.idCard!)).toBe(false);
      }
    } finally {
      setPii(undefined);
      await src.drop();
    }
  }, 120_000);
});

describe('make restore and the database-sync HIS roles (docs/dbsync.md "After a restore")', () => {
  it('re-applies the grants of every HIS role the restored database names, names a role missing on the server with the command that makes it; revoke-his closes the old database to them', async () => {
    const src = await privateDatabase('cdc_bk_roles');
    const his = `bk_his_${process.pid}`;
    const gone = `bk_gone_${process.pid}`;
    const password = randomBytes(12).toString('base64url');
    const target = `${dbName}_roles`;
    created.push(target);
    await admin(`DROP ROLE IF EXISTS ${his}`);
    await admin(`CREATE ROLE ${his} LOGIN PASSWORD '${password}'`);
    try {
      for (const st of grantStatements(his)) await src.db.query(st);
      for (const st of bindStatements(his, ['123456789'])) await src.db.query(st);
      // A role bound on the old server that this server does not have (a new machine: roles are not in a dump).
      for (const st of bindStatements(gone, ['555555555'])) await src.db.query(st);
      const b = await runBackup(
        src.db,
        src.url,
        loadBackupConfig(s3Env('t-roles'), () => undefined),
        'logical',
      );
      expect(b.ok, b.error).toBe(true);

      const r = await cli(['restore', '--target', target, '--archive', b.objectKey], { ...s3Env('t-roles'), DATABASE_URL: src.url });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain(`HIS role ${his}: grants re-applied on ${target} (bin/cdc-dbsync grant)`);
      expect(r.stdout).toContain(
        `HIS role ${gone} is named by ${target} but does not exist on this server: DATABASE_URL=<the URL of ${target}> bin/cdc-dbsync create-role --role ${gone} --password-file <file>`,
      );

      // The HIS, connected to the restored database as its role, writes as it did on the old one.
      const u = new URL(urlOf(target));
      u.username = his;
      u.password = password;
      const c = new pg.Client({ connectionString: u.toString() });
      await c.connect();
      try {
        const ins = await c.query<{ row_id: string }>(
          `INSERT INTO staging.emr_patient_info (org_code, id, patient_name) VALUES ('123456789', 'BKROLE1', '测试') RETURNING row_id`,
        );
        expect(ins.rows[0]!.row_id).toMatch(/^\d+$/);
        // and no more than its role allows: the values stay unreadable.
        const err = await c.query('SELECT patient_name FROM staging.emr_patient_info').then(
          () => null,
          (e: Error & { code?: string }) => e.code,
        );
        expect(err).toBe('42501');
        // Nor can it hold the front's advisory locks on the restored database.
        const lock = await c.query('SELECT pg_try_advisory_lock(1)').then(
          () => null,
          (e: Error & { code?: string }) => e.code,
        );
        expect(lock).toBe('42501');
      } finally {
        await c.end();
      }

      // The front has moved: the old database is closed to the HIS roles, so a HIS still writing there
      // gets an error instead of rows nothing will ever take.
      const old = new URL(src.url).pathname.slice(1);
      const hisOld = new URL(src.url);
      hisOld.username = his;
      hisOld.password = password;
      const o = new pg.Client({ connectionString: hisOld.toString() });
      await o.connect();
      try {
        await o.query(`INSERT INTO staging.emr_patient_info (org_code, id, patient_name) VALUES ('123456789', 'BKOLD1', '测试')`);
        const rv = await cli(['revoke-his', '--database', old], { ...s3Env('t-roles'), DATABASE_URL: src.url });
        expect(rv.code, rv.stdout + rv.stderr).toBe(0);
        expect(rv.stdout).toContain(`HIS role ${his}: no longer admitted to the staging tables of ${old}`);
        expect(rv.stdout).toContain(`HIS role ${gone} does not exist on this server`);
        // Even in the session it had open.
        const denied = await o.query(`INSERT INTO staging.emr_patient_info (org_code, id, patient_name) VALUES ('123456789', 'BKOLD2', '测试')`).then(
          () => null,
          (e: Error & { code?: string }) => `${e.code} ${e.message}`,
        );
        expect(denied).toBe('42501 permission denied for schema staging');
      } finally {
        await o.end();
      }
    } finally {
      await src.drop();
      await admin(`DROP DATABASE IF EXISTS ${target}`);
      await admin(`DROP OWNED BY ${his}`).catch(() => undefined);
      await admin(`DROP ROLE IF EXISTS ${his}`);
    }
  }, 120_000);
});

describe('fetching an archive as a plain file (infra/backup/cli.ts fetch)', () => {
  it('downloads by key or by ledger id, checks the SHA-256 recorded, decrypts: the file is the plain archive; a damaged object leaves no file', async () => {
    const keyDir = join(dir, 'fetch-secrets');
    mkdirSync(keyDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(keyDir, 'backup-sm4-key'), `${SM4_HEX}\n`, { mode: 0o600 });
    const k = loadBackupConfig(s3Env('t-fetch'), (n) => (n === 'backup-sm4-key' ? SM4_HEX : undefined));
    const b = await runBackup(db, url, k, 'system');
    expect(b.ok, b.error).toBe(true);
    expect(b.objectKey).toMatch(/\.dump\.sm4$/);
    const env = { ...s3Env('t-fetch'), CDC_SECRETS_DIR: keyDir };
    const store = openStore(k.store!);
    const plain: Buffer[] = [];
    for await (const c of await plainStream(store, { objectKey: b.objectKey, encryption: 'sm4-ctr' }, k.sm4Key)) plain.push(c as Buffer);

    const byKey = join(dir, 'fetched-by-key.dump');
    const f1 = await cli(['fetch', '--archive', b.objectKey, '--out', byKey], env);
    expect(f1.code, f1.stderr).toBe(0);
    expect(f1.stdout).toContain(
      `fetched ${b.objectKey}: sha256 ${b.sha256} as recorded, MAC as recorded, decrypted (sm4-ctr), ${plain.reduce((n, x) => n + x.length, 0)} bytes in ${byKey}`,
    );
    expect(readFileSync(byKey).equals(Buffer.concat(plain))).toBe(true);
    // The plain file is what the tools read.
    const list = spawnSync(join(k.pgBin, 'pg_restore'), ['-l', byKey], { encoding: 'utf8' });
    expect(list.status, list.stderr).toBe(0);
    expect(list.stdout).toContain('TABLE DATA public his_caller');
    // The system archive is the front's configuration as a whole: what a replacement server needs
    // besides the records (the bundles in force, the activation, the console's users).
    for (const t of ['config_bundle', 'config_active', 'front_activation', 'schedule_state', 'console_user', 'dbsync_role_org'])
      expect(list.stdout).toContain(`TABLE DATA public ${t}`);
    // By the ledger's archive id: the same file. An existing file is never overwritten.
    const byId = join(dir, 'fetched-by-id.dump');
    const f2 = await cli(['fetch', '--archive', b.archiveId, '--out', byId], env);
    expect(f2.code, f2.stderr).toBe(0);
    expect(readFileSync(byId).equals(Buffer.concat(plain))).toBe(true);
    const f3 = await cli(['fetch', '--archive', b.archiveId, '--out', byId], env);
    expect(f3.code).toBe(1);
    expect(f3.stderr).toContain(`${byId} exists already`);

    // A flipped byte in the store: refused, and no file (not even a partial one) is left.
    const stored = (await readSmall(store, b.objectKey))!;
    const info = (await statArchive(store, b.objectKey))!;
    stored[Math.floor(stored.length / 2)]! ^= 0x01;
    await store.client.putObject(store.bucket, b.objectKey, stored, stored.length, info.meta);
    const bad = join(dir, 'fetched-bad.dump');
    const f4 = await cli(['fetch', '--archive', b.objectKey, '--out', bad], env);
    expect(f4.code).toBe(1);
    expect(f4.stderr).toMatch(/content altered: the bytes read hash to [0-9a-f]{12}…, [0-9a-f]{12}… was recorded/);
    expect(readdirSync(dir).filter((f) => f.startsWith('fetched-bad'))).toEqual([]);

    // The same flipped byte with every checksum rewritten to match it (the object's metadata, the
    // manifest, the ledger): only the MAC, made under the backup key, still tells. By key and by id.
    const sha = createHash('sha256').update(stored).digest('hex');
    await store.client.putObject(store.bucket, b.objectKey, stored, stored.length, { ...info.meta, sha256: sha });
    const manifest = parseManifest('m', (await readSmall(store, manifestKey(b.objectKey)))!.toString('utf8'));
    await putSmall(store, manifestKey(b.objectKey), JSON.stringify({ ...manifest, sha256: sha }));
    await db.query(`UPDATE backup_archive SET sha256 = $2 WHERE archive_id = $1`, [b.archiveId, sha]);
    for (const archive of [b.objectKey, b.archiveId]) {
      const f5 = await cli(['fetch', '--archive', archive, '--out', bad], env);
      expect(f5.code, archive).toBe(1);
      expect(f5.stderr).toContain("content altered: the archive's MAC (HMAC-SM3 under backup-sm4-key) is not the one recorded");
      expect(readdirSync(dir).filter((f) => f.startsWith('fetched-bad'))).toEqual([]);
    }
    await db.query(`UPDATE backup_archive SET status = 'removed' WHERE archive_id = $1`, [b.archiveId]);
  }, 120_000);
});

describe("the backup command without the store's key files", () => {
  it('says once what is missing, and where the store it looked for came from', async () => {
    const given = await cli(['list'], { BACKUP_S3_ENDPOINT: s3.endpoint });
    expect(given.code).toBe(1);
    expect(given.stderr.match(/configuration invalid/g)).toHaveLength(1);
    expect(given.stderr).toContain(
      `error: backup configuration invalid: the backup store ${s3.endpoint} needs the secret files backup-s3-access-key / backup-s3-secret-key, which are missing`,
    );
    expect(given.stderr).not.toContain("make up's own store");
    // Not given: the command takes make up's own store (infra/cli/locate.ts), and says so.
    const port = String(await freePort());
    const defaulted = await cli(['list'], { S3_PORT: port });
    expect(defaulted.code).toBe(1);
    expect(defaulted.stderr.match(/configuration invalid/g)).toHaveLength(1);
    expect(defaulted.stderr).toContain(
      `BACKUP_S3_ENDPOINT is not set, so this command took make up's own store, http://127.0.0.1:${port}; for a front started with BACKUP_S3_ENDPOINT, set it here too`,
    );
  });
});

describe('make backup / make restore with nothing listening', () => {
  it('a store or a database that refuses the connection is named, with what to do (make up not running)', async () => {
    // Ports just freed: nothing listens on them (as the embedded store and PostgreSQL with make up stopped).
    const [storePort, dbPort] = await Promise.all([freePort(), freePort()]);
    const env = { ...s3Env('t-refused'), BACKUP_S3_ENDPOINT: `http://127.0.0.1:${storePort}` };
    const r = await cli(['restore', '--target', 'never_made'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `error: the backup store at 127.0.0.1:${storePort} refused the connection — under make up the backup store and PostgreSQL run inside it: run this while make up is running; otherwise check BACKUP_S3_ENDPOINT (docs/backup.md "Restore")`,
    );
    const dead = new URL(url);
    dead.port = String(dbPort);
    const b = await cli(['backup', '--kind', 'logical'], { ...s3Env('t-refused'), DATABASE_URL: dead.toString() });
    expect(b.code).toBe(1);
    expect(b.stderr).toContain(`error: the database server at 127.0.0.1:${dbPort} refused the connection`);
    expect(b.stderr).toContain('otherwise check DATABASE_URL');
  }, 60_000);
});

describe('personal data in an archive', () => {
  it('a logical archive holds the protected forms of the records sent, never a clear ID number, name, phone or address', async () => {
    const org = `BKPII${process.pid}`;
    // Names no other test's rows hold (the database is shared): a clear one in the dump is this test's.
    const names = ['归档核对甲', '归档核对乙', '归档核对丙'];
    const sent = [1, 2, 3].map(
      (i) =>
        ({ ...samplePatient({ orgCode: org, id: `bkpii-${Date.now().toString(36)}-${i}`, seed: 900 + i }), patientName: names[i - 1] }) as Record<
          string,
          string
        >,
    );
    const res = await upsertMany(db, resources.emrPatientInfo!, sent, { callId: null, test: false, now: new Date() });
    expect(res.every((r) => r.ok)).toBe(true);
    const b = await runBackup(db, url, cfg, 'logical');
    expect(b.ok, b.error).toBe(true);
    const a = (await getArchive(db, b.archiveId))!;
    expect(a.encryption).toBeNull(); // not the whole-archive SM4 (backup-sm4-key): the fields alone protect them
    const file = join(dir, 'pii.dump');
    writeFileSync(file, (await readSmall(openStore(cfg.store!), a.objectKey))!);
    // The archive as the SQL a restore would run (pg_restore to standard output, no database).
    const sql = spawnSync(join(cfg.pgBin, 'pg_restore'), ['-f', '-', file], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
    expect(sql.status, sql.stderr).toBe(0);
    for (const p of sent) {
      expect(sql.stdout).toContain(p.id); // the records are in it
      for (const clear of [p.idCard, p.patientName, p.tel, p.currentAddrDetail]) expect(sql.stdout.includes(clear!), `${p.id}: a clear value`).toBe(false);
    }
    expect(sql.stdout).toMatch(/sm4:[a-z][a-z0-9]*:[A-Za-z0-9_-]{38,}/);
  });
});

describe('tampering', () => {
  it('a flipped byte, a truncated object, a missing object and a wrong checksum each fail with their own message', async () => {
    const store = openStore(cfg.store!);
    const b = await runBackup(db, url, cfg, 'system');
    expect(b.ok, b.error).toBe(true);
    const a = (await getArchive(db, b.archiveId))!;
    expect(a.status).toBe('good');
    expect((await checkIntegrity(store, a)).ok).toBe(true);
    const info = (await statArchive(store, a.objectKey))!;
    expect(info.meta.sha256).toBe(a.sha256);
    expect(info.size).toBe(a.sizeBytes);
    const original = (await readSmall(store, a.objectKey))!;
    const put = (body: Buffer, meta = info.meta) => store.client.putObject(store.bucket, a.objectKey, body, body.length, meta);

    const flipped = Buffer.from(original);
    flipped[Math.floor(flipped.length / 2)]! ^= 0x01;
    await put(flipped);
    expect((await checkIntegrity(store, a)).message).toMatch(/^content altered: the bytes of .* hash to [0-9a-f]{12}…, [0-9a-f]{12}… was recorded$/);
    expect((await checkIntegrity(store, a)).note).toMatch(/^内容被改动：读出内容的 SHA-256 为 [0-9a-f]{12}…，备份时记录为 [0-9a-f]{12}…$/);

    await put(original.subarray(0, original.length - 100));
    expect((await checkIntegrity(store, a)).message).toMatch(
      new RegExp(`^size mismatch: the store holds ${original.length - 100} bytes of .*, ${original.length} were recorded`),
    );

    await put(original, { ...info.meta, sha256: 'f'.repeat(64) });
    expect((await checkIntegrity(store, a)).message).toMatch(/^checksum mismatch: the object's metadata says sha256 ffffffffffff…/);

    await store.client.removeObject(store.bucket, a.objectKey);
    expect((await checkIntegrity(store, a)).message).toBe(`missing: object ${a.objectKey} is not in bucket ${store.bucket}`);

    // The hourly run re-checks every kept archive once a day: damage found after the backup is caught
    // and alerted.
    await put(flipped);
    await db.query(`UPDATE backup_check SET checked_at = now() - interval '2 days' WHERE archive_id = $1`, [a.archiveId]);
    const { alerts, got, close } = await alertHook();
    try {
      const report = await runDue(db, url, cfg, { kinds: [], recheck: true, alerts });
      const mine = report.checks.filter((c) => c.archiveId === a.archiveId);
      expect(mine.map((c) => [c.check, c.ok])).toEqual([['integrity', false]]);
      expect(mine[0]!.message).toMatch(/^content altered:/);
      expect(JSON.parse(got[0]!).text.content).toContain(`备份校验失败（integrity，归档 ${a.archiveId}）：content altered:`);
      // Damaged is no longer good (docs/backup.md "The checks").
      expect(await getArchive(db, a.archiveId)).toMatchObject({ status: 'damaged', error: expect.stringMatching(/^integrity check failed: content altered:/) });
      // Checked today: the next hour does not read it again.
      const next = await runDue(db, url, cfg, { kinds: [], recheck: true, alerts });
      expect(next.checks.filter((c) => c.archiveId === a.archiveId)).toEqual([]);
    } finally {
      close();
    }

    await put(original);
    expect(await checkIntegrity(store, a)).toEqual({ ok: true, message: expect.stringMatching(/^intact:/), note: expect.stringMatching(/^完整：/) });
  }, 60_000);
});

describe('physical backups', () => {
  it('pg_basebackup streams one tar to the store, SM4-encrypted; pg_verifybackup checks it; a corrupted file is caught', async () => {
    // A physical archive is always encrypted (docs/backup.md "Encryption at rest"): the key is given.
    const pcfg = { ...cfg, sm4Key: Buffer.from(SM4_HEX, 'hex') };
    const store = openStore(cfg.store!);
    const b = await runBackup(db, url, pcfg, 'physical');
    expect(b.ok, b.error).toBe(true);
    const a = (await getArchive(db, b.archiveId))!;
    expect(a.tool).toBe('pg_basebackup');
    expect(a.encryption).toBe('sm4-ctr');
    expect(a.objectKey).toMatch(/\.tar\.sm4$/);
    // The stored bytes are not a tar (no "ustar" magic at offset 257 of the first member).
    const stored = (await readSmall(store, a.objectKey))!;
    expect(stored.subarray(16 + 257, 16 + 262).toString('latin1')).not.toBe('ustar');
    expect(stored.subarray(257, 262).toString('latin1')).not.toBe('ustar');
    const checks = await checkArchive(db, store, pcfg, a, { databaseUrl: url });
    expect(checks.map((c) => [c.check, c.ok, c.message])).toEqual([
      ['integrity', true, expect.stringMatching(/^intact/)],
      ['verify', true, 'verify: pg_verifybackup found every file and WAL as the manifest lists them'],
    ]);
    // A base backup whose data file was altered, stored with a matching checksum (as if damaged
    // before upload): integrity passes, pg_verifybackup does not.
    const t = mkdtempSync(join(dir, 'pb-'));
    // Fetched as the runbook does (docs/backup.md "Restore"): checked, decrypted, a plain tar.
    const keyDir = join(t, 'secrets');
    mkdirSync(keyDir, { mode: 0o700 });
    writeFileSync(join(keyDir, 'backup-sm4-key'), `${SM4_HEX}\n`, { mode: 0o600 });
    const fetched = await cli(['fetch', '--archive', a.objectKey, '--out', join(t, 'base.tar')], { ...s3Env('t-main'), CDC_SECRETS_DIR: keyDir });
    expect(fetched.code, fetched.stderr).toBe(0);
    expect(fetched.stdout).toContain(`fetched ${a.objectKey}: sha256 ${a.sha256} as recorded, MAC as recorded, decrypted (sm4-ctr)`);
    const members = spawnSync('tar', ['-tf', join(t, 'base.tar')], { encoding: 'utf8' });
    expect(members.status, members.stderr).toBe(0);
    expect(members.stdout.split('\n')).toEqual(expect.arrayContaining(['backup_manifest', 'PG_VERSION']));
    const sh = (cmd: string) => new Promise<number | null>((ok) => spawn('sh', ['-c', cmd], { cwd: t, stdio: 'ignore' }).on('close', ok));
    expect(await sh('mkdir x && tar -xf base.tar -C x && printf garbage >> x/PG_VERSION && tar -cf bad.tar -C x .')).toBe(0);
    const bad = await runTarArchive(store, a, join(t, 'bad.tar'));
    const verify = await checkArchive(db, store, cfg, bad, { databaseUrl: url });
    expect(verify.at(-1)!.check).toBe('verify');
    expect(verify.at(-1)!.ok).toBe(false);
    expect(verify.at(-1)!.message).toMatch(/^verify: pg_verifybackup exited with 1: .*PG_VERSION/);
    await db.query(`UPDATE backup_archive SET status = 'removed' WHERE archive_id IN ($1, $2)`, [a.archiveId, bad.archiveId]);
  }, 120_000);
});

describe('physical backups without backup-sm4-key', () => {
  it('are refused: the archive failed naming the secret file, nothing in the store, alerted, the object store degraded; the logical kind still runs', async () => {
    const k = loadBackupConfig(s3Env('t-nokey'), () => undefined);
    expect(k.sm4Key).toBeNull();
    const store = openStore(k.store!);
    const { alerts, got, close } = await alertHook();
    try {
      const report = await runDue(db, url, k, { kinds: ['physical'], alerts });
      expect(report.backups).toHaveLength(1);
      const b = report.backups[0]!;
      expect(b.ok).toBe(false);
      expect(b.error).toMatch(/^physical archive refused: the secret file backup-sm4-key is missing/);
      expect(b.error).toContain('WAL');
      const row = (await getArchive(db, b.archiveId))!;
      expect(row.status).toBe('failed');
      expect(row.error).toBe(b.error);
      expect(await listKeys(store, 't-nokey/')).toEqual([]);
      expect(report.alerted).toEqual(['webhook']);
      expect(JSON.parse(got[0]!).text.content).toContain('备份失败（physical）：physical archive refused: the secret file backup-sm4-key is missing');
      const comp = await components(db, { platforms: {}, diskPath: dir, probe: false });
      expect(comp.components.find((c) => c.name === 'object-store')).toMatchObject({
        state: 'degraded',
        detail: expect.stringContaining('last backup failed: physical archive refused: the secret file backup-sm4-key is missing'),
      });
    } finally {
      close();
    }
    // The logical archive holds only protected forms: taken without the key.
    const l = await runBackup(db, url, k, 'logical');
    expect(l.ok, l.error).toBe(true);
    await db.query(`UPDATE backup_archive SET status = 'removed' WHERE archive_id = $1`, [l.archiveId]);
  }, 120_000);
});

/** Stores a tar file as a new physical archive of the ledger (size and checksum recorded as they are). */
async function runTarArchive(store: ReturnType<typeof openStore>, like: Archive, file: string): Promise<Archive> {
  const body = readFileSync(file);
  const key = `${like.objectKey}.bad.tar`;
  const w = new ObjectWriter(store, key, {}, 8 * 1024 * 1024);
  for (let i = 0; i < body.length; i += 1 << 20) await w.write(body.subarray(i, i + (1 << 20)));
  const { sha256: sha } = await w.finish();
  const r = await db.query<{ archive_id: string }>(
    `INSERT INTO backup_archive (kind, status, trigger, bucket, object_key, dialect, tool, started_at, finished_at, size_bytes, sha256)
     VALUES ('physical', 'good', 'manual', $1, $2, 'postgresql', 'pg_basebackup', now(), now(), $3, $4) RETURNING archive_id`,
    [store.bucket, key, body.length, sha],
  );
  return (await getArchive(db, String(r.rows[0]!.archive_id)))!;
}

describe('retention', () => {
  it('keeps the newest N good archives of each kind and removes exactly the others', async () => {
    const k = loadBackupConfig({ ...s3Env('t-ret'), BACKUP_KEEP_DAILY: '2', BACKUP_KEEP_WEEKLY: '1' }, () => undefined);
    const store = openStore(k.store!);
    // Only this prefix's archives: earlier tests' rows live in the same ledger, so clear the kind first.
    await db.query(`UPDATE backup_archive SET status = 'removed' WHERE kind = 'software'`);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const b = await runBackup(db, url, { ...k, softwareDir: root }, 'software');
      expect(b.ok, b.error).toBe(true);
      ids.push(b.archiveId);
    }
    // A failed attempt counts for nothing.
    await db.query(
      `INSERT INTO backup_archive (kind, status, trigger, bucket, object_key, dialect, tool, started_at) VALUES ('software', 'failed', 'cron', $1, 'x', 'postgresql', 'tar', now())`,
      [s3.bucket],
    );
    const removed = await applyRetention(db, store, k);
    expect(removed.sort()).toEqual(ids.slice(0, 2).sort());
    const keys = await listKeys(store, 't-ret/');
    for (const id of ids) {
      const a = (await getArchive(db, id))!;
      const kept = !removed.includes(id);
      expect(a.status).toBe(kept ? 'good' : 'removed');
      expect(keys.includes(a.objectKey)).toBe(kept);
      expect(keys.includes(`${a.objectKey}.manifest.json`)).toBe(kept);
    }
    expect(await applyRetention(db, store, k)).toEqual([]);
  }, 60_000);
});

describe('the store unavailable', () => {
  it('fails the backup clearly with nothing half-recorded, and a later retry succeeds', async () => {
    // Incompressible data, so the archive needs several 5 MiB parts.
    await db.query('CREATE TABLE bk_filler (id integer, blob text)');
    await db.query(
      `INSERT INTO bk_filler SELECT g, md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text) FROM generate_series(1, 110000) g`,
    );
    const port = s3.port;
    const k = loadBackupConfig(s3Env('t-down'), () => undefined);
    let stopped = false;
    const b = await runBackup(db, url, k, 'logical', {
      progressMs: 20,
      onProgress: (p) => {
        if (!stopped && p.bytes > 6 * 1024 * 1024) {
          stopped = true;
          void s3.stop();
        }
      },
    });
    expect(stopped).toBe(true);
    expect(b.ok).toBe(false);
    expect(b.error).toMatch(/^backup store (unavailable during upload|failed completing the archive): /);
    const row = (await getArchive(db, b.archiveId))!;
    expect(row.status).toBe('failed');
    expect(row.sha256).toBeNull();
    expect(row.error).toBe(b.error);

    // The upload's parts stay in the store: it could not be reached to abort (and s3rver has no abort).
    const uploads = join(dir, 's3', s3.bucket, '._S3rver_uploads');
    const left = () => (existsSync(uploads) ? readdirSync(uploads) : []);
    expect(left().length).toBeGreaterThan(0);
    // The store comes back (same data folder): no object of the failed archive, no stale upload (the
    // development store drops them as it starts, as MinIO expires them: docs/backup.md), and the retry works.
    s3 = await startS3({ dir: join(dir, 's3'), port });
    expect(left()).toEqual([]);
    const store = openStore(k.store!);
    expect(await statArchive(store, b.objectKey)).toBeNull();
    expect(await listKeys(store, 't-down/')).toEqual([]);
    const retry = await runBackup(db, url, k, 'logical');
    expect(retry.ok, retry.error).toBe(true);
    expect(retry.size!).toBeGreaterThan(5 * 1024 * 1024); // a multipart upload
    const a = (await getArchive(db, retry.archiveId))!;
    expect((await checkIntegrity(store, a)).ok).toBe(true);
    expect(a.rowCounts!.bk_filler).toBe(110000);
    await db.query(`UPDATE backup_archive SET status = 'removed' WHERE archive_id = $1`, [retry.archiveId]);
    // bk_filler stays: the function's test below watches the progress of a backup that takes seconds.
  }, 120_000);

  it('a store that cannot be reached at all fails at once, naming it', async () => {
    const k = loadBackupConfig({ ...s3Env('t-none'), BACKUP_S3_ENDPOINT: `http://127.0.0.1:${await freePort()}` }, () => undefined);
    const b = await runBackup(db, url, k, 'system');
    expect(b.ok).toBe(false);
    expect(b.error).toMatch(/^backup store unavailable \(127\.0\.0\.1:\d+\): /);
    expect((await getArchive(db, b.archiveId))!.status).toBe('failed');
  });
});

describe('the tool failing', () => {
  it('a dump that exits with an error after streaming more than a part fails the archive, naming the tool, and leaves no object', async () => {
    // The real pg_dump, then 6 MB more (a multipart upload is under way), then an error exit: as a dump cut off mid-way.
    const bin = join(dir, 'failing-bin');
    mkdirSync(bin);
    writeFileSync(
      join(bin, 'pg_dump'),
      `#!/bin/sh\n'${join(cfg.pgBin, 'pg_dump')}' "$@" || exit $?\nhead -c 6000000 /dev/urandom\necho 'pg_dump: error: connection to server lost' >&2\nexit 1\n`,
      { mode: 0o755 },
    );
    const k = { ...loadBackupConfig(s3Env('t-tool'), () => undefined), pgBin: bin };
    const b = await runBackup(db, url, k, 'system');
    expect(b.ok).toBe(false);
    expect(b.error).toMatch(/^pg_dump exited with 1: .*connection to server lost/);
    const row = (await getArchive(db, b.archiveId))!;
    expect(row.status).toBe('failed');
    expect(row.sha256).toBeNull();
    expect(row.error).toBe(b.error);
    expect(await listKeys(openStore(k.store!), 't-tool/')).toEqual([]);
  });

  it('a tool that cannot be found fails the archive at once, naming it: no object, no snapshot held, nothing thrown', async () => {
    const empty = join(dir, 'empty-bin'); // BACKUP_PG_BIN pointing at a folder without the tools
    mkdirSync(empty);
    // With the backup key: a physical archive without it is refused before its tool is looked for.
    const k = { ...loadBackupConfig(s3Env('t-notool'), () => undefined), pgBin: empty, sm4Key: Buffer.from(SM4_HEX, 'hex') };
    const cases = [
      ['logical', 'pg_dump'],
      ['system', 'pg_dump'],
      ['physical', 'pg_basebackup'],
    ] as const;
    const unhandled = await unhandledDuring(async () => {
      for (const [kind, tool] of cases) {
        const b = await runBackup(db, url, k, kind);
        expect(b.ok, kind).toBe(false);
        expect(b.error).toBe(`${join(empty, tool)} not found (BACKUP_PG_BIN; Debian: postgresql-client-15)`);
        const row = (await getArchive(db, b.archiveId))!;
        expect(row).toMatchObject({ kind, status: 'failed', tool, error: b.error, sha256: null, sizeBytes: null });
        expect(row.finishedAt).not.toBeNull();
        expect(await statArchive(openStore(k.store!), b.objectKey)).toBeNull();
      }
    });
    expect(unhandled).toEqual([]);
    expect(await listKeys(openStore(k.store!), 't-notool/')).toEqual([]);
    // The logical kinds' snapshot connection is not left open.
    const held = await db.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'cdc-front-backup'`);
    expect(held.rows[0].n).toBe(0);
  });

  it('a tool that is there but cannot be run fails the archive, naming it, with nothing thrown', async () => {
    // Not executable: the spawn fails at once, before the upload has begun to wait for the tool.
    const noexec = join(dir, 'noexec-bin');
    mkdirSync(noexec);
    writeFileSync(join(noexec, 'pg_dump'), '#!/bin/sh\nexit 0\n', { mode: 0o644 });
    const k = { ...loadBackupConfig(s3Env('t-noexec'), () => undefined), pgBin: noexec };
    // The tool's failure must be handled however soon it comes: it lands before the upload starts.
    let b: Awaited<ReturnType<typeof runBackup>> | undefined;
    const unhandled = await unhandledDuring(async () => {
      b = await afterToolEnded(() => runBackup(db, url, k, 'logical'));
    });
    expect(unhandled).toEqual([]);
    expect(b!.ok).toBe(false);
    expect(b!.error).toMatch(/^pg_dump could not run: spawn .*pg_dump EACCES$/);
    expect(await getArchive(db, b!.archiveId)).toMatchObject({ status: 'failed', error: b!.error, sha256: null });
    expect(await listKeys(openStore(k.store!), 't-noexec/')).toEqual([]);
  });
});

describe('the ledger failing', () => {
  /** A trigger that makes the database refuse (raise on) an update of a ledger row to one of `statuses`. */
  async function ledgerRefuses(statuses: string[]): Promise<() => Promise<void>> {
    await db.query(`CREATE FUNCTION bk_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN RAISE EXCEPTION 'the ledger refuses status %', NEW.status; END $$`);
    const list = statuses.map((x) => `'${x}'`).join(', ');
    await db.query(`CREATE TRIGGER bk_refuse BEFORE UPDATE ON backup_archive FOR EACH ROW WHEN (NEW.status IN (${list})) EXECUTE FUNCTION bk_refuse()`);
    return async () => {
      await db.query('DROP TRIGGER IF EXISTS bk_refuse ON backup_archive');
      await db.query('DROP FUNCTION IF EXISTS bk_refuse()');
    };
  }

  /** Connections of the backup's snapshot (logical and system archives) still open. */
  const snapshotsHeld = async () =>
    (await db.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'cdc-front-backup'`)).rows[0].n as number;

  it('the archive written, its row refused `good`: reported failed, nothing left in the store, the row failed naming the ledger, alerted', async () => {
    const k = loadBackupConfig(s3Env('t-ledger'), () => undefined);
    const { alerts, got, close } = await alertHook();
    const restore = await ledgerRefuses(['good']);
    let report: Awaited<ReturnType<typeof runDue>> | undefined;
    let lines: Array<Record<string, unknown>> = [];
    try {
      const unhandled = await unhandledDuring(async () => {
        lines = await logDuring(async () => {
          report = await runDue(db, url, k, { kinds: ['system'], alerts });
        });
      });
      expect(unhandled).toEqual([]);
    } finally {
      await restore();
      close();
    }
    const b = report!.backups[0]!;
    expect(b.ok).toBe(false);
    expect(b.error).toBe('backup ledger update failed: the ledger refuses status good');
    expect(b.size).toBeUndefined();
    // The ledger took the `failed` update: the row says why, with no checksum or size of an archive that is not kept.
    expect(await getArchive(db, b.archiveId)).toMatchObject({ status: 'failed', error: b.error, sha256: null, sizeBytes: null });
    expect((await lastGood(db, 'system'))?.archiveId).not.toBe(b.archiveId);
    // Neither the archive nor its manifest stays in the store: `make restore` (which finds archives by
    // their manifests) cannot take an archive the ledger does not hold as good.
    expect(await listKeys(openStore(k.store!), 't-ledger/')).toEqual([]);
    // Not checked (there is no archive) but alerted, and logged as failed, never as done.
    expect(report!.checks.filter((c) => c.archiveId === b.archiveId)).toEqual([]);
    expect(report!.alerted).toEqual(['webhook']);
    expect(JSON.parse(got[0]!).text.content).toContain('备份失败（system）：backup ledger update failed: the ledger refuses status good');
    const mine = lines.filter((l) => l.archiveId === b.archiveId);
    expect(mine.map((l) => [l.level, l.msg])).toEqual([['error', 'backup failed']]);
    expect(await snapshotsHeld()).toBe(0);
  });

  it('the ledger refusing `failed` too: still reported failed and removed from the store, the refused update logged', async () => {
    const k = loadBackupConfig(s3Env('t-ledger2'), () => undefined);
    const restore = await ledgerRefuses(['good', 'failed']);
    let b: Awaited<ReturnType<typeof runBackup>> | undefined;
    let lines: Array<Record<string, unknown>> = [];
    try {
      const unhandled = await unhandledDuring(async () => {
        lines = await logDuring(async () => {
          b = await runBackup(db, url, k, 'system');
        });
      });
      expect(unhandled).toEqual([]);
    } finally {
      await restore();
    }
    expect(b!.ok).toBe(false);
    expect(b!.error).toBe('backup ledger update failed: the ledger refuses status good');
    // The row could not be ended: it stays `running` until the 6-hour rule fails it (docs/backup.md), never `good`.
    expect(await getArchive(db, b!.archiveId)).toMatchObject({ status: 'running', sha256: null, sizeBytes: null });
    expect(await listKeys(openStore(k.store!), 't-ledger2/')).toEqual([]);
    const mine = lines.filter((l) => l.archiveId === b!.archiveId);
    expect(mine.map((l) => [l.level, l.msg, l.err])).toEqual([
      ['error', 'backup ledger update failed', 'the ledger refuses status failed'],
      ['error', 'backup failed', b!.error],
    ]);
    expect(await snapshotsHeld()).toBe(0);
    await db.query(`UPDATE backup_archive SET status = 'failed' WHERE archive_id = $1`, [b!.archiveId]);
  });

  it('the row removed while the archive was taken: the final update finds nothing, so the archive is failed, not reported good', async () => {
    const k = loadBackupConfig(s3Env('t-ledger3'), () => undefined);
    let removed: Promise<unknown> | undefined;
    const b = await runBackup(db, url, k, 'system', {
      progressMs: 20,
      // Someone clears the ledger row while the dump runs (pg_dump takes far longer than 20 ms).
      onProgress: (p) => {
        removed ??= db.query('DELETE FROM backup_archive WHERE archive_id = $1', [p.archiveId]);
      },
    });
    expect(removed, 'the row was removed mid-way').toBeDefined();
    await removed;
    expect(b.ok).toBe(false);
    expect(b.error).toBe(`backup ledger update failed: archive ${b.archiveId} is no longer in the ledger`);
    expect(await getArchive(db, b.archiveId)).toBeNull();
    expect(await listKeys(openStore(k.store!), 't-ledger3/')).toEqual([]);
  });
});

describe('the software archive', () => {
  /** A project folder: the given files (path → content) under a new temp folder. */
  function project(files: Record<string, string>): string {
    const d = mkdtempSync(join(dir, 'sw-'));
    for (const [f, text] of Object.entries(files)) {
      mkdirSync(join(d, f, '..'), { recursive: true });
      writeFileSync(join(d, f), text);
    }
    return d;
  }

  /** The names in a stored (unencrypted) tar archive, sorted. */
  async function tarList(k: BackupConfig, key: string): Promise<string[]> {
    const file = join(mkdtempSync(join(dir, 'tar-')), 'got.tar');
    writeFileSync(file, (await readSmall(openStore(k.store!), key))!);
    const list = spawnSync('tar', ['-tf', file], { encoding: 'utf8' });
    expect(list.status, list.stderr).toBe(0);
    return list.stdout.split('\n').filter(Boolean).sort();
  }

  it('a folder without a built function bundle fails the archive, naming the folder; nothing is stored', async () => {
    const k = loadBackupConfig(s3Env('t-sw-none'), () => undefined);
    const empty = project({});
    const unbuilt = project({
      'package.json': '{}',
      'stack.yml': 'version: 1.0\n',
      'functions/patient/handler.ts': '',
      'functions/patient/dist/index.js.map': '{}',
    });
    const absent = join(dir, 'no-such-project');
    const cases = [
      [empty, `software archive: no built function bundle in ${empty} (functions/<fn>/dist/index.js: node infra/build/build.mjs builds them)`],
      [unbuilt, `software archive: no built function bundle in ${unbuilt} (functions/<fn>/dist/index.js: node infra/build/build.mjs builds them)`],
      [absent, `software archive: ${absent} does not exist (BACKUP_SOFTWARE_DIR)`],
    ] as const;
    const unhandled = await unhandledDuring(async () => {
      for (const [softwareDir, why] of cases) {
        const b = await runBackup(db, url, { ...k, softwareDir }, 'software');
        expect(b.ok, softwareDir).toBe(false);
        expect(b.error).toBe(why);
        expect(await getArchive(db, b.archiveId)).toMatchObject({ kind: 'software', status: 'failed', error: why, sha256: null, sizeBytes: null });
      }
    });
    expect(unhandled).toEqual([]);
    expect(await listKeys(openStore(k.store!), 't-sw-none/')).toEqual([]);
  });

  it('holds package.json, stack.yml and the built bundles, without source maps, compile caches or sources', async () => {
    const k = loadBackupConfig(s3Env('t-sw-one'), () => undefined);
    const softwareDir = project({
      'package.json': '{}',
      'stack.yml': 'version: 1.0\n',
      'functions/patient/handler.ts': 'source',
      'functions/patient/dist/index.js': 'bundle',
      'functions/patient/dist/index.js.map': '{}',
      'functions/patient/dist/compile-cache/v24.22.3-x64-5e2a-0/8a1b2c3d': 'code cache',
      'functions/unbuilt/handler.ts': 'source',
    });
    const b = await runBackup(db, url, { ...k, softwareDir }, 'software');
    expect(b.ok, b.error).toBe(true);
    expect(await tarList(k, b.objectKey)).toEqual(['functions/patient/dist/', 'functions/patient/dist/index.js', 'package.json', 'stack.yml']);
    await db.query(`UPDATE backup_archive SET status = 'removed' WHERE archive_id = $1`, [b.archiveId]);
  });

  it('a tar that has ended before the upload reads it is archived whole, never as an empty archive', async () => {
    const k = loadBackupConfig(s3Env('t-sw-quick'), () => undefined);
    const softwareDir = project({ 'package.json': '{}', 'functions/patient/dist/index.js': 'bundle' });
    // tar takes milliseconds: it can end while the ledger is still being written. Here it does, always.
    const b = await afterToolEnded(() => runBackup(db, url, { ...k, softwareDir }, 'software'));
    expect(b.ok, b.error).toBe(true);
    expect(b.size).toBeGreaterThan(0);
    expect(await tarList(k, b.objectKey)).toEqual(['functions/patient/dist/', 'functions/patient/dist/index.js', 'package.json']);
    await db.query(`UPDATE backup_archive SET status = 'removed' WHERE archive_id = $1`, [b.archiveId]);
  });
});

describe('schedule', () => {
  it('the last scheduled instant is local time: nightly at BACKUP_LOGICAL_AT, weekly on BACKUP_PHYSICAL_DAY', () => {
    // 2026-12-03 is a Thursday; 09:00 in Shanghai is 01:00 UTC.
    expect(lastScheduled(new Date('2026-12-03T01:00:00Z'), 'Asia/Shanghai', '02:00').toISOString()).toBe('2026-12-02T18:00:00.000Z');
    expect(lastScheduled(new Date('2026-12-02T17:59:00Z'), 'Asia/Shanghai', '02:00').toISOString()).toBe('2026-12-01T18:00:00.000Z');
    expect(lastScheduled(new Date('2026-12-03T01:00:00Z'), 'Asia/Shanghai', '03:00', 0).toISOString()).toBe('2026-11-28T19:00:00.000Z');
    expect(lastScheduled(new Date('2026-11-28T19:00:00Z'), 'Asia/Shanghai', '03:00', 0).toISOString()).toBe('2026-11-28T19:00:00.000Z');
  });

  it('an archive is due until a good one (or one still running) exists since its scheduled instant', async () => {
    const now = new Date('2031-06-04T12:00:00Z'); // a Wednesday
    expect(await dueKinds(db, cfg, now)).toEqual(['logical', 'system', 'software', 'physical']);
    const since = lastScheduled(now, 'Asia/Shanghai', '02:00');
    const ins = (kind: string, status: string, at: Date) =>
      db.query(
        `INSERT INTO backup_archive (kind, status, trigger, bucket, object_key, dialect, tool, started_at) VALUES ($1, $2, 'cron', 'b', 'k', 'postgresql', 't', $3)`,
        [kind, status, at],
      );
    await ins('logical', 'failed', new Date(since.getTime() + 60_000));
    await ins('system', 'good', new Date(since.getTime() - 60_000));
    expect(await dueKinds(db, cfg, now)).toEqual(['logical', 'system', 'software', 'physical']);
    await ins('logical', 'good', new Date(since.getTime() + 60_000));
    await ins('software', 'running', new Date(since.getTime() + 60_000));
    await ins('physical', 'good', lastScheduled(now, 'Asia/Shanghai', '03:00', 0));
    expect(await dueKinds(db, cfg, now)).toEqual(['system']);
    await db.query(`DELETE FROM backup_archive WHERE started_at > '2031-01-01'`);
  });
});

describe('interrupted backups', () => {
  it('a row left running by a process that died is failed after 6 hours, and not shown as running', async () => {
    const ins = (hoursAgo: number) =>
      db.query<{ archive_id: string }>(
        `INSERT INTO backup_archive (kind, status, trigger, bucket, object_key, dialect, tool, started_at) VALUES ('system', 'running', 'cron', 'b', 'k', 'postgresql', 't', now() - $1 * interval '1 hour') RETURNING archive_id`,
        [hoursAgo],
      );
    const old = String((await ins(7)).rows[0]!.archive_id);
    expect((await backupSummary(db)).running).toBeNull();
    const young = String((await ins(1)).rows[0]!.archive_id);
    expect((await backupSummary(db)).running).toMatchObject({ archiveId: young, kind: 'system' });
    expect(await failInterrupted(db)).toBe(1);
    expect(await getArchive(db, old)).toMatchObject({ status: 'failed', error: 'interrupted: the backup process stopped before finishing' });
    expect((await getArchive(db, young))!.status).toBe('running');
    await db.query('DELETE FROM backup_archive WHERE archive_id IN ($1, $2)', [old, young]);
  });
});

describe('alerts', () => {
  it('a failed backup raises an alert through the configured webhook and records it', async () => {
    const { alerts, got, close } = await alertHook();
    try {
      const k = loadBackupConfig({ ...s3Env('t-alert'), BACKUP_S3_ENDPOINT: `http://127.0.0.1:${await freePort()}` }, () => undefined);
      const report = await runDue(db, url, k, { kinds: ['system'], alerts });
      expect(report.backups[0]!.ok).toBe(false);
      expect(report.alerted).toEqual(['webhook']);
      expect(got).toHaveLength(1);
      const text = JSON.parse(got[0]!).text.content as string;
      expect(text).toContain('【传染病监测前置软件告警】备份或备份校验失败');
      expect(text).toContain('前置：测试前置');
      expect(text).toMatch(/备份失败（system）：backup store unavailable \(127\.0\.0\.1:\d+\)/);
      const ev = await db.query(`SELECT kind, channels, delivered_at FROM alert_event WHERE destination = 'backup' ORDER BY event_id DESC LIMIT 1`);
      expect(ev.rows[0]).toMatchObject({ kind: 'raise', channels: 'webhook', delivered_at: expect.any(Date) });
    } finally {
      close();
    }
  });
});

describe('a fresh front', () => {
  it("an operator's run of another kind before the first logical archive: done, not failed for the logical archive's freshness, no alert", async () => {
    const fresh = await privateDatabase('cdc_bk_fresh');
    const { alerts, got, close } = await alertHook();
    try {
      expect(await lastGood(fresh.db, 'logical')).toBeNull();
      const k = loadBackupConfig(s3Env('t-fresh'), () => undefined);
      const report = await runDue(fresh.db, fresh.url, k, { kinds: ['system'], alerts });
      expect(report.backups.map((b) => [b.kind, b.ok])).toEqual([['system', true]]);
      expect(report.checks.length).toBeGreaterThan(0); // the system archive was checked
      expect(report.checks.filter((c) => !c.ok)).toEqual([]);
      expect(report.checks.map((c) => c.check)).not.toContain('freshness');
      expect(report.alerted).toEqual([]);
      expect(got).toEqual([]);
    } finally {
      close();
      await fresh.drop();
    }
  });
});

describe('the backup function through the runtime', () => {
  let rt: RuntimeHandle | undefined;
  afterAll(async () => {
    await rt?.close();
  });

  it('POST /run takes, checks and drills an SM4-encrypted archive; /status and /archives show it', async () => {
    // infra/runtime/boot.ts: its own stack file and secrets, no hospital ports.
    const front = await bootStack({
      name: 'backup-fn',
      databaseUrl: url,
      secrets: {
        'backup-s3-access-key': s3.accessKey,
        'backup-s3-secret-key': s3.secretKey,
        'backup-sm4-key': '0123456789abcdeffedcba9876543210\n',
      },
      stackYaml: backupStackYaml(s3, 't-fn', {
        env: ['TZ_LOCAL: Asia/Shanghai'],
        functions: [
          '  web:',
          '    lang: hono',
          `    handler: ${join(root, 'functions/web')}`,
          '    image: cdc-front/web:test',
          '    secrets: [cdc-database-url]',
          '  monitor:',
          '    lang: hono',
          `    handler: ${join(root, 'functions/monitor')}`,
          '    image: cdc-front/monitor:test',
          '    secrets: [cdc-database-url, monitor-token]',
        ],
      }),
      frontDefaults: false,
      runtime: { projectDir: root, gateway: { host: '127.0.0.1', port: 0 }, hospital: false },
    });
    rt = front.rt;
    // A backup that takes seconds, so that its progress can be watched (on a quiet machine too).
    await db.query('CREATE TABLE IF NOT EXISTS bk_filler (id integer, blob text)');
    const have = Number((await db.query('SELECT count(*) AS n FROM bk_filler')).rows[0].n);
    if (have < 250_000) {
      await db.query(
        `INSERT INTO bk_filler SELECT g, md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text) FROM generate_series($1::int + 1, 250000) g`,
        [have],
      );
    }
    // The operator routes take the gateway's credentials, like push's and day-close's.
    const op = { authorization: 'Basic ' + Buffer.from(`${rt.credentials.user}:${rt.credentials.password}`).toString('base64') };
    // The monitoring function takes the platform's token the runtime made (docs/monitoring.md).
    const platform = { authorization: `Bearer ${readFileSync(join(front.secretsDir, 'monitor-token'), 'utf8').trim()}` };
    expect(
      (await fetch(`${rt.gatewayUrl}/function/backup/run`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"kind":"logical"}' }))
        .status,
    ).toBe(401);
    const running = fetch(`${rt.gatewayUrl}/function/backup/run`, {
      method: 'POST',
      headers: { ...op, 'content-type': 'application/json' },
      body: '{"kind":"logical"}',
    });
    // While it runs, the status JSON of the monitoring function shows its progress.
    type Running = { kind: string; bytesDone: number; tablesDone: number; tablesTotal: number; rate: number; etaS: number | null };
    let seen: Running | null = null;
    let settled = false;
    void running.finally(() => (settled = true));
    while (!settled && !(seen && seen.bytesDone > 0)) {
      const st = (await (await fetch(`${rt.gatewayUrl}/function/monitor/status`, { headers: platform })).json()) as { backup: { running: Running | null } };
      if (st.backup.running) seen = st.backup.running;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(seen, 'progress seen while the backup ran').toMatchObject({
      kind: 'logical',
      bytesDone: expect.any(Number),
      tablesTotal: expect.any(Number),
      rate: expect.any(Number),
    });
    expect(seen!.bytesDone).toBeGreaterThan(0);
    expect(seen!.tablesTotal).toBeGreaterThan(40);
    const res = await running;
    const body = (await res.json()) as {
      backups: Array<{ ok: boolean; objectKey: string; archiveId: string; error?: string }>;
      checks: Array<{ check: string; ok: boolean; message: string }>;
    };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.backups[0]!.ok).toBe(true);
    expect(body.backups[0]!.objectKey).toMatch(/^t-fn\/logical\/\d{4}-\d{2}-\d{2}\/logical-\d{8}T\d{6}Z-\d+\.dump\.sm4$/);
    expect(body.checks.map((c) => [c.check, c.ok])).toEqual([
      ['integrity', true],
      ['listing', true],
      ['drill', true],
      ['freshness', true],
    ]);
    // Encrypted at rest: the stored bytes are not a pg_dump archive (which starts with "PGDMP").
    const store = openStore(cfg.store!);
    const head = (await readSmall(store, body.backups[0]!.objectKey))!;
    expect(head.subarray(16, 21).toString('latin1')).not.toBe('PGDMP');
    expect((await statArchive(store, body.backups[0]!.objectKey))!.meta.encryption).toBe('sm4-ctr');

    const st = (await (await fetch(`${rt.gatewayUrl}/function/backup/status`, { headers: op })).json()) as {
      lastLogical: { archiveId: string };
      fresh: boolean;
      running: unknown;
      checks: unknown[];
    };
    expect(st.lastLogical.archiveId).toBe(body.backups[0]!.archiveId);
    expect(st.fresh).toBe(true);
    expect(st.running).toBeNull();
    const monitor = (await (await fetch(`${rt.gatewayUrl}/function/monitor/status`, { headers: platform })).json()) as {
      backup: { lastLogical: { archiveId: string; sizeBytes: number }; fresh: boolean; running: unknown; lastCheck: { check: string; ok: boolean } };
    };
    expect(monitor.backup).toMatchObject({
      lastLogical: { archiveId: body.backups[0]!.archiveId, sizeBytes: expect.any(Number) },
      fresh: true,
      running: null,
      lastCheck: { check: 'freshness', ok: true },
    });
    const list = (await (await fetch(`${rt.gatewayUrl}/function/backup/archives?kind=logical&status=good`, { headers: op })).json()) as {
      archives: Array<{ archiveId: string; encryption: string }>;
    };
    expect(list.archives[0]!.archiveId).toBe(body.backups[0]!.archiveId);
    expect(list.archives[0]!.encryption).toBe('sm4-ctr');
    // The console shows it (port 8884's /status.html).
    const page = await (await fetch(`${rt.gatewayUrl}/function/web/status.html`)).text();
    const failed = Number((await db.query(`SELECT count(*) AS n FROM backup_check WHERE ok = false AND checked_at > now() - interval '24 hours'`)).rows[0].n);
    expect(page).toContain(failed ? `<p class="state bad">备份：近 24 小时有 ${failed} 项校验失败</p>` : '<p class="state ok">备份：正常</p>');
    expect(page).toMatch(/<dt>最近逻辑备份<\/dt><dd>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}（[\d.]+ MB）<\/dd>/);
    expect(page).toContain('<dt>正在进行</dt><dd>无</dd>');
    expect(page).toContain('时效性检查：<span class="ok">通过</span>');
    const bad = await fetch(`${rt.gatewayUrl}/function/backup/run`, {
      method: 'POST',
      headers: { ...op, 'content-type': 'application/json' },
      body: '{"kind":"everything"}',
    });
    expect(bad.status).toBe(400);
  }, 120_000);
});
