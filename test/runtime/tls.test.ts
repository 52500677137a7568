/**
 * TLS termination on the hospital ports (infra/runtime/tls.ts): real sockets on loopback, a
 * throwaway CA, server and client certificates made with openssl. Required client certificates
 * refuse the handshake without one (or with one from another CA); a verified certificate reaches the
 * function as X-Client-Cert-Fingerprint / -Subject / X-Client-Verify / X-Client-Cert in the forms
 * shared/http/auth.ts reads, never as a copy the client wrote; optional ones let a request without a
 * certificate through without them; configuration errors name the port and the file.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as netConnect, type Socket } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RuntimeHandle } from '../../infra/runtime/index.js';
import { normalizeFingerprint, pemFingerprint } from '../../shared/http/auth.js';
import { sleep, startFixtureRuntime, until } from './helpers.js';

// ---- throwaway PKI -----------------------------------------------------------------------------

const OPENSSL_CNF = `
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
[client]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
`;

let pki: string;
let serial = 1000;

function openssl(args: string[]): string {
  return execFileSync('openssl', args, { cwd: pki, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

function makeCa(name: string, subject: string): void {
  openssl([
    'req',
    '-x509',
    '-config',
    'openssl.cnf',
    '-extensions',
    'ca',
    ...newKey,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.crt`,
    '-days',
    '2',
    '-subj',
    subject,
    '-utf8',
  ]);
}

function makeLeaf(name: string, ca: string, subject: string, ext: 'server' | 'client'): void {
  openssl(['req', '-new', '-config', 'openssl.cnf', ...newKey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject, '-utf8']);
  openssl([
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.crt`,
    '-CAkey',
    `${ca}.key`,
    '-set_serial',
    String(serial++),
    '-days',
    '2',
    '-extfile',
    'openssl.cnf',
    '-extensions',
    ext,
    '-out',
    `${name}.crt`,
  ]);
}

const file = (name: string) => join(pki, name);
const pem = (name: string) => readFileSync(file(name), 'utf8');

// ---- an HTTPS client -------------------------------------------------------------------------

interface Echo {
  path: string;
  headers: Record<string, string>;
}

interface Answer {
  status: number;
  body: string;
  json: () => Echo;
  serverCert: X509Certificate | undefined;
  reused: boolean;
}

function get(url: string, opts: { client?: string; headers?: Record<string, string>; agent?: Agent } = {}): Promise<Answer> {
  return new Promise((resolveGet, reject) => {
    const req = request(
      url,
      {
        ca: pem('ca.crt'),
        ...(opts.client ? { cert: pem(`${opts.client}.crt`), key: pem(`${opts.client}.key`) } : {}),
        headers: opts.headers ?? {},
        agent: opts.agent ?? false,
      },
      (res) => {
        const socket = res.socket as TLSSocket;
        const serverCert = socket.getPeerX509Certificate();
        const reused = socket.isSessionReused();
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          resolveGet({ status: res.statusCode ?? 0, body, json: () => JSON.parse(body) as Echo, serverCert, reused });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const SPOOFED = {
  'x-client-cert-fingerprint': 'ab'.repeat(32),
  'x-client-cert-subject': 'CN=someone-else',
  'x-client-verify': 'SUCCESS',
  'x-client-cert': encodeURIComponent('-----BEGIN CERTIFICATE-----\nforged\n-----END CERTIFICATE-----\n'),
  'x-client-cert-chain': 'forged',
  'x-forwarded-proto': 'http',
};

const CLIENT_HEADERS = ['x-client-cert-fingerprint', 'x-client-cert-subject', 'x-client-verify', 'x-client-cert', 'x-client-cert-chain'];

beforeAll(() => {
  pki = mkdtempSync(join(tmpdir(), 'cdc-tls-test-'));
  writeFileSync(join(pki, 'openssl.cnf'), OPENSSL_CNF);
  makeCa('ca', '/C=CN/O=cdc-front test/CN=Test HIS CA');
  makeCa('other-ca', '/C=CN/O=elsewhere/CN=Another CA');
  makeLeaf('server', 'ca', '/C=CN/O=cdc-front test/CN=localhost', 'server');
  makeLeaf('server2', 'ca', '/C=CN/O=cdc-front test/CN=localhost renewed', 'server');
  // A subject with non-ASCII and an RFC 2253 special character, as hospital certificates have.
  makeLeaf('his', 'ca', '/C=CN/O=测试医院, 信息科/CN=his-adapter-01', 'client');
  makeLeaf('stranger', 'other-ca', '/C=CN/O=elsewhere/CN=his-adapter-01', 'client');
});

afterAll(() => {
  if (pki) rmSync(pki, { recursive: true, force: true });
});

// ---- required client certificates ----------------------------------------------------------

describe('TLS with required client certificates (data) and server-only TLS (web)', () => {
  let rt: RuntimeHandle;
  let certFile: string;
  let keyFile: string;

  beforeAll(async () => {
    // Copies, so that the reload test can replace them.
    certFile = file('live-server.crt');
    keyFile = file('live-server.key');
    copyFileSync(file('server.crt'), certFile);
    copyFileSync(file('server.key'), keyFile);
    ({ rt } = await startFixtureRuntime(
      {},
      {
        DATA_TLS_CERT: certFile,
        DATA_TLS_KEY: keyFile,
        DATA_TLS_CLIENT_CA: file('ca.crt'),
        DATA_TLS_CLIENT_CERT: 'required',
        WEB_TLS_CERT: file('server.crt'),
        WEB_TLS_KEY: file('server.key'),
      },
    ));
  });
  afterAll(async () => {
    await rt?.close();
  });

  it('serves the TLS ports over https and says so in the handle', () => {
    expect(rt.portUrls.data).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(rt.portUrls.web).toMatch(/^https:\/\//);
    expect(rt.portUrls.config).toMatch(/^http:\/\//);
    expect(rt.portTls.data).toMatchObject({ clientCert: 'required', minVersion: 'TLSv1.2' });
    expect(rt.portTls.web).toMatchObject({ clientCert: 'off' });
    expect(rt.portTls.config).toBeUndefined();
  });

  it('passes the verified client certificate to the function, never the client’s own headers', async () => {
    const res = await get(`${rt.portUrls.data}/hclient/emr/receive/emrPatientInfo`, { client: 'his', headers: SPOOFED });
    expect(res.status).toBe(200);
    const h = res.json().headers;
    const expected = normalizeFingerprint(new X509Certificate(pem('his.crt')).fingerprint256);
    expect(expected).toMatch(/^[0-9a-f]{64}$/);
    expect(h['x-client-cert-fingerprint']).toBe(expected);
    expect(h['x-client-verify']).toBe('SUCCESS');
    // The same string as openssl's RFC 2253 form (nginx's $ssl_client_s_dn).
    const rfc2253 = openssl(['x509', '-in', 'his.crt', '-noout', '-subject', '-nameopt', 'RFC2253'])
      .trim()
      .replace(/^subject=/, '');
    expect(h['x-client-cert-subject']).toBe(rfc2253);
    expect(h['x-client-cert-subject']).toBe(
      'CN=his-adapter-01,O=\\E6\\B5\\8B\\E8\\AF\\95\\E5\\8C\\BB\\E9\\99\\A2\\, \\E4\\BF\\A1\\E6\\81\\AF\\E7\\A7\\91,C=CN',
    );
    // URL-encoded PEM, as nginx's $ssl_client_escaped_cert: what auth.ts decodes and fingerprints.
    const decoded = decodeURIComponent(h['x-client-cert']!);
    expect(new X509Certificate(decoded).raw.equals(new X509Certificate(pem('his.crt')).raw)).toBe(true);
    expect(pemFingerprint(decoded)).toBe(expected);
    expect(h['x-client-cert-chain']).toBeUndefined();
    expect(h['x-forwarded-proto']).toBe('https');
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
  });

  it('sets the headers on every request of a kept-alive connection and on a resumed session', async () => {
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
    const fresh = new Agent({ keepAlive: false });
    try {
      const fp = normalizeFingerprint(new X509Certificate(pem('his.crt')).fingerprint256);
      let last: Answer | undefined;
      for (const agent of [keepAlive, keepAlive, fresh, fresh]) {
        last = await get(`${rt.portUrls.data}/function/echo/x`, { client: 'his', agent, headers: { 'x-client-cert-fingerprint': 'ab'.repeat(32) } });
        expect(last.status).toBe(200);
        expect(last.json().headers['x-client-cert-fingerprint']).toBe(fp);
      }
      // The second connection of the agent resumed the first one's TLS session (ticket).
      expect(last!.reused).toBe(true);
    } finally {
      keepAlive.destroy();
      fresh.destroy();
    }
  });

  it('refuses the handshake without a client certificate', async () => {
    // TLS 1.3: the server's certificate_required alert (116), before any request is read.
    await expect(get(`${rt.portUrls.data}/hclient/emr/receive/emrPatientInfo`)).rejects.toMatchObject({ code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' });
    const logged = () => readFileSync(join(rt.logsDir, 'runtime.log'), 'utf8');
    expect(await until(() => logged().includes('tls handshake failed'))).toBe(true);
    expect(logged()).toContain('"msg":"tls enabled"');
  });

  it('refuses a client certificate signed by another CA', async () => {
    // Node closes the connection as soon as the handshake ends with a certificate that did not
    // verify: the client's request gets no answer.
    await expect(get(`${rt.portUrls.data}/hclient/emr/receive/emrPatientInfo`, { client: 'stranger' })).rejects.toMatchObject({ code: 'ECONNRESET' });
  });

  it('serves a port without client certificates: no certificate asked, none passed on', async () => {
    const res = await get(`${rt.portUrls.web}/page`, { headers: SPOOFED });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ path: '/page' });
  });

  it('refuses anything older than TLS 1.2', async () => {
    const port = Number(new URL(rt.portUrls.data!).port);
    const err = await new Promise<NodeJS.ErrnoException | null>((done) => {
      const s = connect({ host: '127.0.0.1', port, ca: pem('ca.crt'), minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
      s.once('secureConnect', () => {
        s.destroy();
        done(null);
      });
      s.once('error', (e: NodeJS.ErrnoException) => done(e));
    });
    // The server's protocol_version alert (70), not the client refusing to offer TLS 1.1.
    expect(err?.code).toBe('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
  });

  it('reloads renewed certificate files for new connections; a broken file changes nothing', async () => {
    const before = await get(`${rt.portUrls.data}/function/echo/`, { client: 'his' });
    expect(before.serverCert?.fingerprint256).toBe(new X509Certificate(pem('server.crt')).fingerprint256);

    writeFileSync(certFile, 'not a certificate\n');
    expect(() => rt.reloadTls()).toThrow(/port \d+ \(data API, HIS → front\): DATA_TLS_CERT file .*live-server\.crt is not a PEM certificate/);
    expect((await get(`${rt.portUrls.data}/function/echo/`, { client: 'his' })).status).toBe(200);

    copyFileSync(file('server2.crt'), certFile);
    copyFileSync(file('server2.key'), keyFile);
    rt.reloadTls();
    const after = await get(`${rt.portUrls.data}/function/echo/`, { client: 'his' });
    expect(after.status).toBe(200);
    expect(after.serverCert?.fingerprint256).toBe(new X509Certificate(pem('server2.crt')).fingerprint256);
  });
});

// ---- optional client certificates, files in the secrets folder --------------------------------

describe('TLS with optional client certificates, files named relative to the secrets folder', () => {
  let rt: RuntimeHandle;
  let secrets: string;

  beforeAll(async () => {
    secrets = mkdtempSync(join(tmpdir(), 'cdc-tls-secrets-'));
    mkdirSync(join(secrets, 'tls'));
    writeFileSync(join(secrets, 'fixture-secret'), 'not-a-real-secret\n', { mode: 0o600 });
    copyFileSync(file('server.crt'), join(secrets, 'tls/front.crt'));
    copyFileSync(file('server.key'), join(secrets, 'tls/front.key'));
    copyFileSync(file('ca.crt'), join(secrets, 'tls/his-ca.crt'));
    ({ rt } = await startFixtureRuntime(
      { secretsDir: secrets },
      { DATA_TLS_CERT: 'tls/front.crt', DATA_TLS_KEY: 'tls/front.key', DATA_TLS_CLIENT_CA: 'tls/his-ca.crt', DATA_TLS_CLIENT_CERT: 'optional' },
    ));
  });
  afterAll(async () => {
    await rt?.close();
    rmSync(secrets, { recursive: true, force: true });
  });

  it('lets a request without a certificate through, without certificate headers (spoofed ones dropped)', async () => {
    const res = await get(`${rt.portUrls.data}/hclient/emr/receive/baseUser`, { headers: SPOOFED });
    expect(res.status).toBe(200);
    const h = res.json().headers;
    for (const k of CLIENT_HEADERS) expect(h[k], k).toBeUndefined();
    expect(h['x-forwarded-proto']).toBe('https');
  });

  it('passes a verified certificate on', async () => {
    const res = await get(`${rt.portUrls.data}/hclient/emr/receive/baseUser`, { client: 'his', headers: SPOOFED });
    expect(res.status).toBe(200);
    const h = res.json().headers;
    expect(h['x-client-cert-fingerprint']).toBe(normalizeFingerprint(new X509Certificate(pem('his.crt')).fingerprint256));
    expect(h['x-client-verify']).toBe('SUCCESS');
  });

  it('answers 400 to a certificate that does not verify instead of treating it as none', async () => {
    const res = await get(`${rt.portUrls.data}/hclient/emr/receive/baseUser`, { client: 'stranger' });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ error: 'client_certificate_invalid' });
  });
});

describe('a TLS port at its connection cap', () => {
  it('closes an idle connection (one still in its handshake) for a newcomer, never one with a request in progress', async () => {
    const CAP = 6;
    const secrets = mkdtempSync(join(tmpdir(), 'cdc-tls-secrets-'));
    mkdirSync(join(secrets, 'tls'));
    writeFileSync(join(secrets, 'fixture-secret'), 'not-a-real-secret\n', { mode: 0o600 });
    copyFileSync(file('server.crt'), join(secrets, 'tls/front.crt'));
    copyFileSync(file('server.key'), join(secrets, 'tls/front.key'));
    const { rt } = await startFixtureRuntime(
      { secretsDir: secrets, limits: { maxConnections: CAP } },
      { DATA_TLS_CERT: 'tls/front.crt', DATA_TLS_KEY: 'tls/front.key' },
    );
    const port = new URL(rt.portUrls.data!);
    const sockets: Socket[] = [];
    const closed = new Set<Socket>();
    try {
      // Three TLS connections whose request is in progress (headers in, 10 of 100 body bytes), opened first...
      const busy = await Promise.all(
        Array.from(
          { length: CAP / 2 },
          () =>
            new Promise<Socket>((ok, fail) => {
              const s = connect({ host: port.hostname, port: Number(port.port), ca: pem('ca.crt'), servername: 'localhost' }, () => {
                s.write('POST /hclient/emr/receive/baseUser HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"id":"U1"');
                ok(s);
              });
              s.on('close', () => closed.add(s));
              s.once('error', fail);
              sockets.push(s);
            }),
        ),
      );
      await sleep(500);
      // ...then three TCP connections that never start their handshake.
      const idle: Socket[] = [];
      for (let i = 0; i < CAP / 2; i++) {
        const s = netConnect({ host: port.hostname, port: Number(port.port) });
        s.on('error', () => undefined);
        s.on('close', () => closed.add(s));
        await new Promise((ok) => s.once('connect', ok));
        idle.push(s);
        sockets.push(s);
      }
      await sleep(300);
      // A HIS's request is served: the oldest idle connection made room, not the older busy ones.
      expect((await get(`${rt.portUrls.data}/hclient/emr/receive/baseUser`)).status).toBe(200);
      await until(() => closed.has(idle[0]!));
      expect(closed.has(idle[0]!)).toBe(true);
      expect(busy.filter((s) => closed.has(s))).toHaveLength(0);
    } finally {
      for (const s of sockets) s.destroy();
      await rt.close();
      rmSync(secrets, { recursive: true, force: true });
    }
  });
});

// ---- configuration errors --------------------------------------------------------------------

describe('TLS configuration errors', () => {
  const tryStart = (env: Record<string, string>) =>
    startFixtureRuntime({}, env).then(async (s) => {
      await s.rt.close();
      throw new Error('started');
    });

  it('names the port, the variable and the file that is missing', async () => {
    const missing = join(tmpdir(), 'cdc-no-such-dir', 'front.crt');
    await expect(tryStart({ DATA_TLS_CERT: missing, DATA_TLS_KEY: file('server.key') })).rejects.toThrow(
      /^port \d+ \(data API, HIS → front\): cannot read DATA_TLS_CERT file .*cdc-no-such-dir\/front\.crt: no such file$/,
    );
    await expect(tryStart({ MONITOR_TLS_CERT: file('server.crt'), MONITOR_TLS_KEY: file('nope.key') })).rejects.toThrow(
      /^port \d+ \(monitor\): cannot read MONITOR_TLS_KEY file .*nope\.key: no such file$/,
    );
    await expect(tryStart({ DATA_TLS_CERT: file('server.crt'), DATA_TLS_KEY: file('server.key'), DATA_TLS_CLIENT_CA: file('missing-ca.crt') })).rejects.toThrow(
      /cannot read DATA_TLS_CLIENT_CA file .*missing-ca\.crt: no such file/,
    );
  });

  it('refuses a key of another certificate, half a pair, and client settings without TLS', async () => {
    await expect(tryStart({ CONFIG_TLS_CERT: file('server.crt'), CONFIG_TLS_KEY: file('his.key') })).rejects.toThrow(
      /^port \d+ \(config\): CONFIG_TLS_KEY file .*his\.key: it does not belong to the certificate/,
    );
    await expect(tryStart({ DATA_TLS_CERT: file('server.crt') })).rejects.toThrow('DATA_TLS_CERT is set but DATA_TLS_KEY is not');
    await expect(tryStart({ DATA_TLS_CLIENT_CA: file('ca.crt') })).rejects.toThrow('DATA_TLS_CLIENT_CA set but DATA_TLS_CERT and DATA_TLS_KEY are not');
    await expect(tryStart({ DATA_TLS_CERT: file('server.crt'), DATA_TLS_KEY: file('server.key'), DATA_TLS_CLIENT_CERT: 'required' })).rejects.toThrow(
      'DATA_TLS_CLIENT_CERT=required needs DATA_TLS_CLIENT_CA',
    );
    await expect(
      tryStart({ DATA_TLS_CERT: file('server.crt'), DATA_TLS_KEY: file('server.key'), DATA_TLS_CLIENT_CA: file('ca.crt'), DATA_TLS_CLIENT_CERT: 'maybe' }),
    ).rejects.toThrow('DATA_TLS_CLIENT_CERT="maybe": expected required, optional or off');
    await expect(tryStart({ DATA_TLS_CERT: file('server.crt'), DATA_TLS_KEY: file('server.key'), DATA_TLS_MIN_VERSION: 'TLSv1.1' })).rejects.toThrow(
      'DATA_TLS_MIN_VERSION="TLSv1.1": expected TLSv1.2 or TLSv1.3',
    );
  });

  it('in production a hospital port never serves plain HTTP, unless <P>_TLS=off says a terminator in front does TLS', async () => {
    await expect(tryStart({ CDC_ENV: 'production' })).rejects.toThrow(
      /^port \d+ \(data API, HIS → front\) would serve plain HTTP in production: set DATA_TLS_CERT and DATA_TLS_KEY, or DATA_TLS=off when a TLS terminator/,
    );
    await expect(tryStart({ CDC_ENV: 'production', DATA_TLS: 'off', DATA_TLS_CERT: file('server.crt'), DATA_TLS_KEY: file('server.key') })).rejects.toThrow(
      'DATA_TLS=off and DATA_TLS_CERT are both set; choose one',
    );
    const tls = Object.fromEntries(
      ['DATA', 'CONFIG', 'MONITOR', 'WEB'].flatMap((p) => [
        [`${p}_TLS_CERT`, file('server.crt')],
        [`${p}_TLS_KEY`, file('server.key')],
      ]),
    );
    const all = await startFixtureRuntime({}, { CDC_ENV: 'production', ...tls });
    try {
      expect(Object.values(all.rt.portUrls).every((u) => u.startsWith('https://'))).toBe(true);
    } finally {
      await all.rt.close();
    }
    const { DATA_TLS_CERT: _c, DATA_TLS_KEY: _k, ...rest } = tls;
    const behind = await startFixtureRuntime({}, { CDC_ENV: 'production', ...rest, DATA_TLS: 'off' });
    try {
      expect(behind.rt.portUrls.data).toMatch(/^http:\/\//);
      expect(behind.rt.portUrls.web).toMatch(/^https:\/\//);
    } finally {
      await behind.rt.close();
    }
  });
});
