/**
 * Synthetic HIS records for tests, the bench and `make up` demos: realistic values, valid
 * resident ID numbers (GB 11643 check digit), and a seed for repeatability. No real person's data.
 */
import { idCheckChar } from '../../schemas/idcard.js';
import { formatLocal } from '../../shared/time/index.js';

/** A small deterministic PRNG (mulberry32), so a seed reproduces the same traffic. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SURNAMES = '王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高'.split('');
const GIVEN = '伟芳娜敏静丽强磊洋艳勇军杰娟涛明超秀兰霞平刚桂英'.split('');
/** Region codes (GB/T 2260) of a few Guangdong districts. */
const REGIONS = ['440103', '440104', '440105', '440106', '440111', '440303', '440304', '440305'];

/** A resident ID number with a valid check character; sex '1' male → odd sequence digit. */
export function residentId(region: string, birth: { y: number; m: number; d: number }, sex: '1' | '2', seq: number): string {
  const s = String(seq % 100).padStart(2, '0') + String(sex === '1' ? (seq % 5) * 2 + 1 : (seq % 5) * 2);
  const first17 = region + String(birth.y) + String(birth.m).padStart(2, '0') + String(birth.d).padStart(2, '0') + s;
  return first17 + idCheckChar(first17);
}

const pad = (n: number) => String(n).padStart(2, '0');
/** The hospital's wall-clock time, as adapters send it (China Standard Time). */
export const localTime = (d: Date) => formatLocal(d, 'Asia/Shanghai');

export interface PatientOptions {
  orgCode: string;
  id: string;
  seed?: number;
  /** The operation time; defaults to a minute ago. */
  at?: Date;
}

/** An emrPatientInfo record as an adapter would send it (camelCase, local times). */
export function samplePatient(o: PatientOptions): Record<string, unknown> {
  const r = rng(o.seed ?? 1);
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)]!;
  const sex: '1' | '2' = r() < 0.5 ? '1' : '2';
  const birth = { y: 1940 + Math.floor(r() * 80), m: 1 + Math.floor(r() * 12), d: 1 + Math.floor(r() * 28) };
  const region = pick(REGIONS);
  const at = o.at ?? new Date(Date.now() - 60_000);
  return {
    id: o.id,
    patientName: pick(SURNAMES) + pick(GIVEN) + (r() < 0.5 ? pick(GIVEN) : ''),
    idCardTypeCode: '01',
    idCardTypeName: '居民身份证',
    idCard: residentId(region, birth, sex, Math.floor(r() * 1000)),
    genderCode: sex,
    genderName: sex === '1' ? '男性' : '女性',
    birthDate: `${birth.y}-${pad(birth.m)}-${pad(birth.d)}`,
    nationalityCode: '156',
    nationalityName: '中国',
    nationCode: '01',
    nationName: '汉族',
    currentAddrCode: region + '001',
    currentAddrName: '广州市',
    currentAddrDetail: `某街道${1 + Math.floor(r() * 200)}号`,
    maritalStatusCode: '20',
    maritalStatusName: '已婚',
    tel: '13' + String(Math.floor(r() * 1e9)).padStart(9, '0'),
    orgCode: o.orgCode,
    orgName: '测试医院',
    operatorId: 'his-adapter',
    operationTime: localTime(at),
    invalidFlag: 0,
    educationCode: '20',
    educationName: '大学本科教育',
    nultitudeTypeCode: '18',
    nultitudeTypeName: '家务及待业',
  };
}
