/**
 * The runtime running stack.yml on free loopback ports, as on a hospital's server, for tests that
 * talk to the front the way a HIS or an operator does: the test database as its one secret, HIS
 * callers admitted from loopback, no push unless asked (nudges to a closed port; the platform URL a
 * closed port too: nothing reaches a real platform), cron and the autoscaler off unless asked.
 *
 *   const front = await startStackRuntime('answers');          // in beforeAll
 *   await fetch(`${front.rt.portUrls.data}/hclient/emr/receive/emrPatientInfo`, …);
 *   await front.close();                                       // in afterAll
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startRuntime, type RuntimeHandle, type RuntimeOptions } from '../../infra/runtime/index.js';
import { freePort } from '../../infra/runtime/replica.js';
import { databaseUrl } from './db.js';
import { withPortRetry } from './ports.js';

export interface StackRuntime {
  rt: RuntimeHandle;
  /** The temporary folder holding secrets/ and logs/. */
  dir: string;
  close(): Promise<void>;
}

/**
 * Starts the runtime; `env` is added to (and overrides) the defaults above, `over` overrides any
 * runtime option (pass `autoscaler: undefined` to keep the autoscaler's defaults).
 */
export async function startStackRuntime(name: string, env: Record<string, string> = {}, over: Partial<RuntimeOptions> = {}): Promise<StackRuntime> {
  return withPortRetry(() => startOnce(name, env, over));
}

async function startOnce(name: string, env: Record<string, string>, over: Partial<RuntimeOptions>): Promise<StackRuntime> {
  const dir = mkdtempSync(join(tmpdir(), `cdc-${name}-`));
  mkdirSync(join(dir, 'secrets'));
  writeFileSync(join(dir, 'secrets', 'cdc-database-url'), databaseUrl());
  try {
    const rt = await startRuntime({
      stackFile: resolve('stack.yml'),
      env: {
        DATA_PORT: String(await freePort()),
        CONFIG_PORT: String(await freePort()),
        MONITOR_PORT: String(await freePort()),
        WEB_PORT: String(await freePort()),
        HIS_ALLOW: '127.0.0.1/8,::1/128',
        NATIONAL_URL: `http://127.0.0.1:${await freePort()}`,
        // No push unless a test asks (PUSH_NUDGE_URL: '' for stack.yml's own, or its cron): the test
        // database is shared, and a push to this closed port would put every file's pending rows of
        // the `national` destination into backoff (test/e2e/his-to-platform.test.ts waits on them).
        PUSH_NUDGE_URL: `http://127.0.0.1:${await freePort()}/async-function/push`,
        ...env,
      },
      secretsDir: join(dir, 'secrets'),
      logsDir: join(dir, 'logs'),
      logToStdout: false,
      gateway: { host: '127.0.0.1', port: await freePort() },
      hospital: { host: '127.0.0.1' },
      cron: false,
      autoscaler: false,
      build: 'missing',
      ...over,
    });
    return {
      rt,
      dir,
      async close() {
        await rt.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
