/**
 * The HIS traffic generator: realistic synthetic hospital traffic for the bench, the end-to-end
 * tests, the fault suite and acceptance rehearsals. No real person's data.
 *
 *   for (const item of generate({ seed: 1, count: 1000, profile: 'default' })) …   // records only
 *   const summary = await runTraffic({ baseUrl: 'http://127.0.0.1:8881', rate: 50, durationS: 60 });
 *
 * Records come in causal order per encounter (就诊): the patient, the visit with its diagnoses
 * (some notifiable ICD-10 codes), lab report headers then their items (some positive), exam headers
 * and items, prescriptions and their items, the outpatient or inpatient records (admission, first and
 * daily course, vital signs, discharge, the front page after discharge), occasional deaths, and a
 * report card (传染病报告卡) for a notifiable diagnosis. Each record is built by `sample()` (valid
 * resident ID numbers, NNDRS card rules), with the encounter's seed so one patient stays one person.
 *
 * The mix is a weight per resource (a named profile or your own); a deficit scheduler picks the
 * resource whose share is furthest behind and an open encounter that is ready for it, opening the
 * missing parents first (a lab item needs a lab report, which needs a visit, which needs a patient),
 * so the proportions hold and the order stays causal. Same seed and start time → same records.
 *
 * Options for the pipeline's harder paths: a share of parents delivered just after their first child
 * (`outOfOrderShare`: the child is held until the parent arrives), a share of deliberately invalid
 * records (`invalidShare`: each answered 400, nothing stored), a share of updates (`updateShare`: a
 * patient sent again with a changed field → version 2).
 */
import { resources } from '../../schemas/index.js';
import type { Resource } from '../../schemas/resource.js';
import { rng, localTime } from './his.js';
import { sample } from './samples.js';

type Rec = Record<string, unknown>;

/** One generated record, in sending order. */
export interface TrafficItem {
  resource: string;
  /** The receive function that owns the resource (stack.yml name). */
  fn: string;
  record: Rec;
  /** false: deliberately invalid (the front must answer 400 and store nothing). */
  valid: boolean;
  /** `${resource}|${orgCode}|${id}`: the record's identity at the front. */
  key: string;
  /** Keys of records that must be answered before this one is sent (its parents; a parent sent late waits for its child). */
  after: string[];
  /** A child sent before its parent on purpose (it will be held). */
  outOfOrder?: boolean;
  /** What was broken in an invalid record. */
  invalidBy?: string;
}

export type ProfileName = 'default' | 'outpatient' | 'inpatient';

/**
 * Records per 100 of each resource. `default` is a general hospital's day (outpatient-heavy, lab
 * items the bulk, as in the national platform's volume statistics); `outpatient` a clinic without
 * wards; `inpatient` a ward-heavy hospital.
 */
export const PROFILES: Record<ProfileName, { weights: Record<string, number>; inpatientShare: number; notifiableShare: number }> = {
  default: {
    inpatientShare: 0.2,
    notifiableShare: 0.15,
    weights: {
      emrPatientInfo: 9,
      emrActivityInfo: 12,
      emrInfReport: 1,
      emrExLab: 7,
      emrExLabItem: 26,
      emrExClinical: 3,
      emrExClinicalItem: 5,
      emrOrder: 7,
      emrOrderItem: 14,
      emrDeathInfo: 0.2,
      emrOutpatientRecord: 5,
      emrOutpatientObs: 0.6,
      emrAdmissionInfo: 1.2,
      emrFirstCourse: 1.2,
      emrDailyCourse: 3,
      emrVitalSignsRecord: 3,
      emrDischargeInfo: 1,
      emrAdmissionRecord: 1,
      baseUser: 0.5,
      baseDept: 0.3,
    },
  },
  outpatient: {
    inpatientShare: 0,
    notifiableShare: 0.15,
    weights: {
      emrPatientInfo: 12,
      emrActivityInfo: 16,
      emrInfReport: 1.5,
      emrExLab: 8,
      emrExLabItem: 24,
      emrExClinical: 3,
      emrExClinicalItem: 4,
      emrOrder: 10,
      emrOrderItem: 12,
      emrOutpatientRecord: 8,
      emrOutpatientObs: 1.5,
    },
  },
  inpatient: {
    inpatientShare: 1,
    notifiableShare: 0.2,
    weights: {
      emrPatientInfo: 5.5,
      emrActivityInfo: 6.5,
      emrInfReport: 1,
      emrExLab: 6,
      emrExLabItem: 22,
      emrExClinical: 3,
      emrExClinicalItem: 5,
      emrOrder: 6,
      emrOrderItem: 14,
      emrDeathInfo: 0.5,
      emrAdmissionInfo: 4,
      emrFirstCourse: 4,
      emrDailyCourse: 10,
      emrVitalSignsRecord: 8,
      emrDischargeInfo: 3,
      emrAdmissionRecord: 3,
    },
  },
};

export interface GenerateOptions {
  /** Same seed (and start) → same records. Default 1. */
  seed?: number;
  /** How many records at most. Default 1000; never more than 10 000 000. */
  count?: number;
  /** Several hospitals on one front (9-digit org codes). Default three. */
  orgCodes?: string[];
  /** A named mix (default 'default'). */
  profile?: ProfileName;
  /** Weights per resource (wire name), replacing the profile's weights; 0 or absent = never. */
  mix?: Record<string, number>;
  /** Share of new encounters that are inpatient (住院). Default: the profile's. */
  inpatientShare?: number;
  /** Share of visits with a notifiable diagnosis (法定传染病). Default: the profile's. */
  notifiableShare?: number;
  /** Share of parents (patient, lab / exam / order header) sent just after their first child. Default 0. */
  outOfOrderShare?: number;
  /** Share of deliberately invalid records. Default 0. */
  invalidShare?: number;
  /** Share of records that are a patient sent again with a changed field. Default 0. */
  updateShare?: number;
  /** Prefix of every record id, so runs do not collide on one front. Default `t<seed>`. */
  idPrefix?: string;
  /** The time of the first record (business times lie before it). Default: now. */
  start?: Date;
  /** Records per second the operation times advance by (a run at this rate sends each record at about its operation time). Default: none (all at start). */
  rate?: number;
}

const MAX_COUNT = 10_000_000;
const DEFAULT_ORGS = ['440106001', '440106002', '440106003'];

/** NNDRS disease → the ICD-10 visit diagnosis it is reported for (the samples' notifiable set). */
const NOTIFIABLE_ICD: Record<string, [string, string]> = {
  '0302': ['B18.1', '慢性乙型病毒性肝炎'],
  '3500': ['J10.1', '流行性感冒，伴有其他呼吸道表现，流感病毒已证实'],
  '2606': ['A15.0', '肺结核，经显微镜下痰检查证实'],
  '9811': ['B01.9', '水痘，无并发症'],
  '0501': ['A01.0', '伤寒'],
};
const ORDINARY_DX: Array<[string, string]> = [
  ['J06.9', '急性上呼吸道感染'],
  ['K29.7', '胃炎'],
  ['I10.x', '原发性高血压'],
  ['E11.9', '2型糖尿病，不伴有并发症'],
  ['M54.5', '下背痛'],
];

/** Short id tags per resource: ids read like `t1-LI42`. */
const TAG: Record<string, string> = {
  baseUser: 'U',
  baseDept: 'D',
  emrPatientInfo: 'P',
  emrActivityInfo: 'A',
  emrInfReport: 'C',
  emrExLab: 'L',
  emrExLabItem: 'LI',
  emrExClinical: 'E',
  emrExClinicalItem: 'EI',
  emrOrder: 'O',
  emrOrderItem: 'OI',
  emrDeathInfo: 'X',
  emrOutpatientRecord: 'OR',
  emrOutpatientObs: 'OB',
  emrAdmissionInfo: 'AI',
  emrFirstCourse: 'FC',
  emrDailyCourse: 'DC',
  emrAdmissionRecord: 'AR',
  emrDischargeInfo: 'DI',
  emrVitalSignsRecord: 'VS',
};

interface Header {
  id: string;
  items: number;
  max: number;
}

/** One patient's encounter (就诊) at one hospital: what has been sent so far. */
interface Encounter {
  orgCode: string;
  seed: number;
  patientId: string;
  kind: 'outpatient' | 'inpatient';
  /** The notifiable disease of this encounter (NNDRS code), decided at its first notifiable visit. */
  disease: { code: string; name: string } | null;
  visits: number;
  notifiableVisit: boolean;
  card: boolean;
  labs: Header[];
  exams: Header[];
  orders: Header[];
  outpatientRecord: boolean;
  observation: boolean;
  admitted: boolean;
  firstCourse: boolean;
  dailyCourses: number;
  vitals: number;
  discharged: boolean;
  frontPage: boolean;
  dead: boolean;
}

interface Want {
  kind?: 'outpatient' | 'inpatient';
  notifiable?: boolean;
  /** Which encounters can serve: a prerequisite is sent where it makes the wanted record possible. */
  where?: (e: Encounter) => boolean;
}

/** What a resource needs of an encounter, and what to send first when no open encounter is ready. */
interface Step {
  ready: (e: Encounter) => boolean;
  /** The resource to send first (and for which encounters) when no open encounter is ready. */
  prereq: (want: Want) => [string, Want] | null;
}

const open = (hs: Header[]) => hs.find((h) => h.items < h.max);
const alive = (e: Encounter) => !e.dead && !e.frontPage;
const inpatientOpen = (e: Encounter) => alive(e) && e.kind === 'inpatient' && e.admitted && !e.discharged;
const IN = 'inpatient' as const;
const OUT = 'outpatient' as const;

const STEPS: Record<string, Step> = {
  emrPatientInfo: { ready: () => false, prereq: () => null },
  emrActivityInfo: { ready: (e) => alive(e) && e.visits < 2 && !e.discharged, prereq: (w) => ['emrPatientInfo', { kind: w.kind }] },
  emrInfReport: {
    ready: (e) => e.notifiableVisit && !e.card,
    prereq: (w) => ['emrActivityInfo', { kind: w.kind, notifiable: true, where: (e) => !e.notifiableVisit && !e.card }],
  },
  emrExLab: {
    ready: (e) => alive(e) && e.visits > 0 && e.labs.length < 2 && !e.discharged,
    prereq: (w) => ['emrActivityInfo', { kind: w.kind, where: (e) => e.labs.length < 2 }],
  },
  emrExLabItem: { ready: (e) => open(e.labs) !== undefined, prereq: (w) => ['emrExLab', { kind: w.kind }] },
  emrExClinical: {
    ready: (e) => alive(e) && e.visits > 0 && e.exams.length < 1 && !e.discharged,
    prereq: (w) => ['emrActivityInfo', { kind: w.kind, where: (e) => e.exams.length < 1 }],
  },
  emrExClinicalItem: { ready: (e) => open(e.exams) !== undefined, prereq: (w) => ['emrExClinical', { kind: w.kind }] },
  emrOrder: {
    ready: (e) => alive(e) && e.visits > 0 && e.orders.length < 2 && !e.discharged,
    prereq: (w) => ['emrActivityInfo', { kind: w.kind, where: (e) => e.orders.length < 2 }],
  },
  emrOrderItem: { ready: (e) => open(e.orders) !== undefined, prereq: (w) => ['emrOrder', { kind: w.kind }] },
  emrOutpatientRecord: {
    ready: (e) => alive(e) && e.kind === OUT && e.visits > 0 && !e.outpatientRecord,
    prereq: () => ['emrActivityInfo', { kind: OUT, where: (e) => !e.outpatientRecord }],
  },
  emrOutpatientObs: {
    ready: (e) => alive(e) && e.kind === OUT && e.outpatientRecord && !e.observation,
    prereq: () => ['emrOutpatientRecord', { kind: OUT }],
  },
  emrAdmissionInfo: {
    ready: (e) => alive(e) && e.kind === IN && e.visits > 0 && !e.admitted,
    prereq: () => ['emrActivityInfo', { kind: IN, where: (e) => !e.admitted }],
  },
  emrFirstCourse: { ready: (e) => inpatientOpen(e) && !e.firstCourse, prereq: () => ['emrAdmissionInfo', { kind: IN }] },
  emrDailyCourse: { ready: (e) => inpatientOpen(e) && e.firstCourse && e.dailyCourses < 6, prereq: () => ['emrFirstCourse', { kind: IN }] },
  emrVitalSignsRecord: { ready: (e) => inpatientOpen(e) && e.vitals < 6, prereq: () => ['emrAdmissionInfo', { kind: IN }] },
  emrDischargeInfo: { ready: (e) => inpatientOpen(e) && e.firstCourse, prereq: () => ['emrFirstCourse', { kind: IN }] },
  emrAdmissionRecord: {
    ready: (e) => e.kind === IN && e.discharged && !e.frontPage && !e.dead,
    prereq: () => ['emrDischargeInfo', { kind: IN }],
  },
  emrDeathInfo: { ready: (e) => inpatientOpen(e), prereq: () => ['emrAdmissionInfo', { kind: IN }] },
  baseUser: { ready: () => true, prereq: () => null },
  baseDept: { ready: () => true, prereq: () => null },
};

export const keyOf = (resource: string, orgCode: string, id: string) => `${resource}|${orgCode}|${id}`;

/** Resolves a profile and overrides into normalised shares per resource (sum 1). */
export function mixOf(o: Pick<GenerateOptions, 'profile' | 'mix'> = {}): Record<string, number> {
  const profile = PROFILES[o.profile ?? 'default'];
  if (!profile) throw new Error(`unknown profile ${o.profile} (default | outpatient | inpatient)`);
  const weights = o.mix ?? profile.weights;
  const out: Record<string, number> = {};
  let total = 0;
  for (const [name, w] of Object.entries(weights)) {
    if (!resources[name]) throw new Error(`mix: unknown resource ${name}`);
    if (!Number.isFinite(w) || w < 0) throw new Error(`mix: weight of ${name} must be a number ≥ 0`);
    if (w > 0) {
      out[name] = w;
      total += w;
    }
  }
  if (total === 0) throw new Error('mix: every weight is 0');
  for (const k of Object.keys(out)) out[k] = out[k]! / total;
  return out;
}

function share(v: number | undefined, name: string, dflt: number): number {
  const x = v ?? dflt;
  if (!(x >= 0 && x <= 1)) throw new Error(`${name} must be between 0 and 1`);
  return x;
}

/**
 * The traffic as an iterator, in sending order. Bounded by `count`. Lazily built: a million records
 * cost no memory beyond the open encounters.
 */
export function* generate(opts: GenerateOptions = {}): Generator<TrafficItem> {
  const seed = opts.seed ?? 1;
  const count = Math.min(opts.count ?? 1000, MAX_COUNT);
  const orgs = opts.orgCodes?.length ? opts.orgCodes : DEFAULT_ORGS;
  const profile = PROFILES[opts.profile ?? 'default'];
  const mix = mixOf(opts);
  const inpatientShare = share(opts.inpatientShare, 'inpatientShare', profile.inpatientShare);
  const notifiableShare = share(opts.notifiableShare, 'notifiableShare', profile.notifiableShare);
  const oooShare = share(opts.outOfOrderShare, 'outOfOrderShare', 0);
  const invalidShare = share(opts.invalidShare, 'invalidShare', 0);
  const updateShare = share(opts.updateShare, 'updateShare', 0);
  const prefix = opts.idPrefix ?? `t${seed}`;
  const start = (opts.start ?? new Date()).getTime();
  const r = rng(seed * 2654435761 + 97);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const seedOf = () => 1 + Math.floor(r() * 2_000_000_000);

  const names = Object.keys(mix);
  const emitted: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  const serial: Record<string, number> = {};
  const nextId = (resource: string) => `${prefix}-${TAG[resource]}${(serial[resource] = (serial[resource] ?? 0) + 1)}`;
  let n = 0;
  const atOf = () => new Date(start + (opts.rate ? (n * 1000) / opts.rate : 0) - 60_000);

  const active: Encounter[] = [];
  const MAX_ACTIVE = 64;
  /** Parents held back until their first child has been sent (out-of-order delivery). */
  const deferred = new Map<string, { item: TrafficItem; age: number }>();
  const deferredIds = new Set<string>();
  const out: TrafficItem[] = [];

  const item = (resource: string, record: Rec, after: string[], valid = true): TrafficItem => {
    const def = resources[resource]!;
    // baseDept travels without an id: its key is deptCode (the declaration's keyField).
    const id = record.id ?? (def.keyField ? record[def.keyField] : undefined);
    return { resource, fn: def.fn, record, valid, key: keyOf(resource, String(record.orgCode), String(id)), after };
  };

  /** Queues a record; a child of a deferred parent goes first and releases it. */
  const push = (it: TrafficItem, deferrable: boolean) => {
    const waiting = it.after.filter((k) => deferred.has(k));
    if (waiting.length) {
      it.after = it.after.filter((k) => !deferred.has(k));
      it.outOfOrder = true;
      out.push(it);
      for (const k of waiting) {
        const d = deferred.get(k)!;
        deferred.delete(k);
        deferredIds.delete(String(d.item.record.id));
        d.item.after.push(it.key);
        out.push(d.item);
      }
    } else if (deferrable && r() < oooShare) {
      deferred.set(it.key, { item: it, age: 0 });
      deferredIds.add(String(it.record.id));
    } else {
      out.push(it);
    }
    for (const [k, d] of deferred) {
      // A parent whose child does not come soon is sent anyway: nothing waits for ever.
      if (++d.age > 8) {
        deferred.delete(k);
        deferredIds.delete(String(d.item.record.id));
        out.push(d.item);
      }
    }
  };

  const newEncounter = (want: Want): Encounter => {
    const kind = want.kind ?? (r() < inpatientShare ? 'inpatient' : 'outpatient');
    const e: Encounter = {
      orgCode: pick(orgs),
      seed: seedOf(),
      patientId: nextId('emrPatientInfo'),
      kind,
      disease: null,
      visits: 0,
      notifiableVisit: false,
      card: false,
      labs: [],
      exams: [],
      orders: [],
      outpatientRecord: false,
      observation: false,
      admitted: false,
      firstCourse: false,
      dailyCourses: 0,
      vitals: 0,
      discharged: false,
      frontPage: false,
      dead: false,
    };
    active.push(e);
    if (active.length > MAX_ACTIVE) active.shift();
    return e;
  };

  const patientKey = (e: Encounter) => keyOf('emrPatientInfo', e.orgCode, e.patientId);
  const base = (e: Encounter, resource: string, extra: Partial<{ parentId: string }> = {}) => {
    const id = nextId(resource);
    return sample(resource, { orgCode: e.orgCode, id, seed: e.seed, patientId: e.patientId, at: atOf(), ...extra });
  };

  /** Sends `resource` for a ready encounter, opening missing parents first. Returns false if nothing could be sent. */
  const emit = (resource: string, want: Want, depth = 0): void => {
    if (depth > 8) throw new Error(`traffic: no way to send ${resource}`);
    if (resource === 'emrPatientInfo') {
      const e = newEncounter(want);
      const rec = sample('emrPatientInfo', { orgCode: e.orgCode, id: e.patientId, seed: e.seed, at: atOf() });
      count1('emrPatientInfo');
      push(item('emrPatientInfo', rec, []), true);
      return;
    }
    if (resource === 'baseUser' || resource === 'baseDept') {
      const org = pick(orgs);
      const id = nextId(resource);
      const rec = sample(resource, { orgCode: org, id, seed: seedOf(), at: atOf() });
      count1(resource);
      push(item(resource, rec, []), false);
      return;
    }
    const step = STEPS[resource]!;
    const ready = active.filter((e) => step.ready(e) && (!want.kind || e.kind === want.kind) && (!want.where || want.where(e)));
    if (ready.length === 0) {
      const pre = step.prereq(want);
      if (!pre) throw new Error(`traffic: no way to send ${resource}`);
      emit(pre[0], pre[1], depth + 1);
      // The prerequisite may have opened what was missing (a new lab report); send the resource itself next time.
      return;
    }
    // An encounter whose parent record is held back for out-of-order delivery goes first: its child leads.
    const waiting = ready.filter((x) => deferred.has(patientKey(x)) || [...x.labs, ...x.exams, ...x.orders].some((h) => deferredIds.has(h.id)));
    const e = pick(waiting.length ? waiting : ready);
    const pk = [patientKey(e)];
    let rec: Rec;
    let after = pk;
    let deferrable = false;
    switch (resource) {
      case 'emrActivityInfo': {
        rec = base(e, resource);
        const notifiable = want.notifiable || (!e.notifiableVisit && r() < notifiableShare);
        if (notifiable) {
          // The disease the encounter's report card will name (the card sample's choice for this patient).
          const card = sample('emrInfReport', { orgCode: e.orgCode, id: 'x', seed: e.seed, patientId: e.patientId, at: atOf() });
          const code = String(card.diseaseCode);
          const [icd, icdName] = NOTIFIABLE_ICD[code]!;
          Object.assign(rec, { diseaseCode: code, diseaseName: card.diseaseName, wmDiseaseCode: icd, wmDiseaseName: icdName });
          e.disease = { code, name: String(card.diseaseName) };
          e.notifiableVisit = true;
        } else {
          const [icd, icdName] = pick(ORDINARY_DX);
          delete rec.diseaseCode;
          delete rec.diseaseName;
          Object.assign(rec, { wmDiseaseCode: icd, wmDiseaseName: icdName });
        }
        if (e.kind === 'inpatient') Object.assign(rec, { activityTypeCode: '5', activityTypeName: '入院' });
        else if (rec.activityTypeCode === '5') Object.assign(rec, { activityTypeCode: '1', activityTypeName: '门诊' });
        e.visits++;
        break;
      }
      case 'emrInfReport':
        rec = base(e, resource);
        e.card = true;
        break;
      case 'emrExLab':
      case 'emrExClinical':
      case 'emrOrder': {
        rec = base(e, resource);
        const list = resource === 'emrExLab' ? e.labs : resource === 'emrExClinical' ? e.exams : e.orders;
        list.push({ id: String(rec.id), items: 0, max: resource === 'emrExLab' ? 2 + Math.floor(r() * 6) : 1 + Math.floor(r() * 4) });
        deferrable = true;
        break;
      }
      case 'emrExLabItem':
      case 'emrExClinicalItem':
      case 'emrOrderItem': {
        const parent = resource === 'emrExLabItem' ? 'emrExLab' : resource === 'emrExClinicalItem' ? 'emrExClinical' : 'emrOrder';
        const h = open(resource === 'emrExLabItem' ? e.labs : resource === 'emrExClinicalItem' ? e.exams : e.orders)!;
        h.items++;
        // Each item its own seed: lab items vary (HBsAg / FluA positive, ALT high, WBC normal …).
        const id = nextId(resource);
        rec = sample(resource, { orgCode: e.orgCode, id, seed: seedOf(), patientId: e.patientId, parentId: h.id, at: atOf() });
        after = [keyOf(parent, e.orgCode, h.id)];
        break;
      }
      case 'emrOutpatientRecord':
        rec = base(e, resource);
        e.outpatientRecord = true;
        break;
      case 'emrOutpatientObs':
        rec = base(e, resource);
        e.observation = true;
        break;
      case 'emrAdmissionInfo':
        rec = base(e, resource);
        e.admitted = true;
        break;
      case 'emrFirstCourse':
        rec = base(e, resource);
        e.firstCourse = true;
        break;
      case 'emrDailyCourse':
        rec = base(e, resource);
        e.dailyCourses++;
        break;
      case 'emrVitalSignsRecord':
        rec = base(e, resource);
        e.vitals++;
        break;
      case 'emrDischargeInfo':
        rec = base(e, resource);
        e.discharged = true;
        break;
      case 'emrAdmissionRecord':
        rec = base(e, resource);
        e.frontPage = true;
        break;
      case 'emrDeathInfo':
        rec = base(e, resource);
        e.dead = true;
        break;
      default:
        throw new Error(`traffic: no step for ${resource}`);
    }
    count1(resource);
    push(item(resource, rec, after), deferrable);
  };

  /** Records of the mix sent so far (invalid records and updates are extra, outside the shares). */
  let m = 0;
  const count1 = (resource: string) => {
    emitted[resource] = (emitted[resource] ?? 0) + 1;
    n++;
    m++;
  };

  /** A patient of an open encounter sent again with a new phone number: version 2 at the front. */
  const update = (): boolean => {
    const e = active.length ? pick(active) : undefined;
    // Only a patient the front has surely been sent (not one held back for out-of-order delivery).
    if (!e?.visits || deferred.has(patientKey(e))) return false;
    const rec = sample('emrPatientInfo', { orgCode: e.orgCode, id: e.patientId, seed: e.seed, at: atOf() });
    rec.tel = '139' + String(Math.floor(r() * 1e8)).padStart(8, '0');
    n++;
    push(item('emrPatientInfo', rec, [patientKey(e)]), false);
    return true;
  };

  /** A record of `resource` broken on purpose, with an id of its own (nothing else refers to it). */
  const invalid = (resource: string) => {
    const def = resources[resource]!;
    const id = `${nextId(resource)}-bad`;
    const org = pick(orgs);
    const rec = sample(resource, { orgCode: org, id, seed: seedOf(), patientId: `${prefix}-nobody`, parentId: `${prefix}-none`, at: atOf() });
    const how = corrupt(def, rec, r, atOf());
    n++;
    const it = item(resource, rec, [], false);
    it.invalidBy = how;
    push(it, false);
  };

  while (n < count) {
    while (out.length) {
      yield out.shift()!;
    }
    if (n >= count) break;
    const roll = r();
    // The resource furthest behind its share (with a little jitter, so equal shares interleave).
    let best = names[0]!;
    let bestScore = -Infinity;
    for (const name of names) {
      const score = mix[name]! * (m + 1) - emitted[name]! + r() * 0.5;
      if (score > bestScore) {
        bestScore = score;
        best = name;
      }
    }
    if (roll < invalidShare) invalid(best);
    else if (roll < invalidShare + updateShare && update()) continue;
    else emit(best, {});
  }
  // Parents still held back leave now (a child sent early always has its parent behind it).
  for (const [, d] of deferred) out.push(d.item);
  deferred.clear();
  while (out.length) yield out.shift()!;
}

/**
 * Breaks a valid record so validation must refuse it, keeping its key (so "nothing was stored for
 * it" can be checked): a required field left out, a time in the future, a number that is not one.
 */
export function corrupt(def: Resource, rec: Rec, r: () => number, at: Date = new Date()): string {
  const parentFields = new Set(def.parents.map((p) => p.field));
  const droppable = def.required.filter((k) => k !== 'id' && k !== 'orgCode' && k !== def.keyField && !parentFields.has(k) && k in rec);
  const ways: Array<() => string> = [];
  if (droppable.length) {
    ways.push(() => {
      const k = droppable[Math.floor(r() * droppable.length)]!;
      delete rec[k];
      return `missing required ${k}`;
    });
  }
  if (def.required.includes('operationTime')) {
    ways.push(() => {
      // Days after the record's own time (not the wall clock): the same seed gives the same record.
      rec.operationTime = localTime(new Date(at.getTime() + 3 * 86_400_000));
      return 'operationTime in the future';
    });
  }
  if (def.fields.invalidFlag) {
    ways.push(() => {
      rec.invalidFlag = 'yes';
      return 'invalidFlag not a number';
    });
  }
  return ways[Math.floor(r() * ways.length)]!();
}

// ---- sending ---------------------------------------------------------------------------------------

/** A unit of sending: one record, or a batch of records of one resource (a JSON array). */
export interface Unit {
  resource: string;
  items: TrafficItem[];
}

/**
 * Groups the traffic into batches of up to `size` records of one resource, as an adapter that polls
 * its HIS views does: a window of records is split per resource, parents' resources first (patients,
 * then headers, then items), and a child sent early on purpose goes in a batch of its own before them.
 */
export function* batches(items: Iterable<TrafficItem>, size: number): Generator<Unit> {
  if (size <= 1) {
    for (const it of items) yield { resource: it.resource, items: [it] };
    return;
  }
  const window = size * 8;
  let buf: TrafficItem[] = [];
  const flush = function* (): Generator<Unit> {
    const early = buf.filter((i) => i.outOfOrder);
    for (const it of early) yield { resource: it.resource, items: [it] };
    const groups = new Map<string, TrafficItem[]>();
    for (const it of buf) {
      if (it.outOfOrder) continue;
      const g = groups.get(it.resource) ?? [];
      g.push(it);
      groups.set(it.resource, g);
    }
    const order = [...groups.keys()].sort((a, b) => depth(a) - depth(b));
    for (const res of order) {
      const g = groups.get(res)!;
      for (let i = 0; i < g.length; i += size) yield { resource: res, items: g.slice(i, i + size) };
    }
    buf = [];
  };
  for (const it of items) {
    buf.push(it);
    if (buf.length >= window) yield* flush();
  }
  if (buf.length) yield* flush();
}

/** How far a resource is from the root of the parent graph (patient 0, lab report 1, lab item 2). */
export function depth(resource: string, seen = new Set<string>()): number {
  const r = resources[resource];
  if (!r || seen.has(resource) || r.parents.length === 0) return 0;
  seen.add(resource);
  return 1 + Math.max(...r.parents.map((p) => depth(p.resource, seen)));
}

export interface RunOptions extends GenerateOptions {
  /** The data port, e.g. http://127.0.0.1:8881. Records go to `${baseUrl}/hclient/emr/receive/<resource>`. */
  baseUrl: string;
  /** Records per second (a batch leaves when its last record's time has come). */
  rate: number;
  /** Stop after this long (seconds) … */
  durationS?: number;
  /** … or after this many records, whichever comes first (one of the two is required). */
  count?: number;
  /** Records per POST: 1 (default) sends objects, more sends JSON arrays of one resource. */
  batch?: number;
  /** Requests in flight at most. Default 8. */
  concurrency?: number;
  /** X-Api-Key of a registered HIS caller. */
  apiKey?: string;
  /** Extra headers on every request (X-Test-Mode: 1, X-Forwarded-For …). */
  headers?: Record<string, string>;
  /** Per-request timeout. Default 15 s. */
  timeoutMs?: number;
  /** Allow a non-loopback URL (a real front in a test hospital). Default: refused. */
  allowRemote?: boolean;
  /** Called about every second with the counts so far. */
  onProgress?: (p: Progress) => void;
  /** The fetch to use (tests may route it in process). */
  fetch?: typeof fetch;
}

export interface Progress {
  elapsedS: number;
  sent: number;
  acknowledged: number;
  rejected: number;
  errors: number;
}

/** A record the front acknowledged (2xx, result true): the fault suite compares these with what the platform got. */
export interface Acknowledged {
  resource: string;
  orgCode: string;
  id: string;
  version: number;
  status: string;
  /** The front holds it back from the platforms (its parent has not arrived). */
  held: boolean;
}

export interface TrafficSummary {
  sent: number;
  requests: number;
  acknowledged: number;
  acknowledgedByResource: Record<string, number>;
  held: number;
  /** 4xx (or a batch's result false). */
  rejected: number;
  rejectedByStatus: Record<string, number>;
  /** 5xx and network failures (timeouts, refused connections). */
  errors: number;
  errorSamples: string[];
  /** A valid record refused, or an invalid one accepted: a disagreement between generator and front. */
  unexpected: { validRejected: number; invalidAccepted: number; samples: string[] };
  latencyMs: { p50: number; p99: number; max: number };
  durationS: number;
  recordsPerS: number;
  acknowledgedRecords: Acknowledged[];
}

const LOOPBACK_HOSTS = new Set(['localhost', '::1', '[::1]']);

/** Whether a URL points at this machine (127.0.0.0/8, ::1, localhost). */
export function isLoopbackUrl(url: string): boolean {
  const h = new URL(url).hostname;
  return LOOPBACK_HOSTS.has(h) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

interface AnswerLike {
  result?: boolean;
  id?: string | null;
  version?: number;
  status?: string;
  held?: string[];
  errorCode?: string | null;
  desc?: string;
  results?: AnswerLike[];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** How far past the end of a bounded run the parents owed to early children are looked for. */
const MAX_OWED_SCAN = 5000;

/**
 * Posts the traffic to a front's data port at `rate` records/s with at most `concurrency` requests in
 * flight; a record waits for the answers to the records it must follow (its parents, or — for a
 * parent sent late on purpose — its child). Bounded by `count` and/or `durationS`; a child sent early
 * on purpose still gets its parent when the bound falls between them.
 */
export async function runTraffic(o: RunOptions): Promise<TrafficSummary> {
  if (!o.allowRemote && !isLoopbackUrl(o.baseUrl)) {
    throw new Error(`refusing to send synthetic traffic to ${o.baseUrl}: not a loopback address (use allowRemote / --allow-remote for a test front)`);
  }
  if (!(o.rate > 0)) throw new Error('rate must be > 0 records/s');
  if (o.count === undefined && o.durationS === undefined) throw new Error('give count or durationS (traffic is always bounded)');
  const durationMs = o.durationS !== undefined ? o.durationS * 1000 : Infinity;
  const count = Math.min(o.count ?? Math.ceil(o.rate * (o.durationS ?? 0)) + 1, MAX_COUNT);
  const batch = Math.max(1, Math.min(o.batch ?? 1, 500));
  const concurrency = Math.max(1, o.concurrency ?? 8);
  const doFetch = o.fetch ?? fetch;
  const base = o.baseUrl.replace(/\/+$/, '');
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(o.apiKey ? { 'x-api-key': o.apiKey } : {}), ...o.headers };
  const t0 = Date.now();

  const s: TrafficSummary = {
    sent: 0,
    requests: 0,
    acknowledged: 0,
    acknowledgedByResource: {},
    held: 0,
    rejected: 0,
    rejectedByStatus: {},
    errors: 0,
    errorSamples: [],
    unexpected: { validRejected: 0, invalidAccepted: 0, samples: [] },
    latencyMs: { p50: 0, p99: 0, max: 0 },
    durationS: 0,
    recordsPerS: 0,
    acknowledgedRecords: [],
  };
  const latencies: number[] = [];
  const inflight = new Map<string, Promise<void>>();
  let running = 0;
  const slotFreed: Array<() => void> = [];

  const note = (list: string[], msg: string) => {
    if (list.length < 20) list.push(msg);
  };

  const settle = (it: TrafficItem, httpStatus: number, a: AnswerLike | undefined) => {
    const ok = httpStatus >= 200 && httpStatus < 300 && a?.result === true;
    if (ok) {
      s.acknowledged++;
      s.acknowledgedByResource[it.resource] = (s.acknowledgedByResource[it.resource] ?? 0) + 1;
      const held = Array.isArray(a.held) && a.held.length > 0;
      if (held) s.held++;
      s.acknowledgedRecords.push({
        resource: it.resource,
        orgCode: String(it.record.orgCode),
        id: String(a.id ?? it.key.split('|')[2]),
        version: Number(a.version),
        status: String(a.status),
        held,
      });
      if (!it.valid) {
        s.unexpected.invalidAccepted++;
        note(s.unexpected.samples, `${it.key}: invalid (${it.invalidBy}) but accepted`);
      }
    } else if (httpStatus >= 500 || httpStatus === 0) {
      s.errors++;
    } else {
      s.rejected++;
      const k = String(httpStatus);
      s.rejectedByStatus[k] = (s.rejectedByStatus[k] ?? 0) + 1;
      if (it.valid) {
        s.unexpected.validRejected++;
        note(s.unexpected.samples, `${it.key}: valid but answered ${httpStatus} ${a?.errorCode ?? ''} ${String(a?.desc ?? '').slice(0, 200)}`);
      }
    }
  };

  const send = async (u: Unit): Promise<void> => {
    const body = batch > 1 ? JSON.stringify(u.items.map((i) => i.record)) : JSON.stringify(u.items[0]!.record);
    const started = performance.now();
    let status = 0;
    let answer: AnswerLike | undefined;
    try {
      const res = await doFetch(`${base}/hclient/emr/receive/${u.resource}`, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.timeout(o.timeoutMs ?? 15_000),
      });
      status = res.status;
      const text = await res.text();
      try {
        answer = JSON.parse(text) as AnswerLike;
      } catch {
        answer = undefined;
      }
      if (status >= 500) note(s.errorSamples, `${u.resource}: HTTP ${status} ${text.slice(0, 200)}`);
    } catch (err) {
      note(s.errorSamples, `${u.resource}: ${(err as Error).message}`);
    }
    latencies.push(performance.now() - started);
    s.requests++;
    if (batch > 1 && ((status >= 200 && status < 300) || status === 400) && Array.isArray(answer?.results)) {
      // A batch with no record accepted is 400, still one result per record (docs/his-guide.md §3).
      for (const [i, it] of u.items.entries()) settle(it, status, answer!.results![i]);
    } else {
      for (const it of u.items) settle(it, status, answer);
    }
  };

  const dispatch = async (u: Unit): Promise<void> => {
    const deps = u.items
      .flatMap((i) => [...i.after, i.key])
      .map((k) => inflight.get(k))
      .filter((p): p is Promise<void> => p !== undefined);
    await Promise.all(deps);
    await send(u);
  };

  const start = async (u: Unit) => {
    while (running >= concurrency) await new Promise<void>((r) => slotFreed.push(r));
    running++;
    s.sent += u.items.length;
    const p = dispatch(u).finally(() => {
      running--;
      for (const it of u.items) if (inflight.get(it.key) === p) inflight.delete(it.key);
      slotFreed.shift()?.();
    });
    for (const it of u.items) inflight.set(it.key, p);
  };

  let progressAt = t0 + 1000;
  const units = batches(generate({ ...o, count, start: new Date(t0), rate: o.rate }), batch);
  /** Children sent before their parent on purpose: each is owed its parent, even when time is up. */
  const owed = new Set<string>();
  /** The unit taken from the generator when time ran out: the first place to look for them. */
  let unsent: Unit | undefined;
  // Not for…of: leaving such a loop closes the generator, and the owed parents below come from it.
  for (let next = units.next(); !next.done; next = units.next()) {
    const u = next.value;
    // Pacing: the unit leaves when its last record's slot has come.
    const due = t0 + ((s.sent + u.items.length) * 1000) / o.rate;
    const now = Date.now();
    if (due - t0 > durationMs) {
      unsent = u;
      break;
    }
    if (due > now) await sleep(due - now);
    if (Date.now() - t0 > durationMs) {
      unsent = u;
      break;
    }
    for (const it of u.items) if (it.outOfOrder) owed.add(it.key);
    for (const it of u.items) for (const k of it.after) owed.delete(k);
    await start(u);
    if (o.onProgress && Date.now() >= progressAt) {
      progressAt = Date.now() + 1000;
      o.onProgress({ elapsedS: (Date.now() - t0) / 1000, sent: s.sent, acknowledged: s.acknowledged, rejected: s.rejected, errors: s.errors });
    }
  }
  // Time is up, but a child sent early on purpose has its parent behind it, as a real HIS would: the
  // parents it is owed leave now (alone; whatever else shared their batch stays unsent), so a bounded
  // run never leaves a child held for a parent that was never sent.
  let scanned = 0;
  while (owed.size > 0 && scanned < MAX_OWED_SCAN) {
    let u = unsent;
    unsent = undefined;
    if (!u) {
      const next = units.next();
      if (next.done) break;
      u = next.value;
    }
    scanned += u.items.length;
    const parents = u.items.filter((it) => it.after.some((k) => owed.has(k)));
    if (parents.length === 0) continue;
    for (const it of parents) for (const k of it.after) owed.delete(k);
    await start({ resource: u.resource, items: parents });
  }
  await Promise.all([...new Set(inflight.values())]);
  latencies.sort((a, b) => a - b);
  s.latencyMs = {
    p50: Number(percentile(latencies, 50).toFixed(1)),
    p99: Number(percentile(latencies, 99).toFixed(1)),
    max: Number((latencies.at(-1) ?? 0).toFixed(1)),
  };
  s.durationS = Number(((Date.now() - t0) / 1000).toFixed(2));
  s.recordsPerS = s.durationS > 0 ? Math.round(s.sent / s.durationS) : 0;
  return s;
}
