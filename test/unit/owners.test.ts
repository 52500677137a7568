// One owner per state (docs/ingest.md "Who writes what"): outbox rows are written only by
// shared/outbox, hold rows only by shared/holds. Every other module of the product calls them.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (name === 'node_modules' || name === 'dist') continue;
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

const product = [...sources(join(root, 'shared')), ...sources(join(root, 'functions'))];

function writers(table: string): string[] {
  const write = new RegExp(`\\b(?:INSERT\\s+INTO|UPDATE|DELETE\\s+FROM|MERGE\\s+INTO)\\s+${table}\\b`, 'i');
  return product.filter((f) => write.test(readFileSync(f, 'utf8'))).map((f) => relative(root, f));
}

describe('one owner per state', () => {
  it('only shared/outbox writes the outbox', () => {
    expect(writers('outbox')).toEqual(['shared/outbox/index.ts']);
  });

  it('only shared/holds writes record_hold', () => {
    expect(writers('record_hold')).toEqual(['shared/holds/index.ts']);
  });

  it('the outbox module names its states by the typed enum, never by a bare string in a write', () => {
    const src = readFileSync(join(root, 'shared/outbox/index.ts'), 'utf8');
    expect(src).not.toMatch(/SET state = '/);
    expect(src).not.toMatch(/AND state = '/);
  });
});
