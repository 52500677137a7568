// Bundles every function in stack.yml into one file: functions/<name>/dist/index.js.
// Entry: the Hono template's server (infra/openfaas/template/hono/index.ts) with
// "./function/handler.js" resolved to the function's own handler.ts — as faas-cli lays it out
// (template + handler folder as function/). Each bundle's V8 compile cache is primed beside it
// (docs/runtime.md "Bundles"). Usage: node infra/build/build.mjs [name ...]
import { build, stop } from 'esbuild';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync, existsSync, rmSync } from 'node:fs';
import { resolve, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const entry = join(root, 'infra/openfaas/template/hono/index.ts');

export function stackFunctions(stackFile = join(root, 'stack.yml')) {
  // Handler folders only; variable substitution does not touch handler paths.
  const doc = YAML.parse(readFileSync(stackFile, 'utf8'));
  return Object.entries(doc.functions ?? {}).map(([name, f]) => ({ name, handler: resolve(root, f.handler) }));
}

/**
 * What esbuild is told for a function's bundle, but where it goes: the template's server with the
 * function's handler.ts as "./function/handler.js". test/unit/bundle-rooms.test.ts reads the import
 * graph of these same options.
 */
export function bundleOptions(handlerFile) {
  return {
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'esm',
    legalComments: 'none',
    logLevel: 'warning',
    // pg tries pg-native optionally; it is never installed.
    external: ['pg-native'],
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    plugins: [
      {
        // zod's API re-exports all of its 64 message locales (`z.locales`), and esbuild keeps them
        // all: a quarter of every bundle, read and parsed at every start. The front never selects a
        // locale; zod registers its English one from its own module, which stays. The re-export
        // becomes an empty module (docs/runtime.md "Bundles").
        name: 'zod-without-locales',
        setup(b) {
          b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
            /[\\/]zod[\\/]/.test(args.importer) ? { path: 'zod-locales', namespace: 'empty-module' } : undefined,
          );
          b.onLoad({ filter: /.*/, namespace: 'empty-module' }, () => ({ contents: 'export {};', loader: 'js' }));
        },
      },
      {
        name: 'function-handler',
        setup(b) {
          b.onResolve({ filter: /^\.\/function\/handler(\.js)?$/ }, () => ({ path: handlerFile }));
        },
      },
    ],
  };
}

/**
 * esbuild's service process, which its JavaScript API starts at the first build, is ended once no
 * build has run for STOP_AFTER_MS, whoever builds in this process (the runtime building a missing
 * bundle at a deploy, one after another at `make up`; the tests' fixtures): left running it stayed for
 * the life of the caller, holding what its builds used (121 MiB after `make up` built the seventeen
 * bundles; docs/runtime.md "Bundles"). A later build starts a new one.
 */
const STOP_AFTER_MS = 1000;
let building = 0;
let idleStop;

export async function buildFunction({ name, handler }) {
  const handlerFile = join(handler, 'handler.ts');
  if (!existsSync(handlerFile)) throw new Error(`function ${name}: ${handlerFile} not found`);
  const outdir = join(handler, 'dist');
  mkdirSync(outdir, { recursive: true });
  building++;
  clearTimeout(idleStop);
  try {
    await build({ ...bundleOptions(handlerFile), outfile: join(outdir, 'index.js'), sourcemap: 'linked' });
    writeFileSync(join(outdir, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }, null, 2) + '\n');
    await primeCompileCache(join(outdir, 'index.js'));
  } finally {
    if (--building === 0) {
      idleStop = setTimeout(() => building === 0 && void stop(), STOP_AFTER_MS);
      idleStop.unref();
    }
  }
  return join(outdir, 'index.js');
}

/**
 * Fills the bundle's V8 compile cache (`dist/compile-cache`, which the runtime hands its replicas as
 * NODE_COMPILE_CACHE) by running the bundle's self-test once, as the image build does: a replica
 * then starts from the compiled code instead of compiling 1 MB of script (docs/runtime.md
 * "Bundles"). A bundle whose self-test fails gets no cache — it is still built, and the runtime or
 * the image build reports the failure where it matters.
 */
function primeCompileCache(bundle) {
  const dir = join(dirname(bundle), 'compile-cache');
  rmSync(dir, { recursive: true, force: true });
  return new Promise((done) => {
    const child = spawn(process.execPath, [bundle, '--self-test'], {
      cwd: dirname(bundle),
      env: { PATH: process.env.PATH ?? '', NODE_COMPILE_CACHE: dir },
      stdio: 'ignore',
    });
    child.on('error', () => done());
    child.on('exit', (code) => {
      if (code !== 0) rmSync(dir, { recursive: true, force: true });
      done();
    });
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const only = process.argv.slice(2);
  const fns = stackFunctions().filter((f) => only.length === 0 || only.includes(f.name));
  const t0 = Date.now();
  await Promise.all(fns.map(buildFunction));
  console.log(`built ${fns.length} function bundle(s) in ${Date.now() - t0} ms: ${fns.map((f) => f.name).join(', ')}`);
}
