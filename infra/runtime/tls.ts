/**
 * Optional TLS termination on the hospital ports, with optional client certificates (mTLS), so that
 * a container-less hospital server needs no nginx in front (docs/runtime.md, "TLS").
 *
 * Per port, from the environment (prefix DATA_, CONFIG_, MONITOR_, WEB_; for another port key its
 * upper-cased key, e.g. PORT_9000_):
 *   <P>_TLS_CERT         PEM server certificate (chain: leaf first)         — both or neither
 *   <P>_TLS_KEY          PEM private key (unencrypted)                      — of CERT and KEY
 *   <P>_TLS_CLIENT_CA    PEM bundle of the CAs that sign client certificates: when set, the port asks
 *                        for a client certificate and verifies it
 *   <P>_TLS_CLIENT_CERT  required (default when CLIENT_CA is set): no valid certificate, no handshake;
 *                        optional: a connection without a certificate goes on, unauthenticated by
 *                        certificate (one with an invalid certificate is answered 400)
 *   <P>_TLS_MIN_VERSION  TLSv1.2 (default) or TLSv1.3
 * A relative path is read from the runtime's secrets folder (so `tls/front.key` next to the other
 * secrets, mode 0600); an absolute path as given.
 *
 * When a connection carries a verified client certificate, every request on it is forwarded with
 * X-Client-Cert-Fingerprint (SHA-256 of the DER, 64 lower-case hex digits: normalizeFingerprint's
 * canonical form in shared/http/auth.ts), X-Client-Cert-Subject (RFC 2253: last RDN first, non-ASCII
 * as \XX UTF-8 escapes, as nginx's $ssl_client_s_dn), X-Client-Verify: SUCCESS and X-Client-Cert (the
 * URL-encoded PEM, as nginx's $ssl_client_escaped_cert). A caller's own copies of these headers are
 * always dropped (proxy.ts).
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import type { HospitalPortSpec } from './ports.js';

export type ClientCertMode = 'off' | 'required' | 'optional';

export interface PortTls {
  /** Env prefix: DATA, CONFIG, … */
  prefix: string;
  clientCert: ClientCertMode;
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  /** Resolved file paths, for logs and errors. */
  files: { cert: string; key: string; clientCa?: string };
  /** The server certificate's validity end (ISO), subject and SHA-256 fingerprint, for the start log. */
  cert: { subject: string; validTo: string; fingerprint: string; expired: boolean };
  /** What https.createServer / server.setSecureContext take. */
  options: SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean; minVersion: 'TLSv1.2' | 'TLSv1.3' };
}

/** The env prefix of a port key: data → DATA, port-9000 → PORT_9000. */
export function tlsPrefix(key: string): string {
  return key.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * The TLS settings of one hospital port; null when the port is plain HTTP (neither CERT nor KEY set).
 * Throws an error naming the port, the variable and the file for anything unusable: a missing or
 * unreadable file, not PEM, a key that does not belong to the certificate, client settings without
 * a server certificate, an unknown mode.
 */
export function portTls(spec: HospitalPortSpec, vars: Record<string, string | undefined>, secretsDir: string): PortTls | null {
  const prefix = tlsPrefix(spec.key);
  const where = `port ${spec.port} (${spec.role})`;
  const port: PortAt = { where, prefix };
  const get = (name: string) => {
    const v = vars[`${prefix}_${name}`]?.trim();
    return v ? v : undefined;
  };
  const certPath = get('TLS_CERT');
  const keyPath = get('TLS_KEY');
  const caPath = get('TLS_CLIENT_CA');
  const modeRaw = get('TLS_CLIENT_CERT')?.toLowerCase();
  const minRaw = get('TLS_MIN_VERSION');

  if (!certPath && !keyPath) {
    assertNoStrayClientSettings(port, caPath, modeRaw, minRaw);
    return null;
  }
  if (!certPath) throw new Error(`${where}: ${prefix}_TLS_KEY is set but ${prefix}_TLS_CERT is not (both or neither)`);
  if (!keyPath) throw new Error(`${where}: ${prefix}_TLS_CERT is set but ${prefix}_TLS_KEY is not (both or neither)`);

  const clientCert = clientCertMode(port, modeRaw, caPath);
  const minVersion = tlsMinVersion(port, minRaw);
  const cert = readPem(port, secretsDir, 'TLS_CERT', certPath);
  const leaf = leafCertificate(port, cert);
  const key = readPem(port, secretsDir, 'TLS_KEY', keyPath);
  checkPrivateKey(port, key, leaf, cert);
  const ca = caPath && clientCert !== 'off' ? clientCaBundle(port, readPem(port, secretsDir, 'TLS_CLIENT_CA', caPath)) : undefined;

  const validTo = new Date(leaf.validTo);
  return {
    prefix,
    clientCert,
    minVersion,
    files: { cert: cert.file, key: key.file, ...(ca ? { clientCa: ca.file } : {}) },
    cert: {
      subject: rfc2253(leaf.subject),
      validTo: Number.isNaN(validTo.getTime()) ? leaf.validTo : validTo.toISOString(),
      fingerprint: canonicalFingerprint(leaf.fingerprint256),
      expired: validTo.getTime() < Date.now(),
    },
    options: {
      cert: cert.text,
      key: key.text,
      ...(ca ? { ca: ca.text } : {}),
      requestCert: clientCert !== 'off',
      // required: OpenSSL refuses a handshake without a certificate, Node closes one whose certificate
      // does not verify. optional: both go on; proxy-side the headers are set only when verified.
      rejectUnauthorized: clientCert === 'required',
      minVersion,
      // Ciphers: Node's defaults (TLS 1.3 AES-GCM/ChaCha20 suites; TLS 1.2 ECDHE with AES-GCM or
      // ChaCha20 first), with OpenSSL's security level; the server's order wins.
      honorCipherOrder: true,
    },
  };
}

/** The port an error names: "port 8443 (data)", and its variables' prefix. */
interface PortAt {
  where: string;
  prefix: string;
}

/** A PEM file as read: its resolved path and its text. */
interface PemFile {
  file: string;
  text: string;
}

/** A plain-HTTP port has no client-certificate settings: any of them set is an error. */
function assertNoStrayClientSettings({ where, prefix }: PortAt, caPath?: string, modeRaw?: string, minRaw?: string): void {
  const stray = [caPath && 'TLS_CLIENT_CA', modeRaw && 'TLS_CLIENT_CERT', minRaw && 'TLS_MIN_VERSION'].filter(Boolean);
  if (stray.length) {
    throw new Error(
      `${where}: ${stray.map((s) => `${prefix}_${s}`).join(', ')} set but ${prefix}_TLS_CERT and ${prefix}_TLS_KEY are not: client certificates need TLS on the port`,
    );
  }
}

/** <P>_TLS_CLIENT_CERT: required by default when a client CA is set, else off; a mode other than off needs the CA. */
function clientCertMode({ where, prefix }: PortAt, modeRaw: string | undefined, caPath: string | undefined): ClientCertMode {
  let clientCert: ClientCertMode;
  if (modeRaw === undefined) clientCert = caPath ? 'required' : 'off';
  else if (modeRaw === 'required' || modeRaw === 'optional') clientCert = modeRaw;
  else if (modeRaw === 'off' || modeRaw === 'none') clientCert = 'off';
  else throw new Error(`${where}: ${prefix}_TLS_CLIENT_CERT="${modeRaw}": expected required, optional or off`);
  if (clientCert !== 'off' && !caPath) {
    throw new Error(`${where}: ${prefix}_TLS_CLIENT_CERT=${clientCert} needs ${prefix}_TLS_CLIENT_CA (the CA bundle that signs client certificates)`);
  }
  return clientCert;
}

/** <P>_TLS_MIN_VERSION: TLSv1.2 (default) or TLSv1.3. */
function tlsMinVersion({ where, prefix }: PortAt, minRaw: string | undefined): 'TLSv1.2' | 'TLSv1.3' {
  if (minRaw === undefined) return 'TLSv1.2';
  const m = /^(?:tls)?v?1\.([23])$/i.exec(minRaw);
  if (!m) throw new Error(`${where}: ${prefix}_TLS_MIN_VERSION="${minRaw}": expected TLSv1.2 or TLSv1.3 (nothing older is offered)`);
  return m[1] === '3' ? 'TLSv1.3' : 'TLSv1.2';
}

/** A PEM file named by <P>_<name>: a relative path is read from the secrets folder, an absolute one as given. */
function readPem({ where, prefix }: PortAt, secretsDir: string, name: string, p: string): PemFile {
  const file = isAbsolute(p) ? p : resolve(secretsDir, p);
  try {
    return { file, text: readFileSync(file, 'utf8') };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'is a folder' : e.message;
    throw new Error(`${where}: cannot read ${prefix}_${name} file ${file}: ${why}`);
  }
}

/** The server certificate (the chain's first block); every block of the chain must parse. */
function leafCertificate({ where, prefix }: PortAt, cert: PemFile): X509Certificate {
  const certs = cert.text.match(PEM_CERT) ?? [];
  try {
    if (!certs.length) throw new Error('no -----BEGIN CERTIFICATE----- block');
    const leaf = new X509Certificate(certs[0]!);
    for (const c of certs.slice(1)) new X509Certificate(c);
    return leaf;
  } catch (err) {
    throw new Error(`${where}: ${prefix}_TLS_CERT file ${cert.file} is not a PEM certificate: ${(err as Error).message}`);
  }
}

/** The private key must parse, be unencrypted, and belong to the server certificate. */
function checkPrivateKey({ where, prefix }: PortAt, key: PemFile, leaf: X509Certificate, cert: PemFile): void {
  try {
    const k = createPrivateKey(key.text);
    if (!leaf.checkPrivateKey(k)) throw new Error(`it does not belong to the certificate in ${cert.file}`);
  } catch (err) {
    const msg = (err as Error).message;
    throw new Error(`${where}: ${prefix}_TLS_KEY file ${key.file}: ${/passphrase/i.test(msg) ? 'an encrypted key (give an unencrypted one, mode 0600)' : msg}`);
  }
}

/** The client CA bundle: at least one certificate, every block parsing. */
function clientCaBundle({ where, prefix }: PortAt, ca: PemFile): PemFile {
  const blocks = ca.text.match(PEM_CERT) ?? [];
  try {
    if (!blocks.length) throw new Error('no -----BEGIN CERTIFICATE----- block');
    for (const b of blocks) new X509Certificate(b);
  } catch (err) {
    throw new Error(`${where}: ${prefix}_TLS_CLIENT_CA file ${ca.file} is not a PEM certificate bundle: ${(err as Error).message}`);
  }
  return ca;
}

/** Every hospital port's TLS settings by key (plain-HTTP ports absent). */
export function hospitalTls(specs: HospitalPortSpec[], vars: Record<string, string | undefined>, secretsDir: string): Map<string, PortTls> {
  const out = new Map<string, PortTls>();
  for (const spec of specs) {
    const t = portTls(spec, vars, secretsDir);
    const prefix = tlsPrefix(spec.key);
    const off = vars[`${prefix}_TLS`]?.trim().toLowerCase() === 'off';
    if (t && off) throw new Error(`port ${spec.port} (${spec.role}): ${prefix}_TLS=off and ${prefix}_TLS_CERT are both set; choose one`);
    // TLS by default outside development (docs/security.md "In transit"): a production front serves no
    // hospital port in clear unless told that a terminator in front of it does TLS.
    if (!t && !off && vars.CDC_ENV === 'production') {
      throw new Error(
        `port ${spec.port} (${spec.role}) would serve plain HTTP in production: set ${prefix}_TLS_CERT and ${prefix}_TLS_KEY, ` +
          `or ${prefix}_TLS=off when a TLS terminator in front of it (nginx, a TLCP gateway) does TLS and is listed in HIS_TRUSTED_PROXIES`,
      );
    }
    if (t) out.set(spec.key, t);
  }
  return out;
}

/** "AB:CD:…" → "abcd…": shared/http/auth.ts normalizeFingerprint's canonical form. */
export function canonicalFingerprint(fp: string): string {
  return fp.replace(/:/g, '').toLowerCase();
}

/**
 * Node's X509Certificate.subject (one RDN per line, first RDN first, values already escaped as
 * RFC 2253 requires, multi-valued RDNs joined by " + ") as an RFC 2253 string: last RDN first,
 * comma-separated, non-ASCII and control characters as \XX escapes of their UTF-8 bytes (as
 * OpenSSL's -nameopt RFC2253 and nginx's $ssl_client_s_dn). Always a valid HTTP header value.
 */
export function rfc2253(subject: string): string {
  const rdns = subject
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => l.split(' + ').join('+'));
  return rdns
    .reverse()
    .join(',')
    .replace(/[^\x20-\x7e]/gu, (ch) => Array.from(Buffer.from(ch, 'utf8'), (b) => '\\' + b.toString(16).toUpperCase().padStart(2, '0')).join(''));
}

export interface ClientCertHeaders {
  'x-client-cert-fingerprint': string;
  'x-client-cert-subject': string;
  'x-client-verify': 'SUCCESS';
  'x-client-cert': string;
}

/** The verified client certificate's headers of a connection, computed once per socket. */
const perSocket = new WeakMap<TLSSocket, ClientCertHeaders | null>();

/**
 * The headers for a TLS connection's verified client certificate; null when it has none (plain
 * HTTP, no certificate asked or sent, or one that did not verify).
 */
export function clientCertHeaders(socket: TLSSocket): ClientCertHeaders | null {
  if (!socket.encrypted || !socket.authorized) return null;
  const known = perSocket.get(socket);
  if (known !== undefined) return known;
  let out: ClientCertHeaders | null = null;
  const x = socket.getPeerX509Certificate();
  if (x) {
    out = {
      'x-client-cert-fingerprint': canonicalFingerprint(x.fingerprint256),
      'x-client-cert-subject': rfc2253(x.subject),
      'x-client-verify': 'SUCCESS',
      'x-client-cert': encodeURIComponent(x.toString()),
    };
  }
  perSocket.set(socket, out);
  return out;
}

/**
 * A client certificate presented on an optional-certificate port that did not verify: the reason
 * (OpenSSL's code), else null. Such a request is refused (400) rather than passed on as if no
 * certificate had been sent: a HIS that sends a certificate means to be identified by it.
 */
export function rejectedClientCert(socket: TLSSocket): string | null {
  if (!socket.encrypted || socket.authorized) return null;
  const peer = socket.getPeerCertificate();
  if (!peer || Object.keys(peer).length === 0) return null;
  return String(socket.authorizationError ?? 'certificate not verified');
}
