/**
 * Finding a term in clinical free text the way a reader would (docs/warning.md "Negation"): the
 * text is cut into clauses at punctuation (，。；！？ and line ends; the enumeration comma 、 keeps a
 * list together), and a term is negated when a negation cue stands before it in its clause with no
 * term between them that ends the cue's scope (伴, 出现, 但, 可见, 考虑, 提示), or when a negative result
 * follows it in the clause (阴性, 未检出, (-)). "否认肝炎、结核病史" negates both; "无明显诱因出现发热"
 * does not negate 发热; "乙肝表面抗原阴性" negates 乙肝. A clause that speaks of the past (既往, …史)
 * is marked `history`: a known case, not a new one.
 */
import { fold } from './triggers.js';

const CUES = ['否认', '未见', '未发现', '未检出', '未闻及', '未提示', '排除', '除外', '不考虑', '不支持', '不伴', '无', '非'];
const ENDS = ['伴', '出现', '但', '可见', '考虑', '提示'];
const POST = ['阴性', '未检出', '(-)', '-)', '未见异常', '已排除', '可排除', '除外'];
const HISTORY = /既往|病史|史[，,。；;]?$|曾患|曾诊断/;

export interface Hit {
  term: string;
  /** The clause the term was found in (folded), for the evidence shown to a doctor. */
  clause: string;
  negated: boolean;
  history: boolean;
}

const clausesOf = (text: string): string[] =>
  fold(text)
    .split(/[，,。；;！!？?\n\r]+/)
    .filter(Boolean);

function negatedBefore(clause: string, at: number): boolean {
  const before = clause.slice(0, at);
  let cue = -1;
  for (const c of CUES) {
    const i = before.lastIndexOf(c);
    if (i >= 0 && i + c.length > cue) cue = i + c.length;
  }
  if (cue < 0) return false;
  const scope = before.slice(cue);
  return !ENDS.some((e) => scope.includes(e));
}

function negatedAfter(clause: string, end: number): boolean {
  const after = clause.slice(end);
  // A following term of its own starts a new finding ("乙肝阴性，梅毒阳性" is cut at the comma already).
  const positive = after.search(/阳性|检出(?!未)|\(\+\)/);
  const negative = Math.min(...POST.map((p) => after.indexOf(p)).filter((i) => i >= 0), Infinity);
  return negative !== Infinity && (positive < 0 || negative < positive);
}

/**
 * Every occurrence of one of `terms` (already folded) in `text`, with its negation; `context`
 * (folded) requires one of its words in the same clause.
 */
export function findTerms(text: string | null | undefined, terms: readonly string[], context?: readonly string[]): Hit[] {
  if (!text) return [];
  const out: Hit[] = [];
  for (const clause of clausesOf(text)) {
    if (context && !context.some((c) => clause.includes(c))) continue;
    for (const term of terms) {
      let from = 0;
      for (;;) {
        const at = clause.indexOf(term, from);
        if (at < 0) break;
        from = at + term.length;
        out.push({ term, clause, negated: negatedBefore(clause, at) || negatedAfter(clause, at + term.length), history: HISTORY.test(clause) });
      }
    }
  }
  return out;
}

/** Whether `name` (a lab item's, a drug's) contains one of `names` (folded). */
export const namesMatch = (name: string | null | undefined, names: readonly string[]): boolean => {
  if (!name) return false;
  const n = fold(name);
  return names.some((x) => n.includes(x));
};
