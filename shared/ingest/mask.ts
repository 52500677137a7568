/**
 * Masking of personal data in answers and screens (names, ID numbers, phones, addresses, birth dates never
 * appear in full outside the record itself; never in logs at all).
 */
import type { Personal } from '../../schemas/fields.js';

export function mask(kind: Personal | undefined, value: unknown): unknown {
  if (kind === undefined || value === null || value === undefined) return value;
  const s = String(value);
  const chars = [...s];
  switch (kind) {
    case 'name':
      return chars.length <= 1 ? '*' : chars[0] + '*'.repeat(Math.min(chars.length - 1, 3));
    case 'idno':
      return chars.length <= 6 ? '*'.repeat(chars.length) : chars.slice(0, 3).join('') + '*'.repeat(chars.length - 5) + chars.slice(-2).join('');
    case 'phone':
      return chars.length <= 4 ? '****' : chars.slice(0, 3).join('') + '****' + chars.slice(-2).join('');
    case 'address':
      return chars.slice(0, 3).join('') + '***';
    case 'birthdate':
      // The year at most (as an ID number's masked form keeps none of it): 1949-**-**.
      return /^\d{4}-/.test(s) ? s.slice(0, 4) + '-**-**' : '*'.repeat(Math.min(chars.length, 10));
    case 'text':
      return '***';
  }
}
