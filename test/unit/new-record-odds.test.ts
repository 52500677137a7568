// When a wave tries to be written as new records (shared/ingest/new-records.ts, docs/ingest.md "New
// records in one round trip"): every wave while tries hit; after misses in a row, 1, 2, 4 … at most
// 64 waves skip; a hit makes every wave try again; each resource on its own.
import { describe, expect, it } from 'vitest';
import { NewRecordOdds } from '../../shared/ingest/new-records.js';

/** Which of the next n waves try, as a string of 'T' (tries) and '.' (skips), with no outcome told. */
const pattern = (o: NewRecordOdds, resource: string, n: number) => Array.from({ length: n }, () => (o.shouldTry(resource) ? 'T' : '.')).join('');

describe('NewRecordOdds', () => {
  it('tries every wave while tries hit', () => {
    const o = new NewRecordOdds();
    for (let i = 0; i < 100; i++) {
      expect(o.shouldTry('emrExLab')).toBe(true);
      o.saw('emrExLab', true);
    }
  });

  it('skips twice as many waves after each miss in a row, at most 64, and tries every wave after a hit', () => {
    const o = new NewRecordOdds();
    const skips: number[] = [];
    for (let miss = 0; miss < 9; miss++) {
      o.saw('emrExLab', false);
      let n = 0;
      while (!o.shouldTry('emrExLab')) n++;
      skips.push(n);
    }
    expect(skips).toEqual([1, 2, 4, 8, 16, 32, 64, 64, 64]);
    o.saw('emrExLab', true);
    expect(pattern(o, 'emrExLab', 5)).toBe('TTTTT');
    // After a hit the next miss skips one wave again, not 64.
    o.saw('emrExLab', false);
    expect(pattern(o, 'emrExLab', 3)).toBe('.TT');
  });

  it('keeps each resource on its own', () => {
    const o = new NewRecordOdds();
    o.saw('emrPatientInfo', false);
    o.saw('emrPatientInfo', false);
    expect(pattern(o, 'emrPatientInfo', 4)).toBe('..TT');
    expect(pattern(o, 'emrExLab', 4)).toBe('TTTT');
  });
});
