/**
 * Chinese name similarity for code mapping: suggestions (national candidates for a local code, so a
 * person confirms rather than searches) and the dangerous-gap check (an unmapped local diagnosis whose
 * name looks like a notifiable disease; docs/code-mapping.md).
 *
 * Chinese disease names are matched on characters, not words (no segmenter needed), and three things
 * carry most of the signal:
 *   - shared character bigrams and characters (Dice): 结核病 / 肺结核 share 结核;
 *   - containment: 手足口 in 手足口病, 出血热 in 流行性出血热;
 *   - abbreviation as a subsequence keeping the first character, the way Chinese clinical shorthand
 *     is formed: 乙肝 from 乙型病毒性肝炎, 流脑 from 流行性脑脊髓膜炎, 布病 from 布鲁氏菌病.
 * The score is the best of these, in [0, 1]. Names are folded first (NFKC: full-width to half-width,
 * lower case; brackets, punctuation and spaces dropped; 疑似/待查/？ qualifiers removed).
 * Very generic names (肺炎, 感染, 发热) match much by containment and mean little: capped.
 */
import { lists, notifiableDiseases } from '../../schemas/codes/lists.js';

const QUALIFIERS = /^(疑似|可疑|拟诊|考虑)|(待查|待排|可能|[?？]+)$/g;

/** 男(本院), 已婚（院内）, 幼托【本院】: brackets after NFKC (full-width ones are half-width then). */
const OWN_CODE_MARK = /[([【〔]\s*(?:本院|院内|院方|本地)\s*[)\]】〕]/g;

/** Folds a name for comparison: 乙型病毒性肝炎（慢性） → 乙型病毒性肝炎慢性; "疑似 手足口病?" → 手足口病. */
export function foldName(s: string): string {
  let t = s.normalize('NFKC').toLowerCase();
  // A hospital's own-code marker in brackets says nothing of the meaning: 男(本院) is 男.
  t = t.replace(OWN_CODE_MARK, '');
  t = t.replace(/[\s()[\]{}<>【】《》〈〉「」『』"'`“”‘’,，.。、;；:：!！·•\-_/\\|+*#~]/g, '');
  for (let i = 0; i < 2; i++) t = t.replace(QUALIFIERS, '');
  // Stages written three ways: Ⅱ期梅毒 (NFKC: ii期), 2期梅毒, 二期梅毒.
  t = t
    .replace(/(?:iii|3)期/g, '三期')
    .replace(/(?:ii|2)期/g, '二期')
    .replace(/(?:i|1)期/g, '一期');
  return t;
}

function bigrams(s: string): Set<string> {
  const out = new Set<string>();
  const a = [...s];
  for (let i = 0; i + 1 < a.length; i++) out.add(a[i]! + a[i + 1]!);
  return out;
}

function dice<T>(a: Set<T>, b: Set<T>): number {
  if (a.size === 0 || b.size === 0) return 0;
  let n = 0;
  for (const x of a) if (b.has(x)) n++;
  return (2 * n) / (a.size + b.size);
}

/** The shortest span of `long` holding `short` as a subsequence (greedy from each start), or null. */
function subsequenceSpan(short: string[], long: string[]): number | null {
  let best: number | null = null;
  for (let start = 0; start < long.length; start++) {
    if (long[start] !== short[0]) continue;
    let j = 1;
    let i = start + 1;
    for (; i < long.length && j < short.length; i++) if (long[i] === short[j]) j++;
    if (j === short.length && (best === null || i - start < best)) best = i - start;
  }
  return best;
}

/**
 * Standard clinical abbreviations (unambiguous ones only), expanded before comparing: a name is
 * compared as sent and expanded, and the better score counts. 出血热 is left out on purpose: it is
 * part of several diseases' names (流行性出血热, 埃博拉出血热).
 */
const ABBREVIATIONS: ReadonlyArray<[string, string]> = [
  ['甲型肝炎', '甲型病毒性肝炎'],
  ['乙型肝炎', '乙型病毒性肝炎'],
  ['丙型肝炎', '丙型病毒性肝炎'],
  ['丁型肝炎', '丁型病毒性肝炎'],
  ['戊型肝炎', '戊型病毒性肝炎'],
  ['甲肝', '甲型病毒性肝炎'],
  ['乙肝', '乙型病毒性肝炎'],
  ['丙肝', '丙型病毒性肝炎'],
  ['丁肝', '丁型病毒性肝炎'],
  ['戊肝', '戊型病毒性肝炎'],
  ['流脑', '流行性脑脊髓膜炎'],
  ['乙脑', '流行性乙型脑炎'],
  ['脊灰', '脊髓灰质炎'],
  ['布鲁菌病', '布鲁氏菌病'],
  ['布病', '布鲁氏菌病'],
  ['钩体病', '钩端螺旋体病'],
  ['菌痢', '细菌性痢疾'],
  ['流感', '流行性感冒'],
  ['新冠', '新型冠状病毒'],
  ['非典', '非典型肺炎'],
  ['手足口', '手足口病'],
  ['腮腺炎', '流行性腮腺炎'],
];

/** The name with its abbreviations expanded (folded input), or null when it has none. */
export function expandAbbreviations(folded: string): string | null {
  let t = folded;
  for (const [short, full] of ABBREVIATIONS) {
    if (t.includes(full) || !t.includes(short)) continue;
    t = t.split(short).join(full);
  }
  return t === folded ? null : t;
}

/** A folded name and its expanded form. */
function variants(folded: string): string[] {
  const e = expandAbbreviations(folded);
  return e ? [folded, e] : [folded];
}

function bestOf(a: string[], b: string[]): number {
  let best = 0;
  for (const x of a) for (const y of b) best = Math.max(best, similarityFolded(x, y));
  return best;
}

/** Names that contain others by accident of language, not of meaning. */
const GENERIC = new Set(['肺炎', '感染', '发热', '病毒感染', '细菌感染', '炎症', '疾病', '其他', '其它']);

/**
 * Folds a code for comparison: NFKC (full-width １ to 1), spaces dropped, upper case, and the leading
 * zeros of an all-digit code dropped (01 and 1 are the same number; a code with letters keeps its zeros).
 */
export function foldCode(s: string): string {
  const t = s.normalize('NFKC').replace(/\s+/g, '').toUpperCase();
  return /^\d+$/.test(t) ? t.replace(/^0+(?=\d)/, '') : t;
}

/** Similarity of two folded names, in [0, 1]. */
export function similarityFolded(a: string, b: string): number {
  if (a === '' || b === '') return 0;
  if (a === b) return 1;
  const ca = [...a];
  const cb = [...b];
  const [short, long] = ca.length <= cb.length ? [ca, cb] : [cb, ca];
  const shortS = short.join('');
  const longS = long.join('');
  const cover = short.length / long.length;
  let best = 0.6 * dice(bigrams(a), bigrams(b)) + 0.4 * dice(new Set(ca), new Set(cb));
  if (short.length >= 2 && longS.includes(shortS)) best = Math.max(best, 0.6 + 0.4 * cover);
  else if (short.length >= 2) {
    const span = subsequenceSpan(short, long);
    // 乙肝 in 乙型病毒性肝炎 (an abbreviation keeps the first character); 乙肝 in 慢性乙型肝炎 (close together).
    if (span !== null && short[0] === long[0]) best = Math.max(best, 0.5 + 0.4 * cover);
    else if (span !== null && span <= 2 * short.length) best = Math.max(best, 0.45 + 0.4 * cover);
  }
  // The same characters in another order: 梅毒二期 / 二期梅毒.
  if (ca.length === cb.length && [...ca].sort().join('') === [...cb].sort().join('')) best = Math.max(best, 0.9);
  if (GENERIC.has(shortS)) best = Math.min(best, 0.35);
  return best;
}

/** Similarity of two names as sent (folded first). */
export function nameSimilarity(a: string, b: string): number {
  return bestOf(variants(foldName(a)), variants(foldName(b)));
}

// ---- ranking candidates --------------------------------------------------------------------------

export interface NamedCode {
  code: string;
  name: string;
}

export interface Candidate extends NamedCode {
  score: number;
}

/**
 * An index over a national list: candidates share at least one character with the query, so a list of
 * tens of thousands (drugs) is not compared whole for every local code.
 */
export class NameIndex {
  private readonly folded: string[][];
  private readonly byChar = new Map<string, number[]>();

  private readonly codes: string[];

  constructor(readonly entries: readonly NamedCode[]) {
    this.folded = entries.map((e) => variants(foldName(e.name)));
    this.codes = entries.map((e) => foldCode(e.code));
    this.folded.forEach((f, i) => {
      for (const ch of new Set(f.join(''))) {
        let l = this.byChar.get(ch);
        if (!l) this.byChar.set(ch, (l = []));
        l.push(i);
      }
    });
  }

  /** The best `limit` entries for a local code and name, score ≥ minScore, best first. */
  search(name: string | null | undefined, code: string | null | undefined, limit = 5, minScore = 0.25): Candidate[] {
    const q = foldName(name ?? '');
    const scores = new Map<number, number>();
    if (q) {
      const qv = variants(q);
      const seen = new Set<number>();
      for (const ch of new Set(qv.join(''))) for (const i of this.byChar.get(ch) ?? []) seen.add(i);
      for (const i of seen) scores.set(i, bestOf(qv, this.folded[i]!));
    }
    // A local code equal to a national code is a hint, not a proof (hospitals reuse numbers); codes
    // are folded first, as names are (docs/code-mapping.md): １ is 1, 01 is 1.
    const c = code ? foldCode(code) : '';
    if (c) {
      this.codes.forEach((folded, i) => {
        if (folded === c) scores.set(i, Math.min(1, (scores.get(i) ?? 0) + 0.3));
      });
    }
    return [...scores]
      .filter(([, s]) => s >= minScore)
      .sort((x, y) => y[1] - x[1] || this.entries[x[0]]!.code.localeCompare(this.entries[y[0]]!.code))
      .slice(0, limit)
      .map(([i, s]) => ({ code: this.entries[i]!.code, name: this.entries[i]!.name, score: Math.round(s * 1000) / 1000 }));
  }
}

// ---- dangerous gaps ------------------------------------------------------------------------------

/** Names in the lists that stand for no disease (其它, 不明原因, the TB result sub-types). */
const NOT_A_DISEASE = new Set(['9898', '9899', '5000', '2605', '2606', '2607', '2608']);

interface DiseaseRef {
  /** The name matched (full name or NNDRS short name). */
  name: string;
  folded: string[];
  /** The disease as the notifiable table names it. */
  disease: string;
  nndrs: string | null;
}

interface IcdRule {
  from: string;
  to: string;
  /** A single code with a subcode ("A98.5"): a prefix match. */
  prefix: boolean;
  disease: string;
  nndrs: string | null;
}

const icdPattern = /([A-Z])(\d{2})(\.\d+)?(?:\s*-\s*([A-Z])(\d{2})(\.\d+)?)?/g;

/** The ICD-10 rules of notifiable_diseases.csv: "B15-B19", "U07.1; U07.2", "A22 (A22.0 …)". */
export function icdRules(): IcdRule[] {
  const out: IcdRule[] = [];
  for (const n of notifiableDiseases) {
    const nndrs = /^\d{4}/.exec(n.nndrs)?.[0] ?? null;
    for (const part of n.icd10.split(';')) {
      const head = part.split('(')[0] ?? '';
      for (const m of head.matchAll(icdPattern)) {
        const [, l1, d1, s1, l2, d2] = m;
        if (l2 && d2) out.push({ from: `${l1}${d1}`, to: `${l2}${d2}`, prefix: false, disease: n.name, nndrs });
        else if (s1) out.push({ from: `${l1}${d1}${s1}`, to: `${l1}${d1}${s1}`, prefix: true, disease: n.name, nndrs });
        else out.push({ from: `${l1}${d1}`, to: `${l1}${d1}`, prefix: false, disease: n.name, nndrs });
      }
    }
  }
  return out;
}

function diseaseRefs(): DiseaseRef[] {
  const refs: DiseaseRef[] = [];
  const byNndrs = new Map<string, string>();
  for (const n of notifiableDiseases) {
    const code = /^\d{4}/.exec(n.nndrs)?.[0] ?? null;
    if (code) byNndrs.set(code, n.name);
    refs.push({ name: n.name, folded: variants(foldName(n.name)), disease: n.name, nndrs: code });
  }
  for (const c of lists.nndrsDisease.codes) {
    if (NOT_A_DISEASE.has(c.code)) continue;
    refs.push({ name: c.name, folded: variants(foldName(c.name)), disease: byNndrs.get(c.code) ?? c.name, nndrs: c.code });
  }
  return refs;
}

export interface Danger {
  /** The notifiable disease the local code looks like. */
  disease: string;
  nndrs: string | null;
  /** 'name': by name similarity (score); 'icd10': the local code is an ICD-10 code of the disease. */
  by: 'name' | 'icd10';
  score: number;
  /** The national name that matched. */
  matched: string;
}

/** A local code and name scoring at least this against a notifiable disease is a dangerous gap. */
export const DANGER_THRESHOLD = 0.5;

let refsCache: DiseaseRef[] | undefined;
let rulesCache: IcdRule[] | undefined;

/**
 * Whether an unmapped local diagnosis looks like a notifiable disease: its code an ICD-10 code of one
 * (A15.001 → 肺结核), or its name similar to one (≥ DANGER_THRESHOLD). Null when neither.
 */
export function notifiableLookalike(localCode: string, localName: string | null | undefined): Danger | null {
  refsCache ??= diseaseRefs();
  rulesCache ??= icdRules();
  const code = localCode.normalize('NFKC').toUpperCase().replace(/\s/g, '');
  const icd = /^([A-Z]\d{2})(\.[0-9A-Z]+)?/.exec(code);
  if (icd) {
    const cat = icd[1]!;
    for (const r of rulesCache) {
      const hit = r.prefix ? code.startsWith(r.from) : cat >= r.from && cat <= r.to;
      if (hit)
        return { disease: r.disease, nndrs: r.nndrs, by: 'icd10', score: 1, matched: r.prefix ? r.from : r.from === r.to ? r.from : `${r.from}-${r.to}` };
    }
  }
  const q = foldName(localName ?? '');
  if (!q) return null;
  const qv = variants(q);
  let best: Danger | null = null;
  for (const r of refsCache) {
    const s = bestOf(qv, r.folded);
    if (s >= DANGER_THRESHOLD && (!best || s > best.score))
      best = { disease: r.disease, nndrs: r.nndrs, by: 'name', score: Math.round(s * 1000) / 1000, matched: r.name };
  }
  return best;
}
