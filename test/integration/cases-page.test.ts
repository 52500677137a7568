// The 病例 queue (docs/console.md "Cases") through the web function: the pending cases of the
// doctor's org, overdue first, with the states and the search done by the query — an org with more
// than the page's 500 closed and reported cases still shows the one case that waits, and finds it by
// patient id or disease; another org's case never appears.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signedInToWeb } from '../setup/console-session.js';
import { databaseUrl, testDb, uniqueId, uniqueOrg } from '../setup/db.js';

process.env.CDC_SECRETS_DIR = mkdtempSync(join(tmpdir(), 'cases-page-'));
process.env.DATABASE_URL = databaseUrl();
process.env.WEB_ALLOWED_HOSTS = 'front.local,localhost';
const { default: web } = await import('../../functions/web/handler.js');
const db = testDb();
const host = { host: 'front.local:8884' };
const org = uniqueOrg();
const other = uniqueOrg();
const waiting = uniqueId('pw');
const overdue = uniqueId('po');

/** Cases as the warning loop leaves them (shared/warning/store.ts), written directly: only the queue is under test. */
async function cases(rows: Array<{ org: string; patient: string; disease: string; state: string; dueMinutes: number | null; updatedMinutes: number }>) {
  const now = Date.now();
  await db.query(
    `INSERT INTO warning_case (org_code, patient_id, disease, class_a, deadline_hours, state, first_at, due_at, evidence_count, opened_at, updated_at)
     SELECT o, p, d, false, 24, s, now(), CASE WHEN due IS NULL THEN NULL ELSE to_timestamp(due / 1000.0) END, 1, now(), to_timestamp(upd / 1000.0)
       FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::varchar[], $5::float8[], $6::float8[]) AS t(o, p, d, s, due, upd)`,
    [
      rows.map((r) => r.org),
      rows.map((r) => r.patient),
      rows.map((r) => r.disease),
      rows.map((r) => r.state),
      rows.map((r) => (r.dueMinutes === null ? null : now + r.dueMinutes * 60_000)),
      rows.map((r) => now + r.updatedMinutes * 60_000),
    ],
  );
}

beforeAll(async () => {
  await web.init?.();
  // The waiting cases are the oldest; 600 cases updated since, none of them waiting for anyone.
  await cases([
    { org, patient: waiting, disease: '肺结核', state: 'to_diagnose', dueMinutes: 600, updatedMinutes: -600 },
    { org, patient: overdue, disease: '细菌性痢疾', state: 'to_confirm', dueMinutes: -30, updatedMinutes: -700 },
    ...Array.from({ length: 600 }, (_, i) => ({
      org,
      patient: uniqueId('pc'),
      disease: '流行性感冒',
      state: i % 2 ? 'closed' : 'reported',
      dueMinutes: null,
      updatedMinutes: -i,
    })),
    { org: other, patient: uniqueId('px'), disease: '肺结核', state: 'to_diagnose', dueMinutes: 600, updatedMinutes: 0 },
  ]);
}, 60_000);
afterAll(async () => {
  await web.close?.();
});

const page = async (cookie: string, q = '') => {
  const res = await web.app.request(`/cases.html${q}`, { headers: { ...host, cookie: `cdc_console=${cookie}` } });
  expect(res.status).toBe(200);
  return res.text();
};
const listed = (html: string) => [...html.matchAll(/<tr data-case="(\d+)"/g)].map((m) => m[1]!);

describe('the cases queue', () => {
  it('shows the waiting cases of the org, overdue first, however many others it has', async () => {
    const cookie = await signedInToWeb(web, db, { role: 'public_health', host, next: '/cases.html', orgs: [org] });
    const ids = (
      await db.query<{ case_id: string; patient_id: string }>(
        `SELECT case_id, patient_id FROM warning_case WHERE org_code = $1 AND state IN ('to_confirm', 'to_diagnose')`,
        [org],
      )
    ).rows;
    const idOf = (p: string) => String(ids.find((r) => r.patient_id === p)!.case_id);
    const html = await page(cookie);
    expect(listed(html)).toEqual([idOf(overdue), idOf(waiting)]);
    // A state asked for lists that state (up to the page's 500), never the queue's.
    const closed = listed(await page(cookie, '?state=closed'));
    expect(closed.length).toBe(300);
  });

  it('finds a waiting case by part of its patient id or by its disease, and not another org’s', async () => {
    const cookie = await signedInToWeb(web, db, { role: 'public_health', host, next: '/cases.html', orgs: [org] });
    expect(listed(await page(cookie, `?q=${encodeURIComponent(waiting.slice(-6))}`)).length).toBe(1);
    expect(listed(await page(cookie, `?q=${encodeURIComponent('肺结核')}`)).length).toBe(1);
    expect(listed(await page(cookie, `?q=${encodeURIComponent('流行性感冒')}`))).toEqual([]); // none waiting
  });
});
