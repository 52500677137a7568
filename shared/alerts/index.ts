/**
 * Alerts to the hospital's operators (shared/alerts): the backlog alert of each destination, through
 * a group-robot webhook (WeCom/DingTalk) and/or e-mail. See backlog.ts for the rules and
 * config.ts for the settings; docs/day-close.md §Backlog alerts.
 */
export { loadAlertConfig, type AlertConfig, type SmtpSettings } from './config.js';
export {
  backlogs,
  channelsOf,
  checkBacklog,
  clearMessage,
  decide,
  duration,
  raiseMessage,
  type AlertCheck,
  type Backlog,
  type Channel,
  type CheckOptions,
  type Transition,
} from './backlog.js';
export { buildMessage, encodeHeader, sendMail, SmtpError } from './smtp.js';
export { postWebhook, signedUrl, WebhookError } from './webhook.js';

import type { AlertConfig } from './config.js';
import { loadAlertConfig } from './config.js';

let cached: AlertConfig | undefined;
/** The process's alert settings, parsed once (throws, naming the variable, when invalid). */
export function alertConfig(): AlertConfig {
  return (cached ??= loadAlertConfig());
}
