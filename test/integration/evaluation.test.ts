// 评估 (shared/console/evaluation.ts, functions/web/evaluation-page.ts; docs/console.md "The evaluation
// page") on the real database: rows put into the tables the figures are read from — receipts
// with their business times, rejections, holds, the outbox, push runs, alerts, mapping
// history, configuration bundles — on chosen days, and each dimension's figure for those days is the
// count those rows make: test records, the front's own day-close records, skipped and superseded
// outbox rows left out; a business time known to the day counted from the day's end; rows not yet due
// pending; the days before the first push run ever, and circuit openings, 暂无数据. The page: an
// operator reads it in the console's frame (the operator's navigation); a clinician gets the 403
// page with only the clinician's navigation; no session, the sign-in page.
import { beforeAll, describe, expect, it } from 'vitest';
import { evaluate, type EvaluationDay } from '../../shared/console/evaluation.js';
import { addDays, dayBounds, localDay } from '../../shared/dayclose/index.js';
import { consoleFrame, expectConsoleFrame, signedInToWeb } from '../setup/console-session.js';
import { uniqueId, uniqueOrg } from '../setup/db.js';
import { webInProcess } from '../setup/web-function.js';

const { web, db, host } = await webInProcess('evaluation');
const TZ = 'Asia/Shanghai';
const org = uniqueOrg();

// Day X (five days ago) holds the org's rows; day Y (twenty days ago) the front-wide ones.
const X = localDay(new Date(Date.now() - 5 * 86_400_000), TZ);
const Y = addDays(X, -15);
const x0 = dayBounds(X, TZ).from.getTime();
const y0 = dayBounds(Y, TZ).from.getTime();
const at = (base: number, h: number, m = 0, s = 0) => new Date(base + h * 3_600_000 + m * 60_000 + s * 1000);
const NOW = at(x0, 13); // "now" for the figures: 13:00 on day X

async function history(resource: string, id: string, receivedAt: Date) {
  await db.query(
    `INSERT INTO record_history (resource, org_code, record_id, version, op, rec_hash, raw, received_at) VALUES ($1, $2, $3, 1, 'upsert', $4, '{}', $5)`,
    [resource, org, id, 'f'.repeat(64), receivedAt],
  );
}
async function receipt(resource: string, id: string, businessAt: Date, receivedAt: Date, test = false) {
  await db.query(
    `INSERT INTO record_receipt (resource, org_code, record_id, version, state, business_at, business_day, test_mode, received_at, updated_at)
     VALUES ($1, $2, $3, 1, 'stored', $4, $5, $6, $7, $7)`,
    [resource, org, id, businessAt, localDay(businessAt, TZ), test, receivedAt],
  );
  await history(resource, id, receivedAt);
}
async function outbox(o: { cls: string; created: Date; sent?: Date; state?: string; test?: boolean }) {
  await db.query(
    `INSERT INTO outbox (destination, resource, org_code, record_id, version, op, deadline_class, test_mode, payload, state, created_at, sent_at)
     VALUES ('national', 'emrPatientInfo', $1, $2, 1, 'upsert', $3, $4, '{}', $5, $6, $7)`,
    [org, uniqueId('o'), o.cls, o.test ?? false, o.state ?? (o.sent ? 'sent' : 'pending'), o.created, o.sent ?? null],
  );
}

beforeAll(async () => {
  // Correctness and HIS → front timeliness (day X).
  await receipt('emrPatientInfo', uniqueId('p'), at(x0, 9), at(x0, 9, 5)); // realtime, 5 min: on time
  await receipt('emrPatientInfo', uniqueId('p'), at(x0, 9), at(x0, 10)); // realtime, 1 h: late
  await receipt('emrExLab', uniqueId('l'), at(x0, 8), at(x0, 9)); // 2 h class, 1 h: on time
  await receipt('emrAdmissionRecord', uniqueId('a'), at(x0, 0), at(x0, 30)); // T+1, known to the day: before the next day's end
  await receipt('emrOutpatientRecord', uniqueId('r'), at(x0, 12), at(x0, 25)); // T+0, arrived the next day: late
  await receipt('emrPatientInfo', uniqueId('t'), at(x0, 9), at(x0, 9, 1), true); // a test record: not counted
  await receipt('dailySummary', `${org}-${X}-T+1`, at(x0, 23), at(x0, 23)); // the front's own: not counted
  for (const test of [false, false, true])
    await db.query(
      `INSERT INTO ingest_rejection (resource, org_code, record_id, issues, test_mode, received_at) VALUES ('emrPatientInfo', $1, $2, '[]', $3, $4)`,
      [org, uniqueId('bad'), test, at(x0, 11)],
    );
  const heldId = uniqueId('h');
  for (const code of ['M9', 'X1'])
    await db.query(
      `INSERT INTO record_hold (resource, org_code, record_id, kind, target, value, since) VALUES ('emrPatientInfo', $1, $2, 'mapping', 'maritalStatus', $3, $4)`,
      [org, heldId, code, at(x0, 10)],
    );
  // Front → platform (day X, "now" 13:00).
  await outbox({ cls: 'realtime', created: at(x0, 9), sent: at(x0, 9, 2) }); // on time
  await outbox({ cls: 'realtime', created: at(x0, 9), sent: at(x0, 9, 20) }); // late
  await outbox({ cls: '2h', created: at(x0, 8), state: 'held' }); // held past its 2 h: late
  await outbox({ cls: 'T+0', created: at(x0, 12) }); // due at midnight: pending
  await outbox({ cls: 'realtime', created: at(x0, 9), state: 'skipped' }); // not counted
  await outbox({ cls: 'realtime', created: at(x0, 9), test: true }); // not counted
  // Adaptability (day X): two mappings made, one changed.
  for (const action of ['create', 'create', 'update'])
    await db.query(
      `INSERT INTO code_mapping_history (map_id, action, org_code, domain, local_code, national_code, equivalence, version, map_version, made_by, made_at)
       VALUES (0, $1, $2, 'maritalStatus', $3, '20', 'equivalent', 1, 1, 'test', $4)`,
      [action, org, uniqueId('c'), at(x0, 11)],
    );
  // Front-wide (day Y): push runs in three minutes, failures, alerts, bundles.
  for (const [t, failed, note] of [
    [at(y0, 1), 2, null],
    [at(y0, 1, 0, 30), 0, null],
    [at(y0, 1, 1), 1, 'national: 网络错误 (network error)'],
    [at(y0, 2), 0, null],
  ] as const)
    await db.query(`INSERT INTO push_run (started_at, finished_at, trigger, claimed, sent, failed, note) VALUES ($1, $1, 'cron', 0, 0, $2, $3)`, [
      t,
      failed,
      note,
    ]);
  for (const kind of ['raise', 'raise', 'clear'])
    await db.query(`INSERT INTO alert_event (destination, kind, pending, message, created_at) VALUES ('national', $1, 1, 'test', $2)`, [kind, at(y0, 3)]);
  // Two openings of a circuit breaker that day, as push records them (shared/uplink/push.ts).
  for (const failures of [5, 6])
    await db.query(`INSERT INTO uplink_circuit_event (destination, opened_at, failures, error) VALUES ('national', $1, $2, 'HTTP 503')`, [at(y0, 5), failures]);
  for (const action of ['apply', 'rollback'])
    await db.query(
      `INSERT INTO config_bundle (action, version, issuer, issued_at, bundle, signature, key_id, areas, effective, previous, applied_by, applied_at)
       VALUES ($1, 1, 'test', $2, '{}', 'sig', $3, 'triggers', '{}', '{}', 'test', $2)`,
      [action, at(y0, 4), '0'.repeat(64)],
    );
}, 60_000);

describe('the figures', () => {
  let days: EvaluationDay[];
  const day = (d: string) => days.find((x) => x.day === d)!;
  beforeAll(async () => {
    const e = await evaluate(db, { orgs: [org], timeZone: TZ, now: NOW });
    expect(e.to).toBe(X);
    expect(e.from).toBe(addDays(X, -29));
    expect(e.days).toHaveLength(30);
    days = e.days;
    expect(e.mapping.map((m) => m.org)).toEqual([org]);
  });

  it('correctness: records stored (by first receipt) against rejections, test and day-close records aside; records still held for a mapping', () => {
    // Two of the five records arrived the next day: they count on that day.
    expect(day(X).correctness).toEqual({ received: 3, rejected: 2, acceptedShare: 3 / 5, stillHeldForMapping: 1 });
    expect(day(addDays(X, -1)).correctness).toEqual({ received: 0, rejected: 0, acceptedShare: null, stillHeldForMapping: 0 });
  });

  it('timeliness: each record against its resource’s class; outbox rows delivered in time, late, or not yet due', () => {
    expect(day(X).timeliness.hisToFront).toEqual({ records: 5, onTime: 3, share: 3 / 5 });
    expect(day(X).timeliness.frontToPlatform).toEqual({ rows: 4, onTime: 1, late: 2, pending: 1, share: 1 / 3 });
  });

  it('stability: minutes with a push run, failures, runs with errors, alerts, circuit openings; 暂无数据 before the first run', () => {
    // Day Y is the install day: the first run ever is at 01:00, so its rate counts from then (23 h).
    expect(day(Y).stability).toEqual({
      runMinutes: 3,
      minutes: 23 * 60,
      uptimeShare: 3 / (23 * 60),
      failedPushes: 3,
      runsWithErrors: 1,
      alerts: 2,
      circuitOpens: 2,
    });
    expect(day(addDays(Y, -1)).stability.runMinutes).toBeNull();
    expect(day(addDays(Y, -1)).stability.uptimeShare).toBeNull();
    // Today (13:00 of X) counts the minutes so far.
    expect(day(X).stability.minutes).toBe(13 * 60);
    expect(day(X).stability.runMinutes).toBe(0);
  });

  it('the run rate of the install day counts from the minute of the first run, not from midnight; later days count whole', async () => {
    // A later day with runs in 720 of its minutes: 50%, its whole 1440 minutes counted.
    const z0 = dayBounds(addDays(Y, 1), TZ).from.getTime();
    await db.query(
      `INSERT INTO push_run (started_at, finished_at, trigger) SELECT t, t, 'cron' FROM generate_series($1::timestamptz, $2::timestamptz, interval '1 minute') t`,
      [at(z0, 0), at(z0, 11, 59)],
    );
    const e = await evaluate(db, { orgs: [org], timeZone: TZ, now: NOW });
    const first = e.days.find((d) => d.day === Y)!.stability;
    expect([first.minutes, first.uptimeShare]).toEqual([23 * 60, 3 / (23 * 60)]);
    const next = e.days.find((d) => d.day === addDays(Y, 1))!.stability;
    expect([next.runMinutes, next.minutes, next.uptimeShare]).toEqual([720, 1440, 0.5]);
    await db.query('DELETE FROM push_run WHERE started_at >= $1 AND started_at < $2', [at(z0, 0), at(z0, 24)]);
  });

  it('adaptability: mappings made and changed; bundles applied and rolled back', () => {
    expect(day(X).adaptability).toMatchObject({ mappingsCreated: 2, mappingsChanged: 1 });
    expect(day(Y).adaptability).toMatchObject({ bundlesApplied: 1, rollbacks: 1 });
  });
});

describe('a zone with daylight saving', () => {
  it('counts by each day’s own bounds when a day of the window is not 24 hours (New York, 2026-11-01: 25 hours)', async () => {
    const other = uniqueOrg();
    const put = (id: string, t: string) =>
      db.query(
        `INSERT INTO record_receipt (resource, org_code, record_id, version, state, business_at, business_day, test_mode, received_at, updated_at)
         VALUES ('emrPatientInfo', $1, $2, 1, 'stored', $3, '2026-10-31', false, $3, $3)`,
        [other, id, new Date(t)],
      );
    await put(uniqueId('n'), '2026-10-31T16:00:00Z'); // 10-31 12:00 EDT
    await put(uniqueId('n'), '2026-11-01T16:00:00Z'); // 11-01 11:00 EST
    await put(uniqueId('n'), '2026-11-02T04:30:00Z'); // 11-01 23:30 EST: the 25th hour's day, not 11-02
    const ny = await evaluate(db, { orgs: [other], timeZone: 'America/New_York', now: new Date('2026-11-10T17:00:00Z') });
    const got = (d: string) => ny.days.find((x) => x.day === d)!.correctness.received;
    expect([got('2026-10-31'), got('2026-11-01'), got('2026-11-02')]).toEqual([1, 2, 0]);
    // The same rows in Shanghai's days (all 24 hours: the equality join).
    const sh = await evaluate(db, { orgs: [other], timeZone: TZ, now: new Date('2026-11-10T04:00:00Z') });
    const gotSh = (d: string) => sh.days.find((x) => x.day === d)!.correctness.received;
    expect([gotSh('2026-11-01'), gotSh('2026-11-02')]).toEqual([1, 2]);
  });
});

describe('the page', () => {
  const signIn = async (role: 'operator' | 'clinician') => `cdc_console=${await signedInToWeb(web, db, { role, host, next: '/evaluation.html', orgs: [org] })}`;

  it('an operator reads the four dimensions with their definitions in the console’s frame; a clinician gets 403; no session, the sign-in page', async () => {
    const res = await web.app.request('/evaluation.html', { headers: { ...host, cookie: await signIn('operator') } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("form-action 'self'");
    const page = await res.text();
    // The console's header: the operator's navigation, this page marked, the sign-out.
    expectConsoleFrame(page, 'operator', '/evaluation.html');
    expect(consoleFrame(page).links).toContain('/evaluation.html');
    expect(consoleFrame(page).links).not.toContain('/users.html');
    for (const h of ['正确性', '及时性', '稳定性', '适应性']) expect(page).toContain(`<h2>${h}</h2>`);
    expect(page).toContain('接收正确率 = 当日存入的记录版本数');
    const row = (table: string, d: string) => new RegExp(`<table id="${table}">[\\s\\S]*?<tr data-day="${d}">(.*?)</tr>`).exec(page)?.[1] ?? '';
    expect(row('t-correctness', X)).toBe(`<td>${X}</td><td class="n">3</td><td class="n">2</td><td class="n">60.0%</td><td class="n">1</td>`);
    // The four dimensions' daily shares as lines over the 30 days, each with its lowest and latest.
    expect([...page.matchAll(/<tr data-trend="(\w+)"><th scope="row">[^<]+<\/th><td><svg /g)].map((m) => m[1])).toEqual([
      'accepted',
      'his',
      'platform',
      'uptime',
    ]);
    expect(page).toMatch(/<tr data-trend="accepted">[\s\S]*?最低 [\d.]+%，最近 [\d.]+%/);
    // The last column: the circuit breaker's openings that day (two on Y, none on X).
    expect(row('t-stability', Y)).toMatch(/<td class="n">2<\/td>$/);
    expect(row('t-stability', X)).toMatch(/<td class="n">0<\/td>$/);
    expect(page).toContain(`<tr data-org="${org}">`);

    const refused = await web.app.request('/evaluation.html', { headers: { ...host, cookie: await signIn('clinician') } });
    expect(refused.status).toBe(403);
    // The 403 page keeps the clinician's navigation: the one page NAV opens to them.
    const forbidden = await refused.text();
    expectConsoleFrame(forbidden, 'clinician', '/evaluation.html');
    expect(consoleFrame(forbidden).links).toEqual(['/status.html']);
    expect(forbidden).toContain('无权访问此页面');
    const none = await web.app.request('/evaluation.html', { headers: host });
    expect(none.status).toBe(302);
    expect(none.headers.get('location')).toBe('/login?next=%2Fevaluation.html');
  });
});
