/**
 * Alert settings, parsed once with zod; fails fast naming the variable. Secrets (a password, a
 * webhook's signing secret) come from files, like every secret of the project.
 *
 *   ALERT_BACKLOG_COUNT   pending rows of one destination that raise an alert    (default 1000)
 *   ALERT_BACKLOG_AGE_S   age in seconds of its oldest unsent row that raises one (default 7200: 2 h,
 *                         the lab results' deadline)
 *   ALERT_REALTIME_AGE_S  age in seconds of its oldest unsent realtime row (cards, diagnoses, patients:
 *                         due at once) that raises one (default 900: 15 min)
 *   ALERT_CLEAR_RATIO     hysteresis: cleared when both figures are below ratio × threshold (default 0.5)
 *   ALERT_WEBHOOK_URL     a WeCom/DingTalk group robot URL (or the secret file alert-webhook-url)
 *   alert-webhook-secret  secret file: DingTalk 加签 secret (optional; adds timestamp and sign)
 *   ALERT_SMTP_URL        smtp://[user@]host[:25] or smtps://[user@]host[:465]
 *   alert-smtp-password   secret file: the password for AUTH PLAIN when the URL names a user; sent only
 *                         over TLS (smtps://, or STARTTLS on smtp://), never in clear
 *   alert-smtp-ca         secret file: PEM CA(s) the relay's certificate is checked against (default:
 *                         the system's roots and NODE_EXTRA_CA_CERTS)
 *   ALERT_MAIL_TO         recipients, comma-separated;  ALERT_MAIL_FROM  sender (default cdc-front@<host>)
 *   ALERT_FRONT_NAME      how messages name this front (default the host name)
 *   ALERT_TIMEOUT_MS      per delivery (default 10000)
 */
import { hostname } from 'node:os';
import { z } from 'zod';
import { concern, parseConcern, readSecret, type SecretReader } from '../config/index.js';

export interface SmtpSettings {
  host: string;
  port: number;
  /** Implicit TLS (smtps://, port 465). */
  secure: boolean;
  user?: string;
  pass?: string;
  /** Trust anchors for the relay's certificate (secret file alert-smtp-ca); the system's when absent. */
  ca?: string;
  from: string;
  to: string[];
}

export interface AlertConfig {
  backlogCount: number;
  backlogAgeS: number;
  /** The realtime rows' own age threshold: their deadline is minutes, not the 2 h of the rest. */
  realtimeAgeS: number;
  clearRatio: number;
  frontName: string;
  timeoutMs: number;
  webhook?: { url: string; secret?: string };
  smtp?: SmtpSettings;
}

const vars = {
  ALERT_BACKLOG_COUNT: z.coerce.number().int().positive().default(1000),
  ALERT_BACKLOG_AGE_S: z.coerce.number().int().positive().default(7200),
  ALERT_REALTIME_AGE_S: z.coerce.number().int().positive().default(900),
  ALERT_CLEAR_RATIO: z.coerce.number().gt(0).lte(1).default(0.5),
  ALERT_TIMEOUT_MS: z.coerce.number().int().positive().max(60_000).default(10_000),
  ALERT_WEBHOOK_URL: z.url({ protocol: /^https?$/ }).optional(),
  ALERT_SMTP_URL: z.url({ protocol: /^smtps?$/ }).optional(),
  ALERT_MAIL_TO: z.string().optional(),
  ALERT_MAIL_FROM: z.string().optional(),
  ALERT_FRONT_NAME: z.string().max(100).optional(),
};

export const alertsConcern = concern({
  name: 'alert',
  optionalSecrets: ['alert-webhook-url', 'alert-webhook-secret', 'alert-smtp-password', 'alert-smtp-ca'],
  vars,
  build: (v, secret) => buildAlertConfig(v, secret),
});

export function loadAlertConfig(env: Record<string, string | undefined> = process.env, secret: SecretReader = readSecret): AlertConfig {
  return parseConcern(alertsConcern, env, secret);
}

function buildAlertConfig(parsed: z.output<z.ZodObject<typeof vars>>, secret: SecretReader): AlertConfig {
  const c = { ...parsed, ALERT_WEBHOOK_URL: parsed.ALERT_WEBHOOK_URL ?? webhookFromSecret(secret) };
  const out: AlertConfig = {
    backlogCount: c.ALERT_BACKLOG_COUNT,
    backlogAgeS: c.ALERT_BACKLOG_AGE_S,
    realtimeAgeS: c.ALERT_REALTIME_AGE_S,
    clearRatio: c.ALERT_CLEAR_RATIO,
    timeoutMs: c.ALERT_TIMEOUT_MS,
    frontName: c.ALERT_FRONT_NAME ?? hostname(),
  };
  if (c.ALERT_WEBHOOK_URL) {
    const s = secret('alert-webhook-secret');
    out.webhook = { url: c.ALERT_WEBHOOK_URL, ...(s ? { secret: s } : {}) };
  }
  if (c.ALERT_SMTP_URL) {
    const u = new URL(c.ALERT_SMTP_URL);
    if (u.password) throw new Error('ALERT_SMTP_URL must not carry a password: put it in the secret file alert-smtp-password');
    const to = (c.ALERT_MAIL_TO ?? '').split(/[\s,;]+/).filter(Boolean);
    if (to.length === 0) throw new Error('ALERT_SMTP_URL is set but ALERT_MAIL_TO (the recipients) is not');
    const secure = u.protocol === 'smtps:';
    const user = u.username ? decodeURIComponent(u.username) : undefined;
    const pass = user ? secret('alert-smtp-password') : undefined;
    if (user && !pass) throw new Error('ALERT_SMTP_URL names a user but the secret file alert-smtp-password is missing');
    out.smtp = {
      host: u.hostname.replace(/^\[|\]$/g, ''),
      port: u.port ? Number(u.port) : secure ? 465 : 25,
      secure,
      ...(user ? { user, pass: pass! } : {}),
      ...(secret('alert-smtp-ca') ? { ca: secret('alert-smtp-ca')! } : {}),
      from: c.ALERT_MAIL_FROM ?? `cdc-front@${hostname()}`,
      to,
    };
  }
  return out;
}

function webhookFromSecret(secret: SecretReader): string | undefined {
  const url = secret('alert-webhook-url');
  if (url === undefined) return undefined;
  const ok = z.url({ protocol: /^https?$/ }).safeParse(url);
  if (!ok.success) throw new Error('secret file alert-webhook-url is not an http(s) URL');
  return ok.data;
}
