// Overdue cases alerted as the warning run finds them (shared/warning/store.ts alertOverdue,
// docs/warning.md "Deadlines"): a few, one message each; many at once (a front started over a
// backlog), one message listing them — a group robot is not sent a message per case — each case still
// recorded in alert_event and marked once. On a database of its own, so that no other file's cases
// join the run.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { channelsOf } from '../../shared/alerts/index.js';
import { loadTriggers } from '../../shared/warning/triggers.js';
import { OVERDUE_ONE_BY_ONE, runWarnings } from '../../shared/warning/store.js';
import { privateDatabase, uniqueOrg } from '../setup/db.js';

let db: pg.Pool;
let drop: () => Promise<void>;
const got: string[] = [];
const server = createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    got.push(body);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"errcode":0}');
  });
});
let channels: ReturnType<typeof channelsOf>;
const opts = { triggers: loadTriggers(), batch: 50, caseWindowDays: 90, orphanWaitMs: 60_000, maxMs: 30_000 };

beforeAll(async () => {
  ({ db, drop } = await privateDatabase('overdue'));
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  channels = channelsOf({ backlogCount: 1, backlogAgeS: 1, realtimeAgeS: 1, clearRatio: 0.5, frontName: 'test', timeoutMs: 5000, webhook: { url } });
});
afterAll(async () => {
  server.close();
  await drop?.();
});

/** n cases of one org waiting for their cards, each `hoursLate` past its deadline (class A: 2 h). */
async function overdueCases(org: string, n: number, hoursLate: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await db.query<{ case_id: string }>(
      `INSERT INTO warning_case (org_code, patient_id, disease, nndrs, class_a, deadline_hours, state, first_at, due_at, opened_at, updated_at)
       VALUES ($1, $2, '鼠疫', '0101', true, 2, 'to_confirm', now() - ($3::integer + 2) * interval '1 hour', now() - $3::integer * interval '1 hour', now(), now())
       RETURNING case_id`,
      [org, `P-${i}`, hoursLate + i],
    );
    ids.push(String(r.rows[0]!.case_id));
  }
  return ids;
}

const events = async (ids: string[]) =>
  (
    await db.query<{ message: string; channels: string }>(
      "SELECT message, channels FROM alert_event WHERE destination = 'warning' AND kind = 'overdue' ORDER BY event_id",
    )
  ).rows.filter((e) => ids.some((id) => e.message.includes(`（病例 ${id}）`)));
const marked = async (ids: string[]) =>
  (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM warning_case WHERE case_id = ANY($1::bigint[]) AND overdue_alerted_at IS NOT NULL', [ids]))
    .rows[0]!.n;

describe('overdue cases', () => {
  it(`up to ${OVERDUE_ONE_BY_ONE} found in a run: one message each`, async () => {
    got.length = 0;
    const ids = await overdueCases(uniqueOrg(), OVERDUE_ONE_BY_ONE, 1);
    await runWarnings(db, { ...opts, channels, frontName: 'test' });
    expect(got).toHaveLength(OVERDUE_ONE_BY_ONE);
    for (const id of ids) expect(got.filter((b) => b.includes(`病例 ${id}`))).toHaveLength(1);
    expect(await marked(ids)).toBe(ids.length);
    expect((await events(ids)).map((e) => e.channels)).toEqual(ids.map(() => 'webhook'));
  });

  it('more in one run: one message listing the most overdue first, the rest counted; every case recorded and marked once', async () => {
    got.length = 0;
    const org = uniqueOrg();
    const ids = await overdueCases(org, 20, 3);
    await runWarnings(db, { ...opts, channels, frontName: 'test' });
    expect(got).toHaveLength(1);
    const text = JSON.stringify(JSON.parse(got[0]!));
    expect(text).toContain('传染病报告超时：20 例');
    expect(text).toContain('另有 8 例');
    // The most overdue are listed (created with the lateness growing with the index).
    for (const id of ids.slice(8)) expect(text).toContain(`病例 ${id}）`);
    for (const id of ids.slice(0, 8)) expect(text).not.toContain(`病例 ${id}）`);
    expect(text).not.toContain('P-1');
    expect(await marked(ids)).toBe(20);
    const ev = await events(ids);
    expect(ev).toHaveLength(20);
    expect(new Set(ev.map((e) => e.channels))).toEqual(new Set(['webhook']));
    // Alerted once: a later run sends nothing again.
    await runWarnings(db, { ...opts, channels, frontName: 'test' });
    expect(got).toHaveLength(1);
  });
});
