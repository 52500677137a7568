/**
 * emrPatientInfo (患者基本信息表): every field of the table as known from the hospital adapters
 * (fields.csv). Lengths follow the national front-end's JPA columns (report_card_columns.csv)
 * where the same column exists; elsewhere the documented defaults (docs/data-set.md): codes 20,
 * names 100, free-text details 250, ids 80.
 */
import { defineResource, type RecordOf } from './resource.js';
import { f, fields } from './fields.js';
import { audit, demographics, org, patientIdentity } from './blocks.js';
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
    ...patientIdentity({ required: ['patientName'] }),
    ...demographics(),
    ...org(),
    ...audit(),
    qzrjDataType: f.str(20, '数据处理类型'),
  }),
  rules: [
    residentId({ typeField: 'idCardTypeCode', idField: 'idCard', birthField: 'birthDate', sexField: 'genderCode' }),
    notInFuture(['birthDate', 'operationTime', 'createDate']),
    inOrder(['birthDate', 'operationTime']),
  ],
});

export type EmrPatientInfo = RecordOf<typeof emrPatientInfo>;
