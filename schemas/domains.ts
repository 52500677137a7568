/**
 * Value-domain checks (requirements §4, "value domains"): every field declared with `domain` must
 * hold a code of that national list (schemas/codes/lists.ts). Codes travel as `xxxCode` + `xxxName`
 * pairs; a name that disagrees with the list's name for the code is a warning (nameMismatch), not
 * an error — the code is what the platform reads, and HIS name spellings vary ("男" for "男性").
 */
import type { FieldIssue } from '../shared/http/errors.js';
import { lists, type CodeEntry, type DomainName } from './codes/lists.js';
import type { FieldMap } from './fields.js';

const index = new Map<DomainName, Map<string, CodeEntry>>();

/** The entry of `code` in the list, or undefined. */
export function lookup(domain: DomainName, code: string): CodeEntry | undefined {
  let m = index.get(domain);
  if (!m) {
    m = new Map((lists[domain].codes as readonly CodeEntry[]).map((c) => [c.code, c]));
    index.set(domain, m);
  }
  return m.get(code);
}

/** "性别代码 GB/T 2261.1": how a domain is named in messages. */
export function domainLabel(domain: DomainName): string {
  const l = lists[domain];
  return `${l.title} ${l.standard}`;
}

/** The name field paired with a code field: genderCode → genderName. */
export function nameFieldOf(codeField: string): string | null {
  return codeField.endsWith('Code') ? codeField.slice(0, -4) + 'Name' : null;
}

// Names are compared loosely: full- and half-width brackets, spaces, and one being a part of the
// other ("男" / "男性", "学生" / "学生（大中小学）") are not worth a warning.
const fold = (s: string) => s.replace(/[\s()（）]/g, '');
function sameName(sent: string, listed: string): boolean {
  const a = fold(sent);
  const b = fold(listed);
  return a === b || (a.length > 0 && (b.includes(a) || a.includes(b)));
}

/** A warning when the name sent beside code field `k` disagrees with the list's name for `code`. */
export function nameMismatch(
  fields: FieldMap,
  record: Record<string, unknown>,
  k: string,
  code: string,
  listed: string,
  domain: DomainName,
): FieldIssue | null {
  const nk = nameFieldOf(k);
  const name = nk ? record[nk] : undefined;
  if (!nk || !fields[nk] || typeof name !== 'string' || name === '' || sameName(name, listed)) return null;
  return {
    field: nk,
    rule: 'nameMismatch',
    message: `与代码 ${k}=${code} 的名称“${listed}”（${domainLabel(domain)}）不一致 (name disagrees with the list's name for code ${code})`,
    value: name,
  };
}

export interface DomainResult {
  issues: FieldIssue[];
  warnings: FieldIssue[];
}

/** Checks every field of `fields` that declares a domain, on a typed record. */
export function checkDomains(fields: FieldMap, record: Record<string, unknown>): DomainResult {
  const issues: FieldIssue[] = [];
  const warnings: FieldIssue[] = [];
  for (const k in fields) {
    const d = fields[k]!;
    if (!d.domain) continue;
    const v = record[k];
    if (typeof v !== 'string' || v === '') continue;
    const entry = lookup(d.domain, v);
    if (!entry) {
      issues.push({
        field: k,
        rule: 'domain',
        message: `不在值域 ${domainLabel(d.domain)} 中：${v} (not a code of ${lists[d.domain].title} ${lists[d.domain].standard}: ${v})`,
        value: v,
      });
      continue;
    }
    const w = nameMismatch(fields, record, k, v, entry.name, d.domain);
    if (w) warnings.push(w);
  }
  return { issues, warnings };
}
