/**
 * What senders really send → one canonical record. Keys arrive as camelCase (the adapters'
 * convention), UPPER_SNAKE (Oracle/SQL Server HIS views), snake_case or PascalCase: all map onto the
 * declared camelCase key. Unknown keys are kept with the raw record and reported as warnings.
 */
import type { Resource } from '../../schemas/resource.js';
import type { FieldIssue } from '../http/errors.js';

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
}

export function normalizeKeys(r: Resource, body: Record<string, unknown>): Normalized {
  const map = aliases(r);
  const known: Record<string, unknown> = {};
  const extra: Record<string, unknown> = {};
  const warnings: FieldIssue[] = [];
  for (const [k, v] of Object.entries(body)) {
    const canon = map.get(fold(k));
    if (canon) {
      // The same field sent twice under two spellings: the camelCase one wins, and we say so.
      if (canon in known && k !== canon) {
        warnings.push({ field: k, rule: 'duplicateKey', message: `与 ${canon} 重复，已忽略 (duplicate of ${canon}, ignored)` });
        continue;
      }
      known[canon] = v;
    } else {
      extra[k] = v;
      warnings.push({ field: k, rule: 'unknownField', message: '数据集中无此字段，已随原始记录保存 (not in the data set; kept with the raw record)' });
    }
  }
  return { known, extra, warnings };
}
