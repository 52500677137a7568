/**
 * `make up` (its bundle of infra/dev/up.ts, the real entry, as its own process) on free loopback ports in a
 * private data dir: it restarts its PostgreSQL after kill -9, a new run after kill -9 of `make up`
 * itself stops the simulator the dead one left and starts on the same ports, and the operator
 * commands find its gateway and database from the same variables (infra/cli/locate.ts); with TLS=1
 * the hospital ports speak HTTPS and records still reach the platform simulator.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runtimeBundle } from '../../infra/root.js';
import { stablePorts } from '../setup/ports.js';

const root = resolve(import.meta.dirname, '../..');

interface Up {
  child: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
}

function startUp(env: Record<string, string>): Up {
  // No DATABASE_URL / NATIONAL_URL of the caller: make up must start its own.
  const { DATABASE_URL: _d, NATIONAL_URL: _n, CDC_SECRETS_DIR: _s, CDC_LOGS_DIR: _l, OPENFAAS_URL: _o, ...base } = process.env;
  const child = spawn(process.execPath, [runtimeBundle('up')], {
    cwd: root,
    env: { ...base, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));
  return { child, out: () => out, exited };
}

/** make up's variables for a data dir of its own on free loopback ports (infra/cli/locate.ts). */
async function upEnv(dataDir: string): Promise<Record<string, string>> {
  // One allocation for every port make up may open (the provincial simulator's too, used with
  // PROVINCIAL_SIM=1): chosen apart, two of them were once the same free port.
  const [pgPort, simPort, gatewayPort, dataPort, configPort, monitorPort, webPort, s3Port, provincialPort] = (await stablePorts(9)).map(String);
  return {
    CDC_DATA_DIR: dataDir,
    PG_PORT: pgPort!,
    NATIONAL_SIM_PORT: simPort!,
    GATEWAY_PORT: gatewayPort!,
    DATA_PORT: dataPort!,
    CONFIG_PORT: configPort!,
    MONITOR_PORT: monitorPort!,
    WEB_PORT: webPort!,
    S3_PORT: s3Port!,
    PROVINCIAL_SIM_PORT: provincialPort!,
    // The bundles are built by the test set-up; the functions only need them present.
    RUNTIME_BUILD: 'missing',
  };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, ms: number, context = () => ''): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}\n${context().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function ready(up: Up): Promise<void> {
  let gone = false;
  void up.exited.then(() => (gone = true));
  await waitFor(
    'make up to be ready',
    () => {
      if (gone) throw new Error(`make up exited before it was ready:\n${up.out().slice(-4000)}`);
      return /\[make up\] functions: /.test(up.out()) ? true : undefined;
    },
    150_000,
    up.out,
  );
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

/** Pids whose command line contains `text` (found through /proc, independent of make up's own pid files). */
function pidsWith(text: string): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d) && cmdline(Number(d)).includes(text))
    .map(Number);
}

/** Every descendant of pid (children first found through /proc/<pid>/stat's ppid). */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [c, pp] of parent) if (pp === p) out.push(c), walk(c);
  };
  walk(pid);
  return out;
}

function run(cmd: string, args: string[], env: Record<string, string>, cwd = tmpdir()): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { DATABASE_URL: _d, CDC_SECRETS_DIR: _s, OPENFAAS_URL: _o, OPENFAAS_USER: _u, OPENFAAS_PASSWORD: _p, ...base } = process.env;
  return new Promise((ok, fail) => {
    const child = spawn(cmd, args, { cwd, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', fail);
    child.on('exit', (code) => ok({ code, stdout, stderr }));
  });
}

const patient = (id: string) => ({
  id,
  patientName: '测试',
  idCardTypeCode: '01',
  idCard: '11010519491231002X',
  genderCode: '2',
  birthDate: '1949-12-31',
  orgCode: '123456789',
  operatorId: 'his',
  operationTime: '2026-11-26 13:00:00',
  invalidFlag: 0,
});

describe('make up supervises and cleans up (its bundle, dist/runtime/up.mjs, as a process)', { timeout: 400_000 }, () => {
  let dir: string;
  let env: Record<string, string>;
  let up: Up | undefined;
  // Descendants of a make up this test killed or stopped, with their command lines (a pid reused by
  // another process by then is left alone).
  const leftovers = new Map<number, string>();
  const remember = (pid: number) => {
    for (const p of descendants(pid)) leftovers.set(p, cmdline(p));
  };

  const his = async (id: string): Promise<number> => {
    try {
      const res = await fetch(`http://127.0.0.1:${env.DATA_PORT}/hclient/emr/receive/emrPatientInfo`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(patient(id)),
        signal: AbortSignal.timeout(10_000),
      });
      await res.arrayBuffer();
      return res.status;
    } catch {
      return 0;
    }
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cdc-up-test-'));
    env = await upEnv(dir);
    up = startUp(env);
    await ready(up);
  });

  afterAll(async () => {
    if (up && up.child.exitCode === null && up.child.signalCode === null) {
      remember(up.child.pid!);
      up.child.kill('SIGTERM');
      await Promise.race([up.exited, new Promise((r) => setTimeout(r, 30_000))]);
    }
    // Whatever a killed run left and the test did not expect to stay (the test fails on those it checks).
    for (const [p, was] of leftovers) if (alive(p) && cmdline(p) === was) process.kill(p, 'SIGKILL');
    for (const p of pidsWith(dir)) if (alive(p)) process.kill(p, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers a HIS request, and the operator commands find its gateway and database from the same variables', async () => {
    expect(await his('UP-1')).toBe(200);
    // No --gateway, --secrets or DATABASE_URL: only the variables make up was started with.
    const faas = await run(join(root, 'bin/cdc-faas'), ['list'], env);
    expect(faas.code, faas.stderr).toBe(0);
    expect(faas.stdout).toMatch(/^patient\s+\d+\s+1\/1/m);
    const callers = await run(join(root, 'bin/cdc-callers'), ['list', '--json'], env);
    expect(callers.code, callers.stderr).toBe(0);
    expect(JSON.parse(callers.stdout)).toBeInstanceOf(Array);
    const codes = await run(join(root, 'bin/cdc-codes'), ['domains', '--json'], env);
    expect(codes.code, codes.stderr).toBe(0);
    expect((JSON.parse(codes.stdout) as Array<{ domain: string }>).map((d) => d.domain)).toContain('sex');
    // make deploy finds this runtime and its settings (infra/openfaas/deploy.sh): no secret in the file.
    const upEnv = readFileSync(join(dir, 'up.env'), 'utf8');
    expect(upEnv).toContain(`OPENFAAS_URL='http://127.0.0.1:${env.GATEWAY_PORT}'`);
    expect(upEnv).toContain(`NATIONAL_URL='http://127.0.0.1:${env.NATIONAL_SIM_PORT}'`);
    expect(upEnv).toContain(`HIS_ALLOW='127.0.0.1/8,::1/128'`);
    expect(upEnv).toContain(`DATA_PORT='${env.DATA_PORT}'`);
    expect(upEnv).not.toContain(readFileSync(join(dir, 'secrets', 'basic-auth-password'), 'utf8').trim());
    expect(upEnv).not.toContain('postgresql://');
  });

  it('restarts PostgreSQL after kill -9, logged, and HIS requests are stored again', async () => {
    const pidFile = join(dir, 'pg', 'postmaster.pid');
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    expect(alive(pid)).toBe(true);
    process.kill(pid, 'SIGKILL');
    // Backends of the killed postmaster may still answer for a moment: wait for the restart itself,
    // then for a request served by the new server.
    await waitFor('PostgreSQL to be restarted', () => (/PostgreSQL restarted \(pid \d+\)/.test(up!.out()) ? true : undefined), 90_000, up!.out);
    await waitFor('the HIS request to be stored again', async () => ((await his('UP-2')) === 200 ? true : undefined), 90_000, up!.out);
    expect(up!.out()).toMatch(new RegExp(`PostgreSQL \\(pid ${pid}\\) exited \\(signal SIGKILL\\); restarting in \\d+ ms`));
    expect(up!.out()).toMatch(/PostgreSQL restarted \(pid \d+\)/);
    const now = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    expect(now).not.toBe(pid);
    expect(alive(now)).toBe(true);
  });

  it('restarts the national platform simulator after kill -9', async () => {
    const store = join(dir, 'simulators', 'national.ndjson');
    const [sim] = pidsWith(store);
    expect(sim).toBeDefined();
    process.kill(sim!, 'SIGKILL');
    const again = await waitFor('a new simulator', () => pidsWith(store).find((p) => p !== sim && alive(p)), 60_000, up!.out);
    await waitFor(
      'the simulator to serve',
      async () => ((await fetch(`http://127.0.0.1:${env.NATIONAL_SIM_PORT}/healthz`).catch(() => undefined))?.ok ? true : undefined),
      30_000,
      up!.out,
    );
    expect(up!.out()).toMatch(new RegExp(`national platform simulator \\(pid ${sim}\\) exited \\(signal SIGKILL\\)`));
    expect(alive(again)).toBe(true);
  });

  it('after kill -9 of make up itself, its simulator goes with it; one that could not (frozen) is stopped by the next make up, which starts on the same ports', async () => {
    const store = join(dir, 'simulators', 'national.ndjson');
    // The simulator's stdin is a pipe only make up holds: killed, make up takes the simulator with it.
    const [sim1] = pidsWith(store);
    expect(sim1).toBeDefined();
    remember(up!.child.pid!);
    up!.child.kill('SIGKILL');
    await up!.exited;
    await waitFor('the simulator to exit with make up', () => (alive(sim1!) ? undefined : true), 15_000);
    up = startUp(env);
    await ready(up);
    expect(await his('UP-3')).toBe(200);
    // A simulator that cannot notice (stopped, as a hung one would be) still holds its port: the next
    // make up stops it.
    const [sim2] = pidsWith(store).filter(alive);
    expect(sim2).toBeDefined();
    process.kill(sim2!, 'SIGSTOP');
    remember(up.child.pid!);
    up.child.kill('SIGKILL');
    await up.exited;
    await new Promise((r) => setTimeout(r, 1000));
    expect(alive(sim2!)).toBe(true);

    up = startUp(env);
    await ready(up);
    expect(alive(sim2!)).toBe(false);
    expect(up.out()).toContain(`stopped the national platform simulator (pid ${sim2}) left by an earlier make up`);
    expect(await his('UP-3b')).toBe(200);
    const res = await fetch(`http://127.0.0.1:${env.NATIONAL_SIM_PORT}/healthz`);
    expect(res.status).toBe(200);
    expect(pidsWith(store).filter(alive)).toHaveLength(1);
    expect(existsSync(join(dir, 'run', 'up.pid'))).toBe(true);
  });

  it('after a clean stop, leaves alone a recorded pid that is not its own and clears a stale postmaster.pid', async () => {
    const running = up!;
    remember(running.child.pid!);
    running.child.kill('SIGTERM');
    expect(await running.exited).toBe(0);
    expect(readdirSync(join(dir, 'run'))).toEqual([]);
    // An unrelated process got the simulator's old pid; a postmaster.pid names a server that is gone.
    const stranger = spawn('sleep', ['120'], { stdio: 'ignore' });
    try {
      writeFileSync(join(dir, 'run', 'national-simulator.pid'), `${stranger.pid}\n`);
      writeFileSync(join(dir, 'pg', 'postmaster.pid'), `${stranger.pid! + 100000}\n${join(dir, 'pg')}\n`);
      up = startUp(env);
      await ready(up);
      expect(alive(stranger.pid!)).toBe(true);
      expect(up.out()).not.toContain('stopped the national platform simulator');
      expect(await his('UP-5')).toBe(200);
    } finally {
      stranger.kill('SIGKILL');
    }
  });

  it('refuses to start beside a live make up on the same data dir, and leaves it running', async () => {
    const second = startUp(env);
    expect(await second.exited).toBe(1);
    expect(second.out()).toMatch(/make up is already running on .* \(pid \d+\)/);
    expect(await his('UP-4')).toBe(200);
  });

  it('the restore runbook under make up: restored beside the running front, then make up PG_DATABASE=<restored> serves what the archive holds, and so does every later start', async () => {
    // make backup / make restore as the runbook gives them (docs/backup.md "Restore"): while make up runs,
    // since the embedded store and PostgreSQL live inside it; with make up's variables only, as an operator.
    const backupCli = (...args: string[]) => run(process.execPath, ['--import', 'tsx', join(root, 'infra/backup/cli.ts'), ...args], env, root);
    expect(await his('UP-6')).toBe(200);
    const b = await backupCli('backup', '--kind', 'logical', '--no-check');
    expect(b.code, b.stderr).toBe(0);
    // make up made the backup key (docs/backup.md "Encryption at rest"): the archive is encrypted.
    expect(b.stdout).toMatch(/\.dump\.sm4 \(\d+ bytes/);
    const r = await backupCli('restore', '--target', 'cdcfront_restored');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('/cdcfront_restored');
    // The keys make up made open what the restored database holds (its development key id is its own).
    expect(r.stdout).toMatch(
      /personal-data keys: every key id the restored data uses \(k[0-9a-f]{8}\) opens with .*, and pii-hash-key gives the stored lookup hashes/,
    );
    expect(await his('UP-7')).toBe(200); // after the archive: in the old database only

    const running = up!;
    remember(running.child.pid!);
    running.child.kill('SIGTERM');
    expect(await running.exited).toBe(0);
    up = startUp({ ...env, PG_DATABASE: 'cdcfront_restored' });
    await ready(up);
    expect(readFileSync(join(dir, 'secrets', 'cdc-database-url'), 'utf8')).toMatch(/\/cdcfront_restored\s*$/);
    const trace = (id: string) =>
      fetch(`http://127.0.0.1:${env.DATA_PORT}/hclient/emr/receive/emrPatientInfo/${id}?orgCode=123456789`).then(
        async (res) => (await res.arrayBuffer(), res.status),
      );
    expect(await trace('UP-6')).toBe(200);
    expect(await trace('UP-7')).toBe(404);
    expect(await his('UP-8')).toBe(200);

    // Started again without the variable (a reboot, a shell without it): still the restored database,
    // never silently back on the one as it was.
    const restored = up!;
    remember(restored.child.pid!);
    restored.child.kill('SIGTERM');
    expect(await restored.exited).toBe(0);
    up = startUp(env);
    await ready(up);
    expect(up.out()).toMatch(/database cdcfront_restored \(remembered in /);
    expect(readFileSync(join(dir, 'secrets', 'cdc-database-url'), 'utf8')).toMatch(/\/cdcfront_restored\s*$/);
    expect(await trace('UP-8')).toBe(200);
    expect(await trace('UP-7')).toBe(404);
  });

  it('with TLS=1: a HIS record over HTTPS reaches the national simulator, which takes the uplink keys TLS=1 made', async () => {
    const running = up!;
    remember(running.child.pid!);
    running.child.kill('SIGTERM');
    expect(await running.exited).toBe(0);
    up = startUp({ ...env, TLS: '1' });
    await ready(up);
    expect(up.out()).toContain('TLS on the hospital ports with a development certificate');
    const ca = readFileSync(join(dir, 'secrets', 'uplink-ca'));
    const status = await new Promise<number>((ok, fail) => {
      const req = httpsRequest(
        `https://127.0.0.1:${env.DATA_PORT}/hclient/emr/receive/emrPatientInfo`,
        { method: 'POST', ca, headers: { 'content-type': 'application/json' }, timeout: 10_000 },
        (res) => {
          res.resume();
          res.on('end', () => ok(res.statusCode ?? 0));
        },
      );
      req.on('error', fail);
      req.end(JSON.stringify(patient('UP-TLS-1')));
    });
    expect(status).toBe(200);
    // Signed and sealed with the key files TLS=1 wrote: the simulator opens it (before, it held the
    // well-known development key and answered wrong-recipient to every push).
    const store = join(dir, 'simulators', 'national.ndjson');
    await waitFor(
      'the record at the national simulator',
      () => (existsSync(store) && readFileSync(store, 'utf8').includes('"UP-TLS-1"') ? true : undefined),
      90_000,
      up.out,
    );
  });
  it('with PROVINCIAL_SIM=1: a provincial simulator beside the national one and the provincial destination enabled; a HIS record reaches both', async () => {
    const running = up!;
    remember(running.child.pid!);
    running.child.kill('SIGTERM');
    expect(await running.exited).toBe(0);
    const provincialPort = env.PROVINCIAL_SIM_PORT!;
    up = startUp({ ...env, PROVINCIAL_SIM: '1' });
    await ready(up);
    expect(up.out()).toContain(`provincial platform simulator http://127.0.0.1:${provincialPort}`);
    const res = await fetch(`http://127.0.0.1:${env.DATA_PORT}/hclient/emr/receive/emrPatientInfo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(patient('UP-PROV-1')),
    });
    expect(res.status, await res.text()).toBe(200);
    for (const role of ['national', 'provincial']) {
      const store = join(dir, 'simulators', `${role}.ndjson`);
      await waitFor(
        `the record at the ${role} simulator`,
        () => (existsSync(store) && readFileSync(store, 'utf8').includes('"UP-PROV-1"') ? true : undefined),
        90_000,
        up.out,
      );
    }
  });

  it('with CDC_ENV=production it starts no stand-in: refused before anything starts, naming what to set', async () => {
    const other = mkdtempSync(join(tmpdir(), 'cdc-up-prod-'));
    try {
      const prod = startUp({ ...(await upEnv(other)), CDC_ENV: 'production' });
      expect(await prod.exited).toBe(1);
      expect(prod.out()).toContain('CDC_ENV=production starts no development stand-in: set DATABASE_URL');
      expect(prod.out()).toContain('NATIONAL_URL (the national platform; make up would send every record to its simulator)');
      expect(prod.out()).toContain('BACKUP_S3_ENDPOINT');
      expect(pidsWith(other)).toEqual([]);
      // Nor a provincial simulator.
      const prov = startUp({ ...(await upEnv(other)), CDC_ENV: 'production', PROVINCIAL_SIM: '1' });
      expect(await prov.exited).toBe(1);
      expect(prov.out()).toContain('PROVINCIAL_URL instead of PROVINCIAL_SIM=1');
      expect(existsSync(join(other, 'pg'))).toBe(false);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('with CDC_ENV=production, bundles built from other sources (a pull without make build) are not run', async () => {
    // An installation of its own: this bundle, a stack.yml and a build record of a source that has
    // changed since. Everything production needs is set, so only the record can refuse it.
    const install = mkdtempSync(join(tmpdir(), 'cdc-up-stale-'));
    try {
      mkdirSync(join(install, 'dist/runtime'), { recursive: true });
      copyFileSync(runtimeBundle('up'), join(install, 'dist/runtime/up.mjs'));
      writeFileSync(join(install, 'package.json'), '{"name":"cdc-front"}\n');
      writeFileSync(join(install, 'stack.yml'), readFileSync(join(root, 'stack.yml')));
      writeFileSync(join(install, 'dist/sources.json'), JSON.stringify({ builtAt: '2026-12-01T02:00:00.000Z', files: { 'stack.yml': '0'.repeat(64) } }));
      const child = spawn(process.execPath, [join(install, 'dist/runtime/up.mjs')], {
        cwd: install,
        env: {
          PATH: process.env.PATH ?? '',
          CDC_ENV: 'production',
          CDC_DATA_DIR: join(install, '.data'),
          DATABASE_URL: 'postgres://nobody@127.0.0.1:2/none',
          NATIONAL_URL: 'http://127.0.0.1:2',
          BACKUP_S3_ENDPOINT: 'http://127.0.0.1:2',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise<number | null>((ok) => child.once('exit', (c) => ok(c)));
      expect(code, out).toBe(1);
      expect(out).toContain(`the bundles were built (2026-12-01T02:00:00.000Z) from other sources than the ones in ${install} (changed stack.yml`);
      expect(out).toContain('run make build');
      expect(existsSync(join(install, '.data'))).toBe(false);
    } finally {
      rmSync(install, { recursive: true, force: true });
    }
  });
});
