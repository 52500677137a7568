/**
 * The day-close function's configuration (docs/day-close.md).
 * One module per function, so that a bundle evaluates only the concerns its own function reads
 * (docs/configuration.md).
 */
import { baseConcerns, composeConfig, operatorConcern } from '../index.js';
import { dayCloseConcern } from '../../dayclose/config.js';

export const dayCloseConfig = composeConfig({ ...baseConcerns, dayClose: dayCloseConcern, operator: operatorConcern });
export type DayCloseSettings = ReturnType<typeof dayCloseConfig.parse>;
