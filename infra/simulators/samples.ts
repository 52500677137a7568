/**
 * A valid sample record of every resource of the data set, as an adapter would send it (camelCase,
 * local "yyyy-MM-dd HH:mm:ss" times): `sample('emrExLab', { orgCode, id, seed, patientId })`.
 * Seeded (the same seed gives the same record; the same seed and patient give the same person),
 * realistic (valid resident ID numbers, notifiable ICD-10 diagnoses for some visits, positive lab
 * results, report cards that pass the NNDRS card rules). It feeds the HIS traffic generator, the
 * bench and the tests. No real person's data.
 */
import { localTime, rng, samplePatient } from './his.js';

export interface SampleOptions {
  orgCode: string;
  id: string;
  seed?: number;
  /** The patient the record belongs to (emrPatientInfo.id); defaults to `P<seed>`. */
  patientId?: string;
  /** The parent record of an item (exLabId, exClinicalId, orderId); defaults to `<id>-parent`. */
  parentId?: string;
  /** The record's operation time (business times lie shortly before it); defaults to a minute ago. */
  at?: Date;
}

type Rec = Record<string, unknown>;

/** A visit diagnosis (ICD-10), notifiable or not, with the NNDRS disease it is reported as. */
const DIAGNOSES = [
  { icd: 'B18.1', name: '慢性乙型病毒性肝炎', nndrs: '0302', nndrsName: '乙肝', notifiable: true },
  { icd: 'J10.1', name: '流行性感冒，伴有其他呼吸道表现，流感病毒已证实', nndrs: '3500', nndrsName: '流行性感冒', notifiable: true },
  { icd: 'A15.0', name: '肺结核，经显微镜下痰检查证实', nndrs: '2606', nndrsName: '病原学阳性', notifiable: true },
  { icd: 'B01.9', name: '水痘，无并发症', nndrs: '9811', nndrsName: '水痘', notifiable: true },
  { icd: 'A01.0', name: '伤寒', nndrs: '0501', nndrsName: '伤寒', notifiable: true },
  { icd: 'J06.9', name: '急性上呼吸道感染', nndrs: null, nndrsName: null, notifiable: false },
  { icd: 'K29.7', name: '胃炎', nndrs: null, nndrsName: null, notifiable: false },
  { icd: 'I10.x', name: '原发性高血压', nndrs: null, nndrsName: null, notifiable: false },
] as const;
const NOTIFIABLE = DIAGNOSES.filter((d) => d.notifiable);

/** Lab items with a positive qualitative result (检验结果代码 01 阳性) or an abnormal value. */
const LAB_ITEMS = [
  { code: 'HBsAg', name: '乙型肝炎病毒表面抗原', result: ['01', '阳性'], q: '235.6', unit: 'IU/mL', lo: '0', hi: '0.05', ri: '2' },
  { code: 'FluA', name: '甲型流感病毒抗原', result: ['01', '阳性'], q: null, unit: null, lo: null, hi: null, ri: null },
  { code: 'ALT', name: '丙氨酸氨基转移酶', result: null, q: '86', unit: 'U/L', lo: '9', hi: '50', ri: '2' },
  { code: 'WBC', name: '白细胞计数', result: null, q: '6.2', unit: '10^9/L', lo: '3.5', hi: '9.5', ri: '0' },
  { code: 'TB-DNA', name: '结核分枝杆菌核酸', result: ['02', '阴性'], q: null, unit: null, lo: null, hi: null, ri: null },
] as const;

const DEPTS = [
  ['0301', '感染科'],
  ['0101', '内科'],
  ['0501', '急诊科'],
  ['0701', '儿科'],
] as const;
const DOCTORS = ['张医生', '李医生', '王医生', '陈医生'];

function tools(o: SampleOptions) {
  const seed = o.seed ?? 1;
  const r = rng(seed * 7919 + 13);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const at = o.at ?? new Date(Date.now() - 60_000);
  /** Local time `min` minutes before the operation time. */
  const before = (min: number) => localTime(new Date(at.getTime() - min * 60_000));
  const patientId = o.patientId ?? `P${seed}`;
  const person = samplePatient({ orgCode: o.orgCode, id: patientId, seed, at });
  const [deptCode, deptName] = pick(DEPTS);
  const serialNumber = `V${String(seed).padStart(8, '0')}`;
  const common: Rec = {
    id: o.id,
    orgCode: o.orgCode,
    orgName: '测试医院',
    deptCode,
    deptName,
    operatorId: 'his-adapter',
    operationTime: localTime(at),
    invalidFlag: 0,
  };
  const patient: Rec = {
    patientId,
    serialNumber,
    patientName: person.patientName,
    idCardTypeCode: '01',
    idCardTypeName: '居民身份证',
    idCard: person.idCard,
  };
  return { r, pick, at, before, person, common, patient, seed, parentId: o.parentId ?? `${o.id}-parent` };
}

type Builder = (o: SampleOptions) => Rec;

const builders: Record<string, Builder> = {
  baseUser: (o) => {
    const t = tools(o);
    return {
      id: o.id,
      orgCode: o.orgCode,
      userName: t.person.patientName,
      idCardTypeCode: '01',
      idCard: t.person.idCard,
      tel: t.person.tel,
      physicianNo: `11044${String(t.seed).padStart(10, '0')}`,
      deptCode: t.common.deptCode,
      invalidFlag: 0,
      loginName: `doc${t.seed}`,
      userTypeCode: t.pick(['1', '2']),
    };
  },

  baseDept: (o) => {
    const t = tools(o);
    return { orgCode: o.orgCode, deptCode: o.id, deptName: t.common.deptName, targetDeptCode: t.common.deptCode, targetDeptName: t.common.deptName };
  },

  emrPatientInfo: (o) => samplePatient({ orgCode: o.orgCode, id: o.id, seed: o.seed, at: o.at }),

  emrActivityInfo: (o) => {
    const t = tools(o);
    const dx = t.r() < 0.5 ? t.pick(NOTIFIABLE) : t.pick(DIAGNOSES);
    const [code, name] = t.pick([
      ['1', '门诊'],
      ['2', '急诊'],
      ['5', '入院'],
    ] as const);
    return {
      ...t.common,
      ...t.patient,
      activityTypeCode: code,
      activityTypeName: name,
      activityTime: t.before(30),
      chiefComplaint: '发热、咳嗽3天',
      presentIllnessHis: '患者3天前无明显诱因出现发热，最高体温39.2℃，伴咳嗽、咽痛。',
      physicalExamination: 'T 38.6℃，咽部充血，双肺呼吸音粗。',
      diagnoseTime: t.before(10),
      diseaseCode: dx.nndrs,
      diseaseName: dx.nndrsName,
      wmDiseaseCode: dx.icd,
      wmDiseaseName: dx.name,
      fillDoctor: t.pick(DOCTORS),
    };
  },

  emrInfReport: (o) => {
    const t = tools(o);
    const dx = t.pick(NOTIFIABLE);
    // Hepatitis B must be typed acute/chronic; every other disease is 未分型 (NNDRS rule).
    const [caseCode, caseName] = dx.nndrs === '0302' ? (['2', '慢性'] as const) : (['3', '未分型'] as const);
    // 病原学阳性 TB must be confirmed; the rest here may be clinical or confirmed.
    const [stateCode, stateName] = dx.nndrs === '2606' || t.r() < 0.5 ? (['2', '确诊病例'] as const) : (['1', '临床诊断病例'] as const);
    const p = t.person;
    const age = t.at.getFullYear() - Number(String(p.birthDate).slice(0, 4)) - 1;
    // A child (14 or younger) needs a guardian and a phone, and is a scattered child or a student (NNDRS rules).
    const who: Rec =
      age > 14
        ? {
            nultitudeTypeCode: '18',
            nultitudeTypeName: '家务及待业',
            maritalStatusCode: '20',
            maritalStatusName: '已婚',
            educationCode: '20',
            educationName: '大学本科教育',
          }
        : age >= 6
          ? { nultitudeTypeCode: '3', nultitudeTypeName: '学生（大中小学）', workunit: '第一实验小学', contacts: '王秀兰', contactsTel: '13800000000' }
          : { nultitudeTypeCode: '2', nultitudeTypeName: '散居儿童', contacts: '王秀兰', contactsTel: '13800000000' };
    const { orgName: _cardHasNoOrgName, ...common } = t.common;
    return {
      ...common,
      ...t.patient,
      ...who,
      activityTypeCode: '1',
      activityTypeName: '门诊',
      genderCode: p.genderCode,
      genderName: p.genderName,
      birthDate: p.birthDate,
      nationalityCode: '156',
      nationalityName: '中国',
      nationCode: '01',
      nationName: '汉族',
      currentAddrCode: p.currentAddrCode,
      currentAddrName: p.currentAddrName,
      currentAddrDetail: p.currentAddrDetail,
      tel: p.tel,
      onsetDate: t.before(3 * 24 * 60).slice(0, 10),
      diagnoseTime: t.before(60),
      diseaseCode: dx.nndrs,
      diseaseName: dx.nndrsName,
      diagnoseStateCode: stateCode,
      diagnoseStateName: stateName,
      caseTypeCode: caseCode,
      caseTypeName: caseName,
      reportDate: t.before(5),
      fillDoctor: t.pick(DOCTORS),
      reportZoneCode: String(p.currentAddrCode).slice(0, 6),
      reportZoneName: '广州市',
      reportOrgCode: o.orgCode,
      reportOrgName: '测试医院',
    };
  },

  emrExLab: (o) => {
    const t = tools(o);
    return {
      ...t.common,
      ...t.patient,
      activityTypeCode: '1',
      activityTypeName: '门诊',
      applicationFormNo: `A${t.seed}`,
      applyDeptCode: t.common.deptCode,
      applyDeptName: t.common.deptName,
      specimenNo: `S${t.seed}`,
      specimenCategoryCode: '1',
      specimenCategoryName: '血液',
      specimenSamplingDate: t.before(120),
      specimenReceivingDate: t.before(100),
      examinationDate: t.before(90),
      examinationReportNo: `R${t.seed}`,
      examinationObjectiveDesc: '乙型肝炎病毒表面抗原阳性',
      examinationReportDate: t.before(30),
      examinationReportId: 'lab-doctor-1',
    };
  },

  emrExLabItem: (o) => {
    const t = tools(o);
    const it = t.pick(LAB_ITEMS);
    return {
      id: o.id,
      orgCode: o.orgCode,
      exLabId: t.parentId,
      itemCode: it.code,
      itemName: it.name,
      examinationResultCode: it.result?.[0] ?? null,
      examinationResultName: it.result?.[1] ?? null,
      examinationQuantification: it.q,
      examinationQuantificationUnit: it.unit,
      examinationQuantificationLower: it.lo,
      examinationQuantificationUpper: it.hi,
      examinationQuantificationRi: it.ri,
      operatorId: 'his-adapter',
      operationTime: t.common.operationTime,
      invalidFlag: 0,
    };
  },

  emrExClinical: (o) => {
    const t = tools(o);
    return {
      ...t.common,
      ...t.patient,
      activityTypeCode: '1',
      activityTypeName: '门诊',
      applicationFormNo: `E${t.seed}`,
      chiefComplaint: '咳嗽、咳痰2周',
      symptomStartDate: t.before(14 * 24 * 60),
      symptomDesc: '咳嗽、咳痰伴低热',
      examinationTypeCode: 'CT',
      examinationTypeName: '计算机断层扫描',
      examinationObjectiveDesc: '右上肺见斑片状及条索状高密度影，内见小空洞。',
      examinationSubjectiveDesc: '右上肺继发性肺结核可能，请结合临床。',
      examinationReportNo: `CT${t.seed}`,
      examinationReportDate: t.before(20),
      examinationReportId: 'rad-doctor-1',
    };
  },

  emrExClinicalItem: (o) => {
    const t = tools(o);
    return {
      id: o.id,
      orgCode: o.orgCode,
      exClinicalId: t.parentId,
      itemCode: 'CT-CHEST',
      itemName: '胸部CT平扫',
      examinationResultCode: '1',
      examinationResultName: '异常',
      operatorId: 'his-adapter',
      operationTime: t.common.operationTime,
      invalidFlag: 0,
    };
  },

  emrOrder: (o) => {
    const t = tools(o);
    return {
      ...t.common,
      ...t.patient,
      activityTypeCode: '1',
      activityTypeName: '门诊',
      prescriptionNo: `RX${t.seed}`,
      prescriptionTypeCode: '1',
      prescriptionIssuanceDate: t.before(40),
      prescriptionValidityDays: '3',
      excuteDate: t.before(20),
      prescriptionIssuanceId: 'doc-1',
      prescriptionDispensingId: 'pharm-1',
    };
  },

  emrOrderItem: (o) => {
    const t = tools(o);
    const [code, name, spec] = t.pick([
      ['X05AH02', '奥司他韦胶囊', '75mg*10粒'],
      ['J01DC02', '头孢呋辛酯片', '0.25g*12片'],
      ['J04AM05', '异福酰胺片', '0.45g*100片'],
    ] as const);
    return {
      id: o.id,
      orgCode: o.orgCode,
      orderId: t.parentId,
      drugCode: code,
      drugName: name,
      drugSpecifications: spec,
      drugDosageCode: '1',
      drugDosageUnitCode: '粒',
      drugDosageUnitName: '粒',
      drugDosageTotal: '10',
      operatorId: 'his-adapter',
      operationTime: t.common.operationTime,
      invalidFlag: 0,
    };
  },

  emrDeathInfo: (o) => {
    const t = tools(o);
    return {
      ...t.common,
      ...t.patient,
      activityTypeCode: '6',
      activityTypeName: '住院',
      treatmentDesc: '入院后予抗感染、呼吸支持等治疗，病情持续恶化。',
      deadDate: t.before(6 * 60),
      directCauseName: '呼吸衰竭',
      directCauseCode: 'J96.9',
      deathDiagnosisName: '肺结核',
      deathDiagnosisCode: 'A15.0',
      chiefPhysicianId: 'doc-2',
    };
  },

  emrOutpatientRecord: (o) => {
    const t = tools(o);
    const dx = t.pick(DIAGNOSES);
    return {
      ...t.common,
      ...t.patient,
      allergyHisFlag: '0',
      outpatientDate: t.before(45),
      initalDiagnosisCode: '1',
      chiefComplaint: '发热3天',
      presentIllnessHis: '3天前出现发热，伴乏力。',
      pastIllnessHis: '既往体健。',
      physicalExamination: 'T 38.2℃，心肺未见异常。',
      wmDiagnosisCode: dx.icd,
      wmDiagnosisName: dx.name,
      treatment: '对症治疗',
    };
  },

  emrOutpatientObs: (o) => {
    const t = tools(o);
    return {
      ...t.common,
      ...t.patient,
      allergyHisFlag: '0',
      outpatientDate: t.before(8 * 60),
      initalDiagnosisCode: '1',
      chiefComplaint: '腹泻、呕吐1天',
      wmDiagnosisCode: 'A09.0',
      wmDiagnosisName: '感染性腹泻',
      course: '留观期间予补液治疗，症状好转。',
      observationDate: t.before(7 * 60),
      notes: '注意补液，观察大便次数。',
    };
  },

  emrAdmissionInfo: (o) => {
    const t = tools(o);
    return {
      ...t.common,
      ...t.patient,
      wardName: '感染科一病区',
      wardNo: '301',
      bedNo: '12',
      admissionDate: t.before(2 * 24 * 60),
      chiefComplaint: '咳嗽、咳痰伴低热2周',
      presentIllnessHis: '2周前出现咳嗽、咳痰，午后低热，伴盗汗。',
      infectionHis: '否认肝炎、结核病史。',
      physicalExamination: 'T 37.8℃，右上肺可闻及湿啰音。',
      wmInitalDiagnosisCode: 'A15.0',
      wmInitalDiagnosisName: '肺结核',
      initalDiagnosisDate: t.before(2 * 24 * 60 - 30),
      wmConfirmedDiagnosisCode: 'A15.0',
      wmConfirmedDiagnosisName: '肺结核',
      confirmedDiagnosisDate: t.before(24 * 60),
      admissionDiagnosisOrder: '1',
      visitingPhysicianId: 'doc-3',
    };
  },

  emrFirstCourse: (o) => {
    const t = tools(o);
    return {
      ...t.common,
      ...t.patient,
      wardName: '感染科一病区',
      chiefComplaint: '咳嗽、咳痰伴低热2周',
      presentIllnessHis: '青年患者，慢性起病，咳嗽咳痰伴低热盗汗。',
      diagnosisBasis: '症状、胸部CT及痰涂片抗酸染色阳性。',
      wmInitalDiagnosisCode: 'A15.0',
      wmInitalDiagnosisName: '肺结核',
      treatmentPlan: '规范抗结核治疗，隔离，复查肝功能。',
      residentPhysicianId: 'doc-4',
      diseaseProgressionCode: '3',
      diseaseProgressionName: '稳定',
    };
  },

  emrDailyCourse: (o) => {
    const t = tools(o);
    return {
      ...t.common,
      ...t.patient,
      wardName: '感染科一病区',
      course: '患者今日体温37.2℃，咳嗽较前减轻，继续当前治疗。',
      orderContent: '继续抗结核治疗',
      diseaseProgressionCode: '2',
      diseaseProgressionName: '好转',
    };
  },

  emrAdmissionRecord: (o) => {
    const t = tools(o);
    return {
      ...t.common,
      ...t.patient,
      payMethodCode: '1',
      payMethodName: '城镇职工基本医疗保险',
      admissionNum: '1',
      regNo: `BA${t.seed}`,
      admissionDate: t.before(10 * 24 * 60),
      admissionDeptCode: t.common.deptCode,
      admissionDeptName: t.common.deptName,
      dischargeDate: t.before(12 * 60),
      dischargeDeptCode: t.common.deptCode,
      dischargeDeptName: t.common.deptName,
      admissionDays: 10,
      wmOutpatientDiagnosisCode: 'A15.0',
      wmOutpatientDiagnosisName: '肺结核',
      dischargeDiagnosisCode: 'A15.0',
      dischargeDiagnosisName: '肺结核',
      allergyCode: '1',
      autopsyCode: '0',
      chiefPhysicianId: 'doc-2',
      residentPhysicianId: 'doc-4',
    };
  },

  emrDischargeInfo: (o) => {
    const t = tools(o);
    return {
      ...t.common,
      ...t.patient,
      admissionDate: t.before(10 * 24 * 60),
      admissionDesc: '咳嗽、咳痰伴低热2周入院。',
      admissionDiagnosisCode: 'A15.0',
      admissionDiagnosisName: '肺结核',
      treatmentDesc: '予规范抗结核治疗，症状缓解。',
      dischargeDesc: '一般情况好，无发热。',
      dischargeDate: t.before(12 * 60),
      dischargeDiagnosisCode: 'A15.0',
      dischargeDiagnosisName: '肺结核',
      dischargeOrder: '继续抗结核治疗，1个月后复查。',
      diseaseProgressionCode: '2',
      diseaseProgressionName: '好转',
    };
  },

  emrVitalSignsRecord: (o) => {
    const t = tools(o);
    return {
      ...t.common,
      ...t.patient,
      activityTypeCode: '6',
      activityTypeName: '住院',
      ventilatorusedCode: '0',
      ventilatorusedName: '否',
      criticalCareCode: '0',
      criticalCareName: '否',
    };
  },
};

/** The resources samples exist for (all twenty). */
export const sampleResources = Object.keys(builders);

/** A valid record of `resource` (its wire name), as an adapter would send it. */
export function sample(resource: string, o: SampleOptions): Rec {
  const b = builders[resource];
  if (!b) throw new Error(`no sample for resource ${resource}`);
  // Drop nulls: adapters leave out what they do not have.
  return Object.fromEntries(Object.entries(b(o)).filter(([, v]) => v !== null && v !== undefined));
}

/**
 * A visit (emrActivityInfo) whose Western-medicine diagnosis is ICD-10 `code` `name`, made at `diagnosedAt`
 * (the record's diagnosis and activity time, as the HIS writes them) and no TCM diagnosis: the record
 * a notifiable diagnosis arrives in.
 */
export function codedDiagnosis(o: SampleOptions & { code: string; name: string; diagnosedAt: string }): Rec {
  const { code, name, diagnosedAt: at, ...rest } = o;
  return {
    ...sample('emrActivityInfo', rest),
    wmDiseaseCode: code,
    wmDiseaseName: name,
    diseaseCode: '',
    diseaseName: '',
    diagnoseTime: at,
    activityTime: at,
  };
}
