import { describe, expect, it } from 'vitest';
import { garbledReason, qualityWarnings } from '../../shared/ingest/quality.js';

const asGbk = (s: string) => new TextDecoder('gbk').decode(Buffer.from(s, 'utf8'));
const asLatin1 = (s: string) => Buffer.from(s, 'utf8').toString('latin1');

describe('garbled text', () => {
  it('passes ordinary Chinese clinical text, names with rare characters, and Latin text', () => {
    for (const s of ['北京市朝阳区人民医院检验科', '发热三天，伴咳嗽、咽痛', '王玥', '李琦琦', '新型冠状病毒核酸检测 阳性', 'ALT 45 U/L', 'Zhang San']) {
      expect(garbledReason(s), s).toBeNull();
    }
  });
  it('flags UTF-8 read as GBK, UTF-8 read as Latin-1, replacement characters and ??? runs', () => {
    expect(garbledReason(asGbk('北京市朝阳区人民医院'))).toMatch(/GBK/);
    expect(garbledReason(asLatin1('北京市'))).toMatch(/Latin-1/);
    expect(garbledReason('张\ufffd')).toMatch(/U\+FFFD/);
    expect(garbledReason('锟斤拷锟斤拷')).toMatch(/锟斤拷/);
    expect(garbledReason('患者???')).toMatch(/\?/);
  });
  it('names the field, not its content', () => {
    const w = qualityWarnings({ patientName: asGbk('张三丰大侠'), genderCode: '1' });
    expect(w).toEqual([expect.objectContaining({ field: 'patientName', rule: 'garbledText' })]);
    expect(JSON.stringify(w)).not.toContain(asGbk('张三丰大侠'));
  });
});
