// Reminders never lost to the page size (docs/warning.md "Reminders", "Paging"): more cases change at
// one instant than one answer holds — a HIS re-sending a morning's records, the midnight self-check
// touching every open case — and every one reaches the HIS, by polling (following `next` while `more`)
// and on the server-sent event stream, through the running remind function on 8881.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDb, uniqueOrg } from '../setup/db.js';
import { startStackRuntime, type StackRuntime } from '../setup/stack-runtime.js';

let front: StackRuntime;
const db = testDb();

beforeAll(async () => {
  front = await startStackRuntime('remind-paging');
}, 120_000);

afterAll(async () => {
  await front?.close();
});

/** `n` open cases of one org stamped by one warning run (one `updated_at` for all, as a run stamps them). */
async function burst(org: string, n: number, at: Date, state = 'to_confirm'): Promise<string[]> {
  const rows = await db.query<{ case_id: string }>(
    `INSERT INTO warning_case (org_code, patient_id, disease, nndrs, class_a, deadline_hours, state, first_at, due_at, evidence_count, opened_at, updated_at)
     SELECT $1, 'pg' || g, '肺结核', '0700', false, 24, $4, $2::timestamptz, $2::timestamptz + interval '24 hours', 1, $2, $2
       FROM generate_series(1, $3::integer) AS g RETURNING case_id`,
    [org, at, n, state],
  );
  return rows.rows.map((r) => String(r.case_id)).sort();
}

type Page = { result: boolean; asOf: string; more: boolean; next: string | null; reminders: Array<{ caseId: string; updatedAt: string }> };

describe('reminders in a burst larger than a page', () => {
  it('polling: a truncated answer says so, and following `next` delivers every case once per sweep', { timeout: 60_000 }, async () => {
    const data = front.rt.portUrls.data!;
    const org = uniqueOrg();
    const since = new Date(Date.now() - 10_000).toISOString();
    const at = new Date(Date.now() - 5_000);
    const ids = await burst(org, 160, at);
    const get = async (q: string) => {
      const res = await fetch(`${data}/function/remind/reminders?orgCode=${org}&${q}`);
      expect(res.status, await res.clone().text()).toBe(200);
      return (await res.json()) as Page;
    };
    const first = await get(`since=${encodeURIComponent(since)}`);
    expect(first.reminders).toHaveLength(100);
    expect(first.more).toBe(true);
    expect(first.next).toEqual(expect.any(String));
    // Truncated: asOf is the position of the first case not delivered, never "now" — a HIS that only
    // follows asOf gets exactly the rest, nothing skipped and nothing of this page again.
    const rest = await get(`since=${encodeURIComponent(first.asOf)}`);
    expect(rest.more).toBe(false);
    expect(rest.reminders.map((r) => r.caseId).sort()).toEqual(ids.filter((id) => !first.reminders.some((r) => r.caseId === id)));
    const seen = new Set(first.reminders.map((r) => r.caseId));
    let page = first;
    let pages = 1;
    while (page.more) {
      page = await get(`cursor=${encodeURIComponent(page.next!)}`);
      for (const r of page.reminders) {
        expect(seen.has(r.caseId), `repeated within one sweep: ${r.caseId}`).toBe(false);
        seen.add(r.caseId);
      }
      pages++;
      expect(pages).toBeLessThan(10);
    }
    expect(pages).toBe(2);
    expect(page.next).toBeNull();
    expect([...seen].sort()).toEqual(ids);
    // The sweep's end gives the next poll's since: read before the sweep's first page.
    expect(new Date(page.asOf).getTime()).toBeGreaterThan(at.getTime());
    // A page of one at a time goes the same way.
    const one = new Set<string>();
    let p = await get(`since=${encodeURIComponent(since)}&limit=7`);
    for (;;) {
      for (const r of p.reminders) one.add(r.caseId);
      if (!p.more) break;
      p = await get(`cursor=${encodeURIComponent(p.next!)}&limit=7`);
    }
    expect([...one].sort()).toEqual(ids);
    // A cursor that is not one is refused, naming the parameter.
    const bad = await fetch(`${data}/function/remind/reminders?orgCode=${org}&cursor=nope`);
    expect(bad.status).toBe(400);
    expect(await bad.text()).toMatch(/cursor/);
  });

  it('the reported cases’ card status pages the same way: every case of a burst, by following `next`', { timeout: 60_000 }, async () => {
    const data = front.rt.portUrls.data!;
    const org = uniqueOrg();
    const since = new Date(Date.now() - 10_000).toISOString();
    const at = new Date(Date.now() - 5_000);
    const ids = await burst(org, 130, at, 'to_verify');
    type Cards = { asOf: string; more: boolean; next: string | null; cases: Array<{ caseId: string }> };
    const get = async (q: string) => (await (await fetch(`${data}/function/remind/reminders/cards?orgCode=${org}&${q}`)).json()) as Cards;
    let p = await get(`since=${encodeURIComponent(since)}`);
    expect([p.cases.length, p.more]).toEqual([100, true]);
    const seen = new Set(p.cases.map((c) => c.caseId));
    // Truncated: since=asOf gives exactly the 30 not delivered.
    const rest = await get(`since=${encodeURIComponent(p.asOf)}`);
    expect([rest.more, rest.cases.filter((c) => !seen.has(c.caseId)).length, rest.cases.length]).toEqual([false, 30, 30]);
    while (p.more) {
      p = await get(`cursor=${encodeURIComponent(p.next!)}`);
      for (const c of p.cases) seen.add(c.caseId);
    }
    expect([...seen].sort()).toEqual(ids);
  });

  it('the stream drains every page before it waits: all cases of a burst arrive, and Last-Event-ID resumes', { timeout: 60_000 }, async () => {
    const data = front.rt.portUrls.data!;
    const org = uniqueOrg();
    const ids = await burst(org, 170, new Date(Date.now() - 3_000));
    const read = async (headers: Record<string, string>, want: number) => {
      const ctrl = new AbortController();
      const res = await fetch(`${data}/function/remind/reminders/stream?orgCode=${org}`, { signal: ctrl.signal, headers });
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      const got: Array<{ id: string; caseId: string }> = [];
      let buf = '';
      const timer = setTimeout(() => ctrl.abort(), 15_000);
      try {
        while (new Set(got.map((g) => g.caseId)).size < want) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += new TextDecoder().decode(value);
          let i: number;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const ev = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const data = /^data: (.*)$/m.exec(ev)?.[1];
            if (/^event: reminder$/m.test(ev) && data)
              got.push({ id: /^id: (.*)$/m.exec(ev)?.[1] ?? '', caseId: (JSON.parse(data) as { caseId: string }).caseId });
          }
        }
      } catch (err) {
        if (!ctrl.signal.aborted) throw err;
      } finally {
        clearTimeout(timer);
        ctrl.abort();
      }
      return got;
    };
    const all = await read({}, ids.length);
    expect([...new Set(all.map((g) => g.caseId))].sort()).toEqual(ids);
    // Reconnecting from an event of the second page: nothing of it, nor after it, is skipped.
    const mid = all[120]!;
    const resumed = await read({ 'last-event-id': mid.id }, ids.length - 100);
    const after = new Set(resumed.map((g) => g.caseId));
    for (const g of all.slice(100)) expect(after.has(g.caseId), `resumed stream skipped ${g.caseId}`).toBe(true);
  });
});

// What a HIS sees across polls (docs/warning.md "Reminders", "Where a poll starts"): a HIS that passes
// only `since=asOf` walks a burst a page per poll; the documented client gets each case once however
// often it polls; a stream reconnecting in a quiet spell sends nothing again; a case its warning run
// commits late, with an older updatedAt, still comes.
describe('reminders across polls', () => {
  const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));
  const get = async (org: string, q: string) => {
    const res = await fetch(`${front.rt.portUrls.data!}/function/remind/reminders?orgCode=${org}&${q}`);
    expect(res.status, await res.clone().text()).toBe(200);
    return (await res.json()) as Page;
  };
  /** The documented client's poll: from `since`, following `next` while `more`; the asOf to poll with next. */
  const sweep = async (org: string, since: string | null, count: Map<string, number>) => {
    let p = await get(org, since ? `since=${encodeURIComponent(since)}` : '');
    for (let pages = 1; ; pages++) {
      for (const r of p.reminders) count.set(r.caseId, (count.get(r.caseId) ?? 0) + 1);
      if (!p.more) return p.asOf;
      expect(pages).toBeLessThan(10);
      p = await get(org, `cursor=${encodeURIComponent(p.next!)}`);
    }
  };

  it('a HIS that passes only since=asOf, ignoring more and next, gets every case of a burst of more than two pages', { timeout: 60_000 }, async () => {
    const org = uniqueOrg();
    const ids = await burst(org, 250, new Date(Date.now() - 5_000));
    for (const start of [null, new Date(Date.now() - 10_000).toISOString()]) {
      const count = new Map<string, number>();
      let since = start;
      let polls = 0;
      while (count.size < ids.length && polls < 10) {
        const p = await get(org, since ? `since=${encodeURIComponent(since)}` : '');
        for (const r of p.reminders) count.set(r.caseId, (count.get(r.caseId) ?? 0) + 1);
        since = p.asOf;
        polls++;
      }
      expect([...count.keys()].sort(), `from ${start ?? 'no since'}`).toEqual(ids);
      // A page per poll: three polls, each case once.
      expect(polls).toBe(3);
      expect([...count.values()].every((n) => n === 1)).toBe(true);
    }
  });

  it('the documented client (since=asOf, following next) gets each case once however often it polls', { timeout: 60_000 }, async () => {
    const org = uniqueOrg();
    const ids = await burst(org, 230, new Date(Date.now() - 5_000));
    await sleep(1_000);
    const count = new Map<string, number>();
    let since: string | null = null;
    for (let poll = 0; poll < 6; poll++) {
      since = await sweep(org, since, count);
      await sleep(300);
    }
    expect([...count.keys()].sort()).toEqual(ids);
    const deliveries = [...count.values()].reduce((a, b) => a + b, 0);
    expect(deliveries, 'deliveries over 6 polls').toBe(ids.length);
  });

  it('a case written by a transaction still open at a poll, with an older updatedAt, comes at the next poll', { timeout: 60_000 }, async () => {
    const org = uniqueOrg();
    const ids = await burst(org, 3, new Date(Date.now() - 5_000));
    const count = new Map<string, number>();
    const lateClient = await db.connect();
    let late: string;
    try {
      await lateClient.query('BEGIN');
      // A warning run stamps its clock before it commits: here five minutes before the commit.
      const r = await lateClient.query<{ case_id: string }>(
        `INSERT INTO warning_case (org_code, patient_id, disease, nndrs, class_a, deadline_hours, state, first_at, due_at, evidence_count, opened_at, updated_at)
         VALUES ($1, 'late', '肺结核', '0700', false, 24, 'to_confirm', $2, $2::timestamptz + interval '24 hours', 1, $2, $2) RETURNING case_id`,
        [org, new Date(Date.now() - 300_000)],
      );
      late = String(r.rows[0]!.case_id);
      await sleep(200);
      let since = await sweep(org, null, count);
      since = await sweep(org, since, count);
      expect([...count.keys()].sort()).toEqual(ids);
      await lateClient.query('COMMIT');
      since = await sweep(org, since, count);
      expect(count.get(late), 'the late case').toBe(1);
      await sweep(org, since, count);
    } finally {
      lateClient.release();
    }
    expect([...count.keys()].sort()).toEqual([...ids, late].sort());
    expect(
      [...count.values()].every((n) => n === 1),
      JSON.stringify([...count]),
    ).toBe(true);
  });

  it('a stream reconnecting with Last-Event-ID in a quiet spell sends nothing it already sent', { timeout: 60_000 }, async () => {
    const org = uniqueOrg();
    const ids = await burst(org, 120, new Date(Date.now() - 3_000));
    /** Reads a stream until `until` holds or `ms` pass; the events, and the last id seen. */
    const read = async (lastId: string | null, ms: number, until: (got: Array<{ event: string; caseId?: string }>) => boolean) => {
      const ctrl = new AbortController();
      const res = await fetch(`${front.rt.portUrls.data!}/function/remind/reminders/stream?orgCode=${org}`, {
        signal: ctrl.signal,
        headers: lastId ? { 'last-event-id': lastId } : {},
      });
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      const got: Array<{ event: string; caseId?: string }> = [];
      let id = lastId;
      let buf = '';
      const timer = setTimeout(() => ctrl.abort(), ms);
      try {
        while (!until(got)) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += new TextDecoder().decode(value);
          let i: number;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const ev = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const evId = /^id: ?(.*)$/m.exec(ev)?.[1];
            if (evId !== undefined) id = evId;
            const event = /^event: ?(.*)$/m.exec(ev)?.[1] ?? 'message';
            const data = /^data: ?(.*)$/m.exec(ev)?.[1];
            got.push(event === 'reminder' && data ? { event, caseId: (JSON.parse(data) as { caseId: string }).caseId } : { event });
          }
        }
      } catch (err) {
        if (!ctrl.signal.aborted) throw err;
      } finally {
        clearTimeout(timer);
        ctrl.abort();
      }
      return { got, id };
    };
    const all = new Set<string>();
    // The whole burst, and the position after it (the event id a reconnect sends).
    const one = await read(null, 15_000, (got) => {
      const rem = got.filter((g) => g.caseId);
      return new Set(rem.map((g) => g.caseId)).size >= ids.length && got.at(-1)?.event === 'position';
    });
    for (const g of one.got) if (g.caseId) all.add(g.caseId);
    expect([...all].sort()).toEqual(ids);
    // Reconnecting twice, as the client does every 50 s: nothing comes again.
    let id = one.id;
    for (let n = 0; n < 2; n++) {
      const again = await read(id, 2_500, () => false);
      expect(again.got.filter((g) => g.caseId).map((g) => g.caseId)).toEqual([]);
      id = again.id;
    }
  });
});

// Values a HIS may send that pass the shape checks (docs/warning.md "Reminders", "Out-of-range
// values"), reminders that end (`removed`), and other methods: through the running remind function.
describe('the reminders protocol at its edges', () => {
  const url = (path: string) => `${front.rt.portUrls.data!}/function/remind/reminders${path}`;
  /** The events of a stream until `until` holds or `ms` pass (or the stream ends). */
  const events = async (
    path: string,
    headers: Record<string, string>,
    ms: number,
    until: (got: Array<{ event: string; id?: string; data?: unknown }>) => boolean,
  ) => {
    const ctrl = new AbortController();
    const res = await fetch(url(path), { signal: ctrl.signal, headers });
    const got: Array<{ event: string; id?: string; data?: unknown }> = [];
    if (res.status !== 200) return { status: res.status, body: await res.text(), got, ended: true };
    const reader = res.body!.getReader();
    let buf = '';
    let ended = false;
    const timer = setTimeout(() => ctrl.abort(), ms);
    try {
      while (!until(got)) {
        const { value, done } = await reader.read();
        if (done) {
          ended = true;
          break;
        }
        buf += new TextDecoder().decode(value);
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const ev = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = /^data: ?(.*)$/m.exec(ev)?.[1];
          const id = /^id: ?(.*)$/m.exec(ev)?.[1];
          got.push({ event: /^event: ?(.*)$/m.exec(ev)?.[1] ?? 'message', ...(id !== undefined ? { id } : {}), ...(data ? { data: JSON.parse(data) } : {}) });
        }
      }
    } catch (err) {
      if (!ctrl.signal.aborted) throw err;
    } finally {
      clearTimeout(timer);
      ctrl.abort();
    }
    return { status: 200, body: '', got, ended };
  };

  it('a since before any data is from the beginning; a far-future since or an out-of-range cursor is 400 naming it, never 500', async () => {
    const org = uniqueOrg();
    const ids = await burst(org, 3, new Date(Date.now() - 5_000));
    for (const since of ['0001-01-01T00:00:00Z', '0000-01-01T00:00:00Z', '0001-01-01T00:00:00.000000Z']) {
      for (const path of ['', '/cards']) {
        const res = await fetch(url(`${path}?orgCode=${org}&since=${encodeURIComponent(since)}`));
        expect(res.status, `${path} since=${since}: ${await res.clone().text()}`).toBe(200);
        if (path === '') expect(((await res.json()) as Page).reminders.map((r) => r.caseId).sort()).toEqual(ids);
      }
    }
    for (const q of [
      'since=9999-12-31T23:59:59.999999Z',
      `since=${encodeURIComponent(new Date(Date.now() + 3 * 86_400_000).toISOString())}`,
      'cursor=c1.99999999999999999.99999999999999999.-.-',
      'cursor=c2.99999999999999999.1.-.-',
    ]) {
      for (const path of ['', '/cards']) {
        const res = await fetch(url(`${path}?orgCode=${org}&${q}`));
        const body = (await res.json()) as { errorCode: string; errors?: Array<{ field: string }> };
        expect(res.status, `${path}?${q}: ${JSON.stringify(body)}`).toBe(400);
        expect(body.errors?.map((e) => e.field)).toEqual([q.split('=')[0]]);
      }
    }
  });

  it('the stream: a since before any data streams from the beginning; a bad Last-Event-ID is 400 before the stream opens', async () => {
    const org = uniqueOrg();
    const ids = await burst(org, 2, new Date(Date.now() - 5_000));
    const begin = await events(`/stream?orgCode=${org}&since=0001-01-01T00:00:00Z`, {}, 10_000, (got) => got.some((g) => g.event === 'position'));
    expect(begin.status, begin.body).toBe(200);
    expect(begin.ended, 'the stream stays open').toBe(false);
    const got = begin.got.filter((g) => g.event === 'reminder').map((g) => (g.data as { caseId: string }).caseId);
    expect(got.sort()).toEqual(ids);
    const fromZero = await events(`/stream?orgCode=${org}`, { 'last-event-id': '0001-01-01T00:00:00Z' }, 10_000, (g) => g.some((e) => e.event === 'position'));
    expect([fromZero.status, fromZero.got.filter((g) => g.event === 'reminder').length]).toEqual([200, 2]);
    for (const last of ['9999-12-31T23:59:59.999999Z', 'c1.99999999999999999.99999999999999999.-.-', 'not-an-id', '2026-13-45T00:00:00Z']) {
      const r = await events(`/stream?orgCode=${org}`, { 'last-event-id': last }, 5_000, () => true);
      expect(r.status, `Last-Event-ID ${last}: ${r.body}`).toBe(400);
      expect(JSON.parse(r.body)).toMatchObject({ result: false, errorCode: 'BAD_REQUEST', errors: [{ field: 'Last-Event-ID' }] });
    }
    const since = await events(`/stream?orgCode=${org}&since=9999-12-31T23:59:59Z`, {}, 5_000, () => true);
    expect(since.status).toBe(400);
  });

  it('a reminder that ends is signalled: `removed` in a since poll and an event on the stream, with the filters the reminders take', async () => {
    const org = uniqueOrg();
    const ids = await burst(org, 3, new Date(Date.now() - 5_000));
    await db.query("UPDATE warning_case SET dept_code = CASE WHEN case_id = $2 THEN 'd2' ELSE 'd1' END WHERE org_code = $1", [org, ids[2]]);
    const first = (await (await fetch(url(`?orgCode=${org}`))).json()) as Page;
    const stream = events(`/stream?orgCode=${org}&dept=d1&since=${encodeURIComponent(first.asOf)}`, {}, 15_000, (got) =>
      got.some((g) => g.event === 'removed'),
    );
    // The doctor excludes the first case in the HIS; the third (department d2) is carded.
    await new Promise((ok) => setTimeout(ok, 500));
    const ex = await fetch(url(`/${ids[0]}/exclude`), { method: 'POST', body: JSON.stringify({ doctor: 'doc-1', reason: '复查阴性' }) });
    expect(ex.status, await ex.clone().text()).toBe(200);
    await db.query("UPDATE warning_case SET state = 'to_verify', updated_at = now(), changed_at = clock_timestamp() WHERE case_id = $1", [ids[2]]);
    const s = await stream;
    const removed = s.got.filter((g) => g.event === 'removed').map((g) => g.data as { caseId: string; reason: string });
    expect(removed.map((r) => [r.caseId, r.reason])).toEqual([[ids[0], 'excluded']]);
    type Removed = Page & { removed: Array<{ caseId: string; reason: string; orgCode: string }> };
    const poll = (await (await fetch(url(`?orgCode=${org}&since=${encodeURIComponent(first.asOf)}`))).json()) as Removed;
    expect(poll.reminders).toEqual([]);
    expect(poll.removed.map((r) => [r.caseId, r.reason]).sort()).toEqual(
      [
        [ids[0], 'excluded'],
        [ids[2], 'carded'],
      ].sort(),
    );
    const dept = (await (await fetch(url(`?orgCode=${org}&dept=d2&since=${encodeURIComponent(first.asOf)}`))).json()) as Removed;
    expect(dept.removed.map((r) => r.caseId)).toEqual([ids[2]]);
  });

  it('answers another method on a reminders path 405 with the methods it takes; an unknown path stays 404', async () => {
    for (const [method, path, allow] of [
      ['POST', '', 'GET, HEAD'],
      ['DELETE', '/stream', 'GET, HEAD'],
      ['PUT', '/cards', 'GET, HEAD'],
      ['GET', '/1/ack', 'POST'],
      ['DELETE', '/1/exclude', 'POST'],
    ] as const) {
      const res = await fetch(url(path), { method, ...(method === 'GET' ? {} : { body: '{}' }) });
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.get('allow')).toBe(allow);
      expect(((await res.json()) as { errorCode: string }).errorCode).toBe('METHOD_NOT_ALLOWED');
    }
    expect((await fetch(url('/1/nothing'), { method: 'POST', body: '{}' })).status).toBe(404);
  });
});
