import { describe, expect, it } from 'vitest';
import { formatLocal, fromLocalParts, parseTime, precisionOf, zoneOffsetMinutes } from '../../shared/time/index.js';

const iso = (d: Date | null) => d?.toISOString() ?? null;

describe('parseTime: the forms senders use', () => {
  it('reads the notice form as Asia/Shanghai wall-clock time', () => {
    expect(iso(parseTime('2026-03-01 08:30:00'))).toBe('2026-03-01T00:30:00.000Z');
    expect(iso(parseTime('2026-03-01'))).toBe('2026-02-28T16:00:00.000Z');
    expect(iso(parseTime('2026-3-1 8:30'))).toBe('2026-03-01T00:30:00.000Z');
  });
  it('keeps the zone an ISO 8601 value states', () => {
    expect(iso(parseTime('2026-03-01T08:30:00Z'))).toBe('2026-03-01T08:30:00.000Z');
    expect(iso(parseTime('2026-03-01T08:30:00+08:00'))).toBe('2026-03-01T00:30:00.000Z');
    expect(iso(parseTime('2026-03-01T08:30:00.123+0800'))).toBe('2026-03-01T00:30:00.123Z');
  });
  it('reads Java LocalDateTime, epoch milliseconds, slashes and compact digits', () => {
    expect(iso(parseTime('2026-03-01T08:30:00.5'))).toBe('2026-03-01T00:30:00.500Z');
    expect(iso(parseTime(1772325000000))).toBe('2026-03-01T00:30:00.000Z');
    expect(iso(parseTime('1772325000000'))).toBe('2026-03-01T00:30:00.000Z');
    expect(iso(parseTime('2026/03/01 08:30:00'))).toBe('2026-03-01T00:30:00.000Z');
    expect(iso(parseTime('20260301083000'))).toBe('2026-03-01T00:30:00.000Z');
  });
  it('reads a compact date or time sent as a number as its digits (a NUMBER(8) birth date), not as epoch seconds', () => {
    expect(iso(parseTime(19800101))).toBe(iso(parseTime('19800101')));
    expect(iso(parseTime(19800101))).toBe('1979-12-31T16:00:00.000Z');
    expect(precisionOf(parseTime(19800101)!)).toBe('day');
    expect(iso(parseTime(20260301083000))).toBe('2026-03-01T00:30:00.000Z');
    // Eight digits that are no date are refused, not taken for a time in 1970.
    expect(parseTime(12345678)).toBeNull();
    expect(parseTime(20261301)).toBeNull();
    // Epoch seconds (ten digits) as before.
    expect(iso(parseTime(1772325000))).toBe('2026-03-01T00:30:00.000Z');
  });
  it('reads epoch milliseconds before 1973 as milliseconds: a Java birth date of 1960 or 1972 (negative, eleven digits)', () => {
    // 1960-01-01 and 1972-06-01 00:00 in Beijing, as Jackson writes a java.util.Date.
    expect(iso(parseTime(-315648000000))).toBe('1959-12-31T16:00:00.000Z');
    expect(iso(parseTime('-315648000000'))).toBe('1959-12-31T16:00:00.000Z');
    expect(iso(parseTime(76176000000))).toBe('1972-05-31T16:00:00.000Z');
    expect(iso(parseTime(-2208988800000))).toBe('1900-01-01T00:00:00.000Z');
  });
  it('reads java.time values as Jackson writes them with its default WRITE_DATES_AS_TIMESTAMPS (arrays)', () => {
    // A LocalDate: [y, M, d], that day.
    expect(iso(parseTime([1980, 1, 1]))).toBe('1979-12-31T16:00:00.000Z');
    expect(precisionOf(parseTime([1980, 1, 1])!)).toBe('day');
    // A LocalDateTime: seconds, then nanoseconds, appended only when not zero; the time is exact.
    expect(iso(parseTime([2026, 3, 1, 8, 30]))).toBe('2026-03-01T00:30:00.000Z');
    expect(precisionOf(parseTime([2026, 3, 1, 8, 30])!)).toBe('second');
    expect(iso(parseTime([2026, 3, 1, 8, 30, 15]))).toBe('2026-03-01T00:30:15.000Z');
    expect(iso(parseTime([2026, 3, 1, 8, 30, 15, 500_000_000]))).toBe('2026-03-01T00:30:15.500Z');
    // Not a java.time array: wrong length, not integers, no such day or time, implausible year.
    for (const v of [
      [],
      [2026],
      [2026, 3],
      [2026, 3, 1, 8],
      [2026, 3, 1, 8, 30, 15, 1, 2],
      [2026, '3', 1],
      [2026, 3, 1.5],
      [2026, 2, 30],
      [2026, 3, 1, 24, 0],
      [2026, 3, 1, 8, 30, 0, 1e9],
      [2026, 3, -1],
      [1849, 12, 30],
    ])
      expect(parseTime(v), JSON.stringify(v)).toBeNull();
  });
  it('honours China’s historic daylight saving time (1986–1991)', () => {
    expect(iso(parseTime('1988-07-01 12:00:00'))).toBe('1988-07-01T03:00:00.000Z');
  });
  it('refuses a missing date sent as a number (0, -1, 1, within a second of the epoch) and fractions of a millisecond', () => {
    for (const v of [0, -1, 1, 999, -999, 1.5, -0.5, 1772325000000.5, '0', '-1']) expect(parseTime(v), String(v)).toBeNull();
    // A real instant near the epoch (1970-01-01 in Beijing, milliseconds), fractional epoch seconds.
    expect(iso(parseTime(-28800000))).toBe('1969-12-31T16:00:00.000Z');
    expect(iso(parseTime(1772325000.25))).toBe('2026-03-01T00:30:00.250Z');
  });
  it('refuses what is not a time', () => {
    for (const v of ['yesterday', '2026-02-30', '2026-13-01', '', '12:00', true, {}, '2026-03-01 25:00:00']) expect(parseTime(v)).toBeNull();
  });
  it('refuses implausible years (typing errors, not history)', () => {
    for (const v of ['0001-01-01 00:00:00', '1849-12-30', '2200-01-02', 253402300800000, -62198755200000]) expect(parseTime(v), String(v)).toBeNull();
    expect(parseTime('1850-01-02')).not.toBeNull();
  });
  it('is exact on a day the zone changes its offset (the offset cache must not smear it)', () => {
    // America/Los_Angeles switched to daylight time at 2026-03-08 02:00 local.
    expect(fromLocalParts('America/Los_Angeles', 2026, 3, 8, 1, 30)!.toISOString()).toBe('2026-03-08T09:30:00.000Z');
    expect(fromLocalParts('America/Los_Angeles', 2026, 3, 8, 3, 30)!.toISOString()).toBe('2026-03-08T10:30:00.000Z');
    expect(zoneOffsetMinutes('America/Los_Angeles', new Date('2026-03-08T09:59:59Z'))).toBe(-480);
    expect(zoneOffsetMinutes('America/Los_Angeles', new Date('2026-03-08T10:00:00Z'))).toBe(-420);
    // China's daylight time began 1988-04-17 02:00 local (tzdata).
    expect(zoneOffsetMinutes('Asia/Shanghai', new Date('1988-04-16T17:59:59Z'))).toBe(480);
    expect(zoneOffsetMinutes('Asia/Shanghai', new Date('1988-04-16T18:00:00Z'))).toBe(540);
  });
  it('formats back to local wall-clock time', () => {
    expect(formatLocal(new Date('2026-03-01T00:30:00Z'))).toBe('2026-03-01 08:30:00');
  });
});
