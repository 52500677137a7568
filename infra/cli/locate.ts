/**
 * Where `make up` puts things, and where the operator commands (bin/cdc-faas, bin/cdc-callers,
 * bin/cdc-codes) look for them: one set of variables with one set of defaults (README.md §What
 * `make up` starts). When something is not found, the error lists every place that was tried.
 *
 *   CDC_DATA_DIR      <project>/.data           data, logs, secrets, pid files
 *   CDC_SECRETS_DIR   <data dir>/secrets        cdc-database-url, basic-auth-user/-password, …
 *   CDC_LOGS_DIR      <data dir>/logs
 *   DATABASE_URL      unset → the secret file cdc-database-url that `make up` writes
 *   OPENFAAS_URL      unset → http://GATEWAY_HOST:GATEWAY_PORT (127.0.0.1:8080)
 *   GATEWAY_PORT, DATA_PORT, CONFIG_PORT, MONITOR_PORT, WEB_PORT, PG_PORT, NATIONAL_SIM_PORT, S3_PORT
 *   PG_DATABASE       the one given last, else cdcfront   the embedded PostgreSQL's database of the front:
 *                     make up remembers a PG_DATABASE it was given (<data dir>/pg-database), so that a
 *                     start without it stays on a restored database (docs/backup.md "Restore")
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type pg from 'pg';
import { z } from 'zod';
import { closePool, openPool } from '../../shared/db/index.js';
import { projectRoot } from '../root.js';

export { projectRoot };

type Env = Record<string, string | undefined>;

const Port = z.coerce.number().int().min(0).max(65535);

const LocationEnv = z.object({
  CDC_DATA_DIR: z.string().optional(),
  CDC_SECRETS_DIR: z.string().optional(),
  CDC_LOGS_DIR: z.string().optional(),
  GATEWAY_HOST: z.string().default('127.0.0.1'),
  GATEWAY_PORT: Port.default(8080),
  DATA_PORT: Port.default(8881),
  CONFIG_PORT: Port.default(8882),
  MONITOR_PORT: Port.default(8883),
  WEB_PORT: Port.default(8884),
  PG_PORT: Port.default(5432),
  /** The embedded server's database the front uses (docs/backup.md "Restore": one `make restore` brought back). */
  PG_DATABASE: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a database name: lower-case letters, digits and _')
    .optional(),
  NATIONAL_SIM_PORT: Port.default(18888),
  /** The provincial platform's simulator, started by `make up PROVINCIAL_SIM=1` (docs/uplink.md §9). */
  PROVINCIAL_SIM_PORT: Port.default(18889),
  /** The embedded backup store (s3rver, standing in for MinIO). */
  S3_PORT: Port.default(9000),
});

export type Locations = ReturnType<typeof locate>;

/** Where make up remembers the embedded server's database it was last given (PG_DATABASE). */
export const PG_DATABASE_FILE = 'pg-database';

/** The database PG_DATABASE names, else the one make up remembered, else cdcfront; and which it was. */
function pgDatabaseOf(given: string | undefined, dataDir: string): { name: string; from: 'PG_DATABASE' | 'remembered' | 'default' } {
  if (given) return { name: given, from: 'PG_DATABASE' };
  const file = join(dataDir, PG_DATABASE_FILE);
  const kept = existsSync(file) ? LocationEnv.shape.PG_DATABASE.safeParse(readFileSync(file, 'utf8').trim()) : undefined;
  if (kept?.success && kept.data) return { name: kept.data, from: 'remembered' };
  if (kept) throw new Error(`${file}: not a database name (remove it, or set PG_DATABASE)`);
  return { name: 'cdcfront', from: 'default' };
}

/** Empty variables count as unset (as a shell's `VAR=` does for the project's own defaults). */
function defined(env: Env): Env {
  return Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
}

/** The folders and ports `make up` uses, from the environment (default process.env). */
export function locate(env: Env = process.env) {
  const parsed = LocationEnv.safeParse(defined(env));
  if (!parsed.success) {
    throw new Error(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  }
  const e = parsed.data;
  const dataDir = resolve(e.CDC_DATA_DIR ?? join(projectRoot, '.data'));
  const db = pgDatabaseOf(e.PG_DATABASE, dataDir);
  return {
    dataDir,
    secretsDir: resolve(e.CDC_SECRETS_DIR ?? join(dataDir, 'secrets')),
    logsDir: resolve(e.CDC_LOGS_DIR ?? join(dataDir, 'logs')),
    /** Pid files of the children of `make up` (infra/dev/up.ts). */
    runDir: join(dataDir, 'run'),
    pgDataDir: join(dataDir, 'pg'),
    pgDatabase: db.name,
    /** Whether PG_DATABASE named it, make up remembered it, or it is the default. */
    pgDatabaseFrom: db.from,
    gatewayHost: e.GATEWAY_HOST,
    ports: {
      gateway: e.GATEWAY_PORT,
      data: e.DATA_PORT,
      config: e.CONFIG_PORT,
      monitor: e.MONITOR_PORT,
      web: e.WEB_PORT,
      pg: e.PG_PORT,
      nationalSim: e.NATIONAL_SIM_PORT,
      provincialSim: e.PROVINCIAL_SIM_PORT,
      s3: e.S3_PORT,
    },
  };
}

/** A path as an operator would type it: relative to the current folder when inside it. */
export function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') ? rel : path;
}

/** A database URL without its password, fit for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(not a URL)';
  }
}

export class NotFoundError extends Error {}

export interface FoundDatabase {
  url: string;
  /** Where the URL came from: `DATABASE_URL` or the secret file's path. */
  from: string;
}

/** DATABASE_URL, else the secret file cdc-database-url in the secrets folder (`make up` writes it). */
export function findDatabase(env: Env = process.env): FoundDatabase {
  const tried: string[] = [];
  if (env.DATABASE_URL) return { url: env.DATABASE_URL, from: 'DATABASE_URL' };
  tried.push('DATABASE_URL (unset)');
  const { secretsDir } = locate(env);
  const file = join(secretsDir, 'cdc-database-url');
  const via = env.CDC_SECRETS_DIR ? '; folder from CDC_SECRETS_DIR' : env.CDC_DATA_DIR ? '; folder from CDC_DATA_DIR' : '';
  if (existsSync(file)) {
    const url = readFileSync(file, 'utf8').trim();
    if (url) return { url, from: shown(file) };
    tried.push(`${shown(file)} (empty${via})`);
  } else tried.push(`${shown(file)} (missing${via})`);
  throw new NotFoundError(
    `no database: tried ${tried.join(', ')}; start the front with \`make up\` (it writes that file), ` +
      'or set DATABASE_URL, or CDC_DATA_DIR / CDC_SECRETS_DIR to the folders `make up` used',
  );
}

export interface FoundGateway {
  url: string;
  from: string;
  /** The folder where basic-auth-user/-password were looked for. */
  secretsDir: string;
  /** Every place looked at (the gateway first, then the credentials), for messages. */
  tried: string[];
}

/** --gateway, OPENFAAS_URL, else http://GATEWAY_HOST:GATEWAY_PORT; where the credentials are: OPENFAAS_USER/_PASSWORD, else the secret files. */
export function findGateway(env: Env = process.env, over: { url?: string; secretsDir?: string } = {}): FoundGateway {
  const loc = locate(env);
  const tried: string[] = [];
  let url: string;
  let from: string;
  if (over.url) [url, from] = [over.url, '--gateway'];
  else if (env.OPENFAAS_URL) [url, from] = [env.OPENFAAS_URL, 'OPENFAAS_URL'];
  else {
    url = `http://${loc.gatewayHost.includes(':') ? `[${loc.gatewayHost}]` : loc.gatewayHost}:${loc.ports.gateway}`;
    from = `GATEWAY_HOST ${env.GATEWAY_HOST ? '' : '(default) '}and GATEWAY_PORT${env.GATEWAY_PORT ? '' : ' (default)'}; OPENFAAS_URL unset`;
  }
  tried.push(`gateway ${url} (from ${from})`);
  const dir = over.secretsDir ? resolve(over.secretsDir) : loc.secretsDir;
  const found: FoundGateway = { url: url.replace(/\/+$/, ''), from, secretsDir: dir, tried };
  // The same order as infra/runtime/cli.ts reads them, given --secrets <dir>.
  if (env.OPENFAAS_USER && env.OPENFAAS_PASSWORD) {
    tried.push('credentials from OPENFAAS_USER/OPENFAAS_PASSWORD');
    return found;
  }
  tried.push('OPENFAAS_USER/OPENFAAS_PASSWORD (unset)');
  const userFile = join(dir, 'basic-auth-user');
  const passFile = join(dir, 'basic-auth-password');
  if (existsSync(userFile) && existsSync(passFile)) tried.push(`credentials from ${shown(userFile)} and basic-auth-password`);
  else tried.push(`${shown(existsSync(userFile) ? passFile : userFile)} (missing)`);
  return found;
}

/**
 * The operator commands' pool on the database `make up` uses (findDatabase), checked with one
 * query so that an unreachable server is reported with where its URL came from (never the password).
 */
export async function connectDatabase(max: number, env: Env = process.env): Promise<pg.Pool> {
  const found = findDatabase(env);
  const db = openPool(found.url, max);
  try {
    await db.query('SELECT 1');
  } catch (err) {
    const e = err as Error & { code?: string };
    await closePool();
    throw new Error(
      `cannot reach the database ${redactUrl(found.url)} (from ${found.from}): ${e.message || e.code}; ` + 'is `make up` running, or is DATABASE_URL right?',
    );
  }
  return db;
}
