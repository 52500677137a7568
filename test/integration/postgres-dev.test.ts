/**
 * infra/dev/postgres.ts: the embedded database of `make up` and the tests. Starts its own cluster
 * in a fresh temp dir (not the shared test database), so it can stop and restart it.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentialsFile, startPostgres, type RunningPostgres } from '../../infra/dev/postgres.js';

async function query<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

describe('startPostgres', () => {
  let dir: string;
  let dataDir: string;
  let server: RunningPostgres | undefined;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cdc-pg-dev-'));
    dataDir = join(dir, 'data');
  });

  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('initialises an empty dir and serves the database over loopback with a password', async () => {
    server = await startPostgres({ dataDir, fsync: false, database: 'cdcfront_dev' });
    expect(server.url).toMatch(/^postgresql:\/\/cdcfront:[0-9a-f]+@127\.0\.0\.1:\d+\/cdcfront_dev$/);
    const [row] = await query<{ db: string; enc: string; collate: string }>(
      server.url,
      `SELECT current_database() AS db, pg_encoding_to_char(encoding) AS enc, datcollate AS collate
         FROM pg_database WHERE datname = current_database()`,
    );
    expect(row).toMatchObject({ db: 'cdcfront_dev', enc: 'UTF8', collate: 'C' });
    await query(server.url, 'CREATE TABLE kept (v text)');
    await query(server.url, 'INSERT INTO kept VALUES ($1)', ['survives a restart']);
  });

  it('keeps the password in a sibling file readable by its owner only', () => {
    const file = credentialsFile(dataDir);
    expect(file).toBe(join(dir, 'data.credentials.json'));
    expect(statSync(file).mode & 0o077).toBe(0);
    const creds = JSON.parse(readFileSync(file, 'utf8')) as { user: string; password: string; port: number };
    expect(server!.url).toContain(`:${creds.password}@`);
    expect(creds.port).toBe(server!.port);
  });

  it('refuses connections without the password (no trust auth)', async () => {
    const bad = server!.url.replace(`:${server!.password}@`, ':wrong@');
    await expect(query(bad, 'SELECT 1')).rejects.toMatchObject({ code: '28P01' });
    const hba = readFileSync(join(dataDir, 'pg_hba.conf'), 'utf8')
      .split('\n')
      .filter((l) => l.trim() && !l.trim().startsWith('#'));
    expect(hba.length).toBeGreaterThan(0);
    for (const line of hba) expect(line).toMatch(/scram-sha-256$/);
  });

  it('restarts on the same dir and port with the same URL, and the data persists', async () => {
    const before = server!;
    await before.stop();
    await before.stop(); // idempotent
    await expect(query(before.url, 'SELECT 1')).rejects.toThrow();
    server = await startPostgres({ dataDir, port: before.port, fsync: false, database: 'cdcfront_dev' });
    expect(server.url).toBe(before.url);
    expect(await query(server.url, 'SELECT v FROM kept')).toEqual([{ v: 'survives a restart' }]);
  });

  it('takes the port it had last time when none is given', async () => {
    const before = server!;
    await before.stop();
    server = await startPostgres({ dataDir, fsync: false, database: 'cdcfront_dev' });
    expect(server.port).toBe(before.port);
  });

  it('runs with the extra settings given, over the defaults, and without them on the next start', async () => {
    const before = server!;
    await before.stop();
    server = await startPostgres({ dataDir, port: before.port, fsync: false, database: 'cdcfront_dev', settings: { work_mem: '7MB', shared_buffers: '64MB' } });
    expect(await query(server.url, "SELECT current_setting('work_mem') AS w, current_setting('shared_buffers') AS b")).toEqual([{ w: '7MB', b: '64MB' }]);
    await server.stop();
    server = await startPostgres({ dataDir, port: before.port, fsync: false, database: 'cdcfront_dev' });
    expect(await query(server.url, "SELECT current_setting('work_mem') AS w, current_setting('shared_buffers') AS b")).toEqual([{ w: '4MB', b: '128MB' }]);
  });

  it('starts after a run that left a stale postmaster.pid behind', async () => {
    const before = server!;
    await before.stop();
    // What a SIGKILLed server leaves: a pid file naming a process that no longer exists.
    const pidFile = join(dataDir, 'postmaster.pid');
    writeFileSync(pidFile, `999999\n${dataDir}\n0\n${before.port}\n${dataDir}\n127.0.0.1\n`);
    server = await startPostgres({ dataDir, port: before.port, fsync: false, database: 'cdcfront_dev' });
    expect(await query(server.url, 'SELECT count(*)::int AS n FROM kept')).toEqual([{ n: 1 }]);
    expect(existsSync(pidFile)).toBe(true); // the live server's own
  });

  it('starts after a crash whose dead postmaster is a zombie not yet reaped (stale socket lock)', async () => {
    const before = server!;
    await before.stop();
    // A power-cut kill of the whole front: the postmaster's parent died with it, so the dead
    // postmaster is adopted and stays a zombie until reaped. PostgreSQL takes a zombie's pid as
    // alive and refuses its socket lock file. Here: a real zombie (a shell's child that the exec'd
    // sleep never waits for), named by the lock files a SIGKILLed server leaves.
    // The shell may reap the child itself if it exits before the exec (a loaded machine): then the
    // zombie is made again, up to five times.
    const stat = (pid: number) => {
      try {
        return readFileSync(`/proc/${pid}/stat`, 'utf8');
      } catch {
        return null;
      }
    };
    let holder = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      let zombie = 0;
      for (let attempt = 0; attempt < 5; attempt++) {
        if (attempt > 0) {
          holder.kill('SIGKILL');
          holder = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
        }
        const h = holder;
        zombie = Number((await new Promise<string>((ok) => h.stdout!.once('data', (b: Buffer) => ok(b.toString())))).trim());
        const end = Date.now() + 5_000;
        while (stat(zombie) !== null && !/^\S+ \(.*\) Z/.test(stat(zombie) ?? '') && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
        if (stat(zombie) !== null) break;
      }
      expect(stat(zombie)).toMatch(/\) Z /);
      writeFileSync(join(dataDir, 'postmaster.pid'), `${zombie}\n${dataDir}\n0\n${before.port}\n${dataDir}\n127.0.0.1\n`);
      writeFileSync(join(dataDir, `.s.PGSQL.${before.port}.lock`), `${zombie}\n${dataDir}\n0\n${before.port}\n`);
      server = await startPostgres({ dataDir, port: before.port, fsync: false, database: 'cdcfront_dev' });
      expect(await query(server.url, 'SELECT count(*)::int AS n FROM kept')).toEqual([{ n: 1 }]);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('starts after a kill -9 of the server that left a backend running a long statement (its shared memory still attached)', async () => {
    const before = server!;
    // A backend busy for a minute, as a migration building an index on a big table is; then only the
    // postmaster is killed, as kill -9 of make up's process group leaves it (backends have their own).
    const busy = new pg.Client({ connectionString: before.url });
    await busy.connect();
    busy.on('error', () => undefined);
    const backend = (await busy.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    // Busy on the CPU, not waiting: a backend notices its postmaster's death only when it waits.
    void busy.query('SELECT sum(i) FROM generate_series(1, 5000000000) i').catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    process.kill(before.pid, 'SIGKILL');
    await before.exited;
    const alive = (pid: number) => {
      try {
        return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return false;
      }
    };
    await new Promise((r) => setTimeout(r, 500));
    expect(alive(backend)).toBe(true);
    try {
      server = await startPostgres({ dataDir, port: before.port, fsync: false, database: 'cdcfront_dev' });
      expect(await query(server.url, 'SELECT count(*)::int AS n FROM kept')).toEqual([{ n: 1 }]);
      expect(alive(backend)).toBe(false);
    } finally {
      await busy.end().catch(() => undefined);
      // Should this test fail, the busy backend must not burn a core for minutes after it.
      if (alive(backend)) process.kill(backend, 'SIGKILL');
    }
  });

  it('refuses a second server on a dir that is in use', async () => {
    await expect(startPostgres({ dataDir, fsync: false })).rejects.toThrow(/already running/);
  });
});

describe('startPostgres errors', () => {
  it('refuses a non-empty dir that holds no cluster', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdc-pg-dev-'));
    try {
      writeFileSync(join(dir, 'stray.txt'), 'not a cluster');
      await expect(startPostgres({ dataDir: dir })).rejects.toThrow(/not empty/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
