/**
 * Lab reports (lab function, within 2 hours of the result): the header (emrExLab) and its items
 * (emrExLabItem, each pointing at its header by exLabId).
 * Fields: every field of fields.csv for the table (json key, db column, Chinese label); lengths
 * from the national front-end's columns (report_card_columns.csv) where the column exists, the
 * documented defaults elsewhere (docs/data-set.md). Required fields, parents and rules: see there.
 */
import { defineResource, type RecordOf } from './resource.js';
import { f, fields } from './fields.js';
import { inOrder, notInFuture, residentId } from './rules.js';

export const emrExLab = defineResource({
  name: 'emrExLab',
  table: 'emr_ex_lab',
  title: '检验报告',
  fn: 'lab',
  deadline: '2h',
  businessTime: 'examinationReportDate',
  parents: [{ resource: 'emrPatientInfo', field: 'patientId' }],
  fields: fields({
    id: f.str(80, 'ID', { required: true }),
    patientId: f.str(80, '患者基本信息ID', { required: true }),
    activityTypeCode: f.str(2, '就诊记录类型', { domain: 'activityType' }),
    activityTypeName: f.str(20, '就诊记录类型'),
    serialNumber: f.str(20, '就诊流水号'),
    patientName: f.str(100, '患者姓名', { personal: 'name' }),
    idCardTypeCode: f.str(2, '身份证件类别', { domain: 'idType' }),
    idCardTypeName: f.str(20, '身份证件类别'),
    idCard: f.str(50, '身份证件号', { personal: 'idno' }),
    wardName: f.str(100, '病区名称'),
    wardNo: f.str(50, '病房号'),
    bedNo: f.str(50, '病床号'),
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
    examinationReportDate: f.time('检验报告日期', { required: true }),
    examinationReportId: f.str(80, '报告医师ID'),
    orgCode: f.str(50, '检验报告机构', { required: true }),
    orgName: f.str(150, '检验报告机构'),
    deptCode: f.str(20, '检验报告科室'),
    deptName: f.str(50, '检验报告科室'),
    operatorId: f.str(40, '操作人ID'),
    operationTime: f.time('操作时间', { required: true }),
    invalidFlag: f.int('作废标志'),
    dataStatus: f.str(2, '数据状态 0 未传输 1已传输'),
    createDate: f.time('入库日期'),
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
    operationTime: f.time('操作时间', { required: true }),
    operatorId: f.str(40, '操作人ID'),
    invalidFlag: f.int('作废标志'),
    dataStatus: f.str(2, '数据状态 0 未传输 1已传输'),
    createDate: f.time('入库日期'),
    examinationQuantificationLower: f.str(250, '检验定量结果参考区间-下限'),
    examinationQuantificationUpper: f.str(250, '检验定量结果参考区间-上限'),
    examinationQuantificationRi: f.str(250, '检验定量结果超出或低于参考值'),
    sourceExaminationResultCode: f.str(20, '患者检验结果在医院信息系统编码体系中的分类代码'),
    sourceExaminationResultName: f.str(100, '患者检验结果名称'),
    orgCode: f.str(50, '医疗机构代码（数据集中缺失，多机构部署必需，补充）', { required: true }),
  }),
  rules: [
    notInFuture(['operationTime', 'createDate']),
  ],
});

export type EmrExLabItem = RecordOf<typeof emrExLabItem>;
