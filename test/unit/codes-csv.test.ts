// CSV as hospital staff exchange it with Excel (shared/codes/csv.ts): UTF-8 with BOM out; UTF-8,
// GBK and UTF-16 in; formula cells guarded both ways; Chinese or English headers.
import { describe, expect, it } from 'vitest';
import { decodeText, parseCsv, records, writeCsv } from '../../shared/codes/csv.js';
import { MAPPING_COLUMNS, exportHeader } from '../../shared/codes/store.js';

// "值域,本地代码,本地名称,国家代码\r\ndiagnosis,L01,乙型病毒性肝炎,0302\r\n" as Excel saves it on a
// Chinese Windows ("CSV (逗号分隔)", code page 936), bytes from Python's gbk codec.
const GBK_HEX = 'd6b5d3f22cb1beb5d8b4fac2eb2cb1beb5d8c3fbb3c62cb9fabcd2b4fac2eb0d0a646961676e6f7369732c4c30312cd2d2d0cdb2a1b6bed0d4b8ced1d72c303330320d0a';

describe('decoding', () => {
  it('reads GBK (Excel on a Chinese Windows) by falling back from strict UTF-8', () => {
    const { text, encoding } = decodeText(Buffer.from(GBK_HEX, 'hex'));
    expect(encoding).toBe('gbk');
    expect(parseCsv(text)).toEqual([
      ['值域', '本地代码', '本地名称', '国家代码'],
      ['diagnosis', 'L01', '乙型病毒性肝炎', '0302'],
    ]);
  });

  it('reads UTF-8 with and without BOM, and UTF-16LE with BOM (Unicode text, tab-separated)', () => {
    expect(decodeText(Buffer.from('\uFEFF乙肝', 'utf8'))).toEqual({ text: '乙肝', encoding: 'utf-8' });
    expect(decodeText(Buffer.from('乙肝', 'utf8'))).toEqual({ text: '乙肝', encoding: 'utf-8' });
    const u16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('a\tb\r\n乙\t肝\r\n', 'utf16le')]);
    const { text, encoding } = decodeText(u16);
    expect(encoding).toBe('utf-16le');
    expect(parseCsv(text)).toEqual([
      ['a', 'b'],
      ['乙', '肝'],
    ]);
  });
});

describe('writing and reading back', () => {
  it('writes a BOM and CRLF, quotes what needs it, and guards formulas; reading gives the same cells', () => {
    const rows = [
      ['L,1', '名称 "引号"', '=HYPERLINK("x")', '-1', ' lead'],
      ['L2', '多行\n名称', '@SUM(A1)', '+86', ''],
    ];
    const out = writeCsv(['a', 'b', 'c', 'd', 'e'], rows);
    expect(out.startsWith('\uFEFFa,b,c,d,e\r\n')).toBe(true);
    expect(out).toContain(`"'=HYPERLINK(""x"")"`);
    const back = parseCsv(decodeText(Buffer.from(out, 'utf8')).text);
    expect(back.slice(1)).toEqual(rows.map((r) => r.map((c) => c)));
  });

  it('matches headers by key, Chinese label or "label(key)", and reports the rest', () => {
    const rows = parseCsv(`${exportHeader().join(',')},多余\ndiagnosis,L01,乙肝,0302,乙肝,equal,,,,x\n`);
    const r = records(rows, MAPPING_COLUMNS);
    expect(r.missing).toEqual([]);
    expect(r.unknownHeaders).toEqual(['多余']);
    expect(r.records[0]).toEqual({
      line: 2,
      values: { domain: 'diagnosis', local_code: 'L01', local_name: '乙肝', national_code: '0302', national_name: '乙肝', equivalence: 'equal' },
    });
    const zh = records(parseCsv('值域,本地代码,国家代码\nsex,M,1\n'), MAPPING_COLUMNS);
    expect(zh.records[0]?.values).toEqual({ domain: 'sex', local_code: 'M', national_code: '1' });
  });
});
