// Calendar days as written (shared/time/day.ts): addDays keeps the years 0001–0099 as they are (not
// 1900–1999), crosses months, leap days and years, and throws naming the day past 9999 or before 0001;
// dayBounds of the last day there is then a clear error, not a failed match.
import { describe, expect, it } from 'vitest';
import { addDays, dayBounds } from '../../shared/time/day.js';

describe('addDays', () => {
  it.each([
    ['2026-12-07', 1, '2026-12-08'],
    ['2026-12-31', 1, '2027-01-01'],
    ['2024-02-28', 1, '2024-02-29'],
    ['2024-03-01', -1, '2024-02-29'],
    ['2026-03-01', -1, '2026-02-28'],
    ['0050-06-15', 1, '0050-06-16'],
    ['1000-01-03', -7, '0999-12-27'],
    ['9999-12-30', 1, '9999-12-31'],
  ])('%s %i → %s', (day, n, out) => {
    expect(addDays(day, n)).toBe(out);
  });

  it('throws naming the day outside the years 0001–9999', () => {
    expect(() => addDays('9999-12-31', 1)).toThrow('not a day: 9999-12-31 + 1 days is outside the years 0001–9999');
    expect(() => addDays('0001-01-01', -1)).toThrow('not a day: 0001-01-01 - 1 days is outside the years 0001–9999');
    expect(() => dayBounds('9999-12-31', 'Asia/Shanghai')).toThrow(/outside the years 0001–9999/);
  });

  it('gives the instants of a local day', () => {
    expect(dayBounds('2026-12-07', 'Asia/Shanghai')).toEqual({ from: new Date('2026-12-06T16:00:00Z'), to: new Date('2026-12-07T16:00:00Z') });
  });
});
