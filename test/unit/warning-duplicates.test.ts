// The duplicate-card rules' pieces (shared/warning/duplicates.ts; docs/warning.md "Duplicate cards").
import { describe, expect, it } from 'vitest';
import { isChronic, levelOf, personKey, sameDisease } from '../../shared/warning/duplicates.js';
import { keysOf, Pii, pii } from '../../shared/pii/index.js';

describe('who a record is', () => {
  const base = {
    patientName: '张三',
    genderCode: '1',
    nultitudeTypeCode: '18',
    birthDate: '1975-04-11',
    currentAddrCode: '440106001',
    currentAddrDetail: '某路1号',
  };
  it('by a real resident ID number, whatever else differs', () => {
    const a = personKey({ ...base, idCardTypeCode: '01', idCard: '440106197504117630' });
    const b = personKey({ patientName: '張三', idCardTypeCode: '01', idCard: '440106197504117630' });
    // By the ID number's HMAC-SM3 (shared/pii), never the number itself.
    const h = pii().hash('idno', '440106197504117630');
    expect(a).toEqual({ by: 'id', key: `id:${h}`, idHash: h });
    expect(JSON.stringify(a)).not.toContain('440106197504117630');
    expect(b?.key).toBe(a?.key);
    expect(personKey({ ...base, idCard: '44010619750411763x' })?.key).toBe(`id:${pii().hash('idno', '44010619750411763X')}`);
    expect(personKey({ ...base, idCard: '440106197504117631' })?.key).not.toBe(a?.key);
  });

  it('claims no match on a stored value that cannot be opened (its key id is not in the key file)', () => {
    const other = new Pii(() => keysOf({ current: 'k9', keys: [{ id: 'k9', key: Buffer.alloc(16, 9).toString('base64') }] }, Buffer.alloc(32, 1), 'test'));
    expect(personKey({ idCardTypeCode: '01', idCard: other.seal('440106197504117630') })).toBeNull();
    expect(personKey({ ...base, idCardTypeCode: '01', idCard: other.seal('440106197504117630') })?.by).toBe('person');
  });

  it('the same from a stored record, its ID number and address sealed', () => {
    const clear = { ...base, idCardTypeCode: '01', idCard: '440106197504117630' };
    expect(personKey({ ...clear, idCard: pii().seal(clear.idCard) })).toEqual(personKey(clear));
    const noId = { ...base, idCardTypeCode: '01', idCard: '00000000000000000X' };
    expect(personKey({ ...noId, idCard: pii().seal(noId.idCard), currentAddrDetail: pii().seal(base.currentAddrDetail) })).toEqual(personKey(noId));
  });

  it('the same from a stored record whose name is sealed too, or stored clear before migration 0990', () => {
    const noId = { ...base, idCardTypeCode: '01', idCard: '00000000000000000X' };
    const want = personKey(noId);
    expect(want).toMatchObject({ by: 'person', name: '张三', nameHash: pii().hash('name', '张三') });
    expect(personKey({ ...noId, patientName: pii().seal(base.patientName), currentAddrDetail: pii().seal(base.currentAddrDetail) })).toEqual(want);
    // The name as its lookup hash reads it: a space typed inside it, or full-width forms, are the same name.
    expect(personKey({ ...noId, patientName: '张 三' })?.key).toBe(want?.key);
    expect(JSON.stringify(personKey({ ...noId, patientName: pii().seal('张三') }))).not.toContain('sm4:');
  });

  it('claims no match on a sealed name that cannot be opened (its key id is not in the key file)', () => {
    const other = new Pii(() => keysOf({ current: 'k9', keys: [{ id: 'k9', key: Buffer.alloc(16, 9).toString('base64') }] }, Buffer.alloc(32, 1), 'test'));
    expect(personKey({ ...base, patientName: other.seal(base.patientName) })).toBeNull();
  });

  it('without one (or the "unknown" placeholder, or another document): name, sex, population, birth date, address', () => {
    const p = personKey({ ...base, idCardTypeCode: '01', idCard: '00000000000000000X' });
    expect(p?.by).toBe('person');
    expect(personKey({ ...base, idCardTypeCode: '03', idCard: 'E12345678' })?.key).toBe(p?.key);
    expect(personKey({ ...base })?.key).toBe(p?.key);
    for (const change of [
      { patientName: '张四' },
      { genderCode: '2' },
      { nultitudeTypeCode: '3' },
      { birthDate: '1975-04-12' },
      { currentAddrDetail: '某路2号' },
    ]) {
      expect(personKey({ ...base, ...change })?.key, JSON.stringify(change)).not.toBe(p?.key);
    }
    // Anything missing: no claim that two records are one person.
    expect(personKey({ ...base, birthDate: '' })).toBeNull();
    expect(personKey({ ...base, currentAddrCode: '', currentAddrDetail: '' })).toBeNull();
  });
});

describe('diseases and levels', () => {
  it('a subtype and its family parent are one disease; two subtypes are not', () => {
    expect(sameDisease('0302', '0300')).toBe(true);
    expect(sameDisease('0300', '0302')).toBe(true);
    expect(sameDisease('0301', '0302')).toBe(false);
    expect(sameDisease('2606', '2600')).toBe(true);
    expect(sameDisease('0200', '0200')).toBe(true);
    expect(sameDisease('0200', null)).toBe(false);
  });

  it('chronic: tuberculosis, AIDS/HIV, hepatitis B and C, schistosomiasis; not hepatitis A', () => {
    for (const c of ['2600', '2606', '0600', '0601', '0302', '0303', '3100']) expect(isChronic(c), c).toBe(true);
    for (const c of ['0301', '0304', '0200', '0100', null]) expect(isChronic(c), String(c)).toBe(false);
  });

  it('diagnosis levels: 确诊 > 临床诊断 > 阳性检测/携带者 > 疑似 > 留观', () => {
    expect(['2', '1', '5', '3', '6'].map(levelOf)).toEqual([5, 4, 3, 2, 1]);
    expect(levelOf('4')).toBe(levelOf('5'));
    expect(levelOf(undefined)).toBe(0);
  });
});
