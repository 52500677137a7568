/**
 * The one pipeline every receive function uses: parse → normalise → validate → store the typed
 * row, its history and one outbox row per destination in a single transaction. A record that
 * fails validation stores nothing. Posting the same content twice changes nothing (one row, one
 * history entry per real change); DELETE or invalidFlag=1 retires the record as a new version.
 */
import { createHash } from 'node:crypto';
import type { Db } from '../db/index.js';
import { withTx } from '../db/index.js';
import { AppError, type FieldIssue } from '../http/errors.js';
import type { Resource } from '../../schemas/resource.js';
import { formatLocal } from '../time/index.js';
import { TIME_ZONE } from '../../schemas/fields.js';
import { normalizeKeys } from './normalize.js';
import { validateRecord } from './validate.js';
import { appendHistory, enqueue, lockCurrent, retire, writeRecord } from './store.js';

export interface IngestContext {
  callId: string | null;
  /** Test-mode records are processed like any other but never leave for a live platform. */
  test: boolean;
  now: Date;
}

export type Status = 'created' | 'updated' | 'unchanged' | 'retired';

export interface Outcome {
  id: string;
  orgCode: string;
  status: Status;
  version: number;
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

function prepare(r: Resource, body: unknown, now: Date) {
  const { known, extra, warnings } = normalizeKeys(r, asObject(body));
  const id = typeof known.id === 'string' || typeof known.id === 'number' ? String(known.id).trim() : null;
  const v = validateRecord(r, known, now);
  if (!v.ok) throw new AppError('VALIDATION_FAILED', `${r.title}校验不通过：${v.issues.map((i) => `${i.field}(${i.rule})`).join('，')}`, v.issues, id);
  return { record: v.record, extra, warnings, id: String(v.record.id), orgCode: String(v.record.orgCode) };
}

/** POST: insert or update one record. Throws AppError (400) naming every failing field. */
export async function upsertRecord(db: Db, r: Resource, body: unknown, ctx: IngestContext): Promise<Outcome> {
  const { record, extra, warnings, id, orgCode } = prepare(r, body, ctx.now);
  const retiring = record.invalidFlag === 1;
  const payload = canonical(record, extra);
  const hash = digest({ payload, retired: retiring });
  const bt = record[r.businessTime];
  const latenessS = bt instanceof Date ? Math.max(0, Math.round((ctx.now.getTime() - bt.getTime()) / 1000)) : null;
  return withTx(db, async (tx) => {
    const cur = await lockCurrent(tx, r, orgCode, id);
    if (cur && cur.hash === hash && cur.retired === retiring) return { id, orgCode, status: 'unchanged' as const, version: cur.version, warnings };
    const version = (cur?.version ?? 0) + 1;
    const op = retiring ? ('retire' as const) : ('upsert' as const);
    await writeRecord(tx, r, record, { version, hash, raw: payload, retired: retiring, test: ctx.test, receivedAt: ctx.now, latenessS });
    await appendHistory(tx, { resource: r.name, orgCode, id, version, op, hash, raw: payload, callId: ctx.callId, at: ctx.now });
    await enqueue(tx, { resource: r.name, orgCode, id, version, op, deadline: r.deadline, test: ctx.test, payload });
    const status: Status = retiring ? 'retired' : cur ? 'updated' : 'created';
    return { id, orgCode, status, version, warnings };
  });
}

/** DELETE with the key in the body: retires the record (a new version the platforms receive too). */
export async function retireRecord(db: Db, r: Resource, body: unknown, ctx: IngestContext): Promise<Outcome> {
  const { known } = normalizeKeys(r, asObject(body));
  const issues: FieldIssue[] = [];
  const key: Record<string, string> = {};
  for (const k of r.key) {
    const v = known[k];
    if (typeof v === 'string' && v.trim()) key[k] = v.trim();
    else if (typeof v === 'number') key[k] = String(v);
    else issues.push({ field: k, rule: 'required', message: `删除时必填 (${k} is required to delete)` });
  }
  if (issues.length) throw new AppError('VALIDATION_FAILED', '删除请求缺少主键 (the key is missing)', issues);
  const { orgCode, id } = key as { orgCode: string; id: string };
  return withTx(db, async (tx) => {
    const cur = await lockCurrent(tx, r, orgCode, id);
    if (!cur) throw new AppError('NOT_FOUND', `${r.title}不存在：${id} (no such record)`, [], id);
    if (cur.retired) return { id, orgCode, status: 'unchanged' as const, version: cur.version, warnings: [] };
    const version = cur.version + 1;
    const payload = { id, orgCode, invalidFlag: 1 };
    const hash = digest({ payload, retired: true });
    await retire(tx, r, orgCode, id, version, hash, ctx.now);
    await appendHistory(tx, { resource: r.name, orgCode, id, version, op: 'retire', hash, raw: payload, callId: ctx.callId, at: ctx.now });
    await enqueue(tx, { resource: r.name, orgCode, id, version, op: 'retire', deadline: r.deadline, test: ctx.test, payload });
    return { id, orgCode, status: 'retired' as const, version, warnings: [] };
  });
}
