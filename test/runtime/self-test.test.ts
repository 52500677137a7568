// Every bundle's self-test, exactly as the image build runs it (infra/openfaas/template/hono/Dockerfile:
// `node index.js --self-test` in the function's folder, with an empty environment — no database, no
// settings): an unknown route answers 404 and the process exits 0. A function whose middleware needs
// its settings or the database before routing fails the build of its image on a real OpenFaaS.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadStack } from '../../infra/runtime/stack.js';

const stack = loadStack(resolve('stack.yml'), {});
const names = stack.functions.map((f) => f.name);

describe('the image self-test of every function in stack.yml', () => {
  it('covers the functions', () => {
    expect(names.length).toBeGreaterThanOrEqual(15);
  });

  it.each(names)('%s: 404 for an unknown route, exit 0, with no environment', (name) => {
    const bundle = join(stack.functions.find((f) => f.name === name)!.handler, 'dist', 'index.js');
    expect(existsSync(bundle), bundle).toBe(true);
    const r = spawnSync(process.execPath, ['index.js', '--self-test'], {
      cwd: dirname(bundle),
      env: { PATH: process.env.PATH ?? '' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/"self-test passed","status":404/);
  });

  // The cache infra/build/build.mjs primed beside the bundle, which the runtime hands its replicas
  // (docs/runtime.md "Bundles"): this Node.js takes it for this bundle instead of compiling it.
  it.each(names)('%s: starts from the compile cache primed at build', (name) => {
    const dir = join(stack.functions.find((f) => f.name === name)!.handler, 'dist');
    const r = spawnSync(process.execPath, ['index.js', '--self-test'], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', NODE_COMPILE_CACHE: join(dir, 'compile-cache'), NODE_DEBUG_NATIVE: 'COMPILE_CACHE' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stderr).toMatch(/V8 code cache for ESM file:\/\/\S+\/dist\/index\.js was accepted/);
    expect(r.stderr).not.toMatch(/writing cache/);
  });
});
