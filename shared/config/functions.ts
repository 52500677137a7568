/**
 * Each function's configuration: the concerns it reads, composed into one zod schema
 * (docs/configuration.md). A function parses its spec once at start (init) and passes the settings
 * down; test/unit/config-stack.test.ts checks stack.yml gives each function every variable and
 * secret of its spec.
 */
import { aberrationConcern } from '../aberration/config.js';
import { alertsConcern } from '../alerts/config.js';
import { backupConcern } from '../backup/config.js';
import { dayCloseConcern } from '../dayclose/config.js';
import { hisAuthConcern } from '../http/auth.js';
import { uplinkConcern } from '../uplink/config.js';
import { ssoConcern } from '../sso/session.js';
import { monitorAuthConcern } from '../monitor/auth.js';
import { monitorConcern } from '../monitor/config.js';
import { selfReportConcern } from '../uplink/self-report.js';
import { dbsyncConcern } from '../dbsync/index.js';
import { consoleConcern } from '../console/index.js';
import { acceptanceConcern } from '../console/acceptance.js';
import { bundlesConcern, gatewayConcern } from '../configbundle/settings.js';
import { warningConcern } from '../warning/config.js';
import { piiConcern } from '../pii/config.js';
import { codesConcern, composeConfig, databaseConcern, frontConcern, ingestConcern, operatorConcern } from './index.js';

const base = { front: frontConcern, database: databaseConcern };

/** patient, diagnosis, card, lab, exam, order, death, record (shared/ingest/receiver.ts). */
export const receiveConfig = composeConfig({ ...base, codes: codesConcern, ingest: ingestConcern, hisAuth: hisAuthConcern, pii: piiConcern });
export const pushConfig = composeConfig({
  ...base,
  codes: codesConcern,
  uplink: uplinkConcern,
  alerts: alertsConcern,
  operator: operatorConcern,
  selfReport: selfReportConcern,
  pii: piiConcern,
});
export const dayCloseConfig = composeConfig({ ...base, dayClose: dayCloseConcern, operator: operatorConcern });
export const monitorConfig = composeConfig({ ...base, monitor: monitorConcern, monitorAuth: monitorAuthConcern });
/** web: the console, and the popup and card form opened by single sign-on (docs/card-form.md). */
export const webConfig = composeConfig({
  ...base,
  hisAuth: hisAuthConcern,
  sso: ssoConcern,
  codes: codesConcern,
  ingest: ingestConcern,
  warning: warningConcern,
  console: consoleConcern,
  acceptance: acceptanceConcern,
  pii: piiConcern,
});
export const backupConfig = composeConfig({ ...base, backup: backupConcern, alerts: alertsConcern, operator: operatorConcern });
/** remind: the HIS's reminders on the data port (functions/remind). */
export const remindConfig = composeConfig({ ...base, hisAuth: hisAuthConcern, warning: warningConcern, pii: piiConcern });
/** dbsync: the staging tables through the ingest pipeline (docs/dbsync.md); its nudge is HIS-authenticated. */
export const dbsyncConfig = composeConfig({ ...base, codes: codesConcern, hisAuth: hisAuthConcern, dbsync: dbsyncConcern, pii: piiConcern });
/** warning: the early-warning loop, and aberration detection from its cron (docs/aberration.md). */
export const warningConfig = composeConfig({
  ...base,
  warning: warningConcern,
  aberration: aberrationConcern,
  alerts: alertsConcern,
  operator: operatorConcern,
  pii: piiConcern,
});

/** config: configuration bundles from the national platform on the config port (docs/config-bundles.md). */
export const configConfig = composeConfig({ ...base, bundles: bundlesConcern, gateway: gatewayConcern });

export type ReceiveSettings = ReturnType<typeof receiveConfig.parse>;
export type PushSettings = ReturnType<typeof pushConfig.parse>;
export type DayCloseSettings = ReturnType<typeof dayCloseConfig.parse>;
export type MonitorSettings = ReturnType<typeof monitorConfig.parse>;
export type WebSettings = ReturnType<typeof webConfig.parse>;
export type BackupSettings = ReturnType<typeof backupConfig.parse>;
export type WarningSettings = ReturnType<typeof warningConfig.parse>;
export type RemindSettings = ReturnType<typeof remindConfig.parse>;
export type DbsyncFunctionSettings = ReturnType<typeof dbsyncConfig.parse>;
export type ConfigSettings = ReturnType<typeof configConfig.parse>;
