/**
 * Sessions opened by a HIS's single sign-on token (docs/card-form.md): the token is verified and its
 * nonce recorded once (a replay is refused), then a session bound to the org, doctor and patient the
 * token names is stored by the SHA-256 of a random cookie value. The session carries its own CSRF
 * token for the form posts.
 */
import { createHash, randomBytes } from 'node:crypto';
import type pg from 'pg';
import { z } from 'zod';
import { concern } from '../config/index.js';
import { AppError } from '../http/errors.js';
import { verifyToken, type SsoClaims } from './token.js';

export const SSO_COOKIE = 'cdc_sso';

/** The key shared with the HIS, and the lifetimes (docs/card-form.md "Settings"). */
export const ssoConcern = concern({
  name: 'sso',
  vars: {
    SSO_TOKEN_MAX_AGE_S: z.coerce.number().int().min(10).max(3600).default(300),
    SSO_SESSION_S: z.coerce.number().int().min(60).max(43_200).default(1800),
  },
  secrets: ['his-sso-key'],
  // Without the key the console works and single sign-on answers 503 naming the file: the status
  // page must answer whatever else is missing.
  build: (v, secret) => {
    const keys = ssoKeys(secret('his-sso-key') ?? '');
    return {
      /** Whether any key is configured (else /sso answers 503 naming the file). */
      configured: keys.shared !== null || keys.orgs.size > 0,
      /** The key a token naming `org` must be signed with: the org's own if it has one, else the shared one. */
      keyOf: (org: string): Buffer | null => keys.orgs.get(org) ?? keys.shared,
      tokenMaxAgeS: v.SSO_TOKEN_MAX_AGE_S,
      sessionS: v.SSO_SESSION_S,
    };
  },
});
export type SsoSettings = ReturnType<(typeof ssoConcern)['build']>;

/**
 * The file his-sso-key (docs/card-form.md "The key"): one key for every org (a line of the key alone,
 * as written by the runtime and by `openssl rand -base64 32`), and/or a key per org (lines
 * `<org code> <key>`), so that on a front serving several hospitals each HIS signs for its own org
 * only: an org with its own key never takes the shared one. Blank lines and `#` comments are
 * skipped; a key has at least 32 characters. A wrong line stops the start naming its number, never
 * its content.
 */
export function ssoKeys(text: string): { shared: Buffer | null; orgs: Map<string, Buffer> } {
  let shared: Buffer | null = null;
  const orgs = new Map<string, Buffer>();
  for (const [i, line] of text.split(/\r?\n/).entries()) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    const f = t.split(/\s+/);
    const where = `his-sso-key line ${i + 1}`;
    if (f.length > 2) throw new Error(`${where}: "<key>" or "<org code> <key>" expected`);
    const key = f.at(-1)!;
    if (key.length < 32) throw new Error(`${where}: a key has at least 32 characters`);
    if (f.length === 1) {
      if (shared) throw new Error(`${where}: a second key for every org`);
      shared = Buffer.from(key, 'utf8');
      continue;
    }
    const org = f[0]!;
    if (!/^[A-Za-z0-9]{1,50}$/.test(org)) throw new Error(`${where}: the org code is 1–50 letters or digits`);
    if (orgs.has(org)) throw new Error(`${where}: a second key for org ${org}`);
    orgs.set(org, Buffer.from(key, 'utf8'));
  }
  return { shared, orgs };
}

export interface SsoSession {
  orgCode: string;
  doctorId: string;
  doctorName: string | null;
  deptCode: string | null;
  patientId: string;
  caseId: string | null;
  csrf: string;
  expiresAt: Date;
}

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/** Verifies the token, spends its nonce, opens a session: the cookie value and the session. */
export async function redeem(db: pg.Pool, token: string, s: SsoSettings, now: Date): Promise<{ cookie: string; session: SsoSession; claims: SsoClaims }> {
  if (!s.configured) throw new AppError('UNAVAILABLE', '单点登录未配置：缺少密钥文件 his-sso-key (single sign-on is not configured)');
  const claims = verifyToken(token, s.keyOf, now, { maxAgeS: s.tokenMaxAgeS });
  try {
    await db.query('INSERT INTO sso_nonce (nonce, org_code, doctor_id, expires_at, used_at) VALUES ($1, $2, $3, $4, $5)', [
      claims.nonce,
      claims.org,
      claims.doctor,
      new Date(claims.exp * 1000),
      now,
    ]);
  } catch (err) {
    if ((err as { code?: string }).code === '23505') throw new AppError('UNAUTHENTICATED', '单点登录令牌已使用过，请从 HIS 重新打开 (token already used)');
    throw err;
  }
  const cookie = randomBytes(32).toString('base64url');
  const session: SsoSession = {
    orgCode: claims.org,
    doctorId: claims.doctor,
    doctorName: claims.doctorName ?? null,
    deptCode: claims.dept ?? null,
    patientId: claims.patient,
    caseId: claims.case ?? null,
    csrf: randomBytes(24).toString('base64url'),
    expiresAt: new Date(now.getTime() + s.sessionS * 1000),
  };
  await db.query(
    `INSERT INTO sso_session (session_hash, org_code, doctor_id, doctor_name, dept_code, patient_id, case_id, csrf, created_at, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    [
      sha256(cookie),
      session.orgCode,
      session.doctorId,
      session.doctorName,
      session.deptCode,
      session.patientId,
      session.caseId,
      session.csrf,
      now,
      session.expiresAt,
    ],
  );
  // Spent nonces are only needed until their token would have expired anyway.
  await db.query('DELETE FROM sso_nonce WHERE expires_at < $1', [new Date(now.getTime() - 3_600_000)]);
  return { cookie, session, claims };
}

/** The live session of a cookie value, or null (unknown or expired). */
export async function sessionOf(db: pg.Pool, cookie: string | undefined, now: Date): Promise<SsoSession | null> {
  if (!cookie || !/^[A-Za-z0-9_-]{20,100}$/.test(cookie)) return null;
  const r = (
    await db.query<{
      org_code: string;
      doctor_id: string;
      doctor_name: string | null;
      dept_code: string | null;
      patient_id: string;
      case_id: string | null;
      csrf: string;
      expires_at: Date;
    }>(
      'SELECT org_code, doctor_id, doctor_name, dept_code, patient_id, case_id, csrf, expires_at FROM sso_session WHERE session_hash = $1 AND expires_at > $2',
      [sha256(cookie), now],
    )
  ).rows[0];
  if (!r) return null;
  return {
    orgCode: r.org_code,
    doctorId: r.doctor_id,
    doctorName: r.doctor_name,
    deptCode: r.dept_code,
    patientId: r.patient_id,
    caseId: r.case_id,
    csrf: r.csrf,
    expiresAt: new Date(r.expires_at),
  };
}

/** Remembers the card the session submitted (its audit). */
export async function noteCard(db: pg.Pool, cookie: string, cardId: string): Promise<void> {
  await db.query('UPDATE sso_session SET last_card_id = $2 WHERE session_hash = $1', [sha256(cookie), cardId]);
}

/** Ends the session a cookie names (the doctor signed out): the cookie, copied or kept, opens nothing more. */
export async function endSession(db: pg.Pool, cookie: string, now: Date): Promise<void> {
  await db.query('UPDATE sso_session SET expires_at = $2 WHERE session_hash = $1 AND expires_at > $2', [sha256(cookie), now]);
}
