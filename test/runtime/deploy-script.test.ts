// `make deploy` (infra/openfaas/deploy.sh) with a stand-in faas-cli on PATH that records how it was
// called: against make up's runtime (its gateway recorded in up.env) it logs in with the gateway's
// secret files and runs `faas-cli deploy` with make up's settings exported — the development callers
// and the platform simulator, never the live platform; against any other gateway it runs
// `faas-cli up` with nothing of up.env. And faas-cli finds the template: ./template is a committed
// link to infra/openfaas/template, so a fresh clone has template/hono without `make deploy`.
// Before deploying it migrates the front's database (bin/cdc-migrate, docs/deploy.md "Upgrade"): a
// deploy to a real OpenFaaS without a database to migrate is refused, a failed migration deploys nothing.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { listMigrations, migrate } from '../../infra/db/migrate.js';
import { databaseUrl } from '../setup/db.js';

const root = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'cdc-deploy-'));
const databases: string[] = [];
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  if (!databases.length) return;
  const a = new pg.Client({ connectionString: databaseUrl() });
  await a.connect();
  for (const n of databases) await a.query(`DROP DATABASE IF EXISTS ${n} WITH (FORCE)`);
  await a.end();
});

const migrations = listMigrations().map((m) => m.name);
const last = migrations[migrations.length - 1]!;

/** A database of its own as the previous release left it (every migration but the last), plus `extra` migrations. */
async function olderDatabase(extra: Record<string, string> = {}): Promise<string> {
  const name = `deploymig_${randomBytes(4).toString('hex')}`;
  const a = new pg.Client({ connectionString: databaseUrl() });
  await a.connect();
  await a.query(`CREATE DATABASE ${name}`);
  await a.end();
  databases.push(name);
  const u = new URL(databaseUrl());
  u.pathname = `/${name}`;
  const src = mkdtempSync(join(dir, 'mig-'));
  for (const f of migrations.slice(0, -1)) cpSync(join(root, 'infra/db', f), join(src, f));
  for (const [f, sql] of Object.entries(extra)) writeFileSync(join(src, f), sql);
  await migrate(u.toString(), src);
  return u.toString();
}

async function ledger(url: string): Promise<string[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<{ name: string }>('SELECT name FROM schema_migration ORDER BY name')).rows.map((r) => r.name);
  } finally {
    await c.end();
  }
}

function setup(): { bin: string; data: string; calls: string } {
  const bin = join(dir, 'bin');
  const data = join(dir, 'data');
  mkdirSync(bin, { recursive: true });
  mkdirSync(join(data, 'secrets'), { recursive: true });
  const calls = join(dir, 'calls.log');
  rmSync(calls, { force: true });
  // The stand-in: one line per call with its arguments, stdin and the settings it would deploy with.
  writeFileSync(
    join(bin, 'faas-cli'),
    `#!/bin/sh\nstdin=""\ncase "$*" in *--password-stdin*) stdin=$(cat) ;; esac\necho "ARGS $* | STDIN $stdin | HIS_ALLOW=\${HIS_ALLOW:-} NATIONAL_URL=\${NATIONAL_URL:-} DATA_PORT=\${DATA_PORT:-}" >> ${calls}\n`,
    { mode: 0o755 },
  );
  writeFileSync(join(data, 'secrets', 'basic-auth-user'), 'admin\n');
  writeFileSync(join(data, 'secrets', 'basic-auth-password'), 'pw-123\n');
  writeFileSync(
    join(data, 'up.env'),
    "# written by make up\nOPENFAAS_URL='http://127.0.0.1:18080'\nHIS_ALLOW='127.0.0.1/8,::1/128'\nNATIONAL_URL='http://127.0.0.1:18090'\nDATA_PORT='18881'\n",
  );
  return { bin, data, calls };
}

const deploy = (env: Record<string, string>) =>
  spawnSync('sh', [join(root, 'infra/openfaas/deploy.sh')], { env: { PATH: `${env.BIN}:/usr/bin:/bin`, ...env }, encoding: 'utf8' });

describe('make deploy', () => {
  it("onto make up's runtime: logs in with its secret files and deploys with make up's settings", () => {
    const { bin, data, calls } = setup();
    const r = deploy({ BIN: bin, CDC_DATA_DIR: data });
    expect(r.status, r.stderr).toBe(0);
    const lines = readFileSync(calls, 'utf8').trim().split('\n');
    expect(lines).toEqual([
      'ARGS login --gateway http://127.0.0.1:18080 --username admin --password-stdin | STDIN pw-123 | HIS_ALLOW=127.0.0.1/8,::1/128 NATIONAL_URL=http://127.0.0.1:18090 DATA_PORT=18881',
      'ARGS deploy -f stack.yml --gateway http://127.0.0.1:18080 | STDIN  | HIS_ALLOW=127.0.0.1/8,::1/128 NATIONAL_URL=http://127.0.0.1:18090 DATA_PORT=18881',
    ]);
  });

  it('onto another gateway: faas-cli up, with nothing of up.env', () => {
    const { bin, data, calls } = setup();
    // The database was migrated apart (the tests below migrate through make deploy itself).
    const r = deploy({ BIN: bin, CDC_DATA_DIR: data, OPENFAAS_URL: 'http://10.0.0.8:8080', CDC_MIGRATE: 'done' });
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(calls, 'utf8').trim().split('\n')).toEqual([
      'ARGS up -f stack.yml --gateway http://10.0.0.8:8080 | STDIN  | HIS_ALLOW= NATIONAL_URL= DATA_PORT=',
    ]);
  });

  it('onto another gateway: refused without a database to migrate, and faas-cli is not run', () => {
    const { bin, data, calls } = setup();
    const r = deploy({ BIN: bin, CDC_DATA_DIR: data, OPENFAAS_URL: 'http://10.0.0.8:8080' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("make deploy migrates the front's database before deploying: set DATABASE_URL");
    expect(existsSync(calls)).toBe(false);
  });

  it('onto another gateway: migrates the database first (what the new release adds), then faas-cli up', async () => {
    const { bin, data, calls } = setup();
    const url = await olderDatabase();
    expect(await ledger(url)).not.toContain(last);
    const r = deploy({ BIN: bin, CDC_DATA_DIR: data, OPENFAAS_URL: 'http://10.0.0.8:8080', DATABASE_URL: url });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`[cdc-migrate] applied: ${last}`);
    expect(await ledger(url)).toContain(last);
    expect(readFileSync(calls, 'utf8').trim().split('\n')).toHaveLength(1);
    expect(readFileSync(calls, 'utf8')).toContain('ARGS up -f stack.yml --gateway http://10.0.0.8:8080');
  });

  it('a migration that fails (a database a newer release migrated) deploys nothing', async () => {
    const { bin, data, calls } = setup();
    const url = await olderDatabase({ '9990_newer_release.sql': 'CREATE TABLE newer_thing (id int);' });
    const r = deploy({ BIN: bin, CDC_DATA_DIR: data, OPENFAAS_URL: 'http://10.0.0.8:8080', DATABASE_URL: url });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('newer release: 9990_newer_release.sql');
    expect(r.stderr).toContain('nothing was deployed');
    expect(existsSync(calls)).toBe(false);
  });

  it("onto make up's runtime: migrates its database (the secret file cdc-database-url) before faas-cli deploy", async () => {
    const { bin, data, calls } = setup();
    const url = await olderDatabase();
    writeFileSync(join(data, 'secrets', 'cdc-database-url'), `${url}\n`, { mode: 0o600 });
    try {
      const r = deploy({ BIN: bin, CDC_DATA_DIR: data });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain(`[cdc-migrate] applied: ${last}`);
      expect(await ledger(url)).toContain(last);
      expect(readFileSync(calls, 'utf8')).toContain('ARGS deploy -f stack.yml --gateway http://127.0.0.1:18080');
    } finally {
      rmSync(join(data, 'secrets', 'cdc-database-url'));
    }
  });

  it('says what is missing: faas-cli, a gateway', () => {
    const { bin, data } = setup();
    const none = spawnSync('sh', [join(root, 'infra/openfaas/deploy.sh')], { env: { PATH: '/usr/bin:/bin', CDC_DATA_DIR: data }, encoding: 'utf8' });
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('faas-cli is not installed');
    rmSync(join(data, 'up.env'));
    const nogw = deploy({ BIN: bin, CDC_DATA_DIR: data });
    expect(nogw.status).toBe(2);
    expect(nogw.stderr).toContain('set OPENFAAS_URL');
  });

  it('finds the hono template where faas-cli looks: ./template/hono, a committed relative link', () => {
    const link = join(root, 'template');
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe('infra/openfaas/template');
    const tracked = spawnSync('git', ['ls-files', '-s', 'template'], { cwd: root, encoding: 'utf8' });
    expect(tracked.stdout).toMatch(/^120000 /); // a symbolic link in git, not a copied folder
    const template = parse(readFileSync(join(link, 'hono', 'template.yml'), 'utf8')) as { language: string };
    expect(template.language).toBe('hono');
    const stack = parse(readFileSync(join(root, 'stack.yml'), 'utf8')) as {
      configuration: { templates: Array<{ name: string; source?: string }> };
      functions: Record<string, { lang: string }>;
    };
    expect(stack.configuration.templates.map((t) => t.name)).toEqual(['hono']);
    expect(new Set(Object.values(stack.functions).map((f) => f.lang))).toEqual(new Set(['hono']));
  });
});
