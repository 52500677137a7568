// Upgrades and downgrades as the migration runner meets them (infra/db/migrate.ts, docs/deploy.md
// "Upgrade"), on databases of their own on the test server: a database a newer release migrated is
// refused, naming the migrations; a migration waiting on a lock a HIS session holds gives up after
// its lock timeout, names the session and tries again; bin/cdc-migrate applies what is missing and
// `--check` says whether the schema is this release's.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { databaseUrl } from '../setup/db.js';
import { listMigrations, migrate } from '../../infra/db/migrate.js';
import { knownMigrations, schemaState } from '../../shared/db/schema.js';

const root = resolve(import.meta.dirname, '../..');
const src = join(root, 'infra/db');
const names: string[] = [];
const dirs: string[] = [];

async function freshDatabase(options = ''): Promise<string> {
  const name = `migup_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: databaseUrl() });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name} ${options}`);
  await admin.end();
  names.push(name);
  const u = new URL(databaseUrl());
  u.pathname = `/${name}`;
  return u.toString();
}

/** A folder with this release's migrations but the last `drop`, plus `extra` files. */
function migrationsDir(drop: number, extra: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'cdc-migup-'));
  dirs.push(dir);
  const all = listMigrations(src).map((m) => m.name);
  for (const f of all.slice(0, all.length - drop)) cpSync(join(src, f), join(dir, f));
  for (const [f, sql] of Object.entries(extra)) writeFileSync(join(dir, f), sql);
  return dir;
}

afterAll(async () => {
  const a = new pg.Client({ connectionString: databaseUrl() });
  await a.connect();
  for (const n of names) await a.query(`DROP DATABASE IF EXISTS ${n} WITH (FORCE)`);
  await a.end();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const cli = (args: string[], env: Record<string, string>) =>
  spawnSync(join(root, 'bin/cdc-migrate'), args, { env: { PATH: '/usr/bin:/bin', ...env }, encoding: 'utf8', timeout: 60_000 });

/**
 * The HIS: a transaction left open after reading sync_result (JDBC with autocommit off); the view's
 * read holds its table's lock too.
 */
async function hisHoldingOutcomes(url: string): Promise<{ his: pg.Client; hisPid: number }> {
  const his = new pg.Client({ connectionString: url, application_name: 'his-vendor-sync' });
  await his.connect();
  await his.query('BEGIN');
  await his.query('SELECT count(*) FROM staging.sync_result');
  return { his, hisPid: (await his.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid };
}

describe('migration runner at an upgrade', () => {
  it('knows its own migrations: the build list is infra/db', () => {
    expect(knownMigrations()).toEqual(listMigrations().map((m) => m.name));
  });

  it('refuses a new database not in UTF8 before creating anything in it', async () => {
    const url = await freshDatabase("ENCODING 'SQL_ASCII' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'");
    await expect(migrate(url)).rejects.toThrow(/^refusing to migrate: database encoding is SQL_ASCII: cdc-front stores Chinese text and needs UTF8/);
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      expect((await db.query(`SELECT 1 FROM pg_tables WHERE schemaname = 'public'`)).rowCount).toBe(0);
    } finally {
      await db.end();
    }
  });

  it('refuses a database a newer release migrated, naming the migrations and what to do, and applies nothing', async () => {
    const url = await freshDatabase();
    await migrate(url, migrationsDir(0, { '9990_newer_release.sql': 'CREATE TABLE newer_thing (id int);' }));
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      expect(await schemaState(db)).toEqual({ state: 'ahead', missing: [], unknown: ['9990_newer_release.sql'] });
      await expect(migrate(url)).rejects.toThrow(/newer release: 9990_newer_release\.sql unknown to this release; run that release, or restore the backup/);
      // The command says the same and fails; --check too.
      const r = cli([], { DATABASE_URL: url });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('refusing to migrate: database was migrated by a newer release: 9990_newer_release.sql');
      const c = cli(['--check'], { DATABASE_URL: url });
      expect(c.status).toBe(1);
      expect(c.stdout).toContain('9990_newer_release.sql');
    } finally {
      await db.end();
    }
  });

  it('bin/cdc-migrate applies what an older database lacks, one line per migration with its duration; --check tells behind from current', async () => {
    const url = await freshDatabase();
    await migrate(url, migrationsDir(2));
    const last2 = knownMigrations().slice(-2);
    const file = join(dirs[0] ?? tmpdir(), `url-${randomBytes(3).toString('hex')}`);
    writeFileSync(file, `${url}\n`);
    const before = cli(['--check'], { DATABASE_URL_FILE: file });
    expect(before.status).toBe(1);
    expect(before.stdout).toContain(`missing migration(s) ${last2.join(', ')}; run bin/cdc-migrate`);
    const r = cli([], { DATABASE_URL_FILE: file });
    expect(r.status, r.stderr).toBe(0);
    for (const n of last2) expect(r.stdout).toMatch(new RegExp(`\\[cdc-migrate\\] migration ${n} applied in \\d+\\.\\d s`));
    expect(r.stdout).toContain(`applied: ${last2.join(', ')}`);
    const after = cli(['--check'], { DATABASE_URL_FILE: file });
    expect(after.status, after.stdout).toBe(0);
    expect(after.stdout).toContain('database schema is current');
    // Found as the other operator commands find it: the secret file in CDC_DATA_DIR's secrets folder.
    const dataDir = mkdtempSync(join(tmpdir(), 'migrate-datadir-'));
    dirs.push(dataDir);
    mkdirSync(join(dataDir, 'secrets'));
    writeFileSync(join(dataDir, 'secrets', 'cdc-database-url'), `${url}\n`);
    const viaDataDir = cli(['--check'], { CDC_DATA_DIR: dataDir });
    expect(viaDataDir.status, viaDataDir.stderr).toBe(0);
    expect(viaDataDir.stdout).toContain('database schema is current');
    // Without a database it says what it tried and what to set.
    const none = cli([], { CDC_DATA_DIR: join(dataDir, 'nothing-here') });
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('no database: tried DATABASE_URL (unset)');
    expect(none.stderr).toContain('set DATABASE_URL');
  });

  it('gives up on a lock a HIS session holds after the lock timeout, names the session, retries, then fails; applies once the session ends', async () => {
    const url = await freshDatabase();
    await migrate(url, migrationsDir(0));
    // The outcomes' table under the HIS's view staging.sync_result (infra/db/1010_sync_result_view.sql).
    const dir = migrationsDir(0, { '9991_sync_result_note.sql': 'ALTER TABLE staging.sync_outcome ADD COLUMN probe_note varchar(20);' });
    const { his, hisPid } = await hisHoldingOutcomes(url);
    const lines: string[] = [];
    const t0 = Date.now();
    try {
      const err = await migrate(url, { dir, lockTimeoutMs: 600, attempts: 3, retryPauseMs: 200, log: (l) => lines.push(l) }).catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      const msg = (err as Error).message;
      expect(msg).toContain('migration 9991_sync_result_note.sql failed: could not take its table locks in 3 attempts of 600 ms');
      expect(msg).toContain(`pid ${hisPid}, application "his-vendor-sync"`);
      expect(msg).toContain('pg_terminate_backend');
      // Not forever: three short waits and two pauses.
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(lines.filter((l) => l.includes('attempt')).length).toBe(2);
      expect(lines.some((l) => l.includes(`is waiting for a table lock held by pid ${hisPid}, application "his-vendor-sync"`))).toBe(true);
      // No query text of the session is quoted (it can hold personal data).
      expect([msg, ...lines].join('\n')).not.toContain('SELECT count');
      // Meanwhile the HIS's other reads were not stuck behind the migration for good.
      const other = new pg.Client({ connectionString: url });
      await other.connect();
      await other.query("SET statement_timeout = '5s'");
      await other.query('SELECT count(*) FROM staging.sync_result');
      await other.end();
    } finally {
      await his.query('COMMIT');
      await his.end();
    }
    const applied = await migrate(url, { dir, lockTimeoutMs: 600 });
    expect(applied).toEqual(['9991_sync_result_note.sql']);
  });

  it('bounds the wait by cancelling it where the server setting cannot be used (an openGauss user not a sysadmin), the same retries and message', async () => {
    const url = await freshDatabase();
    await migrate(url, migrationsDir(0));
    const dir = migrationsDir(0, { '9992_sync_result_flag.sql': 'ALTER TABLE staging.sync_outcome ADD COLUMN probe_flag boolean;' });
    const { his, hisPid } = await hisHoldingOutcomes(url);
    const lines: string[] = [];
    const t0 = Date.now();
    try {
      const err = await migrate(url, { dir, lockTimeoutMs: 600, attempts: 3, retryPauseMs: 200, boundByCancel: true, log: (l) => lines.push(l) }).catch(
        (e: Error) => e,
      );
      expect(err).toBeInstanceOf(Error);
      const msg = (err as Error).message;
      expect(msg).toContain('migration 9992_sync_result_flag.sql failed: could not take its table locks in 3 attempts of 600 ms');
      expect(msg).toContain(`pid ${hisPid}, application "his-vendor-sync"`);
      expect(lines.filter((l) => l.includes('attempt')).length).toBe(2);
      // No session setting bounded it (the watcher did): well under the 20 s a wait would otherwise take here.
      expect(Date.now() - t0).toBeLessThan(15_000);
    } finally {
      await his.query('COMMIT');
      await his.end();
    }
    expect(await migrate(url, { dir, lockTimeoutMs: 600, boundByCancel: true })).toEqual(['9992_sync_result_flag.sql']);
  });
});
