/**
 * The remind function's configuration: the HIS's reminders on the data port (functions/remind).
 * One module per function, so that a bundle evaluates only the concerns its own function reads
 * (docs/configuration.md).
 */
import { composeConfig, databaseConcern, frontConcern } from '../index.js';
import { hisAuthConcern } from '../../http/auth.js';
import { piiConcern } from '../../pii/config.js';
import { warningConcern } from '../../warning/config.js';

export const remindConfig = composeConfig({
  front: frontConcern,
  database: databaseConcern,
  hisAuth: hisAuthConcern,
  warning: warningConcern,
  pii: piiConcern,
});
export type RemindSettings = ReturnType<typeof remindConfig.parse>;
