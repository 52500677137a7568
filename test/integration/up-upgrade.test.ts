/**
 * `make up` (its bundle, dist/runtime/up.mjs, as its own process group, as a terminal runs it) at an
 * upgrade (docs/deploy.md "Upgrade"): its start names the release, each migration it applies with its
 * duration, and the backups' encryption key it made, to be kept off the server (docs/backup.md
 * "Encryption at rest"); Ctrl-C of the group stops it without announcing restarts; and a database a
 * newer release migrated is refused at the next start, naming the migration.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { runtimeBundle } from '../../infra/root.js';
import { stablePorts } from '../setup/ports.js';
import pkg from '../../package.json' with { type: 'json' };

const root = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'cdc-up-upgrade-'));

interface Up {
  child: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
}

function startUp(env: Record<string, string>): Up {
  const { DATABASE_URL: _d, NATIONAL_URL: _n, CDC_SECRETS_DIR: _s, CDC_LOGS_DIR: _l, OPENFAAS_URL: _o, ...base } = process.env;
  // A process group of its own: a stop is the terminal's Ctrl-C, SIGINT to the whole group.
  const child = spawn(process.execPath, [runtimeBundle('up')], { cwd: root, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));
  return { child, out: () => out, exited };
}

async function ready(up: Up): Promise<void> {
  const until = Date.now() + 150_000;
  let gone = false;
  void up.exited.then(() => (gone = true));
  while (!/\[make up\] functions: /.test(up.out())) {
    if (gone) throw new Error(`make up exited before it was ready:\n${up.out().slice(-4000)}`);
    if (Date.now() > until) throw new Error(`make up not ready:\n${up.out().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}
const pidsWith = (text: string) =>
  readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d) && cmdline(Number(d)).includes(text))
    .map(Number);

let env: Record<string, string>;
let up: Up | undefined;

afterAll(async () => {
  if (up && up.child.exitCode === null && up.child.signalCode === null) {
    process.kill(-up.child.pid!, 'SIGTERM');
    await Promise.race([up.exited, new Promise((r) => setTimeout(r, 30_000))]);
  }
  for (const p of pidsWith(dir)) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('make up at an upgrade', { timeout: 400_000 }, () => {
  it('names its release, each migration with its duration, and the backup key it made; Ctrl-C stops it without announcing restarts', async () => {
    const [pgPort, simPort, gatewayPort, dataPort, configPort, monitorPort, webPort, s3Port] = (await stablePorts(8)).map(String);
    env = {
      CDC_DATA_DIR: dir,
      PG_PORT: pgPort!,
      NATIONAL_SIM_PORT: simPort!,
      GATEWAY_PORT: gatewayPort!,
      DATA_PORT: dataPort!,
      CONFIG_PORT: configPort!,
      MONITOR_PORT: monitorPort!,
      WEB_PORT: webPort!,
      S3_PORT: s3Port!,
      RUNTIME_BUILD: 'missing',
    };
    up = startUp(env);
    await ready(up);
    const out = up.out();
    expect(out).toMatch(new RegExp(`\\[make up\\] cdc-front ${pkg.version.replaceAll('.', '\\.')}\\+[0-9a-f]{12}`));
    expect(out).toMatch(/\[make up\] migration 0001_core\.sql applied in \d+\.\d s/);
    expect(out).toContain(`[make up] made the backups' encryption key ${join(dir, 'secrets', 'backup-sm4-key')}`);
    expect(out).toContain('keep a copy off this server');
    // A newer release's migration in the ledger, as a downgrade would find it.
    const db = new pg.Client({ connectionString: readFileSync(join(dir, 'secrets', 'cdc-database-url'), 'utf8').trim() });
    await db.connect();
    await db.query("INSERT INTO schema_migration (name, checksum) VALUES ('9990_newer_release.sql', repeat('0', 64))");
    await db.end();
    const before = up.out().length;
    process.kill(-up.child.pid!, 'SIGINT');
    expect(await up.exited).toBe(0);
    const stopping = up.out().slice(before);
    expect(stopping).toContain('[make up] stopping…');
    expect(stopping).not.toContain('restarting in');
  });

  it('refuses a database a newer release migrated, naming the migration and what to do', async () => {
    up = startUp(env);
    expect(await up.exited).toBe(1);
    expect(up.out()).toContain('[make up] refusing to migrate: database was migrated by a newer release: 9990_newer_release.sql unknown to this release');
    expect(up.out()).toContain('restore the backup taken before the upgrade');
    // Its second start made no new key: no line about one.
    expect(up.out()).not.toContain('made the backups');
  });
});
