/**
 * The project's folder, found from wherever this module's code runs: from its source (infra/) under
 * tsx and in the tests, or from the runtime's bundle (dist/runtime/, docs/runtime.md "The runtime's own bundle").
 * A module's own folder is not enough once it is bundled: every module of a bundle shares the
 * bundle's `import.meta.url`. The folder is the nearest one above that holds both package.json and
 * stack.yml; the migrations, the function handlers and the build script are found from it.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

export function findProjectRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'stack.yml'))) return dir;
    if (dirname(dir) === dir) throw new Error(`cdc-front: no folder above ${from} holds package.json and stack.yml (the project's folder)`);
  }
}

export const projectRoot = findProjectRoot(import.meta.dirname);

/**
 * The runtime's bundles, which infra/build/build.mjs writes into `runtimeDir`: `up` is make up's and
 * the systemd unit's entry, `main` npm run up's.
 */
export const RUNTIME_ENTRIES = { up: 'infra/dev/up.ts', main: 'infra/runtime/main.ts' } as const;
export const runtimeDir = join(projectRoot, 'dist/runtime');

export function runtimeBundle(entry: keyof typeof RUNTIME_ENTRIES): string {
  return join(runtimeDir, `${entry}.mjs`);
}
