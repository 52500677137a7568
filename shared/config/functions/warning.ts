/**
 * The warning function's configuration: the early-warning loop, and aberration detection from its cron (docs/aberration.md).
 * One module per function, so that a bundle evaluates only the concerns its own function reads
 * (docs/configuration.md).
 */
import { baseConcerns, composeConfig, operatorConcern } from '../index.js';
import { aberrationConcern } from '../../aberration/config.js';
import { alertsConcern } from '../../alerts/config.js';
import { piiConcern } from '../../pii/config.js';
import { warningConcern } from '../../warning/config.js';

export const warningConfig = composeConfig({
  ...baseConcerns,
  warning: warningConcern,
  aberration: aberrationConcern,
  alerts: alertsConcern,
  operator: operatorConcern,
  pii: piiConcern,
});
export type WarningSettings = ReturnType<typeof warningConfig.parse>;
