/**
 * Development keys and certificates for the uplink (docs/uplink.md §Keys), written as the secret
 * files the push function reads, plus the simulator's side:
 *
 *   uplink-hospital-key, uplink-hospital-pubkey        SM2 (PKCS#8 / SPKI PEM): signs envelopes
 *   uplink-national-key, uplink-national-pubkey        SM2: the national simulator's key pair
 *   uplink-provincial-key, uplink-provincial-pubkey    SM2: the provincial simulator's key pair
 *   uplink-ca                                          the development CA certificate (TLS trust anchor)
 *   uplink-client-cert, uplink-client-key              the hospital's TLS client certificate (clientAuth)
 *   uplink-platform-tls-cert, uplink-platform-tls-key  the simulators' TLS server certificate
 *                                                      (localhost, 127.0.0.1, ::1; serverAuth)
 *
 * TLS uses ECDSA P-256 certificates: Node's TLS (OpenSSL 3.0) has no SM2 cipher suites (neither
 * TLCP, GB/T 38636, nor RFC 8998), so SM2 certificates could not be used on the wire; the SM
 * algorithms protect the envelope instead. The X.509 certificates are built here in DER (Node has
 * no API for issuing certificates) and signed with Node's ECDSA.
 *
 *   tsx infra/dev/certs.ts [dir]     (default .data/secrets); existing files are kept
 */
import { createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { projectRoot } from '../root.js';
import { bitString, bool, ctx, int, octets, oid, pem, seq, set, time, tlv, utf8 } from '../../shared/uplink/der.js';
import { generateSm2KeyPair } from '../../shared/uplink/sm.js';

const ECDSA_SHA256 = '1.2.840.10045.4.3.2';
const CN = '2.5.4.3';
const O = '2.5.4.10';

const name = (cn: string) => seq(set(seq(oid(O), utf8('cdc-front development'))), set(seq(oid(CN), utf8(cn))));
const ext = (id: string, critical: boolean, value: Buffer) => seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));

interface Issued {
  certPem: string;
  keyPem: string;
}

function issue(opts: {
  cn: string;
  issuer?: { cn: string; key: KeyObject };
  ca?: boolean;
  usage?: 'serverAuth' | 'clientAuth';
  days?: number;
}): Issued & { key: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const now = Date.now();
  const extensions: Buffer[] = [];
  if (opts.ca) {
    extensions.push(ext('2.5.29.19', true, seq(bool(true))));
    extensions.push(ext('2.5.29.15', true, tlv(0x03, Buffer.from([1, 0x06])))); // keyCertSign, cRLSign
  } else {
    extensions.push(ext('2.5.29.19', true, seq()));
    extensions.push(ext('2.5.29.15', true, tlv(0x03, Buffer.from([7, 0x80])))); // digitalSignature
    extensions.push(ext('2.5.29.37', false, seq(oid(opts.usage === 'serverAuth' ? '1.3.6.1.5.5.7.3.1' : '1.3.6.1.5.5.7.3.2'))));
    if (opts.usage === 'serverAuth') {
      const ip = (b: number[]) => tlv(0x87, Buffer.from(b));
      extensions.push(ext('2.5.29.17', false, seq(tlv(0x82, Buffer.from('localhost')), ip([127, 0, 0, 1]), ip([...Array(15).fill(0), 1]))));
    }
  }
  const tbs = seq(
    ctx(0, int(2)),
    int(BigInt('0x' + randomBytes(12).toString('hex')) + 1n),
    seq(oid(ECDSA_SHA256)),
    name(opts.issuer?.cn ?? opts.cn),
    seq(time(new Date(now - 3600_000)), time(new Date(now + (opts.days ?? 825) * 86_400_000))),
    name(opts.cn),
    publicKey.export({ type: 'spki', format: 'der' }),
    ctx(3, seq(...extensions)),
  );
  const signature = sign('sha256', tbs, opts.issuer?.key ?? privateKey);
  const cert = seq(tbs, seq(oid(ECDSA_SHA256)), bitString(signature));
  return { certPem: pem('CERTIFICATE', cert), keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), key: privateKey };
}

export interface DevUplinkFiles {
  dir: string;
  /** Absolute path of each file, by secret name. */
  files: Record<string, string>;
  read: (secret: string) => string;
}

/** Writes every missing file into dir (mode 0600) and returns their paths. */
export function ensureDevUplinkFiles(dir: string, hospitalName = 'hospital-front'): DevUplinkFiles {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const files: Record<string, string> = {};
  const write = (secret: string, text: string) => {
    const f = join(dir, secret);
    files[secret] = f;
    if (existsSync(f)) return;
    writeFileSync(f, text, { mode: 0o600 });
    chmodSync(f, 0o600);
  };
  const have = (secret: string) => existsSync(join(dir, secret));
  for (const who of ['hospital', 'national', 'provincial']) {
    if (!have(`uplink-${who}-key`) || !have(`uplink-${who}-pubkey`)) {
      const kp = generateSm2KeyPair();
      writeFileSync(join(dir, `uplink-${who}-key`), kp.privateKeyPem, { mode: 0o600 });
      writeFileSync(join(dir, `uplink-${who}-pubkey`), kp.publicKeyPem, { mode: 0o600 });
    }
    files[`uplink-${who}-key`] = join(dir, `uplink-${who}-key`);
    files[`uplink-${who}-pubkey`] = join(dir, `uplink-${who}-pubkey`);
  }
  let caKey: KeyObject;
  if (!have('uplink-ca') || !have('uplink-ca-key')) {
    const ca = issue({ cn: 'cdc-front development CA', ca: true, days: 3650 });
    writeFileSync(join(dir, 'uplink-ca'), ca.certPem, { mode: 0o600 });
    writeFileSync(join(dir, 'uplink-ca-key'), ca.keyPem, { mode: 0o600 });
    caKey = ca.key;
  } else {
    caKey = createPrivateKey(readFileSync(join(dir, 'uplink-ca-key'), 'utf8'));
  }
  files['uplink-ca'] = join(dir, 'uplink-ca');
  files['uplink-ca-key'] = join(dir, 'uplink-ca-key');
  const issuer = { cn: 'cdc-front development CA', key: caKey };
  if (!have('uplink-client-cert')) {
    const c = issue({ cn: hospitalName, issuer, usage: 'clientAuth' });
    write('uplink-client-cert', c.certPem);
    write('uplink-client-key', c.keyPem);
  }
  files['uplink-client-cert'] = join(dir, 'uplink-client-cert');
  files['uplink-client-key'] = join(dir, 'uplink-client-key');
  if (!have('uplink-platform-tls-cert')) {
    const s = issue({ cn: 'localhost', issuer, usage: 'serverAuth' });
    write('uplink-platform-tls-cert', s.certPem);
    write('uplink-platform-tls-key', s.keyPem);
  }
  files['uplink-platform-tls-cert'] = join(dir, 'uplink-platform-tls-cert');
  files['uplink-platform-tls-key'] = join(dir, 'uplink-platform-tls-key');
  return { dir, files, read: (secret) => readFileSync(files[secret] ?? join(dir, secret), 'utf8') };
}

/**
 * A development server certificate for the hospital ports (`make up TLS=1`, docs/security.md
 * "In transit"), issued by the development CA (uplink-ca): front-tls-cert and front-tls-key in dir,
 * for localhost, 127.0.0.1 and ::1. A HIS trusts it by trusting uplink-ca. Existing files are kept.
 */
export function ensureDevFrontTls(dir: string): { cert: string; key: string; ca: string } {
  const up = ensureDevUplinkFiles(dir);
  const cert = join(dir, 'front-tls-cert');
  const key = join(dir, 'front-tls-key');
  if (!existsSync(cert) || !existsSync(key)) {
    const issuer = { cn: 'cdc-front development CA', key: createPrivateKey(up.read('uplink-ca-key')) };
    const s = issue({ cn: 'localhost', issuer, usage: 'serverAuth' });
    writeFileSync(cert, s.certPem, { mode: 0o600 });
    writeFileSync(key, s.keyPem, { mode: 0o600 });
  }
  return { cert, key, ca: up.files['uplink-ca']! };
}

// import.meta.main: false inside the runtime's bundle, which holds this module (infra/build/build.mjs).
if (import.meta.main) {
  const dir = resolve(process.argv[2] ?? join(projectRoot, '.data', 'secrets'));
  const out = ensureDevUplinkFiles(dir);
  for (const [k, f] of Object.entries(out.files)) process.stdout.write(`${k.padEnd(26)} ${f}\n`);
}
