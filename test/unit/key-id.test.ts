// New field keys get random ids (shared/pii/key-id.ts, docs/keys.md): bin/cdc-keys init and rotate
// never count up from k1, so a front set up again on a new machine cannot seal under the id of the key
// its restored data was sealed with.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { initKeys, readKeyFile, rotateKey } from '../../shared/pii/rotate.js';

const dirs: string[] = [];
const fresh = () => {
  const d = mkdtempSync(join(tmpdir(), 'key-id-'));
  dirs.push(d);
  return join(d, 'secrets');
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('field key ids', () => {
  it('init makes a key of a random id; two installations do not share it', () => {
    const a = fresh();
    const b = fresh();
    initKeys(a);
    initKeys(b);
    const ida = readKeyFile(a).current;
    expect(ida).toMatch(/^k[0-9a-f]{8}$/);
    expect(readKeyFile(b).current).not.toBe(ida);
  });

  it('rotate adds a key of a new random id (or the id asked for), never one the file has', () => {
    const d = fresh();
    initKeys(d);
    const first = readKeyFile(d).current;
    const r = rotateKey(d);
    expect(r).toMatchObject({ previous: first });
    expect(r.current).toMatch(/^k[0-9a-f]{8}$/);
    expect(r.current).not.toBe(first);
    expect(rotateKey(d, 'k2').current).toBe('k2');
    expect(() => rotateKey(d, first)).toThrow(/never reused/);
    expect(readKeyFile(d).keys.map((k) => k.id)).toEqual([first, r.current, 'k2']);
  });
});
