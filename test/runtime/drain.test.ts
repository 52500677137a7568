// A function under of-watchdog is sent SIGTERM at once while the watchdog keeps routing requests to
// it for healthcheck_interval (it only marks itself unhealthy). The template's server therefore keeps
// answering for that interval, then drains what is in flight and exits 0 (docs/runtime.md "Stopping").
// The bundle is run here exactly as of-watchdog runs it: `node index.js` with http_port and the
// watchdog's timeouts in its environment.
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../infra/runtime/replica.js';
import { buildFixtures, fixtureDir, sleep } from './helpers.js';

beforeAll(async () => {
  await buildFixtures();
}, 120_000);

/** One request on a fresh connection (as the watchdog's proxy opens them): status, or the error code. */
function get(port: number, path: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    req.end();
  });
}

async function startBundle(env: Record<string, string>): Promise<{ child: ChildProcess; port: number; out: () => string; exit: Promise<number | null> }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['index.js'], {
    cwd: join(fixtureDir, 'functions/slow/dist'),
    env: { PATH: process.env.PATH ?? '', http_port: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const end = Date.now() + 15_000;
  while (!out.includes('"listening"') && Date.now() < end) await sleep(25);
  expect(out).toContain('"listening"');
  return { child, port, out: () => out, exit };
}

describe('stopping under of-watchdog', () => {
  it('keeps serving for healthcheck_interval after SIGTERM, then drains in-flight work and exits 0', { timeout: 60_000 }, async () => {
    const fn = await startBundle({ healthcheck_interval: '2s', write_timeout: '10s', exec_timeout: '8s' });
    const t0 = Date.now();
    const long = get(fn.port, '/work?ms=3000'); // in flight across the whole shutdown
    await sleep(100);
    fn.child.kill('SIGTERM');
    // Inside the interval: new connections are still answered (the watchdog still routes them).
    await sleep(300);
    expect(await get(fn.port, '/soon')).toBe(200);
    await sleep(1000);
    expect(await get(fn.port, '/later')).toBe(200);
    // The long request ends normally, then the process exits cleanly after the interval.
    expect(await long).toBe(200);
    expect(await fn.exit).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2000);
    const lines = fn.out();
    expect(lines.indexOf('still serving until the watchdog stops routing')).toBeLessThan(lines.indexOf('"draining"'));
    expect(lines).toContain('"stopped"');
  });

  it('with no healthcheck_interval waits write_timeout, as of-watchdog defaults it', { timeout: 30_000 }, async () => {
    const fn = await startBundle({ write_timeout: '1500ms' });
    fn.child.kill('SIGTERM');
    await sleep(800);
    expect(await get(fn.port, '/still')).toBe(200);
    expect(await fn.exit).toBe(0);
  });

  it('this runtime stops its replicas at once: it takes them out of rotation first (healthcheck_interval 0)', { timeout: 30_000 }, async () => {
    const fn = await startBundle({ healthcheck_interval: '0s', write_timeout: '10s' });
    const t0 = Date.now();
    fn.child.kill('SIGTERM');
    expect(await fn.exit).toBe(0);
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(await get(fn.port, '/gone')).toBe('ECONNREFUSED');
  });
});
