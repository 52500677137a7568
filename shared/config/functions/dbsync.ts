/**
 * The dbsync function's configuration: the staging tables through the ingest pipeline (docs/dbsync.md); its nudge is HIS-authenticated.
 * One module per function, so that a bundle evaluates only the concerns its own function reads
 * (docs/configuration.md).
 */
import { baseConcerns, codesConcern, composeConfig } from '../index.js';
import { dbsyncConcern } from '../../dbsync/index.js';
import { dbsyncPurgeConcern } from '../../dbsync/purge.js';
import { hisAuthConcern } from '../../http/auth.js';
import { piiConcern } from '../../pii/config.js';

export const dbsyncConfig = composeConfig({
  ...baseConcerns,
  codes: codesConcern,
  hisAuth: hisAuthConcern,
  dbsync: dbsyncConcern,
  purge: dbsyncPurgeConcern,
  pii: piiConcern,
});
export type DbsyncFunctionSettings = ReturnType<typeof dbsyncConfig.parse>;
