/**
 * The single sign-on token a HIS hands the front when a doctor opens the popup or the card form
 * (docs/card-form.md "Single sign-on"): `v1.<payload>.<signature>`, where payload is the base64url
 * of a JSON object and signature the base64url of HMAC-SHA256 over `v1.<payload>` with the key shared
 * with the HIS (the secret file his-sso-key). Short-lived (exp − iat ≤ the configured maximum) and
 * single-use (the nonce, shared/sso/session.ts).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { AppError, type FieldIssue } from '../http/errors.js';

const code = (max: number) =>
  z
    .string()
    .trim()
    .min(1)
    .max(max)
    .regex(/^[\w.\-:]+$/, 'letters, digits and . _ - : only');

export const SsoClaims = z.object({
  /** The hospital's org code. */
  org: code(50),
  /** The doctor's id in the HIS (baseUser id). */
  doctor: code(80),
  doctorName: z.string().trim().min(1).max(50).optional(),
  dept: code(64).optional(),
  /** The patient the doctor is treating (emrPatientInfo id). */
  patient: code(80),
  /** The pending case to open directly (a reminder's caseId), if the HIS has one. */
  case: z
    .string()
    .regex(/^\d{1,18}$/, 'a caseId from the reminders')
    .optional(),
  /** Issued at, expires: Unix seconds. */
  iat: z.number().int().positive(),
  exp: z.number().int().positive(),
  /** Random, 16–64 characters: the token is refused if it was used before. */
  nonce: z.string().regex(/^[A-Za-z0-9_-]{16,64}$/, '16–64 letters, digits, - or _'),
});
export type SsoClaims = z.infer<typeof SsoClaims>;

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/** The token for `claims` (the HIS's side; used by tests and the vendor guide's example). */
export function signToken(claims: SsoClaims, key: Buffer): string {
  const payload = b64url(JSON.stringify(claims));
  const sig = createHmac('sha256', key).update(`v1.${payload}`).digest();
  return `v1.${payload}.${b64url(sig)}`;
}

const refuse = (message: string, issues: FieldIssue[] = []): AppError => new AppError('UNAUTHENTICATED', `单点登录令牌无效：${message}`, issues);

/**
 * The claims of a valid token, or a 401 naming what is wrong: format, signature, claims, expiry
 * (with `skewS` of clock difference allowed each way), lifetime above `maxAgeS`. `key` is the key,
 * or the key of the org the token names (null: none for it) — so that one hospital's key never
 * signs for another (docs/card-form.md "The key").
 */
export function verifyToken(token: string, key: Buffer | ((org: string) => Buffer | null), now: Date, o: { maxAgeS: number; skewS?: number }): SsoClaims {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== 'v1' || !parts[1] || !parts[2]) throw refuse('格式应为 v1.<payload>.<signature> (malformed token)');
  const k = typeof key === 'function' ? key(claimedOrg(parts[1])) : key;
  if (!k) throw refuse('该机构未配置单点登录密钥 (no single sign-on key for this org)');
  const want = createHmac('sha256', k).update(`v1.${parts[1]}`).digest();
  const got = Buffer.from(parts[2], 'base64url');
  // The signature as signToken writes it, or with the one "=" of padding Java's URL encoder adds by
  // default: Buffer.from skips characters that are not base64url, so "<signature>!!!" decoded to
  // the same bytes.
  const written = parts[2].endsWith('=') ? parts[2].slice(0, -1) : parts[2];
  if (got.length !== want.length || b64url(got) !== written || !timingSafeEqual(got, want)) throw refuse('签名不符 (bad signature)');
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    throw refuse('内容不是 JSON (payload is not JSON)');
  }
  const parsed = SsoClaims.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ field: i.path.join('.') || '(token)', rule: i.code, message: i.message }));
    throw refuse(`内容不完整 (invalid claims: ${issues.map((i) => i.field).join(', ')})`, issues);
  }
  const c = parsed.data;
  const t = Math.floor(now.getTime() / 1000);
  const skew = o.skewS ?? 30;
  if (c.exp <= c.iat) throw refuse('exp 应晚于 iat (exp must follow iat)');
  if (c.exp - c.iat > o.maxAgeS) throw refuse(`有效期超过 ${o.maxAgeS} 秒 (lifetime above ${o.maxAgeS} s)`);
  if (c.iat > t + skew) throw refuse('签发时间在将来，请检查 HIS 服务器时钟 (issued in the future: check the HIS clock)');
  if (t > c.exp + skew) throw refuse('已过期 (expired)');
  return c;
}

/** The org a payload names, before its signature is checked (only to choose the key); '' if none. */
function claimedOrg(payload: string): string {
  try {
    const org = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { org?: unknown }).org;
    return typeof org === 'string' ? org.trim() : '';
  } catch {
    return '';
  }
}
