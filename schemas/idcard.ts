/**
 * The resident identity number of GB 11643-1999: 17 digits + a check character (ISO 7064 MOD 11-2),
 * digits 7–14 the birth date (yyyymmdd), the 17th digit odd for male, even for female.
 * 15-digit numbers (issued before 1999) carry yymmdd and no check character.
 */
const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK = '10X98765432';

export function idCheckChar(first17: string): string {
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(first17[i]) * WEIGHTS[i]!;
  return CHECK[sum % 11]!;
}

export interface IdFacts {
  birth: { y: number; m: number; d: number };
  /** GB/T 2261.1: 1 male, 2 female. */
  sex: '1' | '2';
}

/** The birth date an ID number carries, as a calendar day "yyyy-MM-dd". */
export const birthDayOf = (facts: IdFacts): string => `${facts.birth.y}-${String(facts.birth.m).padStart(2, '0')}-${String(facts.birth.d).padStart(2, '0')}`;

export type IdProblem = 'format' | 'checksum' | 'birthdate';

export function checkResidentId(id: string): { ok: true; facts: IdFacts } | { ok: false; problem: IdProblem } {
  const v = id.trim().toUpperCase();
  let y: number, m: number, d: number, seq: number;
  if (/^\d{17}[\dX]$/.test(v)) {
    if (idCheckChar(v.slice(0, 17)) !== v[17]) return { ok: false, problem: 'checksum' };
    y = +v.slice(6, 10);
    m = +v.slice(10, 12);
    d = +v.slice(12, 14);
    seq = +v[16]!;
  } else if (/^\d{15}$/.test(v)) {
    y = 1900 + +v.slice(6, 8);
    m = +v.slice(8, 10);
    d = +v.slice(10, 12);
    seq = +v[14]!;
  } else return { ok: false, problem: 'format' };
  const dt = new Date(Date.UTC(y, m - 1, d));
  if (y < 1880 || dt.getUTCMonth() !== m - 1 || dt.getUTCDate() !== d) return { ok: false, problem: 'birthdate' };
  return { ok: true, facts: { birth: { y, m, d }, sex: seq % 2 === 1 ? '1' : '2' } };
}
