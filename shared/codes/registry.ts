/**
 * The forty national value domains of the notice (值域代码, "40 种值域代码没有缺漏"; requirements §5),
 * as static facts: their key in code, their number, names, the data-set fields that carry them, and
 * which national list of schemas/codes (if any) the migration loads for them. What changes at run time
 * (whether a list is loaded, from which source and version, how many codes) lives in the table
 * `code_domain` (infra/db/0006_codes.sql), seeded from this file by infra/codes/seed-sql.ts.
 *
 * Where the names come from:
 *   - slots 0–32: the 33 numbered in value_domains.csv (the national front-end's CodeTypeEnum,
 *     a public front-end-compatible implementation; most entries commented out in that source);
 *   - slot 33: named by the notice itself (seed-notice-zh.md, 三.1 and (三)1: "传报卡实验室检测结论");
 *   - slots 34–36: lists the project already holds (schemas/codes) that belong to no numbered domain;
 *     whether the national front counts them among its forty is not confirmed (status `candidate`);
 *   - slots 37–39: not known (status `unknown`); docs/code-mapping.md lists the data-set fields that
 *     are likely candidates. They count as gaps until someone names and loads them.
 *
 * Domains 17/18: value_domains.csv pairs 17 病例分类代码 with diagnoseStateCode and 18 诊断状态代码
 * with caseTypeCode; the code files decide which list each field takes (docs/data-set.md, "Domain 17/18").
 * Keys are the DomainName of schemas/codes/lists.ts wherever the project has a list, so ingest can
 * pass FieldDef.domain straight to the code cache.
 */
import type { DomainName } from '../../schemas/codes/lists.js';

export type NameStatus = 'numbered' | 'named' | 'candidate' | 'unknown';

export interface DomainInfo {
  /** The key used in code, in the API and in CSV files (sex, drug, diagnosis, …). */
  readonly key: string;
  /** 0–39: the order of the registry (0–32 are the national numbers). */
  readonly slot: number;
  /** The national front-end's number (value_domains.csv), when it has one. */
  readonly no: number | null;
  readonly nameZh: string;
  readonly nameEn: string;
  /** The data-set fields that carry codes of this domain. */
  readonly fields: string;
  readonly nameStatus: NameStatus;
  /** Where the name comes from. */
  readonly nameSource: string;
  /** The schemas/codes list the migration loads, if any. */
  readonly list?: DomainName;
  /** Whether the list is public; false = it arrives by import (drugs, region and org codes, ICD-10). */
  readonly publicList: boolean;
  /** Another domain whose national codes this one uses (the address domains take region codes). */
  readonly listOf?: string;
  /** Diagnosis domains: their unmapped codes are checked against the notifiable diseases. */
  readonly diagnosis?: boolean;
  readonly note?: string;
}

const VD = 'value_domains.csv (CodeTypeEnum)';

const d = (
  slot: number,
  key: string,
  nameZh: string,
  nameEn: string,
  fields: string,
  o: Partial<Omit<DomainInfo, 'slot' | 'key' | 'nameZh' | 'nameEn' | 'fields'>> = {},
): DomainInfo => ({
  slot,
  key,
  nameZh,
  nameEn,
  fields,
  no: slot <= 32 ? slot : null,
  nameStatus: slot <= 32 ? 'numbered' : 'unknown',
  nameSource: VD,
  publicList: true,
  ...o,
});

export const DOMAINS: readonly DomainInfo[] = [
  d(0, 'org', '组织机构编码', 'organisation code', 'orgCode', { publicList: false }),
  d(1, 'idType', '身份证件类别代码', 'ID document type', 'idCardTypeCode', { list: 'idType' }),
  d(2, 'sex', '性别代码', 'sex', 'genderCode', { list: 'sex' }),
  d(3, 'ethnicity', '民族代码', 'ethnicity', 'nationCode', { list: 'ethnicity' }),
  d(4, 'maritalStatus', '婚姻状况代码', 'marital status', 'maritalStatusCode', { list: 'maritalStatus' }),
  d(5, 'region', '地区/机构代码', 'region / org code (national CDC)', 'orgCode, reportZoneCode', { publicList: false }),
  d(6, 'drug', '药品代码', 'drug code', 'drugCode', { publicList: false }),
  d(7, 'examCategory', '检查类别代码', 'exam category', 'examinationTypeCode', { publicList: false }),
  d(8, 'examItem', '检查项目代码', 'exam item', 'itemCode', { publicList: false }),
  d(9, 'examResult', '检查结果代码', 'exam result', 'examinationResultCode (exam)', { publicList: false }),
  d(10, 'labResult', '检验结果代码', 'lab test result (qualitative)', 'examinationResultCode (lab)', {
    list: 'labResult',
    note: 'only the codes seen in a public adapter are known (阳性/阴性/未检出): partial',
  }),
  d(11, 'diagnosis', '传染病诊断 ICD10 代码', 'infectious-disease diagnosis (ICD-10)', 'wmDiseaseCode, diseaseCode, wm*DiagnosisCode', {
    publicList: false,
    diagnosis: true,
  }),
  d(12, 'nationality', '国籍代码', 'nationality (GB/T 2659)', 'nationalityCode'),
  d(13, 'education', '文化程度代码', 'education (GB/T 4658)', 'educationCode', { list: 'education' }),
  d(14, 'permanentAddr', '户籍地址类别代码', 'registered residence (region code)', 'permanentAddrCode', { publicList: false, listOf: 'region' }),
  d(15, 'currentAddr', '现住址类别代码', 'current address (region code)', 'currentAddrCode', { publicList: false, listOf: 'region' }),
  d(16, 'populationClass', '人群分类代码', 'population class', 'nultitudeTypeCode', { list: 'populationClass' }),
  d(17, 'diagnosisStatus', '病例分类代码', 'case classification (diagnosis status)', 'diagnoseStateCode', {
    list: 'diagnosisStatus',
    note: 'list decided by the code file (docs/data-set.md, Domain 17/18)',
  }),
  d(18, 'caseType', '诊断状态代码', 'case type (acute/chronic)', 'caseTypeCode', {
    list: 'caseType',
    note: 'list decided by the code file (docs/data-set.md, Domain 17/18)',
  }),
  d(19, 'bsTransmission', '传染病报告卡-血源及性传播/感染途径代码', 'report card: blood/sexual transmission route', 'bsTransmissionCode', {
    publicList: false,
  }),
  d(20, 'deathCause', '传染病报告卡-直接死亡诊断代码', 'report card: direct cause of death', 'symptomsCode', { publicList: false, diagnosis: true }),
  d(21, 'discoveryMode', '发现方式代码', 'discovery mode', 'discoveryModeCode', { publicList: false }),
  d(22, 'contactType', '传染病报告卡-接触方式代码', 'report card: contact type', 'contactTypeCode', { publicList: false }),
  d(23, 'severity', '传染病报告卡-新冠临床严重程度代码', 'report card: clinical severity', 'ncvSeverityCode', { list: 'severity' }),
  d(24, 'dept', '科室代码表', 'department', 'deptCode', { publicList: false }),
  d(25, 'activityType', '诊疗活动类型代码', 'encounter activity type', 'activityTypeCode', { list: 'activityType' }),
  d(26, 'tcmDisease', '中医病证分类与代码', 'TCM disease/syndrome (GB/T 15657)', 'tcm*DiagnosisCode, tcm*SyndromeCode'),
  d(27, 'tcmTerm', '中医临床诊疗术语代码', 'TCM clinical terminology (GB/T 16751)', 'tcm*Code'),
  d(28, 'familyRelation', '家庭关系代码', 'family relationship (GB/T 4761)', '—'),
  d(29, 'payMethod', '医疗付费方式代码', 'payment method', 'payMethodCode'),
  d(30, 'specimenCategory', '标本类别代码', 'specimen category', 'specimenCategoryCode', { publicList: false }),
  d(31, 'doseUnit', '药物剂量单位代码', 'drug dose unit', 'drugDosageUnitCode', { publicList: false }),
  d(32, 'outcome', '病情转归代码表', 'disease outcome', 'diseaseProgressionCode', { list: 'outcome' }),
  d(33, 'labVerdict', '传染病报告卡-实验室检测结论代码', 'report card: laboratory verdict', 'laboratoryDetectionVerdictCode', {
    nameStatus: 'named',
    nameSource: 'the notice (seed-notice-zh.md 三.1 / (三)1: 传报卡实验室检测结论); no number known',
    publicList: false,
  }),
  d(34, 'nndrsDisease', '传染病病种交换代码', 'NNDRS disease exchange code', 'diseaseCode (report card, national side)', {
    nameStatus: 'candidate',
    nameSource: 'schemas/codes/code_nndrs_disease_exchange.csv; not confirmed as one of the forty',
    list: 'nndrsDisease',
    diagnosis: true,
  }),
  d(35, 'addressCategory', '病人属于（地址类别）代码', 'address category (CV02.01.104)', 'afpAreatype1Code', {
    nameStatus: 'candidate',
    nameSource: 'schemas/codes/code_address_category.csv; not confirmed as one of the forty',
    list: 'addressCategory',
  }),
  d(36, 'labReferenceFlag', '检验结果参考值标志', 'lab reference-range flag', 'examinationQuantificationRi', {
    nameStatus: 'candidate',
    nameSource: 'schemas/codes/code_lab_reference_flag_inferred.csv (inferred list); not confirmed as one of the forty',
    list: 'labReferenceFlag',
  }),
  d(37, 'unknown37', '（未知值域 37）', 'unknown domain 37', '—', { nameSource: 'not known', publicList: false }),
  d(38, 'unknown38', '（未知值域 38）', 'unknown domain 38', '—', { nameSource: 'not known', publicList: false }),
  d(39, 'unknown39', '（未知值域 39）', 'unknown domain 39', '—', { nameSource: 'not known', publicList: false }),
];

export const DOMAIN_COUNT = 40;

const byKey = new Map(DOMAINS.map((x) => [x.key, x]));

export function domainInfo(key: string): DomainInfo | undefined {
  return byKey.get(key);
}

export function isDomain(key: string): boolean {
  return byKey.has(key);
}

/** The domain whose national codes `key` uses (itself, or its listOf). */
export function listDomainOf(key: string): string {
  return byKey.get(key)?.listOf ?? key;
}

/**
 * The edition of each list the migration loads, as its source names it; the project's import commit
 * (dd410fa, "national code lists in the project") where the source names none.
 */
export const SEED_VERSIONS: Partial<Record<DomainName, string>> = {
  sex: 'GB/T 2261.1-2003',
  ethnicity: 'GB/T 3304-1991',
  maritalStatus: 'GB/T 2261.2-2003',
  idType: 'WS 364.3-2011',
  education: 'GB/T 4658-2006',
  nndrsDisease: 'NNDRS 2022-02-28',
};
export const SEED_DEFAULT_VERSION = 'schemas/codes@dd410fa';

/** How complete the seeded list is (labResult partial, labReferenceFlag inferred). */
export function seedListStatus(list: DomainName): 'loaded' | 'partial' | 'inferred' {
  if (list === 'labResult') return 'partial';
  if (list === 'labReferenceFlag') return 'inferred';
  return 'loaded';
}
