// What the resources declare is pinned: every resource has the fixture's keys, and every field its
// column, kind, length, required, personal and value domain (test/fixtures/schema-fields.json;
// labels are not part of it) — a deliberate change (the identifier lengths, the required fields
// senders omit: docs/data-set.md) updates the fixture together with its migration — and the applied
// migrations give each table exactly the declared columns and types (0002, 0003's CREATE TABLE lines
// and the later ALTER COLUMN … TYPE statements).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { resources } from '../../schemas/index.js';
import { sqlType } from '../../schemas/ddl.js';
import type { FieldDef } from '../../schemas/fields.js';
import { audit, patientIdentity, recordTail, visit, without } from '../../schemas/blocks.js';
import { listMigrations } from '../../infra/db/migrate.js';

const root = new URL('../../', import.meta.url);
const before = JSON.parse(readFileSync(new URL('test/fixtures/schema-fields.json', root), 'utf8')) as Record<string, Record<string, Omit<FieldDef, 'label'>>>;

/** What the storage and the pipeline depend on: everything of a FieldDef but its label. */
function structure(d: FieldDef): Omit<FieldDef, 'label'> {
  const { label: _label, ...rest } = d;
  return rest;
}

/**
 * The data-set tables as the migrations leave them: the CREATE TABLE statements of 0002 and 0003,
 * then every later `ALTER TABLE … ALTER COLUMN … TYPE …` in order: table → column → SQL type.
 */
function migratedTables(): Map<string, Map<string, string>> {
  const tables = new Map<string, Map<string, string>>();
  for (const file of ['infra/db/0002_emr_patient_info.sql', 'infra/db/0003_data_set.sql']) {
    const sql = readFileSync(new URL(file, root), 'utf8');
    for (const m of sql.matchAll(/CREATE TABLE (\w+) \(\n([\s\S]*?)\n\);/g)) {
      const cols = new Map<string, string>();
      for (const line of m[2]!.split('\n')) {
        const c = /^\s+(\w+) (.+?)(?: NOT NULL)?(?: DEFAULT \S+)?,?$/.exec(line);
        if (c && c[1] !== 'PRIMARY' && !c[1]!.startsWith('rec_')) cols.set(c[1]!, c[2]!);
      }
      tables.set(m[1]!, cols);
    }
  }
  for (const m of listMigrations()) {
    for (const a of m.sql.matchAll(/^ALTER TABLE (\w+) ALTER COLUMN (\w+) TYPE ([^;]+);/gm)) tables.get(a[1]!)?.set(a[2]!, a[3]!);
  }
  return tables;
}

describe('resource declarations after the field blocks', () => {
  it('the fixture covers the twenty resources', () => {
    expect(Object.keys(before).sort()).toEqual(Object.keys(resources).sort());
    expect(Object.keys(resources)).toHaveLength(20);
  });

  for (const [name, r] of Object.entries(resources)) {
    it(`${name}: same keys, and per field the same column, kind, max, required, personal and domain`, () => {
      const want = before[name]!;
      expect(Object.keys(r.fields).sort()).toEqual(Object.keys(want).sort());
      for (const [k, d] of Object.entries(r.fields)) expect(structure(d), `${name}.${k}`).toEqual(want[k]);
      for (const [k, d] of Object.entries(r.fields)) expect(d.label.trim(), `${name}.${k} label`).not.toBe('');
    });
  }

  const tables = migratedTables();
  for (const r of Object.values(resources)) {
    it(`${r.table}: the migrated CREATE TABLE has exactly the declared columns, of the declared types`, () => {
      const cols = tables.get(r.table);
      expect(cols, r.table).toBeDefined();
      const declared = new Map(Object.values(r.fields).map((d) => [d.column, sqlType(d)]));
      expect([...cols!.keys()].sort()).toEqual([...declared.keys()].sort());
      for (const [c, t] of declared) expect(cols!.get(c), `${r.table}.${c}`).toBe(t);
    });
  }

  it('keeps the tables’ own labels where they say something the common one does not', () => {
    for (const n of ['emrAdmissionInfo', 'emrFirstCourse', 'emrDailyCourse', 'emrAdmissionRecord', 'emrDischargeInfo']) {
      expect(resources[n]!.fields.serialNumber!.label, n).toBe('住院号');
    }
    expect(resources.emrOutpatientObs!.fields.serialNumber!.label).toBe('门（急）诊号');
    expect(resources.emrExLab!.fields.orgCode!.label).toBe('检验报告机构');
    expect(resources.emrExClinical!.fields.deptName!.label).toBe('检查报告科室');
    expect(resources.emrActivityInfo!.fields.dataStatus!.label).toBe('是否生成index 99 未生成');
    expect(resources.emrInfReport!.fields.permanentAddrCode!.label).toBe('常住地址代码');
    expect(resources.emrOrder!.fields.operationTime!.label).toContain('补充');
  });
});

describe('the blocks', () => {
  it('are fresh objects: a table’s labels and required fields do not leak into another table', () => {
    const a = patientIdentity({ required: ['patientName'], labels: { patientName: '就诊者姓名' } });
    const b = patientIdentity();
    expect(a.patientName).toMatchObject({ required: true, label: '就诊者姓名', personal: 'name', max: 100 });
    expect(b.patientName.required).toBeUndefined();
    expect(b.patientName.label).toBe('患者姓名');
    expect(Object.keys(b)).toEqual(['patientName', 'idCardTypeCode', 'idCardTypeName', 'idCard']);
  });

  it('visit() has the activity type only when asked, in the data set’s order', () => {
    expect(Object.keys(visit())).toEqual(['patientId', 'serialNumber']);
    expect(Object.keys(visit({ activityType: true }))).toEqual(['patientId', 'activityTypeCode', 'activityTypeName', 'serialNumber']);
    expect(visit().patientId.required).toBe(true);
    expect(visit().serialNumber.required).toBeUndefined();
  });

  it('an added operationTime comes last, optional like every operationTime (senders omit it), labelled as added', () => {
    expect(Object.keys(audit())).toEqual(['operatorId', 'operationTime', 'invalidFlag', 'dataStatus', 'createDate']);
    const added = audit({ operationTime: 'added' });
    expect(Object.keys(added)).toEqual(['operatorId', 'invalidFlag', 'dataStatus', 'createDate', 'operationTime']);
    expect(added.operationTime).toMatchObject({ kind: 'time' });
    expect(added.operationTime.required).toBeUndefined();
    expect(audit().operationTime.required).toBeUndefined();
    expect(added.operationTime.label).toContain('补充');
  });

  it('recordTail() labels org and dept as the table says; without() drops fields', () => {
    const t = recordTail({ org: '检验报告机构', dept: '检验报告科室' });
    expect(t.orgCode).toMatchObject({ label: '检验报告机构', max: 50, required: true });
    expect(t.orgName.label).toBe('检验报告机构');
    expect(t.deptCode.label).toBe('检验报告科室');
    expect(Object.keys(without(recordTail(), 'dataStatus', 'createDate'))).toEqual([
      'orgCode',
      'orgName',
      'deptCode',
      'deptName',
      'operatorId',
      'operationTime',
      'invalidFlag',
    ]);
  });
});
