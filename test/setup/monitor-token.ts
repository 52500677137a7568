/**
 * A secrets folder holding a monitoring token, for tests that drive the monitor function in
 * process: sets CDC_SECRETS_DIR (call before the function's init) and returns the header that
 * carries the token, as the national platform sends it.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

export function monitorTokenDir(): { dir: string; token: string; headers: Record<string, string> } {
  const dir = mkdtempSync(join(tmpdir(), 'cdc-monitor-'));
  const token = randomBytes(32).toString('base64url');
  writeFileSync(join(dir, 'monitor-token'), token + '\n', { mode: 0o600 });
  process.env.CDC_SECRETS_DIR = dir;
  return { dir, token, headers: { authorization: `Bearer ${token}` } };
}
