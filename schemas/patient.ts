/**
 * emrPatientInfo (患者基本信息表): every field of the table as known from the hospital adapters
 * (fields.csv). Lengths follow the national front-end's JPA columns (report_card_columns.csv)
 * where the same column exists; elsewhere the documented defaults (docs/data-set.md): codes 20,
 * names 100, free-text details 250, ids 80.
 */
import { defineResource, type RecordOf } from './resource.js';
import { f, fields } from './fields.js';
import { inOrder, notInFuture, residentId } from './rules.js';

export const emrPatientInfo = defineResource({
  name: 'emrPatientInfo',
  table: 'emr_patient_info',
  title: '患者基本信息',
  fn: 'patient',
  deadline: 'realtime',
  businessTime: 'operationTime',
  parents: [],
  fields: fields({
    id: f.str(80, 'ID', { required: true }),
    patientName: f.str(100, '就诊者姓名', { required: true, personal: 'name' }),
    idCardTypeCode: f.str(2, '身份证件类别代码', { domain: 'idType' }),
    idCardTypeName: f.str(20, '身份证件类别名称'),
    idCard: f.str(50, '身份证件号', { personal: 'idno' }),
    genderCode: f.str(2, '性别代码', { required: true, domain: 'sex' }),
    genderName: f.str(10, '性别名称'),
    birthDate: f.time('出生日期', { required: true }),
    nationalityCode: f.str(5, '国籍/地区代码'),
    nationalityName: f.str(50, '国籍/地区名称'),
    nationCode: f.str(2, '民族代码', { domain: 'ethnicity' }),
    nationName: f.str(50, '民族名称'),
    permanentAddrCode: f.str(9, '户籍地址代码'),
    permanentAddrName: f.str(100, '户籍地址名称', { personal: 'address' }),
    permanentAddrDetail: f.str(250, '户籍详细地址', { personal: 'address' }),
    currentAddrCode: f.str(9, '现住地区代码'),
    currentAddrName: f.str(100, '现住地区名称', { personal: 'address' }),
    currentAddrDetail: f.str(250, '现住详细地址', { personal: 'address' }),
    workunit: f.str(250, '工作单位/学校名称', { personal: 'text' }),
    maritalStatusCode: f.str(2, '婚姻状况代码', { domain: 'maritalStatus' }),
    maritalStatusName: f.str(20, '婚姻状况名称'),
    tel: f.str(70, '患者电话号码', { personal: 'phone' }),
    contacts: f.str(100, '联系人/监护人姓名', { personal: 'name' }),
    contactsTel: f.str(70, '联系人/监护人电话号码', { personal: 'phone' }),
    orgCode: f.str(50, '医疗机构代码', { required: true }),
    orgName: f.str(150, '医疗机构名称'),
    operatorId: f.str(40, '操作人ID'),
    operationTime: f.time('操作时间', { required: true }),
    invalidFlag: f.int('作废标志'),
    educationCode: f.str(2, '学历代码', { domain: 'education' }),
    educationName: f.str(20, '学历名称'),
    nultitudeTypeCode: f.str(2, '人群分类代码', { domain: 'populationClass' }),
    nultitudeTypeName: f.str(20, '人群分类名称'),
    dataStatus: f.str(2, '数据状态 0 未传输 1 已传输'),
    createDate: f.time('入库日期'),
    nultitudeTypeOther: f.str(100, '人群分类其他'),
    qzrjDataType: f.str(20, '数据处理类型'),
  }),
  rules: [
    residentId({ typeField: 'idCardTypeCode', idField: 'idCard', birthField: 'birthDate', sexField: 'genderCode' }),
    notInFuture(['birthDate', 'operationTime', 'createDate']),
    inOrder(['birthDate', 'operationTime']),
  ],
});

export type EmrPatientInfo = RecordOf<typeof emrPatientInfo>;
