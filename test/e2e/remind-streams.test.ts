// One caller's reminder streams cannot take the reminders away from another (docs/his-guide.md 传染病提醒,
// docs/warning.md "Reminders"): through the running front's data port, with the limits set small in
// the environment as stack.yml passes it, a caller's streams past REMIND_STREAMS_PER_CALLER and all
// streams past REMIND_STREAMS_MAX are refused 429 naming the limit, while another caller's poll is
// answered; a stream that ends gives its place back.
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
  front = await startStackRuntime('remind-streams', { REMIND_STREAMS_PER_CALLER: '2', REMIND_STREAMS_MAX: '3' });
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
});
