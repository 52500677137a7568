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
    const recipe = make.match(/^up:.*\n\t(.*)$/m)?.[1];
    expect(recipe).toMatch(/^node \$\(RUNTIME_NODE_FLAGS\) --import tsx infra\/dev\/up\.ts$/);
  });

  it("are on package.json's up script", () => {
    const scripts = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    const words = scripts.up!.split(/\s+/);
    expect(words[0]).toBe('node');
    for (const flag of RUNTIME_NODE_FLAGS) expect(words.slice(0, words.indexOf('infra/runtime/main.ts'))).toContain(flag);
  });
});
