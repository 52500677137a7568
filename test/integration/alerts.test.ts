// Backlog alerts on the real database, delivered to a real HTTP webhook receiver and a tiny real SMTP
// server, both on loopback: raised once, not repeated, cleared once (with hysteresis), a failed
// channel retried on the next check without repeating the others.
import { createServer, type Server } from 'node:http';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { ensureDevUplinkFiles } from '../../infra/dev/certs.js';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { channelsOf, checkBacklog, decide, duration, loadAlertConfig, signedUrl, type AlertConfig } from '../../shared/alerts/index.js';
import { withTx } from '../../shared/db/index.js';
import { releaseHeld } from '../../shared/outbox/index.js';

const db = testDb({ max: 6 });

// ---- a group-robot webhook (WeCom/DingTalk shape) ----------------------------------------------
interface Hook {
  url: string;
  bodies: Array<{ msgtype: string; text: { content: string } }>;
  urls: string[];
  /** What the next answers are: ok, an HTTP 500, or HTTP 200 with a non-zero errcode. */
  mode: 'ok' | '500' | 'errcode';
  close(): Promise<void>;
}
async function startHook(): Promise<Hook> {
  const hook = { bodies: [], urls: [], mode: 'ok' } as unknown as Hook;
  const server: Server = createServer((req, res) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (data += d));
    req.on('end', () => {
      hook.urls.push(req.url ?? '');
      if (hook.mode === '500') {
        res.writeHead(500).end('down');
        return;
      }
      if (hook.mode === 'errcode') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ errcode: 93000, errmsg: 'invalid webhook url' }));
        return;
      }
      hook.bodies.push(JSON.parse(data));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ errcode: 0, errmsg: 'ok' }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  hook.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/cgi-bin/webhook/send?key=test-key`;
  hook.close = () => new Promise((r) => server.close(() => r()));
  return hook;
}

// ---- a tiny SMTP server (RFC 5321 happy path, AUTH PLAIN, STARTTLS when switched on, a switch to
// refuse recipients) -------------------------------------------------------------------------------
interface Mail {
  from: string;
  to: string[];
  auth: string | null;
  /** Whether the mail came over TLS (after STARTTLS). */
  tls: boolean;
  headers: Record<string, string>;
  body: string;
}
interface Smtp {
  port: number;
  mails: Mail[];
  refuseRcpt: boolean;
  /** Offer STARTTLS with this certificate and key (the development CA's localhost certificate). */
  starttls: { cert: string; key: string } | null;
  /** AUTH lines received, over whatever connection. */
  auths: string[];
  close(): Promise<void>;
}
function decodeWords(s: string): string {
  return s.replace(/=\?UTF-8\?B\?([^?]*)\?=\s*/gi, (_, b: string) => Buffer.from(b, 'base64').toString('utf8')).trim();
}
async function startSmtp(): Promise<Smtp> {
  const smtp = { mails: [], refuseRcpt: false, starttls: null, auths: [] } as unknown as Smtp;
  const serve = (sock: net.Socket, secured: boolean, greet: boolean) => {
    sock.setEncoding('utf8');
    let buf = '';
    let inData = false;
    let cur: Omit<Mail, 'headers' | 'body'> = { from: '', to: [], auth: null, tls: secured };
    const say = (s: string) => sock.write(s + '\r\n');
    if (greet) say('220 mail.hospital.test ESMTP test');
    const onData = (d: string) => {
      buf += d;
      for (;;) {
        if (inData) {
          const end = buf.indexOf('\r\n.\r\n');
          if (end < 0) return;
          const raw = buf.slice(0, end).replace(/^\.\./gm, '.');
          buf = buf.slice(end + 5);
          inData = false;
          const [head, ...rest] = raw.split('\r\n\r\n');
          const headers: Record<string, string> = {};
          for (const line of head!.replace(/\r\n[ \t]/g, ' ').split('\r\n')) {
            const i = line.indexOf(':');
            headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
          }
          smtp.mails.push({ ...cur, headers, body: Buffer.from(rest.join('\r\n\r\n').replace(/\s/g, ''), 'base64').toString('utf8') });
          cur = { from: '', to: [], auth: cur.auth, tls: secured };
          say('250 2.0.0 queued');
          continue;
        }
        const i = buf.indexOf('\r\n');
        if (i < 0) return;
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const cmd = line.slice(0, 4).toUpperCase();
        if (cmd === 'EHLO') sock.write(`250-mail.hospital.test\r\n250-8BITMIME\r\n${smtp.starttls && !secured ? '250-STARTTLS\r\n' : ''}250 AUTH PLAIN\r\n`);
        else if (cmd === 'HELO') say('250 mail.hospital.test');
        else if (line.toUpperCase() === 'STARTTLS' && smtp.starttls && !secured) {
          say('220 2.0.0 ready to start TLS');
          sock.off('data', onData);
          const t = new tls.TLSSocket(sock, { isServer: true, cert: smtp.starttls.cert, key: smtp.starttls.key });
          t.on('error', () => undefined);
          serve(t, true, false);
          return;
        } else if (cmd === 'AUTH') {
          cur.auth = Buffer.from(line.split(' ')[2] ?? '', 'base64').toString('utf8');
          smtp.auths.push(cur.auth);
          say('235 2.7.0 ok');
        } else if (cmd === 'MAIL') {
          cur.from = /<(.*)>/.exec(line)?.[1] ?? '';
          say('250 ok');
        } else if (cmd === 'RCPT') {
          if (smtp.refuseRcpt) say('550 5.1.1 no such user');
          else {
            cur.to.push(/<(.*)>/.exec(line)?.[1] ?? '');
            say('250 ok');
          }
        } else if (cmd === 'DATA') {
          inData = true;
          say('354 go ahead');
        } else if (cmd === 'QUIT') {
          say('221 bye');
          sock.end();
        } else if (cmd === 'RSET' || cmd === 'NOOP') say('250 ok');
        else say('502 not implemented');
      }
    };
    sock.on('data', onData);
    sock.on('error', () => undefined);
  };
  const server = net.createServer((sock) => serve(sock, false, true));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  smtp.port = (server.address() as AddressInfo).port;
  smtp.close = () => new Promise((r) => server.close(() => r()));
  return smtp;
}

let hook: Hook;
let smtp: Smtp;
let cfg: AlertConfig;
beforeAll(async () => {
  [hook, smtp] = await Promise.all([startHook(), startSmtp()]);
  cfg = loadAlertConfig(
    {
      ALERT_BACKLOG_COUNT: '5',
      ALERT_BACKLOG_AGE_S: '3600',
      ALERT_WEBHOOK_URL: hook.url,
      ALERT_SMTP_URL: `smtp://127.0.0.1:${smtp.port}`,
      ALERT_MAIL_TO: 'ops@hospital.test, it@hospital.test',
      ALERT_MAIL_FROM: 'cdc-front@hospital.test',
      ALERT_FRONT_NAME: '测试医院前置机',
      ALERT_TIMEOUT_MS: '3000',
    },
    () => undefined,
  );
});
afterAll(async () => {
  await Promise.all([hook.close(), smtp.close()]);
});

/**
 * A destination of the test's own, disabled, so that no other test file enqueues to it (they write
 * to every enabled destination); the check is told to watch it explicitly.
 */
async function destination(): Promise<string> {
  const name = uniqueId('alr').replace(/-/g, '_').slice(0, 40);
  await db.query(`INSERT INTO uplink_destination (name, kind, enabled) VALUES ($1, 'national', false)`, [name]);
  return name;
}
async function queue(dest: string, org: string, n: number, ageS = 0, deadline: 'realtime' | 'T+1' = 'realtime'): Promise<void> {
  for (let i = 0; i < n; i++) {
    await db.query(
      `INSERT INTO outbox (destination, resource, org_code, record_id, version, op, deadline_class, payload, created_at)
       VALUES ($1, $5, $2, $3, 1, 'upsert', $6, '{}', now() - $4 * interval '1 second')`,
      [dest, org, uniqueId('r'), ageS, deadline === 'realtime' ? 'emrPatientInfo' : 'emrDischargeInfo', deadline],
    );
  }
}
/** Marks all but `keep` of the destination's pending rows sent (the platform is back). */
async function drainTo(dest: string, keep: number): Promise<void> {
  await db.query(
    `UPDATE outbox SET state = 'sent', sent_at = now()
      WHERE outbox_id IN (SELECT outbox_id FROM outbox WHERE destination = $1 AND state = 'pending' ORDER BY outbox_id
                          OFFSET $2)`,
    [dest, keep],
  );
}
const hooksFor = (dest: string) => hook.bodies.filter((b) => b.text.content.includes(dest));
const mailsFor = (dest: string) => smtp.mails.filter((m) => m.body.includes(dest));

describe('backlog alert', () => {
  it('is raised once per destination, not repeated, and cleared once below the hysteresis', async () => {
    const dest = await destination();
    const org = uniqueOrg();
    await queue(dest, org, 4);
    expect((await checkBacklog(db, cfg, { destinations: [dest] }))[0]).toMatchObject({ destination: dest, pending: 4, state: 'ok' });
    expect(hooksFor(dest)).toHaveLength(0);

    await queue(dest, org, 2); // 6 ≥ 5
    const [raised] = await checkBacklog(db, cfg, { destinations: [dest] });
    expect(raised).toMatchObject({ state: 'raised', transition: 'raise', pending: 6, delivered: ['webhook', 'mail'] });
    const [msg] = hooksFor(dest);
    expect(msg!.msgtype).toBe('text');
    expect(msg!.text.content).toContain('上报积压');
    expect(msg!.text.content).toContain('待发送：6 条（阈值 5 条）');
    expect(msg!.text.content).toContain('测试医院前置机');
    expect(msg!.text.content).toContain(`${org}（6 条）`);
    const [mail] = mailsFor(dest);
    expect(mail!.from).toBe('cdc-front@hospital.test');
    expect(mail!.to).toEqual(['ops@hospital.test', 'it@hospital.test']);
    expect(decodeWords(mail!.headers.subject!)).toBe(`【传染病监测前置软件告警】上报积压：${dest}`);
    expect(mail!.headers['content-type']).toContain('charset=UTF-8');

    // Further checks, two of them at once (replicas, a nudge beside the cron): nothing repeated.
    await queue(dest, org, 3);
    const more = await Promise.all([checkBacklog(db, cfg, { destinations: [dest] }), checkBacklog(db, cfg, { destinations: [dest] })]);
    expect(more.flat().filter((c) => c.transition)).toEqual([]);
    await checkBacklog(db, cfg, { destinations: [dest] });
    expect(hooksFor(dest)).toHaveLength(1);
    expect(mailsFor(dest)).toHaveLength(1);

    // Down to 3: below the threshold but not below 5 × 0.5 — still raised (no flapping).
    await drainTo(dest, 3);
    expect((await checkBacklog(db, cfg, { destinations: [dest] }))[0]).toMatchObject({ state: 'raised', pending: 3 });
    expect(hooksFor(dest)).toHaveLength(1);

    await drainTo(dest, 2);
    const [cleared] = await checkBacklog(db, cfg, { destinations: [dest] });
    expect(cleared).toMatchObject({ state: 'ok', transition: 'clear', pending: 2, delivered: ['webhook', 'mail'] });
    await checkBacklog(db, cfg, { destinations: [dest] });
    const hooks = hooksFor(dest);
    expect(hooks).toHaveLength(2);
    expect(hooks[1]!.text.content).toContain('告警解除');
    expect(hooks[1]!.text.content).toContain('期间最高积压 9 条');
    expect(mailsFor(dest)).toHaveLength(2);

    const events = (
      await db.query(`SELECT kind, pending, channels, delivered_at IS NOT NULL AS delivered FROM alert_event WHERE destination = $1 ORDER BY event_id`, [dest])
    ).rows;
    expect(events).toEqual([
      { kind: 'raise', pending: 6, channels: 'webhook mail', delivered: true },
      { kind: 'clear', pending: 2, channels: 'webhook mail', delivered: true },
    ]);
    const state = (await db.query(`SELECT state, owed_channels, peak_pending FROM backlog_alert WHERE destination = $1`, [dest])).rows[0];
    expect(state).toMatchObject({ state: 'ok', owed_channels: null });
  });

  it('is raised by the age of the oldest unsent row alone, and names it', async () => {
    const dest = await destination();
    await queue(dest, uniqueOrg(), 1, 2 * 3600 + 5 * 60);
    const [c] = await checkBacklog(db, cfg, { destinations: [dest] });
    expect(c).toMatchObject({ transition: 'raise', pending: 1 });
    expect(c!.oldestAgeS).toBeGreaterThanOrEqual(7500);
    expect(hooksFor(dest)[0]!.text.content).toContain('最早未发送记录已等待：2小时5分（阈值 1小时）');
    await drainTo(dest, 0);
    expect((await checkBacklog(db, cfg, { destinations: [dest] }))[0]).toMatchObject({ transition: 'clear', pending: 0, oldestAgeS: null });
  });

  it('is raised by a realtime row waiting past its own threshold (15 min), not by another class’s row of the same age', async () => {
    const dest = await destination();
    const org = uniqueOrg();
    await queue(dest, org, 1, 16 * 60, 'T+1');
    expect((await checkBacklog(db, cfg, { destinations: [dest] }))[0]).toMatchObject({ state: 'ok', pending: 1 });
    expect(hooksFor(dest)).toEqual([]);
    await queue(dest, org, 1, 16 * 60, 'realtime');
    const [c] = await checkBacklog(db, cfg, { destinations: [dest] });
    expect(c).toMatchObject({ transition: 'raise', pending: 2 });
    expect(hooksFor(dest)[0]!.text.content).toContain('其中实时上报类记录（报告卡、诊断、患者等）最早已等待：16分（阈值 15分）');
    await drainTo(dest, 0);
    expect((await checkBacklog(db, cfg, { destinations: [dest] }))[0]).toMatchObject({ transition: 'clear', pending: 0 });
  });

  it('does not count the time a row was held: a realtime row released after 30 minutes on hold is a fresh row, and ages from its release', async () => {
    const dest = await destination();
    const org = uniqueOrg();
    const id = uniqueId('held');
    // Held for a mapping since 30 minutes ago (docs/code-mapping.md), then the mapping is made.
    await db.query(
      `INSERT INTO outbox (destination, resource, org_code, record_id, version, op, deadline_class, payload, state, created_at)
       VALUES ($1, 'emrPatientInfo', $2, $3, 1, 'upsert', 'realtime', '{}', 'held', now() - interval '30 minutes')`,
      [dest, org, id],
    );
    expect(await withTx(db, (tx) => releaseHeld(tx, 'emrPatientInfo', org, id))).toBe(1);
    const [c] = await checkBacklog(db, cfg, { destinations: [dest] });
    expect(c).toMatchObject({ state: 'ok', pending: 1 });
    expect(c!.transition).toBeUndefined();
    expect(c!.oldestAgeS).toBeLessThan(60);
    expect(hooksFor(dest)).toEqual([]);
    // Its receipt time is kept; a wait after the release past the threshold is a backlog as any.
    await db.query(`UPDATE outbox SET released_at = now() - interval '16 minutes' WHERE destination = $1 AND record_id = $2`, [dest, id]);
    expect((await checkBacklog(db, cfg, { destinations: [dest] }))[0]).toMatchObject({ transition: 'raise', pending: 1 });
    await drainTo(dest, 0);
    expect((await checkBacklog(db, cfg, { destinations: [dest] }))[0]).toMatchObject({ transition: 'clear', pending: 0 });
  });

  /** A backlog raised while the webhook answers HTTP 500: mail has the raise, the webhook is owed it. */
  async function raiseOwedToWebhook(dest: string) {
    await queue(dest, uniqueOrg(), 5);
    hook.mode = '500';
    const [c] = await checkBacklog(db, cfg, { destinations: [dest] });
    expect(c).toMatchObject({ transition: 'raise', delivered: ['mail'], owed: ['webhook'] });
    return c!;
  }

  it('retries a channel that failed on the next check, without repeating the others', async () => {
    const dest = await destination();
    try {
      const c = await raiseOwedToWebhook(dest);
      expect(c.error).toContain('HTTP 500');
      hook.mode = 'errcode'; // WeCom answers 200 with an error code: not delivered either
      const [c2] = await checkBacklog(db, cfg, { destinations: [dest] });
      expect(c2).toMatchObject({ owed: ['webhook'] });
      expect(c2!.transition).toBeUndefined();
      expect(c2!.error).toContain('errcode 93000');
    } finally {
      hook.mode = 'ok';
    }
    const [c3] = await checkBacklog(db, cfg, { destinations: [dest] });
    expect(c3).toMatchObject({ state: 'raised', delivered: ['webhook'] });
    expect(c3!.owed).toBeUndefined();
    expect(hooksFor(dest)).toHaveLength(1);
    expect(mailsFor(dest)).toHaveLength(1);
    const row = (await db.query(`SELECT attempts, owed_channels FROM backlog_alert WHERE destination = $1`, [dest])).rows[0];
    expect(row).toEqual({ attempts: 3, owed_channels: null });
    await checkBacklog(db, cfg, { destinations: [dest] });
    expect(hooksFor(dest)).toHaveLength(1);
  });

  it('replaces a raise still owed to a channel with the clear: the channel gets the clear, never the stale raise', async () => {
    const dest = await destination();
    try {
      await raiseOwedToWebhook(dest);
      const [c2] = await checkBacklog(db, cfg, { destinations: [dest] }); // the retry fails too
      expect(c2).toMatchObject({ state: 'raised', owed: ['webhook'] });
    } finally {
      hook.mode = 'ok';
    }
    const raiseEvent = (await db.query(`SELECT owed_event, attempts FROM backlog_alert WHERE destination = $1`, [dest])).rows[0];
    expect(raiseEvent.attempts).toBe(2);

    // The platform is back before the webhook is: the next check clears, and the clear is what every channel is owed.
    await drainTo(dest, 0);
    const [cleared] = await checkBacklog(db, cfg, { destinations: [dest] });
    expect(cleared).toMatchObject({ state: 'ok', transition: 'clear', delivered: ['webhook', 'mail'] });
    expect(cleared!.owed).toBeUndefined();
    const hooks = hooksFor(dest);
    expect(hooks).toHaveLength(1);
    expect(hooks[0]!.text.content).toContain('告警解除');
    expect(hooks[0]!.text.content).not.toContain('【传染病监测前置软件告警】上报积压');
    expect(hooks[0]!.text.content).toContain('期间最高积压 5 条'); // what the raise would have said, carried by the clear
    const mails = mailsFor(dest).map((m) => decodeWords(m.headers.subject!));
    expect(mails).toEqual([`【传染病监测前置软件告警】上报积压：${dest}`, `【传染病监测前置软件告警解除】上报积压已恢复：${dest}`]);

    // Nothing is owed any more: later checks send nothing, the stale raise least of all.
    const row = (await db.query(`SELECT state, owed_event, owed_channels, attempts, last_error FROM backlog_alert WHERE destination = $1`, [dest])).rows[0];
    expect(row).toEqual({ state: 'ok', owed_event: null, owed_channels: null, attempts: 1, last_error: null });
    expect((await checkBacklog(db, cfg, { destinations: [dest] }))[0]).toEqual({ destination: dest, pending: 0, oldestAgeS: null, state: 'ok' });
    expect(hooksFor(dest)).toHaveLength(1);
    expect(mailsFor(dest)).toHaveLength(2);
    const events = (
      await db.query(`SELECT event_id, kind, channels, delivered_at IS NOT NULL AS delivered FROM alert_event WHERE destination = $1 ORDER BY event_id`, [dest])
    ).rows;
    expect(events.map(({ event_id: _, ...e }) => e)).toEqual([
      { kind: 'raise', channels: 'mail', delivered: false }, // never to the webhook: replaced, not retried
      { kind: 'clear', channels: 'webhook mail', delivered: true },
    ]);
    expect(events[0]!.event_id).toBe(raiseEvent.owed_event);
  });

  it('keeps a refused mail owed, and never throws to the caller', async () => {
    const dest = await destination();
    await queue(dest, uniqueOrg(), 5);
    smtp.refuseRcpt = true;
    try {
      const [c] = await checkBacklog(db, cfg, { destinations: [dest] });
      expect(c).toMatchObject({ transition: 'raise', delivered: ['webhook'], owed: ['mail'] });
      expect(c!.error).toContain('550');
    } finally {
      smtp.refuseRcpt = false;
    }
    // An unreachable relay: the check still answers.
    const dead = { ...cfg, smtp: { ...cfg.smtp!, port: 1 } };
    const [c2] = await checkBacklog(db, dead, { destinations: [dest] });
    expect(c2).toMatchObject({ owed: ['mail'] });
    const [c3] = await checkBacklog(db, cfg, { destinations: [dest] });
    expect(c3).toMatchObject({ delivered: ['mail'] });
    expect(mailsFor(dest)).toHaveLength(1);
  });

  it('sends AUTH PLAIN only over TLS: STARTTLS when the relay offers it, the relay’s certificate checked', async () => {
    const pki = ensureDevUplinkFiles(mkdtempSync(join(tmpdir(), 'cdc-smtp-')));
    smtp.starttls = { cert: pki.read('uplink-platform-tls-cert'), key: pki.read('uplink-platform-tls-key') };
    try {
      const withAuth = loadAlertConfig(
        { ALERT_BACKLOG_COUNT: '1', ALERT_SMTP_URL: `smtp://front@127.0.0.1:${smtp.port}`, ALERT_MAIL_TO: 'ops@hospital.test' },
        (name) => (name === 'alert-smtp-password' ? 's3cret' : name === 'alert-smtp-ca' ? pki.read('uplink-ca') : undefined),
      );
      const dest = await destination();
      await queue(dest, uniqueOrg(), 1);
      const [c] = await checkBacklog(db, withAuth, { destinations: [dest] });
      expect(c).toMatchObject({ delivered: expect.arrayContaining(['mail']) });
      expect(mailsFor(dest)[0]).toMatchObject({ auth: '\0front\0s3cret', tls: true });
      // Without the relay's CA the certificate does not verify: nothing is sent, the password least of all.
      const untrusted = loadAlertConfig(
        { ALERT_BACKLOG_COUNT: '1', ALERT_SMTP_URL: `smtp://front@127.0.0.1:${smtp.port}`, ALERT_MAIL_TO: 'ops@hospital.test' },
        (name) => (name === 'alert-smtp-password' ? 'other-pass' : undefined),
      );
      const dest2 = await destination();
      await queue(dest2, uniqueOrg(), 1);
      const [c2] = await checkBacklog(db, untrusted, { destinations: [dest2] });
      expect(c2).toMatchObject({ owed: ['mail'] });
      expect(c2!.error).toMatch(/STARTTLS.*(certificate|self.signed|issuer)/i);
      expect(smtp.auths).not.toContain('\0front\0other-pass');
    } finally {
      smtp.starttls = null;
    }
  });

  it('refuses to send a password to a relay that offers no STARTTLS, naming why', async () => {
    const withAuth = loadAlertConfig(
      { ALERT_BACKLOG_COUNT: '1', ALERT_SMTP_URL: `smtp://front@127.0.0.1:${smtp.port}`, ALERT_MAIL_TO: 'ops@hospital.test' },
      (name) => (name === 'alert-smtp-password' ? 'clear-pass' : undefined),
    );
    const dest = await destination();
    await queue(dest, uniqueOrg(), 1);
    const [c] = await checkBacklog(db, withAuth, { destinations: [dest] });
    expect(c).toMatchObject({ owed: ['mail'] });
    expect(c!.error).toContain('refusing to send the password in clear');
    expect(smtp.auths).not.toContain('\0front\0clear-pass');
    expect(mailsFor(dest)).toHaveLength(0);
  });

  it('stops owing a channel no longer configured, naming it, and keeps the others', async () => {
    const dest = await destination();
    await queue(dest, uniqueOrg(), 5);
    hook.mode = '500';
    try {
      const [c] = await checkBacklog(db, cfg, { destinations: [dest] });
      expect(c).toMatchObject({ transition: 'raise', delivered: ['mail'], owed: ['webhook'] });
    } finally {
      hook.mode = 'ok';
    }
    const mailOnly = channelsOf(cfg).filter((ch) => ch.name !== 'webhook');
    const [c2] = await checkBacklog(db, cfg, { destinations: [dest], channels: mailOnly });
    expect(c2).toMatchObject({ state: 'raised', delivered: ['webhook'], error: 'webhook: no longer configured' });
    expect(c2!.owed).toBeUndefined();
    expect(c2!.transition).toBeUndefined();
    expect(hooksFor(dest)).toHaveLength(0);
    expect(mailsFor(dest)).toHaveLength(1);
    const row = (await db.query(`SELECT owed_event, owed_channels, attempts, last_error FROM backlog_alert WHERE destination = $1`, [dest])).rows[0];
    expect(row).toEqual({ owed_event: null, owed_channels: null, attempts: 2, last_error: 'webhook: no longer configured' });
    const events = (await db.query(`SELECT channels, delivered_at IS NOT NULL AS delivered FROM alert_event WHERE destination = $1`, [dest])).rows;
    expect(events).toEqual([{ channels: 'mail webhook', delivered: true }]);
  });

  it('skips a destination whose row another check holds, deciding nothing', async () => {
    const dest = await destination();
    await checkBacklog(db, cfg, { destinations: [dest] }); // the row, state ok
    await queue(dest, uniqueOrg(), 5);
    const holder = await db.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM backlog_alert WHERE destination = $1 FOR UPDATE', [dest]);
      const [c] = await checkBacklog(db, cfg, { destinations: [dest] });
      expect(c).toEqual({ destination: dest, pending: 5, oldestAgeS: expect.any(Number), state: 'ok', skipped: true });
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
    expect(hooksFor(dest)).toHaveLength(0);
    expect((await db.query(`SELECT count(*)::int AS n FROM alert_event WHERE destination = $1`, [dest])).rows[0]).toEqual({ n: 0 });
    expect((await checkBacklog(db, cfg, { destinations: [dest] }))[0]).toMatchObject({ transition: 'raise', delivered: ['webhook', 'mail'] });
  });
});

describe('alert settings and rules', () => {
  it('default to 1000 rows or 2 hours, and refuse what they cannot use, naming it', () => {
    const d = loadAlertConfig({}, () => undefined);
    expect(d).toMatchObject({ backlogCount: 1000, backlogAgeS: 7200, realtimeAgeS: 900, clearRatio: 0.5 });
    expect(d.webhook).toBeUndefined();
    expect(d.smtp).toBeUndefined();
    expect(() => loadAlertConfig({ ALERT_SMTP_URL: 'smtp://relay:25' }, () => undefined)).toThrow(/ALERT_MAIL_TO/);
    expect(() => loadAlertConfig({ ALERT_SMTP_URL: 'smtp://u:p@relay:25', ALERT_MAIL_TO: 'a@b' }, () => undefined)).toThrow(/alert-smtp-password/);
    expect(() => loadAlertConfig({ ALERT_BACKLOG_COUNT: 'many' }, () => undefined)).toThrow(/ALERT_BACKLOG_COUNT/);
    expect(() => loadAlertConfig({ ALERT_WEBHOOK_URL: 'ftp://x' }, () => undefined)).toThrow(/ALERT_WEBHOOK_URL/);
  });

  it('raise at a threshold and clear below threshold × ratio only', () => {
    const c = { backlogCount: 100, backlogAgeS: 7200, realtimeAgeS: 900, clearRatio: 0.5 };
    expect(decide('ok', { pending: 99, oldestAgeS: 7199 }, c)).toBeNull();
    expect(decide('ok', { pending: 100, oldestAgeS: 1 }, c)).toBe('raise');
    expect(decide('ok', { pending: 1, oldestAgeS: 7200 }, c)).toBe('raise');
    expect(decide('raised', { pending: 60, oldestAgeS: 10 }, c)).toBeNull();
    expect(decide('raised', { pending: 10, oldestAgeS: 3700 }, c)).toBeNull();
    expect(decide('raised', { pending: 49, oldestAgeS: 3599 }, c)).toBe('clear');
    expect(decide('raised', { pending: 0, oldestAgeS: null }, c)).toBe('clear');
    // The realtime rows' own age: raised at 900 s, cleared below 450.
    expect(decide('ok', { pending: 1, oldestAgeS: 899, realtimeAgeS: 899 }, c)).toBeNull();
    expect(decide('ok', { pending: 1, oldestAgeS: 900, realtimeAgeS: 900 }, c)).toBe('raise');
    expect(decide('raised', { pending: 1, oldestAgeS: 500, realtimeAgeS: 500 }, c)).toBeNull();
    expect(decide('raised', { pending: 1, oldestAgeS: 449, realtimeAgeS: 449 }, c)).toBe('clear');
  });

  it('format durations in Chinese and sign DingTalk URLs', () => {
    expect([duration(30), duration(60), duration(7500), duration(90000), duration(7200)]).toEqual(['30秒', '1分', '2小时5分', '1天1小时', '2小时']);
    const u = new URL(signedUrl('https://oapi.dingtalk.com/robot/send?access_token=t', 'SECxyz', 1700000000000));
    expect(u.searchParams.get('timestamp')).toBe('1700000000000');
    expect(u.searchParams.get('sign')).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(u.searchParams.get('access_token')).toBe('t');
  });
});
