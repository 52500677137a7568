// The national code lists bundled with the functions are exactly what the CSVs in schemas/codes/ say.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generate, LISTS_FILE, parseCsv } from '../../schemas/codes/generate.js';
import { lists } from '../../schemas/codes/lists.js';

describe('schemas/codes/lists.ts', () => {
  it('is what `npx tsx schemas/codes/generate.ts` generates from the CSVs (no drift)', () => {
    expect(readFileSync(LISTS_FILE, 'utf8')).toBe(generate());
  });

  it('holds every code of the CSVs, e.g. sex (GB/T 2261.1) and the NNDRS disease codes in 4-digit form', () => {
    expect(lists.sex.codes.map((c) => c.code)).toEqual(['0', '1', '2', '5', '6', '9']);
    expect(lists.ethnicity.codes).toHaveLength(58);
    expect(lists.nndrsDisease.codes.find((c) => c.code === '0302')?.name).toBe('乙肝');
  });

  it('parses quoted CSV fields with commas and doubled quotes', () => {
    expect(parseCsv('a,b\n1,"x, ""y"""\r\n')).toEqual([
      ['a', 'b'],
      ['1', 'x, "y"'],
    ]);
  });
});
