// A reminders stream ends when its caller is revoked (docs/his-auth.md "Caching and the revocation
// delay"): through the running front's data port, a stream opened with an API key that is revoked
// while it is open ends with `event: error` (the 401 a poll gets) within HIS_AUTH_REFRESH_S — not at
// the stream's 50 s end, sending the org's new reminders (names, ID numbers) to a revoked key meanwhile.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey } from '../../shared/http/auth.js';
import { insertCaller, revokeCaller } from '../../shared/http/auth-store.js';
import { testDb, uniqueOrg } from '../setup/db.js';
import { startStackRuntime, type StackRuntime } from '../setup/stack-runtime.js';

let front: StackRuntime;
const org = uniqueOrg();

beforeAll(async () => {
  // The callers cache refreshed every second (HIS_AUTH_REFRESH_S, as stack.yml passes it).
  front = await startStackRuntime('remind-revoke', { HIS_AUTH_REFRESH_S: '1' });
}, 120_000);

afterAll(async () => {
  await front?.close();
});

describe('a reminders stream of a revoked key', () => {
  it('ends with the 401 answer within the refresh interval; a new stream with the key is refused', { timeout: 60_000 }, async () => {
    const key = generateApiKey();
    const caller = await insertCaller(testDb(), { kind: 'apikey', name: '吊销测试 HIS', orgs: [org], ratePerMin: 0, keyPrefix: key.prefix, keyHash: key.hash });
    const url = `${front.rt.portUrls.data}/function/remind/reminders/stream?orgCode=${org}`;
    const res = await fetch(url, { headers: { 'x-api-key': key.key } });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let text = '';
    let ended = false;
    const read = async (until: string) => {
      while (!text.includes(until) && !ended) {
        const r = await reader.read();
        if (r.done) ended = true;
        else text += new TextDecoder().decode(r.value);
      }
    };
    await read('event: open');
    expect((await revokeCaller(testDb(), caller.id)).status).toBe('revoked');
    const revokedAt = Date.now();
    await read('\n\n__end__');
    const took = Date.now() - revokedAt;
    // The refresh interval (1 s) and a sweep (250 ms), with room for a loaded machine; the stream itself lasts 50 s.
    expect(took).toBeLessThan(15_000);
    const event = text.slice(text.indexOf('event: error'));
    expect(event.startsWith('event: error'), text).toBe(true);
    const data = JSON.parse(/^data: (.*)$/m.exec(event)![1]!);
    expect(data).toMatchObject({ result: false, errorCode: 'UNAUTHENTICATED' });
    expect(data.desc).toContain('API 密钥已吊销');
    const again = await fetch(url, { headers: { 'x-api-key': key.key } });
    expect(again.status).toBe(401);
  });
});
