/**
 * The whole front for browser tests: the runtime running stack.yml on free loopback ports (as in
 * production, on the test database; cron and autoscaler off, pushes to a closed port), and Debian's
 * Chromium driven by playwright-core. A machine without the browser fails the test, not skips it.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import type { RuntimeHandle } from '../../infra/runtime/index.js';
import { startStackRuntime, type StackRuntime } from './stack-runtime.js';

export const CHROMIUM = '/usr/bin/chromium';

export interface TestFront {
  rt: RuntimeHandle;
  browser: Browser;
  /** The runtime's folder: secrets/ (the database URL, the gateway's and the SSO's keys) and logs/. */
  dir: string;
  close(): Promise<void>;
}

/**
 * `env` is added to the runtime's (e.g. NATIONAL_URL of a platform simulator); `chromiumArgs` to the
 * browser's (e.g. `--host-resolver-rules=MAP front.lan 127.0.0.1`: a name the browser does not take
 * for a secure context, as a hospital PC reaching the front by its LAN name over plain HTTP).
 */
export async function startTestFront(env: Record<string, string> = {}, o: { chromiumArgs?: string[] } = {}): Promise<TestFront> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: the browser tests need Debian's Chromium (apt-get install chromium; .ci/run installs it)`);
  }
  let front: StackRuntime | undefined;
  let browser: Browser | undefined;
  const close = async () => {
    await browser?.close();
    await front?.close();
  };
  try {
    // HIS_ALLOW's loopback rule (the development fallback) makes loopback callers the clinicians here.
    front = await startStackRuntime('browser', env);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        ...(o.chromiumArgs ?? []),
      ],
    });
    return { rt: front.rt, browser, dir: front.dir, close };
  } catch (err) {
    await close();
    throw err;
  }
}
