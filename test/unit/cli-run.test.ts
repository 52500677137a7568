// The operator commands' runner (infra/cli/run.sh): an older node first on PATH, and no Node.js 24 of
// the project's own, is refused with its version named — never run, where a migration entry under
// Node 20 did nothing and exited 0 (its `import.meta.main` is Node 24's).
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const tree = mkdtempSync(join(tmpdir(), 'cdc-run-'));
afterAll(() => rmSync(tree, { recursive: true, force: true }));

describe('infra/cli/run.sh', () => {
  it('refuses a node older than 24, naming it and what to do', () => {
    mkdirSync(join(tree, 'infra/cli'), { recursive: true });
    copyFileSync(resolve('infra/cli/run.sh'), join(tree, 'infra/cli/run.sh'));
    chmodSync(join(tree, 'infra/cli/run.sh'), 0o755);
    // A node 20 as the only one on PATH, and no .tools/node in the tree.
    mkdirSync(join(tree, 'oldbin'));
    writeFileSync(join(tree, 'oldbin/node'), '#!/bin/sh\ncase "$*" in *versions*) echo 20;; *--version*) echo v20.20.2;; esac\n');
    chmodSync(join(tree, 'oldbin/node'), 0o755);
    const r = spawnSync(join(tree, 'infra/cli/run.sh'), ['infra/db/migrate.ts', '--check'], {
      env: { PATH: `${join(tree, 'oldbin')}:/usr/bin:/bin` },
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('migrate: needs Node.js 24 or later; found v20.20.2');
    expect(r.stderr).toContain("run 'bash infra/dev/node.sh'");
  });
});
