/**
 * The receive functions' configuration: patient, diagnosis, card, lab, exam, order, death, record (shared/ingest/receiver.ts).
 * One module per function, so that a bundle evaluates only the concerns its own function reads
 * (docs/configuration.md).
 */
import { baseConcerns, codesConcern, composeConfig, ingestConcern } from '../index.js';
import { hisAuthConcern } from '../../http/auth.js';
import { piiConcern } from '../../pii/config.js';

export const receiveConfig = composeConfig({
  ...baseConcerns,
  codes: codesConcern,
  ingest: ingestConcern,
  hisAuth: hisAuthConcern,
  pii: piiConcern,
});
export type ReceiveSettings = ReturnType<typeof receiveConfig.parse>;
