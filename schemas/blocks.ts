/**
 * Blocks of fields that many tables of the national data set share, each declared once: spread
 * into a resource's `fields({...})` where the table has them (`...visit({ activityType: true })`,
 * `...patientIdentity()`, `...recordTail()`). A block fixes what the storage and the pipeline
 * depend on (key, kind, length, required, personal, value domain); a table passes its own wording
 * of a label where it says something the common label does not (`labels`), and the fields it
 * requires beyond the block's (`required`). Keys and columns are the data set's: snake_case of the
 * key, as everywhere (fields.ts).
 */
import { f } from './fields.js';

type Def = ReturnType<typeof f.str>;
export type Block<K extends string> = { [P in K]: Def };

export interface BlockOpts<K extends string> {
  /** The table's own label of a field, where it says something different from the common one. */
  labels?: Partial<Record<K, string>>;
  /** Fields of the block the table requires (besides those the block always requires). */
  required?: readonly K[];
}

/** Applies a table's labels and required fields to a block (a copy: blocks are never shared objects). */
function block<K extends string>(defs: Block<K>, o: BlockOpts<K> = {}): Block<K> {
  const out = {} as Block<K>;
  for (const k of Object.keys(defs) as K[]) {
    const d: Def = { ...defs[k] };
    const label = o.labels?.[k];
    if (label !== undefined) d.label = label;
    if (o.required?.includes(k)) d.required = true;
    out[k] = d;
  }
  return out;
}

/** A block without some of its fields (a table that declares them elsewhere, or lacks them). */
export function without<K extends string, X extends K>(b: Block<K>, ...drop: X[]): Block<Exclude<K, X>> {
  const out = { ...b } as Record<string, Def>;
  for (const k of drop) delete out[k];
  return out as Block<Exclude<K, X>>;
}

/** The type of the visit (门诊, 急诊, 住院, ...) a record belongs to. */
export function activityType(o?: BlockOpts<'activityTypeCode' | 'activityTypeName'>) {
  return block(
    {
      activityTypeCode: f.str(2, '就诊记录类型代码', { domain: 'activityType' }),
      activityTypeName: f.str(20, '就诊记录类型名称'),
    },
    o,
  );
}

type VisitKey = 'patientId' | 'activityTypeCode' | 'activityTypeName' | 'serialNumber';

/**
 * The patient and the visit a record belongs to: patientId (the parent emrPatientInfo, required),
 * with `activityType: true` the visit's type, and serialNumber (就诊流水号: the outpatient number
 * of an outpatient visit, the inpatient number of a stay).
 */
export function visit(o: BlockOpts<VisitKey> & { activityType: true }): Block<VisitKey>;
export function visit(o?: BlockOpts<'patientId' | 'serialNumber'>): Block<'patientId' | 'serialNumber'>;
export function visit(o: BlockOpts<VisitKey> & { activityType?: boolean } = {}) {
  return block<VisitKey>(
    {
      patientId: f.str(80, '患者基本信息ID', { required: true }),
      ...(o.activityType ? activityType() : ({} as Block<'activityTypeCode' | 'activityTypeName'>)),
      serialNumber: f.str(20, '就诊流水号'),
    },
    o,
  );
}

/** An inpatient record's stay: patientId and serialNumber as the 住院号, both required. */
export function inpatientStay() {
  return visit({ required: ['serialNumber'], labels: { serialNumber: '住院号' } });
}

/** Who the patient is, as the record names them: name and identity document (personal data). */
export function patientIdentity(o?: BlockOpts<'patientName' | 'idCardTypeCode' | 'idCardTypeName' | 'idCard'>) {
  return block(
    {
      patientName: f.str(100, '患者姓名', { personal: 'name' }),
      idCardTypeCode: f.str(2, '身份证件类别代码', { domain: 'idType' }),
      idCardTypeName: f.str(20, '身份证件类别名称'),
      idCard: f.str(50, '身份证件号', { personal: 'idno' }),
    },
    o,
  );
}

/** Where an inpatient lies. */
export function ward() {
  return block({
    wardName: f.str(100, '病区名称'),
    wardNo: f.str(50, '病房号'),
    bedNo: f.str(50, '病床号'),
  });
}

type DemographicsKey =
  | 'genderCode'
  | 'genderName'
  | 'birthDate'
  | 'nationalityCode'
  | 'nationalityName'
  | 'nationCode'
  | 'nationName'
  | 'permanentAddrCode'
  | 'permanentAddrName'
  | 'permanentAddrDetail'
  | 'currentAddrCode'
  | 'currentAddrName'
  | 'currentAddrDetail'
  | 'workunit'
  | 'maritalStatusCode'
  | 'maritalStatusName'
  | 'tel'
  | 'contacts'
  | 'contactsTel'
  | 'educationCode'
  | 'educationName'
  | 'nultitudeTypeCode'
  | 'nultitudeTypeName'
  | 'nultitudeTypeOther';

/**
 * The patient's person: sex and birth date (required), nationality, ethnicity, addresses, work,
 * marital status, phones and contact, education and population class (emrPatientInfo, and the
 * report card which carries its own copy).
 */
export function demographics(o?: BlockOpts<DemographicsKey>) {
  return block<DemographicsKey>(
    {
      genderCode: f.str(2, '性别代码', { required: true, domain: 'sex' }),
      genderName: f.str(10, '性别名称'),
      birthDate: f.time('出生日期', { required: true, personal: 'birthdate' }),
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
      educationCode: f.str(2, '学历代码', { domain: 'education' }),
      educationName: f.str(20, '学历名称'),
      nultitudeTypeCode: f.str(2, '人群分类代码', { domain: 'populationClass' }),
      nultitudeTypeName: f.str(20, '人群分类名称'),
      nultitudeTypeOther: f.str(100, '人群分类其他'),
    },
    o,
  );
}

/** The outcome of the illness (病情转归) in a course or discharge record. */
export function diseaseProgression() {
  return block({
    diseaseProgressionCode: f.str(20, '病情转归代码', { domain: 'outcome' }),
    diseaseProgressionName: f.str(100, '病情转归名称'),
  });
}

/**
 * The organisation a record belongs to (orgCode is part of every key: required). `label` is the
 * table's own name for it (检验报告机构: the lab that reports), used for code and name alike.
 */
export function org(label?: string) {
  return block({
    orgCode: f.str(50, label ?? '医疗机构代码', { required: true }),
    orgName: f.str(150, label ?? '医疗机构名称'),
  });
}

/**
 * orgCode where the data set lacks it (items, the report card, departments): added, and part of the
 * key — required once resolved: the pipeline takes it from the record's own org field, its parent,
 * the caller's binding or the installation's org when the sender leaves it out (docs/his-guide.md "机构").
 */
export function addedOrgCode() {
  return block({ orgCode: f.str(50, '医疗机构代码（数据集中缺失，多机构部署必需，补充）', { required: true }) });
}

/** The department of the record; `label` as for org(). */
export function dept(label?: string) {
  return block({
    deptCode: f.str(20, label ?? '科室代码'),
    deptName: f.str(50, label ?? '科室名称'),
  });
}

type AuditKey = 'operatorId' | 'operationTime' | 'invalidFlag' | 'dataStatus' | 'createDate';

export interface AuditOpts extends BlockOpts<AuditKey> {
  /**
   * 'added': fields.csv lost the table's operationTime (it survives in invalidFlag's comment); it
   * is declared again, last and labelled as added (optional, as everywhere: senders omit it).
   */
  operationTime?: 'added';
}

/** Who wrote the record and when, whether it is void, its transfer state and load date. */
export function audit(o: AuditOpts = {}) {
  const defs: Block<AuditKey> = {
    operatorId: f.str(40, '操作人ID'),
    operationTime: f.time('操作时间'),
    invalidFlag: f.int('作废标志（1 作废，0 有效）'),
    dataStatus: f.str(2, '数据状态 0 未传输 1 已传输'),
    createDate: f.time('入库日期'),
  };
  if (o.operationTime !== 'added') return block(defs, o);
  const { operationTime, ...rest } = defs;
  return block<AuditKey>({ ...rest, operationTime: { ...operationTime, label: '操作时间（数据集中缺失，按通用约定补充）' } }, o);
}

export interface TailOpts extends AuditOpts {
  /** The table's own label of orgCode/orgName (see org()). */
  org?: string;
  /** The table's own label of deptCode/deptName (see dept()). */
  dept?: string;
}

/**
 * The record tail most tables end with: organisation, department, operator, operation time, void
 * flag, transfer state and load date.
 */
export function recordTail(o: TailOpts = {}) {
  return { ...org(o.org), ...dept(o.dept), ...audit(o) };
}
