/**
 * Server entry of the Hono template: serves the function's Hono app on http_port, the way the
 * OpenFaaS node templates do under of-watchdog (mode=http, upstream_url=http://127.0.0.1:3000).
 * esbuild bundles this file with the function's handler into one file per function
 * (functions/<name>/dist/index.js): the one artifact both runtimes run.
 *
 * `node index.js --self-test` loads the handler and checks it answers without opening anything;
 * the Dockerfile runs it at image build (the templates' "tests at image build").
 */
import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { assertPlatform } from '../../../../shared/platform/index.js';
import { release } from '../../../../shared/status/version.js';
import handler from './function/handler.js';

/** What a handler exports (shared/fn defineFunction): the Hono app and an optional init/close pair. */
interface FunctionModule {
  app: { fetch: (req: Request, env?: unknown) => Response | Promise<Response>; request: (path: string) => Response | Promise<Response> };
  init?: () => Promise<void>;
  close?: () => Promise<void>;
}
const fn = handler as FunctionModule;

const port = Number(process.env.http_port ?? 3000);
const host = process.env.http_host ?? '127.0.0.1';
const drainMs = parseDuration(process.env.write_timeout ?? '10s');
// of-watchdog keeps routing requests for healthcheck_interval after SIGTERM (it only marks itself
// unhealthy so the platform stops sending), and forwards the SIGTERM to this process at once: the
// function keeps serving for that interval, then drains. Unset, of-watchdog uses write_timeout.
const graceMs = process.env.healthcheck_interval === undefined ? drainMs : parseDuration(process.env.healthcheck_interval);

function parseDuration(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m) return 10_000;
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return n * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as Record<string, number>)[unit]!;
}

function log(level: string, msg: string, extra: Record<string, unknown> = {}): void {
  process.stdout.write(JSON.stringify({ ts: new Date().toISOString(), level, msg, ...extra }) + '\n');
}

async function selfTest(): Promise<void> {
  // An image whose base node cannot run the front fails its build here (docs/runtime.md "Node.js and its OpenSSL").
  assertPlatform();
  if (!fn || typeof fn.app?.fetch !== 'function') throw new Error('handler does not export a Hono app');
  const res = await fn.app.request('/__self_test_unknown_route__');
  if (res.status >= 500) throw new Error(`unknown route answered ${res.status}`);
  log('info', 'self-test passed', { status: res.status });
}

/**
 * An answer given before the request's body was all read (a 413 at a size limit, a refusal before
 * the body is parsed) closes the connection: after a body cut off midway the server destroys the
 * socket, and the caller's keep-alive agent — the runtime's, the watchdog's — would otherwise send
 * its next request, someone else's, down that socket and get a reset (a 502 to that caller).
 */
function closedIfUnread(res: Response, env: unknown): Response {
  const incoming = (env as { incoming?: { complete?: boolean } } | undefined)?.incoming;
  if (incoming?.complete !== false) return res;
  try {
    res.headers.set('connection', 'close');
    return res;
  } catch {
    // A response whose headers cannot change (one a fetch() returned): the same answer, new headers.
    const headers = new Headers(res.headers);
    headers.set('connection', 'close');
    return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
  }
}

async function main(): Promise<void> {
  if (process.argv.includes('--self-test')) {
    await selfTest();
    return;
  }
  assertPlatform();
  await fn.init?.();
  let inflight = 0;
  const server = serve({
    port,
    hostname: host,
    fetch: async (req: Request, env: unknown) => {
      inflight++;
      try {
        return closedIfUnread(await fn.app.fetch(req, env), env);
      } finally {
        inflight--;
      }
    },
  });
  // Idle keep-alive connections outlive the caller's (the runtime's or the watchdog's agent): the
  // server closing a socket just as the caller reuses it makes a reset the caller cannot retry.
  const http = server as unknown as { keepAliveTimeout: number; headersTimeout: number };
  http.keepAliveTimeout = 65_000;
  http.headersTimeout = 66_000;
  server.on('listening', () => {
    const addr = server.address() as AddressInfo;
    // The release the bundle was built as (shared/status/version.ts): the start line of every
    // function names it, on OpenFaaS as under this project's runtime (docs/deploy.md "Upgrade").
    log('info', 'listening', { port: addr.port, release });
  });
  let stopping = false;
  const stop = async (signal: string, graceful = true) => {
    if (stopping) return;
    stopping = true;
    if (graceful && graceMs > 0) {
      log('info', 'still serving until the watchdog stops routing', { signal, ms: graceMs });
      await new Promise((r) => setTimeout(r, graceMs));
    }
    log('info', 'draining', { signal, inflight });
    server.close();
    const deadline = Date.now() + drainMs;
    while (inflight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    try {
      await fn.close?.();
    } catch (err) {
      log('error', 'close failed', { err: String(err) });
    }
    log('info', 'stopped', { inflight });
    process.exit(0);
  };
  // The parent (of-watchdog, or this project's runtime) owns the process: if it dies without
  // signalling — SIGKILL, OOM — the function must not live on as an orphan holding connections.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) void stop('parent-exit', false);
  }, 1000).unref();
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((err) => {
  log('error', 'function failed to start', { err: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
