/**
 * The infectious-disease report card (card function, realtime when the card is saved): emrInfReport
 * with its supplementary sections (AFP, hepatitis B, STD/HIV, COVID-19 severity).
 * Fields: every field of fields.csv for the table (json key, db column, Chinese label); lengths
 * from the national front-end's columns (report_card_columns.csv, the EmrInfReport JPA model).
 * Two deviations: caseTypeName is 20 (the JPA says 2, but the list's own name 未分型 has 3
 * characters), and the data set's serverityCode/Name take the lengths of severity_code/name.
 * fields.csv has no orgCode (added, required: the key is (orgCode, id); the reporting org is
 * reportOrgCode) and lost operationTime inside invalidFlag's comment (declared again, required).
 * Rules: the report-card rules of schemas/report-card.ts (report_card_rules.md).
 */
import { defineResource, type RecordOf } from './resource.js';
import { f, fields } from './fields.js';
import { activityType, addedOrgCode, audit, demographics, dept, patientIdentity, visit } from './blocks.js';
import { notInFuture } from './rules.js';
import { reportCardRules } from './report-card.js';

export const emrInfReport = defineResource({
  name: 'emrInfReport',
  table: 'emr_inf_report',
  title: '传染病报告卡',
  fn: 'card',
  deadline: 'realtime',
  businessTime: 'reportDate',
  parents: [{ resource: 'emrPatientInfo', field: 'patientId' }],
  orgField: 'reportOrgCode',
  fields: fields({
    id: f.str(80, 'ID', { required: true }),
    ...visit(),
    ...activityType(),
    ...patientIdentity({ required: ['patientName'] }),
    isDeadByThisCode: f.str(2, '是否因此病死亡代码'),
    isDeadByThisName: f.str(5, '是否因此病死亡名称'),
    onsetDate: f.time('发病日期', { required: true }),
    symptomsCode: f.str(50, '症状代码'),
    symptomsName: f.str(200, '症状名称'),
    diagnoseTime: f.time('诊断时间', { required: true }),
    diseaseCode: f.str(50, '疾病代码', { required: true }),
    diseaseName: f.str(250, '疾病名称'),
    diseaseOther: f.str(50, '其他疾病说明'),
    diagnoseStateCode: f.str(2, '诊断状态代码', { required: true, domain: 'diagnosisStatus' }),
    diagnoseStateName: f.str(20, '诊断状态名称'),
    caseTypeCode: f.str(2, '病例类型代码', { domain: 'caseType' }),
    caseTypeName: f.str(20, '病例类型名称'),
    deadDate: f.time('死亡日期'),
    laboratoryDetectionVerdictCode: f.str(2, '实验室检测判定代码'),
    laboratoryDetectionVerdictName: f.str(40, '实验室检测判定名称'),
    detectionPositiveDate: f.time('检测阳性日期'),
    detectionOrgCode: f.str(80, '检测机构代码'),
    dtDiagnose: f.time('确诊日期'),
    afpAreatype1Code: f.str(2, 'AFP地区类型1代码', { domain: 'addressCategory' }),
    afpAreatype1Name: f.str(10, 'AFP地区类型1名称'),
    afpPalsyDate: f.time('AFP麻痹日期'),
    afpDoctorDate: f.time('AFP医生报告日期'),
    afpAreatype2Code: f.str(2, 'AFP地区类型2代码'),
    afpAreatype2Name: f.str(20, 'AFP地区类型2名称'),
    afpAddrcodeCode: f.str(9, 'AFP地址代码'),
    afpAddrcodeName: f.str(150, 'AFP地址名称'),
    afpAddr: f.str(200, 'AFP详细地址', { personal: 'address' }),
    afpPalsySymptom: f.str(200, 'AFP麻痹症状'),
    reportDate: f.time('报告日期', { required: true }),
    discoveryModeCode: f.str(20, '发现方式代码'),
    discoveryModeName: f.str(50, '发现方式名称'),
    discoveryModeOther: f.str(50, '其他发现方式'),
    venerealDisCode: f.str(2, '性病代码'),
    venerealDisName: f.str(50, '性病名称'),
    bsTransmissionCode: f.str(5, '传播途径代码'),
    bsTransmissionName: f.str(50, '传播途径名称'),
    bsTransmissionOther: f.str(100, '其他传播途径'),
    contactTypeCode: f.str(10, '接触类型代码'),
    contactTypeName: f.str(80, '接触类型名称'),
    injectCount: f.str(5, '注射次数'),
    nonwebCount: f.str(5, '非网络报告次数'),
    smCount: f.str(5, '短信报告次数'),
    contactOther: f.str(80, '其他接触信息'),
    sinfectCode: f.str(5, '继发感染代码'),
    sinfectName: f.str(10, '继发感染名称'),
    serverityCode: f.str(5, '严重程度代码'),
    serverityName: f.str(20, '严重程度名称'),
    labResultCode: f.str(5, '实验室结果代码'),
    labResultName: f.str(20, '实验室结果名称'),
    hbsagCode: f.str(5, 'HBsAg代码'),
    hbsagName: f.str(20, 'HBsAg名称'),
    hbsagFirst: f.time('首次HBsAg检测日期'),
    hbsagBuxiang: f.str(10, 'HBsAg不详标识'),
    hbsagAlt: f.str(10, 'HBsAg ALT值'),
    hbcigResultCode: f.str(10, 'HBcIg结果代码'),
    hbcigResultName: f.str(15, 'HBcIg结果名称'),
    hbliverPunctureCode: f.str(10, '肝穿刺代码'),
    hbliverPunctureName: f.str(10, '肝穿刺名称'),
    hbsagChangeCode: f.str(10, 'HBsAg变化代码'),
    hbsagChangeName: f.str(10, 'HBsAg变化名称'),
    contactflagCode: f.str(5, '接触标识代码'),
    contactflagName: f.str(5, '接触标识名称'),
    fillDoctor: f.str(20, '填报医生'),
    notes: f.text('备注'),
    ncvSeverityCode: f.str(2, 'NCV严重程度代码', { domain: 'severity' }),
    ncvSeverityName: f.str(10, 'NCV严重程度名称'),
    foreignTypeCode: f.str(2, '外籍类型代码'),
    foreignTypeName: f.str(10, '外籍类型名称'),
    placeCode: f.str(12, '地点代码'),
    placeName: f.str(50, '地点名称'),
    reportZoneCode: f.str(9, '报告地区代码'),
    reportZoneName: f.str(100, '报告地区名称'),
    reportOrgCode: f.str(9, '报告机构代码'),
    reportOrgName: f.str(150, '报告机构名称'),
    ...audit({ operationTime: 'added' }),
    ...demographics({
      // The card's own wording: 常住 (where the patient usually lives), not 户籍 (registered residence).
      labels: { permanentAddrCode: '常住地址代码', permanentAddrName: '常住地址名称', permanentAddrDetail: '常住地址详情' },
    }),
    ...dept(),
    ...addedOrgCode(),
  }),
  rules: [
    notInFuture([
      'onsetDate',
      'diagnoseTime',
      'deadDate',
      'detectionPositiveDate',
      'dtDiagnose',
      'afpPalsyDate',
      'afpDoctorDate',
      'reportDate',
      'hbsagFirst',
      'createDate',
      'birthDate',
      'operationTime',
    ]),
    ...reportCardRules,
  ],
});

export type EmrInfReport = RecordOf<typeof emrInfReport>;
