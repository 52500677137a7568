/**
 * Lab reports (lab function, within 2 hours of the result): the header (emrExLab) and its items
 * (emrExLabItem, each pointing at its header by exLabId).
 * Fields: every field of fields.csv for the table (json key, db column, Chinese label); lengths
 * from the national front-end's columns (report_card_columns.csv) where the column exists, the
 * documented defaults elsewhere (docs/data-set.md). Required fields, parents and rules: see there.
 */
import { defineResource, type RecordOf } from './resource.js';
import { f, fields } from './fields.js';
import { addedOrgCode, audit, patientIdentity, recordTail, visit, ward } from './blocks.js';
import { inOrder, notInFuture, residentId } from './rules.js';

export const emrExLab = defineResource({
  name: 'emrExLab',
  table: 'emr_ex_lab',
  title: '检验报告',
  fn: 'lab',
  deadline: '2h',
  businessTime: 'examinationReportDate',
  businessTimeFallbacks: ['examinationDate', 'specimenReceivingDate', 'specimenSamplingDate'],
  parents: [{ resource: 'emrPatientInfo', field: 'patientId' }],
  fields: fields({
    id: f.str(80, 'ID', { required: true }),
    ...visit({ activityType: true }),
    ...patientIdentity(),
    ...ward(),
    applicationFormNo: f.str(50, '电子申请单编号'),
    applyOrgName: f.str(100, '检验申请机构'),
    applyOrgCode: f.str(20, '检验申请机构'),
    applyDeptName: f.str(100, '检验申请科室'),
    applyDeptCode: f.str(20, '检验申请科室'),
    applyPhysicianId: f.str(80, '检验申请医师ID'),
    specimenNo: f.str(50, '检验标本号'),
    specimenSamplingDate: f.time('标本采样日期时间'),
    specimenReceivingDate: f.time('接收标本日期时间'),
    examinationPhysicianId: f.str(80, '检验医师ID'),
    examinationDate: f.time('检验日期'),
    examinationReportNo: f.str(50, '检验报告单编号'),
    examinationObjectiveDesc: f.text('检验报告结果-客观所见'),
    examinationSubjectiveDesc: f.text('检验报告结果-主观提示'),
    examinationNotes: f.text('检验报告备注'),
    examinationReportDate: f.time('检验报告日期'),
    examinationReportId: f.str(80, '报告医师ID'),
    ...recordTail({ org: '检验报告机构', dept: '检验报告科室' }),
    specimenCategoryCode: f.str(20, '标本类别代码'),
    specimenCategoryName: f.str(100, '标本类别名称'),
  }),
  rules: [
    residentId({ typeField: 'idCardTypeCode', idField: 'idCard' }),
    notInFuture(['specimenSamplingDate', 'specimenReceivingDate', 'examinationDate', 'examinationReportDate', 'operationTime', 'createDate']),
    inOrder(['specimenSamplingDate', 'specimenReceivingDate', 'examinationReportDate']),
    inOrder(['specimenSamplingDate', 'examinationDate', 'examinationReportDate'], { by: 'day' }),
  ],
});

export type EmrExLab = RecordOf<typeof emrExLab>;

/** Lab items carry no orgCode in the data set: added, required (the key is (orgCode, id)). */
export const emrExLabItem = defineResource({
  name: 'emrExLabItem',
  table: 'emr_ex_lab_item',
  title: '检验报告项目',
  fn: 'lab',
  deadline: '2h',
  businessTime: 'operationTime',
  parents: [{ resource: 'emrExLab', field: 'exLabId' }],
  fields: fields({
    id: f.str(80, 'ID', { required: true }),
    exLabId: f.str(80, '检验报告ID', { required: true }),
    itemCode: f.str(20, '检验项目代码'),
    itemName: f.str(100, '检验项目名称', { required: true }),
    examinationResultCode: f.str(20, '检验定性结果代码'),
    examinationResultName: f.str(100, '检验定性结果名称'),
    examinationQuantification: f.str(250, '检验定量结果'),
    examinationQuantificationUnit: f.str(250, '检验定量结果计量单位'),
    ...audit(),
    examinationQuantificationLower: f.str(250, '检验定量结果参考区间-下限'),
    examinationQuantificationUpper: f.str(250, '检验定量结果参考区间-上限'),
    examinationQuantificationRi: f.str(250, '检验定量结果超出或低于参考值'),
    sourceExaminationResultCode: f.str(20, '患者检验结果在医院信息系统编码体系中的分类代码'),
    sourceExaminationResultName: f.str(100, '患者检验结果名称'),
    ...addedOrgCode(),
  }),
  rules: [notInFuture(['operationTime', 'createDate'])],
});

export type EmrExLabItem = RecordOf<typeof emrExLabItem>;
