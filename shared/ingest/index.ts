/**
 * The one pipeline every receive function uses: parse → normalise → validate → store the typed
 * row, its history, its receipt and one outbox row per destination in a single transaction. A
 * record that fails validation stores nothing (its rejection — fields and rules, masked — is
 * logged for the HIS to query). Posting the same content twice changes nothing (one row, one
 * history entry per real change); DELETE or invalidFlag=1 retires the record as a new version.
 * A child whose parent has not arrived is stored but held: it leaves only after its parent.
 */
import { createHash } from 'node:crypto';
import type { Db } from '../db/index.js';
import { withTx } from '../db/index.js';
import { AppError, type FieldIssue } from '../http/errors.js';
import type { Resource } from '../../schemas/resource.js';
import { resources as registry } from '../../schemas/index.js';
import { formatLocal } from '../time/index.js';
import { TIME_ZONE } from '../../schemas/fields.js';
import { normalizeKeys } from './normalize.js';
import { validateRecord } from './validate.js';
import { qualityWarnings } from './quality.js';
import {
  appendHistory,
  enqueue,
  lockCurrent,
  missingParents,
  recordRejection,
  releaseChildren,
  replaceWaits,
  retire,
  writeReceipt,
  writeRecord,
} from './store.js';

export interface IngestContext {
  callId: string | null;
  /** Test mode asked for by the request (header). Records of a test org code are test records too. */
  test: boolean;
  now: Date;
  /** Who sent it, for the rejection log (never personal data). */
  caller?: string | null;
  /** Org codes whose records are always test records (TEST_ORG_CODES). */
  testOrgs?: ReadonlySet<string>;
  /** Throws 403 when the caller may not write the org's data (several hospitals on one front). */
  authorize?: (orgCode: string) => void;
}

export type Status = 'created' | 'updated' | 'unchanged' | 'retired';

export interface Outcome {
  id: string;
  orgCode: string;
  status: Status;
  version: number;
  /** Why the record is held back from the platforms (waiting for a parent, a mapping). */
  held: string[];
  test: boolean;
  warnings: FieldIssue[];
}

/** Canonical JSON: sorted keys, times as local "yyyy-MM-dd HH:mm:ss" — the form sent upstream. */
export function canonical(record: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(record).sort()) {
    const v = record[k];
    out[k] = v instanceof Date ? formatLocal(v, TIME_ZONE()) : v;
  }
  if (Object.keys(extra).length) out._extra = extra;
  return out;
}

function digest(v: unknown): string {
  return createHash('sha256').update(JSON.stringify(v)).digest('hex');
}

function asObject(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new AppError('BAD_REQUEST', '记录应为 JSON 对象 (a record must be a JSON object)');
  }
  return body as Record<string, unknown>;
}

const keyText = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v).trim() || null : null);

/** Resources some other resource names as its parent: their arrival may release held children. */
let parentNames: Set<string> | undefined;
function isParent(name: string): boolean {
  parentNames ??= new Set(Object.values(registry).flatMap((r) => r.parents.map((p) => p.resource)));
  return parentNames.has(name);
}

function isTest(ctx: IngestContext, orgCode: string | null): boolean {
  return ctx.test || (orgCode !== null && (ctx.testOrgs?.has(orgCode) ?? false));
}

async function reject(db: Db, r: Resource, known: Record<string, unknown>, err: AppError, ctx: IngestContext): Promise<never> {
  const orgCode = keyText(known.orgCode);
  // Best effort: a rejection log that cannot be written must not turn a 400 into a 500.
  await recordRejection(db, {
    resource: r.name,
    orgCode,
    id: keyText(known.id),
    callId: ctx.callId,
    caller: ctx.caller ?? null,
    issues: err.issues,
    test: isTest(ctx, orgCode),
  }).catch(() => undefined);
  throw err;
}

/** POST: insert or update one record. Throws AppError (400) naming every failing field. */
export async function upsertRecord(db: Db, r: Resource, body: unknown, ctx: IngestContext): Promise<Outcome> {
  const { known, extra, warnings } = normalizeKeys(r, asObject(body));
  // Before validation: another org's records never reach this org's rejection log.
  const claimedOrg = keyText(known.orgCode);
  if (claimedOrg) ctx.authorize?.(claimedOrg);
  const v = validateRecord(r, known, ctx.now);
  if (!v.ok) {
    const issues = v.issues;
    const err = new AppError('VALIDATION_FAILED', `${r.title}校验不通过：${issues.map((i) => `${i.field}(${i.rule})`).join('，')}`, issues, keyText(known.id));
    return reject(db, r, known, err, ctx);
  }
  const record = v.record;
  if ('warnings' in v && Array.isArray(v.warnings)) warnings.push(...(v.warnings as FieldIssue[]));
  warnings.push(...qualityWarnings(record));
  const id = String(record.id);
  const orgCode = String(record.orgCode);
  const test = isTest(ctx, orgCode);
  const retiring = record.invalidFlag === 1;
  const payload = canonical(record, extra);
  const hash = digest({ payload, retired: retiring });
  const bt = record[r.businessTime];
  const businessAt = bt instanceof Date ? bt : null;
  const latenessS = businessAt ? Math.max(0, Math.round((ctx.now.getTime() - businessAt.getTime()) / 1000)) : null;
  const parentRefs = r.parents.flatMap((p) => {
    const pid = keyText(record[p.field]);
    const pr = registry[p.resource];
    return pid && pr ? [{ resource: p.resource, table: pr.table, id: pid }] : [];
  });
  const flags = warnings.filter((w) => w.rule === 'garbledText' || w.rule === 'nameMismatch').map((w) => `${w.rule}:${w.field}`);

  return withTx(db, async (tx) => {
    const cur = await lockCurrent(tx, r, orgCode, id);
    if (cur && cur.hash === hash && cur.retired === retiring) {
      return { id, orgCode, status: 'unchanged' as const, version: cur.version, held: [], test, warnings };
    }
    const version = (cur?.version ?? 0) + 1;
    const op = retiring ? ('retire' as const) : ('upsert' as const);
    const missing = await missingParents(tx, orgCode, parentRefs);
    const held = missing.map((m) => `parent:${m.resource}/${m.id}`);
    await writeRecord(tx, r, record, { version, hash, raw: payload, retired: retiring, test, receivedAt: ctx.now, latenessS });
    await appendHistory(tx, { resource: r.name, orgCode, id, version, op, hash, raw: payload, callId: ctx.callId, at: ctx.now });
    await enqueue(tx, { resource: r.name, orgCode, id, version, op, deadline: r.deadline, test, held: held.length > 0, payload });
    if (cur || missing.length) await replaceWaits(tx, { resource: r.name, orgCode, id }, missing, cur !== null, ctx.now);
    await writeReceipt(tx, {
      resource: r.name,
      orgCode,
      id,
      version,
      state: held.length ? 'held' : retiring ? 'retired' : 'stored',
      retired: retiring,
      holdReasons: held,
      flags,
      businessAt,
      businessDay: businessAt ? formatLocal(businessAt, TIME_ZONE()).slice(0, 10) : null,
      test,
      at: ctx.now,
    });
    // After this record's own outbox rows, so platforms receive the parent before its children.
    if (!cur && isParent(r.name)) await releaseChildren(tx, r.name, orgCode, id);
    const status: Status = retiring ? 'retired' : cur ? 'updated' : 'created';
    return { id, orgCode, status, version, held, test, warnings };
  });
}

/** DELETE with the key in the body: retires the record (a new version the platforms receive too). */
export async function retireRecord(db: Db, r: Resource, body: unknown, ctx: IngestContext): Promise<Outcome> {
  const normalized = normalizeKeys(r, asObject(body)).known;
  // A resource keyed by another field (baseDept by deptCode) may name its record by that field.
  const known = r.keyField && !keyText(normalized.id) ? { ...normalized, id: normalized[r.keyField] } : normalized;
  const claimedOrg = keyText(known.orgCode);
  if (claimedOrg) ctx.authorize?.(claimedOrg);
  const issues: FieldIssue[] = [];
  const key: Record<string, string> = {};
  for (const k of r.key) {
    const v = keyText(known[k]);
    if (v) key[k] = v;
    else issues.push({ field: k, rule: 'required', message: `删除时必填 (${k} is required to delete)` });
  }
  if (issues.length) return reject(db, r, known, new AppError('VALIDATION_FAILED', '删除请求缺少主键 (the key is missing)', issues), ctx);
  const { orgCode, id } = key as { orgCode: string; id: string };
  const test = isTest(ctx, orgCode);
  return withTx(db, async (tx) => {
    const cur = await lockCurrent(tx, r, orgCode, id);
    if (!cur) throw new AppError('NOT_FOUND', `${r.title}不存在：${id} (no such record)`, [], id);
    if (cur.retired) return { id, orgCode, status: 'unchanged' as const, version: cur.version, held: [], test, warnings: [] };
    const version = cur.version + 1;
    const payload = { id, orgCode, invalidFlag: 1 };
    const hash = digest({ payload, retired: true });
    const rc = await tx.query<{ hold_reasons: string | null; business_at: Date | null; business_day: string | null; flags: string | null }>(
      'SELECT hold_reasons, business_at, business_day, flags FROM record_receipt WHERE resource = $1 AND org_code = $2 AND record_id = $3',
      [r.name, orgCode, id],
    );
    const prev = rc.rows[0];
    const held = (prev?.hold_reasons ?? '').split(' ').filter(Boolean);
    await retire(tx, r, orgCode, id, version, hash, ctx.now);
    await appendHistory(tx, { resource: r.name, orgCode, id, version, op: 'retire', hash, raw: payload, callId: ctx.callId, at: ctx.now });
    await enqueue(tx, { resource: r.name, orgCode, id, version, op: 'retire', deadline: r.deadline, test, held: held.length > 0, payload });
    await writeReceipt(tx, {
      resource: r.name,
      orgCode,
      id,
      version,
      state: held.length ? 'held' : 'retired',
      retired: true,
      holdReasons: held,
      flags: (prev?.flags ?? '').split(' ').filter(Boolean),
      businessAt: prev?.business_at ?? null,
      businessDay: prev?.business_day ?? null,
      test,
      at: ctx.now,
    });
    return { id, orgCode, status: 'retired' as const, version, held, test, warnings: [] };
  });
}
