/** Cross-field rules shared by resources; each names the field, the rule and a reason. */
import type { FieldIssue } from '../shared/http/errors.js';
import { birthDayOf, checkResidentId } from './idcard.js';
import { compareTimes, formatLocal, formatSent } from '../shared/time/index.js';
import { localDay as dayIn } from '../shared/time/day.js';
import { TIME_ZONE } from './fields.js';

/** Times may not lie in the future; clocks of HIS servers drift, so allow 5 minutes. */
export const FUTURE_TOLERANCE_MS = 5 * 60_000;

export function notInFuture(fields: string[]) {
  return (rec: Record<string, unknown>, now: Date): FieldIssue[] =>
    fields.flatMap((k) => {
      const v = rec[k];
      return v instanceof Date && v.getTime() > now.getTime() + FUTURE_TOLERANCE_MS
        ? [{ field: k, rule: 'notFuture', message: '时间不能晚于当前时间 (time is in the future)', value: formatLocal(v, TIME_ZONE()) }]
        : [];
    });
}

/** The hospital's calendar day of a time, as a sortable number (yyyymmdd). */
export function localDay(t: Date): number {
  return Number(dayIn(t, TIME_ZONE()).replace(/-/g, ''));
}

/**
 * Each field's time must not be earlier than the one before it (birth ≤ visit ≤ diagnosis ≤ report).
 * `by: 'day'` compares the hospital's calendar days only: for pairs where one side is often sent
 * as a date without a time (onset date vs diagnosis time, 填卡日期 vs 诊断时间), so that a date-only
 * value (midnight) is not "earlier" than a time on the same day.
 */
export function inOrder(fields: string[], o: { by?: 'instant' | 'day' } = {}) {
  // Times compare at the coarser precision of the two (a date-only value means its whole day).
  const earlier = o.by === 'day' ? (a: Date, b: Date) => localDay(a) < localDay(b) : (a: Date, b: Date) => compareTimes(a, b, TIME_ZONE()) < 0;
  return (rec: Record<string, unknown>): FieldIssue[] => {
    const out: FieldIssue[] = [];
    let prev: { k: string; t: Date } | undefined;
    for (const k of fields) {
      const t = rec[k];
      if (!(t instanceof Date)) continue;
      if (prev && earlier(t, prev.t)) {
        out.push({ field: k, rule: 'timeOrder', message: `不能早于 ${prev.k} (must not be earlier than ${prev.k})`, value: formatSent(t, TIME_ZONE()) });
      }
      prev = { k, t };
    }
    return out;
  };
}

/** Resident ID numbers (ID type 01, CV02.01.101): GB 11643 check digit, birth date and sex consistent. */
export function residentId(o: { typeField: string; idField: string; birthField?: string; sexField?: string }) {
  return (rec: Record<string, unknown>): FieldIssue[] => {
    const id = rec[o.idField];
    if (typeof id !== 'string' || rec[o.typeField] !== '01') return [];
    const r = checkResidentId(id);
    if (!r.ok) {
      const message = {
        format: '居民身份证号应为18位（或旧版15位）数字 (must be 18 digits, last may be X)',
        checksum: '居民身份证号校验位错误 (GB 11643 check digit is wrong)',
        birthdate: '居民身份证号中的出生日期无效 (birth date in the number is not a date)',
      }[r.problem];
      return [{ field: o.idField, rule: r.problem === 'checksum' ? 'checksum' : 'idFormat', message, value: id }];
    }
    const out: FieldIssue[] = [];
    const birth = o.birthField ? rec[o.birthField] : undefined;
    if (birth instanceof Date) {
      const local = dayIn(birth, TIME_ZONE());
      const fromId = birthDayOf(r.facts);
      if (local !== fromId) {
        // The message never quotes the date (personal data; the value is masked by validate.ts).
        out.push({ field: o.birthField!, rule: 'idConsistency', message: '出生日期与身份证号不一致 (birth date disagrees with the ID number)', value: local });
      }
    }
    const sex = o.sexField ? rec[o.sexField] : undefined;
    if ((sex === '1' || sex === '2') && sex !== r.facts.sex) {
      out.push({ field: o.sexField!, rule: 'idConsistency', message: '性别与身份证号不一致 (sex disagrees with the ID number)', value: sex });
    }
    return out;
  };
}
