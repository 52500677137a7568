/**
 * Every resource of the national data set, by wire name (endpoints.csv: twenty receive resources),
 * grouped into the receive functions of the design (requirements §3).
 */
import { baseDept, baseUser } from './master.js';
import { emrPatientInfo } from './patient.js';
import { emrActivityInfo } from './diagnosis.js';
import { emrInfReport } from './card.js';
import { emrExLab, emrExLabItem } from './lab.js';
import { emrExClinical, emrExClinicalItem } from './exam.js';
import { emrOrder, emrOrderItem } from './order.js';
import { emrDeathInfo } from './death.js';
import {
  emrAdmissionInfo,
  emrAdmissionRecord,
  emrDailyCourse,
  emrDischargeInfo,
  emrFirstCourse,
  emrOutpatientObs,
  emrOutpatientRecord,
  emrVitalSignsRecord,
} from './record.js';
import type { Resource } from './resource.js';

const all = [
  baseUser,
  baseDept,
  emrPatientInfo,
  emrActivityInfo,
  emrInfReport,
  emrExLab,
  emrExLabItem,
  emrExClinical,
  emrExClinicalItem,
  emrOrder,
  emrOrderItem,
  emrDeathInfo,
  emrOutpatientRecord,
  emrOutpatientObs,
  emrAdmissionInfo,
  emrFirstCourse,
  emrDailyCourse,
  emrAdmissionRecord,
  emrDischargeInfo,
  emrVitalSignsRecord,
] as unknown as Resource[];

export const resources: Record<string, Resource> = Object.fromEntries(all.map((r) => [r.name, r]));

/** The resources a receive function owns (stack.yml com.cdc-front.resources lists the same). */
export function resourcesOf(fn: string): Resource[] {
  return all.filter((r) => r.fn === fn);
}

export {
  baseUser,
  baseDept,
  emrPatientInfo,
  emrActivityInfo,
  emrInfReport,
  emrExLab,
  emrExLabItem,
  emrExClinical,
  emrExClinicalItem,
  emrOrder,
  emrOrderItem,
  emrDeathInfo,
  emrOutpatientRecord,
  emrOutpatientObs,
  emrAdmissionInfo,
  emrFirstCourse,
  emrDailyCourse,
  emrAdmissionRecord,
  emrDischargeInfo,
  emrVitalSignsRecord,
};
export * from './resource.js';
