// Database sync outcomes follow their record's holds (docs/dbsync.md "Held records"): the HIS's
// database account reads staging.sync_result alone, so a record released, or re-held for a data-set
// rule once its codes were mapped, must say so there — on the real database, with the mapping sweep
// the push function runs and the parent release of a later row.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { privateDatabase, uniqueId, uniqueOrg } from '../setup/db.js';
import { resources } from '../../schemas/index.js';
import type { Resource } from '../../schemas/resource.js';
import { createCodeCache, MappingInputSchema, saveMapping, type CodeCache } from '../../shared/codes/index.js';
import { sweepMappingHolds } from '../../shared/ingest/mapping.js';
import { sample } from '../../infra/simulators/samples.js';
import { heldNow as heldOf, passportPatient, stageRecord, syncedOutcome, womanWithId, syncEveryOrg } from '../setup/records.js';

// A database of its own: these runs take every org's staging rows (orgs '*'), another file's among them.
let priv: Awaited<ReturnType<typeof privateDatabase>>;
let db: pg.Pool;
const settings = syncEveryOrg;
const R = (name: string) => resources[name]!;
let codes: CodeCache;

beforeAll(async () => {
  priv = await privateDatabase('dbsync_held');
  db = priv.db;
  codes = await createCodeCache(db, { refreshMs: 100, flushMs: 100 });
}, 120_000);
afterAll(async () => {
  await codes?.close();
  await priv?.drop();
});

const stage = (r: Resource, rec: Record<string, unknown>) => stageRecord(db, r, rec);

const outcome = (r: Resource, rowId: string) => syncedOutcome(db, r, rowId, { settings, codes });
const heldNow = (r: Resource, rowId: string) => heldOf(db, r, rowId);
const map = (org: string, domain: string, localCode: string, nationalCode: string) =>
  saveMapping(db, MappingInputSchema.parse({ org, domain, localCode, nationalCode }), { by: '测试员' });

/** A poll under way may have read the lists before the mapping: the second starts after it. */
const refreshed = async () => {
  await codes.refresh();
  await codes.refresh();
};

const patientOf = passportPatient;

describe('a staged record’s outcome rows follow its holds', () => {
  it('mapped and released: held becomes NULL; mapped and breaking a rule: held names the rule; a corrected row clears both', async () => {
    const patient = R('emrPatientInfo');
    const org = uniqueOrg();
    const freed = uniqueId('p');
    const ruled = uniqueId('p');
    // "MM" mapped to 1 (男) is fine on a passport; "NN" mapped to 1 breaks a woman's resident ID number.
    const rowFreed = await stage(patient, patientOf(org, freed, { genderCode: 'MM', genderName: undefined }));
    const woman = (genderCode: string) => womanWithId(org, ruled, genderCode);
    const rowRuled = await stage(patient, woman('NN'));
    expect(await outcome(patient, rowFreed)).toEqual({ status: 'created', held: ['mapping:sex/MM'] });
    expect(await outcome(patient, rowRuled)).toEqual({ status: 'created', held: ['mapping:sex/NN'] });

    await map(org, 'sex', 'MM', '1');
    await map(org, 'sex', 'NN', '1');
    await refreshed();
    await sweepMappingHolds(db, codes);
    expect(await heldNow(patient, rowFreed)).toBeNull();
    expect(await heldNow(patient, rowRuled)).toEqual(['rule:genderCode/idConsistency']);
    // The documented query (docs/dbsync.md "SQL examples") lists the rule-held record, not the released one.
    const documented = `SELECT resource, org_code, record_id, max(row_id) AS row_id, held::text AS held
  FROM staging.sync_result WHERE held IS NOT NULL AND status <> 'rejected'
 GROUP BY resource, org_code, record_id, held::text ORDER BY max(row_id) DESC LIMIT 20`;
    const listed = await db.query(`SELECT record_id, held FROM (${documented.replace(' LIMIT 20', '')}) q WHERE org_code = $1`, [org]);
    expect(listed.rows).toEqual([{ record_id: ruled, held: '["rule:genderCode/idConsistency"]' }]);

    // The HIS corrects it with a new row: the record goes; its earlier row says so too.
    const rowFixed = await stage(patient, woman('2'));
    expect(await outcome(patient, rowFixed)).toEqual({ status: 'updated', held: null });
    expect(await heldNow(patient, rowRuled)).toBeNull();
  });

  it('a child staged before its parent: its row says held until the parent’s row releases it', async () => {
    const patient = R('emrPatientInfo');
    const visit = R('emrActivityInfo');
    const org = uniqueOrg();
    const pid = uniqueId('p');
    const rowV = await stage(visit, sample('emrActivityInfo', { orgCode: org, id: uniqueId('v'), patientId: pid, seed: 12 }));
    expect((await outcome(visit, rowV)).held).toEqual([`parent:emrPatientInfo/${pid}`]);
    const rowP = await stage(patient, sample('emrPatientInfo', { orgCode: org, id: pid, seed: 11 }));
    expect(await outcome(patient, rowP)).toEqual({ status: 'created', held: null });
    expect(await heldNow(visit, rowV)).toBeNull();
  });

  it('a refused row of a record keeps its refusal as it was when the record’s holds change', async () => {
    const patient = R('emrPatientInfo');
    const org = uniqueOrg();
    const id = uniqueId('p');
    const bad = await stage(patient, patientOf(org, id, { genderCode: 'QQ', genderName: undefined, birthDate: '2026-02-30' }));
    expect((await outcome(patient, bad)).status).toBe('rejected');
    const good = await stage(patient, patientOf(org, id, { genderCode: 'QQ', genderName: undefined }));
    expect(await outcome(patient, good)).toEqual({ status: 'created', held: ['mapping:sex/QQ'] });
    await map(org, 'sex', 'QQ', '2');
    await refreshed();
    await sweepMappingHolds(db, codes);
    expect(await heldNow(patient, good)).toBeNull();
    expect(await heldNow(patient, bad)).toBeNull();
    expect((await db.query(`SELECT status FROM staging.sync_result WHERE resource = $1 AND row_id = $2`, [patient.name, bad])).rows[0].status).toBe('rejected');
  });

  it('the log line of a rule hold names the resource, org code, record id and rules — no value', async () => {
    const patient = R('emrPatientInfo');
    const org = uniqueOrg();
    const id = uniqueId('p');
    const row = await stage(
      patient,
      patientOf(org, id, {
        idCardTypeCode: '01',
        idCardTypeName: '居民身份证',
        idCard: '11010519491231002X',
        birthDate: '1949-12-31',
        genderCode: 'KK',
        genderName: undefined,
      }),
    );
    expect(await outcome(patient, row)).toEqual({ status: 'created', held: ['mapping:sex/KK'] });
    await map(org, 'sex', 'KK', '1');
    await refreshed();
    const lines: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      await sweepMappingHolds(db, codes);
    } finally {
      spy.mockRestore();
    }
    const mine = lines.map((l) => JSON.parse(l)).filter((x) => x.msg?.startsWith('mapped record breaks the data set rules') && x.recordId === id);
    expect(mine).toEqual([
      expect.objectContaining({ level: 'warn', resource: 'emrPatientInfo', orgCode: org, recordId: id, rules: ['genderCode/idConsistency'] }),
    ]);
    const text = JSON.stringify(mine);
    for (const value of ['11010519491231002X', '1949-12-31', 'KK']) expect(text).not.toContain(value);
  });
});
