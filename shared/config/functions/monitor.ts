/**
 * The monitor function's configuration: the monitor port (docs/monitoring.md).
 * One module per function, so that a bundle evaluates only the concerns its own function reads
 * (docs/configuration.md).
 */
import { baseConcerns, composeConfig } from '../index.js';
import { monitorAuthConcern } from '../../monitor/auth.js';
import { monitorConcern } from '../../monitor/config.js';

export const monitorConfig = composeConfig({ ...baseConcerns, monitor: monitorConcern, monitorAuth: monitorAuthConcern });
export type MonitorSettings = ReturnType<typeof monitorConfig.parse>;
