/**
 * "Not in the future" (schemas/rules.ts) allows the 5 minutes a HIS clock may run ahead
 * (FUTURE_TOLERANCE_MS). A date-only value is the start of its day, so minutes before the hospital's
 * midnight tomorrow's date falls within that allowance: a check of a future date must use one
 * further ahead (the card form's browser test does).
 */
import { describe, expect, it } from 'vitest';
import { fromLocalParts } from '../../shared/time/index.js';
import { FUTURE_TOLERANCE_MS, notInFuture } from '../../schemas/rules.js';

const rule = notInFuture(['onsetDate']);
const at = (d: number, h: number, mi: number) => fromLocalParts('Asia/Shanghai', 2026, 12, d, h, mi)!;

describe('notInFuture near the hospital midnight', () => {
  it('refuses tomorrow at midday, and the day after tomorrow at any hour', () => {
    expect(rule({ onsetDate: at(6, 0, 0) }, at(5, 12, 0)).map((i) => i.rule)).toEqual(['notFuture']);
    expect(rule({ onsetDate: at(7, 0, 0) }, at(5, 23, 59)).map((i) => i.rule)).toEqual(['notFuture']);
  });

  it("takes tomorrow's date within the clock allowance before midnight", () => {
    expect(FUTURE_TOLERANCE_MS).toBe(5 * 60_000);
    expect(rule({ onsetDate: at(6, 0, 0) }, at(5, 23, 56))).toEqual([]);
    expect(rule({ onsetDate: at(6, 0, 0) }, at(5, 23, 54)).map((i) => i.rule)).toEqual(['notFuture']);
  });
});
