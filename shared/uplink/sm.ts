/**
 * The Chinese commercial algorithms the uplink envelope uses, on Node's own crypto (OpenSSL 3):
 *
 * - SM3 (GB/T 32905) and SM4-CBC (GB/T 32907) straight from OpenSSL (`sm3`, `sm4-cbc`).
 * - SM2 (GB/T 32918) implemented here on the standard's recommended curve. Node's OpenSSL
 *   binding (3.0 in Node 20, 3.5 in Node 24) cannot do what the contract needs: `crypto.publicEncrypt` refuses SM2 keys, and
 *   `crypto.sign` with an SM2 key hashes an *empty* distinguishing ID into Z (OpenSSL 3.0's default,
 *   with no way to pass `distid` from Node), not the standard user id "1234567812345678" that every
 *   platform and the independent implementations use (GB/T 35276 §7). So signatures (part 2) and
 *   public-key encryption (part 4) are computed here with BigInt field arithmetic, while every
 *   multiplication of the base point by a secret scalar (the signing nonce, the encryption
 *   ephemeral, deriving a public key) runs inside OpenSSL through `createECDH('SM2')`.
 *   Multiplications of other points (the recipient's key when wrapping, the platform's private key
 *   when unwrapping, both halves of a verification) use a Montgomery ladder in BigInt, which is
 *   not constant-time: acceptable for the ephemeral scalar of one wrap and for the simulator, and
 *   documented in docs/uplink.md.
 *
 * Keys are stored in the standard formats (PKCS#8 / SubjectPublicKeyInfo PEM with
 * id-ecPublicKey and the SM2 curve OID 1.2.156.10197.1.301), which `openssl` and Node produce.
 */
import {
  type CipherGCM,
  createCipheriv,
  createDecipheriv,
  createECDH,
  createHash,
  createHmac,
  type DecipherGCM,
  generateKeyPairSync,
  randomBytes,
} from 'node:crypto';
import { bitString, children, ctx, int, octets, oid, pem, readInt, readOid, readTlv, seq, unpem } from './der.js';

// ---- SM3, SM4 --------------------------------------------------------------------------------

export function sm3(...parts: (Buffer | Uint8Array | string)[]): Buffer {
  const h = createHash('sm3');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** SM4 in CBC mode with PKCS#7 padding; key and IV are 16 bytes. */
export function sm4CbcEncrypt(key: Buffer, iv: Buffer, plaintext: Buffer): Buffer {
  const c = createCipheriv('sm4-cbc', key, iv);
  return Buffer.concat([c.update(plaintext), c.final()]);
}

export function sm4CbcDecrypt(key: Buffer, iv: Buffer, ciphertext: Buffer): Buffer {
  const d = createDecipheriv('sm4-cbc', key, iv);
  return Buffer.concat([d.update(ciphertext), d.final()]);
}

/** HMAC (RFC 2104) with SM3 (GB/T 32905): a keyed hash, 32 bytes. */
export function hmacSm3(key: Buffer, ...parts: (Buffer | Uint8Array | string)[]): Buffer {
  const h = createHmac('sm3', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/**
 * SM4 in GCM mode (authenticated encryption, GB/T 36624): 16-byte key, 12-byte nonce, a 16-byte tag
 * over the ciphertext and `aad`. Returns ciphertext ‖ tag.
 */
export function sm4GcmEncrypt(key: Buffer, nonce: Buffer, plaintext: Buffer, aad?: Buffer): Buffer {
  const c = createCipheriv('sm4-gcm', key, nonce) as CipherGCM; // GCM's tag is 16 bytes by default
  if (aad) c.setAAD(aad);
  return Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
}

/** The inverse of sm4GcmEncrypt; throws when the tag does not verify (a changed value or another key). */
export function sm4GcmDecrypt(key: Buffer, nonce: Buffer, sealed: Buffer, aad?: Buffer): Buffer {
  if (sealed.length < 16) throw new Error('SM4-GCM: shorter than its tag');
  const d = createDecipheriv('sm4-gcm', key, nonce) as DecipherGCM;
  if (aad) d.setAAD(aad);
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  return Buffer.concat([d.update(sealed.subarray(0, sealed.length - 16)), d.final()]);
}

// ---- the SM2 curve (GB/T 32918.5) -----------------------------------------------------------

const P = 0xfffffffeffffffffffffffffffffffffffffffff00000000ffffffffffffffffn;
const A = 0xfffffffeffffffffffffffffffffffffffffffff00000000fffffffffffffffcn;
const B = 0x28e9fa9e9d9f5e344d5a9e4bcf6509a7f39789f515ab8f92ddbcbd414d940e93n;
export const N = 0xfffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123n;
const GX = 0x32c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7n;
const GY = 0xbc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0n;

/** The standard's default user id (GB/T 35276 §7), hashed into Z when none is agreed. */
export const DEFAULT_UID = '1234567812345678';
const OID_EC_PUBLIC_KEY = '1.2.840.10045.2.1';
const OID_SM2_CURVE = '1.2.156.10197.1.301';

export interface Sm2PublicKey {
  x: bigint;
  y: bigint;
}
export interface Sm2PrivateKey {
  d: bigint;
  pub: Sm2PublicKey;
}

const mod = (a: bigint, m = P) => {
  const r = a % m;
  return r < 0n ? r + m : r;
};
function powMod(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n;
  b = mod(b, m);
  for (; e > 0n; e >>= 1n) {
    if (e & 1n) r = (r * b) % m;
    b = (b * b) % m;
  }
  return r;
}
const inv = (a: bigint, m = P) => powMod(a, m - 2n, m); // m is prime (p and n both are)

const be32 = (v: bigint) => Buffer.from(v.toString(16).padStart(64, '0'), 'hex');
const toBig = (b: Buffer | Uint8Array) => (b.length === 0 ? 0n : BigInt('0x' + Buffer.from(b).toString('hex')));

/** Jacobian coordinates; Z = 0 is the point at infinity. */
type Jac = [bigint, bigint, bigint];
const INF: Jac = [1n, 1n, 0n];

function dbl([X, Y, Z]: Jac): Jac {
  if (Z === 0n || Y === 0n) return INF;
  // dbl-2001-b, valid because a = p - 3.
  const delta = mod(Z * Z);
  const gamma = mod(Y * Y);
  const beta = mod(X * gamma);
  const alpha = mod(3n * (X - delta) * (X + delta));
  const X3 = mod(alpha * alpha - 8n * beta);
  const Z3 = mod((Y + Z) * (Y + Z) - gamma - delta);
  const Y3 = mod(alpha * (4n * beta - X3) - 8n * gamma * gamma);
  return [X3, Y3, Z3];
}

function add(p1: Jac, p2: Jac): Jac {
  if (p1[2] === 0n) return p2;
  if (p2[2] === 0n) return p1;
  const [X1, Y1, Z1] = p1;
  const [X2, Y2, Z2] = p2;
  // add-2007-bl
  const Z1Z1 = mod(Z1 * Z1);
  const Z2Z2 = mod(Z2 * Z2);
  const U1 = mod(X1 * Z2Z2);
  const U2 = mod(X2 * Z1Z1);
  const S1 = mod(Y1 * Z2 * Z2Z2);
  const S2 = mod(Y2 * Z1 * Z1Z1);
  const H = mod(U2 - U1);
  const r = mod(2n * (S2 - S1));
  if (H === 0n) return r === 0n ? dbl(p1) : INF;
  const I = mod(4n * H * H);
  const J = mod(H * I);
  const V = mod(U1 * I);
  const X3 = mod(r * r - J - 2n * V);
  const Y3 = mod(r * (V - X3) - 2n * S1 * J);
  const Z3 = mod(((Z1 + Z2) * (Z1 + Z2) - Z1Z1 - Z2Z2) * H);
  return [X3, Y3, Z3];
}

function toAffine([X, Y, Z]: Jac): Sm2PublicKey | null {
  if (Z === 0n) return null;
  const zi = inv(Z);
  const zi2 = mod(zi * zi);
  return { x: mod(X * zi2), y: mod(Y * zi2 * zi) };
}

/** k·Q by a Montgomery ladder (the same operations for every bit). */
function mul(k: bigint, q: Sm2PublicKey): Sm2PublicKey | null {
  let r0: Jac = INF;
  let r1: Jac = [q.x, q.y, 1n];
  for (let i = 255; i >= 0; i--) {
    if ((k >> BigInt(i)) & 1n) {
      r0 = add(r0, r1);
      r1 = dbl(r1);
    } else {
      r1 = add(r0, r1);
      r0 = dbl(r0);
    }
  }
  return toAffine(r0);
}

/** k·G inside OpenSSL (constant-time there): for secret scalars. */
function mulG(k: bigint): Sm2PublicKey {
  const e = createECDH('SM2');
  e.setPrivateKey(be32(k));
  return decodePoint(e.getPublicKey());
}

export function onCurve(q: Sm2PublicKey): boolean {
  if (q.x <= 0n || q.x >= P || q.y <= 0n || q.y >= P) return false;
  return mod(q.y * q.y) === mod(q.x * q.x * q.x + A * q.x + B);
}

export function encodePoint(q: Sm2PublicKey): Buffer {
  return Buffer.concat([Buffer.from([4]), be32(q.x), be32(q.y)]);
}

/** An uncompressed point (04 || x || y), checked to lie on the curve. */
export function decodePoint(b: Buffer | Uint8Array): Sm2PublicKey {
  if (b.length !== 65 || b[0] !== 4) throw new Error('SM2: not an uncompressed point');
  const q = { x: toBig(b.subarray(1, 33)), y: toBig(b.subarray(33, 65)) };
  if (!onCurve(q)) throw new Error('SM2: point is not on the curve');
  return q;
}

function randomScalar(): bigint {
  for (;;) {
    const k = toBig(randomBytes(32));
    if (k >= 1n && k < N - 1n) return k;
  }
}

// ---- keys ---------------------------------------------------------------------------------

export function sm2PrivateKeyFromScalar(d: bigint): Sm2PrivateKey {
  if (d < 1n || d >= N - 1n) throw new Error('SM2: private key out of range');
  return { d, pub: mulG(d) };
}

/** A fresh key pair, made by OpenSSL, as PEM (PKCS#8 and SubjectPublicKeyInfo). */
export function generateSm2KeyPair(): { privateKeyPem: string; publicKeyPem: string } {
  const k = generateKeyPairSync('ec', { namedCurve: 'SM2' });
  return {
    privateKeyPem: k.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: k.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

const ALG_ID = () => seq(oid(OID_EC_PUBLIC_KEY), oid(OID_SM2_CURVE));

export function sm2PublicKeyPem(pub: Sm2PublicKey): string {
  return pem('PUBLIC KEY', seq(ALG_ID(), bitString(encodePoint(pub))));
}

export function sm2PrivateKeyPem(key: Sm2PrivateKey): string {
  const ecPrivateKey = seq(int(1), octets(be32(key.d)), ctx(1, bitString(encodePoint(key.pub))));
  return pem('PRIVATE KEY', seq(int(0), ALG_ID(), octets(ecPrivateKey)));
}

function checkAlg(algTlv: Buffer): void {
  const [a, c] = children(algTlv);
  if (!a || !c || readOid(a) !== OID_EC_PUBLIC_KEY || readOid(c) !== OID_SM2_CURVE) {
    throw new Error('not an SM2 key (expected id-ecPublicKey with curve 1.2.156.10197.1.301)');
  }
}

/** A SubjectPublicKeyInfo PEM (or an X.509 certificate PEM holding an SM2 key). */
export function parseSm2PublicKey(text: string): Sm2PublicKey {
  let spki: Buffer;
  if (text.includes('BEGIN CERTIFICATE')) {
    const tbs = children(readTlv(unpem(text, 'CERTIFICATE')).value)[0]!;
    const f = children(tbs.value);
    const i = f[0]!.tag === 0xa0 ? 6 : 5; // [0] version present
    spki = seq(f[i]!.value);
  } else {
    spki = unpem(text, 'PUBLIC KEY');
  }
  const [alg, bits] = children(readTlv(spki).value);
  if (!alg || !bits || bits.tag !== 0x03) throw new Error('SM2: malformed public key');
  checkAlg(alg.value);
  return decodePoint(bits.value.subarray(1));
}

/** A PKCS#8 PEM ("PRIVATE KEY") or SEC1 PEM ("EC PRIVATE KEY") on the SM2 curve. */
export function parseSm2PrivateKey(text: string): Sm2PrivateKey {
  let ecPrivateKey: Buffer;
  if (text.includes('BEGIN EC PRIVATE KEY')) {
    ecPrivateKey = unpem(text, 'EC PRIVATE KEY');
  } else {
    const [, alg, inner] = children(readTlv(unpem(text, 'PRIVATE KEY')).value);
    if (!alg || !inner || inner.tag !== 0x04) throw new Error('SM2: malformed PKCS#8 key');
    checkAlg(alg.value);
    ecPrivateKey = inner.value;
  }
  const [, d] = children(readTlv(ecPrivateKey).value);
  if (d?.tag !== 0x04) throw new Error('SM2: malformed EC private key');
  const key = sm2PrivateKeyFromScalar(toBig(d.value));
  return key;
}

/** The key id used in envelopes: SM3 of the uncompressed public point, hex. */
export function keyId(pub: Sm2PublicKey): string {
  return sm3(encodePoint(pub)).toString('hex');
}

// ---- SM2 signature (GB/T 32918.2) --------------------------------------------------------------

/** Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA). */
export function sm2Z(pub: Sm2PublicKey, uid = DEFAULT_UID): Buffer {
  const id = Buffer.from(uid, 'utf8');
  const entl = Buffer.alloc(2);
  entl.writeUInt16BE(id.length * 8);
  return sm3(entl, id, be32(A), be32(B), be32(GX), be32(GY), be32(pub.x), be32(pub.y));
}

/** Signs M: e = SM3(Z ‖ M); returns the DER SEQUENCE { r, s }. */
export function sm2Sign(key: Sm2PrivateKey, message: Buffer | string, uid = DEFAULT_UID): Buffer {
  const e = toBig(sm3(sm2Z(key.pub, uid), message));
  const dInv = inv(1n + key.d, N);
  for (;;) {
    const k = randomScalar();
    const x1 = mulG(k).x;
    const r = mod(e + x1, N);
    if (r === 0n || r + k === N) continue;
    const s = mod(dInv * (k - r * key.d), N);
    if (s === 0n) continue;
    return seq(int(r), int(s));
  }
}

export function sm2Verify(pub: Sm2PublicKey, message: Buffer | string, signature: Buffer, uid = DEFAULT_UID): boolean {
  let r: bigint, s: bigint;
  try {
    const outer = readTlv(signature);
    if (outer.tag !== 0x30 || outer.end !== signature.length) return false;
    const parts = children(outer.value);
    if (parts.length !== 2) return false;
    r = readInt(parts[0]!);
    s = readInt(parts[1]!);
  } catch {
    return false;
  }
  if (r < 1n || r >= N || s < 1n || s >= N) return false;
  const t = mod(r + s, N);
  if (t === 0n) return false;
  const e = toBig(sm3(sm2Z(pub, uid), message));
  const sG = mulG(s); // s is public here; OpenSSL is simply faster
  const tP = mul(t, pub);
  if (!tP) return false;
  const sum = toAffine(add([sG.x, sG.y, 1n], [tP.x, tP.y, 1n]));
  if (!sum) return false;
  return mod(e + sum.x, N) === r;
}

// ---- SM2 public-key encryption (GB/T 32918.4), output C1 ‖ C3 ‖ C2 -------------------------------

/** KDF of GB/T 32918.4 §5.4.3 with SM3. */
export function sm2Kdf(z: Buffer, klen: number): Buffer {
  const out: Buffer[] = [];
  const ct = Buffer.alloc(4);
  for (let i = 1, got = 0; got < klen; i++, got += 32) {
    ct.writeUInt32BE(i);
    out.push(sm3(z, ct));
  }
  return Buffer.concat(out).subarray(0, klen);
}

export function sm2Encrypt(pub: Sm2PublicKey, message: Buffer): Buffer {
  if (message.length === 0) throw new Error('SM2: nothing to encrypt');
  for (;;) {
    const k = randomScalar();
    const c1 = mulG(k);
    const s = mul(k, pub);
    if (!s) throw new Error('SM2: recipient key is invalid');
    const xy = Buffer.concat([be32(s.x), be32(s.y)]);
    const t = sm2Kdf(xy, message.length);
    if (t.every((b) => b === 0)) continue;
    const c2 = Buffer.alloc(message.length);
    for (let i = 0; i < message.length; i++) c2[i] = message[i]! ^ t[i]!;
    const c3 = sm3(be32(s.x), message, be32(s.y));
    return Buffer.concat([encodePoint(c1), c3, c2]);
  }
}

export class Sm2DecryptError extends Error {}

export function sm2Decrypt(key: Sm2PrivateKey, ciphertext: Buffer): Buffer {
  if (ciphertext.length < 65 + 32 + 1) throw new Sm2DecryptError('SM2 ciphertext too short');
  let c1: Sm2PublicKey;
  try {
    c1 = decodePoint(ciphertext.subarray(0, 65));
  } catch (err) {
    throw new Sm2DecryptError(`SM2 ciphertext: C1 ${(err as Error).message}`);
  }
  const c3 = ciphertext.subarray(65, 97);
  const c2 = ciphertext.subarray(97);
  const s = mul(key.d, c1);
  if (!s) throw new Sm2DecryptError('SM2 ciphertext: C1 gives the point at infinity');
  const t = sm2Kdf(Buffer.concat([be32(s.x), be32(s.y)]), c2.length);
  if (t.every((b) => b === 0)) throw new Sm2DecryptError('SM2 ciphertext: KDF output is zero');
  const m = Buffer.alloc(c2.length);
  for (let i = 0; i < c2.length; i++) m[i] = c2[i]! ^ t[i]!;
  const u = sm3(be32(s.x), m, be32(s.y));
  if (!u.equals(c3)) throw new Sm2DecryptError('SM2 ciphertext does not open with this key (C3 check failed)');
  return m;
}
