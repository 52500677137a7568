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
    // Truncated: asOf is the last row's position, never "now" — a HIS that only follows asOf skips nothing.
    expect(new Date(first.asOf).getTime()).toBe(at.getTime());
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
    expect([p.cases.length, p.more, new Date(p.asOf).getTime()]).toEqual([100, true, at.getTime()]);
    const seen = new Set(p.cases.map((c) => c.caseId));
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
