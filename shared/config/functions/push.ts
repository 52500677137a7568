/**
 * The push function's configuration: forwarding to the platforms (docs/uplink.md).
 * One module per function, so that a bundle evaluates only the concerns its own function reads
 * (docs/configuration.md).
 */
import { baseConcerns, codesConcern, composeConfig, operatorConcern } from '../index.js';
import { alertsConcern } from '../../alerts/config.js';
import { piiConcern } from '../../pii/config.js';
import { uplinkConcern } from '../../uplink/config.js';
import { selfReportConcern } from '../../uplink/self-report.js';

export const pushConfig = composeConfig({
  ...baseConcerns,
  codes: codesConcern,
  uplink: uplinkConcern,
  alerts: alertsConcern,
  operator: operatorConcern,
  selfReport: selfReportConcern,
  pii: piiConcern,
});
export type PushSettings = ReturnType<typeof pushConfig.parse>;
