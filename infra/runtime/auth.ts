/**
 * Basic auth for /system/*, from the secret files OpenFaaS uses (basic-auth-user,
 * basic-auth-password). Created on first start when absent: user "admin", a random password, 0600 —
 * the installation's single sign-on key his-sso-key (docs/card-form.md), and the monitoring port's
 * token monitor-token (docs/monitoring.md) and the configuration port's config-token
 * (docs/config-bundles.md); in development also the personal-data keys pii-field-keys and
 * pii-hash-key (docs/keys.md) and the backups' backup-sm4-key (docs/backup.md).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { newKeyId } from '../../shared/pii/key-id.js';

export interface Credentials {
  user: string;
  password: string;
}

export function ensureCredentials(secretsDir: string, o: { development?: boolean } = {}): Credentials {
  mkdirSync(secretsDir, { recursive: true, mode: 0o700 });
  const userFile = join(secretsDir, 'basic-auth-user');
  const passFile = join(secretsDir, 'basic-auth-password');
  if (!existsSync(userFile)) writeFileSync(userFile, 'admin\n', { mode: 0o600 });
  randomSecret(passFile, 24);
  // The key the HIS signs its single sign-on tokens with (docs/card-form.md): made once per
  // installation, like the gateway's password; the HIS vendor is given this file's content.
  randomSecret(join(secretsDir, 'his-sso-key'));
  // The national platform's tokens for the monitoring port (docs/monitoring.md) and the configuration
  // port (docs/config-bundles.md): one each per installation.
  randomSecret(join(secretsDir, 'monitor-token'));
  randomSecret(join(secretsDir, 'config-token'));
  // Development only: the personal-data field keys and hash key (docs/keys.md). In production the
  // operator makes them (bin/cdc-keys init) and keeps a copy; a function started without them fails.
  if (o.development) {
    fieldKeys(join(secretsDir, 'pii-field-keys'));
    randomSecret(join(secretsDir, 'pii-hash-key'));
    // The backups' SM4 key (docs/backup.md "Encryption at rest"): a physical archive is never written
    // without it. In production the operator provides it and keeps a copy apart from the store.
    hexSecret(join(secretsDir, 'backup-sm4-key'), 16);
  }
  return readCredentials(secretsDir);
}

/**
 * A field key file with one random SM4 key (the format of shared/pii FieldKeyFile), made once. Its id
 * is random too (`k` and 8 hex digits): a front set up again on a new machine must not seal under the
 * id of the key its restored data was sealed with, or the two keys could never be told apart
 * (docs/keys.md "Development", docs/backup.md "Restore"). An existing file (`k1`, as made before) is kept.
 */
function fieldKeys(file: string): void {
  if (existsSync(file)) return;
  const id = newKeyId();
  const key = { id, key: randomBytes(16).toString('base64'), created: new Date().toISOString() };
  writeFileSync(file, JSON.stringify({ current: id, keys: [key] }, null, 2) + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
}

/** A random secret file (base64url, mode 0600), made once: an existing one is kept. */
function randomSecret(file: string, bytes = 32): void {
  if (existsSync(file)) return;
  writeFileSync(file, randomBytes(bytes).toString('base64url') + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
}

/** A random secret file of hex digits (mode 0600), made once: an existing one is kept. */
function hexSecret(file: string, bytes: number): void {
  if (existsSync(file)) return;
  writeFileSync(file, randomBytes(bytes).toString('hex') + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
}

export function readCredentials(secretsDir: string): Credentials {
  const read = (f: string) => readFileSync(join(secretsDir, f), 'utf8').trim();
  return { user: read('basic-auth-user'), password: read('basic-auth-password') };
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Constant-time check of an Authorization header (hashing first makes the lengths equal). */
export function checkBasicAuth(header: string | undefined, creds: Credentials): boolean {
  if (!header?.startsWith('Basic ')) return false;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i < 0) return false;
  const userOk = timingSafeEqual(digest(decoded.slice(0, i)), digest(creds.user));
  const passOk = timingSafeEqual(digest(decoded.slice(i + 1)), digest(creds.password));
  return userOk && passOk;
}
