/**
 * The operator commands (bin/cdc-faas, bin/cdc-callers, bin/cdc-codes, as real processes) find the
 * gateway, its credentials and the database the way `make up` set them (CDC_DATA_DIR,
 * CDC_SECRETS_DIR, GATEWAY_PORT, DATABASE_URL: infra/cli/locate.ts), and when they cannot, say
 * what they tried, never printing a password.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { locate } from '../../infra/cli/locate.js';
import type { RuntimeHandle } from '../../infra/runtime/index.js';
import { freePort } from '../../infra/runtime/replica.js';
import { startFixtureRuntime } from '../runtime/helpers.js';
import { databaseUrl } from '../setup/db.js';

const root = resolve(import.meta.dirname, '../..');

/** A command with only the given variables of the kind make up reads (none inherited from this process). */
function cmd(name: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(DATABASE_URL|CDC_|OPENFAAS_|GATEWAY_|PG_PORT)/.test(k)));
  return new Promise((ok, fail) => {
    const child = spawn(join(root, 'bin', name), args, { cwd: root, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', fail);
    child.on('exit', (code) => ok({ code, stdout, stderr }));
  });
}

describe('where make up and the operator commands look (infra/cli/locate.ts)', () => {
  it('has make up’s defaults: .data under the project, its secrets and logs, the documented ports', () => {
    const l = locate({});
    expect(l.dataDir).toBe(join(root, '.data'));
    expect(l.secretsDir).toBe(join(root, '.data', 'secrets'));
    expect(l.logsDir).toBe(join(root, '.data', 'logs'));
    expect(l.ports).toEqual({
      gateway: 8080,
      data: 8881,
      config: 8882,
      monitor: 8883,
      web: 8884,
      pg: 5432,
      nationalSim: 18888,
      provincialSim: 18889,
      s3: 9000,
    });
    const moved = locate({ CDC_DATA_DIR: '/srv/front', CDC_LOGS_DIR: '/var/log/front', GATEWAY_PORT: '9080' });
    expect(moved).toMatchObject({
      dataDir: '/srv/front',
      secretsDir: '/srv/front/secrets',
      logsDir: '/var/log/front',
      runDir: '/srv/front/run',
      pgDataDir: '/srv/front/pg',
    });
    expect(moved.ports.gateway).toBe(9080);
    expect(() => locate({ GATEWAY_PORT: 'eighty' })).toThrow(/GATEWAY_PORT/);
  });
});

describe('the operator commands as processes', { timeout: 120_000 }, () => {
  let dir: string;
  let rt: RuntimeHandle;
  let gatewayPort: string;

  beforeAll(async () => {
    // A data dir laid out as make up leaves it: secrets/cdc-database-url and the gateway's basic-auth files.
    const started = await startFixtureRuntime();
    rt = started.rt;
    dir = started.dir;
    gatewayPort = new URL(rt.gatewayUrl).port;
    writeFileSync(join(dir, 'secrets', 'cdc-database-url'), databaseUrl() + '\n', { mode: 0o600 });
  });

  afterAll(async () => {
    await rt?.close();
  });

  it('cdc-faas reaches the gateway from GATEWAY_PORT and its credentials from CDC_DATA_DIR', async () => {
    const r = await cmd('cdc-faas', ['list'], { CDC_DATA_DIR: dir, GATEWAY_PORT: gatewayPort });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^echo\s+\d+\s+1\/1/m);
  });

  it('cdc-faas says which gateway it tried when nothing listens there', async () => {
    const closed = String(await freePort());
    const r = await cmd('cdc-faas', ['list'], { CDC_DATA_DIR: dir, GATEWAY_PORT: closed });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot reach the gateway`);
    expect(r.stderr).toContain(`tried gateway http://127.0.0.1:${closed} (from GATEWAY_HOST (default) and GATEWAY_PORT; OPENFAAS_URL unset)`);
  });

  it('cdc-faas lists where it looked for credentials when the gateway refuses it', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'cdc-ops-empty-'));
    try {
      const r = await cmd('cdc-faas', ['list'], { CDC_DATA_DIR: empty, GATEWAY_PORT: gatewayPort });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('unauthorized');
      expect(r.stderr).toContain(`tried OPENFAAS_USER/OPENFAAS_PASSWORD (unset), ${join(empty, 'secrets', 'basic-auth-user')} (missing)`);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('cdc-callers and cdc-codes find the database in the secret file make up wrote (CDC_DATA_DIR or CDC_SECRETS_DIR)', async () => {
    const callers = await cmd('cdc-callers', ['list', '--json'], { CDC_DATA_DIR: dir });
    expect(callers.code, callers.stderr).toBe(0);
    expect(JSON.parse(callers.stdout)).toBeInstanceOf(Array);
    const codes = await cmd('cdc-codes', ['domains', '--json'], { CDC_SECRETS_DIR: join(dir, 'secrets') });
    expect(codes.code, codes.stderr).toBe(0);
    expect((JSON.parse(codes.stdout) as Array<{ domain: string }>).map((d) => d.domain)).toContain('sex');
  });

  it('with no database to be found, they say what they tried', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'cdc-ops-empty-'));
    try {
      for (const name of ['cdc-callers', 'cdc-codes']) {
        const r = await cmd(name, name === 'cdc-callers' ? ['list'] : ['domains'], { CDC_DATA_DIR: empty });
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(
          `no database: tried DATABASE_URL (unset), ${join(empty, 'secrets', 'cdc-database-url')} (missing; folder from CDC_DATA_DIR)`,
        );
      }
      mkdirSync(join(empty, 'secrets'));
      const r = await cmd('cdc-callers', ['list'], { CDC_DATA_DIR: empty, CDC_SECRETS_DIR: join(empty, 'secrets') });
      expect(r.stderr).toContain(`${join(empty, 'secrets', 'cdc-database-url')} (missing; folder from CDC_SECRETS_DIR)`);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('with a database that does not answer, they name the URL without its password and where it came from', async () => {
    const url = `postgresql://cdcfront:do-not-print-me@127.0.0.1:${await freePort()}/cdcfront`;
    const r = await cmd('cdc-codes', ['domains'], { DATABASE_URL: url });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot reach the database ${url.replace('do-not-print-me', '***')} (from DATABASE_URL)`);
    expect(r.stderr + r.stdout).not.toContain('do-not-print-me');
  });
});
