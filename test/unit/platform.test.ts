// What the front needs from its Node.js (shared/platform, docs/runtime.md "Node.js and its OpenSSL").
import { getCiphers, getHashes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { assertPlatform, currentPlatform, platformProblems } from '../../shared/platform/index.js';

// What Debian bookworm's node 20 reports: its OpenSSL 3.0 has SM4 without GCM.
const bookworm = {
  node: '20.20.2',
  openssl: '3.0.19',
  ciphers: ['aes-256-gcm', 'sm4', 'sm4-cbc', 'sm4-cfb', 'sm4-ctr', 'sm4-ecb', 'sm4-ofb'],
  hashes: ['sha256', 'sm3'],
};

describe('platformProblems', () => {
  it('finds nothing missing in the Node.js the tests run on', () => {
    expect(platformProblems(currentPlatform())).toEqual([]);
    expect(() => assertPlatform()).not.toThrow();
    expect(getCiphers()).toContain('sm4-gcm');
    expect(getHashes()).toContain('sm3');
  });

  it('names an old node and every algorithm its OpenSSL lacks', () => {
    expect(platformProblems(bookworm)).toEqual(['Node.js 20.20.2 is older than 24', 'its OpenSSL 3.0.19 lacks sm4-gcm']);
    expect(platformProblems({ ...bookworm, node: '24.22.3', ciphers: [], hashes: [] })).toEqual(['its OpenSSL 3.0.19 lacks sm4-cbc, sm4-gcm, sm4-ctr, sm3']);
    expect(platformProblems({ ...bookworm, node: 'x' })[0]).toBe('Node.js x is older than 24');
  });

  it('refuses with the way out', () => {
    expect(() => assertPlatform(bookworm)).toThrow(
      /cannot run on this Node\.js .*older than 24; its OpenSSL 3\.0\.19 lacks sm4-gcm\. Run it with Node\.js 24 LTS/,
    );
  });
});
