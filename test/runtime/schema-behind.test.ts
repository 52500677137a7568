// New bundles on an old schema (docs/deploy.md "Upgrade": the OpenFaaS paths migrate with
// bin/cdc-migrate, and a deploy without it must not look healthy): the runtime runs the front on a
// database that lacks this release's migrations from 0960 on (among them 1010, whose table
// staging.sync_outcome dbsync writes). The monitoring port's /healthz and /status answer 503 naming them, a function's log
// says so at its start, a dbsync run failing on the missing table names them too, and once
// bin/cdc-migrate has run both are healthy again. Meanwhile the console's 备份 page still opens. /status names the release the bundles were built as.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootStack, type Booted } from '../../infra/runtime/boot.js';
import { listMigrations, migrate } from '../../infra/db/migrate.js';
import { devKeyFiles } from '../../shared/pii/index.js';
import { databaseUrl, emptyDatabase } from '../setup/db.js';
import { signedInToWeb } from '../setup/console-session.js';
import pkg from '../../package.json' with { type: 'json' };

const root = resolve(import.meta.dirname, '../..');
const name = `schbehind_${randomBytes(4).toString('hex')}`;
const dir = mkdtempSync(join(tmpdir(), 'cdc-schbehind-'));
const all = listMigrations().map((m) => m.name);
// From 0960 on, whatever later releases add after it: the run below fails on 1010's table.
const from = all.findIndex((f) => f.startsWith('0960_'));
const missing = all.slice(from);
const last = missing.join(', ');
let url: string;
let front: Booted;
let token: string;

beforeAll(async () => {
  url = await emptyDatabase(name);
  // The database as the previous release left it: every migration before 0960.
  for (const f of all.slice(0, from)) cpSync(join(root, 'infra/db', f), join(dir, f));
  await migrate(url, dir);
  front = await bootStack({ name: 'schema-behind', databaseUrl: url, secrets: devKeyFiles() });
  token = readFileSync(join(front.secretsDir, 'monitor-token'), 'utf8').trim();
}, 120_000);

afterAll(async () => {
  await front?.close();
  const a = new pg.Client({ connectionString: databaseUrl() });
  await a.connect();
  await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await a.end();
  rmSync(dir, { recursive: true, force: true });
});

const status = () => fetch(`${front.rt.portUrls.monitor}/status`, { headers: { authorization: `Bearer ${token}` } });

describe('a front whose database lacks a migration of its release', () => {
  it('is unhealthy on the monitoring port, naming the missing migration, and its functions log it at start', async () => {
    const h = await fetch(`${front.rt.portUrls.monitor}/healthz`);
    expect(h.status).toBe(503);
    expect(await h.json()).toEqual({ ok: false, schema: 'behind', missing, unknown: [] });
    const s = await status();
    expect(s.status).toBe(503);
    const body = (await s.json()) as { version: string; release: string; database: { reachable: boolean; schema: unknown } };
    expect(body.database).toMatchObject({ reachable: true, schema: { state: 'behind', missing, unknown: [] } });
    // The release: package.json's version and the commit the bundles were built from.
    expect(body.version).toBe(pkg.version);
    expect(body.release).toMatch(new RegExp(`^${pkg.version.replaceAll('.', '\\.')}\\+[0-9a-f]{12}(-modified)?$`));
    // The console's status page says it too, with the release.
    const page = await (await fetch(`${front.rt.portUrls.web}/status.html`)).text();
    expect(page).toContain(`<p data-k="release">发布版本：${body.release}</p>`);
    expect(page).toContain(`数据库结构落后于本版本，缺少迁移：${missing.join('、')}；请运行 bin/cdc-migrate`);
    const logFile = join(front.rt.logsDir, 'monitor.log');
    // The function's start line names the same release.
    await expect.poll(() => readFileSync(logFile, 'utf8'), { timeout: 10_000 }).toContain(`"msg":"listening"`);
    expect(readFileSync(logFile, 'utf8')).toMatch(new RegExp(`"msg":"listening".*"release":"${body.release.replaceAll('.', '\\.').replaceAll('+', '\\+')}"`));
    await expect
      .poll(() => readFileSync(logFile, 'utf8'), { timeout: 10_000 })
      .toContain(`database schema is behind this release: missing migration(s) ${last}; run bin/cdc-migrate`);
  });

  it("the console's 备份 page still shows the ledger, a later migration's columns read as empty", async () => {
    const db = new pg.Pool({ connectionString: url, max: 1 });
    try {
      // A check as the previous release wrote it: no Chinese note (migration 1040), its message shown.
      const message = `freshness: last good logical backup ${randomBytes(3).toString('hex')} minutes ago`;
      await db.query(`INSERT INTO backup_check (archive_id, check_kind, ok, message, duration_ms) VALUES (NULL, 'freshness', true, $1, 3)`, [message]);
      // Signed in over the running front's web port, as a person would.
      const overHttp = { app: { request: (path: string, init?: RequestInit) => fetch(`${front.rt.portUrls.web}${path}`, { ...init, redirect: 'manual' }) } };
      const cookie = await signedInToWeb(overHttp as never, db, { role: 'operator', host: {}, next: '/backups.html' });
      const res = await fetch(`${front.rt.portUrls.web}/backups.html`, { headers: { cookie: `cdc_console=${cookie}` } });
      expect(res.status).toBe(200);
      expect(await res.text()).toContain(`<td class="ok">通过</td><td title="${message}">${message}</td>`);
    } finally {
      await db.end();
    }
  });

  it('a dbsync run failing on the missing table names the migrations to apply', async () => {
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      await db.query(
        "INSERT INTO staging.emr_patient_info (org_code, id, patient_name, gender_code, birth_date) VALUES ('440106001', 'S-SCH1', '测试', '2', '1980-01-01')",
      );
    } finally {
      await db.end();
    }
    const res = await fetch(`${front.rt.gatewayUrl}/function/dbsync`, { method: 'POST' });
    expect(res.status).toBe(500);
    const logFile = join(front.rt.logsDir, 'dbsync.log');
    await expect.poll(() => readFileSync(logFile, 'utf8'), { timeout: 10_000 }).toContain('"msg":"unhandled error"');
    const line = readFileSync(logFile, 'utf8')
      .split('\n')
      .find((l) => l.includes('"msg":"unhandled error"'))!;
    // 42P01: 1010's table; 42703: 1060's column, which the code cache reads when dbsync opens it, first.
    expect(JSON.parse(line)).toMatchObject({
      code: expect.stringMatching(/^42(P01|703)$/),
      schema: 'behind',
      missing,
      hint: expect.stringContaining('run bin/cdc-migrate'),
    });
    expect(line).not.toContain('测试');
  });

  it('is healthy again once bin/cdc-migrate has applied them', async () => {
    const r = spawnSync(join(root, 'bin/cdc-migrate'), [], { env: { PATH: '/usr/bin:/bin', DATABASE_URL: url }, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`applied: ${last}`);
    expect((await fetch(`${front.rt.portUrls.monitor}/healthz`)).status).toBe(200);
    const s = await status();
    expect(s.status).toBe(200);
    expect(((await s.json()) as { database: { schema: unknown } }).database.schema).toEqual({ state: 'current', missing: [], unknown: [] });
  });
});
