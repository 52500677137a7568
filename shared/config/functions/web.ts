/**
 * The web function's configuration: the console, and the popup and card form opened by single sign-on (docs/card-form.md).
 * One module per function, so that a bundle evaluates only the concerns its own function reads
 * (docs/configuration.md).
 */
import { baseConcerns, codesConcern, composeConfig, ingestConcern } from '../index.js';
import { acceptanceConcern } from '../../console/acceptance.js';
import { consoleConcern } from '../../console/index.js';
import { hisAuthConcern } from '../../http/auth.js';
import { piiConcern } from '../../pii/config.js';
import { ssoConcern } from '../../sso/session.js';
import { warningConcern } from '../../warning/config.js';

export const webConfig = composeConfig({
  ...baseConcerns,
  hisAuth: hisAuthConcern,
  sso: ssoConcern,
  codes: codesConcern,
  ingest: ingestConcern,
  warning: warningConcern,
  console: consoleConcern,
  acceptance: acceptanceConcern,
  pii: piiConcern,
});
export type WebSettings = ReturnType<typeof webConfig.parse>;
