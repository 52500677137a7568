/**
 * A minimal SMTP client (RFC 5321) on node:net / node:tls, enough to hand one plain-text message to a
 * hospital's mail relay: EHLO (HELO when refused), optional AUTH PLAIN (RFC 4616), MAIL FROM, RCPT
 * TO, DATA, QUIT. Implicit TLS with smtps:// (port 465); on smtp:// STARTTLS (RFC 3207) whenever the
 * relay offers it. A password is only ever sent over TLS: a relay that offers no STARTTLS to a front
 * configured with a user is refused before AUTH, naming why. The relay's certificate is verified
 * (the system's roots, or alert-smtp-ca). The body is UTF-8 in base64, the subject an RFC 2047 word.
 */
import net from 'node:net';
import tls from 'node:tls';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { SmtpSettings } from './config.js';

export class SmtpError extends Error {}

/** Reads replies: a reply is complete at the line "NNN " (a space after the code, RFC 5321 4.2.1). */
class Replies {
  private buf = '';
  private lines: string[] = [];
  private waiting: { resolve: (r: { code: number; text: string }) => void; reject: (e: Error) => void } | undefined;
  private failed: Error | undefined;

  push(chunk: string): void {
    this.buf += chunk;
    let i: number;
    while ((i = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, i).replace(/\r$/, '');
      this.buf = this.buf.slice(i + 1);
      this.lines.push(line);
      if (/^\d{3}(?: |$)/.test(line)) this.finish();
    }
  }

  private ready: Array<{ code: number; text: string }> = [];

  private finish(): void {
    const code = Number(this.lines[this.lines.length - 1]!.slice(0, 3));
    const text = this.lines.map((l) => l.slice(4)).join('\n');
    this.lines = [];
    const w = this.waiting;
    this.waiting = undefined;
    if (w) w.resolve({ code, text });
    else this.ready.push({ code, text });
  }

  fail(err: Error): void {
    this.failed ??= err;
    const w = this.waiting;
    this.waiting = undefined;
    w?.reject(err);
  }

  next(): Promise<{ code: number; text: string }> {
    const r = this.ready.shift();
    if (r) return Promise.resolve(r);
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/** "=?UTF-8?B?...?=" words of at most 75 characters (RFC 2047 §2), whole characters each. */
export function encodeHeader(s: string): string {
  if (/^[\x20-\x7e]*$/.test(s)) return s;
  const words: string[] = [];
  let cur = '';
  for (const ch of s) {
    if (Buffer.byteLength(cur + ch) > 45) {
      words.push(`=?UTF-8?B?${b64(cur)}?=`);
      cur = '';
    }
    cur += ch;
  }
  if (cur) words.push(`=?UTF-8?B?${b64(cur)}?=`);
  return words.join('\r\n ');
}

/** The message (RFC 5322) with CRLF line ends; the body base64 in lines of 76. */
export function buildMessage(o: { from: string; to: string[]; subject: string; text: string; date?: Date }): string {
  const body = b64(o.text).replace(/.{1,76}/g, '$&\r\n');
  const domain = o.from.split('@')[1] ?? hostname();
  return [
    `From: ${o.from}`,
    `To: ${o.to.join(', ')}`,
    `Subject: ${encodeHeader(o.subject)}`,
    `Date: ${(o.date ?? new Date()).toUTCString().replace(/GMT$/, '+0000')}`,
    `Message-ID: <${randomUUID()}@${domain}>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=UTF-8',
    'Content-Transfer-Encoding: base64',
    '',
    body,
  ].join('\r\n');
}

/** Sends one message; throws SmtpError naming the step and the server's answer. */
export async function sendMail(s: SmtpSettings, subject: string, text: string, timeoutMs = 10_000): Promise<void> {
  let replies = new Replies();
  const servername = net.isIP(s.host) ? undefined : s.host;
  const tlsOptions = { servername, ...(s.ca ? { ca: s.ca } : {}), minVersion: 'TLSv1.2' as const };
  const listen = (sock: net.Socket) => {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => replies.push(d));
    sock.on('error', (e) => replies.fail(new SmtpError(`smtp ${s.host}:${s.port}: ${e.message}`)));
    sock.on('close', () => replies.fail(new SmtpError(`smtp ${s.host}:${s.port}: connection closed`)));
  };
  let socket: net.Socket = s.secure ? tls.connect({ host: s.host, port: s.port, ...tlsOptions }) : net.connect({ host: s.host, port: s.port });
  let encrypted = s.secure;
  listen(socket);
  const timer = setTimeout(() => {
    replies.fail(new SmtpError(`smtp ${s.host}:${s.port}: no answer within ${timeoutMs} ms`));
    socket.destroy();
  }, timeoutMs);

  const expect = async (step: string, ok: (code: number) => boolean): Promise<{ code: number; text: string }> => {
    const r = await replies.next();
    if (!ok(r.code)) throw new SmtpError(`smtp ${step}: ${r.code} ${r.text}`.slice(0, 400));
    return r;
  };
  const send = (line: string) => socket.write(line + '\r\n');
  const helo = hostname().replace(/[^A-Za-z0-9.-]/g, '') || 'cdc-front';
  try {
    await expect('greeting', (c) => c === 220);
    send(`EHLO ${helo}`);
    let ehlo = await replies.next();
    if (ehlo.code !== 250) {
      send(`HELO ${helo}`);
      await expect('HELO', (c) => c === 250);
    }
    if (!encrypted && ehlo.code === 250 && /^STARTTLS\b/im.test(ehlo.text)) {
      send('STARTTLS');
      await expect('STARTTLS', (c) => c === 220);
      // The clear socket is handed to TLS; replies now come from the encrypted one.
      socket.removeAllListeners('data');
      socket.removeAllListeners('close');
      replies = new Replies();
      const secured = tls.connect({ socket, ...tlsOptions });
      await new Promise<void>((ok, fail) => {
        secured.once('secureConnect', ok);
        secured.once('error', (e) => fail(new SmtpError(`smtp STARTTLS ${s.host}:${s.port}: ${e.message}`)));
      });
      socket = secured;
      encrypted = true;
      listen(socket);
      send(`EHLO ${helo}`);
      ehlo = await expect('EHLO after STARTTLS', (c) => c === 250);
    }
    if (s.user) {
      if (!encrypted)
        throw new SmtpError(
          `smtp ${s.host}:${s.port}: the relay offers no STARTTLS; refusing to send the password in clear (use smtps:// or a relay with STARTTLS)`,
        );
      send(`AUTH PLAIN ${Buffer.from(`\0${s.user}\0${s.pass ?? ''}`, 'utf8').toString('base64')}`);
      await expect('AUTH PLAIN', (c) => c === 235);
    }
    send(`MAIL FROM:<${s.from}>`);
    await expect('MAIL FROM', (c) => c === 250);
    for (const rcpt of s.to) {
      send(`RCPT TO:<${rcpt}>`);
      await expect(`RCPT TO ${rcpt}`, (c) => c === 250 || c === 251);
    }
    send('DATA');
    await expect('DATA', (c) => c === 354);
    // Dot-stuffing (RFC 5321 4.5.2), then the terminating line.
    const msg = buildMessage({ from: s.from, to: s.to, subject, text }).replace(/^\./gm, '..');
    socket.write(msg.endsWith('\r\n') ? msg : msg + '\r\n');
    send('.');
    await expect('end of DATA', (c) => c === 250);
    send('QUIT');
    await replies.next().catch(() => undefined);
  } finally {
    clearTimeout(timer);
    socket.end();
    socket.destroy();
  }
}
