// A function's secret view (infra/runtime/secret-view.ts, docs/runtime.md "Secrets") in a data folder
// that was copied or moved: its links lead to that folder's own secrets, never the original's — a
// copy started beside the original must not write to the original's database with its keys — and a
// link an older runtime made absolute is re-pointed.
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { secretView } from '../../infra/runtime/secret-view.js';

const root = mkdtempSync(join(tmpdir(), 'secret-view-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function secrets(name: string, db: string): string {
  const dir = join(root, name, 'secrets');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'cdc-database-url'), db, { mode: 0o600 });
  writeFileSync(join(dir, 'pii-field-keys'), `${name} keys`, { mode: 0o600 });
  return dir;
}

describe('secret view of a copied data folder', () => {
  it('reads the copy’s own files after a cp -a, and after the original is gone', () => {
    const a = secrets('a', 'postgres://a/db');
    const viewA = secretView(a, 'patient', ['cdc-database-url', 'pii-field-keys'], undefined);
    expect(readFileSync(join(viewA, 'cdc-database-url'), 'utf8')).toBe('postgres://a/db');
    // cp -a keeps links as they are.
    const b = join(root, 'b', 'secrets');
    cpSync(a, b, { recursive: true, verbatimSymlinks: true });
    writeFileSync(join(b, 'cdc-database-url'), 'postgres://b/db');
    const viewB = secretView(b, 'patient', ['cdc-database-url', 'pii-field-keys'], undefined);
    expect(readFileSync(join(viewB, 'cdc-database-url'), 'utf8')).toBe('postgres://b/db');
    // The original gone: the copy's links still lead to its own files (copied from the original's).
    rmSync(join(root, 'a'), { recursive: true, force: true });
    expect(readFileSync(join(viewB, 'pii-field-keys'), 'utf8')).toBe('a keys');
  });

  it('re-points a link an older runtime made absolute', () => {
    const c = secrets('c', 'postgres://c/db');
    const d = secrets('d', 'postgres://d/db');
    const viewD = secretView(d, 'push', ['cdc-database-url'], undefined);
    // As an older runtime left it after the folder was copied from c: an absolute link to c's file.
    rmSync(join(viewD, 'cdc-database-url'));
    symlinkSync(join(c, 'cdc-database-url'), join(viewD, 'cdc-database-url'));
    expect(readFileSync(join(viewD, 'cdc-database-url'), 'utf8')).toBe('postgres://c/db');
    secretView(d, 'push', ['cdc-database-url'], undefined);
    expect(readlinkSync(join(viewD, 'cdc-database-url'))).toBe(join('..', '..', 'cdc-database-url'));
    expect(readFileSync(join(viewD, 'cdc-database-url'), 'utf8')).toBe('postgres://d/db');
  });
});

describe('an optional secret created after the replica started', () => {
  it('named exactly, is read through the view as soon as it exists; under a pattern, only after the next start', () => {
    const e = secrets('e', 'postgres://e/db');
    const annotation = 'backup-sm4-key uplink-*';
    const view = secretView(e, 'backup', ['cdc-database-url'], annotation);
    expect(() => readFileSync(join(view, 'backup-sm4-key'), 'utf8')).toThrow(/ENOENT/);
    expect(readdirSync(view).sort()).toEqual(['backup-sm4-key', 'cdc-database-url']);
    writeFileSync(join(e, 'backup-sm4-key'), '0123456789abcdeffedcba9876543210\n', { mode: 0o600 });
    writeFileSync(join(e, 'uplink-province-key'), 'k', { mode: 0o600 });
    expect(readFileSync(join(view, 'backup-sm4-key'), 'utf8')).toBe('0123456789abcdeffedcba9876543210\n');
    expect(readdirSync(view)).not.toContain('uplink-province-key');
    // A rotation (a new file put in its place) is read the same way.
    writeFileSync(join(e, 'backup-sm4-key.new'), 'fedcba98765432100123456789abcdef\n', { mode: 0o600 });
    renameSync(join(e, 'backup-sm4-key.new'), join(e, 'backup-sm4-key'));
    expect(readFileSync(join(view, 'backup-sm4-key'), 'utf8')).toBe('fedcba98765432100123456789abcdef\n');
    expect(readdirSync(secretView(e, 'backup', ['cdc-database-url'], annotation)).sort()).toEqual([
      'backup-sm4-key',
      'cdc-database-url',
      'uplink-province-key',
    ]);
  });

  it('links no name that is a path: an annotation naming ../ or a folder adds nothing', () => {
    const f = secrets('f', 'postgres://f/db');
    const view = secretView(f, 'backup', ['cdc-database-url'], '../../cdc-database-url .. sub/key .hidden');
    expect(readdirSync(view)).toEqual(['cdc-database-url']);
  });
});
