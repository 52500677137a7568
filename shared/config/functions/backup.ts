/**
 * The backup function's configuration (docs/backup.md).
 * One module per function, so that a bundle evaluates only the concerns its own function reads
 * (docs/configuration.md).
 */
import { baseConcerns, composeConfig, operatorConcern } from '../index.js';
import { alertsConcern } from '../../alerts/config.js';
import { backupConcern } from '../../backup/config.js';

export const backupConfig = composeConfig({
  ...baseConcerns,
  backup: backupConcern,
  alerts: alertsConcern,
  operator: operatorConcern,
});
export type BackupSettings = ReturnType<typeof backupConfig.parse>;
