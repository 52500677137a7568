import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { sm4Decryptor, sm4Encryptor } from '../../shared/backup/tools.js';

async function collect(s: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** Splits a buffer into chunks of the given sizes, cycling (a pipe delivers any sizes). */
function chunked(b: Buffer, sizes: number[]): Readable {
  const out: Buffer[] = [];
  for (let i = 0, k = 0; i < b.length; k++) {
    const n = sizes[k % sizes.length]!;
    out.push(b.subarray(i, i + n));
    i += n;
  }
  return Readable.from(out);
}

describe('SM4 at rest (CTR, IV first)', () => {
  const key = randomBytes(16);

  it('round-trips any chunking, the IV split across chunks included', async () => {
    const plain = randomBytes(100_003);
    const enc = await collect(chunked(plain, [7, 1000, 3]).pipe(sm4Encryptor(key)));
    expect(enc.length).toBe(plain.length + 16);
    expect(enc.subarray(16, 48).equals(plain.subarray(0, 32))).toBe(false);
    const dec = await collect(chunked(enc, [5, 9, 4096]).pipe(sm4Decryptor(key)));
    expect(dec.equals(plain)).toBe(true);
  });

  it('a fresh IV each time: the same archive never encrypts to the same bytes', async () => {
    const plain = Buffer.from('PGDMP same content');
    const a = await collect(Readable.from([plain]).pipe(sm4Encryptor(key)));
    const b = await collect(Readable.from([plain]).pipe(sm4Encryptor(key)));
    expect(a.equals(b)).toBe(false);
  });

  it('the wrong key gives other bytes, and a stream shorter than the IV is an error', async () => {
    const plain = randomBytes(64);
    const enc = await collect(Readable.from([plain]).pipe(sm4Encryptor(key)));
    const wrong = await collect(Readable.from([enc]).pipe(sm4Decryptor(randomBytes(16))));
    expect(wrong.equals(plain)).toBe(false);
    await expect(collect(Readable.from([enc.subarray(0, 10)]).pipe(sm4Decryptor(key)))).rejects.toThrow('encrypted archive shorter than its IV');
  });
});
