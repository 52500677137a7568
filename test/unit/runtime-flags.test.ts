/**
 * The runtime's own V8 flags (infra/runtime/node-flags.ts) are on the command line of every way an
 * operator starts it: the Makefile's `up` and package.json's `up` script. Node.js reads them only
 * there, so a start that forgets them runs with V8's defaults and nothing says so.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RUNTIME_NODE_FLAGS } from '../../infra/runtime/node-flags.js';

const root = resolve(import.meta.dirname, '../..');

describe("the runtime's node flags", () => {
  it('are some', () => {
    expect(RUNTIME_NODE_FLAGS.length).toBeGreaterThan(0);
  });

  it("are the Makefile's, and its up target gives them to node", () => {
    const make = readFileSync(join(root, 'Makefile'), 'utf8');
    const value = make
      .match(/^RUNTIME_NODE_FLAGS := (.*)$/m)?.[1]
      ?.trim()
      .split(/\s+/);
    expect(value).toEqual([...RUNTIME_NODE_FLAGS]);
    // The recipe builds the runtime's bundle, then runs it.
    const recipe = make
      .match(/^up:.*\n((?:\t.*\n)+)/m)?.[1]
      ?.split('\n')
      .map((l) => l.trim());
    expect(recipe?.[0]).toBe('node infra/build/build.mjs --runtime');
    expect(recipe?.[1]).toBe('node $(RUNTIME_NODE_FLAGS) dist/runtime/up.mjs');
  });

  it("are on package.json's up script", () => {
    const scripts = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    // The runtime's bundle built, then node put in the shell's place (exec), so npm's signals reach it.
    const [build, start] = scripts.up!.split(' && ');
    expect(build).toBe('node infra/build/build.mjs --runtime');
    const words = start!.split(/\s+/);
    expect(words.slice(0, 2)).toEqual(['exec', 'node']);
    expect(words.slice(2, words.indexOf('dist/runtime/main.mjs'))).toEqual([...RUNTIME_NODE_FLAGS]);
  });
});
