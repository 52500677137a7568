// `make deploy` (infra/openfaas/deploy.sh) with a stand-in faas-cli on PATH that records how it was
// called: against make up's runtime (its gateway recorded in up.env) it logs in with the gateway's
// secret files and runs `faas-cli deploy` with make up's settings exported — the development callers
// and the platform simulator, never the live platform; against any other gateway it runs
// `faas-cli up` with nothing of up.env. And faas-cli finds the template: ./template is a committed
// link to infra/openfaas/template, so a fresh clone has template/hono without `make deploy`.
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const root = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'cdc-deploy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

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
    const r = deploy({ BIN: bin, CDC_DATA_DIR: data, OPENFAAS_URL: 'http://10.0.0.8:8080' });
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(calls, 'utf8').trim().split('\n')).toEqual([
      'ARGS up -f stack.yml --gateway http://10.0.0.8:8080 | STDIN  | HIS_ALLOW= NATIONAL_URL= DATA_PORT=',
    ]);
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
