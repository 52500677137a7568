/**
 * Deaths (death function, T+0, when the case has an infectious-disease diagnosis).
 * Fields: every field of fields.csv for the table (json key, db column, Chinese label); lengths
 * from the national front-end's columns (report_card_columns.csv) where the column exists, the
 * documented defaults elsewhere (docs/data-set.md). Required fields, parents and rules: see there.
 */
import { defineResource, type RecordOf } from './resource.js';
import { f, fields } from './fields.js';
import { patientIdentity, recordTail, visit } from './blocks.js';
import { inOrder, notInFuture, residentId } from './rules.js';

export const emrDeathInfo = defineResource({
  name: 'emrDeathInfo',
  table: 'emr_death_info',
  title: '死亡信息',
  fn: 'death',
  deadline: 'T+0',
  businessTime: 'deadDate',
  parents: [{ resource: 'emrPatientInfo', field: 'patientId' }],
  fields: fields({
    id: f.str(80, 'ID', { required: true }),
    ...visit({ activityType: true }),
    ...patientIdentity(),
    treatmentDesc: f.text('诊疗过程描述'),
    deadDate: f.time('死亡日期时间', { required: true }),
    directCauseName: f.str(250, '直接死亡原因名称'),
    directCauseCode: f.str(50, '直接死亡原因编码'),
    deathDiagnosisName: f.str(250, '死亡诊断名称'),
    deathDiagnosisCode: f.str(50, '死亡诊断编码'),
    chiefPhysicianId: f.str(80, '主治医师ID'),
    ...recordTail(),
  }),
  rules: [
    residentId({ typeField: 'idCardTypeCode', idField: 'idCard' }),
    notInFuture(['deadDate', 'operationTime', 'createDate']),
    // The record is written after the death: 死亡日期 ≤ 操作时间 (by day: a date-only death date is midnight).
    inOrder(['deadDate', 'operationTime'], { by: 'day' }),
  ],
});

export type EmrDeathInfo = RecordOf<typeof emrDeathInfo>;
