/**
 * The config function's configuration: configuration bundles from the national platform on the config port (docs/config-bundles.md).
 * One module per function, so that a bundle evaluates only the concerns its own function reads
 * (docs/configuration.md).
 */
import { baseConcerns, composeConfig } from '../index.js';
import { bundlesConcern, gatewayConcern } from '../../configbundle/settings.js';

export const configConfig = composeConfig({ ...baseConcerns, bundles: bundlesConcern, gateway: gatewayConcern });
export type ConfigSettings = ReturnType<typeof configConfig.parse>;
