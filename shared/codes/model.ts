/**
 * The vocabulary of code mapping, shared by the data layer, the cache, the API and the CLI: zod
 * schemas for what crosses a boundary, and the one rule that decides how a value is read under a
 * policy (`resolve`), so the cache (ingest) and the completeness report can never disagree.
 */
import { z } from 'zod';
import { OrgCodeSchema } from '../http/auth.js';
import { isDomain } from './registry.js';

/** FHIR ConceptMap equivalence (R4 ConceptMapEquivalence, the subset that makes sense here). */
export const EQUIVALENCES = ['equal', 'equivalent', 'wider', 'narrower', 'unmatched'] as const;
export type Equivalence = (typeof EQUIVALENCES)[number];

/** 相同 / 等价 / 更宽 / 更窄 / 无对应: how the console and CSV files say them. */
export const EQUIVALENCE_ZH: Record<Equivalence, string> = {
  equal: '相同',
  equivalent: '等价',
  wider: '国家代码更宽',
  narrower: '国家代码更窄',
  unmatched: '无对应国家代码',
};

export const POLICIES = ['national', 'local', 'auto'] as const;
export type Policy = (typeof POLICIES)[number];
export const DEFAULT_POLICY: Policy = 'auto';

export const POLICY_ZH: Record<Policy, string> = {
  national: '院方发送国家代码（校验）',
  local: '院方发送本地代码（映射）',
  auto: '自动（国家代码保留，其余映射）',
};

export type LookupStatus = 'national' | 'mapped' | 'unmapped' | 'unknown';

export const DomainSchema = z
  .string({ error: '请填写值域 (domain required)' })
  .trim()
  .refine(isDomain, { error: '不是已登记的值域 (not one of the forty registered domains: see GET /api/codes/domains)' });

const blank = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);

// Every message bilingual, Chinese first, as the rest of the project's answers: an empty CSV cell
// arrives as undefined and would otherwise get zod's English default (docs/code-mapping.md, "CSV files").
export const LocalCodeSchema = z
  .string({ error: '本地代码不能为空 (local code required)' })
  .trim()
  .min(1, '本地代码不能为空 (local code required)')
  .max(100, '本地代码不能超过 100 个字符 (local code: at most 100 characters)');

/** An optional text field of a mapping: blank is absent; too long or not text is named in both languages. */
const optionalText = (zh: string, en: string, max: number) =>
  z.preprocess(
    blank,
    z
      .string({ error: `${zh}应为文本 (${en}: text)` })
      .trim()
      .max(max, `${zh}不能超过 ${max} 个字符 (${en}: at most ${max} characters)`)
      .optional(),
  );

const equivalenceInput = z.preprocess(
  (v) => {
    if (typeof v !== 'string') return v;
    const t = v.trim();
    const byZh = (Object.entries(EQUIVALENCE_ZH) as Array<[Equivalence, string]>).find(([, zh]) => zh === t)?.[0];
    return (
      byZh ?? ({ 相同: 'equal', 等价: 'equivalent', 更宽: 'wider', 更窄: 'narrower', 无对应: 'unmatched' } as Record<string, string>)[t] ?? t.toLowerCase()
    );
  },
  z.enum(EQUIVALENCES, { error: '对应关系应为 相同/等价/更宽/更窄/无对应 (equivalence: equal/equivalent/wider/narrower/unmatched)' }),
);

/** A mapping as the console, the API and CSV imports give it. */
export const MappingInputSchema = z
  .object({
    org: OrgCodeSchema,
    domain: DomainSchema,
    localCode: LocalCodeSchema,
    localName: optionalText('本地名称', 'local name', 250),
    nationalCode: optionalText('国家代码', 'national code', 50),
    equivalence: z.preprocess(blank, equivalenceInput.optional()),
    note: optionalText('备注', 'note', 500),
    /** The person making the change (操作人); the caller's name when not given. */
    madeBy: optionalText('操作人', 'made by', 100),
  })
  .transform((m, ctx) => {
    const equivalence: Equivalence = m.equivalence ?? (m.nationalCode ? 'equivalent' : 'unmatched');
    if (equivalence === 'unmatched' && m.nationalCode) {
      ctx.addIssue({ code: 'custom', path: ['nationalCode'], message: '“无对应”时不能填写国家代码 (unmatched takes no national code)' });
    }
    if (equivalence !== 'unmatched' && !m.nationalCode) {
      ctx.addIssue({ code: 'custom', path: ['nationalCode'], message: '请填写国家代码 (national code required unless unmatched)' });
    }
    return { ...m, equivalence, nationalCode: equivalence === 'unmatched' ? undefined : m.nationalCode };
  });
export type MappingInput = z.output<typeof MappingInputSchema>;

export const PolicyInputSchema = z.object({
  org: OrgCodeSchema,
  domain: DomainSchema,
  policy: z.enum(POLICIES, { error: '策略应为 national/local/auto' }),
  madeBy: z.preprocess(blank, z.string().trim().max(100).optional()),
});

/** Who made a change: the person, and the credential they came with. */
export interface Actor {
  by: string;
  via?: string;
}

/** What a mapping contributes to a lookup. */
export interface MapTarget {
  national: string | null;
  equivalence: Equivalence;
}

export interface Resolution {
  status: LookupStatus;
  /** The national code to send (national: the value itself; mapped: the mapping's target). */
  national?: string;
  /** Why a mapped value is still unmapped: reviewed as unmatched, or its target left the national list. */
  reason?: 'unmatched' | 'retiredTarget';
  equivalence?: Equivalence;
}

/**
 * How a value is read (docs/code-mapping.md):
 *   national — the value must be a current national code ('national'), else 'unknown';
 *   local    — the value is mapped ('mapped'), else 'unmapped';
 *   auto     — a current national code is kept ('national'), anything else mapped or 'unmapped'.
 * A mapping counts only when its target is a current national code and it is not 'unmatched'.
 */
export function resolve(policy: Policy, value: string, isNational: (code: string) => boolean, mapping: MapTarget | undefined): Resolution {
  if (policy !== 'local' && isNational(value)) return { status: 'national', national: value };
  if (policy === 'national') return { status: 'unknown' };
  if (!mapping) return { status: 'unmapped' };
  if (mapping.equivalence === 'unmatched' || mapping.national === null) return { status: 'unmapped', reason: 'unmatched', equivalence: 'unmatched' };
  if (!isNational(mapping.national)) return { status: 'unmapped', reason: 'retiredTarget', equivalence: mapping.equivalence };
  return { status: 'mapped', national: mapping.national, equivalence: mapping.equivalence };
}
