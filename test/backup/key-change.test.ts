/**
 * The backup key changed while the front runs (docs/backup.md "Encryption at rest"), through the
 * runtime as `make up` runs the backup function: a backup-sm4-key created after the replica started is
 * used by the next archive, and a key put in its place (a rotation) by the one after — no restart, and
 * never the key the replica started with.
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3, type RunningS3 } from '../../infra/dev/s3.js';
import { bootStack, type Booted } from '../../infra/runtime/boot.js';
import { manifestKey, openStore, parseManifest, readSmall } from '../../shared/backup/index.js';
import { sm4Fingerprint } from '../../shared/backup/tools.js';
import { backupStackYaml } from '../setup/backup-store.js';
import { privateDatabase } from '../setup/db.js';

const root = resolve('.');
let dir: string;
let s3: RunningS3;
let front: Booted;
let drop: () => Promise<void>;
let db: pg.Pool;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cdc-backup-key-'));
  s3 = await startS3({ dir: join(dir, 's3') });
  const p = await privateDatabase('bkkey');
  drop = p.drop;
  db = p.db;
  front = await bootStack({
    name: 'backup-key',
    databaseUrl: p.url,
    // As in production: the runtime makes no backup-sm4-key, the operator does (docs/backup.md).
    env: { CDC_ENV: 'production' },
    secrets: { 'backup-s3-access-key': s3.accessKey, 'backup-s3-secret-key': s3.secretKey },
    stackYaml: backupStackYaml(s3, 't-key'),
    frontDefaults: false,
    runtime: { projectDir: root, gateway: { host: '127.0.0.1', port: 0 }, hospital: false },
  });
}, 180_000);
afterAll(async () => {
  await front?.close();
  await drop?.();
  await s3?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A logical archive taken now through the gateway, as `bin/cdc-faas invoke backup --path /run` does: its key and the fingerprint its manifest records. */
async function takeArchive(): Promise<{ objectKey: string; keyFingerprint: string | null }> {
  const rt = front.rt;
  const res = await fetch(`${rt.gatewayUrl}/function/backup/run`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${rt.credentials.user}:${rt.credentials.password}`).toString('base64')}`,
      'content-type': 'application/json',
    },
    body: '{"kind":"logical"}',
  });
  const body = (await res.json()) as { backups: Array<{ ok: boolean; objectKey: string }> };
  expect(res.status, JSON.stringify(body)).toBe(200);
  const objectKey = body.backups[0]!.objectKey;
  const store = openStore({
    endPoint: '127.0.0.1',
    port: s3.port,
    useSSL: false,
    accessKey: s3.accessKey,
    secretKey: s3.secretKey,
    region: 'us-east-1',
    bucket: s3.bucket,
    prefix: 't-key',
  });
  const manifest = parseManifest('m', (await readSmall(store, manifestKey(objectKey)))!.toString('utf8'));
  return { objectKey, keyFingerprint: manifest.keyFingerprint ?? null };
}

describe('backup-sm4-key changed while the front runs', () => {
  it('a key created after the start encrypts the next archive; a key put in its place, the one after; a key gone is said once, as an alert', {
    timeout: 180_000,
  }, async () => {
    const first = await takeArchive();
    expect(first.objectKey).not.toMatch(/\.sm4$/);
    expect(first.keyFingerprint).toBeNull();

    const keyFile = join(front.secretsDir, 'backup-sm4-key');
    const one = Buffer.from('0123456789abcdeffedcba9876543210', 'hex');
    writeFileSync(keyFile, `${one.toString('hex')}\n`, { mode: 0o600 });
    const second = await takeArchive();
    expect(second.objectKey).toMatch(/\.sm4$/);
    expect(second.keyFingerprint).toBe(sm4Fingerprint(one));

    // A rotation as docs/keys.md writes it: the new key into a file of its own, then moved in place.
    const two = Buffer.from('fedcba98765432100123456789abcdef', 'hex');
    writeFileSync(`${keyFile}.new`, `${two.toString('hex')}\n`, { mode: 0o600 });
    renameSync(`${keyFile}.new`, keyFile);
    const third = await takeArchive();
    expect(third.keyFingerprint).toBe(sm4Fingerprint(two));

    // The key gone (a rotation done as rm, then cp): the next archive goes out unencrypted, and that is said once, as an alert.
    rmSync(keyFile);
    const fourth = await takeArchive();
    expect(fourth.objectKey).not.toMatch(/\.sm4$/);
    const alerts = await db.query<{ message: string }>("SELECT message FROM alert_event WHERE message LIKE '%backup-sm4-key%'");
    expect(alerts.rows).toHaveLength(1);
    expect(alerts.rows[0]!.message).toMatch(/backup-sm4-key 已不存在/);
    await takeArchive();
    expect((await db.query("SELECT 1 FROM alert_event WHERE message LIKE '%backup-sm4-key%'")).rowCount).toBe(1);
  });
});
