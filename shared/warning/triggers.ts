/**
 * The trigger lists of the early-warning loop (docs/warning.md), as data: the statutory notifiable
 * diseases with their ICD-10 codes and report deadlines (schemas/codes/notifiable_diseases.csv), and
 * shared/warning/triggers.json — pathogen tests, special drugs, symptom drugs, free-text keywords.
 * The file is versioned; a hospital replaces it with its own (WARNING_TRIGGERS_FILE, the same shape),
 * validated here at start: a list that does not parse stops the function with the field named,
 * never runs half-loaded.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import builtIn from './triggers.json' with { type: 'json' };
import { notifiableDiseases } from '../../schemas/codes/lists.js';
import { unknownKeys } from '../config/every-object.js';
import { log } from '../log/index.js';

const Names = z.array(z.string().min(1)).min(1);
const diseaseNames = new Set(notifiableDiseases.map((d) => d.name));
const Disease = z.string().refine((n) => diseaseNames.has(n), { message: 'not a disease of notifiable_diseases.csv' });

// These schemas drop an unknown key (plain z.object): they read the shipped list, a hospital's file
// and the trigger list a bundle stored in config_active, any of which may come from a release with a
// key this one no longer has, and such a list must not stop the warning function at start; a
// hospital's file has its dropped keys named in a warning at start (a misspelt `windowDay` is told,
// not silent). A trigger list arriving in a configuration bundle is checked with every object strict
// instead (an unknown key refused, named: docs/config-bundles.md §1, shared/config/every-object.ts).
export const LabTrigger = z.object({
  id: z.string().min(1),
  disease: Disease,
  subtype: z.string().optional(),
  /** Substrings of the item's name (or its code, exactly, in `codes`). */
  names: Names,
  codes: z.array(z.string()).default([]),
  /** A quantitative value above this is positive (units as the lab reports them). */
  above: z.number().optional(),
  /** The reference flag "above range" (examinationQuantificationRi 2) counts as positive. */
  flagHigh: z.boolean().default(false),
  /** A screening test: a positive raises a case awaiting confirmation (待确诊), not a report prompt. */
  screening: z.boolean().default(false),
  /** Results older than this many days raise nothing (default: the list's windowDays). */
  windowDays: z.number().int().positive().optional(),
});

export const DrugTrigger = z.object({
  id: z.string().min(1),
  class: z.string().min(1),
  /** The disease a prescription without a matching diagnosis is suspected of. */
  suspect: Disease,
  subtype: z.string().optional(),
  names: Names,
  /** Diagnoses that explain the prescription (no case is raised when the patient has one). */
  matches: z.array(Disease).min(1),
});

export const SymptomDrugClass = z.object({
  class: z.enum(['antiviral', 'antibacterial', 'antipyretic']),
  title: z.string(),
  names: Names,
});

export const KeywordTrigger = z.object({
  id: z.string().min(1),
  disease: Disease,
  subtype: z.string().optional(),
  /** A severe syndrome the notice watches (不明原因肺炎, 不明原因死亡). */
  syndrome: z.string().optional(),
  terms: Names,
  /** Only these fields are read (default: every free-text field the resource has). */
  fields: z.array(z.string()).optional(),
  /** The clause must also name one of these (空洞 counts only on a lung: 肺). */
  context: z.array(z.string()).optional(),
});

export const TriggerSet = z.object({
  version: z.string().min(1),
  about: z.string().optional(),
  windowDays: z.number().int().positive().default(30),
  labTests: z.array(LabTrigger),
  specialDrugs: z.array(DrugTrigger),
  symptomDrugs: z.array(SymptomDrugClass),
  keywords: z.array(KeywordTrigger),
});
export type TriggerSet = z.infer<typeof TriggerSet>;
export type LabTrigger = z.infer<typeof LabTrigger>;
export type DrugTrigger = z.infer<typeof DrugTrigger>;
export type KeywordTrigger = z.infer<typeof KeywordTrigger>;

/** Text as matched: NFKC (full-width letters and brackets folded), lower case, no spaces. */
export const fold = (s: string): string => s.normalize('NFKC').toLowerCase().replace(/\s+/g, '');

function folded(set: TriggerSet): TriggerSet {
  const f = (a: string[]) => a.map(fold);
  return {
    ...set,
    labTests: set.labTests.map((t) => ({ ...t, names: f(t.names), codes: t.codes.map((c) => c.trim()) })),
    specialDrugs: set.specialDrugs.map((t) => ({ ...t, names: f(t.names) })),
    symptomDrugs: set.symptomDrugs.map((t) => ({ ...t, names: f(t.names) })),
    keywords: set.keywords.map((t) => ({ ...t, terms: f(t.terms), context: t.context && f(t.context) })),
  };
}

/** Parses a trigger list; throws naming each wrong field (path and rule). */
export function parseTriggers(json: unknown, source: string): TriggerSet {
  const r = TriggerSet.safeParse(json);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`trigger list ${source} is not valid: ${issues}`);
  }
  return folded(r.data);
}

/** The built-in list, or the file a hospital configured instead. */
export function loadTriggers(file?: string): TriggerSet {
  if (!file) return parseTriggers(builtIn, 'shared/warning/triggers.json');
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`trigger list ${file} cannot be read: ${(err as Error).message}`);
  }
  const set = parseTriggers(json, file);
  const dropped = unknownKeys(TriggerSet, json);
  if (dropped.length) log('warn', 'trigger list has keys this release does not know: ignored', { file, keys: dropped });
  return set;
}

// ---- notifiable diseases by ICD-10 ----------------------------------------------------------------

export interface NotifiableDisease {
  name: string;
  /** NNDRS exchange code (4 digits), when the list has one. */
  nndrs: string | null;
  /** 甲类, or managed as class A: reported within 2 hours. */
  classA: boolean;
  deadlineHours: number;
}

interface IcdRule {
  from: string;
  to: string;
  /** A code with its subcode ("A22.1") matches by prefix and wins over a category range. */
  prefix: boolean;
  disease: NotifiableDisease;
}

const icdPattern = /([A-Z])(\d{2})(\.\d+)?(?:\s*-\s*([A-Z])(\d{2})(\.\d+)?)?/g;
let icdRules: IcdRule[] | undefined;
const byName = new Map<string, NotifiableDisease>();

function diseaseOf(n: (typeof notifiableDiseases)[number]): NotifiableDisease {
  let d = byName.get(n.name);
  if (!d) {
    // "甲类 A", "乙类 B (按甲类管理)"; not "乙类 B (肺炭疽按甲类管理)", whose pulmonary form has its own row.
    const classA = n.class.startsWith('甲类') || n.class.includes('(按甲类管理)');
    d = { name: n.name, nndrs: /^\d{4}/.exec(n.nndrs)?.[0] ?? null, classA, deadlineHours: n.deadlineHours ?? (classA ? 2 : 24) };
    byName.set(n.name, d);
  }
  return d;
}

/** The notifiable disease of a name in notifiable_diseases.csv. */
export function notifiable(name: string): NotifiableDisease {
  const n = notifiableDiseases.find((x) => x.name === name);
  if (!n) throw new Error(`not a notifiable disease: ${name}`);
  return diseaseOf(n);
}

function rules(): IcdRule[] {
  if (icdRules) return icdRules;
  const out: IcdRule[] = [];
  for (const n of notifiableDiseases) {
    // What stands in brackets explains ("A22 (A22.0 cutaneous; A22.1 pulmonary)"): the subtypes
    // listed there have rows of their own where they matter (肺炭疽 A22.1).
    for (const head of n.icd10.replace(/\([^)]*\)/g, '').split(';')) {
      for (const m of head.matchAll(icdPattern)) {
        const [, l1, d1, s1, l2, d2] = m;
        const disease = diseaseOf(n);
        if (l2 && d2) out.push({ from: `${l1}${d1}`, to: `${l2}${d2}`, prefix: false, disease });
        else if (s1) out.push({ from: `${l1}${d1}${s1}`, to: `${l1}${d1}${s1}`, prefix: true, disease });
        else out.push({ from: `${l1}${d1}`, to: `${l1}${d1}`, prefix: false, disease });
      }
    }
  }
  // The most specific rule first: subcodes (longest first), then categories.
  out.sort((a, b) => Number(b.prefix) - Number(a.prefix) || b.from.length - a.from.length);
  return (icdRules = out);
}

/**
 * The notifiable disease an ICD-10 code belongs to, or null: the most specific rule wins
 * (A22.1 pulmonary anthrax, managed as class A, before A22 anthrax).
 */
export function diseaseByIcd10(code: string | null | undefined): NotifiableDisease | null {
  if (!code) return null;
  const c = code.normalize('NFKC').toUpperCase().replace(/\s/g, '');
  const m = /^([A-Z]\d{2})(\.[0-9A-Z]+)?/.exec(c);
  if (!m) return null;
  const cat = m[1]!;
  for (const r of rules()) {
    if (r.prefix ? c.startsWith(r.from) : cat >= r.from && cat <= r.to) return r.disease;
  }
  return null;
}
