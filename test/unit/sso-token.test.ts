// The single sign-on token (shared/sso/token.ts; docs/card-form.md): what a HIS signs, what the front
// accepts, and each way a token is refused — with the reason a HIS vendor can act on.
import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../shared/http/errors.js';
import { signToken, verifyToken, type SsoClaims } from '../../shared/sso/token.js';

const key = Buffer.from('k'.repeat(40));
const now = new Date('2026-12-03T08:00:00Z');
const t = Math.floor(now.getTime() / 1000);
const claims = (over: Partial<SsoClaims> = {}): SsoClaims => ({
  org: '123456789',
  doctor: 'D042',
  patient: 'P0001',
  iat: t - 5,
  exp: t + 115,
  nonce: 'n'.repeat(16),
  ...over,
});
const refused = (token: string, maxAgeS = 300): string => {
  try {
    verifyToken(token, key, now, { maxAgeS });
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).status).toBe(401);
    return (err as AppError).desc;
  }
  throw new Error('accepted');
};

describe('the single sign-on token', () => {
  it('round-trips the claims, and is exactly v1.<base64url JSON>.<base64url HMAC-SHA256 of "v1.<payload>">', () => {
    const c = claims({ doctorName: '王医生', dept: 'A16', case: '42' });
    const token = signToken(c, key);
    expect(verifyToken(token, key, now, { maxAgeS: 300 })).toEqual(c);
    // Built by hand as a HIS vendor would, from the guide's description.
    const payload = Buffer.from(JSON.stringify(c)).toString('base64url');
    const sig = createHmac('sha256', key).update(`v1.${payload}`).digest('base64url');
    expect(token).toBe(`v1.${payload}.${sig}`);
  });

  it('refuses another key, a changed payload, a malformed token', () => {
    expect(refused(signToken(claims(), randomBytes(32)))).toContain('签名不符');
    const [v, , s] = signToken(claims(), key).split('.');
    const other = Buffer.from(JSON.stringify(claims({ patient: 'P0002' }))).toString('base64url');
    expect(refused(`${v}.${other}.${s}`)).toContain('签名不符');
    expect(refused('abc')).toContain('格式');
    expect(refused('v2.a.b')).toContain('格式');
    // The right signature with characters base64url decoding would skip, or in standard base64.
    const good = signToken(claims(), key);
    expect(refused(`${good}!!!`)).toContain('签名不符');
    expect(refused(`${good}==`)).toContain('签名不符');
    // The padded form Java's Base64.getUrlEncoder() writes by default is the same signature.
    expect(verifyToken(`${good}=`, key, now, { maxAgeS: 300 })).toEqual(claims());
    // A character of standard base64 where base64url has another.
    const [, p, sig] = good.split('.');
    expect(refused(`v1.${p}.+${sig!.slice(1)}`)).toContain('签名不符');
  });

  it('refuses expired, too long-lived and future tokens, allowing 30 s of clock difference', () => {
    expect(refused(signToken(claims({ iat: t - 200, exp: t - 31 }), key))).toContain('已过期');
    expect(verifyToken(signToken(claims({ iat: t - 200, exp: t - 29 }), key), key, now, { maxAgeS: 300 }).patient).toBe('P0001');
    expect(refused(signToken(claims({ iat: t, exp: t + 3600 }), key))).toContain('有效期超过 300 秒');
    expect(refused(signToken(claims({ iat: t + 60, exp: t + 120 }), key))).toContain('签发时间在将来');
    expect(refused(signToken(claims({ iat: t, exp: t }), key))).toContain('exp 应晚于 iat');
  });

  it('names each missing or malformed claim', () => {
    const bad = { ...claims(), patient: undefined, nonce: 'short' } as unknown as SsoClaims;
    const desc = refused(signToken(bad, key));
    expect(desc).toContain('patient');
    expect(desc).toContain('nonce');
  });
});
