// One caller's reminder streams cannot take the reminders away from another (docs/his-guide.md 传染病提醒,
// docs/warning.md "Reminders"): through the running front's data port, with the limits set small in
// the environment as stack.yml passes it, a caller's streams past REMIND_STREAMS_PER_CALLER and all
// streams past REMIND_STREAMS_MAX are refused 429 naming the limit, while another caller's poll is
// answered; a stream that ends gives its place back. A sweep the database fails ends the stream with
// an `error` event, logged as a warning without a stack.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey } from '../../shared/http/auth.js';
import { insertCaller } from '../../shared/http/auth-store.js';
import { testDb, uniqueOrg } from '../setup/db.js';
import { startStackRuntime, type StackRuntime } from '../setup/stack-runtime.js';

let front: StackRuntime;
const key = generateApiKey();
const orgB = uniqueOrg();

beforeAll(async () => {
  await insertCaller(testDb(), { kind: 'apikey', name: '另一家医院 HIS', orgs: [orgB], ratePerMin: 0, keyPrefix: key.prefix, keyHash: key.hash });
  // A statement cancelled after 2 s (DB_STATEMENT_TIMEOUT_MS, as stack.yml passes it): the sweep a
  // held table lock keeps waiting fails within the test's time.
  front = await startStackRuntime('remind-streams', { REMIND_STREAMS_PER_CALLER: '2', REMIND_STREAMS_MAX: '3', DB_STATEMENT_TIMEOUT_MS: '2000' });
}, 120_000);

afterAll(async () => {
  await front?.close();
});

const open: AbortController[] = [];

/** Opens a stream; for a 200, waits for its `open` event and keeps it open. */
async function stream(headers: Record<string, string> = {}): Promise<{ status: number; text: string; ctrl: AbortController }> {
  const ctrl = new AbortController();
  const res = await fetch(`${front.rt.portUrls.data}/function/remind/reminders/stream`, { headers, signal: ctrl.signal });
  if (res.status !== 200) return { status: res.status, text: await res.text(), ctrl };
  open.push(ctrl);
  const reader = res.body!.getReader();
  let text = '';
  while (!text.includes('event: open')) text += new TextDecoder().decode((await reader.read()).value);
  return { status: 200, text, ctrl };
}

describe('reminder streams on the data port', () => {
  it("a caller's streams past its share, and all past the replica's, are refused; another caller's poll is answered; an ended stream frees its place", {
    timeout: 60_000,
  }, async () => {
    const b = { 'x-api-key': key.key };
    try {
      const a1 = await stream();
      expect((await stream()).status).toBe(200);
      const a3 = await stream();
      expect(a3.status).toBe(429);
      expect(a3.text).toContain('每个调用方最多同时打开 2 条');
      // Another hospital: its stream takes the last place, then the replica's limit refuses more …
      expect((await stream(b)).status).toBe(200);
      const b2 = await stream(b);
      expect(b2.status).toBe(429);
      expect(b2.text).toContain('本服务最多同时 3 条');
      // … and its poll is answered while every stream place is taken.
      const poll = await fetch(`${front.rt.portUrls.data}/function/remind/reminders?orgCode=${orgB}`, { headers: b });
      expect(poll.status, await poll.clone().text()).toBe(200);
      // The first caller closes a stream: its place comes back (once the front has seen it go).
      a1.ctrl.abort();
      await expect.poll(async () => (await stream()).status, { timeout: 10_000, interval: 200 }).toBe(200);
    } finally {
      for (const c of open) c.abort();
    }
  });

  it('a sweep the database fails ends the stream with an error event (the answer and its retry), logged as a database fault without a stack', {
    timeout: 60_000,
  }, async () => {
    // Once the front has seen the first test's streams go (its places back).
    let res: Response | undefined;
    await expect
      .poll(
        async () => {
          res = await fetch(`${front.rt.portUrls.data}/function/remind/reminders/stream`);
          if (res.status !== 200) await res.text();
          return res.status;
        },
        { timeout: 10_000, interval: 200 },
      )
      .toBe(200);
    const reader = res!.body!.getReader();
    let text = '';
    const read = async (until: string) => {
      while (!text.includes(until)) {
        const r = await reader.read();
        if (r.done) break;
        text += new TextDecoder().decode(r.value);
      }
    };
    await read('event: open');
    // A transaction holding warning_case: the stream's next sweep waits for it until its statement is cancelled.
    const holder = await testDb().connect();
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE warning_case IN ACCESS EXCLUSIVE MODE');
      await read('event: error');
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      holder.release();
    }
    await read('\n\n__end__');
    const event = text.slice(text.indexOf('event: error'));
    const data = JSON.parse(/^data: (.*)$/m.exec(event)![1]!);
    expect(data).toMatchObject({ result: false, errorCode: 'UNAVAILABLE' });
    expect(event).toMatch(/^retry: \d+000$/m);
    // The stream ended there (the reader saw its end), and the line says what happened, without a stack.
    const logs = () =>
      readdirSync(join(front.dir, 'logs'))
        .map((f) => readFileSync(join(front.dir, 'logs', f), 'utf8'))
        .join('\n');
    await expect.poll(() => /"msg":"database fault"[^\n]*"path":"\/reminders\/stream"/.test(logs()), { timeout: 10_000 }).toBe(true);
    expect(logs()).not.toMatch(/"msg":"unhandled error"[^\n]*reminders\/stream/);
    expect(logs()).not.toContain('at async sweep');
  });
});
