/**
 * The synthetic example records (no real person's data): the interface documents show them, and the
 * console's acceptance self-test sends them through the data port in test mode.
 */
import { resources as registry } from '../../schemas/index.js';
import { sample } from '../../infra/simulators/samples.js';

/**
 * A valid, synthetic example per resource for the interface documents (no real person's data).
 * The examples form a chain: each names its parents by their examples' ids, so posted in the
 * documents' order (parents first) every one is stored, none held (docs/his-guide.md).
 */
export function exampleRecord(resource: string): Record<string, unknown> | undefined {
  const r = registry[resource];
  try {
    const rec = sample(resource, {
      orgCode: '123456789',
      id: exampleId(resource),
      patientId: exampleId('emrPatientInfo'),
      seed: 7,
      at: new Date('2026-01-15T02:30:00Z'),
    });
    for (const p of r?.parents ?? []) rec[p.field] = exampleId(p.resource);
    return rec;
  } catch {
    return undefined;
  }
}

const exampleId = (resource: string): string => `${resource}-0001`;
