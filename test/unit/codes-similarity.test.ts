// Suggestions and dangerous gaps rest on Chinese name similarity (shared/codes/similarity.ts):
// realistic pairs of hospital and national names, and names that must not look notifiable.
import { describe, expect, it } from 'vitest';
import { lists } from '../../schemas/codes/lists.js';
import { DANGER_THRESHOLD, NameIndex, foldName, nameSimilarity, notifiableLookalike } from '../../shared/codes/similarity.js';

const nndrs = new NameIndex(lists.nndrsDisease.codes.map((c) => ({ code: c.code, name: c.name })));
const top = (name: string) => nndrs.search(name, null, 3)[0];

describe('name similarity on realistic pairs', () => {
  it.each([
    ['乙型病毒性肝炎', '乙肝'],
    ['肺结核', '结核病'],
    ['手足口病', '手足口'],
    ['流行性脑脊髓膜炎', '流脑'],
    ['布鲁氏菌病', '布病'],
    ['细菌性痢疾', '菌痢'],
    ['新型冠状病毒感染', '新冠病毒感染'],
    ['慢性乙型肝炎', '乙肝'],
  ])('%s ~ %s', (a, b) => {
    expect(nameSimilarity(a, b)).toBeGreaterThanOrEqual(0.55);
    expect(nameSimilarity(b, a)).toBe(nameSimilarity(a, b));
  });

  it.each([
    ['高血压', '乙肝'],
    ['肺炎', '不明原因肺炎'],
    ['2型糖尿病', '登革热'],
    ['骨折', '鼠疫'],
  ])('%s is not %s', (a, b) => {
    expect(nameSimilarity(a, b)).toBeLessThan(0.4);
  });

  it('folds width, brackets, spaces and qualifiers', () => {
    expect(foldName('疑似 手足口病（普通型）？')).toBe('手足口病普通型');
    expect(foldName('ＨＩＶ感染')).toBe('hiv感染');
    expect(nameSimilarity('肝炎(未分型)', '肝炎（未分型）')).toBe(1);
  });

  it('drops a hospital’s own-code marker in brackets — 男(本院), 已婚（院内） — and nothing else of the name', () => {
    expect(foldName('男(本院)')).toBe('男');
    expect(foldName('已婚（院内）')).toBe('已婚');
    expect(foldName('幼托 【本院】')).toBe('幼托');
    expect(foldName('本院职工体检')).toBe('本院职工体检');
    const sex = new NameIndex(lists.sex.codes.map((c) => ({ code: c.code, name: c.name })));
    expect(sex.search('男(本院)', 'M9', 1)).toEqual([expect.objectContaining({ code: '1', name: '男性' })]);
  });
});

describe('suggestions from the NNDRS disease list', () => {
  it.each([
    ['乙型病毒性肝炎', '0302'],
    ['结核病', '2600'],
    ['手足口', '4000'],
    ['菌痢', '0401'],
    ['流感', '3500'],
    ['流行性腮腺炎', '3600'],
    ['布鲁菌病', '1800'],
    ['梅毒（二期）', '0802'],
  ])('%s → %s first', (name, code) => {
    expect(top(name)?.code).toBe(code);
  });

  it('ranks best first, scores in (0, 1], and a local code equal to a national one helps', () => {
    const s = nndrs.search('病毒性肝炎', null, 5);
    expect(s[0]).toMatchObject({ code: '0300', score: 1 });
    expect(s.map((c) => c.score)).toEqual([...s.map((c) => c.score)].sort((a, b) => b - a));
    expect(nndrs.search('其他', '9899', 1)[0]?.code).toBe('9899');
    expect(nndrs.search('', null)).toEqual([]);
  });
});

describe('a local code equal to a national code, folded (docs/code-mapping.md, suggestions)', () => {
  const index = (d: 'sex' | 'activityType' | 'ethnicity') => new NameIndex(lists[d].codes.map((c) => ({ code: c.code, name: c.name })));
  it.each([
    ['sex', '１', '1'], // full-width digit (NFKC)
    ['sex', ' 2 ', '2'],
    ['activityType', '01', '1'], // a leading zero
    ['activityType', '０１', '1'],
    ['ethnicity', '1', '01'], // the national code has the zero
  ] as const)('%s %j suggests %s with no name', (domain, local, national) => {
    expect(index(domain).search(null, local, 1)).toEqual([expect.objectContaining({ code: national, score: 0.3 })]);
  });

  it('letters are not digits: no zero is dropped from a code with letters, and other codes stay apart', () => {
    expect(index('sex').search(null, '10', 5)).toEqual([]);
    expect(index('sex').search(null, 'M1', 5)).toEqual([]);
  });
});

describe('dangerous gaps: an unmapped local diagnosis that looks like a notifiable disease', () => {
  it.each([
    ['乙型病毒性肝炎', '0302'],
    ['继发性肺结核', '2600'],
    ['手足口', '4000'],
    ['慢性乙型肝炎', '0302'],
    ['HIV感染', '0601'],
    ['新冠病毒感染', '5300'],
    ['甲型H1N1流感', '3500'],
    ['感染性腹泻', '3900'],
    ['水痘', '9811'],
  ])('%s is flagged (%s)', (name, nndrsCode) => {
    const d = notifiableLookalike('L-001', name);
    expect(d?.nndrs).toBe(nndrsCode);
    expect(d!.score).toBeGreaterThanOrEqual(DANGER_THRESHOLD);
  });

  it.each(['高血压', '2型糖尿病', '冠心病', '急性阑尾炎', '肺炎', '社区获得性肺炎', '急性上呼吸道感染', '骨折', '脑梗死', '带状疱疹', '其他'])(
    '%s is not flagged',
    (name) => {
      expect(notifiableLookalike('L-002', name)).toBeNull();
    },
  );

  it('an ICD-10 code of a notifiable disease is flagged whatever the name says', () => {
    expect(notifiableLookalike('A15.001', '其他')).toMatchObject({ by: 'icd10', disease: '肺结核', matched: 'A15-A16' });
    expect(notifiableLookalike('b16.9', null)).toMatchObject({ by: 'icd10', disease: '病毒性肝炎' });
    expect(notifiableLookalike('A98.5', '')).toMatchObject({ by: 'icd10', disease: '流行性出血热' });
    expect(notifiableLookalike('A98.4', '')).toMatchObject({ by: 'icd10', disease: '埃博拉出血热' });
    expect(notifiableLookalike('I10', '高血压')).toBeNull();
  });
});
