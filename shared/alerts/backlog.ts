/**
 * Backlog alerts (docs/day-close.md): when a destination's backlog — its pending outbox rows — or the
 * age of its oldest unsent row passes a threshold (an extranet or VPN outage, a platform down), the
 * front raises ONE alert for that destination through the configured channels, and one "cleared"
 * message when the backlog is back below the thresholds × ALERT_CLEAR_RATIO (hysteresis: a backlog
 * hovering at the threshold does not flap).
 *
 * The state lives in `backlog_alert`, one row per destination, locked while it is decided and the
 * message delivered (FOR UPDATE SKIP LOCKED: a concurrent check skips a destination another one is
 * handling), so several replicas and restarts raise and clear each alert once. A message a channel
 * did not take stays owed to that channel and is retried by the next check (each push run); a
 * failure is logged and never reaches the caller — an alert must not break the push.
 */
import type { Db, Tx } from '../db/index.js';
import { withTx } from '../db/index.js';
import { log } from '../log/index.js';
import { formatLocal } from '../time/index.js';
import { TIME_ZONE } from '../../schemas/fields.js';
import type { AlertConfig } from './config.js';
import { sendMail } from './smtp.js';
import { postWebhook } from './webhook.js';

/** A way to deliver a message: its name is what `backlog_alert.owed_channels` records. */
export interface Channel {
  name: string;
  send(subject: string, text: string): Promise<void>;
}

export function channelsOf(cfg: AlertConfig): Channel[] {
  const out: Channel[] = [];
  if (cfg.webhook) {
    const w = cfg.webhook;
    out.push({ name: 'webhook', send: (_subject, text) => postWebhook(w, text, cfg.timeoutMs) });
  }
  if (cfg.smtp) {
    const s = cfg.smtp;
    out.push({ name: 'mail', send: (subject, text) => sendMail(s, subject, text, cfg.timeoutMs) });
  }
  return out;
}

export interface Backlog {
  destination: string;
  pending: number;
  /**
   * Seconds since the oldest pending row was queued — or, for a row that was held, released: time on
   * hold is no transmission backlog (docs/day-close.md "Backlog alerts"); null when nothing is pending.
   */
  oldestAgeS: number | null;
  /** The same of the realtime rows alone (deadline class `realtime`); null when none is pending. */
  realtimeAgeS: number | null;
  /** Pending rows per organisation, most first. */
  orgs: Array<{ orgCode: string; pending: number }>;
}

/**
 * The backlog of each destination to watch: the enabled ones and any whose alert is still raised
 * (or the given ones). Pending rows as `lag` (shared/uplink/push.ts) counts them, per organisation.
 */
export async function backlogs(db: Db, only?: string[]): Promise<Backlog[]> {
  const names = only
    ? only
    : (
        await db.query<{ name: string }>(
          `SELECT name FROM uplink_destination WHERE enabled = true
           UNION SELECT destination FROM backlog_alert WHERE state = 'raised'`,
        )
      ).rows.map((r) => r.name);
  if (names.length === 0) return [];
  const res = await db.query<{ destination: string; org_code: string; pending: string; oldest: string | number | null; realtime: string | number | null }>(
    `SELECT destination, org_code, count(*) AS pending, extract(epoch FROM (now() - min(coalesce(released_at, created_at)))) AS oldest,
            extract(epoch FROM (now() - min(CASE WHEN deadline_class = 'realtime' THEN coalesce(released_at, created_at) END))) AS realtime
       FROM outbox WHERE state = 'pending' AND destination = ANY($1::varchar[])
      GROUP BY destination, org_code`,
    [names],
  );
  const by = new Map<string, Backlog>(names.map((n) => [n, { destination: n, pending: 0, oldestAgeS: null, realtimeAgeS: null, orgs: [] }]));
  const seconds = (v: string | number | null) => (v === null ? null : Math.max(0, Math.round(Number(v))));
  for (const r of res.rows) {
    const b = by.get(r.destination)!;
    const n = Number(r.pending);
    const age = seconds(r.oldest);
    const realtime = seconds(r.realtime);
    b.pending += n;
    if (age !== null) b.oldestAgeS = Math.max(b.oldestAgeS ?? 0, age);
    if (realtime !== null) b.realtimeAgeS = Math.max(b.realtimeAgeS ?? 0, realtime);
    b.orgs.push({ orgCode: r.org_code, pending: n });
  }
  for (const b of by.values()) b.orgs.sort((x, y) => y.pending - x.pending || x.orgCode.localeCompare(y.orgCode));
  return [...by.values()].sort((a, b) => a.destination.localeCompare(b.destination));
}

export type Transition = 'raise' | 'clear';

/**
 * Raise at a threshold — the backlog, the oldest row's age, or the oldest realtime row's age (a card
 * due at once must not wait the 2 h of a lab result before anyone hears of it); clear only when every
 * figure is below its threshold × clearRatio.
 */
export function decide(
  state: string,
  b: { pending: number; oldestAgeS: number | null; realtimeAgeS?: number | null },
  cfg: Pick<AlertConfig, 'backlogCount' | 'backlogAgeS' | 'realtimeAgeS' | 'clearRatio'>,
): Transition | null {
  const age = b.oldestAgeS ?? 0;
  const realtime = b.realtimeAgeS ?? 0;
  if (state !== 'raised') return b.pending >= cfg.backlogCount || age >= cfg.backlogAgeS || realtime >= cfg.realtimeAgeS ? 'raise' : null;
  const below = (v: number, t: number) => v < t * cfg.clearRatio;
  return below(b.pending, cfg.backlogCount) && below(age, cfg.backlogAgeS) && below(realtime, cfg.realtimeAgeS) ? 'clear' : null;
}

/** 2小时5分, 45分, 30秒. */
export function duration(s: number): string {
  s = Math.max(0, Math.round(s));
  if (s < 60) return `${s}秒`;
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${d ? `${d}天` : ''}${h ? `${h}小时` : ''}${m || (!d && !h) ? `${m}分` : ''}`;
}

const orgList = (orgs: Backlog['orgs']) =>
  orgs.length === 0
    ? '无'
    : orgs
        .slice(0, 5)
        .map((o) => `${o.orgCode}（${o.pending} 条）`)
        .join('、') + (orgs.length > 5 ? ` 等 ${orgs.length} 家` : '');

export function raiseMessage(b: Backlog, cfg: AlertConfig, now: Date): { subject: string; text: string } {
  const subject = `【传染病监测前置软件告警】上报积压：${b.destination}`;
  const text = [
    subject,
    `前置：${cfg.frontName}`,
    `目的平台：${b.destination}`,
    `待发送：${b.pending} 条（阈值 ${cfg.backlogCount} 条）`,
    `最早未发送记录已等待：${duration(b.oldestAgeS ?? 0)}（阈值 ${duration(cfg.backlogAgeS)}）`,
    ...(b.realtimeAgeS === null
      ? []
      : [`其中实时上报类记录（报告卡、诊断、患者等）最早已等待：${duration(b.realtimeAgeS)}（阈值 ${duration(cfg.realtimeAgeS)}）`]),
    `涉及机构：${orgList(b.orgs)}`,
    '可能原因：外网或 VPN 中断、平台不可用或拒收。数据已保存在前置，连通恢复后自动补传。',
    `时间：${formatLocal(now, TIME_ZONE())}`,
  ].join('\n');
  return { subject, text };
}

export function clearMessage(
  b: Backlog,
  cfg: AlertConfig,
  now: Date,
  since: { raisedAt: Date | null; peakPending: number; peakAgeS: number },
): { subject: string; text: string } {
  const subject = `【传染病监测前置软件告警解除】上报积压已恢复：${b.destination}`;
  const text = [
    subject,
    `前置：${cfg.frontName}`,
    `目的平台：${b.destination}`,
    `当前待发送：${b.pending} 条，最早未发送记录已等待：${duration(b.oldestAgeS ?? 0)}`,
    `告警持续：${since.raisedAt ? duration((now.getTime() - since.raisedAt.getTime()) / 1000) : '未知'}；期间最高积压 ${since.peakPending} 条，最长等待 ${duration(since.peakAgeS)}`,
    `涉及机构：${orgList(b.orgs)}`,
    `时间：${formatLocal(now, TIME_ZONE())}`,
  ].join('\n');
  return { subject, text };
}

export interface AlertCheck {
  destination: string;
  pending: number;
  oldestAgeS: number | null;
  state: 'ok' | 'raised';
  transition?: Transition;
  /** Channels that took the owed message in this check. */
  delivered?: string[];
  /** Channels still owed it (retried by the next check). */
  owed?: string[];
  /** Another check held this destination's row: nothing decided here. */
  skipped?: boolean;
  error?: string;
}

interface StateRow {
  state: string;
  raised_at: Date | null;
  peak_pending: number;
  peak_age_s: number;
  owed_event: string | null;
  owed_channels: string | null;
  attempts: number;
}

export interface CheckOptions {
  /** Only these destinations (tests; an operator's check of one destination). */
  destinations?: string[];
  /** Default: the configured channels (channelsOf). */
  channels?: Channel[];
  now?: () => Date;
}

/** What every step of one destination's check names: its transaction, backlog, settings, channels and time. */
interface Check {
  tx: Tx;
  b: Backlog;
  cfg: AlertConfig;
  channels: Channel[];
  at: Date;
}

/** The alert as the check goes: its state, the message owed and the channels still owed it, the attempts, the peaks. */
interface Working {
  state: 'ok' | 'raised';
  owedEvent: string | null;
  owed: string[];
  attempts: number;
  peakPending: number;
  peakAge: number;
}

/**
 * The destination's `backlog_alert` row, created if missing and locked for this transaction; none
 * when another check holds it (FOR UPDATE SKIP LOCKED, docs/day-close.md "Backlog alerts").
 */
async function lockAlertRow(tx: Tx, destination: string): Promise<StateRow | undefined> {
  await tx.query(`INSERT INTO backlog_alert (destination) SELECT $1::varchar WHERE NOT EXISTS (SELECT 1 FROM backlog_alert WHERE destination = $1::varchar)`, [
    destination,
  ]);
  return (
    await tx.query<StateRow>(
      `SELECT state, raised_at, peak_pending, peak_age_s, owed_event, owed_channels, attempts
           FROM backlog_alert WHERE destination = $1 FOR UPDATE SKIP LOCKED`,
      [destination],
    )
  ).rows[0];
}

/** The alert as the row left it; while raised, the peaks take in the backlog seen now. */
function fromRow(row: StateRow, b: Backlog): Working {
  const age = b.oldestAgeS ?? 0;
  return {
    state: row.state === 'raised' ? 'raised' : 'ok',
    owedEvent: row.owed_event,
    owed: (row.owed_channels ?? '').split(' ').filter(Boolean),
    attempts: row.attempts,
    peakPending: row.state === 'raised' ? Math.max(row.peak_pending, b.pending) : 0,
    peakAge: row.state === 'raised' ? Math.max(row.peak_age_s, age) : 0,
  };
}

/**
 * A raise or a clear: its message fixed in `alert_event` and owed to every configured channel, the
 * new state taken (a raise starts the peaks afresh), and the change logged.
 */
async function recordTransition(c: Check, w: Working, transition: Transition, raisedAt: Date | null): Promise<void> {
  const { tx, b, cfg, channels, at } = c;
  const age = b.oldestAgeS ?? 0;
  const msg = transition === 'raise' ? raiseMessage(b, cfg, at) : clearMessage(b, cfg, at, { raisedAt, peakPending: w.peakPending, peakAgeS: w.peakAge });
  const ev = await tx.query<{ event_id: string }>(
    `INSERT INTO alert_event (destination, kind, pending, oldest_age_s, message, created_at, last_error)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING event_id`,
    [b.destination, transition, b.pending, b.oldestAgeS, msg.text.slice(0, 2000), at, channels.length ? null : 'no alert channel configured'],
  );
  w.owedEvent = ev.rows[0]!.event_id;
  // A new message replaces one still owed: the clear message carries the peak figures, so
  // nothing the raise would have said is lost.
  w.owed = channels.map((ch) => ch.name);
  w.attempts = 0;
  if (transition === 'raise') {
    w.state = 'raised';
    w.peakPending = b.pending;
    w.peakAge = age;
  } else {
    w.state = 'ok';
  }
  log(transition === 'raise' ? 'warn' : 'info', transition === 'raise' ? 'backlog alert raised' : 'backlog alert cleared', {
    destination: b.destination,
    pending: b.pending,
    oldestAgeS: b.oldestAgeS,
    channels: w.owed,
  });
  if (!channels.length) log('warn', 'backlog alert not sent: no alert channel configured (ALERT_WEBHOOK_URL, ALERT_SMTP_URL)', { destination: b.destination });
}

/**
 * Sends the message to each channel named in `owed`, in order. A failure is logged and leaves that
 * channel owed; a channel no longer configured counts as delivered (nothing is left to retry it with).
 */
async function sendToChannels(c: Check, owed: string[], subject: string, text: string, attempt: number): Promise<{ delivered: string[]; errors: string[] }> {
  const delivered: string[] = [];
  const errors: string[] = [];
  for (const name of owed) {
    const ch = c.channels.find((x) => x.name === name);
    if (!ch) {
      errors.push(`${name}: no longer configured`);
      delivered.push(name); // nothing left to retry it with
      continue;
    }
    try {
      await ch.send(subject, text);
      delivered.push(name);
    } catch (err) {
      const e = `${name}: ${(err as Error).message}`;
      errors.push(e);
      log('error', 'backlog alert delivery failed; retried on the next push run', {
        destination: c.b.destination,
        channel: name,
        attempt,
        err: (err as Error).message,
      });
    }
  }
  return { delivered, errors };
}

/**
 * One attempt at the owed message (as `alert_event` keeps it, its first line the subject): the
 * channels that took it leave `w.owed`, and the event records them and the errors.
 */
async function deliverOwed(c: Check, w: Working, owedEvent: string): Promise<{ delivered: string[]; errors: string[] }> {
  const { tx } = c;
  const ev = (await tx.query<{ kind: string; message: string }>('SELECT kind, message FROM alert_event WHERE event_id = $1', [owedEvent])).rows[0];
  const text = ev?.message ?? '';
  const subject = text.split('\n')[0] ?? '';
  w.attempts++;
  const { delivered, errors } = await sendToChannels(c, w.owed, subject, text, w.attempts);
  w.owed = w.owed.filter((n) => !delivered.includes(n));
  await tx.query(
    `UPDATE alert_event SET channels = CASE WHEN $2::varchar IS NULL THEN channels WHEN channels IS NULL THEN $2::varchar ELSE channels || ' ' || $2::varchar END,
                delivered_at = CASE WHEN $3 THEN now() ELSE delivered_at END, last_error = $4
          WHERE event_id = $1`,
    // NULL, never '' (openGauss's A mode reads '' as NULL: the SQL must not tell them apart).
    [owedEvent, delivered.length ? delivered.join(' ') : null, w.owed.length === 0, errors.length ? errors.join('; ').slice(0, 500) : null],
  );
  return { delivered, errors };
}

/** Writes the check's outcome to the destination's `backlog_alert` row (raised_at / cleared_at on a transition). */
async function saveAlertRow(c: Check, w: Working, transition: Transition | null, errors: string[]): Promise<void> {
  const { b, at } = c;
  await c.tx.query(
    `UPDATE backlog_alert
          SET state = $2, pending = $3, oldest_age_s = $4, peak_pending = $5, peak_age_s = $6,
              raised_at = CASE WHEN $7::varchar = 'raise' THEN $8::timestamptz ELSE raised_at END,
              cleared_at = CASE WHEN $7::varchar = 'clear' THEN $8::timestamptz ELSE cleared_at END,
              owed_event = $9, owed_channels = $10, attempts = $11, last_error = $12, checked_at = $8::timestamptz
        WHERE destination = $1`,
    [
      b.destination,
      w.state,
      b.pending,
      b.oldestAgeS,
      w.peakPending,
      w.peakAge,
      transition ?? null,
      at,
      w.owed.length ? w.owedEvent : null,
      w.owed.length ? w.owed.join(' ') : null,
      w.attempts,
      errors.length ? errors.join('; ').slice(0, 500) : null,
    ],
  );
}

/** One destination's check, in one transaction (docs/day-close.md "Backlog alerts"). */
async function checkOne(db: Db, b: Backlog, cfg: AlertConfig, channels: Channel[], now: () => Date): Promise<AlertCheck> {
  return withTx(db, async (tx) => {
    const row = await lockAlertRow(tx, b.destination);
    const base = { destination: b.destination, pending: b.pending, oldestAgeS: b.oldestAgeS };
    if (!row) return { ...base, state: 'ok' as const, skipped: true };

    const c: Check = { tx, b, cfg, channels, at: now() };
    const transition = decide(row.state, b, cfg);
    const w = fromRow(row, b);
    if (transition) await recordTransition(c, w, transition, row.raised_at);
    const { delivered, errors } = w.owed.length && w.owedEvent ? await deliverOwed(c, w, w.owedEvent) : { delivered: [], errors: [] };
    await saveAlertRow(c, w, transition, errors);
    return {
      ...base,
      state: w.state,
      ...(transition ? { transition } : {}),
      ...(delivered.length ? { delivered } : {}),
      ...(w.owed.length ? { owed: w.owed } : {}),
      ...(errors.length ? { error: errors.join('; ') } : {}),
    };
  });
}

/**
 * Checks every watched destination once (after each push run). Never throws: a failure is logged
 * and reported in the result, and the next run tries again.
 */
export async function checkBacklog(db: Db, cfg: AlertConfig, opts: CheckOptions = {}): Promise<AlertCheck[]> {
  const channels = opts.channels ?? channelsOf(cfg);
  const now = opts.now ?? (() => new Date());
  let list: Backlog[];
  try {
    list = await backlogs(db, opts.destinations);
  } catch (err) {
    log('error', 'backlog check failed', { err: (err as Error).message });
    return [];
  }
  const out: AlertCheck[] = [];
  for (const b of list) {
    try {
      out.push(await checkOne(db, b, cfg, channels, now));
    } catch (err) {
      log('error', 'backlog check failed', { destination: b.destination, err: (err as Error).message });
      out.push({ destination: b.destination, pending: b.pending, oldestAgeS: b.oldestAgeS, state: 'ok', error: (err as Error).message });
    }
  }
  return out;
}
