/**
 * Diagnosis activities (emrActivityInfo, 诊疗活动信息): one per outpatient or emergency visit,
 * observation in/out, admission, first and daily progress note and discharge, pushed realtime when
 * a doctor issues or revises a diagnosis (requirements §3).
 * Fields: every field of fields.csv for the table (json key, db column, Chinese label); lengths
 * from the national front-end's columns (report_card_columns.csv) where the column exists, the
 * documented defaults elsewhere (docs/data-set.md). Required fields, parents and rules: see there.
 */
import { defineResource, type RecordOf } from './resource.js';
import { f, fields } from './fields.js';
import { audit, dept, org, patientIdentity, visit } from './blocks.js';
import { notInFuture, residentId } from './rules.js';

export const emrActivityInfo = defineResource({
  name: 'emrActivityInfo',
  table: 'emr_activity_info',
  title: '诊疗活动信息',
  fn: 'diagnosis',
  deadline: 'realtime',
  businessTime: 'activityTime',
  parents: [{ resource: 'emrPatientInfo', field: 'patientId' }],
  fields: fields({
    id: f.str(80, 'ID', { required: true }),
    ...visit({
      activityType: true,
      required: ['activityTypeCode', 'serialNumber'],
      labels: { activityTypeCode: '诊断活动类型', activityTypeName: '诊断活动类型' },
    }),
    activityTime: f.time('诊断活动发生日期时间', { required: true }),
    ...patientIdentity(),
    chiefComplaint: f.text('主诉'),
    presentIllnessHis: f.text('现病史/入院情况'),
    physicalExamination: f.text('体格检查'),
    studiesSummaryResult: f.text('辅助检查'),
    diagnoseTime: f.time('疾病诊断日期'),
    diseaseCode: f.str(50, '传染病疾病诊断'),
    diseaseName: f.str(250, '传染病疾病诊断'),
    wmDiseaseCode: f.str(50, '西医疾病诊断'),
    wmDiseaseName: f.str(250, '西医疾病诊断'),
    tcmDiseaseCode: f.str(50, '中医病名代码'),
    tcmDiseaseName: f.str(250, '中医病名名称'),
    tcmSyndromeCode: f.str(20, '中医证候编码'),
    tcmSyndromeName: f.str(100, '中医证候名称'),
    ...dept(),
    ...org(),
    ...audit({ labels: { dataStatus: '是否生成index 99 未生成' } }),
    fillDoctor: f.str(20, '诊断医生姓名'),
    qzrjDataType: f.str(20, '数据处理类型'),
    reportDiseaseCode: f.str(50, '传报卡补充的病种'),
    reportDiseaseName: f.str(250, '传报卡补充的病种名称'),
  }),
  rules: [residentId({ typeField: 'idCardTypeCode', idField: 'idCard' }), notInFuture(['activityTime', 'diagnoseTime', 'operationTime', 'createDate'])],
});

export type EmrActivityInfo = RecordOf<typeof emrActivityInfo>;
