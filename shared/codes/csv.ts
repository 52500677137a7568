/**
 * CSV as hospital staff exchange it with Excel. Reading accepts what Excel on a Chinese Windows
 * writes: UTF-8 with or without BOM, GBK/GB18030 ("CSV (逗号分隔)" is saved in the ANSI code page,
 * 936), and UTF-16 with BOM ("Unicode 文本", tab-separated). Writing gives UTF-8 with a BOM (without
 * it Excel reads UTF-8 as GBK and shows mojibake) and CRLF line ends.
 *
 * Cells that Excel would run as a formula (starting = + - @, tab or CR: CSV injection, OWASP) are
 * written with a leading apostrophe, and the apostrophe is removed again on reading, so a round trip
 * gives back the same text.
 */

export type Encoding = 'utf-8' | 'gbk' | 'utf-16le' | 'utf-16be';

/** Decodes a file's bytes: BOM first, then strict UTF-8, else GBK (TextDecoder 'gbk' is GB18030). */
export function decodeText(bytes: Uint8Array): { text: string; encoding: Encoding } {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    return { text: new TextDecoder('utf-8').decode(bytes.subarray(3)), encoding: 'utf-8' };
  }
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return { text: new TextDecoder('utf-16le').decode(bytes.subarray(2)), encoding: 'utf-16le' };
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return { text: new TextDecoder('utf-16be').decode(bytes.subarray(2)), encoding: 'utf-16be' };
  try {
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(bytes), encoding: 'utf-8' };
  } catch {
    return { text: new TextDecoder('gbk').decode(bytes), encoding: 'gbk' };
  }
}

/** RFC 4180 rows (quoted fields, doubled quotes, CRLF or LF); the delimiter is guessed from the first line. */
export function parseCsv(text: string, delimiter?: string): string[][] {
  const firstLine = text.slice(0, text.search(/\r|\n|$/));
  const sep = delimiter ?? (firstLine.split('\t').length > firstLine.split(',').length ? '\t' : ',');
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"' && cell === '') quoted = true;
    else if (c === sep) {
      row.push(unguard(cell));
      cell = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(unguard(cell));
      rows.push(row);
      row = [];
      cell = '';
    } else cell += c;
  }
  if (cell !== '' || row.length) {
    row.push(unguard(cell));
    rows.push(row);
  }
  return rows.filter((r) => r.some((c) => c.trim() !== ''));
}

const FORMULA = /^[=+\-@\t\r]/;

function guard(v: string): string {
  return FORMULA.test(v) ? `'${v}` : v;
}

function unguard(v: string): string {
  return v.startsWith("'") && FORMULA.test(v.slice(1)) ? v.slice(1) : v;
}

function cell(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return '';
  const s = guard(String(v));
  return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** A CSV file for Excel: UTF-8 BOM, CRLF. */
export function writeCsv(header: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number | null | undefined>>): string {
  return '\uFEFF' + [header, ...rows].map((r) => r.map(cell).join(',')).join('\r\n') + '\r\n';
}

/**
 * Rows as records keyed by the canonical column names. A header cell matches a column by its key
 * (local_code), its Chinese label (本地代码), or "label(key)" as this project writes them.
 */
export function records<K extends string>(
  rows: string[][],
  columns: Record<K, readonly string[]>,
): { records: Array<{ line: number; values: Partial<Record<K, string>> }>; unknownHeaders: string[]; missing: K[] } {
  const [head, ...body] = rows;
  const norm = (s: string) => s.normalize('NFKC').trim().toLowerCase().replace(/\s+/g, '');
  const index = new Map<K, number>();
  const unknownHeaders: string[] = [];
  (head ?? []).forEach((h, i) => {
    const n = norm(h);
    const inParens = /\(([a-z_]+)\)$/.exec(n)?.[1];
    const key = (Object.keys(columns) as K[]).find(
      (k) => n === k || inParens === k || columns[k].some((alias) => norm(alias) === n || n.startsWith(norm(alias) + '(')),
    );
    if (key && !index.has(key)) index.set(key, i);
    else if (h.trim()) unknownHeaders.push(h);
  });
  const missing = (Object.keys(columns) as K[]).filter((k) => !index.has(k));
  return {
    records: body.map((r, j) => {
      const values: Partial<Record<K, string>> = {};
      for (const [k, i] of index) {
        const v = r[i]?.trim();
        if (v !== undefined && v !== '') values[k] = v;
      }
      return { line: j + 2, values };
    }),
    unknownHeaders,
    missing,
  };
}
