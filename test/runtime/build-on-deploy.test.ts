/**
 * A function deployed without its bundle is built by the runtime (infra/runtime/registry.ts,
 * build: 'missing'), and esbuild's service process does not outlive the builds by more than a
 * second: it would stay a child of the runtime for good, holding what the builds used
 * (docs/runtime.md "Bundles").
 */
import { cpSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bootStack, type Booted } from '../../infra/runtime/boot.js';
import { fixtureDir } from './helpers.js';

/** Child processes of this process running esbuild's service. */
function esbuildChildren(): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('--service')) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

// A copy of the echo fixture beside it (its imports are relative), without a bundle.
const handler = join(fixtureDir, 'functions', `built-${process.pid}`);
let front: Booted | undefined;

afterAll(async () => {
  await front?.stop();
  rmSync(handler, { recursive: true, force: true });
});

describe('a bundle built at deploy', () => {
  it('is built, answers, and leaves no esbuild process behind', async () => {
    cpSync(join(fixtureDir, 'functions/echo/handler.ts'), join(handler, 'handler.ts'));
    expect(existsSync(join(handler, 'dist/index.js'))).toBe(false);
    front = await bootStack({
      name: 'build-on-deploy',
      frontDefaults: false,
      stackYaml: [
        'version: 1.0',
        'provider:',
        '  name: openfaas',
        'functions:',
        '  built:',
        '    lang: hono',
        `    handler: ${handler}`,
        '    image: fixture/built:test',
        '',
      ].join('\n'),
      runtime: { build: 'missing' },
    });
    expect(existsSync(join(handler, 'dist/index.js'))).toBe(true);
    const res = await fetch(`${front.urls.gateway}/function/built/hello`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { path: string }).path).toBe('/hello');
    // Ended a second after the last build (infra/build/build.mjs).
    let left = esbuildChildren();
    for (let i = 0; i < 50 && left.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      left = esbuildChildren();
    }
    expect(left).toEqual([]);
  }, 60_000);
});
