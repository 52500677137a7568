// SM3, SM4 and SM2 as the uplink envelope uses them: SM3 and SM4 against the examples printed in
// their standards, SM2 against a second, independent implementation (sm-crypto-v2, on
// @noble/curves), in both directions.
import { createCipheriv } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sm2 as other, sm4 as otherSm4 } from 'sm-crypto-v2';
import {
  DEFAULT_UID,
  decodePoint,
  encodePoint,
  generateSm2KeyPair,
  keyId,
  parseSm2PrivateKey,
  parseSm2PublicKey,
  sm2Decrypt,
  sm2Encrypt,
  sm2PrivateKeyPem,
  sm2PublicKeyPem,
  sm2Sign,
  sm2Verify,
  sm2Z,
  sm3,
  sm4CbcDecrypt,
  sm4CbcEncrypt,
  Sm2DecryptError,
} from '../../shared/uplink/sm.js';

describe('SM3 (GB/T 32905-2016, appendix A)', () => {
  it('example 1: "abc"', () => {
    expect(sm3('abc').toString('hex')).toBe('66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0');
  });
  it('example 2: the 512-bit message "abcd" × 16', () => {
    expect(sm3('abcd'.repeat(16)).toString('hex')).toBe('debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732');
  });
});

describe('SM4 (GB/T 32907-2016, appendix A)', () => {
  const key = Buffer.from('0123456789abcdeffedcba9876543210', 'hex');
  const block = (k: Buffer) => {
    const c = createCipheriv('sm4-ecb', k, null);
    c.setAutoPadding(false);
    return c;
  };
  it('example 1: one block under the example key', () => {
    expect(block(key).update(key).toString('hex')).toBe('681edf34d206965e86b3e94f536e4246');
  });
  it('example 2: the same block encrypted 1,000,000 times', () => {
    // About 2 s on the project's machines: cheap enough to keep.
    const c = block(key);
    let b = Buffer.from(key);
    for (let i = 0; i < 1_000_000; i++) b = c.update(b);
    expect(b.toString('hex')).toBe('595298c7c6fd271f0402f804c33d3f66');
  });
  it('CBC with PKCS#7 padding round-trips and the independent implementation agrees', () => {
    const iv = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
    const plain = Buffer.from('传染病监测 uplink batch {"records":[]}', 'utf8');
    const ct = sm4CbcEncrypt(key, iv, plain);
    expect(ct.length % 16).toBe(0);
    expect(sm4CbcDecrypt(key, iv, ct)).toEqual(plain);
    const theirs = otherSm4.decrypt(ct, key, { mode: 'cbc', iv, output: 'array' }) as Uint8Array;
    expect(Buffer.from(theirs)).toEqual(plain);
  });
});

describe('SM2 keys', () => {
  it('reads the PEM that OpenSSL writes and writes the same bytes back', () => {
    const kp = generateSm2KeyPair();
    const key = parseSm2PrivateKey(kp.privateKeyPem);
    expect(parseSm2PublicKey(kp.publicKeyPem)).toEqual(key.pub);
    expect(sm2PublicKeyPem(key.pub)).toBe(kp.publicKeyPem);
    expect(parseSm2PrivateKey(sm2PrivateKeyPem(key)).d).toBe(key.d);
    expect(other.getPublicKeyFromPrivateKey(key.d.toString(16).padStart(64, '0'))).toBe(encodePoint(key.pub).toString('hex'));
    expect(keyId(key.pub)).toMatch(/^[0-9a-f]{64}$/);
  });
  it('refuses a P-256 key and a point off the curve', () => {
    const p256 = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEWiGLg4K6s4XJxXc4M2LGt6r6n4PF
dEnvTgE0GDp5C0TTf1FNmhl6H1F3lO5ZcG7ER5L9Zp5I3EV8p8vuyfeq3Q==
-----END PUBLIC KEY-----`;
    expect(() => parseSm2PublicKey(p256)).toThrow(/not an SM2 key/);
    const bad = encodePoint(parseSm2PrivateKey(generateSm2KeyPair().privateKeyPem).pub);
    bad[64]! ^= 1;
    expect(() => decodePoint(bad)).toThrow(/not on the curve/);
  });
});

describe('SM2 signature (GB/T 32918.2) with the default user id', () => {
  const key = parseSm2PrivateKey(generateSm2KeyPair().privateKeyPem);
  const pubHex = encodePoint(key.pub).toString('hex');
  const dHex = key.d.toString(16).padStart(64, '0');
  const msg = Buffer.from('{"batchId":"national-1","records":[{"id":"P0001","version":1}]}');

  it('hashes the same Z as the independent implementation', () => {
    expect(sm2Z(key.pub).toString('hex')).toBe(Buffer.from(other.getZ(pubHex, DEFAULT_UID)).toString('hex'));
  });
  it('our signature verifies with the independent implementation', () => {
    for (let i = 0; i < 5; i++) {
      const sig = sm2Sign(key, msg);
      expect(other.doVerifySignature(msg, sig.toString('hex'), pubHex, { der: true, hash: true, userId: DEFAULT_UID })).toBe(true);
    }
  });
  it("the independent implementation's signature verifies with ours", () => {
    for (let i = 0; i < 5; i++) {
      const sig = other.doSignature(msg, dHex, { der: true, hash: true, userId: DEFAULT_UID });
      expect(sm2Verify(key.pub, msg, Buffer.from(sig, 'hex'))).toBe(true);
    }
  });
  it('fails for another message, another key, another user id, or a damaged signature', () => {
    const sig = sm2Sign(key, msg);
    expect(sm2Verify(key.pub, Buffer.concat([msg, Buffer.from(' ')]), sig)).toBe(false);
    expect(sm2Verify(parseSm2PrivateKey(generateSm2KeyPair().privateKeyPem).pub, msg, sig)).toBe(false);
    expect(sm2Verify(key.pub, msg, sig, 'ALICE123@YAHOO.COM')).toBe(false);
    const damaged = Buffer.from(sig);
    damaged[damaged.length - 1]! ^= 1;
    expect(sm2Verify(key.pub, msg, damaged)).toBe(false);
    expect(sm2Verify(key.pub, msg, Buffer.from('3006020100020100', 'hex'))).toBe(false);
    expect(sm2Verify(key.pub, msg, Buffer.from('not der'))).toBe(false);
  });
});

describe('SM2 encryption (GB/T 32918.4), C1 ‖ C3 ‖ C2: the batch-key wrap', () => {
  const key = parseSm2PrivateKey(generateSm2KeyPair().privateKeyPem);
  const pubHex = encodePoint(key.pub).toString('hex');
  const dHex = key.d.toString(16).padStart(64, '0');
  const batchKey = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

  it('round-trips with our own code', () => {
    const c = sm2Encrypt(key.pub, batchKey);
    expect(c.length).toBe(65 + 32 + 16);
    expect(sm2Decrypt(key, c)).toEqual(batchKey);
  });
  it('what we wrap, the independent implementation unwraps (it writes C1 without the 04 prefix)', () => {
    const c = sm2Encrypt(key.pub, batchKey);
    expect(Buffer.from(other.doDecrypt(c.subarray(1).toString('hex'), dHex, 1, { output: 'array' }))).toEqual(batchKey);
  });
  it('what the independent implementation wraps, we unwrap', () => {
    const c = other.doEncrypt(batchKey, pubHex, 1);
    expect(sm2Decrypt(key, Buffer.from('04' + c, 'hex'))).toEqual(batchKey);
  });
  it('does not open under another key or after a flipped byte', () => {
    const c = sm2Encrypt(key.pub, batchKey);
    const another = parseSm2PrivateKey(generateSm2KeyPair().privateKeyPem);
    expect(() => sm2Decrypt(another, c)).toThrow(Sm2DecryptError);
    const flipped = Buffer.from(c);
    flipped[100]! ^= 1;
    expect(() => sm2Decrypt(key, flipped)).toThrow(/C3 check failed/);
  });
});
