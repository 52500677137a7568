// A bundle carries every module its imports reach, and runs each one's top level (its zod schemas
// above all) at every start (docs/runtime.md "Bundles"): a function's bundle must not reach the rooms
// it never uses. Checked on the import graph esbuild builds with the build's own options, for the
// bundles of stack.yml.
import { build, type BuildOptions } from 'esbuild';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadStack } from '../../infra/runtime/stack.js';

const root = resolve('.');
const stack = loadStack(join(root, 'stack.yml'), {});
/** The build's own esbuild options (infra/build/build.mjs), so the graph read is the one bundled. */
const build_ = (await import(join(root, 'infra/build/build.mjs'))) as { bundleOptions: (handlerFile: string) => BuildOptions };

/** The project's own modules a function's bundle reaches (paths relative to the project). */
async function modulesOf(fn: string): Promise<string[]> {
  const handler = stack.functions.find((f) => f.name === fn)?.handler;
  if (!handler) throw new Error(`no function ${fn} in stack.yml`);
  const r = await build({
    ...build_.bundleOptions(join(handler, 'handler.ts')),
    write: false,
    metafile: true,
    outfile: join(root, 'bundle-rooms.out.js'),
    logLevel: 'silent',
  });
  return Object.keys(r.metafile.inputs).filter((f) => !f.includes('node_modules'));
}

const RECEIVE = ['patient', 'diagnosis', 'card', 'lab', 'exam', 'order', 'death', 'record'];
/** Rooms no receive function uses: the console, the staging tables, the platform's bundles, day close, backups, the monitor, sign-on, aberrations. */
const NOT_RECEIVE = [
  'shared/console/',
  'shared/dbsync/',
  'shared/configbundle/',
  'shared/dayclose/',
  'shared/backup/',
  'shared/monitor/',
  'shared/sso/',
  'shared/aberration/',
];

describe('bundles carry only the rooms their function uses', () => {
  it.each(RECEIVE)('the %s bundle reaches none of the other rooms', async (fn) => {
    const mods = await modulesOf(fn);
    expect(mods.length).toBeGreaterThan(20); // the graph was read: the receive path itself is there
    expect(mods).toContain('shared/ingest/receiver.ts');
    expect(mods.filter((m) => NOT_RECEIVE.some((room) => m.startsWith(room)))).toEqual([]);
  });

  it.each(stack.functions.map((f) => f.name))("the %s bundle reaches no other function's configuration", async (fn) => {
    const own = RECEIVE.includes(fn) ? 'receive' : fn;
    const configs = (await modulesOf(fn)).filter((m) => m.startsWith('shared/config/functions/'));
    expect(configs).toEqual([`shared/config/functions/${own}.ts`]);
  });
});
