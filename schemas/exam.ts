/**
 * Examination (imaging, endoscopy, ...) reports (exam function, T+0): the header (emrExClinical)
 * and its items (emrExClinicalItem, each pointing at its header by exClinicalId).
 * Fields: every field of fields.csv for the table (json key, db column, Chinese label); lengths
 * from the national front-end's columns (report_card_columns.csv) where the column exists, the
 * documented defaults elsewhere (docs/data-set.md). Required fields, parents and rules: see there.
 */
import { defineResource, type RecordOf } from './resource.js';
import { f, fields } from './fields.js';
import { addedOrgCode, audit, patientIdentity, recordTail, visit, ward } from './blocks.js';
import { inOrder, notInFuture, residentId } from './rules.js';

export const emrExClinical = defineResource({
  name: 'emrExClinical',
  table: 'emr_ex_clinical',
  title: '检查报告',
  fn: 'exam',
  deadline: 'T+0',
  businessTime: 'examinationReportDate',
  parents: [{ resource: 'emrPatientInfo', field: 'patientId' }],
  fields: fields({
    id: f.str(80, 'ID', { required: true }),
    ...visit({ activityType: true }),
    ...patientIdentity(),
    ...ward(),
    applicationFormNo: f.str(50, '电子申请单编号'),
    applyOrgCode: f.str(20, '检查申请机构'),
    applyOrgName: f.str(100, '检查申请机构'),
    applyDeptName: f.str(100, '检查申请科室'),
    applyDeptCode: f.str(20, '检查申请科室'),
    chiefComplaint: f.text('主诉'),
    symptomStartDate: f.time('症状开始时间'),
    symptomEndDate: f.time('症状停止时间'),
    symptomDesc: f.text('症状描述'),
    treatmentDesc: f.text('诊疗过程描述'),
    specialExaminationCode: f.str(20, '特殊检查标志'),
    examinationObjectiveDesc: f.text('检查报告结果-客观所见'),
    examinationSubjectiveDesc: f.text('检查报告结果-主观提示'),
    examinationNotes: f.text('检查报告备注'),
    examinationReportNo: f.str(50, '检查报告单编号'),
    examinationReportDate: f.time('检查报告日期'),
    examinationReportId: f.str(80, '报告医师ID'),
    ...recordTail({ org: '检查报告机构', dept: '检查报告科室' }),
    examinationTypeCode: f.str(20, '检查类别代码'),
    examinationTypeName: f.str(100, '检查类别名称'),
  }),
  rules: [
    residentId({ typeField: 'idCardTypeCode', idField: 'idCard' }),
    notInFuture(['symptomStartDate', 'symptomEndDate', 'examinationReportDate', 'operationTime', 'createDate']),
    inOrder(['symptomStartDate', 'symptomEndDate']),
    inOrder(['symptomStartDate', 'examinationReportDate'], { by: 'day' }),
  ],
});

export type EmrExClinical = RecordOf<typeof emrExClinical>;

/** Exam items carry no orgCode in the data set: added, required. */
export const emrExClinicalItem = defineResource({
  name: 'emrExClinicalItem',
  table: 'emr_ex_clinical_item',
  title: '检查报告项目',
  fn: 'exam',
  deadline: 'T+0',
  businessTime: 'operationTime',
  parents: [{ resource: 'emrExClinical', field: 'exClinicalId' }],
  fields: fields({
    id: f.str(80, 'ID', { required: true }),
    exClinicalId: f.str(80, '检查报告ID', { required: true }),
    itemName: f.str(100, '检查项目', { required: true }),
    examinationResultCode: f.str(20, '检查结果代码'),
    examinationResultName: f.str(100, '检查结果名称'),
    examinationQuantification: f.str(250, '检查定量结果'),
    examinationQuantificationUnit: f.str(250, '检查定量结果计量单位'),
    itemCode: f.str(20, '检查项目代码'),
    ...audit(),
    ...addedOrgCode(),
  }),
  rules: [notInFuture(['operationTime', 'createDate'])],
});

export type EmrExClinicalItem = RecordOf<typeof emrExClinicalItem>;
