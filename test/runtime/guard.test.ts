/**
 * Nothing a caller sends ends the runtime, and what it holds for callers is bounded: malformed
 * escapes, a seeded fuzz of paths, methods, headers and bodies through the real ports, bodies over a
 * function's limit (declared or chunked), a function refusing a body before reading it, the budget of
 * buffered bodies, and 2,000 slow connections. The runtime runs as its own process (main.ts, as
 * `make up` runs it) so a crash shows as an exit.
 */
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runtimeLimits } from '../../infra/runtime/limits.js';
import { fixtureDir, sleep, spawnRuntime, startFixtureRuntime, type SpawnedRuntime, until } from './helpers.js';

const MiB = 1024 * 1024;
const HEADERS_TIMEOUT_S = 5;
const PER_PEER = 300;
let rt: SpawnedRuntime;
let data: URL;
let gateway: URL;

beforeAll(async () => {
  rt = await spawnRuntime(join(fixtureDir, 'limits.yml'), {
    RUNTIME_HEADERS_TIMEOUT: `${HEADERS_TIMEOUT_S}s`,
    RUNTIME_REQUEST_TIMEOUT: '20s',
    RUNTIME_MAX_CONNECTIONS_PER_PEER: String(PER_PEER),
    // The data port's share 24 MiB, one caller's there 12 MiB (half of it, under the default 24); the
    // other ports' 16 MiB, one caller's over the other hospital ports 8 MiB.
    RUNTIME_MAX_BUFFERED_BYTES: String(32 * MiB),
  });
  data = new URL(rt.portUrls.data!);
  gateway = new URL(rt.gatewayUrl);
});
afterAll(async () => {
  await rt?.stop();
});

/** The runtime process is still there, and answers a normal HIS request on the data port at once. */
async function stillServing(): Promise<void> {
  expect(rt.child.exitCode, rt.stderr()).toBeNull();
  expect(rt.child.signalCode).toBeNull();
  const t0 = Date.now();
  const res = await fetch(`${rt.portUrls.data}/hclient/emr/receive/emrPatientInfo`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"id":"P1"}',
    signal: AbortSignal.timeout(5000),
  });
  expect(res.status).toBe(200);
  expect(((await res.json()) as { path: string }).path).toBe('/emrPatientInfo');
  expect(Date.now() - t0).toBeLessThan(2000);
}

/** A HIS record posted from another loopback address on a connection of its own; its status. */
function postFrom(port: URL, from = '127.0.0.2'): Promise<number> {
  return new Promise<number>((done, fail) => {
    const req = request(
      {
        host: port.hostname,
        port: port.port,
        localAddress: from,
        method: 'POST',
        path: '/hclient/emr/receive/emrPatientInfo',
        headers: { 'content-type': 'application/json' },
        agent: false,
      },
      (res) => {
        res.resume();
        res.on('end', () => done(res.statusCode ?? 0));
      },
    );
    req.on('error', fail);
    req.end('{"id":"P2"}');
  });
}

interface RawAnswer {
  status: number | null;
  text: string;
  closed: boolean;
}

/** Raw bytes to a port (nothing normalised by an HTTP client); the answer read until close or `ms`. */
function raw(url: URL, bytes: string | Buffer, ms = 2000): Promise<RawAnswer> {
  return new Promise((done) => {
    const s = connect({ host: url.hostname, port: Number(url.port) });
    let text = '';
    let closed = false;
    const finish = () => {
      clearTimeout(t);
      s.destroy();
      const m = /^HTTP\/1\.1 (\d{3}) /.exec(text);
      done({ status: m ? Number(m[1]) : null, text, closed });
    };
    const t = setTimeout(finish, ms);
    s.on('data', (c: Buffer) => (text += c.toString('latin1')));
    s.on('error', () => undefined);
    s.on('close', () => {
      closed = true;
      finish();
    });
    s.write(bytes);
  });
}

function logLines(): Array<{ msg: string; [k: string]: unknown }> {
  return readFileSync(join(rt.logsDir, 'runtime.log'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { msg: string });
}

async function invocations(fn: string): Promise<number> {
  const { user, password } = readCreds();
  const authorization = 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
  const res = await fetch(`${rt.gatewayUrl}/system/function/${fn}`, { headers: { authorization } });
  return ((await res.json()) as { invocationCount: number }).invocationCount;
}

function readCreds(): { user: string; password: string } {
  const read = (f: string) => readFileSync(join(rt.secretsDir, f), 'utf8').trim();
  return { user: read('basic-auth-user'), password: read('basic-auth-password') };
}

describe('malformed requests', () => {
  it('answers a malformed percent-escape in a receive path 400, on the data port, and goes on serving', async () => {
    for (const path of ['/hclient/emr/receive/%', '/hclient/emr/receive/%zz', '/hclient/emr/receive/%E4%B8', '/hclient/emr/receive/%C0%AF/x']) {
      const a = await raw(data, `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`);
      expect(a.status, path).toBe(400);
      const answer = JSON.parse(/\{.*\}/s.exec(a.text)![0]) as Record<string, unknown>;
      // The shape HIS adapters read (docs/his-guide.md).
      expect(answer).toMatchObject({ error: 'bad_request', result: false, id: null, errorCode: 'BAD_REQUEST' });
    }
    const res = await fetch(`${rt.portUrls.data}/hclient/emr/receive/%`);
    expect(res.status).toBe(400);
    await stillServing();
  });

  it("answers a malformed percent-escape anywhere in a path 400 on every port, as OpenFaaS does; the query is the function's", async () => {
    for (const [url, path] of [
      [data, '/function/echo/%zz'],
      [data, '/openapi%'],
      [gateway, '/function/echo/a%2'],
      [gateway, '/function/%/x'],
      [gateway, '/system/function/%G1'],
    ] as const) {
      const a = await raw(url, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      expect(a.status, path).toBe(400);
    }
    // Well-formed escapes (even of bytes that are not UTF-8) and the query are passed on untouched.
    const q = await fetch(`${rt.gatewayUrl}/function/echo/a%E4%B8?x=%zz`);
    expect(q.status).toBe(200);
    expect((await q.json()) as { query: string }).toMatchObject({ query: '?x=%zz' });
  });

  it('answers a request with two Host headers 400 on the data port (in the HIS shape) and the gateway, as OpenFaaS does', async () => {
    for (const url of [data, gateway]) {
      const a = await raw(url, `GET /function/echo/x HTTP/1.1\r\nHost: a.example\r\nhost: b.example\r\nConnection: close\r\n\r\n`);
      expect(a.status, url.href).toBe(400);
      expect(a.text).toContain('more than one Host header');
    }
    const his = await raw(data, `POST /hclient/emr/receive/emrPatientInfo HTTP/1.1\r\nHost: x\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`);
    expect(his.status).toBe(400);
    expect(JSON.parse(/\{.*\}/s.exec(his.text)![0])).toMatchObject({ result: false, errorCode: 'BAD_REQUEST' });
    await stillServing();
  });

  it('answers bytes that are not HTTP with 400 and closes, on the data port and the gateway', async () => {
    for (const url of [data, gateway]) {
      const a = await raw(url, 'GARBAGE\x00\x01 / HTTP/9\r\n\r\n');
      expect(a.status).toBe(400);
      expect(a.closed).toBe(true);
    }
    await stillServing();
  });

  it('answers Node’s own refusals on the data port in the HIS envelope: not HTTP (400), a header section over 16 KiB (431); on the configuration port in its own shape', async () => {
    const envelope = (text: string) => JSON.parse(Buffer.from(text.slice(text.indexOf('\r\n\r\n') + 4), 'latin1').toString('utf8')) as Record<string, unknown>;
    const garbage = await raw(data, 'GARBAGE\x00\x01 / HTTP/9\r\n\r\n');
    expect(garbage.status).toBe(400);
    expect(garbage.text).toMatch(/\r\nContent-Type: application\/json/i);
    expect(envelope(garbage.text)).toMatchObject({ result: false, id: null, errorCode: 'BAD_REQUEST', errorName: '请求格式错误' });
    const big = await raw(data, `GET /hclient/emr/receive/emrPatientInfo/P1 HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(big.status).toBe(431);
    expect(envelope(big.text)).toMatchObject({ result: false, errorCode: 'BAD_REQUEST', errorName: '请求头过大' });
    // The configuration port in its own refusal shape, as its function refuses (docs/config-bundles.md §3).
    const config = await raw(new URL(rt.portUrls.config!), 'GARBAGE\x00\x01 / HTTP/9\r\n\r\n');
    expect(config.status).toBe(400);
    expect(envelope(config.text)).toEqual({ error: { code: 'invalid-request', reason: 'not an HTTP/1.1 request (nothing applied)' }, applied: false });
    // The admin gateway, for operators' tools, answers as Node does: no body.
    const gw = await raw(gateway, 'GARBAGE\x00\x01 / HTTP/9\r\n\r\n');
    expect(gw.text).toMatch(/Content-Length: 0\r\n\r\n$/);
    await stillServing();
  });

  it('survives a seeded fuzz of paths, methods, headers and bodies on the data port and the gateway', async () => {
    const rnd = mulberry32(20261203);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const methods = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'TRACE', 'CONNECT', 'PROPFIND', 'get', 'P0ST', 'G\tET', ''];
    const segments = [
      'hclient',
      'emr',
      'receive',
      'function',
      'async-function',
      'system',
      'functions',
      'function',
      'scale-function',
      'logs',
      'info',
      'echo',
      'limited',
      'nope',
      'emrPatientInfo',
      'emrDailyCourse',
      '_',
      'health',
      'ready',
      'healthz',
      'early',
      '%',
      '%2',
      '%zz',
      '%E4%B8',
      '%C0%AF',
      '%00',
      '%FF',
      '..',
      '.',
      '%2e%2e',
      '%2F',
      '',
      '中文',
      '%E4%B8%AD',
      '\\',
      '@',
      '*',
      ':',
      'x'.repeat(2000),
      '?',
      '?a=%',
      '?x=1&y',
      '#frag',
      ';',
      '%%',
      '%u0041',
    ];
    const headers = [
      'Content-Type: application/json',
      'Content-Length: abc',
      'Content-Length: -1',
      'Content-Length: 1, 2',
      'Content-Length: 99999999999999999999',
      'Transfer-Encoding: chunked',
      'Transfer-Encoding: gzip',
      'Expect: 100-continue',
      'Expect: nonsense',
      'X-Call-Id: ../../etc',
      'X-Call-Id: ' + 'c'.repeat(300),
      'X-Timeout: junk',
      'X-Timeout: 1ms',
      'X-Timeout: -5s',
      'Authorization: Basic %%%',
      'Authorization: Basic YWRtaW46',
      'Host:',
      'Host: [::1',
      'X-Forwarded-For: 10.0.0.1',
      'X-Client-Cert: junk',
      'X-Client-Verify: SUCCESS',
      'Connection: upgrade',
      'Upgrade: websocket',
      'Connection: close',
      'X-Callback-Url: http://127.0.0.1:1/',
      'X-Callback-Url: javascript:1',
      'Accept: */*',
      'Bad Header: x',
      'X-Long: ' + 'v'.repeat(9000),
      'X-Nul: a\x00b',
      ' Folded: x',
      'X-Utf8: 中文',
    ];
    // Every route the runtime has, then random segments: the fuzz must reach the router, not only the parser.
    const prefixes = [
      '/hclient/emr/receive/',
      '/hclient/emr/receive/emrDailyCourse/',
      '/hclient/emr/',
      '/function/echo/',
      '/function/limited/',
      '/function/',
      '/async-function/echo/',
      '/async-function/',
      '/system/function/',
      '/system/functions',
      '/system/scale-function/',
      '/system/logs?name=',
      '/healthz',
      '/function/echo/_/',
      '/',
      '//',
      '/openapi.json',
    ];
    const one = (): string | Buffer => {
      const path = pick(prefixes) + Array.from({ length: Math.floor(rnd() * 4) }, () => pick(segments)).join(pick(['/', '/', '?', '&', '']));
      const hs = Array.from({ length: Math.floor(rnd() * 4) }, () => pick(headers));
      let body = '';
      const kind = rnd();
      if (kind < 0.3) {
        body = rnd() < 0.5 ? '{"id":"F"}' : '\x00\xff{[';
        hs.push(`Content-Length: ${body.length + (rnd() < 0.2 ? -1 : 0)}`);
      } else if (kind < 0.4) {
        hs.push('Transfer-Encoding: chunked');
        body = rnd() < 0.5 ? '5\r\nhello\r\n0\r\n\r\n' : 'zz\r\nnot a chunk\r\n';
      }
      if (rnd() < 0.9) hs.push('Connection: close');
      return Buffer.from(`${pick(methods)} ${path} HTTP/1.1\r\nHost: fuzz\r\n${hs.map((h) => h + '\r\n').join('')}\r\n${body}`, 'utf8');
    };
    const statuses = new Map<number | null, number>();
    const targets = [data, gateway];
    let sent = 0;
    const worker = async () => {
      while (sent < 600) {
        sent++;
        const a = await raw(targets[sent % 2]!, one(), 1500);
        statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: 12 }, worker));
    // Answers of every kind came back (the fuzz reached the router, not only the HTTP parser)...
    expect([...statuses.keys()].filter((s) => s !== null && s < 300).length).toBeGreaterThan(0);
    expect(statuses.get(400) ?? 0).toBeGreaterThan(0);
    // ...no handler ever threw (the guard would have answered 500 and logged it)...
    expect(logLines().filter((l) => l.msg === 'request handler failed')).toEqual([]);
    // ...and the process is alive and serving.
    await stillServing();
  }, 120_000);
});

describe('request bodies', () => {
  it("refuses 9 MB and 50 MB bodies with 413 before reading them (over the function's MAX_BODY_BYTES), and goes on serving", async () => {
    const before = await invocations('limited');
    for (const size of [9_000_000, 50_000_000]) {
      const res = await fetch(`${rt.portUrls.data}/hclient/emr/receive/emrDailyCourse`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: Buffer.alloc(size, 0x20),
      });
      expect(res.status).toBe(413);
      expect(res.headers.get('x-openfaas-internal')).toBe('gateway');
      const answer = (await res.json()) as { result: boolean; errorCode: string; desc: string };
      expect(answer).toMatchObject({ result: false, errorCode: 'PAYLOAD_TOO_LARGE' });
      expect(answer.desc).toContain(`larger than ${8 * MiB} bytes`);
      await stillServing();
    }
    // Refused by the runtime: the function never saw them.
    expect(await invocations('limited')).toBe(before);
    // Under the limit, the same route takes it.
    const ok = await fetch(`${rt.portUrls.data}/hclient/emr/receive/emrDailyCourse`, { method: 'POST', body: Buffer.alloc(7 * MiB, 0x20) });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { bodyLength: number }).bodyLength).toBe(7 * MiB);
  });

  it('lets a caller that sends Connection: close read its 413 before the connection ends (its body read and dropped, never reset under it)', async () => {
    // The 9 MB body written whole, as curl or a HIS's HTTP client writes it, on a connection of its
    // own that asks to be closed after the answer: the answer must reach it, not a reset or EPIPE.
    const once = () =>
      new Promise<number | string>((done) => {
        const req = request({
          host: data.hostname,
          port: data.port,
          method: 'POST',
          path: '/hclient/emr/receive/emrDailyCourse',
          agent: false,
          headers: { 'content-type': 'application/json', connection: 'close', 'content-length': 9 * MiB },
        });
        req.on('response', (res) => {
          res.resume();
          res.once('end', () => done(res.statusCode ?? 0));
        });
        req.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
        req.end(Buffer.alloc(9 * MiB, 0x20));
      });
    const got: Array<number | string> = [];
    for (let i = 0; i < 8; i++) got.push(await once());
    expect(got).toEqual(Array(8).fill(413));
    await stillServing();
  });

  it('answers 413 to a caller that waits for 100 Continue, without taking its body', async () => {
    const a = await raw(
      data,
      `POST /hclient/emr/receive/emrDailyCourse HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${50 * MiB}\r\nExpect: 100-continue\r\n\r\n`,
    );
    expect(a.status).toBe(413);
    expect(a.text).not.toContain('100 Continue');
    const b = await raw(
      data,
      `POST /hclient/emr/receive/emrDailyCourse HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
      1000,
    );
    expect(b.text).toMatch(/^HTTP\/1\.1 100 Continue/);
  });

  it('counts a chunked body as it streams and cuts it off with 413 past the limit', async () => {
    let sentBytes = 0;
    let sentAtAnswer = -1;
    const status = await new Promise<number | string>((done) => {
      const req = request(
        { host: data.hostname, port: data.port, method: 'POST', path: '/hclient/emr/receive/emrDailyCourse', headers: { 'transfer-encoding': 'chunked' } },
        (res) => {
          sentAtAnswer = sentBytes;
          res.resume();
          done(res.statusCode ?? 0);
        },
      );
      req.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
      const chunk = Buffer.alloc(256 * 1024, 0x20);
      // Up to 64 MiB, but the answer must come once a little over 8 MiB has gone.
      const pump = () => {
        while (sentBytes < 64 * MiB && !req.destroyed) {
          sentBytes += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    expect(status).toBe(413);
    // Cut off: answered long before the 64 MiB were sent (not read to the end, then refused).
    expect(sentAtAnswer).toBeGreaterThan(8 * MiB);
    expect(sentAtAnswer).toBeLessThan(32 * MiB);
    await stillServing();
  });

  it('survives a function that answers before reading the body and drops the connection', async () => {
    const body = Buffer.alloc(7 * MiB, 0x20);
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`${rt.gatewayUrl}/function/limited/early`, { method: 'POST', body });
      expect([401, 502]).toContain(res.status);
      await res.arrayBuffer();
    }
    await sleep(300);
    await stillServing();
  });

  it("holds at most the data port's share of the bodies across its callers: beyond, 503 with Retry-After", async () => {
    // Three callers hold 7 MiB each of the port's 24 MiB: all of each body but the last byte has arrived.
    const held = ['127.0.0.1', '127.0.0.2', '127.0.0.3'].map((from) => holdBody(data, '/hclient/emr/receive/emrDailyCourse', 7 * MiB, from));
    // Time for their 21 MiB to reach the runtime on a loaded machine.
    await sleep(1500);
    try {
      // A fourth caller's 6 MiB do not fit beside them: the answer names the share that is full.
      expect(await postBody(data, '/hclient/emr/receive/emrDailyCourse', 6 * MiB, '127.0.0.4')).toMatchObject({
        status: 503,
        retryAfter: '1',
        errorCode: 'UNAVAILABLE',
        desc: expect.stringContaining('(the data port: 24 MiB)'),
      });
      // Small bodies still fit.
      await stillServing();
      for (const h of held) h.finish();
      // Their answers, once the runtime has passed the 7 MiB to the replica (late on a loaded machine).
      for (const h of held) await until(() => h.text().includes('\r\n'));
      for (const h of held) expect(h.text()).toMatch(/^HTTP\/1\.1 200 /);
    } finally {
      for (const h of held) h.socket.destroy();
    }
    // Their bytes are given back once they are answered: the same 6 MiB now fit.
    await sleep(200);
    expect((await postBody(data, '/hclient/emr/receive/emrDailyCourse', 6 * MiB, '127.0.0.4')).status).toBe(200);
  });

  /**
   * One address holds 7 MiB on `first`; its next body on `second` meets its share (503 naming it), the
   * same body from another address goes through, and the held one is answered once it is all sent.
   */
  async function oneCallersShare(o: {
    first: URL;
    firstPath: string;
    second: URL;
    secondPath: string;
    size: number;
    from: string;
    other: string;
    share: string;
  }) {
    const held = holdBody(o.first, o.firstPath, 7 * MiB, o.from);
    await sleep(800);
    try {
      expect(await postBody(o.second, o.secondPath, o.size, o.from)).toMatchObject({ status: 503, desc: expect.stringContaining(o.share) });
      expect((await postBody(o.second, o.secondPath, o.size, o.other)).status).toBe(200);
      held.finish();
      await until(() => held.text().includes('\r\n'));
      expect(held.text()).toMatch(/^HTTP\/1\.1 200 /);
    } finally {
      held.socket.destroy();
    }
  }

  it("lets one caller hold at most half of the data port's share: another caller still gets through", async () => {
    // 7 + 6 MiB from one address: over its 12 MiB.
    const path = '/hclient/emr/receive/emrDailyCourse';
    await oneCallersShare({
      first: data,
      firstPath: path,
      second: data,
      secondPath: path,
      size: 6 * MiB,
      from: '127.0.0.5',
      other: '127.0.0.6',
      share: '(this address on the data port: 12 MiB)',
    });
  });

  it('lets one caller hold one share over the other hospital ports together, not one on each', async () => {
    // 7 MiB held on the configuration port: 7 more on the console's port would pass its share (8 MiB,
    // made 10 MiB for the console's function, which takes bodies of 10 MiB).
    await oneCallersShare({
      first: new URL(rt.portUrls.config!),
      firstPath: '/bundles',
      second: new URL(rt.portUrls.web!),
      secondPath: '/login',
      size: 7 * MiB,
      from: '127.0.0.50',
      other: '127.0.0.51',
      share: '(this address on the other ports: 10 MiB)',
    });
    // A body as large as its function takes (10 MiB), over a caller's 8 MiB: its share makes room for it.
    await sleep(300);
    expect((await postBody(new URL(rt.portUrls.web!), '/login', 10 * MiB, '127.0.0.52')).status).toBe(200);
  });

  it('keeps the data port its share whatever bodies the other ports hold', async () => {
    // Four callers of the admin gateway (the other ports' side) try to hold 7 MiB each, 28 of the
    // 32 MiB: the third and fourth do not fit in the other ports' 16 MiB.
    const logged = logLines().length;
    const held = [0, 1, 2, 3].map(() => holdBody(gateway, '/function/limited', 7 * MiB));
    try {
      await until(() => held.filter((h) => h.text().startsWith('HTTP/1.1 503')).length === 2);
      expect(held.find((h) => h.text().startsWith('HTTP/1.1 503'))!.text()).toContain(
        '(the configuration, monitoring and console ports and the gateway: 16 MiB)',
      );
      // runtime.log says which share was full and who filled it, once a minute per share.
      const busy = logLines()
        .slice(logged)
        .filter((l) => l.msg === 'request body refused: its share of the body budget is full');
      expect(busy.map((l) => l.share)).toContain('the configuration, monitoring and console ports and the gateway');
      expect(busy.filter((l) => l.share === 'the configuration, monitoring and console ports and the gateway')).toHaveLength(1);
      // And the gateway's metrics: what each share holds, its size, the refusals.
      let metrics = await (await fetch(`${rt.gatewayUrl}/metrics`)).text();
      const others = 'share="the configuration, monitoring and console ports and the gateway"';
      const value = (name: string, labels: string) => Number(new RegExp(`^${name}\\{${labels}\\} (\\d+)$`, 'm').exec(metrics)?.[1]);
      expect(value('cdc_runtime_request_body_refused_total', others)).toBeGreaterThanOrEqual(2);
      expect(value('cdc_runtime_request_body_limit_bytes', others)).toBe(16 * MiB);
      expect(value('cdc_runtime_request_body_limit_bytes', 'share="the data port"')).toBe(24 * MiB);
      // The two held bodies may still be arriving when the other two are refused (seen in CI on a
      // loaded machine: 12.4 MiB in so far): what the share holds is read again until their bytes are in.
      for (let i = 0; i < 50 && !(value('cdc_runtime_request_body_bytes', others) > 13 * MiB); i++) {
        await sleep(200);
        metrics = await (await fetch(`${rt.gatewayUrl}/metrics`)).text();
      }
      expect(value('cdc_runtime_request_body_bytes', others)).toBeGreaterThan(13 * MiB);
      // A HIS record of 7 MiB on the data port beside the two that are held.
      expect((await postBody(data, '/hclient/emr/receive/emrDailyCourse', 7 * MiB, '127.0.0.7')).status).toBe(200);
      await stillServing();
    } finally {
      for (const h of held) h.socket.destroy();
    }
  });

  it('does not let announced but unsent bodies hold the budget', async () => {
    // Four callers announce 8 MiB each (32 MiB, the whole budget) and send almost nothing.
    const idle = [0, 1, 2, 3].map(() => {
      const s = connect({ host: data.hostname, port: Number(data.port) });
      s.on('error', () => undefined);
      s.write(`POST /hclient/emr/receive/emrDailyCourse HTTP/1.1\r\nHost: x\r\nContent-Length: ${8 * MiB}\r\n\r\n{`);
      return s;
    });
    try {
      await sleep(300);
      const res = await fetch(`${rt.portUrls.data}/hclient/emr/receive/emrDailyCourse`, { method: 'POST', body: Buffer.alloc(6 * MiB, 0x20) });
      expect(res.status).toBe(200);
    } finally {
      for (const s of idle) s.destroy();
    }
  });
});

/**
 * A body of `size` bytes sent on a connection of its own from `from`, all but its last byte: held in
 * the runtime's budget until `finish` sends that byte. `text` is what the connection got back.
 */
function holdBody(port: URL, path: string, size: number, from = '127.0.0.1') {
  const socket = connect({ host: port.hostname, port: Number(port.port), localAddress: from });
  let text = '';
  socket.on('data', (c: Buffer) => (text += c.toString()));
  socket.on('error', () => undefined);
  socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n`);
  socket.write(Buffer.alloc(size - 1, 0x20));
  return { socket, text: () => text, finish: () => socket.write(' ') };
}

/** A whole body of `size` bytes posted from `from`: the status, Retry-After and the HIS error code. */
function postBody(port: URL, path: string, size: number, from: string): Promise<{ status: number; retryAfter?: string; errorCode?: string; desc?: string }> {
  return new Promise((done, fail) => {
    const req = request(
      { host: port.hostname, port: port.port, localAddress: from, method: 'POST', path, headers: { 'content-length': String(size) }, agent: false },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => {
          let a: { errorCode?: string; desc?: string } = {};
          try {
            a = JSON.parse(text) as typeof a;
          } catch {}
          done({
            status: res.statusCode ?? 0,
            ...(res.headers['retry-after'] ? { retryAfter: String(res.headers['retry-after']) } : {}),
            ...(a.errorCode ? { errorCode: a.errorCode } : {}),
            ...(a.desc ? { desc: a.desc } : {}),
          });
        });
      },
    );
    req.on('error', fail);
    req.end(Buffer.alloc(size, 0x20));
  });
}

describe("each address's share of a function's slots (the ports other than the data port)", () => {
  /** A GET of the console's port from `from` on a connection of its own: its status. */
  const getFrom = (from: string) =>
    new Promise<number>((done, fail) => {
      const web = new URL(rt.portUrls.web!);
      const req = request({ host: web.hostname, port: web.port, localAddress: from, path: '/status.html', agent: false }, (res) => {
        res.resume();
        res.on('end', () => done(res.statusCode ?? 0));
      });
      req.on('error', fail);
      req.end();
    });
  /** A request from `from` that holds its slot: its headers sent, its body not. */
  const holdFrom = (from: string) =>
    new Promise<Socket>((done) => {
      const web = new URL(rt.portUrls.web!);
      const s = connect({ host: web.hostname, port: Number(web.port), localAddress: from }, () => {
        s.write('POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n');
        done(s);
      });
      s.on('error', () => undefined);
    });

  it('lets one address hold at most half of the slots (2 of max_inflight 4): its next request 429 at once, another address served; freed when its requests end', async () => {
    const held = [await holdFrom('127.0.0.61'), await holdFrom('127.0.0.61')];
    try {
      await sleep(300);
      expect(await getFrom('127.0.0.61')).toBe(429);
      // Another PC still has the other half.
      expect(await getFrom('127.0.0.62')).toBe(200);
      const logged = () => logLines().some((l) => l.msg === 'request refused: this address holds its share of the function’s slots' && l.peer === '127.0.0.61');
      expect(await until(logged, 5000)).toBe(true);
    } finally {
      for (const s of held) s.destroy();
    }
    let again = 0;
    for (let i = 0; i < 50 && again !== 200; i++) {
      await sleep(100);
      again = await getFrom('127.0.0.61');
    }
    expect(again).toBe(200);
    // The data port has no such share: a HIS sends as many records at once as the function takes.
    expect(await postFrom(data, '127.0.0.61')).toBe(200);
  });
});

describe('slow connections', () => {
  it('2,000 slowloris connections neither stop normal traffic nor stay past the headers timeout; one host holds at most its cap', async () => {
    const slow: Socket[] = [];
    const oneHost: Socket[] = [];
    const silent: Socket[] = [];
    const connectedAt = new Map<Socket, number>();
    const closedAt = new Map<Socket, number>();
    const answers = new Map<Socket, string>();
    let trickle: NodeJS.Timeout | undefined;
    /** Opens a connection from `from` and sends the start of a request whose headers never end. */
    const open = (from: string, into: Socket[]) =>
      new Promise<void>((done) => {
        const s = connect({ host: data.hostname, port: Number(data.port), localAddress: from });
        into.push(s);
        s.on('error', () => undefined);
        s.on('data', (c: Buffer) => answers.set(s, (answers.get(s) ?? '') + c.toString()));
        s.on('close', () => closedAt.set(s, Date.now()));
        s.once('connect', () => {
          connectedAt.set(s, Date.now());
          s.write('POST /hclient/emr/receive/emrPatientInfo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n');
          done();
        });
        s.once('close', () => done());
      });
    try {
      // 2,000 from 20 addresses (100 each, under the per-peer cap): all held open by the runtime...
      for (let batch = 0; batch < 10; batch++) {
        await Promise.all(Array.from({ length: 200 }, (_, i) => open(`127.0.0.${10 + (i % 20)}`, slow)));
      }
      // ...and 400 more from one address, beyond its cap...
      await Promise.all(Array.from({ length: 400 }, () => open('127.0.0.3', oneHost)));
      // ...and 50 that connect and never send a byte.
      for (let i = 0; i < 50; i++) {
        const s = connect({ host: data.hostname, port: Number(data.port), localAddress: '127.0.0.4' });
        s.on('error', () => undefined);
        s.on('data', (c: Buffer) => answers.set(s, (answers.get(s) ?? '') + c.toString()));
        s.on('close', () => closedAt.set(s, Date.now()));
        s.once('connect', () => connectedAt.set(s, Date.now()));
        silent.push(s);
      }
      const all = [...slow, ...oneHost, ...silent];
      trickle = setInterval(() => {
        for (const s of [...slow, ...oneHost]) if (!s.destroyed) s.write(`X-Slow-${Date.now() % 1000}: a\r\n`);
      }, 300);
      await sleep(300);
      expect(slow.filter((s) => !s.destroyed)).toHaveLength(2000);
      // A connection over the address's cap is closed without an answer when the runtime accepts it,
      // which can be well after the caller saw it connect: a runtime behind on its accept queue (a
      // busy machine) has not yet taken them all. So the refusals are waited for, not a fixed time
      // — until the ones beyond the cap are refused, or every connection of the address is closed
      // (a runtime without the cap answers them all 408 at the headers timeout: none refused).
      const refused = () => oneHost.filter((s) => closedAt.has(s) && !answers.has(s)).length;
      while (refused() < oneHost.length - PER_PEER && oneHost.some((s) => !closedAt.has(s))) await sleep(50);
      const heldFromOne = oneHost.length - refused();
      expect(heldFromOne).toBeLessThanOrEqual(PER_PEER);
      expect(heldFromOne).toBeGreaterThan(PER_PEER / 2);

      // Normal traffic from another address is served promptly while they are all open.
      for (let i = 0; i < 5; i++) {
        const t = Date.now();
        expect(await postFrom(data)).toBe(200);
        expect(Date.now() - t).toBeLessThan(1000);
      }
      expect(slow.filter((s) => !s.destroyed)).toHaveLength(2000);

      // The runtime closes every slow one itself (408) within the headers timeout and its check
      // interval, counted from each connection's own opening (docs/runtime.md "Limits"), not from
      // the test's start: opening 2,450 sockets takes seconds when the runtime is behind on its
      // accept queue (connections it has no room for yet are retried by the kernel a second later).
      const bound = (HEADERS_TIMEOUT_S + 5) * 1000;
      const lastOpened = Math.max(...connectedAt.values());
      while (Date.now() < lastOpened + bound && all.some((s) => !closedAt.has(s))) await sleep(100);
      expect(all.filter((s) => !closedAt.has(s)).length).toBe(0);
      expect(all.filter((s) => closedAt.get(s)! - connectedAt.get(s)! > bound).length).toBe(0);
      expect(slow.filter((s) => (answers.get(s) ?? '').startsWith('HTTP/1.1 408')).length).toBe(2000);
      expect(silent.filter((s) => (answers.get(s) ?? '').startsWith('HTTP/1.1 408')).length).toBe(50);
      expect(logLines().some((l) => l.msg === 'connection refused: peer at its connection cap')).toBe(true);
    } finally {
      if (trickle) clearInterval(trickle);
      for (const s of [...slow, ...oneHost, ...silent]) s.destroy();
    }
    await stillServing();
  }, 60_000);
});

describe('a hospital port at its connection cap', () => {
  it('closes its longest-idle connection to admit a new one, never one with a request in progress, and refuses only when all are busy', async () => {
    const CAP = 40;
    const small = await spawnRuntime(join(fixtureDir, 'limits.yml'), {
      RUNTIME_MAX_CONNECTIONS: String(CAP),
      RUNTIME_HEADERS_TIMEOUT: '30s',
      RUNTIME_REQUEST_TIMEOUT: '60s',
    });
    const port = new URL(small.portUrls.data!);
    const sockets: Socket[] = [];
    const answered = new Set<Socket>();
    const closed = new Set<Socket>();
    const dial = (from: string, send?: string) =>
      new Promise<Socket>((ok, fail) => {
        const s = connect({ host: port.hostname, port: Number(port.port), localAddress: from });
        s.on('error', () => undefined);
        s.on('data', () => answered.add(s));
        s.on('close', () => closed.add(s));
        s.once('connect', () => {
          if (send) s.write(send);
          ok(s);
        });
        s.once('error', fail);
        sockets.push(s);
      });
    // Headers complete, 10 bytes of a 100-byte body: a request in progress.
    const BUSY = 'POST /hclient/emr/receive/emrPatientInfo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"id":"P1"';
    try {
      const busy = await Promise.all(Array.from({ length: CAP / 2 }, () => dial('127.0.0.5', BUSY)));
      // Each busy one's request reached the runtime (its headers are in) before the idle ones open.
      await sleep(500);
      const idle: Socket[] = [];
      for (let i = 0; i < CAP / 2; i++) idle.push(await dial(`127.0.0.${10 + (i % 4)}`));
      await sleep(300);
      expect(sockets.filter((s) => closed.has(s))).toHaveLength(0);
      // The port is full: a HIS's requests are still served, each taking an idle connection's room.
      for (let i = 0; i < 5; i++) expect(await postFrom(port)).toBe(200);
      // Newer idle connections take the room of older ones.
      const newer: Socket[] = [];
      for (let i = 0; i < 8; i++) newer.push(await dial('127.0.0.15'));
      await until(() => idle.filter((s) => closed.has(s)).length >= 8);
      // The ones closed are the oldest idle ones, without an answer; the newer are open, every busy one too.
      const gone = idle.map((s, i) => (closed.has(s) ? i : -1)).filter((i) => i >= 0);
      expect(gone.length).toBeGreaterThanOrEqual(8);
      expect(gone).toEqual(Array.from({ length: gone.length }, (_, i) => i));
      expect(idle.some((s) => answered.has(s))).toBe(false);
      expect(newer.filter((s) => closed.has(s))).toHaveLength(0);
      expect(busy.filter((s) => closed.has(s))).toHaveLength(0);
      // Every connection busy: a newcomer is refused, and no busy one is closed for it.
      const held = [...busy, ...idle.filter((s) => !closed.has(s)), ...newer];
      for (const s of [...idle, ...newer]) if (!closed.has(s)) s.write(BUSY);
      await sleep(500);
      let late: Socket | undefined;
      for (let i = 0; i < CAP && !late; i++) {
        const s = await dial('127.0.0.20', BUSY);
        await sleep(100);
        if (closed.has(s)) late = s;
        else held.push(s);
      }
      expect(late, 'a newcomer refused once every connection is busy').toBeDefined();
      expect(answered.has(late!)).toBe(false);
      expect(held.filter((s) => closed.has(s))).toHaveLength(0);
      const lines = readFileSync(join(small.logsDir, 'runtime.log'), 'utf8');
      expect(lines).toContain('connection closed: idle, the port at its connection cap');
      expect(lines).toContain('connection refused: port at its connection cap');
      expect(small.child.exitCode, small.stderr()).toBeNull();
    } finally {
      for (const s of sockets) s.destroy();
      await small.stop();
    }
  }, 60_000);
});

describe('connection cap and settings', () => {
  it('closes connections beyond RUNTIME_MAX_CONNECTIONS at once, on the gateway too, and serves again once they go', async () => {
    const { rt: small } = await startFixtureRuntime({ autoscaler: false, limits: { maxConnections: 20 } });
    const gw = new URL(small.gatewayUrl);
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < 40; i++) {
        const s = connect({ host: gw.hostname, port: Number(gw.port) });
        s.on('error', () => undefined);
        sockets.push(s);
      }
      // Those beyond the cap are closed when the runtime accepts them, which a busy machine does late:
      // until at most the cap are left open (10 s at most).
      await until(() => sockets.filter((s) => !s.destroyed).length <= 20);
      const open = sockets.filter((s) => !s.destroyed).length;
      expect(open).toBeGreaterThanOrEqual(15);
      expect(open).toBeLessThanOrEqual(20);
      for (const s of sockets) s.destroy();
      await sleep(200);
      expect((await fetch(`${small.gatewayUrl}/healthz`)).status).toBe(200);
    } finally {
      for (const s of sockets) s.destroy();
      await small.close();
    }
  });

  it('reads the limits from RUNTIME_* variables, naming a bad one', () => {
    expect(runtimeLimits({})).toEqual({
      headersTimeoutMs: 20_000,
      requestTimeoutMs: 120_000,
      maxConnections: 4096,
      maxConnectionsPerPeer: 256,
      maxBufferedBytes: 256 * MiB,
      maxBufferedBytesPerCaller: 24 * MiB,
      autoscaleCeiling: availableParallelism(),
    });
    expect(
      runtimeLimits({ RUNTIME_HEADERS_TIMEOUT: '5s', RUNTIME_MAX_CONNECTIONS: '100', RUNTIME_AUTOSCALE_CEILING: '3' }, { maxBufferedBytes: 1 }),
    ).toMatchObject({
      headersTimeoutMs: 5000,
      maxConnections: 100,
      maxBufferedBytes: 1,
      autoscaleCeiling: 3,
    });
    expect(() => runtimeLimits({ RUNTIME_HEADERS_TIMEOUT: 'soon' })).toThrow(/RUNTIME_HEADERS_TIMEOUT/);
    expect(() => runtimeLimits({ RUNTIME_MAX_CONNECTIONS_PER_PEER: '0' })).toThrow(/RUNTIME_MAX_CONNECTIONS_PER_PEER/);
    expect(() => runtimeLimits({ RUNTIME_AUTOSCALE_CEILING: '0' })).toThrow(/RUNTIME_AUTOSCALE_CEILING/);
  });
});

/** A small seeded generator: the fuzz sends the same requests on every run. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
