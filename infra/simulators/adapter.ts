/**
 * Records shaped exactly as the public HIS adapters send them (docs/his-guide.md): for each table
 * only the JSON fields that schemas/spec/fields.csv lists for it — no others, so no `orgCode` on the
 * item tables and no `operationTime` where the adapters' entity has none — with null fields dropped
 * (hutool's JSONUtil, used by the adapters, leaves nulls out) and times in one of the forms the
 * adapters emit. The content comes from the traffic generator's valid samples (infra/simulators),
 * so a chain of records (patient, visit, report header, its items, …) keeps its links.
 *
 *   adapterShape('emrExLabItem', generatedRecord, 'epoch') // → what a Java adapter would post
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resources } from '../../schemas/index.js';
import { parseTime } from '../../shared/time/index.js';

type Rec = Record<string, unknown>;

/**
 * How an adapter writes a time: `local` "yyyy-MM-dd HH:mm:ss" (hutool's default), `iso` Java's
 * LocalDateTime.toString() "yyyy-MM-ddTHH:mm:ss", `epoch` java.util.Date as epoch milliseconds
 * (fastjson's and Jackson's default), `date` a java.sql.Date "yyyy-MM-dd" for fields whose name
 * says date (others as `local`).
 */
export type TimeForm = 'local' | 'iso' | 'epoch' | 'date';
export const TIME_FORMS: readonly TimeForm[] = ['local', 'iso', 'epoch', 'date'];

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
let byTable: Map<string, string[]> | undefined;

/** The JSON fields fields.csv lists per table (adapter entity fields). */
export function adapterFields(table: string): string[] {
  if (!byTable) {
    byTable = new Map();
    const lines = readFileSync(join(root, 'schemas/spec/fields.csv'), 'utf8').trim().split(/\r?\n/).slice(1);
    for (const line of lines) {
      const [t, field] = line.split(',');
      if (!t || !field) continue;
      byTable.set(t, [...(byTable.get(t) ?? []), field]);
    }
  }
  return byTable.get(table) ?? [];
}

/** `record` (a valid generated record of `resource`) as an adapter would send it. */
export function adapterShape(resource: string, record: Rec, form: TimeForm = 'local'): Rec {
  const def = resources[resource];
  if (!def) throw new Error(`unknown resource ${resource}`);
  const out: Rec = {};
  for (const k of adapterFields(def.table)) {
    const v = record[k];
    if (v === null || v === undefined) continue;
    out[k] = def.fields[k]?.kind === 'time' && typeof v === 'string' ? timeAs(k, v, form) : v;
  }
  return out;
}

function timeAs(field: string, local: string, form: TimeForm): unknown {
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})$/.exec(local);
  if (!m) return local;
  switch (form) {
    case 'local':
      return local;
    case 'iso':
      return `${m[1]}T${m[2]}`;
    case 'epoch': {
      const t = parseTime(local);
      return t instanceof Date ? t.getTime() : local;
    }
    case 'date':
      return /date$/i.test(field) || /Date[A-Z]?/.test(field) ? m[1] : local;
  }
}
