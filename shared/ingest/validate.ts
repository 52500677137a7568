/**
 * Validation of one record against its resource: required keys, each field's type and length
 * (zod), value domains (national code lists; a Code/Name disagreement is a warning), then the
 * cross-field rules. Every failing field is named with its rule in one answer;
 * values of personal fields are masked.
 */
import type { z } from 'zod';
import type { Resource } from '../../schemas/resource.js';
import type { FieldIssue } from '../http/errors.js';
import { mask } from './mask.js';
import { checkDomains } from '../../schemas/domains.js';
import { IDENTIFIER_MAX, tooLong, tooLongCode } from '../../schemas/fields.js';

const isBlank = (v: unknown) => v === undefined || v === null || (typeof v === 'string' && v.trim() === '');

function ruleOf(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'too_big':
      return issue.origin === 'number' || issue.origin === 'int' ? 'range' : 'maxLength';
    case 'too_small':
      return issue.origin === 'number' || issue.origin === 'int' ? 'range' : 'minLength';
    case 'invalid_type':
      return issue.expected === 'date' ? 'datetime' : 'type';
    case 'invalid_format':
      return 'format';
    default:
      return (issue as { params?: { rule?: string } }).params?.rule ?? issue.code;
  }
}

function show(v: unknown): unknown {
  if (typeof v === 'string' && v.length > 64) return v.slice(0, 64) + '…';
  if (v !== null && typeof v === 'object') return Array.isArray(v) ? '[array]' : '[object]';
  return v;
}

/**
 * `unmappedLong`: coded fields holding a hospital code longer than the national code's length, not yet
 * mapped — kept in the record's content, never in its typed column (docs/code-mapping.md "Local codes").
 */
export type Validated =
  | { ok: true; record: Record<string, unknown>; warnings: FieldIssue[]; unmappedLong: string[] }
  | { ok: false; issues: FieldIssue[]; warnings: FieldIssue[] };

/**
 * A hospital's own code in a coded field that is longer than the national code (民族 "HAN" where the
 * national code has two digits): with a mapper it is the mapper's to judge, up to IDENTIFIER_MAX.
 */
function localCode(v: unknown, error: z.ZodError): string | null {
  if (error.issues[0]?.code !== 'too_big') return null;
  const t = typeof v === 'number' ? String(v) : typeof v === 'string' ? v.trim() : '';
  return t && t.length <= IDENTIFIER_MAX ? t : null;
}

/**
 * Maps the record's coded fields onto the national value domains in place, before the cross-field
 * rules run (they read national codes): its issues (a code the org's policy refuses, rule 'domain')
 * and warnings, and the fields still holding a code with no mapping (`pending`). Without one, a code
 * outside its national list is an error (rule 'domain').
 */
export type DomainMapper = (record: Record<string, unknown>) => { issues: FieldIssue[]; warnings: FieldIssue[]; pending: Set<string> };

/**
 * The cross-field rules on a record, except what a pending field decides: a field still holding the
 * hospital's own code (not yet mapped) is left out of what the rules read, and issues it is named in
 * are dropped — the rules run again on the mapped record before it is released (docs/code-mapping.md
 * "Checked again when released").
 */
function ruleIssues(r: Resource, record: Record<string, unknown>, now: Date, pending: ReadonlySet<string>): FieldIssue[] {
  let input = record;
  if (pending.size) {
    input = { ...record };
    for (const k of pending) delete input[k];
  }
  return (r.rules ?? []).flatMap((rule) => rule(input as never, now)).filter((i) => !pending.has(i.field));
}

export function validateRecord(r: Resource, sent: Record<string, unknown>, now: Date, mapDomains?: DomainMapper): Validated {
  // A resource keyed by another field (baseDept: deptCode) gets its id from that field.
  const known = r.keyField && isBlank(sent.id) && r.keyField in sent ? { ...sent, id: sent[r.keyField] } : sent;
  const issues: FieldIssue[] = [];
  const lengthWarnings: FieldIssue[] = [];
  const record: Record<string, unknown> = {};
  for (const k of r.required) {
    if (!isBlank(known[k])) continue;
    const message =
      k === 'orgCode'
        ? "必填：记录未写机构代码，且上级记录、调用方绑定的机构和本前置的机构（FRONT_ORG_CODE）都不能确定 (orgCode is required: neither the record, its parent, the caller's binding nor the installation decides it)"
        : `必填 (${r.fields[k]!.label} is required)`;
    issues.push({ field: k, rule: 'required', message });
  }
  const shape = r.schema.shape as Record<string, z.ZodType>;
  const long = new Map<string, string>();
  for (const k in r.fields) {
    if (!(k in known)) continue;
    const def = r.fields[k]!;
    const res = shape[k]!.safeParse(known[k]);
    const local = !res.success && mapDomains && def.domain ? localCode(known[k], res.error) : null;
    if (local !== null) {
      record[k] = local;
      long.set(k, local);
    } else if (res.success) {
      if (res.data !== undefined) record[k] = res.data;
      if (def.warnAbove !== undefined && typeof res.data === 'string' && res.data.length > def.warnAbove) {
        lengthWarnings.push({
          field: k,
          rule: 'longerThanUsual',
          message: `长度 ${res.data.length} 超过常用长度 ${def.warnAbove}，已接收 (longer than the usual ${def.warnAbove} characters; accepted)`,
          value: show(res.data),
        });
      }
    } else if (!r.required.includes(k) || !isBlank(known[k])) {
      const first = res.error.issues[0]!;
      // A coded field's hospital code is refused only beyond the local codes' limit (localCode): say both limits.
      const message = mapDomains && def.domain && first.code === 'too_big' && def.max ? tooLongCode(def.max) : first.message;
      issues.push({ field: k, rule: ruleOf(first), message, value: mask(def.personal, show(known[k])) });
    }
  }
  const failed = new Set(issues.map((i) => i.field));
  const domains = mapDomains ? mapDomains(record) : { ...checkDomains(r.fields, record), pending: new Set<string>() };
  // A long hospital code the mapper neither mapped nor holds (nor refused) is still too long.
  for (const [k, v] of long) {
    const max = r.fields[k]!.max;
    if (record[k] === v && !domains.pending.has(k) && !domains.issues.some((i) => i.field === k))
      issues.push({ field: k, rule: 'maxLength', message: tooLong(max!), value: show(v) });
  }
  for (const i of domains.issues) if (!failed.has(i.field)) issues.push({ ...i, value: mask(r.fields[i.field]?.personal, i.value) });
  const warnings = [...lengthWarnings, ...domains.warnings.map((w) => ({ ...w, value: mask(r.fields[w.field]?.personal, w.value) }))];
  for (const i of ruleIssues(r, record, now, domains.pending)) {
    if (failed.has(i.field) && i.rule !== 'required') continue;
    issues.push({ ...i, value: mask(r.fields[i.field]?.personal, i.value) });
  }
  const unmappedLong = [...long.keys()].filter((k) => domains.pending.has(k));
  return issues.length ? { ok: false, issues, warnings } : { ok: true, record, warnings, unmappedLong };
}
