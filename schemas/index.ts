/**
 * Every resource of the national data set, by wire name (endpoints.csv: twenty receive resources),
 * grouped into the receive functions of the design (requirements §3). The list below is the one
 * place that names them, in the order of endpoints.csv.
 */
import * as master from './master.js';
import * as patient from './patient.js';
import * as diagnosis from './diagnosis.js';
import * as card from './card.js';
import * as lab from './lab.js';
import * as exam from './exam.js';
import * as order from './order.js';
import * as death from './death.js';
import * as record from './record.js';
import type { Resource } from './resource.js';

const all = [
  master.baseUser,
  master.baseDept,
  patient.emrPatientInfo,
  diagnosis.emrActivityInfo,
  card.emrInfReport,
  lab.emrExLab,
  lab.emrExLabItem,
  exam.emrExClinical,
  exam.emrExClinicalItem,
  order.emrOrder,
  order.emrOrderItem,
  death.emrDeathInfo,
  record.emrOutpatientRecord,
  record.emrOutpatientObs,
  record.emrAdmissionInfo,
  record.emrFirstCourse,
  record.emrDailyCourse,
  record.emrAdmissionRecord,
  record.emrDischargeInfo,
  record.emrVitalSignsRecord,
] as unknown as Resource[];

export const resources: Record<string, Resource> = Object.fromEntries(all.map((r) => [r.name, r]));

/** The resources a receive function owns (stack.yml com.cdc-front.resources lists the same). */
export function resourcesOf(fn: string): Resource[] {
  return all.filter((r) => r.fn === fn);
}

/**
 * The item resource a header takes in one report document (emrExLab → emrExLabItem, linked by
 * exLabId): an item of the same function whose parent is the header (docs/his-guide.md §1).
 */
export function documentItems(header: Resource): { item: Resource; link: string } | undefined {
  for (const item of all) {
    if (item.fn !== header.fn) continue;
    const ref = item.parents.find((p) => p.resource === header.name);
    if (ref) return { item, link: ref.field };
  }
  return undefined;
}

export * from './master.js';
export * from './patient.js';
export * from './diagnosis.js';
export * from './card.js';
export * from './lab.js';
export * from './exam.js';
export * from './order.js';
export * from './death.js';
export * from './record.js';
export * from './resource.js';
