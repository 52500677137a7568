// The single sign-on token (shared/sso/token.ts; docs/card-form.md): what a HIS signs, what the front
// accepts, and each way a token is refused — with the reason a HIS vendor can act on.
import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../shared/http/errors.js';
import { signToken, verifyToken, type SsoClaims } from '../../shared/sso/token.js';
import { ssoConcern, ssoKeys } from '../../shared/sso/session.js';

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

describe('the key file, one key for every org or one per org', () => {
  const shared = 's'.repeat(40);
  const own = 'b'.repeat(44);
  const file = `# the front of a region\n${shared}\n\n222222222 ${own}\n`;
  const settings = (text: string) =>
    ssoConcern.build({ SSO_TOKEN_MAX_AGE_S: 300, SSO_SESSION_S: 1800 }, (n: string) => (n === 'his-sso-key' ? text : undefined), {});

  it("signs each org's tokens with its own key when it has one, never with the shared one; other orgs with the shared key", () => {
    const s = settings(file);
    expect(s.configured).toBe(true);
    const accept = (org: string, k: string) => verifyToken(signToken(claims({ org }), Buffer.from(k)), s.keyOf, now, { maxAgeS: 300 }).org;
    expect(accept('222222222', own)).toBe('222222222');
    expect(accept('111111111', shared)).toBe('111111111');
    // The shared key (every other hospital's HIS has it) does not sign for an org with its own.
    expect(() => accept('222222222', shared)).toThrow(/签名不符/);
    expect(() => accept('111111111', own)).toThrow(/签名不符/);
    // Without a shared key, an org with no key of its own gets none.
    const perOrg = settings(`222222222 ${own}`);
    expect(() => verifyToken(signToken(claims({ org: '111111111' }), Buffer.from(shared)), perOrg.keyOf, now, { maxAgeS: 300 })).toThrow(/未配置单点登录密钥/);
    // The file as the runtime writes it, one key alone, signs for every org as before.
    expect(verifyToken(signToken(claims(), Buffer.from(shared)), settings(`${shared}\n`).keyOf, now, { maxAgeS: 300 }).org).toBe('123456789');
    expect(settings('').configured).toBe(false);
  });

  it('refuses a file it cannot read, naming the line and never its content', () => {
    for (const [text, says] of [
      ['short', 'line 1: a key has at least 32 characters'],
      [`${shared}\n${shared}`, 'line 2: a second key for every org'],
      [`1 ${own}\n1 ${own}`, 'line 2: a second key for org 1'],
      [`a b ${own}`, 'line 1: "<key>" or "<org code> <key>" expected'],
      [`12-3 ${own}`, 'line 1: the org code is 1–50 letters or digits'],
    ]) {
      expect(() => ssoKeys(text!), text).toThrow(says);
      try {
        ssoKeys(text!);
      } catch (err) {
        expect(String(err)).not.toContain(own);
        expect(String(err)).not.toContain(shared);
      }
    }
  });
});
