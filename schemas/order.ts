/**
 * Orders and prescriptions (order function, T+0): the header (emrOrder) and its items
 * (emrOrderItem, each pointing at its header by orderId). fields.csv lost operationTime of both
 * tables (it survives only inside invalidFlag's comment, `@JsonFormat(pattern = "yyyy-MM-dd")
 * private String operationTime`): it is declared again, required like everywhere else.
 * Fields: every field of fields.csv for the table (json key, db column, Chinese label); lengths
 * from the national front-end's columns (report_card_columns.csv) where the column exists, the
 * documented defaults elsewhere (docs/data-set.md). Required fields, parents and rules: see there.
 */
import { defineResource, type RecordOf } from './resource.js';
import { f, fields } from './fields.js';
import { addedOrgCode, audit, patientIdentity, recordTail, visit } from './blocks.js';
import { inOrder, notInFuture, residentId } from './rules.js';

export const emrOrder = defineResource({
  name: 'emrOrder',
  table: 'emr_order',
  title: '医嘱处方信息',
  fn: 'order',
  deadline: 'T+0',
  businessTime: 'prescriptionIssuanceDate',
  parents: [{ resource: 'emrPatientInfo', field: 'patientId' }],
  fields: fields({
    id: f.str(80, 'ID', { required: true }),
    ...visit({ activityType: true }),
    ...patientIdentity(),
    prescriptionNo: f.str(50, '处方编号'),
    prescriptionTypeCode: f.str(20, '处方类别代码'),
    prescriptionIssuanceDate: f.time('处方开立日期'),
    prescriptionValidityDays: f.int('处方有效天数'),
    excuteDate: f.time('医嘱处方执行日期'),
    prescriptionIssuanceId: f.str(80, '处方开立医师ID'),
    prescriptionDispensingId: f.str(80, '处方发药药剂师ID'),
    prescriptionNotes: f.text('处方备注信息'),
    ...recordTail({ operationTime: 'added' }),
  }),
  rules: [
    residentId({ typeField: 'idCardTypeCode', idField: 'idCard' }),
    notInFuture(['prescriptionIssuanceDate', 'createDate', 'operationTime']),
    // 执行日期 may be planned (a future time is fine), but never before the order was issued.
    inOrder(['prescriptionIssuanceDate', 'excuteDate'], { by: 'day' }),
  ],
});

export type EmrOrder = RecordOf<typeof emrOrder>;

/** Order items carry no orgCode in the data set: added, required. */
export const emrOrderItem = defineResource({
  name: 'emrOrderItem',
  table: 'emr_order_item',
  title: '医嘱处方条目',
  fn: 'order',
  deadline: 'T+0',
  businessTime: 'operationTime',
  parents: [{ resource: 'emrOrder', field: 'orderId' }],
  fields: fields({
    id: f.str(80, 'ID', { required: true }),
    orderId: f.str(80, '医嘱处方ID', { required: true }),
    drugCode: f.str(20, '药物代码'),
    drugName: f.str(100, '药物名称'),
    drugSpecifications: f.str(250, '药物规格'),
    drugDosageCode: f.str(20, '单次用药剂量代码'),
    drugDosageUnitCode: f.str(20, '药物使用剂量单位代码'),
    drugDosageUnitName: f.str(100, '药物使用剂量单位名称'),
    drugDosageTotal: f.str(250, '药物使用总剂量'),
    tcmPrescription: f.text('中药饮片处方'),
    tcmNumber: f.int('中药饮片剂数(剂)'),
    tcmDecoctionMethod: f.str(250, '中药饮片煎煮法'),
    tcmUseMethod: f.str(250, '中药用药方法'),
    ...addedOrgCode(),
    ...audit({ operationTime: 'added' }),
  }),
  rules: [notInFuture(['createDate', 'operationTime'])],
});

export type EmrOrderItem = RecordOf<typeof emrOrderItem>;
