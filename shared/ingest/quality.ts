/**
 * Data-quality checks that warn rather than reject. Garbled text is common where a legacy HIS
 * database in GBK is read as UTF-8 (or the reverse) somewhere in an adapter: such text must be
 * flagged, never stored silently as good. Signs, each seen in real hospital feeds:
 *   - U+FFFD replacement characters, or "锟斤拷" (FFFD's UTF-8 bytes read back as GBK);
 *   - runs of "?" where a lossy conversion replaced characters it could not encode;
 *   - C1 controls or Latin-1 letters (UTF-8 bytes read as ISO-8859-1: "åäº¬");
 *   - UTF-8 bytes read as GBK: mostly rare characters ("鍖婚櫌" for "医院"). Everyday Chinese is
 *     overwhelmingly GB 2312 level-1 (3755 common characters); a text of four or more CJK
 *     characters, most of them outside level 1, is flagged. A short one (a name: "寮犱笁" for
 *     "张三") is flagged when undoing the mistake works: its GBK bytes are valid UTF-8 spelling
 *     common characters — a real name of rare characters does not turn into Chinese that way.
 */
import type { FieldIssue } from '../http/errors.js';

let level1: Set<string> | undefined;

/** GB 2312 level-1 characters (rows 16–55), decoded with the platform's GBK decoder. */
function commonHanzi(): Set<string> {
  if (level1) return level1;
  const set = new Set<string>();
  const d = new TextDecoder('gbk');
  for (let hi = 0xb0; hi <= 0xd7; hi++) {
    for (let lo = 0xa1; lo <= 0xfe; lo++) {
      const s = d.decode(Uint8Array.of(hi, lo));
      if (s.length === 1 && s !== '\ufffd') set.add(s);
    }
  }
  level1 = set;
  return set;
}

const CJK = /\p{Script=Han}/u;

let gbkBytes: Map<string, number[]> | undefined;

/** Each GBK double-byte character's bytes (the inverse of the platform's GBK decoder). */
function gbkEncoder(): Map<string, number[]> {
  if (gbkBytes) return gbkBytes;
  const m = new Map<string, number[]>();
  const d = new TextDecoder('gbk');
  for (let hi = 0x81; hi <= 0xfe; hi++) {
    for (let lo = 0x40; lo <= 0xfe; lo++) {
      if (lo === 0x7f) continue;
      const s = d.decode(Uint8Array.of(hi, lo));
      if (s.length === 1 && s !== '\ufffd' && !m.has(s)) m.set(s, [hi, lo]);
    }
  }
  gbkBytes = m;
  return m;
}

/** The text undone from "UTF-8 bytes read as GBK", when that yields valid UTF-8; else null. */
export function undoUtf8AsGbk(text: string): string | null {
  const enc = gbkEncoder();
  const bytes: number[] = [];
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x80) bytes.push(cp);
    else {
      const b = enc.get(ch);
      if (!b) return null;
      bytes.push(...b);
    }
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
  } catch {
    return null;
  }
}

const QUESTION_MARKS = 'characters replaced by "?"';
const NOT_ASCII = /[\u0080-\uffff]/;

export function garbledReason(text: string): string | null {
  // Plain ASCII (codes, numbers, dates: most fields) can only show runs of "?".
  if (!NOT_ASCII.test(text)) return /\?{3,}/.test(text) ? QUESTION_MARKS : null;
  if (text.includes('\ufffd')) return 'replacement character U+FFFD';
  if (text.includes('锟斤拷') || text.includes('烫烫烫') || text.includes('屯屯屯')) return 'double-converted bytes (锟斤拷)';
  if (/\?{3,}/.test(text)) return QUESTION_MARKS;
  const latin = text.match(/[\u0080-\u00ff]/g);
  if (latin && latin.length >= 2) return 'UTF-8 read as Latin-1';
  let han = 0;
  let rare = 0;
  const common = commonHanzi();
  for (const ch of text) {
    // No Han character is below U+2E80 (CJK Radicals Supplement): codes, dates and Latin text skip the test.
    if (ch.charCodeAt(0) < 0x2e80 || !CJK.test(ch)) continue;
    han++;
    if (!common.has(ch)) rare++;
  }
  if (han >= 4 && rare / han >= 0.5) return 'UTF-8 read as GBK (mostly rare characters)';
  // Short text (two or three characters: names): flagged only when the mistake can be undone into
  // common Chinese, which a genuine name of rare characters never can.
  if (han >= 2 && rare / han >= 0.5) {
    const undone = undoUtf8AsGbk(text);
    if (undone && undone !== text) {
      const chars = [...undone].filter((ch) => CJK.test(ch));
      if (chars.length > 0 && chars.every((ch) => common.has(ch))) return 'UTF-8 read as GBK (undoes into common Chinese)';
    }
  }
  return null;
}

/** Checks every string field of a validated record; the warnings name the field, never its text. */
export function qualityWarnings(record: Record<string, unknown>): FieldIssue[] {
  const out: FieldIssue[] = [];
  for (const k of Object.keys(record)) {
    const v = record[k];
    // One character is judged only when it is the replacement character: a name of bytes no charset decodes.
    if (typeof v !== 'string' || (v.length < 2 && v !== '\ufffd')) continue;
    const why = garbledReason(v);
    if (why) out.push({ field: k, rule: 'garbledText', message: `疑似乱码，请检查字符编码 (looks garbled: ${why})` });
  }
  return out;
}
