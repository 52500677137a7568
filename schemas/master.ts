/**
 * Master data of the HIS (patient function): users (baseUser) and departments (baseDept), pushed
 * on change (realtime). Department codes are mapped onto the front's own department codes here.
 * Fields: every field of fields.csv for the table (json key, db column, Chinese label); lengths
 * from the national front-end's columns (report_card_columns.csv) where the column exists, the
 * documented defaults elsewhere (docs/data-set.md). Required fields, parents and rules: see there.
 */
import { defineResource, type RecordOf } from './resource.js';
import { f, fields } from './fields.js';
import { addedOrgCode } from './blocks.js';
import { notInFuture, residentId } from './rules.js';
import type { FieldIssue } from '../shared/http/errors.js';

/** HIS users (clinicians, public-health staff). fields.csv has no operationTime: added, optional (lateness is then unknown). */
export const baseUser = defineResource({
  name: 'baseUser',
  table: 'base_user',
  title: '医院信息系统用户信息',
  fn: 'patient',
  deadline: 'realtime',
  businessTime: 'operationTime',
  parents: [],
  fields: fields({
    id: f.str(80, '用户ID', { required: true }),
    userName: f.str(100, '用户真实姓名', { required: true, personal: 'name' }),
    idCardTypeCode: f.str(2, '用户身份证件所属类别代码', { domain: 'idType' }),
    idCard: f.str(50, '用户的身份证号，尚未获得身份证号码的人员使用护照号等特定编码标识', { personal: 'idno' }),
    tel: f.str(70, '用户本人的电话号码', { personal: 'phone' }),
    physicianNo: f.str(50, '用户取得的医师执业资格证号'),
    orgCode: f.str(50, '用户所属医疗机构在机构代码表中的代码', { required: true }),
    deptCode: f.str(20, '用户所属科室在代码表中的代码'),
    invalidFlag: f.int('1=作废，0=有效'),
    loginName: f.str(100, '登录名'),
    userTypeCode: f.str(20, '用户类型，dd_user_type，（1公卫2临床3管理员）'),
    operationTime: f.time('操作时间（数据集中缺失，按通用约定补充；主数据可不传）'),
  }),
  rules: [residentId({ typeField: 'idCardTypeCode', idField: 'idCard' }), notInFuture(['operationTime'])],
});

export type BaseUser = RecordOf<typeof baseUser>;

/** baseDept's record id is its department code: `id`, when sent, must equal deptCode. */
function idIsDeptCode(rec: Record<string, unknown>): FieldIssue[] {
  return rec.id !== undefined && rec.deptCode !== undefined && rec.id !== rec.deptCode
    ? [{ field: 'id', rule: 'keyMismatch', message: '科室记录的 id 应等于 deptCode (id must equal deptCode)', value: rec.id }]
    : [];
}

/**
 * HIS departments. The data set has neither id nor orgCode: deptCode is the key (keyField; the
 * pipeline keys every resource by (orgCode, id)), orgCode is added and required (several
 * hospitals on one front), operationTime and invalidFlag are added as optional.
 */
export const baseDept = defineResource({
  name: 'baseDept',
  table: 'base_dept',
  title: '医院信息系统科室信息',
  fn: 'patient',
  deadline: 'realtime',
  businessTime: 'operationTime',
  // No id in the data set: the department code is the record's key (validate copies it into id).
  keyField: 'deptCode',
  parents: [],
  fields: fields({
    id: f.str(20, '科室记录ID（= deptCode，可不传）', { required: true }),
    ...addedOrgCode(),
    deptCode: f.str(20, '院方科室code', { required: true }),
    deptName: f.str(50, '院方科室名称', { required: true }),
    targetDeptCode: f.str(20, '前置软件科室code'),
    targetDeptName: f.str(50, '前置软件科室名称'),
    operationTime: f.time('操作时间（数据集中缺失，按通用约定补充；主数据可不传）'),
    invalidFlag: f.int('作废标志（1 作废，0 有效；补充）'),
  }),
  rules: [notInFuture(['operationTime']), idIsDeptCode],
});

export type BaseDept = RecordOf<typeof baseDept>;
