/** Every resource of the national data set, by wire name. */
import { emrPatientInfo } from './patient.js';
import type { Resource } from './resource.js';

export const resources: Record<string, Resource> = {
  [emrPatientInfo.name]: emrPatientInfo as unknown as Resource,
};

export { emrPatientInfo };
export * from './resource.js';
