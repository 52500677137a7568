/**
 * What senders really send → one canonical record. Keys arrive as camelCase (the adapters'
 * convention), UPPER_SNAKE (Oracle/SQL Server HIS views), snake_case or PascalCase: all map onto the
 * declared camelCase key. Unknown keys are kept with the raw record and reported as warnings.
 */
import type { Resource } from '../../schemas/resource.js';
import { type FieldIssue, unstorableText as bad } from '../http/errors.js';

const aliasCache = new WeakMap<Resource, Map<string, string>>();

const fold = (k: string) => k.replace(/[_\-\s]/g, '').toLowerCase();

function aliases(r: Resource): Map<string, string> {
  let m = aliasCache.get(r);
  if (!m) {
    m = new Map();
    for (const [k, d] of Object.entries(r.fields)) {
      m.set(fold(k), k);
      m.set(fold(d.column), k);
    }
    aliasCache.set(r, m);
  }
  return m;
}

export interface Normalized {
  /** Declared fields under their canonical key. */
  known: Record<string, unknown>;
  /** Fields the data set does not declare, as sent. */
  extra: Record<string, unknown>;
  warnings: FieldIssue[];
  /** The record's key count when it is over MAX_FIELDS: nothing else was read, and it is refused. */
  tooMany?: number;
}

/**
 * Keys one record may hold (docs/his-guide.md 请求格式): the widest table of the data set has 116
 * fields, with their other spellings and a HIS's own columns well under this. A record over it is
 * refused whole (`tooManyFields`) before any key is read: a body of hundreds of thousands of keys
 * would otherwise hold the replica's one thread for seconds.
 */
export const MAX_FIELDS = 500;
/** Unknown fields named one by one in the answer's warnings; the rest are counted in one more. */
export const MAX_UNKNOWN_LISTED = 20;

/**
 * Text PostgreSQL and openGauss cannot store: NUL characters, and UTF-16 halves of a character
 * without their other half (JSON allows both as escapes). Named per field, never stored.
 */
export function textIssues(body: Record<string, unknown>): FieldIssue[] {
  const out: FieldIssue[] = [];
  const walk = (v: unknown, path: string, depth: number): void => {
    if (typeof v === 'string') {
      if (bad(v)) out.push({ field: path, rule: 'invalidText', message: '含有无法存储的字符（NUL 或不成对的代理字符）(NUL or an unpaired surrogate)' });
    } else if (v !== null && typeof v === 'object') {
      if (depth >= 32) {
        out.push({ field: path, rule: 'tooDeep', message: '嵌套层级过深 (nested more than 32 levels)' });
        return;
      }
      for (const k of Object.keys(v)) {
        if (bad(k)) out.push({ field: path, rule: 'invalidText', message: '字段名含有无法存储的字符 (a key holds NUL or an unpaired surrogate)' });
        const x = (v as Record<string, unknown>)[k];
        // A field's path is spelled out only where it is needed: for an issue, or to go deeper.
        if (typeof x === 'string') {
          if (bad(x)) walk(x, path ? `${path}.${k}` : k, depth + 1);
        } else if (x !== null && typeof x === 'object') walk(x, path ? `${path}.${k}` : k, depth + 1);
      }
    }
  };
  walk(body, '', 0);
  return out;
}

export function normalizeKeys(r: Resource, body: Record<string, unknown>): Normalized {
  const map = aliases(r);
  const known: Record<string, unknown> = {};
  const extra: Record<string, unknown> = {};
  const warnings: FieldIssue[] = [];
  const keys = Object.keys(body);
  if (keys.length > MAX_FIELDS) return { known, extra, warnings, tooMany: keys.length };
  let unknown = 0;
  for (const k of keys) {
    const v = body[k];
    const canon = map.get(fold(k));
    if (canon) {
      // The same field sent twice under two spellings: the camelCase one wins, and we say so.
      if (canon in known && k !== canon) {
        warnings.push({ field: k, rule: 'duplicateKey', message: `与 ${canon} 重复，已忽略 (duplicate of ${canon}, ignored)` });
        continue;
      }
      known[canon] = v;
    } else {
      // defineProperty: a key such as "__proto__" stays a plain field of the raw record.
      Object.defineProperty(extra, k, { value: v, enumerable: true, writable: true, configurable: true });
      if (++unknown <= MAX_UNKNOWN_LISTED) {
        warnings.push({ field: k, rule: 'unknownField', message: '数据集中无此字段，已随原始记录保存 (not in the data set; kept with the raw record)' });
      }
    }
  }
  if (unknown > MAX_UNKNOWN_LISTED) {
    const more = unknown - MAX_UNKNOWN_LISTED;
    warnings.push({
      field: '(more)',
      rule: 'unknownField',
      message: `另有 ${more} 个数据集外字段未逐一列出，均已随原始记录保存 (${more} more unknown fields, kept with the raw record)`,
    });
  }
  return { known, extra, warnings };
}

/**
 * normalizeKeys of a body, computed once per body object and resource: a call's body is asked for
 * its keys several times — its group key, its org, its patient's birth date, its preparation (twice
 * when it is validated again with stored birth dates). Read only: whoever adds to the warnings copies
 * them first.
 */
export function normalizedOnce(r: Resource, body: Record<string, unknown>): Readonly<Normalized> {
  const seen = normalizedOf.get(body);
  if (seen?.r === r) return seen.n;
  const n = normalizeKeys(r, body);
  normalizedOf.set(body, { r, n });
  return n;
}
const normalizedOf = new WeakMap<object, { r: Resource; n: Normalized }>();

/** The fields of a body under their data-set names (`normalizedOnce`'s `known`). */
export const knownKeys = (r: Resource, body: Record<string, unknown>): Readonly<Record<string, unknown>> => normalizedOnce(r, body).known;
