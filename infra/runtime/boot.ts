/**
 * The runtime on free loopback ports, as tests, the bench and the soak harness start it: one
 * helper instead of a copy per file (docs/runtime.md "Booting it in tests and the bench"). A
 * temporary folder holds the secrets (the database URL as the one secret given) and the logs;
 * the four hospital ports and the gateway take free ports; HIS callers are admitted from loopback
 * (the development fallback); nothing is pushed unless asked — the platform and the push nudge
 * point at closed ports — and cron and the autoscaler are off.
 *
 *   const front = await bootStack({ name: 'answers', databaseUrl });
 *   await fetch(`${front.rt.portUrls.data}/hclient/emr/receive/emrPatientInfo`, …);
 *   await front.close();
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startRuntime, type RuntimeHandle, type RuntimeOptions } from './index.js';
import { freePort } from './replica.js';

export interface BootOptions {
  /** The temporary folder's prefix (cdc-<name>-…). */
  name: string;
  /** Written as the secret file cdc-database-url. */
  databaseUrl: string;
  /** Default: stack.yml in the working directory. */
  stackFile?: string;
  /** Added to (and overriding) the defaults above; '' for PUSH_NUDGE_URL takes stack.yml's own. */
  env?: Record<string, string>;
  /** Any runtime option, over these defaults (e.g. cron: undefined for the connector's own). */
  runtime?: Partial<RuntimeOptions>;
  /** Files to put beside cdc-database-url in the secrets folder. */
  secrets?: Record<string, string>;
}

export interface Booted {
  rt: RuntimeHandle;
  /** The temporary folder: secrets/ and logs/. */
  dir: string;
  /** The gateway's port, known before the start (for nudges that name it). */
  gatewayPort: number;
  /** Stops the runtime and removes the folder. */
  close(): Promise<void>;
}

export async function bootStack(o: BootOptions): Promise<Booted> {
  const dir = mkdtempSync(join(tmpdir(), `cdc-${o.name}-`));
  mkdirSync(join(dir, 'secrets'));
  writeFileSync(join(dir, 'secrets', 'cdc-database-url'), o.databaseUrl);
  for (const [name, text] of Object.entries(o.secrets ?? {})) writeFileSync(join(dir, 'secrets', name), text, { mode: 0o600 });
  const gatewayPort = o.runtime?.gateway?.port ?? (await freePort());
  try {
    const env: Record<string, string> = {
      DATA_PORT: String(await freePort()),
      CONFIG_PORT: String(await freePort()),
      MONITOR_PORT: String(await freePort()),
      WEB_PORT: String(await freePort()),
      HIS_ALLOW: '127.0.0.1/8,::1/128',
      NATIONAL_URL: `http://127.0.0.1:${await freePort()}`,
      // No push unless asked: a push to this closed port would put every pending row of a shared
      // database's destinations into backoff. '' takes stack.yml's own (${VAR:-default} treats an
      // empty value as unset), the gateway by name, which the runtime resolves.
      PUSH_NUDGE_URL: `http://127.0.0.1:${await freePort()}/async-function/push`,
      ...o.env,
    };
    const rt = await startRuntime({
      stackFile: resolve(o.stackFile ?? 'stack.yml'),
      env,
      secretsDir: join(dir, 'secrets'),
      logsDir: join(dir, 'logs'),
      logToStdout: false,
      gateway: { host: '127.0.0.1', port: gatewayPort },
      hospital: { host: '127.0.0.1' },
      cron: false,
      autoscaler: false,
      build: 'missing',
      ...o.runtime,
    });
    return {
      rt,
      dir,
      gatewayPort,
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
