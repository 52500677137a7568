/**
 * Activation and networks (docs/activation.md): the front is registered with the authorization code
 * the national platform issues (授权码文件) — a JSON document signed with the platform's SM2 key, as
 * configuration bundles are (shared/configbundle/sign.ts, its own format tag). A test code puts the
 * front on the test network (试运行); a production code moves it to the production network, once, in
 * one audited step, and only after the org's latest acceptance self-test passed. Every code applied is
 * kept (front_activation); the newest is in force.
 */
import { z } from 'zod';
import { withTx, type Db } from '../db/index.js';
import { verifyBundleSignature } from '../configbundle/sign.js';
import { SignedBundle } from '../configbundle/schema.js';
import type { Sm2PublicKey } from '../uplink/sm.js';
import { audit } from '../console/index.js';

export const CODE_FORMAT = 'cdc-front-authorization/1';
export const Network = z.enum(['test', 'production']);
export type Network = z.infer<typeof Network>;
export const NETWORK_ZH: Record<Network, string> = { test: '测试网（试运行）', production: '正式网' };

export const AuthorizationCode = z
  .object({
    format: z.literal(CODE_FORMAT),
    orgCode: z.string().regex(/^[A-Za-z0-9]{1,50}$/, 'an org code: 1–50 letters and digits'),
    frontId: z.string().trim().min(1).max(100),
    network: Network,
    issuedAt: z.iso.datetime({ offset: true }),
    expiresAt: z.iso.datetime({ offset: true }).optional(),
    issuer: z.string().trim().min(1).max(200),
  })
  .strict();
export type AuthorizationCode = z.infer<typeof AuthorizationCode>;

/** A refusal: HTTP status, a stable code, words an operator can act on. */
export class ActivationError extends Error {
  constructor(
    readonly status: 400 | 409 | 422,
    readonly code: string,
    readonly reason: string,
  ) {
    super(reason);
  }
}

export interface Activation {
  seq: string;
  orgCode: string;
  frontId: string;
  network: Network;
  issuedAt: Date;
  expiresAt: Date | null;
  issuer: string;
  activatedAt: Date;
  activatedBy: string;
  acceptanceRun: string | null;
}

/** Signature first (over the code's exact bytes), then the document. Throws SignatureError or ActivationError. */
export function verifyCode(body: unknown, trusted: Sm2PublicKey[]): { code: AuthorizationCode; text: string; signature: string; keyId: string } {
  const w = SignedBundle.safeParse(body);
  if (!w.success) throw new ActivationError(400, 'invalid-request', 'an authorization code file is {"bundle": "<the code document>", "sig": {...}}');
  const keyId = verifyBundleSignature(w.data, trusted, CODE_FORMAT);
  let doc: unknown;
  try {
    doc = JSON.parse(w.data.bundle);
  } catch {
    throw new ActivationError(422, 'invalid-code', 'the authorization code is not JSON');
  }
  const c = AuthorizationCode.safeParse(doc);
  if (!c.success)
    throw new ActivationError(
      422,
      'invalid-code',
      `the authorization code: ${c.error.issues.map((i) => `${i.path.join('.') || '(code)'}: ${i.message}`).join('; ')}`,
    );
  return { code: c.data, text: w.data.bundle, signature: w.data.sig.value, keyId };
}

const ROW = `seq, org_code, front_id, network, issued_at, expires_at, issuer, activated_at, activated_by, acceptance_run`;
type Row = {
  seq: string;
  org_code: string;
  front_id: string;
  network: string;
  issued_at: Date;
  expires_at: Date | null;
  issuer: string;
  activated_at: Date;
  activated_by: string;
  acceptance_run: string | null;
};
const toActivation = (r: Row): Activation => ({
  seq: String(r.seq),
  orgCode: r.org_code,
  frontId: r.front_id,
  network: Network.parse(r.network),
  issuedAt: r.issued_at,
  expiresAt: r.expires_at,
  issuer: r.issuer,
  activatedAt: r.activated_at,
  activatedBy: r.activated_by,
  acceptanceRun: r.acceptance_run === null ? null : String(r.acceptance_run),
});

/** The activation in force (the newest), or null: the front is not activated yet. */
export async function activation(db: Pick<Db, 'query'>): Promise<Activation | null> {
  const r = await db.query<Row>(`SELECT ${ROW} FROM front_activation ORDER BY seq DESC LIMIT 1`);
  return r.rows[0] ? toActivation(r.rows[0]) : null;
}

export async function activationHistory(db: Pick<Db, 'query'>, limit = 50): Promise<Activation[]> {
  return (await db.query<Row>(`SELECT ${ROW} FROM front_activation ORDER BY seq DESC LIMIT $1`, [limit])).rows.map(toActivation);
}

/** How old a passed acceptance self-test may be for the switch to production. */
const ACCEPTANCE_MAX_AGE_DAYS = 30;

/**
 * Applies a verified code in one transaction, audited. A code already applied, an expired one, or a
 * production code without a passed self-test of its org in the last 30 days is refused, nothing written.
 */
export async function activate(db: Db, v: ReturnType<typeof verifyCode>, by: string, now = new Date()): Promise<Activation> {
  const { code } = v;
  if (code.expiresAt && new Date(code.expiresAt) <= now) throw new ActivationError(422, 'expired', `the authorization code expired at ${code.expiresAt}`);
  return withTx(db, async (tx) => {
    await tx.query('LOCK TABLE front_activation IN EXCLUSIVE MODE');
    const dup = await tx.query('SELECT 1 FROM front_activation WHERE signature = $1', [v.signature]);
    if (dup.rowCount) throw new ActivationError(409, 'already-applied', 'this authorization code was applied already');
    const cur = await activation(tx);
    if (cur?.network === 'production' && code.network === 'test')
      throw new ActivationError(409, 'already-production', 'the front is on the production network: a test code does not take it back');
    let run: string | null = null;
    if (code.network === 'production') {
      const a = await tx.query<{ run_id: string; ok: boolean; started_at: Date }>(
        'SELECT run_id, ok, started_at FROM console_acceptance WHERE org_code = $1 ORDER BY run_id DESC LIMIT 1',
        [code.orgCode],
      );
      const last = a.rows[0];
      const fresh = last && now.getTime() - last.started_at.getTime() <= ACCEPTANCE_MAX_AGE_DAYS * 86_400_000;
      if (!last?.ok || !fresh)
        throw new ActivationError(
          409,
          'acceptance-not-passed',
          `转入正式网前须通过验收自检 (the switch to production needs a passed acceptance self-test of org ${code.orgCode} in the last ${ACCEPTANCE_MAX_AGE_DAYS} days; ${last ? `the latest, #${last.run_id}, ${last.ok ? 'is too old' : 'did not pass'}` : 'none was run'}: 控制台 → 验收自检)`,
        );
      run = String(last.run_id);
    }
    const r = await tx.query<Row>(
      `INSERT INTO front_activation (org_code, front_id, network, issued_at, expires_at, issuer, code_text, signature, key_id, activated_by, acceptance_run)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING ${ROW}`,
      [code.orgCode, code.frontId, code.network, code.issuedAt, code.expiresAt ?? null, code.issuer, v.text, v.signature, v.keyId, by, run],
    );
    const from = cur ? cur.network : 'none';
    await audit(tx, 'activation', by, `机构 ${code.orgCode} 前置 ${code.frontId}：${from} → ${code.network}${run ? `（验收自检 #${run}）` : ''}`);
    return toActivation(r.rows[0]!);
  });
}
