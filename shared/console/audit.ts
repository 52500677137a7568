/**
 * The audit trail in one place (docs/console.md "Audit"): every row of the console's own audit
 * (console_audit: sign-ins, views and reveals of personal data, user and delivery changes, uploads,
 * self-tests, activations), every code-mapping change (code_mapping_history), every configuration
 * bundle step (config_bundle) and the configuration port's refused signatures and tokens, counted by
 * the hour (config_refusal, shared/configbundle/refusals.ts) — each kept where its owner writes it, read together here, newest
 * first, with the filters an administrator needs to answer "who saw or changed what, when, from where".
 */
import { z } from 'zod';
import type { Db } from '../db/index.js';

export const AUDIT_SOURCES = ['console', 'mapping', 'bundle'] as const;
export type AuditSource = (typeof AUDIT_SOURCES)[number];

export const AuditQuery = z.object({
  from: z.date(),
  to: z.date(),
  /** Exact user name (the console's), or the author a mapping or bundle step names. */
  user: z.string().trim().max(200).optional(),
  /** An action as stored (view-case, reveal, mapping-update, bundle-apply, …). */
  action: z.string().trim().max(40).optional(),
  /** Part of the detail (a case number, an org code, a domain …). */
  text: z.string().trim().max(100).optional(),
  source: z.enum(AUDIT_SOURCES).optional(),
  limit: z.number().int().min(1).max(5000),
});
export type AuditQuery = z.infer<typeof AuditQuery>;

const AuditRow = z.object({
  source: z.enum(AUDIT_SOURCES),
  at: z.date(),
  username: z.string().nullable(),
  action: z.string(),
  detail: z.string().nullable(),
  address: z.string().nullable(),
});
export type AuditRow = z.infer<typeof AuditRow>;

/** The three sources as one relation (columns: source, at, username, action, detail, address). */
const TRAIL = `
  SELECT 'console' AS source, at, username, action, detail, address FROM console_audit
  UNION ALL
  SELECT 'mapping', made_at, made_by, 'mapping-' || action,
         org_code || ' ' || domain || ' ' || local_code || ' → ' || coalesce(national_code, '无对应') || '（' || equivalence || '，第 ' || CAST(version AS varchar) || ' 版）'
           || coalesce('：' || note, ''),
         made_via
    FROM code_mapping_history
  UNION ALL
  SELECT 'bundle', applied_at, applied_by, 'bundle-' || action,
         'v' || CAST(version AS varchar) || ' ' || areas || coalesce('：' || reason, ''), applied_via
    FROM config_bundle
  UNION ALL
  SELECT 'bundle', last_at, NULLIF(caller, ''), CASE WHEN code = 'unauthenticated' THEN 'config-token-refused' ELSE 'bundle-refused' END,
         code || ' ' || path || ' ×' || CAST(attempts AS varchar) || '（该小时内）'
           || coalesce(' 声称 v' || CAST(version AS varchar), '') || coalesce(' key ' || substr(key_id, 1, 16) || '…', '')
           || coalesce(' SM3 ' || substr(digest, 1, 16) || '…', ''),
         NULLIF(address, '')
    FROM config_refusal`;

export async function auditTrail(db: Pick<Db, 'query'>, q: AuditQuery): Promise<AuditRow[]> {
  const where = ['at >= $1', 'at < $2'];
  const params: unknown[] = [q.from, q.to];
  if (q.user) where.push(`username = $${params.push(q.user)}`);
  if (q.action) where.push(`action = $${params.push(q.action)}`);
  if (q.text) where.push(`position($${params.push(q.text)}::varchar in coalesce(detail, '')) > 0`);
  if (q.source) where.push(`source = $${params.push(q.source)}`);
  const r = await db.query(
    `SELECT source, at, username, action, detail, address FROM (${TRAIL}) t WHERE ${where.join(' AND ')} ORDER BY at DESC LIMIT $${params.push(q.limit)}`,
    params,
  );
  return z.array(AuditRow).parse(r.rows.map((x: Record<string, unknown>) => ({ ...x, at: new Date(x.at as string) })));
}
