/**
 * Data-quality checks that warn rather than reject. Garbled text is common where a legacy HIS
 * database in GBK is read as UTF-8 (or the reverse) somewhere in an adapter: such text must be
 * flagged, never stored silently as good. Signs, each seen in real hospital feeds:
 *   - U+FFFD replacement characters, or "锟斤拷" (FFFD's UTF-8 bytes read back as GBK);
 *   - runs of "?" where a lossy conversion replaced characters it could not encode;
 *   - C1 controls or Latin-1 letters (UTF-8 bytes read as ISO-8859-1: "åäº¬");
 *   - UTF-8 bytes read as GBK: mostly rare characters ("鍖婚櫌" for "医院"). Everyday Chinese is
 *     overwhelmingly GB 2312 level-1 (3755 common characters); a text of four or more CJK
 *     characters, most of them outside level 1, is flagged.
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

export function garbledReason(text: string): string | null {
  if (text.includes('\ufffd')) return 'replacement character U+FFFD';
  if (text.includes('锟斤拷') || text.includes('烫烫烫') || text.includes('屯屯屯')) return 'double-converted bytes (锟斤拷)';
  if (/\?{3,}/.test(text)) return 'characters replaced by "?"';
  const latin = text.match(/[\u0080-\u00ff]/g);
  if (latin && latin.length >= 2) return 'UTF-8 read as Latin-1';
  let han = 0;
  let rare = 0;
  const common = commonHanzi();
  for (const ch of text) {
    if (!CJK.test(ch)) continue;
    han++;
    if (!common.has(ch)) rare++;
  }
  if (han >= 4 && rare / han >= 0.5) return 'UTF-8 read as GBK (mostly rare characters)';
  return null;
}

/** Checks every string field of a validated record; the warnings name the field, never its text. */
export function qualityWarnings(record: Record<string, unknown>): FieldIssue[] {
  const out: FieldIssue[] = [];
  for (const [k, v] of Object.entries(record)) {
    if (typeof v !== 'string' || v.length < 2) continue;
    const why = garbledReason(v);
    if (why) out.push({ field: k, rule: 'garbledText', message: `疑似乱码，请检查字符编码 (looks garbled: ${why})` });
  }
  return out;
}
