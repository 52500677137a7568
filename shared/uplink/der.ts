/**
 * Just enough DER (ITU-T X.690) to read and write SM2 keys (SPKI, PKCS#8), SM2 signatures
 * (SEQUENCE of two INTEGERs, GB/T 35276) and the development X.509 certificates of
 * infra/dev/certs.ts. Node's crypto cannot export or import SM2 keys as JWK, so the key bytes are
 * taken from and put into DER here.
 */

export interface Tlv {
  tag: number;
  /** The content bytes (a view into the input). */
  value: Buffer;
  /** Offset just past this element. */
  end: number;
}

export function readTlv(buf: Buffer, off = 0): Tlv {
  if (off + 2 > buf.length) throw new Error('DER: truncated');
  const tag = buf[off]!;
  let len = buf[off + 1]!;
  let p = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || p + n > buf.length) throw new Error('DER: bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p + i]!;
    p += n;
  }
  if (p + len > buf.length) throw new Error('DER: truncated');
  return { tag, value: buf.subarray(p, p + len), end: p + len };
}

/** The elements of a constructed value (SEQUENCE, SET, context tag). */
export function children(value: Buffer): Tlv[] {
  const out: Tlv[] = [];
  for (let off = 0; off < value.length; ) {
    const t = readTlv(value, off);
    out.push(t);
    off = t.end;
  }
  return out;
}

function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), lengthBytes(body.length), body]);
}

export const seq = (...c: Buffer[]) => tlv(0x30, ...c);
export const set = (...c: Buffer[]) => tlv(0x31, ...c);
export const octets = (b: Buffer) => tlv(0x04, b);
export const bitString = (b: Buffer) => tlv(0x03, Buffer.from([0]), b);
export const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, 'utf8'));
export const nul = () => Buffer.from([0x05, 0x00]);
export const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]));
/** [n] EXPLICIT (constructed) or IMPLICIT primitive context tag. */
export const ctx = (n: number, content: Buffer, constructed = true) => tlv((constructed ? 0xa0 : 0x80) | n, content);

export function int(v: bigint | number): Buffer {
  const n = BigInt(v);
  if (n < 0n) throw new Error('DER: negative integers are not needed here');
  let hex = n.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  let b = Buffer.from(hex, 'hex');
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

export function readInt(t: Tlv): bigint {
  if (t.tag !== 0x02 || t.value.length === 0) throw new Error('DER: expected INTEGER');
  if (t.value[0]! & 0x80) throw new Error('DER: negative INTEGER');
  return BigInt('0x' + t.value.toString('hex'));
}

export function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const bytes: number[] = [40 * parts[0]! + parts[1]!];
  for (const p of parts.slice(2)) {
    const chunk: number[] = [];
    let v = p;
    do {
      chunk.unshift(v & 0x7f);
      v = Math.floor(v / 128);
    } while (v > 0);
    for (let i = 0; i < chunk.length - 1; i++) chunk[i]! |= 0x80;
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}

export function readOid(t: Tlv): string {
  if (t.tag !== 0x06) throw new Error('DER: expected OBJECT IDENTIFIER');
  const b = t.value;
  const out = [Math.floor(b[0]! / 40), b[0]! % 40];
  let v = 0;
  for (let i = 1; i < b.length; i++) {
    v = v * 128 + (b[i]! & 0x7f);
    if (!(b[i]! & 0x80)) {
      out.push(v);
      v = 0;
    }
  }
  return out.join('.');
}

/** UTCTime for years before 2050, GeneralizedTime after (RFC 5280 §4.1.2.5). */
export function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2))) : tlv(0x18, Buffer.from(iso));
}

export function pem(label: string, der: Buffer): string {
  const b64 = der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

export function unpem(text: string, label: string): Buffer {
  const m = new RegExp(`-----BEGIN ${label}-----([\\s\\S]+?)-----END ${label}-----`).exec(text);
  if (!m) throw new Error(`not a PEM ${label}`);
  return Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
}
