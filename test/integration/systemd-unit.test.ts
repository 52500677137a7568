/**
 * The systemd unit for a server without containers (infra/systemd/cdc-front.service, docs/runtime.md
 * "Under systemd"): systemd-analyze accepts it; it gives what the front needs (the runtime's own
 * node flags, production mode, KillMode=mixed, a stop timeout above the longest drain, the open-file
 * limit); and its command line, run as systemd runs it — the unit's Environment=, the settings file's
 * variables, its working directory, nothing inherited — starts the front against the test database,
 * and SIGTERM to that process alone (what KillMode=mixed sends) stops every replica and exits 0.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runtimeBundle } from '../../infra/root.js';
import { RUNTIME_NODE_FLAGS } from '../../infra/runtime/node-flags.js';
import { loadStack } from '../../infra/runtime/stack.js';
import { parseDuration } from '../../shared/time/duration.js';
import { databaseUrl } from '../setup/db.js';
import { stablePorts } from '../setup/ports.js';

const root = resolve(import.meta.dirname, '../..');
const UNIT = join(root, 'infra/systemd/cdc-front.service');
const INSTALLED_AT = '/opt/cdc-front';

/** The [Service] section's settings: a key given several times (Environment=) keeps every value. */
function service(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const raw of readFileSync(UNIT, 'utf8').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s) {
      section = s[1]!;
      continue;
    }
    const eq = line.indexOf('=');
    if (section !== 'Service' || eq < 0) continue;
    const k = line.slice(0, eq);
    out.set(k, [...(out.get(k) ?? []), line.slice(eq + 1)]);
  }
  return out;
}
const one = (svc: Map<string, string[]>, k: string) => svc.get(k)?.at(-1) ?? '';

/** Children of `pid` (from /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}
const alive = (pid: number) => existsSync(`/proc/${pid}`);

describe('the systemd unit', () => {
  const svc = service();
  const functions = loadStack(join(root, 'stack.yml'), {}).functions;

  it('is accepted by systemd-analyze verify', () => {
    const r = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' });
    expect(r.error, 'systemd-analyze (Debian package systemd) is needed by this test').toBeUndefined();
    expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
    expect(r.status).toBe(0);
  });

  it("runs the runtime's node with its own flags in production mode, stops it as it must be stopped, and lifts the open-file limit", () => {
    const exec = one(svc, 'ExecStart').split(/\s+/);
    const node = exec.indexOf('node');
    expect(exec.slice(0, 2)).toEqual(['/usr/bin/env', `PATH=${INSTALLED_AT}/.tools/node/bin:/usr/local/bin:/usr/bin:/bin`]);
    expect(exec.slice(node + 1)).toEqual([...RUNTIME_NODE_FLAGS, relative(root, runtimeBundle('up'))]);
    expect(one(svc, 'WorkingDirectory')).toBe(INSTALLED_AT);
    expect(svc.get('Environment')).toEqual(expect.arrayContaining(['CDC_ENV=production']));
    expect(one(svc, 'User')).not.toMatch(/^(root|0|)$/);
    // SIGTERM to the runtime alone, which drains the replicas itself.
    expect(one(svc, 'KillMode')).toBe('mixed');
    expect(one(svc, 'KillSignal')).toBe('SIGTERM');
    // Longer than the longest drain a replica may take (its write_timeout), with room to spare.
    const longest = Math.max(...functions.map((f) => parseDuration(f.environment.write_timeout ?? '10s', 10_000)));
    expect(Number(one(svc, 'TimeoutStopSec')) * 1000).toBeGreaterThanOrEqual(longest + 10_000);
    expect(Number(one(svc, 'LimitNOFILE'))).toBeGreaterThanOrEqual(65_536);
  });

  const dataDir = mkdtempSync(join(tmpdir(), 'cdc-systemd-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('its command line starts the front, and SIGTERM to it alone stops every replica and exits 0', { timeout: 240_000 }, async () => {
    const [gateway, data, config, monitor, web, closed] = (await stablePorts(6)).map(String);
    // Installed here instead of /opt/cdc-front. Node 24 is .tools' when node.sh put it there; on a
    // machine whose own node is 24 (node.sh then installs nothing) it is the one running this test,
    // standing in for the system's /usr/bin/node.
    const tools = join(root, '.tools/node/bin');
    const exec = one(svc, 'ExecStart')
      .replace(`PATH=${INSTALLED_AT}/.tools/node/bin:`, `PATH=${existsSync(join(tools, 'node')) ? tools : dirname(process.execPath)}:`)
      .replaceAll(INSTALLED_AT, root)
      .split(/\s+/);
    const unitEnv = Object.fromEntries((svc.get('Environment') ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
    // The settings file as shipped (infra/systemd/front.env.example), its hospital-specific values
    // pointed at this test's database, closed ports for the platform and MinIO, free ports.
    const example = Object.fromEntries(
      readFileSync(join(root, 'infra/systemd/front.env.example'), 'utf8')
        .split('\n')
        .filter((l) => /^[A-Z_][A-Z0-9_]*=/.test(l))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    const ours = {
      DATABASE_URL: databaseUrl(),
      NATIONAL_URL: `http://127.0.0.1:${closed}`,
      BACKUP_S3_ENDPOINT: `http://127.0.0.1:${closed}`,
      FRONT_ORG_CODE: '330100000000',
      DATA_PORT: data!,
      CONFIG_PORT: config!,
      MONITOR_PORT: monitor!,
      WEB_PORT: web!,
    };
    // Everything a start needs is in the example (production refuses a start without them).
    expect(Object.keys(example)).toEqual(expect.arrayContaining(Object.keys(ours)));
    const settings = { ...example, ...ours, CDC_DATA_DIR: dataDir, GATEWAY_PORT: gateway! };
    // The installation's step before the first start (docs/keys.md): the personal-data keys, on a
    // server where the secrets folder does not exist yet.
    const keys = spawnSync(join(root, 'bin/cdc-keys'), ['init', '--secrets', join(dataDir, 'secrets')], { encoding: 'utf8' });
    expect(keys.status, `${keys.stdout}${keys.stderr}`).toBe(0);
    expect(statSync(join(dataDir, 'secrets')).mode & 0o777).toBe(0o700);
    const child = spawn(exec[0]!, exec.slice(1), {
      cwd: one(svc, 'WorkingDirectory').replace(INSTALLED_AT, root),
      env: { LANG: 'C.UTF-8', ...unitEnv, ...settings },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));
    try {
      const end = Date.now() + 150_000;
      while (!/\[make up\] functions: /.test(out)) {
        if (child.exitCode !== null || Date.now() > end)
          throw new Error(`the unit's command did not start the front (exit ${child.exitCode}):\n${out.slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 250));
      }
      // Production mode: no stand-in started.
      expect(out).not.toMatch(/PostgreSQL 127\.0\.0\.1|backup store \(s3rver\)/);
      // The hospital's MinIO named, its credential files not made yet: said at the start, not at the
      // first nightly backup.
      expect(out).toContain(
        `BACKUP_S3_ENDPOINT is http://127.0.0.1:${closed}, but the store's credentials are missing: ${join(dataDir, 'secrets', 'backup-s3-access-key')}, ${join(dataDir, 'secrets', 'backup-s3-secret-key')}`,
      );
      const res = await fetch(`http://127.0.0.1:${data}/openapi.json`);
      expect(res.status).toBe(200);
      await res.body?.cancel();
      const replicas = childrenOf(child.pid!);
      // Every function but the three that scale to zero when idle (config, day-close, backup).
      expect(replicas.length).toBeGreaterThanOrEqual(functions.length - 3);

      child.kill('SIGTERM');
      const code = await Promise.race([exited, new Promise<'late'>((ok) => setTimeout(() => ok('late'), 60_000))]);
      expect(code, out.slice(-3000)).toBe(0);
      expect(replicas.filter(alive)).toEqual([]);
      expect(out).toMatch(/runtime stopped/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
