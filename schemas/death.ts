/**
 * Deaths (death function, T+0, when the case has an infectious-disease diagnosis).
 * Fields: every field of fields.csv for the table (json key, db column, Chinese label); lengths
 * from the national front-end's columns (report_card_columns.csv) where the column exists, the
 * documented defaults elsewhere (docs/data-set.md). Required fields, parents and rules: see there.
 */
import { defineResource, type RecordOf } from './resource.js';
import { f, fields } from './fields.js';
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
    patientId: f.str(80, '患者基本信息ID', { required: true }),
    activityTypeCode: f.str(2, '就诊记录类型代码', { domain: 'activityType' }),
    activityTypeName: f.str(20, '就诊记录类型名称'),
    serialNumber: f.str(20, '就诊流水号'),
    patientName: f.str(100, '患者姓名', { personal: 'name' }),
    idCardTypeCode: f.str(2, '身份证件类别代码', { domain: 'idType' }),
    idCardTypeName: f.str(20, '身份证件类别名称'),
    idCard: f.str(50, '身份证件号', { personal: 'idno' }),
    treatmentDesc: f.text('诊疗过程描述'),
    deadDate: f.time('死亡日期时间', { required: true }),
    directCauseName: f.str(250, '直接死亡原因名称'),
    directCauseCode: f.str(50, '直接死亡原因编码'),
    deathDiagnosisName: f.str(250, '死亡诊断名称'),
    deathDiagnosisCode: f.str(50, '死亡诊断编码'),
    chiefPhysicianId: f.str(80, '主治医师ID'),
    orgCode: f.str(50, '医疗机构代码', { required: true }),
    orgName: f.str(150, '医疗机构名称'),
    deptCode: f.str(20, '科室代码'),
    deptName: f.str(50, '科室名称'),
    operatorId: f.str(40, '操作人ID'),
    operationTime: f.time('操作时间', { required: true }),
    invalidFlag: f.int('作废标志'),
    dataStatus: f.str(2, '数据状态 0 未传输 1已传输'),
    createDate: f.time('入库日期'),
  }),
  rules: [
    residentId({ typeField: 'idCardTypeCode', idField: 'idCard' }),
    notInFuture(['deadDate', 'operationTime', 'createDate']),
    // The record is written after the death: 死亡日期 ≤ 操作时间 (by day: a date-only death date is midnight).
    inOrder(['deadDate', 'operationTime'], { by: 'day' }),
  ],
});

export type EmrDeathInfo = RecordOf<typeof emrDeathInfo>;
