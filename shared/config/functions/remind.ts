/**
 * The remind function's configuration: the HIS's reminders on the data port (functions/remind).
 * One module per function, so that a bundle evaluates only the concerns its own function reads
 * (docs/configuration.md).
 */
import { baseConcerns, composeConfig } from '../index.js';
import { hisAuthConcern } from '../../http/auth.js';
import { piiConcern } from '../../pii/config.js';
import { warningConcern } from '../../warning/config.js';

export const remindConfig = composeConfig({
  ...baseConcerns,
  hisAuth: hisAuthConcern,
  warning: warningConcern,
  pii: piiConcern,
});
export type RemindSettings = ReturnType<typeof remindConfig.parse>;
