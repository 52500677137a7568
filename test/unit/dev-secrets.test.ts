/**
 * The development secrets the runtime makes on first start (infra/runtime/auth.ts; docs/keys.md
 * "Development", docs/backup.md "Encryption at rest"): made once per secrets folder, mode 0600, never
 * in production.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureCredentials } from '../../infra/runtime/auth.js';
import { parseFieldKeyFile } from '../../shared/pii/index.js';

const dirs: string[] = [];
const fresh = () => {
  const d = mkdtempSync(join(tmpdir(), 'cdc-dev-secrets-'));
  dirs.push(d);
  return join(d, 'secrets');
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('the backup key', () => {
  it('development: backup-sm4-key is made once (32 hex digits, 0600) and then kept', () => {
    const s = fresh();
    ensureCredentials(s, { development: true });
    const file = join(s, 'backup-sm4-key');
    const first = readFileSync(file, 'utf8');
    expect(first).toMatch(/^[0-9a-f]{32}\n$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    ensureCredentials(s, { development: true });
    expect(readFileSync(file, 'utf8')).toBe(first);
  });

  it('production: no backup-sm4-key is made (the operator provides it)', () => {
    const s = fresh();
    ensureCredentials(s, { development: false });
    expect(() => statSync(join(s, 'backup-sm4-key'))).toThrow(/ENOENT/);
  });

  it('an existing backup-sm4-key is never replaced', () => {
    const s = fresh();
    ensureCredentials(s, { development: false });
    writeFileSync(join(s, 'backup-sm4-key'), 'ffeeddccbbaa99887766554433221100\n', { mode: 0o600 });
    ensureCredentials(s, { development: true });
    expect(readFileSync(join(s, 'backup-sm4-key'), 'utf8')).toBe('ffeeddccbbaa99887766554433221100\n');
  });
});

describe('the development field keys', () => {
  const fieldKeys = (s: string) => JSON.parse(readFileSync(join(s, 'pii-field-keys'), 'utf8')) as { current: string; keys: Array<{ id: string }> };

  it('get a key id of their own (k + 8 hex digits), never a fixed one: two installations never share an id', () => {
    const a = fresh();
    const b = fresh();
    ensureCredentials(a, { development: true });
    ensureCredentials(b, { development: true });
    const ka = fieldKeys(a);
    const kb = fieldKeys(b);
    expect(ka.current).toMatch(/^k[0-9a-f]{8}$/);
    expect(ka.keys.map((k) => k.id)).toEqual([ka.current]);
    expect(kb.current).not.toBe(ka.current);
    // The key file as shared/pii reads it: the id is a valid key id.
    expect(() => parseFieldKeyFile(readFileSync(join(a, 'pii-field-keys'), 'utf8'))).not.toThrow();
  });

  it('an existing file (k1, as earlier versions made it) is kept as it is', () => {
    const s = fresh();
    ensureCredentials(s, { development: false });
    const old = JSON.stringify({ current: 'k1', keys: [{ id: 'k1', key: Buffer.alloc(16, 3).toString('base64') }] });
    writeFileSync(join(s, 'pii-field-keys'), old, { mode: 0o600 });
    ensureCredentials(s, { development: true });
    expect(readFileSync(join(s, 'pii-field-keys'), 'utf8')).toBe(old);
  });
});
