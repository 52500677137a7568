/**
 * The embedded development and test database: the machine's own PostgreSQL 15 binaries, run as a
 * child process of `make up` or of the test run. Production is openGauss 5.0 (see
 * docs/opengauss.md); this stands in for it, so it is kept close to how the
 * application meets the real one: a password over TCP (no `trust`), loopback only.
 *
 *   const pg = await startPostgres({ dataDir: '.data/postgres' });
 *   ... pg.url ...
 *   await pg.stop();
 *
 * - The first start runs initdb (UTF8, locale C) with a generated password for the application
 *   user, kept in a sibling file `<dataDir>.credentials.json` (root/owner only), so the URL is the
 *   same on every restart of the same data dir (the port is remembered there too).
 * - The server is `postgres` itself as a child (not `pg_ctl` daemonising): its log comes to `log`,
 *   its lifetime is ours. A watchdog ends it if this process dies without calling stop().
 * - initdb and postgres refuse to run as root: under root they run as the `postgres` system user
 *   (created by Debian's postgresql-15 package), which is given the data dir.
 * - Calling startPostgres again on the same dataDir (and port) after stop() restarts the same
 *   cluster; the fault tests rely on that. A postmaster.pid left by a killed run is cleared.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import pg from 'pg';

export interface StartPostgresOptions {
  /** Cluster directory; created and initialised if missing or empty. */
  dataDir: string;
  /** TCP port; default: the one this data dir used last time if free, else any free port. */
  port?: number;
  /** Listen address and URL host; default 127.0.0.1 (loopback only). */
  host?: string;
  /** Database created if missing; default `cdcfront`. */
  database?: string;
  /** Application user (the cluster's bootstrap user); default `cdcfront`. Fixed at initdb. */
  user?: string;
  /** Every line the server and initdb print. */
  log?: (line: string) => void;
  /** fsync and synchronous commit; default true. Tests pass false for speed (data is throwaway). */
  fsync?: boolean;
  /** How long to wait for the server to accept connections; default 30 s. */
  startTimeoutMs?: number;
  /** Database sync (docs/dbsync.md): also listen on every address, for this role only (pg_hba). */
  networkRole?: string;
  /**
   * More server settings, given on the command line after the defaults (which they override): a
   * diagnostic run's `shared_preload_libraries: 'pg_stat_statements'` (bench/replica-ab.ts).
   */
  settings?: Record<string, string>;
}

export interface RunningPostgres {
  /** `postgresql://user:password@host:port/database` */
  url: string;
  port: number;
  host: string;
  database: string;
  user: string;
  password: string;
  dataDir: string;
  /** The postmaster's pid. */
  pid: number;
  /** Settles when the server has exited, for whatever reason (stop(), a crash, kill -9). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Fast shutdown (SIGINT) and wait for the server to exit. Idempotent. */
  stop(): Promise<void>;
}

interface Credentials {
  user: string;
  password: string;
  port?: number;
}

interface RunAs {
  uid: number;
  gid: number;
}

const LOG_TAIL = 40;
const MAX_SOCKET_PATH = 107; // sun_path is 108 bytes with the trailing NUL

export async function startPostgres(opts: StartPostgresOptions): Promise<RunningPostgres> {
  const dataDir = resolve(opts.dataDir);
  const host = opts.host ?? '127.0.0.1';
  const database = opts.database ?? 'cdcfront';
  const fsync = opts.fsync ?? true;
  const timeoutMs = opts.startTimeoutMs ?? 30_000;
  const tail: string[] = [];
  const log = (line: string): void => {
    tail.push(line);
    if (tail.length > LOG_TAIL) tail.shift();
    opts.log?.(line);
  };

  const bin = findBinDir();
  const runAs = postgresSystemUser();
  const credFile = credentialsFile(dataDir);

  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const fresh = !existsSync(join(dataDir, 'PG_VERSION'));
  if (fresh && readdirSync(dataDir).length > 0) {
    throw new Error(`startPostgres: ${dataDir} is not empty and holds no PostgreSQL cluster (no PG_VERSION); use an empty or new directory`);
  }
  if (runAs) giveToPostgres(dataDir, runAs, log);

  let creds: Credentials;
  if (fresh) {
    creds = { user: opts.user ?? 'cdcfront', password: randomBytes(18).toString('hex') };
    await initdb(bin, dataDir, creds, fsync, runAs, log);
    writeCredentials(credFile, creds);
  } else {
    creds = readCredentials(credFile, dataDir);
    if (opts.user !== undefined && opts.user !== creds.user) {
      throw new Error(`startPostgres: ${dataDir} was initialised for user "${creds.user}", not "${opts.user}"; use another data dir`);
    }
  }

  // Only after a server that died (its pid file left behind) can backends of it still be running.
  if (clearStalePid(dataDir, log)) await stopOrphanBackends(dataDir, log);
  writeHba(dataDir, runAs, opts.networkRole);

  // Port: the caller's, else the last one this cluster had (a stable URL), else any free one.
  let attempts = opts.port !== undefined ? 1 : 3;
  let port = opts.port ?? (creds.port !== undefined && (await portIsFree(creds.port, host)) ? creds.port : await freePort(host));
  for (;;) {
    const child = spawnServer(bin, dataDir, opts.networkRole ? '*' : host, port, fsync, runAs, log, opts.settings);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((ok) => child.once('exit', (code, signal) => ok({ code, signal })));
    try {
      await waitReady(child, { host, port, user: creds.user, password: creds.password }, timeoutMs, tail);
    } catch (err) {
      await stopChild(child);
      const bindFailed = tail.some((l) => /could not bind|Address already in use/i.test(l));
      if (bindFailed && --attempts > 0) {
        log(`[postgres.ts] port ${port} was taken, retrying on another`);
        port = await freePort(host);
        continue;
      }
      throw err;
    }
    if (creds.port !== port) writeCredentials(credFile, { ...creds, port });
    await createDatabase({ host, port, user: creds.user, password: creds.password }, database);
    const url = `postgresql://${encodeURIComponent(creds.user)}:${encodeURIComponent(creds.password)}@${urlHost(host)}:${port}/${encodeURIComponent(database)}`;
    return {
      url,
      port,
      host,
      database,
      user: creds.user,
      password: creds.password,
      dataDir,
      pid: child.pid!,
      exited,
      stop: () => stopChild(child),
    };
  }
}

/** `<parent>/<name>.credentials.json` beside the data dir. */
export function credentialsFile(dataDir: string): string {
  const abs = resolve(dataDir);
  return join(dirname(abs), `${basename(abs)}.credentials.json`);
}

// ---- binaries and the system user ----------------------------------------------------------

function hasServer(dir: string): boolean {
  return existsSync(join(dir, 'postgres')) && existsSync(join(dir, 'initdb'));
}

/** PG_BINDIR, else `pg_config --bindir`, else /usr/lib/postgresql/15/bin, else PATH. */
export function findBinDir(): string {
  const candidates: string[] = [];
  if (process.env.PG_BINDIR) candidates.push(process.env.PG_BINDIR);
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    // no pg_config (libpq-dev absent): fine, try the Debian path
  }
  candidates.push('/usr/lib/postgresql/15/bin');
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir) candidates.push(dir);
  const found = candidates.find(hasServer);
  if (!found) {
    throw new Error(
      'startPostgres: no PostgreSQL server binaries (postgres, initdb) found via PG_BINDIR, pg_config --bindir, ' +
        '/usr/lib/postgresql/15/bin or PATH; install them: apt-get install -y postgresql-15',
    );
  }
  return found;
}

/** Under root: the `postgres` system user to run initdb/postgres as (they refuse root). */
function postgresSystemUser(): RunAs | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  let passwd = '';
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
  } catch {
    // fall through to the error below
  }
  const line = passwd.split('\n').find((l) => l.startsWith('postgres:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (!line || uid === undefined || gid === undefined) {
    throw new Error(
      'startPostgres: running as root, and PostgreSQL refuses to run as root, but there is no "postgres" system user ' +
        'to run it as; install postgresql-15 (apt-get install -y postgresql-15), which creates it',
    );
  }
  return { uid: Number(uid), gid: Number(gid) };
}

/** Hands the data dir to the postgres user and makes sure it can reach it through its parents. */
function giveToPostgres(dataDir: string, as: RunAs, log: (l: string) => void): void {
  const st = statSync(dataDir);
  if (st.uid !== as.uid) chownTree(dataDir, as);
  chmodSync(dataDir, 0o700);
  // Every ancestor must be searchable (x) by the postgres user: a mkdtemp dir is 0700 root.
  for (let dir = dirname(dataDir); ; dir = dirname(dir)) {
    const s = statSync(dir);
    const bit = s.uid === as.uid ? 0o100 : s.gid === as.gid ? 0o010 : 0o001;
    if ((s.mode & bit) === 0) {
      chmodSync(dir, (s.mode & 0o7777) | bit);
      log(`[postgres.ts] made ${dir} traversable for the postgres user`);
    }
    if (dirname(dir) === dir) break;
  }
}

function chownTree(path: string, as: RunAs): void {
  chownSync(path, as.uid, as.gid);
  if (statSync(path).isDirectory()) for (const e of readdirSync(path)) chownTree(join(path, e), as);
}

// ---- credentials ---------------------------------------------------------------------------

function writeCredentials(file: string, creds: Credentials): void {
  writeFileSync(file, JSON.stringify(creds, null, 2) + '\n', { mode: 0o600 });
}

function readCredentials(file: string, dataDir: string): Credentials {
  let raw: string;
  try {
    raw = readFileSync(file, 'utf8');
  } catch {
    throw new Error(
      `startPostgres: ${dataDir} holds a cluster but its credentials file ${file} is missing, so the password is unknown; ` +
        'delete the data dir to start afresh',
    );
  }
  const c = JSON.parse(raw) as Partial<Credentials>;
  if (typeof c.user !== 'string' || typeof c.password !== 'string') throw new Error(`startPostgres: ${file} is malformed`);
  return { user: c.user, password: c.password, port: typeof c.port === 'number' ? c.port : undefined };
}

// ---- initdb ----------------------------------------------------------------------------------

async function initdb(bin: string, dataDir: string, creds: Credentials, fsync: boolean, runAs: RunAs | undefined, log: (l: string) => void): Promise<void> {
  // The password reaches initdb through a file only the server's user can read, removed at once.
  const pwDir = mkdtempSync(join(tmpdir(), 'cdc-pg-pw-'));
  const pwFile = join(pwDir, 'pw');
  writeFileSync(pwFile, creds.password + '\n', { mode: 0o600 });
  if (runAs) {
    chownSync(pwDir, runAs.uid, runAs.gid);
    chownSync(pwFile, runAs.uid, runAs.gid);
  }
  try {
    const args = [
      '-D',
      dataDir,
      '-U',
      creds.user,
      `--pwfile=${pwFile}`,
      '--encoding=UTF8',
      '--locale=C',
      '--auth-local=scram-sha-256',
      '--auth-host=scram-sha-256',
      '--no-instructions',
    ];
    if (!fsync) args.push('--no-sync');
    const code = await run(join(bin, 'initdb'), args, runAs, log);
    if (code !== 0) throw new Error(`startPostgres: initdb exited with ${code}; see the log lines above`);
  } finally {
    rmSync(pwDir, { recursive: true, force: true });
  }
  writeHba(dataDir, runAs);
}

function run(cmd: string, args: string[], runAs: RunAs | undefined, log: (l: string) => void): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: '/',
      env: serverEnv(),
      ...(runAs ?? {}),
    });
    pipeLines(child, log);
    child.on('error', reject);
    child.on('exit', (code, signal) => resolvePromise(code ?? (signal ? 128 : 1)));
  });
}

function serverEnv(): NodeJS.ProcessEnv {
  // A clean environment: no PG* variables of the caller leak into the server.
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C', TZ: process.env.TZ ?? 'UTC' };
}

function pipeLines(child: ChildProcess, log: (l: string) => void): void {
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        log(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
    stream.on('end', () => {
      if (buf) log(buf);
      buf = '';
    });
  }
}

// ---- the server ------------------------------------------------------------------------------

/** A postmaster.pid whose process is gone (a killed run) is removed (true); a live server is an error. */
function clearStalePid(dataDir: string, log: (l: string) => void): boolean {
  const pidFile = join(dataDir, 'postmaster.pid');
  const stale = existsSync(pidFile);
  if (stale) clearStalePostmasterPid(pidFile, dataDir, log);
  clearStaleSocketLocks(dataDir, log);
  return stale;
}

function clearStalePostmasterPid(pidFile: string, dataDir: string, log: (l: string) => void): void {
  const [pidLine, dirLine] = readFileSync(pidFile, 'utf8').split('\n');
  const pid = Number(pidLine);
  if (Number.isInteger(pid) && pid > 0 && isLivePostmaster(pid, dataDir, dirLine)) {
    throw new Error(`startPostgres: a PostgreSQL server (pid ${pid}) is already running on ${dataDir}; stop it first (kill -INT ${pid})`);
  }
  rmSync(pidFile, { force: true });
  log(`[postgres.ts] removed stale ${pidFile} (pid ${pidLine} is not running)`);
}

/**
 * Backends of a postmaster that was killed (kill -9 of `make up` during a long statement: a backend
 * is not in the process group it was killed with) keep the old server's shared memory attached, and
 * PostgreSQL refuses to start over it ("pre-existing shared memory block … is still in use") until
 * they end. Their server is gone and their work can no longer commit; they are stopped (SIGTERM, then
 * SIGKILL after 5 s), each named in the log. Found by their working directory, the data directory.
 */
async function stopOrphanBackends(dataDir: string, log: (l: string) => void): Promise<void> {
  const orphans = (): number[] => {
    let pids: string[] = [];
    try {
      pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
    } catch {
      return [];
    }
    return pids.map(Number).filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres' && readlinkSync(`/proc/${pid}/cwd`) === dataDir;
      } catch {
        return false;
      }
    });
  };
  let left = orphans();
  if (left.length === 0) return;
  log(`[postgres.ts] the last server's backends outlived it (pids ${left.join(', ')}); stopping them before the start`);
  for (const [signal, waitMs] of [
    ['SIGTERM', 5_000],
    ['SIGKILL', 5_000],
  ] as const) {
    for (const pid of left) {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    }
    const end = Date.now() + waitMs;
    while ((left = orphans()).length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    if (left.length === 0) return;
  }
  throw new Error(`startPostgres: backends of an earlier server on ${dataDir} would not stop (pids ${left.join(', ')})`);
}

function clearStaleSocketLocks(dataDir: string, log: (l: string) => void): void {
  // The unix socket's lock file names the dead postmaster too. PostgreSQL itself takes any pid
  // that answers kill(pid, 0) as alive — a zombie does, until whatever adopted it reaps it — and
  // would refuse to start ("lock file .s.PGSQL.<port>.lock already exists").
  for (const f of readdirSync(dataDir)) {
    if (!/^\.s\.PGSQL\.\d+\.lock$/.test(f)) continue;
    const lockPid = Number(readFileSync(join(dataDir, f), 'utf8').split('\n')[0]);
    if (Number.isInteger(lockPid) && lockPid > 0 && isLivePostmaster(lockPid, dataDir, undefined)) continue;
    rmSync(join(dataDir, f), { force: true });
    rmSync(join(dataDir, f.replace(/\.lock$/, '')), { force: true });
    log(`[postgres.ts] removed stale socket lock ${f} (pid ${lockPid} is not running)`);
  }
}

function isLivePostmaster(pid: number, dataDir: string, dirLine: string | undefined): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: alive but not ours to signal: treat as alive.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // Alive: make sure it is a postgres on this dir, not an unrelated process that got the pid, nor
  // a zombie (state Z: dead, not yet reaped by whatever adopted it).
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false;
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return /postgres|postmaster/.test(cmd) && (dirLine === undefined || resolve(dirLine) === dataDir);
  } catch {
    return true;
  }
}

/**
 * Passwords everywhere, loopback only; replication for pg_basebackup-based backups. With
 * `networkRole` (database sync, docs/dbsync.md) that one role — and no other — may also connect from
 * the network, with its password. Written at every start, so switching it on or off takes effect.
 */
function writeHba(dataDir: string, runAs: RunAs | undefined, networkRole?: string): void {
  if (networkRole !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(networkRole)) throw new Error(`startPostgres: ${networkRole} is not a role name`);
  writeFileSync(
    join(dataDir, 'pg_hba.conf'),
    [
      '# Written by infra/dev/postgres.ts: password (scram-sha-256) only, loopback only, never trust.',
      '# TYPE  DATABASE     USER  ADDRESS        METHOD',
      'local   all          all                  scram-sha-256',
      'host    all          all   127.0.0.1/32   scram-sha-256',
      'host    all          all   ::1/128        scram-sha-256',
      'host    replication  all   127.0.0.1/32   scram-sha-256',
      ...(networkRole
        ? [
            `# Database sync: the HIS's role only, from the network.`,
            `host    all          ${networkRole}   0.0.0.0/0   scram-sha-256`,
            `host    all          ${networkRole}   ::/0        scram-sha-256`,
          ]
        : []),
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  if (runAs) chownSync(join(dataDir, 'pg_hba.conf'), runAs.uid, runAs.gid);
}

function spawnServer(
  bin: string,
  dataDir: string,
  host: string,
  port: number,
  fsync: boolean,
  runAs: RunAs | undefined,
  log: (l: string) => void,
  extra: Record<string, string> = {},
): ChildProcess {
  // The unix socket lives in the data dir (never /var/run/postgresql), unless the path is too long.
  const socketDir = join(dataDir, `.s.PGSQL.${port}`).length <= MAX_SOCKET_PATH ? dataDir : '';
  const settings: Record<string, string> = {
    listen_addresses: host,
    port: String(port),
    unix_socket_directories: socketDir,
    shared_buffers: '128MB',
    max_connections: '200',
    password_encryption: 'scram-sha-256',
    logging_collector: 'off',
    log_destination: 'stderr',
    log_line_prefix: '%m [%p] ',
    fsync: fsync ? 'on' : 'off',
    synchronous_commit: fsync ? 'on' : 'off',
    full_page_writes: fsync ? 'on' : 'off',
    ...extra,
  };
  const args = ['-D', dataDir];
  for (const [k, v] of Object.entries(settings)) args.push('-c', `${k}=${v}`);
  const child = spawn(join(bin, 'postgres'), args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: dataDir,
    env: serverEnv(),
    ...(runAs ?? {}),
  });
  pipeLines(child, log);
  child.on('error', (err) => log(`[postgres.ts] could not start postgres: ${err.message}`));
  if (child.pid !== undefined) guardOrphan(child);
  return child;
}

/**
 * If this process dies without stop() (SIGKILL, a crash), the server would live on and hold the
 * port and the data dir. A tiny shell holds a pipe from us; when the pipe closes it sends the
 * server SIGINT (fast shutdown).
 */
function guardOrphan(server: ChildProcess): void {
  const watchdog = spawn('sh', ['-c', 'read _ignored; kill -INT "$0" 2>/dev/null', String(server.pid)], {
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  watchdog.on('error', () => undefined);
  const release = (): void => {
    watchdog.stdin?.destroy();
    watchdog.kill('SIGKILL');
  };
  server.once('exit', release);
}

async function waitReady(
  child: ChildProcess,
  conn: { host: string; port: number; user: string; password: string },
  timeoutMs: number,
  tail: string[],
): Promise<void> {
  let exited: string | undefined;
  let spawnError: Error | undefined;
  child.once('exit', (code, signal) => (exited = signal ? `signal ${signal}` : `code ${code}`));
  child.once('error', (err) => (spawnError = err));
  const deadline = Date.now() + timeoutMs;
  let lastErr = '';
  const fail = (why: string): Error => new Error(`startPostgres: ${why}; last server log lines:\n${tail.slice(-20).join('\n') || '(none)'}`);
  for (;;) {
    if (spawnError) throw fail(`could not start postgres: ${spawnError.message}`);
    if (exited) throw fail(`postgres exited (${exited}) before accepting connections`);
    const client = new pg.Client({ ...conn, database: 'postgres', connectionTimeoutMillis: 2000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      return;
    } catch (err) {
      lastErr = (err as Error).message;
      await client.end().catch(() => undefined);
      // A wrong password is final: the server is up, waiting more will not help.
      if ((err as { code?: string }).code === '28P01') throw fail(`password authentication failed for "${conn.user}"`);
    }
    if (Date.now() > deadline) throw fail(`not accepting connections on ${conn.host}:${conn.port} after ${timeoutMs} ms (${lastErr})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function createDatabase(conn: { host: string; port: number; user: string; password: string }, database: string): Promise<void> {
  const client = new pg.Client({ ...conn, database: 'postgres' });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (rowCount === 0) {
      try {
        await client.query(`CREATE DATABASE ${quoteIdent(database)}`);
      } catch (err) {
        // 42P04 duplicate_database: another starter won the race; fine.
        if ((err as { code?: string }).code !== '42P04') throw err;
      }
    }
  } finally {
    await client.end();
  }
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** SIGINT (fast shutdown), then SIGQUIT, then SIGKILL if the server will not go. */
function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
  return new Promise((resolvePromise) => {
    const timers: NodeJS.Timeout[] = [];
    child.once('exit', () => {
      timers.forEach(clearTimeout);
      resolvePromise();
    });
    child.kill('SIGINT');
    timers.push(setTimeout(() => child.kill('SIGQUIT'), 30_000));
    timers.push(setTimeout(() => child.kill('SIGKILL'), 40_000));
  });
}

// ---- ports -----------------------------------------------------------------------------------

function portIsFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const srv = createServer();
    srv.once('error', () => resolvePromise(false));
    srv.listen(port, host, () => srv.close(() => resolvePromise(true)));
  });
}

function freePort(host: string): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolvePromise(port));
    });
  });
}
