// cdc-codes (infra/codes/cli.ts) against the real database: a national list that is not public
// loaded from a GBK file, mappings imported and exported as CSV (the same mappings back), the
// completeness summary, and usage errors. National lists are global: this file imports only 'examCategory'.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { databaseUrl, testDb, uniqueOrg } from '../setup/db.js';
import { main, parseCommand, UsageError } from '../../infra/codes/cli.js';
import { listMappings, nationalCodes } from '../../shared/codes/store.js';

process.env.DATABASE_URL = databaseUrl();
const db = testDb();
const dir = mkdtempSync(join(tmpdir(), 'cdc-codes-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = process.stdout.write.bind(process.stdout);
  const e = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
  try {
    return { code: await main(argv), out, err };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
  }
}

describe('cdc-codes', () => {
  it('import-national loads a GBK list as a new version of a domain', async () => {
    // "代码,名称\r\nCT,计算机断层扫描\r\nDR,数字X线摄影\r\n" in GBK.
    const file = join(dir, 'exam.csv');
    writeFileSync(file, Buffer.from('b4fac2eb2cc3fbb3c60d0a43542cbcc6cbe3bbfab6cfb2e3c9a8c3e80d0a44522ccafdd7d658cfdfc9e3d3b00d0a', 'hex'));
    const r = await cli('import-national', '--domain', 'examCategory', '--file', file, '--version', 'CLI-1');
    expect(r.err).toBe('');
    expect(r).toMatchObject({ code: 0 });
    expect(r.out).toContain('loaded 2 codes into examCategory as version CLI-1');
    expect((await nationalCodes(db, 'examCategory')).map((c) => `${c.code}=${c.name}`)).toEqual(['CT=计算机断层扫描', 'DR=数字X线摄影']);
  });

  it('import-mappings, export-mappings: the same mappings come back; completeness summarises', async () => {
    const org = uniqueOrg();
    const src = join(dir, 'in.csv');
    writeFileSync(src, '值域,本地代码,本地名称,国家代码,对应关系\nsex,M,男,1,相同\nexamCategory,CT01,CT平扫,CT,narrower\nsex,U,,,\n');
    const imp = await cli('import-mappings', '--org', org, '--file', src, '--by', '信息科王');
    expect(imp.out).toContain('2 created, 0 updated, 0 unchanged, 1 skipped');
    const out = join(dir, 'out.csv');
    expect((await cli('export-mappings', '--org', org, '--out', out)).out).toContain('wrote 2 rows');
    const text = readFileSync(out, 'utf8');
    expect(text.startsWith('\uFEFF值域(domain),本地代码(local_code)')).toBe(true);
    const before = (await listMappings(db, org)).map((m) => [m.domain, m.localCode, m.nationalCode, m.equivalence, m.madeBy]);
    expect(before).toEqual([
      ['examCategory', 'CT01', 'CT', 'narrower', '信息科王'],
      ['sex', 'M', '1', 'equal', '信息科王'],
    ]);
    // Into another org from the exported file: identical mappings.
    const org2 = uniqueOrg();
    expect((await cli('import-mappings', '--org', org2, '--file', out, '--by', '信息科王')).code).toBe(0);
    expect((await listMappings(db, org2)).map((m) => [m.domain, m.localCode, m.nationalCode, m.equivalence, m.madeBy])).toEqual(before);
    const c = await cli('completeness', '--org', org);
    expect(c.out).toMatch(/^org \d+: \d+\/40 domains without gaps/);
    expect(c.out).toContain('unknown37');
  });

  it('import-national names the codes it drops that mappings still point at', async () => {
    const org = uniqueOrg();
    const src = join(dir, 'ct.csv');
    writeFileSync(src, 'domain,local_code,national_code\nexamCategory,CT01,CT\n');
    expect((await cli('import-mappings', '--org', org, '--file', src)).code).toBe(0);
    const dr = join(dir, 'dr.csv');
    writeFileSync(dr, 'code,name\nDR,数字X线摄影\n');
    const r = await cli('import-national', '--domain', 'examCategory', '--file', dr, '--version', 'CLI-2');
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toMatch(/^warning: examCategory: 1 code\(s\) mappings point at are no longer on the list: CT \(\d+ mappings: /m);
    expect(r.out).toContain(`${org} ×1`);
    const both = join(dir, 'both.csv');
    writeFileSync(both, 'code,name\nCT,计算机断层扫描\nDR,数字X线摄影\n');
    const back = await cli('import-national', '--domain', 'examCategory', '--file', both, '--version', 'CLI-3');
    expect(back.out).toContain('loaded 2 codes into examCategory as version CLI-3');
    expect(back.out).not.toContain('warning');
    // The same version imported again without CT: its rows are replaced, not closed, and it is said the same.
    const again = await cli('import-national', '--domain', 'examCategory', '--file', dr, '--version', 'CLI-3');
    expect(again.out).toContain(`${org} ×1`);
    expect((await cli('import-national', '--domain', 'examCategory', '--file', both, '--version', 'CLI-3')).out).not.toContain('warning');
  });

  it('a bad file fails with exit 1 and lists the errors; bad arguments exit 2', async () => {
    const src = join(dir, 'bad.csv');
    writeFileSync(src, 'domain,local_code,national_code\nsex,A,7\n');
    const r = await cli('import-mappings', '--org', uniqueOrg(), '--file', src);
    expect(r.code).toBe(1);
    expect(r.err).toContain('第 2 行');
    expect((await cli('import-national', '--domain', 'nope', '--file', src, '--version', '1')).code).toBe(2);
    expect(() => parseCommand(['export-mappings', '--org', '1'])).toThrow(UsageError);
  });
});
