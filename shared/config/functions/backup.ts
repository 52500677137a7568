/**
 * The backup function's configuration (docs/backup.md).
 * One module per function, so that a bundle evaluates only the concerns its own function reads
 * (docs/configuration.md).
 */
import { composeConfig, databaseConcern, frontConcern, operatorConcern } from '../index.js';
import { alertsConcern } from '../../alerts/config.js';
import { backupConcern } from '../../backup/config.js';

export const backupConfig = composeConfig({
  front: frontConcern,
  database: databaseConcern,
  backup: backupConcern,
  alerts: alertsConcern,
  operator: operatorConcern,
});
export type BackupSettings = ReturnType<typeof backupConfig.parse>;
