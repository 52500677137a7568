/**
 * `make up`: the whole front on one machine with embedded defaults.
 *   - PostgreSQL: DATABASE_URL if set (openGauss or an existing server), else a private PostgreSQL 15
 *     with its data under .data/pg (PG_PORT, default 5432 on 127.0.0.1: the DB-sync port);
 *   - migrations; with DBSYNC=1 the database also listens on the network for the HIS's database-sync
 *     role alone (docs/dbsync.md);
 *   - the national platform simulator (NATIONAL_URL unless set: 127.0.0.1:18888), as its own process;
 *   - the backup store, s3rver standing in for MinIO (BACKUP_S3_ENDPOINT unless set: 127.0.0.1:9000);
 *   - the runtime (infra/runtime) with every function of stack.yml, its gateway on 127.0.0.1:8080
 *     and the hospital ports 8881–8884.
 * Folders and ports come from infra/cli/locate.ts, the module the operator commands use too.
 *
 * Supervision: the embedded PostgreSQL and the simulator are restarted when they die (kill -9, a
 * crash), after a backoff of 250 ms doubling to 10 s (reset once a child stayed up 10 s), each
 * restart logged. Each child's pid is kept in <data dir>/run/<name>.pid; a start after a crash of
 * `make up` stops the children the previous run left (when /proc shows they are still ours) before
 * binding anything. Everything stops on Ctrl-C / SIGTERM, in reverse order. README.md §What `make up` starts.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { z } from 'zod';
import { createRoleStatements, frontLockStatements, grantStatements, rolePassword, roleSettingStatements } from '../../shared/dbsync/role.js';
import { migrate } from '../db/migrate.js';
import { locate, PG_DATABASE_FILE, projectRoot as root } from '../cli/locate.js';
import { ensureDevFrontTls } from './certs.js';
import { ensureDevConfigKey } from '../config/dev-key.js';
import { startPostgres } from './postgres.js';
import { processArgs, readPidFile, removePidFile, stopStale, writePidFile } from './pidfiles.js';
import { endpointAnswers, foreignStoreNotes } from './store-note.js';
import { startS3, type RunningS3 } from './s3.js';
import { startRuntime, type RuntimeHandle } from '../runtime/index.js';
import { assertPlatform } from '../../shared/platform/index.js';
import { buildRecordProblem } from '../build/sources.js';
import { release } from '../../shared/status/version.js';

const loc = locate();
const BACKOFF = { initialMs: 250, maxMs: 10_000, resetAfterMs: 10_000 };
const build = z
  .enum(['missing', 'always', 'never'])
  .default('always')
  .parse(process.env.RUNTIME_BUILD || undefined);
/**
 * Database sync (docs/dbsync.md) only when asked (`make up DBSYNC=1`): the embedded PostgreSQL then
 * also listens on the network for the HIS's role alone, which is created with a password kept in the
 * secret file dbsync-his-password.
 */
const DBSYNC_ROLE = 'cdc_his';
const dbsync = process.env.DBSYNC === '1';
/** `make up PROVINCIAL_SIM=1`: a provincial platform simulator too, and the provincial destination enabled (docs/uplink.md §9). */
const provincialSim = process.env.PROVINCIAL_SIM === '1' && !process.env.PROVINCIAL_URL;

function say(msg: string): void {
  process.stdout.write(`[make up] ${msg}\n`);
}

function writeSecret(name: string, value: string): void {
  mkdirSync(loc.secretsDir, { recursive: true, mode: 0o700 });
  const file = join(loc.secretsDir, name);
  writeFileSync(file, value + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
}

/**
 * What `make deploy` needs to redeploy stack.yml onto this runtime with faas-cli exactly as make up
 * started it (infra/openfaas/deploy.sh; docs/runtime.md "faas-cli against this runtime"): the gateway,
 * the ports and the variables make up set itself. Never a secret: those stay files.
 */
function writeDeployEnv(gatewayUrl: string, env: Record<string, string>): void {
  const vars: Record<string, string> = { OPENFAAS_URL: gatewayUrl, ...env };
  for (const k of [
    'DATA_PORT',
    'CONFIG_PORT',
    'MONITOR_PORT',
    'WEB_PORT',
    'CDC_ENV',
    'TZ_LOCAL',
    'HIS_ALLOW',
    'NATIONAL_URL',
    'PROVINCIAL_URL',
    'BACKUP_S3_ENDPOINT',
    'WEB_ALLOWED_HOSTS',
  ]) {
    if (vars[k] === undefined && process.env[k] !== undefined) vars[k] = process.env[k]!;
  }
  const quote = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
  const text =
    '# written by make up: the settings its runtime was started with (no secrets)\n' +
    Object.entries(vars)
      .map(([k, v]) => `${k}=${quote(v)}`)
      .join('\n') +
    '\n';
  writeFileSync(join(loc.dataDir, 'up.env'), text, { mode: 0o600 });
}

/** A running child as the supervisor sees it. */
interface Child {
  pid: number;
  /** Settles with a description of how it ended. */
  exited: Promise<string>;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Set by SIGINT/SIGTERM before anything is stopped. Ctrl-C (or kill -INT -- -<pgid>) reaches the
 * whole process group: a supervised child may exit of that same signal before make up's own handler
 * has run, and that exit is the stop, not a crash to announce a restart for.
 */
let shuttingDown = false;
/** How long a child's exit is left to settle before it is taken for a crash: the signal to the group reaches make up within it. */
const EXIT_SETTLE_MS = 200;

/** Keeps one child running: restarts it with backoff when it dies, until stop(). Its pid is in run/<name>.pid. */
class Supervised {
  private child: Child | undefined;
  private stopping = false;
  private delay = BACKOFF.initialMs;

  constructor(
    readonly name: string,
    readonly label: string,
    private readonly startChild: () => Promise<Child>,
  ) {}

  /** The first start: a failure is make up's failure. */
  async start(): Promise<void> {
    this.adopt(await this.startChild());
  }

  private adopt(child: Child): void {
    this.child = child;
    writePidFile(loc.runDir, this.name, child.pid);
    const startedAt = Date.now();
    void child.exited.then(async (how) => {
      removePidFile(loc.runDir, this.name, child.pid);
      if (this.stopping || shuttingDown) return;
      await sleep(EXIT_SETTLE_MS);
      if (this.stopping || shuttingDown) return;
      if (Date.now() - startedAt >= BACKOFF.resetAfterMs) this.delay = BACKOFF.initialMs;
      void this.restart(`${this.label} (pid ${child.pid}) exited (${how})`);
    });
  }

  /** Starts the child again after the backoff, until it starts or stop() is called. */
  private async restart(why: string): Promise<void> {
    for (;;) {
      if (this.stopping || shuttingDown) return;
      say(`${why}; restarting in ${this.delay} ms`);
      await sleep(this.delay);
      this.delay = Math.min(this.delay * 2, BACKOFF.maxMs);
      if (this.stopping) return;
      try {
        const child = await this.startChild();
        if (this.stopping) {
          await child.stop();
          return;
        }
        this.adopt(child);
        say(`${this.label} restarted (pid ${child.pid})`);
        return;
      } catch (err) {
        why = `${this.label} did not start: ${(err as Error).message.split('\n')[0]}`;
      }
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (!child) return;
    await child.stop().catch(() => undefined);
    removePidFile(loc.runDir, this.name, child.pid);
  }
}

const describeExit = (code: number | null, signal: NodeJS.Signals | null) => (signal ? `signal ${signal}` : `code ${code}`);

/**
 * The embedded server's database, said, and remembered when PG_DATABASE named it: a later start
 * without the variable stays on it (after a restore, docs/backup.md "Restore"), never silently
 * back on the database as it was before.
 */
function rememberDatabase(): void {
  if (loc.pgDatabaseFrom === 'PG_DATABASE') writeFileSync(join(loc.dataDir, PG_DATABASE_FILE), `${loc.pgDatabase}\n`);
  if (loc.pgDatabaseFrom !== 'default')
    say(
      `database ${loc.pgDatabase}${loc.pgDatabaseFrom === 'remembered' ? ` (remembered in ${join(loc.dataDir, PG_DATABASE_FILE)}; PG_DATABASE=<name> make up changes it)` : ', kept for the next starts'}`,
    );
}

function postgresChild(): Promise<Child & { url: string }> {
  return startPostgres({ dataDir: loc.pgDataDir, port: loc.ports.pg, database: loc.pgDatabase, ...(dbsync ? { networkRole: DBSYNC_ROLE } : {}) }).then(
    (pg) => ({
      pid: pg.pid,
      exited: pg.exited.then((e) => describeExit(e.code, e.signal)),
      stop: () => pg.stop(),
      url: pg.url,
    }),
  );
}

/** The HIS's role for database sync, made once (its password in a secret file), granted at every start. */
async function dbsyncRole(databaseUrl: string): Promise<void> {
  const file = join(loc.secretsDir, 'dbsync-his-password');
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const exists = (await db.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [DBSYNC_ROLE])).rowCount === 1;
    if (!exists || !existsSync(file)) {
      const password = rolePassword(DBSYNC_ROLE);
      if (exists) await db.query(`DROP OWNED BY ${DBSYNC_ROLE}`).then(() => db.query(`DROP ROLE ${DBSYNC_ROLE}`));
      for (const st of createRoleStatements(DBSYNC_ROLE, password, process.env.TZ_LOCAL || undefined)) await db.query(st);
      writeSecret('dbsync-his-password', password);
    } else {
      for (const st of [...roleSettingStatements(DBSYNC_ROLE, process.env.TZ_LOCAL || undefined), ...grantStatements(DBSYNC_ROLE)]) await db.query(st);
    }
    for (const st of await frontLockStatements(db)) await db.query(st);
  } finally {
    await db.end();
  }
  const url = new URL(databaseUrl);
  say(`database sync: the HIS connects to ${hostname()}:${url.port}/${url.pathname.slice(1)} as ${DBSYNC_ROLE}, password in ${file} (docs/dbsync.md)`);
}

function simulatorStore(role: string): string {
  return join(loc.dataDir, 'simulators', `${role}.ndjson`);
}

/**
 * The simulator's keys: the development key files in the secrets folder when they are there (TLS=1
 * makes them, and a later run keeps them; the push function then uses them, shared/uplink/config.ts),
 * else none — the simulator and the push function both take the well-known development keys.
 */
function simulatorKeys(role: 'national' | 'provincial'): string[] {
  const key = join(loc.secretsDir, `uplink-${role}-key`);
  const hospital = join(loc.secretsDir, 'uplink-hospital-pubkey');
  if (!existsSync(key) || !existsSync(hospital)) return [];
  return ['--key', key, '--hospital-pubkey', hospital, '--hospital-name', process.env.UPLINK_SENDER || 'cdc-front'];
}

async function simulatorChild(role: 'national' | 'provincial', port: number): Promise<Child> {
  mkdirSync(join(loc.dataDir, 'simulators'), { recursive: true });
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(root, 'infra/simulators/main.ts'),
      '--role',
      role,
      '--port',
      String(port),
      '--store',
      simulatorStore(role),
      ...simulatorKeys(role),
      '--exit-with-stdin',
    ],
    // Its stdin a pipe that only this process holds: it ends when this process does, however it ends.
    { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const exited = new Promise<string>((ok) => child.once('exit', (code, signal) => ok(describeExit(code, signal))));
  await new Promise<void>((ok, fail) => {
    child.stdout!.once('data', () => ok());
    void exited.then((how) => fail(new Error(`${role} platform simulator exited (${how}); is port ${port} taken?`)));
  });
  child.stdout!.pipe(process.stdout, { end: false });
  return {
    pid: child.pid!,
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.kill('SIGTERM');
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/** Whether a process's arguments name this file of the project, with `arg` among them. */
const runs = (args: string[], file: string, arg?: string) => args.some((a) => a.endsWith(file)) && (arg === undefined || args.includes(arg));

/**
 * Before binding: refuses to start beside a live `make up` on the same data dir, and stops the
 * children a crashed one left behind (its simulator holds its port; its PostgreSQL its data dir).
 */
async function cleanUpAfterEarlierRun(): Promise<void> {
  const upPid = readPidFile(loc.runDir, 'up');
  const upArgs = (upPid !== undefined && processArgs(upPid)) || [];
  // make up runs its bundle (dist/runtime/up.mjs); the tests and a developer may run the source.
  if (upPid !== undefined && upPid !== process.pid && (runs(upArgs, 'dist/runtime/up.mjs') || runs(upArgs, 'infra/dev/up.ts'))) {
    throw new Error(`make up is already running on ${loc.dataDir} (pid ${upPid}); stop it first (kill ${upPid})`);
  }
  writePidFile(loc.runDir, 'up', process.pid);
  const sim = await stopStale(loc.runDir, 'national-simulator', {
    ours: (args) => runs(args, 'infra/simulators/main.ts', simulatorStore('national')),
    signal: 'SIGTERM',
    graceMs: 5000,
  });
  if (sim) say(`stopped the national platform simulator (pid ${sim}) left by an earlier make up`);
  // Fast shutdown; postgres.ts clears a postmaster.pid whose server is gone.
  const pg = await stopStale(loc.runDir, 'postgres', {
    ours: (args) => args.some((a) => /postgres/.test(a)) && args.includes(loc.pgDataDir),
    signal: 'SIGINT',
    graceMs: 30_000,
  });
  if (pg) say(`stopped the PostgreSQL server (pid ${pg}) left by an earlier make up`);
}

/**
 * CDC_ENV=production: make up's stand-ins are development fallbacks (docs/configuration.md
 * "Production") — a PostgreSQL of its own instead of the hospital's openGauss, the platform simulator
 * instead of the national platform (records would never reach it), a backup store on this server's
 * own disk. Refused before anything starts, naming what to set.
 */
function refuseStandInsInProduction(env: NodeJS.ProcessEnv): void {
  if (env.CDC_ENV !== 'production') return;
  const missing = [
    env.DATABASE_URL ? '' : "DATABASE_URL (the hospital's openGauss; make up would start a PostgreSQL of its own)",
    env.NATIONAL_URL ? '' : 'NATIONAL_URL (the national platform; make up would send every record to its simulator)',
    env.BACKUP_S3_ENDPOINT ? '' : "BACKUP_S3_ENDPOINT (the MinIO on other storage; make up would keep the backups on this server's own disk)",
    env.PROVINCIAL_SIM === '1' && !env.PROVINCIAL_URL
      ? 'PROVINCIAL_URL instead of PROVINCIAL_SIM=1 (make up would send every record to its provincial simulator)'
      : '',
  ].filter(Boolean);
  if (missing.length) throw new Error(`CDC_ENV=production starts no development stand-in: set ${missing.join('; ')}`);
}

/** What make up has started so far, each stopped by `shutdown` in reverse order. */
interface Running {
  pg?: Supervised;
  sim?: Supervised;
  provincialSim?: Supervised;
  s3?: RunningS3;
  rt?: RuntimeHandle;
}

/**
 * The front's database: DATABASE_URL (the hospital's openGauss, an existing server), else a
 * PostgreSQL of make up's own, restarted when it dies. Migrated; its URL in the secret file the
 * functions read; the database-sync role when asked.
 */
async function prepareDatabase(running: Running): Promise<void> {
  let databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) {
    let url = '';
    running.pg = new Supervised('postgres', 'PostgreSQL', async () => {
      const child = await postgresChild();
      if (url && child.url !== url) say(`PostgreSQL came back with another URL; functions keep ${loc.secretsDir}/cdc-database-url`);
      url = child.url;
      return child;
    });
    await running.pg.start();
    databaseUrl = url;
    say(`PostgreSQL 127.0.0.1:${loc.ports.pg} (data in ${loc.pgDataDir}; restarted if it dies)`);
    rememberDatabase();
  }
  const applied = await migrate(databaseUrl, { log: say });
  say(applied.length ? `migrations applied: ${applied.join(', ')}` : 'database schema is up to date');
  writeSecret('cdc-database-url', databaseUrl);
  if (dbsync) await dbsyncRole(databaseUrl);
  if (provincialSim) await enableProvincial(databaseUrl);
}

/**
 * The provincial destination, enabled for `PROVINCIAL_SIM=1` as docs/uplink.md "Enabling the
 * provincial platform" says (no ON CONFLICT: docs/opengauss.md); its URL is make up's simulator.
 */
async function enableProvincial(databaseUrl: string): Promise<void> {
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    await c.query(
      `INSERT INTO uplink_destination (name, kind, enabled) SELECT 'provincial', 'provincial', true
        WHERE NOT EXISTS (SELECT 1 FROM uplink_destination WHERE name = 'provincial')`,
    );
    await c.query(`UPDATE uplink_destination SET enabled = true WHERE name = 'provincial'`);
  } finally {
    await c.end();
  }
}

/**
 * The variables make up gives the functions beyond stack.yml's: the stand-ins it starts for what is
 * not set (the national platform's simulator, the backup store) and the development defaults.
 */
async function frontEnv(running: Running): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  // make up is development: loopback callers are admitted without registration (HIS_ALLOW, which
  // stack.yml leaves empty), unless set otherwise or CDC_ENV=production (docs/his-auth.md).
  if (process.env.HIS_ALLOW === undefined && process.env.CDC_ENV !== 'production') env.HIS_ALLOW = '127.0.0.1/8,::1/128';
  // The development certificates of TLS=1 come with the uplink's SM2 key files, which the push
  // function then signs and encrypts with: made before the simulator starts, which must use them too.
  const frontTls = process.env.TLS === '1' ? ensureDevFrontTls(loc.secretsDir) : undefined;
  if (!process.env.NATIONAL_URL) {
    const port = loc.ports.nationalSim;
    running.sim = new Supervised('national-simulator', 'national platform simulator', () => simulatorChild('national', port));
    await running.sim.start();
    env.NATIONAL_URL = `http://127.0.0.1:${port}`;
  }
  if (provincialSim) {
    const port = loc.ports.provincialSim;
    running.provincialSim = new Supervised('provincial-simulator', 'provincial platform simulator', () => simulatorChild('provincial', port));
    await running.provincialSim.start();
    env.PROVINCIAL_URL = `http://127.0.0.1:${port}`;
    say(`provincial platform simulator ${env.PROVINCIAL_URL} (PROVINCIAL_SIM=1; the provincial destination enabled)`);
  }
  // Backups (docs/backup.md): an embedded S3 store standing in for MinIO unless BACKUP_S3_ENDPOINT is set.
  if (!process.env.BACKUP_S3_ENDPOINT) {
    const s3 = await startS3({ dir: join(loc.dataDir, 's3'), port: loc.ports.s3 });
    running.s3 = s3;
    env.BACKUP_S3_ENDPOINT = s3.endpoint;
    writeSecret('backup-s3-access-key', s3.accessKey);
    writeSecret('backup-s3-secret-key', s3.secretKey);
    say(`backup store (s3rver) ${s3.endpoint}, data in ${join(loc.dataDir, 's3')}`);
  } else {
    // A store make up does not start: said, and whether anything answers there (infra/dev/store-note.ts).
    const endpoint = process.env.BACKUP_S3_ENDPOINT;
    for (const line of foreignStoreNotes(endpoint, loc.ports.s3, await endpointAnswers(endpoint))) say(line);
    // The hospital's MinIO: its credentials are secret files (docs/backup.md). Without them every
    // backup fails; said now, not at the first nightly run.
    const lacking = [
      ['backup-s3-access-key', 'BACKUP_S3_ACCESS_KEY'],
      ['backup-s3-secret-key', 'BACKUP_S3_SECRET_KEY'],
    ].filter(([f, v]) => !process.env[v!] && !existsSync(join(loc.secretsDir, f!)));
    if (lacking.length)
      say(
        `BACKUP_S3_ENDPOINT is ${process.env.BACKUP_S3_ENDPOINT}, but the store's credentials are missing: ${lacking.map(([f]) => join(loc.secretsDir, f!)).join(', ')} — every backup fails until they are there (docs/backup.md)`,
      );
  }
  // The console answers to this machine's names too, so that it can be tried from the LAN.
  if (!process.env.WEB_ALLOWED_HOSTS) {
    const addrs = Object.values(networkInterfaces())
      .flat()
      .filter((a) => a && !a.internal)
      .map((a) => (a!.family === 'IPv6' ? `[${a!.address}]` : a!.address));
    env.WEB_ALLOWED_HOSTS = ['localhost', '127.0.0.1', '[::1]', hostname(), ...addrs].join(',');
  }
  // TLS on the hospital ports with a development certificate (docs/security.md "In transit").
  if (frontTls) {
    for (const p of ['DATA', 'CONFIG', 'MONITOR', 'WEB']) {
      env[`${p}_TLS_CERT`] = 'front-tls-cert';
      env[`${p}_TLS_KEY`] = 'front-tls-key';
    }
    say(`TLS on the hospital ports with a development certificate; a client trusts ${frontTls.ca}`);
  }
  return env;
}

/**
 * The backups' SM4 key (docs/backup.md "Encryption at rest"): made by the runtime on a development
 * start when absent — on an upgrade from a release that had none, too. Every archive from then on is
 * encrypted with it, so the operator is told to keep a copy apart; in production it is the
 * operator's to make, and its absence is said at every start (the weekly physical archive is refused).
 */
function announceBackupKey(file: string, hadIt: boolean): void {
  if (!hadIt && existsSync(file))
    say(
      `made the backups' encryption key ${file}: every archive from now on is encrypted with it — keep a copy off this server, with the personal-data keys (without it those archives cannot be restored); archives made before stay unencrypted (docs/backup.md "Encryption at rest")`,
    );
  else if (!existsSync(file))
    say(`no backups' encryption key ${file}: the physical archive is refused until the operator makes it (docs/backup.md "Encryption at rest")`);
}

/** Where everything is, once the runtime runs: the lines an operator reads first. */
function announce(rt: RuntimeHandle, env: Record<string, string>, configKeyFile: string | undefined, simulated: boolean): void {
  say(`gateway ${rt.gatewayUrl} (basic auth: ${join(loc.secretsDir, 'basic-auth-user')} / basic-auth-password)`);
  for (const [k, u] of Object.entries(rt.portUrls)) say(`${k.padEnd(8)} ${u}`);
  say(`monitoring token (Authorization: Bearer …, docs/monitoring.md): ${join(loc.secretsDir, 'monitor-token')}`);
  if (configKeyFile)
    say(`configuration bundles: signed with the development platform key ${configKeyFile}; bin/cdc-config push --file <bundle.json> (docs/config-bundles.md)`);
  say(`console ${rt.portUrls.web}/login — first admin: bin/cdc-users create-admin --username admin (password on stdin; docs/console.md)`);
  say(`national platform${simulated ? ' simulator' : ''} ${env.NATIONAL_URL ?? process.env.NATIONAL_URL}`);
  say(`functions: ${rt.functions().join(', ')}; logs in ${loc.logsDir}; Ctrl-C stops everything`);
}

async function main(): Promise<void> {
  // Before PostgreSQL or anything else starts: a node that cannot run the functions is named at once
  // (docs/runtime.md "Node.js and its OpenSSL"); in production, bundles built from other sources than
  // the ones here (a pull without make build) are not run.
  try {
    assertPlatform();
    const stale = process.env.CDC_ENV === 'production' ? buildRecordProblem(root) : null;
    if (stale) throw new Error(stale);
  } catch (err) {
    process.stderr.write(`[make up] ${(err as Error).message}\n`);
    process.exit(1);
  }
  const running: Running = {};
  const shutdown = async () => {
    await running.rt?.close().catch(() => undefined);
    await running.s3?.stop().catch(() => undefined);
    await running.provincialSim?.stop();
    await running.sim?.stop();
    await running.pg?.stop();
    removePidFile(loc.runDir, 'up', process.pid);
  };
  const stop = () => {
    shuttingDown = true;
    say('stopping…');
    void shutdown().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  say(`cdc-front ${release}`);
  try {
    refuseStandInsInProduction(process.env);
    await cleanUpAfterEarlierRun();
    await prepareDatabase(running);
    const env = await frontEnv(running);
    // Configuration bundles (docs/config-bundles.md): a development platform key the front trusts,
    // made once per data folder; bin/cdc-config push signs with its private half.
    const configKey = process.env.CDC_ENV === 'production' ? undefined : ensureDevConfigKey(loc.secretsDir, loc.dataDir);
    const backupKey = join(loc.secretsDir, 'backup-sm4-key');
    const hadBackupKey = existsSync(backupKey);
    running.rt = await startRuntime({ stackFile: join(root, 'stack.yml'), env, secretsDir: loc.secretsDir, logsDir: loc.logsDir, build });
    announceBackupKey(backupKey, hadBackupKey);
    writeDeployEnv(running.rt.gatewayUrl, env);
    announce(running.rt, env, configKey?.keyFile, running.sim !== undefined);
  } catch (err) {
    process.stderr.write(`[make up] ${(err as Error).message}\n`);
    await shutdown();
    process.exit(1);
  }
}

void main();
