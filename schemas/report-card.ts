/**
 * The report-card rules (传染病报告卡) that can be checked within one card record. Source:
 * schemas/spec/report_card_rules.md — the NNDRS data-exchange requirements ("传染病要求") as
 * paraphrased in public card-validation code (CHIS IDR_Report, RHIP idm/report). Each rule is
 * named (the `rule` of the issue) and says why in Chinese and English. Disease identity is the
 * NNDRS exchange code (code_nndrs_disease_exchange.csv, 4-digit form), found from the card's
 * diseaseCode (NNDRS code, or ICD-10) or, failing that, its diseaseName.
 */
import type { FieldIssue } from '../shared/http/errors.js';
import { lists } from './codes/lists.js';
import { checkResidentId } from './idcard.js';
import { formatLocal } from '../shared/time/index.js';
import { TIME_ZONE } from './fields.js';
import { inOrder, localDay } from './rules.js';

type Rec = Record<string, unknown>;
type Rule = (rec: Rec, now: Date) => FieldIssue[];

// ---- disease identity ---------------------------------------------------------------------

const NNDRS = new Map<string, string>(lists.nndrsDisease.codes.map((c) => [c.code, c.name]));
const NNDRS_BY_NAME = new Map<string, string>(lists.nndrsDisease.codes.map((c) => [c.name, c.code]));

/** ICD-10 (WHO; notifiable_diseases.csv) → NNDRS code, for the diseases the rules single out. */
const ICD10: Array<[RegExp, string]> = [
  [/^A00/, '0200'], // cholera
  [/^A01\.0/, '0501'], // typhoid
  [/^A01\.[1-4]/, '0502'], // paratyphoid
  [/^A15|^A16/, '2600'], // pulmonary TB (sub-type unknown)
  [/^A33/, '2500'], // neonatal tetanus
  [/^A5[0-3]/, '0800'], // syphilis (stage unknown)
  [/^A54/, '0700'], // gonorrhoea
  [/^A56/, '9804'], // genital chlamydia
  [/^A60/, '9803'], // genital herpes
  [/^A63\.0/, '9802'], // condyloma acuminatum
  [/^A80/, '0900'], // polio
  [/^A98\.4/, '9828'], // Ebola
  [/^B08\.4/, '4000'], // HFMD
  [/^B16|^B18\.[01]/, '0302'], // hepatitis B
  [/^B17\.1|^B18\.2/, '0303'], // hepatitis C
  [/^B2[0-4]/, '0600'], // AIDS
  [/^Z21/, '0601'], // HIV infection
  [/^B50/, '2302'], // falciparum malaria
  [/^B51/, '2301'], // vivax malaria
  [/^B65/, '3100'], // schistosomiasis
];

/** Names HIS systems use besides the NNDRS short names; the longer, more specific first. */
const NAMES: Array<[RegExp, string]> = [
  [/副伤寒/, '0502'],
  [/伤寒/, '0501'],
  [/乙型(病毒性)?肝炎|乙肝/, '0302'],
  [/丙型(病毒性)?肝炎|丙肝/, '0303'],
  [/血吸虫/, '3100'],
  [/霍乱/, '0200'],
  [/脊髓灰质炎|脊灰/, '0900'],
  [/间日疟/, '2301'],
  [/恶性疟/, '2302'],
  [/新生儿破伤风/, '2500'],
  [/尖锐湿疣/, '9802'],
  [/生殖器疱疹/, '9803'],
  [/沙眼衣原体/, '9804'],
  [/艾滋病病毒感染|HIV感染/i, '0601'],
  [/艾滋病/, '0600'],
  [/手足口/, '4000'],
  [/急性弛缓性麻痹|AFP/i, '9825'],
  [/埃博拉/, '9828'],
  [/淋病/, '0700'],
];

/** The NNDRS 4-digit code of the card's disease, or null when it cannot be told. */
export function diseaseOf(rec: Rec): string | null {
  const code = typeof rec.diseaseCode === 'string' ? rec.diseaseCode.trim().toUpperCase() : '';
  if (/^\d{3,4}$/.test(code)) {
    const c = code.padStart(4, '0');
    if (NNDRS.has(c)) return c;
  }
  for (const [re, c] of ICD10) if (re.test(code)) return c;
  const name = typeof rec.diseaseName === 'string' ? rec.diseaseName.trim() : '';
  if (!name) return null;
  const exact = NNDRS_BY_NAME.get(name);
  if (exact) return exact;
  for (const [re, c] of NAMES) if (re.test(name)) return c;
  return null;
}

// ---- helpers --------------------------------------------------------------------------------

const issue = (field: string, rule: string, message: string, value?: unknown): FieldIssue => ({
  field,
  rule,
  message,
  ...(value !== undefined ? { value } : {}),
});
const str = (v: unknown) => (typeof v === 'string' ? v : '');
const blank = (v: unknown) => v === undefined || v === null || v === '';
const show = (t: Date) => formatLocal(t, TIME_ZONE());

/** Age in completed years at the onset (else report, else now) — the card's reference date. */
export function ageOf(rec: Rec, now: Date): number | null {
  const birth = rec.birthDate;
  if (!(birth instanceof Date)) return null;
  const at = [rec.onsetDate, rec.reportDate].find((t): t is Date => t instanceof Date) ?? now;
  const b = localDay(birth);
  const a = localDay(at);
  return Math.floor((a - b) / 10000);
}

/** "Name" rule of the card: 2–20 characters, not only digits or symbols, not starting with one. */
function nameProblem(v: string, codeNameAllowed: boolean): string | null {
  const n = [...v].length;
  if (n < 2 || n > 20) return '长度应为 2–20 个字符 (must be 2–20 characters)';
  if (codeNameAllowed) return null;
  if (/^[\d\p{P}\p{S}\s]+$/u.test(v)) return '不能全为数字或特殊字符 (must not be only digits or symbols)';
  if (!/^\p{L}/u.test(v)) return '首字符不能为数字或特殊字符 (must not start with a digit or symbol)';
  return null;
}

// NNDRS groups (4-digit exchange codes).
const STD_AIDS = new Set(['0600', '0601', '0700', '0800', '0801', '0802', '0803', '0804', '0805', '9801', '9802', '9803', '9804']);
const SYPHILIS = new Set(['0800', '0801', '0802', '0803', '0804', '0805']);
/** Diseases whose pathogen carriers are reported (cholera, polio, hepatitis B, typhoid, paratyphoid, vivax and falciparum malaria). */
const CARRIER_OK = new Set(['0200', '0900', '0302', '0501', '0502', '2301', '2302']);
/** Only hepatitis B, hepatitis C and schistosomiasis are typed acute/chronic (病例分类2). */
const ACUTE_CHRONIC = new Set(['0302', '0303', '3100']);
/** Parent categories that must be reported with their sub-type. */
const PARENT_CATEGORIES = new Set(['0300', '0400', '0500', '0800', '1900', '2300', '2600']);
const OTHER_DISEASE = new Set(['9899', '5000']);
/** GB/T 2260 province-level codes: the first two digits of a resident ID number. */
const PROVINCES = new Set('11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 71 81 82'.split(' '));
/** 人群分类 codes (code_population_class.csv). */
const POP = { nursery: '1', scattered: '2', student: '3', other: '99' } as const;
/** Population classes whose card needs a work unit (or school / nursery). */
const NEEDS_WORKUNIT = new Set(['1', '3', '4', '9', '10', '11', '16']);
/** 病例分类 codes (code_diagnosis_status.csv; not in paper-card order). */
const STATE = { clinical: '1', confirmed: '2', suspected: '3', carrier: '4', positive: '5', ebolaObservation: '6' } as const;
const STATE_NAME: Record<string, string> = Object.fromEntries(lists.diagnosisStatus.codes.map((c) => [c.code, c.name]));
/** The unknown-ID placeholder the exchange rules allow. */
const UNKNOWN_ID = '00000000000000000X';

/** Allowed 病例分类 per disease (report_card_rules.md "病例分类"); absent = any. */
function allowedStates(d: string): { allowed: string[]; why: string } | null {
  if (SYPHILIS.has(d) || d === '0700')
    return { allowed: [STATE.confirmed, STATE.suspected], why: '梅毒、淋病只能为确诊或疑似 (syphilis, gonorrhoea: confirmed or suspected)' };
  if (d === '9802' || d === '9803') return { allowed: [STATE.confirmed, STATE.clinical], why: '尖锐湿疣、生殖器疱疹只能为确诊或临床 (confirmed or clinical)' };
  if (d === '9804') return { allowed: [STATE.confirmed], why: '生殖道沙眼衣原体感染只能为确诊 (confirmed only)' };
  if (d === '2605' || d === '2606') return { allowed: [STATE.confirmed], why: '利福平耐药/病原学阳性肺结核必须为确诊 (must be confirmed)' };
  return null;
}
function forbiddenStates(d: string): { forbidden: string[]; why: string } | null {
  const f: string[] = [];
  const why: string[] = [];
  if (d === '9825') f.push(STATE.confirmed), why.push('AFP 不能为确诊 (AFP cannot be confirmed)');
  if (['0900', '9825', '0600', '0601'].includes(d)) f.push(STATE.suspected), why.push('脊灰、AFP、艾滋病、HIV 不能为疑似 (cannot be suspected)');
  if (d === '0900' || d === '0601') f.push(STATE.clinical), why.push('脊灰、HIV 不能为临床 (cannot be clinical)');
  if (d === '2607' || d === '2608') f.push(STATE.confirmed), why.push('病原学阴性/无病原学结果肺结核不能为确诊 (cannot be confirmed)');
  return f.length ? { forbidden: f, why: why.join('；') } : null;
}

// ---- the rules ------------------------------------------------------------------------------

/** 患者姓名 2–20 chars; not only digits/symbols; STD/AIDS cards may use a code name (length only). */
export const cardPatientName: Rule = (rec) => {
  const v = str(rec.patientName);
  if (!v) return [];
  const d = diseaseOf(rec);
  const p = nameProblem(v, d !== null && STD_AIDS.has(d));
  return p ? [issue('patientName', 'cardName', `患者姓名${p}`, v)] : [];
};

/** 家长姓名 (contacts) and 联系电话 are required when the patient is 14 or younger. */
export const cardGuardian: Rule = (rec, now) => {
  const age = ageOf(rec, now);
  if (age === null || age > 14) return [];
  const out: FieldIssue[] = [];
  const c = str(rec.contacts);
  if (!c) out.push(issue('contacts', 'guardianRequired', '14岁及以下患者必须填写家长姓名 (guardian name required for age ≤ 14)'));
  else {
    const p = nameProblem(c, false);
    if (p) out.push(issue('contacts', 'cardName', `家长姓名${p}`, c));
  }
  if (blank(rec.tel) && blank(rec.contactsTel)) {
    out.push(issue('tel', 'guardianRequired', '14岁及以下患者必须填写联系电话 (a contact phone is required for age ≤ 14)'));
  }
  return out;
};

/** 联系电话: digits only, shorter than 18. */
export const cardPhone: Rule = (rec) =>
  (['tel', 'contactsTel'] as const).flatMap((k) => {
    const v = str(rec[k]);
    return v && !/^\d{1,17}$/.test(v) ? [issue(k, 'phoneFormat', '联系电话只能为数字，且少于18位 (digits only, fewer than 18)', v)] : [];
  });

/** 性别: the exchange uses 1 男 / 2 女 only. */
export const cardSex: Rule = (rec) => {
  const v = rec.genderCode;
  return typeof v === 'string' && v !== '1' && v !== '2'
    ? [issue('genderCode', 'cardSex', '报告卡性别只能为 1 男 或 2 女 (the card accepts 1 male or 2 female only)', v)]
    : [];
};

/**
 * 身份证号: required; a resident ID (type 01) has 15/18 digits with a valid check digit and a real
 * province code; older than 14 it must be the patient's own (birth date and sex match it); 14 or
 * younger a parent's number may be used; unknown = "00000000000000000X".
 */
export const cardIdNumber: Rule = (rec, now) => {
  const id = str(rec.idCard).toUpperCase();
  if (!id) return [issue('idCard', 'required', '报告卡必须填写身份证件号（不详填 00000000000000000X） (ID number required; unknown: 00000000000000000X)')];
  if (id === UNKNOWN_ID || rec.idCardTypeCode !== '01') return [];
  const r = checkResidentId(id);
  if (!r.ok) {
    return [
      issue(
        'idCard',
        r.problem === 'checksum' ? 'checksum' : 'idFormat',
        r.problem === 'checksum' ? '居民身份证号校验位错误 (GB 11643 check digit is wrong)' : '居民身份证号应为15或18位 (must be 15 or 18 digits)',
        id,
      ),
    ];
  }
  const out: FieldIssue[] = [];
  if (!PROVINCES.has(id.slice(0, 2)))
    out.push(issue('idCard', 'idProvince', '身份证号前两位不是有效的省级行政区划代码 (first two digits are not a province code, GB/T 2260)', id));
  const age = ageOf(rec, now);
  if (age !== null && age > 14) {
    const b = r.facts.birth;
    const fromId = b.y * 10000 + b.m * 100 + b.d;
    if (rec.birthDate instanceof Date && localDay(rec.birthDate) !== fromId) {
      out.push(
        issue(
          'birthDate',
          'idConsistency',
          '14岁以上患者出生日期应与本人身份证号一致 (birth date must match the own ID for age > 14)',
          show(rec.birthDate).slice(0, 10),
        ),
      );
    }
    const sex = rec.genderCode;
    if ((sex === '1' || sex === '2') && sex !== r.facts.sex) {
      out.push(issue('genderCode', 'idConsistency', '14岁以上患者性别应与本人身份证号一致 (sex must match the own ID for age > 14)', sex));
    }
  }
  return out;
};

/** 人群分类 vs age: >14 not 幼托/散居儿童; ≤14 only 幼托儿童/散居儿童/学生; "其他" needs text ≤ 15 chars. */
export const cardPopulation: Rule = (rec, now) => {
  const v = str(rec.nultitudeTypeCode);
  if (!v) return [issue('nultitudeTypeCode', 'required', '报告卡必须填写人群分类 (population class required)')];
  const out: FieldIssue[] = [];
  const age = ageOf(rec, now);
  if (age !== null && age > 14 && (v === POP.nursery || v === POP.scattered)) {
    out.push(issue('nultitudeTypeCode', 'populationAge', '14岁以上不能为幼托儿童或散居儿童 (over 14 cannot be a nursery or scattered child)', v));
  }
  if (age !== null && age <= 14 && v !== POP.nursery && v !== POP.scattered && v !== POP.student) {
    out.push(
      issue('nultitudeTypeCode', 'populationAge', '14岁及以下只能为幼托儿童、散居儿童或学生 (age ≤ 14: nursery child, scattered child or student only)', v),
    );
  }
  if (v === POP.other) {
    const o = str(rec.nultitudeTypeOther);
    if (!o) out.push(issue('nultitudeTypeOther', 'otherRequired', '人群分类为“其他”时须注明 (state the other population class)'));
    else if ([...o].length > 15) out.push(issue('nultitudeTypeOther', 'maxLength', '其他人群分类不超过15个字符 (at most 15 characters)', o));
  }
  return out;
};

/** 工作单位 ≤ 50 chars; required for teachers, health workers, workers, migrant workers, cadres, nursery children and students. */
export const cardWorkunit: Rule = (rec) => {
  const w = str(rec.workunit);
  const pop = str(rec.nultitudeTypeCode);
  if (w && [...w].length > 50) return [issue('workunit', 'maxLength', '工作单位不超过50个字符 (at most 50 characters)', w)];
  if (!w && NEEDS_WORKUNIT.has(pop))
    return [
      issue(
        'workunit',
        'workunitRequired',
        '该人群分类须填写工作单位（幼托儿童填托幼机构，学生填学校） (work unit, school or nursery required for this population class)',
      ),
    ];
  return [];
};

/** 现住址: code to township level (9 digits, not ending 000); detail ≤ 50 chars. */
export const cardAddress: Rule = (rec) => {
  const out: FieldIssue[] = [];
  const code = str(rec.currentAddrCode);
  if (!code) out.push(issue('currentAddrCode', 'required', '报告卡必须填写现住址编码 (current address code required)'));
  else if (!/^\d{9}$/.test(code) || code.endsWith('000'))
    out.push(issue('currentAddrCode', 'addrTownship', '现住址编码应精确到乡镇/街道（9位） (address code must reach township level, 9 digits)', code));
  const detail = str(rec.currentAddrDetail);
  if (detail && [...detail].length > 50) out.push(issue('currentAddrDetail', 'maxLength', '现住详细地址不超过50个字符 (at most 50 characters)', detail));
  return out;
};

/** Parent categories (病毒性肝炎, 痢疾, 伤寒+副伤寒, 梅毒, 炭疽, 疟疾, 肺结核) must be sub-typed; "其他" needs a name (< 15 chars). */
export const cardDisease: Rule = (rec) => {
  const d = diseaseOf(rec);
  if (d === null) return [];
  if (PARENT_CATEGORIES.has(d))
    return [issue('diseaseCode', 'diseaseSubtype', `${NNDRS.get(d)}须报告到亚型 (report the sub-type of ${NNDRS.get(d)})`, rec.diseaseCode)];
  if (OTHER_DISEASE.has(d)) {
    const o = str(rec.diseaseOther);
    if (!o) return [issue('diseaseOther', 'otherRequired', '疾病为“其他”时须填写疾病名称 (name the other disease)')];
    if ([...o].length >= 15) return [issue('diseaseOther', 'maxLength', '其他疾病名称应少于15个字符 (fewer than 15 characters)', o)];
  }
  return [];
};

/** 病例分类 (diagnoseStateCode) per disease: carriers only for listed diseases, STD and TB restrictions, Ebola observation. */
export const cardDiagnosisState: Rule = (rec) => {
  const s = str(rec.diagnoseStateCode);
  const d = diseaseOf(rec);
  if (!s || d === null) return [];
  const bad = (why: string) => [issue('diagnoseStateCode', 'diagnosisState', `${NNDRS.get(d)}：${STATE_NAME[s] ?? s}不允许；${why}`, s)];
  if (s === STATE.carrier && !CARRIER_OK.has(d))
    return bad(
      '病原携带者仅限霍乱、脊灰、乙肝、伤寒、副伤寒、间日疟、恶性疟 (carriers only for cholera, polio, hepatitis B, typhoid, paratyphoid, vivax and falciparum malaria)',
    );
  if (s === STATE.ebolaObservation && d !== '9828') return bad('埃博拉留观病例仅用于埃博拉出血热 (Ebola observation case is for Ebola only)');
  const a = allowedStates(d);
  if (a && !a.allowed.includes(s)) return bad(a.why);
  const f = forbiddenStates(d);
  if (f?.forbidden.includes(s)) return bad(f.why);
  return [];
};

/** 病例分类2 (caseTypeCode): hepatitis B, hepatitis C and schistosomiasis must be 急性/慢性; all others 未分型. */
export const cardCaseType: Rule = (rec) => {
  const d = diseaseOf(rec);
  if (d === null) return [];
  const v = str(rec.caseTypeCode);
  if (ACUTE_CHRONIC.has(d)) {
    return v === '1' || v === '2' ? [] : [issue('caseTypeCode', 'caseType', `${NNDRS.get(d)}必须填写急性或慢性 (must be acute or chronic)`, v || undefined)];
  }
  return v && v !== '3'
    ? [
        issue(
          'caseTypeCode',
          'caseType',
          '仅乙肝、丙肝、血吸虫病可分急性/慢性，其他疾病为未分型 (only hepatitis B/C and schistosomiasis are acute/chronic; others: not typed)',
          v,
        ),
      ]
    : [];
};

/** 新生儿破伤风: report date − birth date ≤ 28 days. */
export const cardNeonatalTetanus: Rule = (rec) => {
  if (diseaseOf(rec) !== '2500') return [];
  const b = rec.birthDate;
  const r = rec.reportDate;
  if (!(b instanceof Date) || !(r instanceof Date)) return [];
  return r.getTime() - b.getTime() > 28 * 86_400_000 + 86_399_999
    ? [
        issue(
          'birthDate',
          'neonatalAge',
          '新生儿破伤风：报告日期与出生日期相差不能超过28天 (neonatal tetanus: report within 28 days of birth)',
          show(b).slice(0, 10),
        ),
      ]
    : [];
};

/** AIDS/HIV cards (clinical or confirmed, not HK/Macao/Taiwan or foreign): demographics and registered address required. */
export const cardHivDemographics: Rule = (rec) => {
  const d = diseaseOf(rec);
  const s = str(rec.diagnoseStateCode);
  if ((d !== '0600' && d !== '0601') || (s !== STATE.clinical && s !== STATE.confirmed)) return [];
  // Foreign, HK/Macao/Taiwan: nationality other than China (GB/T 2659 156), or a travel-permit / passport ID.
  const nat = str(rec.nationalityCode);
  if ((nat && nat !== '156' && nat !== 'CHN') || ['03', '06', '07'].includes(str(rec.idCardTypeCode))) return [];
  const out: FieldIssue[] = [];
  for (const [k, label] of [
    ['nationCode', '民族'],
    ['maritalStatusCode', '婚姻状况'],
    ['educationCode', '文化程度'],
    ['permanentAddrCode', '户籍地址'],
    ['permanentAddrDetail', '户籍详细地址'],
  ] as const) {
    if (blank(rec[k])) out.push(issue(k, 'hivRequired', `艾滋病/HIV报告卡须填写${label} (required on AIDS/HIV cards)`));
  }
  const code = str(rec.permanentAddrCode);
  if (code && (!/^\d{9}$/.test(code) || code.endsWith('000')))
    out.push(issue('permanentAddrCode', 'addrTownship', '户籍地址编码应精确到乡镇/街道（9位） (township level, 9 digits)', code));
  const detail = str(rec.permanentAddrDetail);
  if (detail && [...detail].length > 50) out.push(issue('permanentAddrDetail', 'maxLength', '户籍详细地址不超过50个字符 (at most 50 characters)', detail));
  return out;
};

/** 报告人 (fillDoctor) required, 2–20 chars; 报告地区 required; 备注 ≤ 50 chars. */
export const cardReporter: Rule = (rec) => {
  const out: FieldIssue[] = [];
  const doc = str(rec.fillDoctor);
  if (!doc) out.push(issue('fillDoctor', 'required', '报告卡必须填写报告人 (reporting doctor required)'));
  else {
    const p = nameProblem(doc, false);
    if (p) out.push(issue('fillDoctor', 'cardName', `报告人${p}`, doc));
  }
  if (blank(rec.reportZoneCode)) out.push(issue('reportZoneCode', 'required', '报告卡必须填写报告地区编码 (reporting area code required)'));
  const notes = str(rec.notes);
  if (notes && [...notes].length > 50) out.push(issue('notes', 'maxLength', '备注不超过50个字符 (at most 50 characters)', notes.slice(0, 60)));
  return out;
};

/**
 * Dates of the card: 出生 ≤ 发病 ≤ 诊断 ≤ 填卡/报告; 出生 ≤ 死亡 ≤ 报告; 发病 ≤ 死亡. Compared by
 * calendar day: 发病/出生/死亡 are dates, 诊断时间 has hour precision, and a date-only report date
 * of the same day is not "before" the diagnosis hour.
 */
const deathAfterOnset = inOrder(['onsetDate', 'deadDate', 'reportDate'], { by: 'day' });
const deathAfterBirth = inOrder(['birthDate', 'deadDate'], { by: 'day' });
export const cardDates: Rule[] = [
  inOrder(['birthDate', 'onsetDate', 'diagnoseTime', 'reportDate'], { by: 'day' }),
  // Only with a death date: otherwise the first chain already said all there is.
  (rec) =>
    rec.deadDate instanceof Date
      ? [...deathAfterBirth(rec), ...deathAfterOnset(rec)].filter((i, n, all) => all.findIndex((j) => j.field === i.field) === n)
      : [],
];

/** Every report-card rule, in the order their issues are listed. */
export const reportCardRules: Rule[] = [
  cardPatientName,
  cardGuardian,
  cardPhone,
  cardSex,
  cardIdNumber,
  cardPopulation,
  cardWorkunit,
  cardAddress,
  cardDisease,
  cardDiagnosisState,
  cardCaseType,
  cardNeonatalTetanus,
  cardHivDemographics,
  cardReporter,
  ...cardDates,
];
