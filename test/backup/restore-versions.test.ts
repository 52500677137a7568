/**
 * Record versions after a restore (docs/backup.md "Versions after a restore"), end to end: the real
 * PostgreSQL of the test run, a real S3 store, `make restore` as the operator's process, push to the
 * national platform simulator (which stores each (org, resource, id, version) once, docs/uplink.md §6).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3, type RunningS3 } from '../../infra/dev/s3.js';
import { samplePatient } from '../../infra/simulators/his.js';
import { startPlatformSimulator, type PlatformHandle } from '../../infra/simulators/platform.js';
import { emrPatientInfo } from '../../schemas/index.js';
import { listKeys, loadBackupConfig, openStore, runBackup } from '../../shared/backup/index.js';
import { retireRecord, upsertRecord } from '../../shared/ingest/index.js';
import { recordFate } from '../../shared/ingest/receipts.js';
import { RESTORE_VERSION_GAP } from '../../shared/ingest/restore-gap.js';
import { piiFromDir, setPii } from '../../shared/pii/index.js';
import { pushRun } from '../../shared/uplink/push.js';
import { backupCli, backupStoreEnv } from '../setup/backup-store.js';
import { databaseUrl, privateDatabase } from '../setup/db.js';

let dir: string;
let s3: RunningS3;
let platform: PlatformHandle;
const target = `cdc_rv_t_${process.pid}`;

const s3Env = (prefix: string) => backupStoreEnv(s3, prefix);

const cli = (args: string[], env: Record<string, string>) => backupCli(args, { DATABASE_URL: databaseUrl(), ...env });

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: databaseUrl() });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cdc-restore-versions-'));
  s3 = await startS3({ dir: join(dir, 's3') });
  platform = await startPlatformSimulator({ role: 'national' });
}, 120_000);

afterAll(async () => {
  setPii(undefined);
  await admin(`DROP DATABASE IF EXISTS ${target} WITH (FORCE)`).catch(() => undefined);
  await platform?.close();
  await s3?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('a record updated after the archive, on a restored front', () => {
  it('the HIS resend and a new update reach the platform as newer versions, not as duplicates of what the old front sent', async () => {
    const keys = join(dir, 'secrets');
    mkdirSync(keys, { recursive: true, mode: 0o700 });
    writeFileSync(
      join(keys, 'pii-field-keys'),
      JSON.stringify({ current: 'krv000001', keys: [{ id: 'krv000001', key: randomBytes(16).toString('base64') }] }),
      {
        mode: 0o600,
      },
    );
    writeFileSync(join(keys, 'pii-hash-key'), `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
    setPii(piiFromDir(keys));
    const org = `4${randomBytes(4).readUInt32BE() % 100_000_000}`.padEnd(9, '0');
    const zp1 = (addr: string) => ({ ...samplePatient({ orgCode: org, id: 'ZP1', seed: 41 }), currentAddrDetail: addr });
    const zp2 = samplePatient({ orgCode: org, id: 'ZP2', seed: 42 });
    const zp3 = (addr: string) => ({ ...samplePatient({ orgCode: org, id: 'ZP3', seed: 43 }), currentAddrDetail: addr });
    const ctx = () => ({ callId: null, test: false, now: new Date() });
    const push = async (db: pg.Pool) => {
      const r = await pushRun(db, { orphans: false, orphanReleaseAfterH: 48, env: { NATIONAL_URL: platform.url }, codes: async () => undefined });
      return r.results.find((x) => x.destination === 'national');
    };
    const onPlatform = (id: string) =>
      platform
        .records()
        .filter((x) => x.orgCode === org && x.id === id)
        .map((x) => ({ version: x.version, addr: String((x.payload as Record<string, unknown>).currentAddrDetail ?? '') }))
        .sort((a, b) => a.version - b.version);

    const old = await privateDatabase('cdc_rv_old');
    try {
      expect((await upsertRecord(old.db, emrPatientInfo, zp1('addr-v1'), ctx())).version).toBe(1);
      expect((await upsertRecord(old.db, emrPatientInfo, zp2, ctx())).version).toBe(1);
      await push(old.db);
      const b = await runBackup(
        old.db,
        old.url,
        loadBackupConfig(s3Env('rv'), () => undefined),
        'logical',
      );
      expect(b.ok, b.error).toBe(true);
      // After the archive the old front sends v2 and v3, then is lost.
      expect((await upsertRecord(old.db, emrPatientInfo, zp1('addr-v2'), ctx())).version).toBe(2);
      await push(old.db);
      expect((await upsertRecord(old.db, emrPatientInfo, zp1('addr-v3'), ctx())).version).toBe(3);
      await push(old.db);
      expect(onPlatform('ZP1')).toEqual([
        { version: 1, addr: 'addr-v1' },
        { version: 2, addr: 'addr-v2' },
        { version: 3, addr: 'addr-v3' },
      ]);
      // A record the old front first received after the archive: v1 and v2 reach the platform.
      expect((await upsertRecord(old.db, emrPatientInfo, zp3('addr-v1'), ctx())).version).toBe(1);
      expect((await upsertRecord(old.db, emrPatientInfo, zp3('addr-v2'), ctx())).version).toBe(2);
      await push(old.db);
      expect(onPlatform('ZP3').map((x) => x.version)).toEqual([1, 2]);

      const r = await cli(['restore', '--target', target, '--archive', b.objectKey], { ...s3Env('rv'), CDC_SECRETS_DIR: keys });
      expect(r.code, r.stderr + r.stdout).toBe(0);
      expect(r.stdout).toContain(`record versions: 2 record(s) continue from their version + ${RESTORE_VERSION_GAP}`);
    } finally {
      await old.drop();
    }

    const u = new URL(databaseUrl());
    u.pathname = `/${target}`;
    const db = new pg.Pool({ connectionString: u.toString(), max: 3 });
    db.on('error', () => undefined);
    try {
      // A record not written since the restore: its content was sent, under its version less the gap.
      expect(await recordFate(db, emrPatientInfo, org, 'ZP2')).toMatchObject({ fate: 'forwarded', version: 1 + RESTORE_VERSION_GAP });
      expect(await recordFate(db, emrPatientInfo, org, 'ZP1')).toMatchObject({ fate: 'forwarded', version: 1 + RESTORE_VERSION_GAP });
      const before = platform.stats().duplicates;
      // The HIS resends the current state (runbook step 6), then sends a real new update.
      const resent = await upsertRecord(db, emrPatientInfo, zp1('addr-v3'), ctx());
      expect(resent).toMatchObject({ status: 'updated', version: 2 + RESTORE_VERSION_GAP });
      await push(db);
      const v4 = await upsertRecord(db, emrPatientInfo, zp1('addr-v4'), ctx());
      expect(v4).toMatchObject({ status: 'updated', version: 3 + RESTORE_VERSION_GAP });
      await push(db);
      expect(onPlatform('ZP1')).toEqual([
        { version: 1, addr: 'addr-v1' },
        { version: 2, addr: 'addr-v2' },
        { version: 3, addr: 'addr-v3' },
        { version: 2 + RESTORE_VERSION_GAP, addr: 'addr-v3' },
        { version: 3 + RESTORE_VERSION_GAP, addr: 'addr-v4' },
      ]);
      expect(platform.stats().duplicates).toBe(before);
      // The record the archive does not hold: resent, it starts above the gap, and its retirement
      // (作废) reaches the platform as newer than what the old front sent.
      expect(await upsertRecord(db, emrPatientInfo, zp3('addr-v2'), ctx())).toMatchObject({ status: 'created', version: 1 + RESTORE_VERSION_GAP });
      await push(db);
      expect(await retireRecord(db, emrPatientInfo, { orgCode: org, id: 'ZP3' }, ctx())).toMatchObject({ status: 'retired', version: 2 + RESTORE_VERSION_GAP });
      await push(db);
      expect(onPlatform('ZP3').map((x) => x.version)).toEqual([1, 2, 1 + RESTORE_VERSION_GAP, 2 + RESTORE_VERSION_GAP]);
      expect(platform.stats().duplicates).toBe(before);
      const fate = await recordFate(db, emrPatientInfo, org, 'ZP1');
      expect(fate).toMatchObject({ fate: 'forwarded', version: 3 + RESTORE_VERSION_GAP });
      const statuses = await db.query<{ version: number; status: string }>(
        `SELECT version, status FROM uplink_delivery WHERE org_code = $1 AND record_id = 'ZP1' ORDER BY version`,
        [org],
      );
      expect(statuses.rows.filter((x) => x.version > RESTORE_VERSION_GAP).map((x) => x.status)).toEqual(['accepted', 'accepted']);
    } finally {
      await db.end();
    }
  }, 180_000);
});

/** The rec_version of one record and the version base of a database on this server. */
async function versionsIn(database: string, org: string, id: string): Promise<{ version: number; base: number }> {
  const u = new URL(databaseUrl());
  u.pathname = `/${database}`;
  const c = new pg.Client({ connectionString: u.toString() });
  await c.connect();
  try {
    const v = await c.query<{ v: number }>('SELECT rec_version AS v FROM emr_patient_info WHERE org_code = $1 AND id = $2', [org, id]);
    const b = await c.query<{ base: number }>('SELECT base FROM record_version_base WHERE id = 1');
    return { version: v.rows[0]!.v, base: b.rows[0]?.base ?? 0 };
  } finally {
    await c.end();
  }
}

describe('one archive restored twice (the first restored front lost before an archive of its own)', () => {
  it("the second restore's versions are one gap above the first's: each restore marks its band in the store, the next goes above", async () => {
    const org = `5${randomBytes(4).readUInt32BE() % 100_000_000}`.padEnd(9, '0');
    const ctx = () => ({ callId: null, test: false, now: new Date() });
    const src = await privateDatabase('cdc_rv_twice');
    const first = `cdc_rv_t1_${process.pid}`;
    const second = `cdc_rv_t2_${process.pid}`;
    try {
      setPii(piiFromDir(join(dir, 'secrets')));
      expect((await upsertRecord(src.db, emrPatientInfo, samplePatient({ orgCode: org, id: 'TW1', seed: 51 }), ctx())).version).toBe(1);
      const b = await runBackup(
        src.db,
        src.url,
        loadBackupConfig(s3Env('rv-twice'), () => undefined),
        'logical',
      );
      expect(b.ok, b.error).toBe(true);
      const env = { ...s3Env('rv-twice'), CDC_SECRETS_DIR: join(dir, 'secrets') };
      const r1 = await cli(['restore', '--target', first, '--archive', b.objectKey], env);
      expect(r1.code, r1.stderr + r1.stdout).toBe(0);
      expect(r1.stdout).toContain(
        `record versions: 1 record(s) continue from their version + ${RESTORE_VERSION_GAP}, and new records start above ${RESTORE_VERSION_GAP}`,
      );
      const r2 = await cli(['restore', '--target', second, '--archive', b.objectKey], env);
      expect(r2.code, r2.stderr + r2.stdout).toBe(0);
      expect(r2.stdout).toContain(
        `record versions: 1 record(s) continue from their version + ${2 * RESTORE_VERSION_GAP}, and new records start above ${2 * RESTORE_VERSION_GAP}`,
      );
      expect(await versionsIn(first, org, 'TW1')).toEqual({ version: 1 + RESTORE_VERSION_GAP, base: RESTORE_VERSION_GAP });
      expect(await versionsIn(second, org, 'TW1')).toEqual({ version: 1 + 2 * RESTORE_VERSION_GAP, base: 2 * RESTORE_VERSION_GAP });
      const markers = (await listKeys(openStore(loadBackupConfig(s3Env('rv-twice'), () => undefined).store!), 'rv-twice/restores/')).sort();
      expect(markers).toHaveLength(2);
    } finally {
      setPii(undefined);
      await src.drop();
      for (const t of [first, second]) await admin(`DROP DATABASE IF EXISTS ${t} WITH (FORCE)`).catch(() => undefined);
    }
  }, 180_000);
});

describe('move-versions: a database restored otherwise (a physical archive unpacked and started)', () => {
  it('moves the versions and the base above every marked band, fixes the ledger, refuses a connected front and a second run unless --force', async () => {
    const org = `6${randomBytes(4).readUInt32BE() % 100_000_000}`.padEnd(9, '0');
    const ctx = () => ({ callId: null, test: false, now: new Date() });
    const src = await privateDatabase('cdc_rv_move');
    const name = new URL(src.url).pathname.slice(1);
    const target = `cdc_rv_mv_${process.pid}`;
    try {
      setPii(piiFromDir(join(dir, 'secrets')));
      expect((await upsertRecord(src.db, emrPatientInfo, samplePatient({ orgCode: org, id: 'MV1', seed: 61 }), ctx())).version).toBe(1);
      const b = await runBackup(
        src.db,
        src.url,
        loadBackupConfig(s3Env('rv-move'), () => undefined),
        'logical',
      );
      expect(b.ok, b.error).toBe(true);
      // An earlier make restore of the same archive took the first band.
      const env = { ...s3Env('rv-move'), CDC_SECRETS_DIR: join(dir, 'secrets') };
      const r = await cli(['restore', '--target', target, '--archive', b.objectKey], env);
      expect(r.code, r.stderr + r.stdout).toBe(0);
      // The source stands for the database a physical archive gives back: its versions as they were,
      // and the archive `running` in its ledger, as in its own snapshot.
      await src.db.query(`UPDATE backup_archive SET status = 'running', finished_at = NULL WHERE archive_id = $1`, [b.archiveId]);
      const busy = await cli(['move-versions', '--target', name, '--archive', b.objectKey], env);
      expect(busy.code).toBe(1);
      expect(busy.stderr).toContain(`are connected to ${name}: move the versions before the front starts on it`);
      await src.db.end();
      const mv = await cli(['move-versions', '--target', name, '--archive', b.objectKey], env);
      expect(mv.code, mv.stderr + mv.stdout).toBe(0);
      expect(mv.stdout).toContain(`record versions: 1 record(s) continue from their version + ${2 * RESTORE_VERSION_GAP}`);
      expect(mv.stdout).toContain(`ledger: archive ${b.archiveId} recorded good`);
      expect(await versionsIn(name, org, 'MV1')).toEqual({ version: 1 + 2 * RESTORE_VERSION_GAP, base: 2 * RESTORE_VERSION_GAP });
      const again = await cli(['move-versions', '--target', name, '--archive', b.objectKey], env);
      expect(again.code).toBe(1);
      expect(again.stderr).toContain(`the versions of ${name} were already moved for ${b.objectKey}`);
      expect(await versionsIn(name, org, 'MV1')).toEqual({ version: 1 + 2 * RESTORE_VERSION_GAP, base: 2 * RESTORE_VERSION_GAP });
      const forced = await cli(['move-versions', '--target', name, '--archive', b.objectKey, '--force'], env);
      expect(forced.code, forced.stderr + forced.stdout).toBe(0);
      expect(await versionsIn(name, org, 'MV1')).toEqual({ version: 1 + 3 * RESTORE_VERSION_GAP, base: 3 * RESTORE_VERSION_GAP });
      const u = new URL(src.url);
      const c = new pg.Client({ connectionString: u.toString() });
      await c.connect();
      try {
        expect((await c.query('SELECT status FROM backup_archive WHERE archive_id = $1', [b.archiveId])).rows[0].status).toBe('good');
      } finally {
        await c.end();
      }
    } finally {
      setPii(undefined);
      await src.drop().catch(() => undefined);
      for (const t of [name, target]) await admin(`DROP DATABASE IF EXISTS ${t} WITH (FORCE)`).catch(() => undefined);
    }
  }, 180_000);
});
