import { describe, expect, it } from 'vitest';
import { checkResidentId, idCheckChar } from '../../schemas/idcard.js';
import { residentId } from '../../infra/simulators/his.js';

describe('GB 11643 resident ID numbers', () => {
  it('computes the ISO 7064 MOD 11-2 check character of the standard’s example', () => {
    // GB 11643-1999 appendix example: 11010519491231002X
    expect(idCheckChar('11010519491231002')).toBe('X');
    expect(checkResidentId('11010519491231002X')).toEqual({ ok: true, facts: { birth: { y: 1949, m: 12, d: 31 }, sex: '2' } });
  });
  it('rejects a wrong check character, a bad birth date and a bad format', () => {
    expect(checkResidentId('110105194912310021')).toEqual({ ok: false, problem: 'checksum' });
    const badDate = '1101051949023100' + '2';
    expect(checkResidentId(badDate + idCheckChar(badDate))).toEqual({ ok: false, problem: 'birthdate' });
    expect(checkResidentId('12345')).toEqual({ ok: false, problem: 'format' });
  });
  it('reads 15-digit numbers issued before 1999', () => {
    expect(checkResidentId('110105491231002')).toEqual({ ok: true, facts: { birth: { y: 1949, m: 12, d: 31 }, sex: '2' } });
  });
  it('the generator makes numbers the check accepts, with the sex it was asked for', () => {
    for (let i = 0; i < 200; i++) {
      const sex = i % 2 ? '1' : '2';
      const r = checkResidentId(residentId('440106', { y: 1950 + (i % 60), m: 1 + (i % 12), d: 1 + (i % 28) }, sex, i));
      expect(r).toMatchObject({ ok: true, facts: { sex } });
    }
  });
});
