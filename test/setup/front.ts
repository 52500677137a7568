/**
 * The whole front for browser tests: the runtime running stack.yml on free loopback ports (as in
 * production, on the test database; cron and autoscaler off, pushes to a closed port), and Debian's
 * Chromium driven by playwright-core. A machine without the browser fails the test, not skips it.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { databaseUrl } from './db.js';
import { startRuntime, type RuntimeHandle } from '../../infra/runtime/index.js';
import { freePort } from '../../infra/runtime/replica.js';

export const CHROMIUM = '/usr/bin/chromium';

export interface TestFront {
  rt: RuntimeHandle;
  browser: Browser;
  close(): Promise<void>;
}

export async function startTestFront(): Promise<TestFront> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: the browser tests need Debian's Chromium (apt-get install chromium; .ci/run installs it)`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'cdc-browser-'));
  let rt: RuntimeHandle | undefined;
  let browser: Browser | undefined;
  const close = async () => {
    await browser?.close();
    await rt?.close();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    mkdirSync(join(dir, 'secrets'));
    writeFileSync(join(dir, 'secrets', 'cdc-database-url'), databaseUrl());
    rt = await startRuntime({
      stackFile: resolve('stack.yml'),
      env: {
        DATA_PORT: String(await freePort()),
        CONFIG_PORT: String(await freePort()),
        MONITOR_PORT: String(await freePort()),
        WEB_PORT: String(await freePort()),
        // The development fallback (stack.yml leaves it empty): loopback callers are the clinicians here.
        HIS_ALLOW: '127.0.0.1/8,::1/128',
        // Nothing is pushed in these tests; the push function must not reach a real platform.
        NATIONAL_URL: `http://127.0.0.1:${await freePort()}`,
      },
      secretsDir: join(dir, 'secrets'),
      logsDir: join(dir, 'logs'),
      logToStdout: false,
      gateway: { host: '127.0.0.1', port: await freePort() },
      hospital: { host: '127.0.0.1' },
      cron: false,
      autoscaler: false,
      build: 'missing',
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    return { rt, browser, close };
  } catch (err) {
    await close();
    throw err;
  }
}
