// Times keep the precision they were sent with (docs/data-set.md "Times"): a date means its day, a
// time without seconds its minute; comparisons use the coarser precision of the two; a date is
// stored and forwarded as a date.
import { describe, expect, it } from 'vitest';
import { compareTimes, formatSent, parseTime, precisionOf } from '../../shared/time/index.js';
import { resources } from '../../schemas/index.js';
import { validateRecord } from '../../shared/ingest/validate.js';
import { canonical } from '../../shared/ingest/index.js';

const t = (v: unknown) => parseTime(v)!;

describe('precision', () => {
  it.each([
    ['2025-03-10', 'day'],
    ['20250310', 'day'],
    ['2025/3/10', 'day'],
    ['2025-03-10 08:30', 'minute'],
    ['2025-03-10 08:30:15', 'second'],
    ['2025-03-10T08:30:15.123', 'second'],
    [1741566615123, 'second'],
    ['2025-03-10T08:30:15+08:00', 'second'],
  ] as const)('%s → %s', (v, p) => {
    expect(precisionOf(t(v))).toBe(p);
  });

  it('compares at the coarser precision of the two', () => {
    expect(compareTimes(t('2025-03-10'), t('2025-03-10 23:59:59'))).toBe(0);
    expect(compareTimes(t('2025-03-10 09:00:00'), t('2025-03-10'))).toBe(0);
    expect(compareTimes(t('2025-03-09'), t('2025-03-10 00:00:01'))).toBeLessThan(0);
    expect(compareTimes(t('2025-03-10 08:30'), t('2025-03-10 08:30:45'))).toBe(0);
    expect(compareTimes(t('2025-03-10 08:29:59'), t('2025-03-10 08:30'))).toBeLessThan(0);
    // Epoch milliseconds and the same second without them.
    const ms = t('2025-03-10 08:00:00').getTime() + 500;
    expect(compareTimes(t(ms), t('2025-03-10 08:00:00'))).toBe(0);
  });

  it('a date is sent on as a date; other times in the notice’s form', () => {
    expect(formatSent(t('1949-12-31'))).toBe('1949-12-31');
    expect(formatSent(t('2025-03-10 08:30'))).toBe('2025-03-10 08:30:00');
    expect(formatSent(t(t('2025-03-10 08:00:00').getTime() + 500))).toBe('2025-03-10 08:00:00');
  });
});

describe('in the pipeline', () => {
  const lab = resources.emrExLab!;
  const base = { id: 'L1', orgCode: '123456789', patientId: 'P1', examinationReportDate: '2025-03-10 10:00:00' };
  it('a date-only receiving date of the sampling day is not "before" the sampling time', () => {
    const v = validateRecord(
      lab,
      { ...base, specimenSamplingDate: '2025-03-10 09:00:00', specimenReceivingDate: '2025-03-10' },
      new Date('2025-04-01T00:00:00Z'),
    );
    expect(v.ok, JSON.stringify(v.ok ? [] : v.issues)).toBe(true);
    const before = validateRecord(
      lab,
      { ...base, specimenSamplingDate: '2025-03-10 09:00:00', specimenReceivingDate: '2025-03-09' },
      new Date('2025-04-01T00:00:00Z'),
    );
    expect(before.ok ? [] : before.issues.map((i) => `${i.field}/${i.rule}`)).toEqual(['specimenReceivingDate/timeOrder']);
  });

  it('epoch milliseconds and the same second sent as text are in order', () => {
    const sampled = new Date('2025-03-10T00:00:00.600Z').getTime(); // 08:00:00.600 in Shanghai
    const v = validateRecord(lab, { ...base, specimenSamplingDate: sampled, specimenReceivingDate: '2025-03-10 08:00:00' }, new Date('2025-04-01T00:00:00Z'));
    expect(v.ok, JSON.stringify(v.ok ? [] : v.issues)).toBe(true);
  });

  it('today’s date is not in the future; the canonical record keeps the date', () => {
    const p = resources.emrPatientInfo!;
    const today = new Date().toISOString().slice(0, 10);
    const v = validateRecord(
      p,
      { id: 'P1', orgCode: '123456789', patientName: '张三', genderCode: '1', birthDate: '1949-12-31', operationTime: today },
      new Date(),
    );
    expect(v.ok, JSON.stringify(v.ok ? [] : v.issues)).toBe(true);
    if (!v.ok) return;
    expect(canonical(v.record)).toMatchObject({ birthDate: '1949-12-31', operationTime: today });
  });
});
