/**
 * The day-close function's configuration (docs/day-close.md).
 * One module per function, so that a bundle evaluates only the concerns its own function reads
 * (docs/configuration.md).
 */
import { composeConfig, databaseConcern, frontConcern, operatorConcern } from '../index.js';
import { dayCloseConcern } from '../../dayclose/config.js';

export const dayCloseConfig = composeConfig({ front: frontConcern, database: databaseConcern, dayClose: dayCloseConcern, operator: operatorConcern });
export type DayCloseSettings = ReturnType<typeof dayCloseConfig.parse>;
