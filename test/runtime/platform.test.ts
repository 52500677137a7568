// A node that cannot run the front (older than 24, or an OpenSSL without SM4-GCM) is refused by the
// bundle, its image self-test and the runtime before anything is served — not discovered as a 500 on
// every record (docs/runtime.md "Node.js and its OpenSSL"). Run with the machine's own node when it is
// such a one (Debian's: node 20 on OpenSSL 3.0); .ci/run's Debian has it, as it installs npm from apt.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runtimeBundle } from '../../infra/root.js';
import { platformProblems, type Platform } from '../../shared/platform/index.js';

const SYSTEM_NODE = ['/usr/bin/node', '/usr/local/bin/node'].find((p) => existsSync(p) && resolve(p) !== process.execPath);

function platformOf(node: string): Platform | null {
  const r = spawnSync(
    node,
    [
      '-p',
      "const c=require('crypto');JSON.stringify({node:process.versions.node,openssl:process.versions.openssl,ciphers:c.getCiphers(),hashes:c.getHashes()})",
    ],
    { encoding: 'utf8' },
  );
  return r.status === 0 ? (JSON.parse(r.stdout) as Platform) : null;
}

function lackingNode(): { node: string; problems: string[] } | undefined {
  if (!SYSTEM_NODE) return undefined;
  const p = platformOf(SYSTEM_NODE);
  const problems = p ? platformProblems(p) : [];
  return problems.length > 0 ? { node: SYSTEM_NODE, problems } : undefined;
}
const lacking = lackingNode();

describe.skipIf(!lacking)(`a node that cannot run the front (${lacking ? `${lacking.node}: ${lacking.problems.join('; ')}` : 'none on this machine'})`, () => {
  const bundleDir = resolve('functions/patient/dist');

  it('a function refuses to start, naming what is missing, and listens on nothing', () => {
    expect(existsSync(join(bundleDir, 'index.js'))).toBe(true);
    const r = spawnSync(lacking!.node, ['index.js'], {
      cwd: bundleDir,
      env: { PATH: process.env.PATH ?? '', http_port: '0' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('"function failed to start"');
    expect(r.stdout).toContain(lacking!.problems[lacking!.problems.length - 1]!);
    expect(r.stdout).not.toContain('"listening"');
  });

  it("the image's self-test fails, so such a base image is never built", () => {
    const r = spawnSync(lacking!.node, ['index.js', '--self-test'], {
      cwd: bundleDir,
      env: { PATH: process.env.PATH ?? '' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('cannot run on this Node.js');
    expect(r.stdout).not.toContain('self-test passed');
  });

  it('the runtime refuses to start before it opens a port', () => {
    const r = spawnSync(lacking!.node, [runtimeBundle('main'), '--stack', 'stack.yml'], {
      env: {
        PATH: process.env.PATH ?? '',
        GATEWAY_PORT: '0',
        CDC_SECRETS_DIR: join('.data', 'platform-test-secrets'),
        CDC_LOGS_DIR: join('.data', 'platform-test-logs'),
      },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('cannot run on this Node.js');
    expect(existsSync(join('.data', 'platform-test-secrets'))).toBe(false);
  });
});
