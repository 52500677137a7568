/**
 * The runtime on free loopback ports, as tests, the bench and the soak harness start it: one
 * helper instead of a copy per file (docs/runtime.md "Booting it in tests and the bench"). A
 * temporary folder holds the secrets (the database URL and any files given), the logs and, when
 * the caller writes its own, the stack file; the four hospital ports and the gateway take free
 * ports (a start that loses a chosen port to another process before binding it is tried again);
 * cron and the autoscaler are off. For the front's stack.yml (`frontDefaults`, the default) HIS
 * callers are admitted from loopback (the development fallback) and nothing is pushed unless asked:
 * the platform and the push nudge point at closed ports.
 *
 * Bundles are built once, before: by `make build` (the bench) or the tests' global setup; a start
 * builds only a bundle still missing (build: 'missing'), never one per start.
 *
 *   const front = await bootStack({ name: 'answers', databaseUrl });
 *   await fetch(`${front.urls.data}/hclient/emr/receive/emrPatientInfo`, …);
 *   await front.stop();
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startRuntime, type RuntimeHandle, type RuntimeOptions } from './index.js';
import { freePort } from './replica.js';

/**
 * A port nothing listens on, for ever: loopback port 2. A port that was merely free when chosen is
 * taken again by the next test or process that binds port 0 — its platform then "answers" — and
 * port 2 is below the range the kernel hands out, needs root to bind, and is not one fetch refuses.
 */
const CLOSED = 'http://127.0.0.1:2';
export interface BootOptions {
  /** The temporary folder's prefix (cdc-<name>-…). */
  name: string;
  /** Written as the secret file cdc-database-url (absent: no such file). */
  databaseUrl?: string;
  /** Default: stack.yml in the working directory. */
  stackFile?: string;
  /** A stack file's text to run instead (written into the folder; give handlers absolute paths or set runtime.projectDir). */
  stackYaml?: string;
  /**
   * The front's defaults in the environment (default true): HIS_ALLOW for loopback, NATIONAL_URL
   * and PUSH_NUDGE_URL on closed ports. false for a stack that is not the front's (test fixtures).
   */
  frontDefaults?: boolean;
  /** PUSH_NUDGE_URL at this runtime's own gateway (nudged pushes run), instead of a closed port. */
  nudge?: boolean;
  /** Added to (and overriding) the defaults above; '' for PUSH_NUDGE_URL takes stack.yml's own. */
  env?: Record<string, string>;
  /** Environment naming files in the temporary folder (before `env`, which overrides it). */
  envFrom?: (dir: string) => Record<string, string>;
  /** Any runtime option, over these defaults (e.g. cron: undefined for the connector's own). */
  runtime?: Partial<RuntimeOptions>;
  /** Files to put beside cdc-database-url in the secrets folder (mode 0600). */
  secrets?: Record<string, string>;
  /** Starts tried when a chosen port was taken before it was bound (default 3). */
  attempts?: number;
}

export interface Booted {
  rt: RuntimeHandle;
  /** The gateway and the hospital ports (data, config, monitor, web): http://127.0.0.1:port. */
  urls: { gateway: string } & Record<string, string>;
  /** The temporary folder: secrets/, logs/ (and stack.yml when given as text). */
  dir: string;
  secretsDir: string;
  /** The environment given to the runtime (ports included). */
  env: Record<string, string>;
  /** The gateway's port, known before the start (for nudges that name it). */
  gatewayPort: number;
  /** Stops the runtime and removes the folder (rt.close() does the same). */
  stop(): Promise<void>;
  /** The same as stop(). */
  close(): Promise<void>;
}

export async function bootStack(o: BootOptions): Promise<Booted> {
  const attempts = o.attempts ?? 3;
  for (let i = 1; ; i++) {
    try {
      return await bootOnce(o);
    } catch (err) {
      // "already in use" is a race with another process on the machine, not the code under test.
      if (i >= attempts || !/already in use/.test((err as Error).message)) throw err;
    }
  }
}

async function bootOnce(o: BootOptions): Promise<Booted> {
  const dir = mkdtempSync(join(tmpdir(), `cdc-${o.name}-`));
  const secretsDir = join(dir, 'secrets');
  mkdirSync(secretsDir);
  if (o.databaseUrl !== undefined) writeFileSync(join(secretsDir, 'cdc-database-url'), o.databaseUrl);
  for (const [name, text] of Object.entries(o.secrets ?? {})) writeFileSync(join(secretsDir, name), text, { mode: 0o600 });
  let stackFile = resolve(o.stackFile ?? 'stack.yml');
  if (o.stackYaml !== undefined) writeFileSync((stackFile = join(dir, 'stack.yml')), o.stackYaml);
  try {
    const gatewayPort = o.runtime?.gateway?.port ?? (await freePort());
    const front = o.frontDefaults ?? true;
    const env: Record<string, string> = {
      DATA_PORT: String(await freePort()),
      CONFIG_PORT: String(await freePort()),
      MONITOR_PORT: String(await freePort()),
      WEB_PORT: String(await freePort()),
      ...(front
        ? {
            HIS_ALLOW: '127.0.0.1/8,::1/128',
            NATIONAL_URL: CLOSED,
            // No push unless asked: a push to this closed port would put every pending row of a shared
            // database's destinations into backoff. '' takes stack.yml's own (${VAR:-default} treats an
            // empty value as unset), the gateway by name, which the runtime resolves.
            PUSH_NUDGE_URL: o.nudge ? `http://127.0.0.1:${gatewayPort}/async-function/push` : `${CLOSED}/async-function/push`,
          }
        : {}),
      ...o.envFrom?.(dir),
      ...o.env,
    };
    const rt = await startRuntime({
      stackFile,
      env,
      secretsDir,
      logsDir: join(dir, 'logs'),
      logToStdout: false,
      gateway: { host: '127.0.0.1', port: gatewayPort },
      hospital: { host: '127.0.0.1' },
      cron: false,
      autoscaler: false,
      build: 'missing',
      ...o.runtime,
    });
    // The folder goes with the runtime, whichever of the two a caller closes.
    const closeRuntime = rt.close.bind(rt);
    let closing: Promise<void> | undefined;
    const stop = () =>
      (closing ??= (async () => {
        try {
          await closeRuntime();
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      })());
    rt.close = stop;
    const port = (u: string) => Number(new URL(u).port);
    return {
      rt,
      urls: { gateway: rt.gatewayUrl, ...rt.portUrls },
      dir,
      secretsDir,
      env,
      gatewayPort: port(rt.gatewayUrl),
      stop,
      close: stop,
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
