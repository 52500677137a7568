// Bundles every function in stack.yml into one file: functions/<name>/dist/index.js.
// Entry: the Hono template's server (infra/openfaas/template/hono/index.ts) with
// "./function/handler.js" resolved to the function's own handler.ts — as faas-cli lays it out
// (template + handler folder as function/). Each bundle's V8 compile cache is primed beside it
// (docs/runtime.md "Bundles"). The runtime itself is bundled too: dist/runtime/up.mjs (`make up`,
// the systemd unit) and dist/runtime/main.mjs (`npm run up`).
// Usage: node infra/build/build.mjs [--runtime] [name ...] (no argument: the runtime and every function)
import { build, stop } from 'esbuild';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync, mkdirSync, existsSync, rmSync } from 'node:fs';
import { resolve, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { projectRoot as root, RUNTIME_ENTRIES, runtimeDir } from '../root.ts';
import { writeBuildRecord } from './sources.ts';

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
  const common = commonOptions();
  return {
    ...common,
    entryPoints: [entry],
    plugins: [
      ...common.plugins,
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
 * The release a build is: package.json's version and the git commit built from ("0.1.0+98ae65f1c2d3",
 * "+…-modified" when tracked files differ from it), so that /status and the start log tell two releases
 * apart (docs/deploy.md "Upgrade"). Without git (a source archive): the version alone.
 */
export function releaseName() {
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  try {
    const git = (...args) => execFileSync('git', ['-C', root, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const commit = git('rev-parse', '--short=12', 'HEAD');
    const modified = git('status', '--porcelain', '--untracked-files=no') !== '';
    return `${version}+${commit}${modified ? '-modified' : ''}`;
  } catch {
    return version;
  }
}

/**
 * Baked into every bundle (shared/db/schema.ts, shared/status/version.ts): the migrations of infra/db
 * the bundle was built with, and its release.
 */
function buildDefines() {
  const migrations = readdirSync(join(root, 'infra/db'))
    // MIGRATION_FILE of shared/db/schema.ts (this script runs without a TypeScript loader)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort();
  return { __CDC_MIGRATIONS__: JSON.stringify(migrations), __CDC_RELEASE__: JSON.stringify(releaseName()) };
}

/** What every bundle of the project is built with: the functions' and the runtime's. */
function commonOptions() {
  return {
    define: buildDefines(),
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
    ],
  };
}

/**
 * The runtime's bundles: its entries with everything they import, so that it starts without
 * TypeScript and without tsx's esbuild service beside it (docs/runtime.md "The runtime's own
 * bundle"). Left out besides pg-native: esbuild (the build script is imported at run time, only to
 * build a missing function bundle) and s3rver (make up's stand-in for MinIO, a development
 * dependency imported when it starts). Inside a bundle every module's `import.meta.main` would be the
 * entry's, true: the modules that are also commands (the migration runner, the certificates) check
 * it before running as one, so it is defined false there. Its entries and folder: infra/root.ts.
 * programOptions are the options of any such program of the project that runs on node outside a
 * replica: the runtime, the bench's runtime child.
 */
function programOptions() {
  const common = commonOptions();
  return { ...common, external: [...common.external, 'esbuild', 's3rver'], define: { ...common.define, 'import.meta.main': 'false' }, sourcemap: 'linked' };
}

export function runtimeOptions() {
  return {
    ...programOptions(),
    entryPoints: Object.fromEntries(Object.entries(RUNTIME_ENTRIES).map(([name, file]) => [name, join(root, file)])),
    outdir: runtimeDir,
    outExtension: { '.js': '.mjs' },
  };
}

export async function buildRuntime() {
  mkdirSync(runtimeDir, { recursive: true });
  await withService(() => build(runtimeOptions()));
  return Object.keys(RUNTIME_ENTRIES).map((name) => join(runtimeDir, `${name}.mjs`));
}

/** One entry bundled as the runtime is (the bench's runtime child, bench/runtime-child.ts). */
export async function buildNodeProgram(entryFile, outfile) {
  mkdirSync(dirname(outfile), { recursive: true });
  await withService(() => build({ ...programOptions(), entryPoints: [entryFile], outfile }));
  return outfile;
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
  await withService(async () => {
    await build({ ...bundleOptions(handlerFile), outfile: join(outdir, 'index.js'), sourcemap: 'linked' });
    writeFileSync(join(outdir, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }, null, 2) + '\n');
    await primeCompileCache(join(outdir, 'index.js'));
  });
  return join(outdir, 'index.js');
}

/** Runs one build with esbuild's service counted as in use; it is ended once none has run for STOP_AFTER_MS. */
async function withService(work) {
  building++;
  clearTimeout(idleStop);
  try {
    return await work();
  } finally {
    if (--building === 0) {
      idleStop = setTimeout(() => building === 0 && void stop(), STOP_AFTER_MS);
      idleStop.unref();
    }
  }
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
  // No argument: the runtime and every function; `--runtime`, names: the runtime, those functions.
  const args = process.argv.slice(2);
  const only = args.filter((a) => a !== '--runtime');
  const t0 = Date.now();
  if (args.length === 0 || args.includes('--runtime')) {
    const files = await buildRuntime();
    console.log(`built the runtime in ${Date.now() - t0} ms: ${files.map((f) => f.slice(root.length + 1)).join(', ')}`);
  }
  if (args.length === 0 || only.length > 0) {
    const fns = stackFunctions().filter((f) => only.length === 0 || only.includes(f.name));
    const t1 = Date.now();
    await Promise.all(fns.map(buildFunction));
    console.log(`built ${fns.length} function bundle(s) in ${Date.now() - t1} ms: ${fns.map((f) => f.name).join(', ')}`);
    // The runtime and every function built from the files as they are: what a production start checks.
    if ((args.length === 0 || args.includes('--runtime')) && fns.length === stackFunctions().length) writeBuildRecord(root);
  }
}
