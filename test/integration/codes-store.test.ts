// The code tables on the real database (infra/db/0006_codes.sql) and their data layer
// (shared/codes/store.ts): the forty domains and the national lists the migration loads, versioned
// national imports, mappings with history and the version counter, policies.
// National lists are global to the database: this file imports only into 'drug' and 'region'.
import { describe, expect, it } from 'vitest';
import { testDb, uniqueOrg } from '../setup/db.js';
import { lists, type CodeEntry } from '../../schemas/codes/lists.js';
import { DOMAINS } from '../../shared/codes/registry.js';
import {
  deleteMapping,
  importNational,
  listDomains,
  listMappings,
  listPolicies,
  mappingHistory,
  mapVersion,
  nationalCodes,
  saveMapping,
  setPolicy,
} from '../../shared/codes/store.js';
import { MappingInputSchema } from '../../shared/codes/model.js';
import { AppError } from '../../shared/http/errors.js';

const db = testDb();
const actor = { by: '张医生', via: 'test' };
const input = (o: Record<string, unknown>) => MappingInputSchema.parse(o);

describe('the migration', () => {
  it('registers forty domains: the 33 numbered, one named by the notice, candidates and unknowns marked', async () => {
    const ds = await listDomains(db);
    expect(ds).toHaveLength(40);
    expect(ds.filter((d) => d.nameStatus === 'numbered').map((d) => d.no)).toEqual([...Array(33).keys()]);
    expect(ds.find((d) => d.domain === 'labVerdict')).toMatchObject({ nameStatus: 'named', nameZh: '传染病报告卡-实验室检测结论代码' });
    expect(ds.filter((d) => d.nameStatus === 'unknown').map((d) => d.slot)).toEqual([37, 38, 39]);
    expect(ds.find((d) => d.domain === 'sex')).toMatchObject({
      listStatus: 'loaded',
      listVersion: 'GB/T 2261.1-2003',
      listSource: 'schemas/codes/code_sex_GBT2261.1.csv',
    });
    expect(ds.find((d) => d.domain === 'labResult')?.listStatus).toBe('partial');
    expect(ds.find((d) => d.domain === 'currentAddr')?.listOf).toBe('region');
  });

  it('holds every national list of schemas/codes exactly as lists.ts says (no drift)', async () => {
    for (const d of DOMAINS.filter((x) => x.list)) {
      const codes = await nationalCodes(db, d.key);
      const expected = (lists[d.list!].codes as readonly CodeEntry[]).map((c) => `${c.code}=${c.name}`).sort();
      expect(codes.map((c) => `${c.code}=${c.name}`).sort(), d.key).toEqual(expected);
    }
  });
});

describe('national lists by import', () => {
  it('a new version becomes the current list; the old rows are closed, not deleted', async () => {
    const v1 = await importNational(db, {
      domain: 'drug',
      version: 'T1',
      source: 'drugs-T1.csv',
      codes: [
        { code: 'X001', name: '阿莫西林胶囊' },
        { code: 'X002', name: '利福平胶囊' },
      ],
    });
    expect(v1).toMatchObject({ codes: 2 });
    await importNational(db, {
      domain: 'drug',
      version: 'T2',
      source: 'drugs-T2.csv',
      codes: [
        { code: 'X002', name: '利福平胶囊（0.15g）' },
        { code: 'X003', name: '异烟肼片' },
      ],
    });
    const cur = await nationalCodes(db, 'drug');
    expect(cur.map((c) => c.code)).toEqual(['X002', 'X003']);
    expect(cur.every((c) => c.version === 'T2')).toBe(true);
    const all = await db.query("SELECT code, version, valid_to FROM code_national WHERE domain = 'drug' AND version IN ('T1', 'T2') ORDER BY version, code");
    expect(all.rows.map((r) => `${r.version}:${r.code}:${r.valid_to === null ? 'open' : 'closed'}`)).toEqual([
      'T1:X001:closed',
      'T1:X002:closed',
      'T2:X002:open',
      'T2:X003:open',
    ]);
    expect((await listDomains(db)).find((d) => d.domain === 'drug')).toMatchObject({
      listStatus: 'loaded',
      listVersion: 'T2',
      codeCount: 2,
      listSource: 'drugs-T2.csv',
    });
  });

  it('refuses duplicates and empty names, and a domain that takes another one’s codes', async () => {
    await expect(
      importNational(db, {
        domain: 'drug',
        version: 'bad',
        source: 'x',
        codes: [
          { code: 'A', name: 'a' },
          { code: 'A', name: 'b' },
        ],
      }),
    ).rejects.toThrow(AppError);
    await expect(importNational(db, { domain: 'currentAddr', version: 'x', source: 'x', codes: [{ code: '110101', name: '东城区' }] })).rejects.toThrow(
      /region/,
    );
  });

  it('the address domains read the region list', async () => {
    await importNational(db, { domain: 'region', version: 'R1', source: 'region.csv', codes: [{ code: '110101001', name: '东华门街道' }] });
    expect((await nationalCodes(db, 'currentAddr')).map((c) => c.code)).toEqual(['110101001']);
  });
});

describe('mappings', () => {
  it('create, update and delete each bump the org’s version and leave history', async () => {
    const org = uniqueOrg();
    expect(await mapVersion(db, org)).toBe(0);
    const a = await saveMapping(db, input({ org, domain: 'sex', localCode: 'M', localName: '男', nationalCode: '1', equivalence: 'equal' }), actor);
    expect(a.outcome).toBe('created');
    expect(a.mapping).toMatchObject({
      org,
      domain: 'sex',
      localCode: 'M',
      nationalCode: '1',
      nationalName: '男性',
      equivalence: 'equal',
      version: 1,
      mapVersion: 1,
      madeBy: '张医生',
      madeVia: 'test',
    });
    const same = await saveMapping(db, input({ org, domain: 'sex', localCode: 'M', localName: '男', nationalCode: '1', equivalence: 'equal' }), actor);
    expect(same.outcome).toBe('unchanged');
    expect(await mapVersion(db, org)).toBe(1);
    const b = await saveMapping(db, input({ org, domain: 'sex', localCode: 'M', nationalCode: '0', equivalence: 'wider', madeBy: '李护士' }), actor);
    expect(b).toMatchObject({ outcome: 'updated', mapping: { version: 2, mapVersion: 2, nationalCode: '0', localName: '男', madeBy: '李护士' } });
    expect(await deleteMapping(db, a.mapping.id, actor)).toMatchObject({ localCode: 'M' });
    expect(await listMappings(db, org)).toEqual([]);
    expect(await mapVersion(db, org)).toBe(3);
    const h = await mappingHistory(db, org, { domain: 'sex', localCode: 'M' });
    expect(h.map((x) => `${x.action}:${x.nationalCode}:${x.version}:${x.mapVersion}:${x.madeBy}`)).toEqual([
      'create:1:1:1:张医生',
      'update:0:2:2:李护士',
      'delete:0:3:3:张医生',
    ]);
  });

  it('refuses a national code that is not in the current list, naming it', async () => {
    const org = uniqueOrg();
    await expect(saveMapping(db, input({ org, domain: 'sex', localCode: 'X', nationalCode: '7' }), actor)).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      issues: [{ field: 'nationalCode', rule: 'domain', value: '7' }],
    });
    expect(await mapVersion(db, org)).toBe(0);
  });

  it('unmatched takes no national code; an empty equivalence with a code defaults to equivalent', () => {
    expect(MappingInputSchema.safeParse({ org: '1', domain: 'sex', localCode: 'X', nationalCode: '1', equivalence: 'unmatched' }).success).toBe(false);
    expect(MappingInputSchema.safeParse({ org: '1', domain: 'sex', localCode: 'X' }).data?.equivalence).toBe('unmatched');
    expect(MappingInputSchema.parse({ org: '1', domain: 'sex', localCode: 'X', nationalCode: '1' }).equivalence).toBe('equivalent');
    expect(MappingInputSchema.parse({ org: '1', domain: 'sex', localCode: 'X', nationalCode: '1', equivalence: '相同' }).equivalence).toBe('equal');
    expect(MappingInputSchema.safeParse({ org: '1', domain: 'nope', localCode: 'X' }).success).toBe(false);
  });
});

describe('policies', () => {
  it('default auto; a change is kept and bumps the version', async () => {
    const org = uniqueOrg();
    expect((await listPolicies(db, org)).find((p) => p.domain === 'sex')?.policy).toBe('auto');
    expect(await setPolicy(db, org, 'sex', 'local', actor)).toBe(1);
    expect(await setPolicy(db, org, 'sex', 'national', actor)).toBe(2);
    expect((await listPolicies(db, org)).find((p) => p.domain === 'sex')).toMatchObject({ policy: 'national', setBy: '张医生' });
  });
});
