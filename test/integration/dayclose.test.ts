// Closing the day on the real database: records go in through the real pipeline (upsertMany), the
// close finds the gaps and counts the day, forwards both through the outbox, and is idempotent.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { databaseUrl, testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { retireRecord, upsertMany } from '../../shared/ingest/index.js';
import { resources } from '../../schemas/index.js';
import { sample } from '../../infra/simulators/samples.js';
import {
  closeDay,
  COMPLETENESS_RESOURCE,
  dayBounds,
  dueCloses,
  listDays,
  localDay,
  recordIdOf,
  runDue,
  SUMMARY_RESOURCE,
  type CloseOptions,
} from '../../shared/dayclose/index.js';
import { basicAuthHeader } from '../../shared/http/basic.js';
import { dayCloses } from '../../shared/console/figures.js';
import { startPlatformSimulator } from '../../infra/simulators/platform.js';
import { pushDestination } from '../../shared/uplink/push.js';
import { destinationFromEnv } from '../../shared/uplink/config.js';
import { createCodeCache, MappingInputSchema, saveMapping, type CodeCache } from '../../shared/codes/index.js';
import { sweepMappingHolds } from '../../shared/ingest/mapping.js';

const db = testDb({ max: 6 });
const TZ = 'Asia/Shanghai';
const DAY = '2025-06-10';
/** The samples' operation time: the morning after the day, so every business time of the day is in the past. */
const AT = new Date('2025-06-11T08:00:00+08:00');
const ctx = () => ({ callId: null, test: false, now: new Date() });
const opts: CloseOptions = { timeZone: TZ, trigger: 'manual' };

type Rec = Record<string, unknown>;
const personal: string[] = [];

/** Stores records of one resource through the real pipeline; every one must be accepted. */
async function put(resource: string, records: Rec[]): Promise<void> {
  const r = resources[resource];
  if (!r) throw new Error(resource);
  const res = await upsertMany(db, r, records, ctx());
  for (const x of res) if (!x.ok) throw new Error(`${resource}: ${x.error.desc}`);
}

const rec = (resource: string, org: string, id: string, seed: number, over: Rec): Rec => {
  const s = { ...sample(resource, { orgCode: org, id, seed, at: AT, patientId: over.patientId as string | undefined }), ...over };
  for (const k of ['patientName', 'idCard', 'tel']) if (typeof s[k] === 'string') personal.push(s[k] as string);
  return Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined));
};
const activity = (org: string, id: string, patientId: string, serialNumber: string, type: string, time: string, code = 'J06.9') =>
  rec('emrActivityInfo', org, id, 11, {
    patientId,
    serialNumber,
    activityTypeCode: type,
    activityTypeName: undefined,
    activityTime: time,
    diagnoseTime: time,
    wmDiseaseCode: code,
    diseaseCode: undefined,
    diseaseName: undefined,
  });

/**
 * The known day: 2 outpatient visits (3 activities), 1 emergency visit, 3 admissions (2 with a
 * notifiable diagnosis, 1 without its admission record), 4 discharges (1 complete, 3 with gaps),
 * 3 lab items (1 without its report), 2 orders (1 without items), 1 death, 2 report cards; plus
 * records of the days around it and a retired record, which do not count.
 */
async function knownDay(org: string) {
  const ids = { v: uniqueId('v') };
  const a = (n: string) => `${ids.v}-${n}`;
  await put(
    'emrPatientInfo',
    Array.from({ length: 12 }, (_, i) => rec('emrPatientInfo', org, `P${i + 1}`, i + 1, {})),
  );
  await put('emrActivityInfo', [
    activity(org, a('o1'), 'P1', 'MZ1', '1', `${DAY} 10:00:00`),
    activity(org, a('o2'), 'P1', 'MZ1', '1', `${DAY} 10:30:00`), // the same visit
    activity(org, a('o3'), 'P2', 'MZ2', '1', `${DAY} 23:59:00`), // still the day
    activity(org, a('o4'), 'P3', 'MZ3', '1', '2025-06-11 00:01:00'), // the next day
    activity(org, a('o5'), 'P3', 'MZ4', '1', '2025-06-09 23:59:00'), // the day before
    activity(org, a('o6'), 'P3', 'MZ5', '1', `${DAY} 11:00:00`), // retired below
    activity(org, a('e1'), 'P4', 'JZ1', '2', `${DAY} 12:00:00`),
    activity(org, a('h1'), 'P5', 'ZY5', '5', `${DAY} 09:00:00`), // 肺结核 from its admission record
    activity(org, a('h2'), 'P6', 'ZY6', '5', `${DAY} 14:00:00`, 'B01.9'), // 水痘 on the activity; no admission record
    activity(org, a('d3'), 'P10', 'ZY10', '9', `${DAY} 15:00:00`), // a discharge with neither record
  ]);
  await retireRecord(db, resources.emrActivityInfo!, { orgCode: org, id: a('o6') }, ctx());
  await put('emrAdmissionInfo', [
    rec('emrAdmissionInfo', org, a('ai5'), 5, {
      patientId: 'P5',
      serialNumber: 'ZY5',
      admissionDate: `${DAY} 09:00:00`,
      initalDiagnosisDate: `${DAY} 09:30:00`,
      confirmedDiagnosisDate: `${DAY} 20:00:00`,
      wmInitalDiagnosisCode: 'A15.0',
    }),
    rec('emrAdmissionInfo', org, a('ai7'), 7, {
      patientId: 'P7',
      serialNumber: 'ZY7',
      admissionDate: `${DAY} 16:00:00`,
      initalDiagnosisDate: `${DAY} 16:30:00`,
      confirmedDiagnosisDate: `${DAY} 20:00:00`,
      wmInitalDiagnosisCode: 'I10',
      wmConfirmedDiagnosisCode: 'I10',
    }),
  ]);
  const stay = (over: Rec): Rec => ({ admissionDate: '2025-06-01 10:00:00', ...over });
  await put('emrDischargeInfo', [
    rec('emrDischargeInfo', org, a('di8'), 8, stay({ patientId: 'P8', serialNumber: 'ZY8', dischargeDate: `${DAY} 10:00:00` })),
    rec('emrDischargeInfo', org, a('di9'), 9, stay({ patientId: 'P9', serialNumber: 'ZY9', dischargeDate: `${DAY} 11:00:00` })),
  ]);
  await put('emrAdmissionRecord', [
    rec('emrAdmissionRecord', org, a('ar8'), 8, stay({ patientId: 'P8', serialNumber: 'ZY8', dischargeDate: `${DAY} 10:00:00` })),
    rec('emrAdmissionRecord', org, a('ar11'), 11, stay({ patientId: 'P11', serialNumber: 'ZY11', dischargeDate: `${DAY} 23:59:59` })),
  ]);
  await put('emrExLab', [rec('emrExLab', org, a('L1'), 1, { patientId: 'P1' })]);
  const item = (id: string, exLabId: string) => rec('emrExLabItem', org, id, 2, { exLabId, operationTime: `${DAY} 20:00:00` });
  await put('emrExLabItem', [item(a('i1'), a('L1')), item(a('i2'), a('L1')), item(a('i3'), a('L-missing'))]);
  const order = (id: string, p: string) => rec('emrOrder', org, id, 3, { patientId: p, prescriptionIssuanceDate: `${DAY} 09:00:00` });
  await put('emrOrder', [order(a('O1'), 'P1'), order(a('O2'), 'P2')]);
  await put('emrOrderItem', [rec('emrOrderItem', org, a('OI1'), 4, { orderId: a('O1'), operationTime: `${DAY} 09:05:00` })]);
  await put('emrDeathInfo', [
    rec('emrDeathInfo', org, a('x1'), 12, { patientId: 'P12', deadDate: `${DAY} 05:00:00` }),
    rec('emrDeathInfo', org, a('x2'), 12, { patientId: 'P12', deadDate: '2025-06-09 05:00:00' }),
  ]);
  const card = (id: string, seed: number) =>
    rec('emrInfReport', org, id, seed, { patientId: `P${seed}`, onsetDate: '2025-06-07', diagnoseTime: `${DAY} 17:00:00`, reportDate: `${DAY} 18:00:00` });
  await put('emrInfReport', [card(a('c1'), 1), card(a('c2'), 2)]);
  return { a };
}

let ownDest: string;
beforeAll(async () => {
  // A destination of this file's own, beside the default national one: the summaries go to every
  // enabled destination. It takes the day's two documents only — files running beside this one
  // count their records' deliveries, which an enabled destination taking everything would join —
  // and is disabled again at the end.
  ownDest = uniqueId('dc').replace(/-/g, '_').slice(0, 40);
  await db.query(`INSERT INTO uplink_destination (name, kind, enabled, resources) VALUES ($1, 'provincial', true, $2)`, [
    ownDest,
    `${SUMMARY_RESOURCE} ${COMPLETENESS_RESOURCE}`,
  ]);
});
afterAll(async () => {
  await db.query(`UPDATE uplink_destination SET enabled = false WHERE name = $1`, [ownDest]);
});

describe('day boundaries', () => {
  it('are the hospital day in Asia/Shanghai', () => {
    const { from, to } = dayBounds(DAY, TZ);
    expect(from.toISOString()).toBe('2025-06-09T16:00:00.000Z');
    expect(to.toISOString()).toBe('2025-06-10T16:00:00.000Z');
  });

  it('put 23:59 local in the day and 00:01 in the next, whatever the machine’s and the session’s zone', async () => {
    const saved = process.env.TZ;
    process.env.TZ = 'America/Los_Angeles';
    // A pool whose sessions think in Honolulu time: nothing may depend on it either.
    const odd = testDb({ max: 2, options: '-c TimeZone=Pacific/Honolulu' });
    try {
      expect(new Date(2025, 0, 1).getTimezoneOffset()).toBe(480); // the machine really is elsewhere now
      const org = uniqueOrg();
      const v = uniqueId('tz');
      // Their patients first: an activity waiting for its patient is held, and a held record is not counted.
      await put(
        'emrPatientInfo',
        [1, 2, 3].map((i) => rec('emrPatientInfo', org, `P${i}`, i, {})),
      );
      await put('emrActivityInfo', [
        activity(org, `${v}-a`, 'P1', 'MZ1', '1', `${DAY} 00:00:00`),
        activity(org, `${v}-b`, 'P2', 'MZ2', '1', `${DAY} 23:59:00`),
        activity(org, `${v}-c`, 'P3', 'MZ3', '1', '2025-06-11 00:01:00'),
      ]);
      const day = await closeDay(odd, org, DAY, 'T+1', opts);
      const next = await closeDay(odd, org, '2025-06-11', 'T+1', opts);
      expect(day.summary!.outpatientVisits).toBe(2);
      expect(next.summary!.outpatientVisits).toBe(1);
      const row = (await db.query(`SELECT summary ->> 'from' AS f, summary ->> 'to' AS t FROM day_close WHERE org_code = $1 AND business_day = $2`, [org, DAY]))
        .rows[0];
      expect(row).toEqual({ f: `${DAY} 00:00:00`, t: '2025-06-11 00:00:00' });
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });
});

describe('a close of a known day', () => {
  let org: string;
  let a: (n: string) => string;
  beforeAll(async () => {
    org = uniqueOrg();
    ({ a } = await knownDay(org));
  });

  it('counts the daily summary', async () => {
    const r = await closeDay(db, org, DAY, 'T+1', opts);
    expect(r.status).toBe('done');
    expect(r.summary).toMatchObject({
      outpatientVisits: 2,
      emergencyVisits: 1,
      admissions: 3,
      infectiousAdmissions: 2,
      infectiousAdmissionsByDisease: [
        { disease: '水痘', count: 1 },
        { disease: '肺结核', count: 1 },
      ],
      discharges: 4,
      deaths: 1,
      reportCards: 2,
    });
    expect(r.summary!.reportCardsByDisease.reduce((n, x) => n + x.count, 0)).toBe(2);
    expect(r.summary!.activityTypes.find((t) => t.code === '1')).toEqual({ code: '1', name: '门诊', visits: 2, activities: 3 });
  });

  it('finds and lists the completeness gaps, with ids and no personal data', async () => {
    await closeDay(db, org, DAY, 'T+1', opts);
    const row = (await db.query(`SELECT completeness, gap_count FROM day_close WHERE org_code = $1 AND business_day = $2 AND kind = 'T+1'`, [org, DAY]))
      .rows[0];
    const c = row.completeness;
    expect(row.gap_count).toBe(6);
    expect(c).toMatchObject({ gapCount: 6, complete: false, gapsTruncated: false, id: recordIdOf(org, DAY, 'T+1'), orgCode: org, day: DAY, kind: 'T+1' });
    expect(c.checks).toEqual({
      discharge: { total: 4, gaps: 3, held: 0, missing: { emrAdmissionRecord: 2, emrDischargeInfo: 2 } },
      admission: { total: 2, gaps: 1, held: 0, missing: { emrAdmissionInfo: 1 } },
      // The item without its report waits for it: held (docs/day-close.md "Held records").
      labItem: { total: 3, gaps: 1, held: 1, missing: { emrExLab: 1 } },
      examItem: { total: 0, gaps: 0, held: 0, missing: { emrExClinical: 0 } },
      order: { total: 2, gaps: 1, held: 0, missing: { emrOrderItem: 1 } },
    });
    const gaps = c.gaps as Array<{
      check: string;
      serialNumber?: string;
      parentId?: string;
      missing: string[];
      present: Array<{ resource: string; id: string }>;
    }>;
    const discharge = gaps.filter((g) => g.check === 'discharge').map((g) => [g.serialNumber, g.missing]);
    expect(discharge.sort()).toEqual([
      ['ZY10', ['emrAdmissionRecord', 'emrDischargeInfo']],
      ['ZY11', ['emrDischargeInfo']],
      ['ZY9', ['emrAdmissionRecord']],
    ]);
    expect(gaps.find((g) => g.check === 'discharge' && g.serialNumber === 'ZY10')!.present).toEqual([{ resource: 'emrActivityInfo', id: a('d3') }]);
    expect(gaps.filter((g) => g.check === 'admission').map((g) => g.serialNumber)).toEqual(['ZY6']);
    expect(gaps.filter((g) => g.check === 'labItem')).toEqual([
      { check: 'labItem', parentId: a('L-missing'), present: [{ resource: 'emrExLabItem', id: a('i3') }], missing: ['emrExLab'] },
    ]);
    expect(gaps.filter((g) => g.check === 'order')).toEqual([{ check: 'order', present: [{ resource: 'emrOrder', id: a('O2') }], missing: ['emrOrderItem'] }]);
    const text = JSON.stringify(c);
    for (const p of personal) expect(text).not.toContain(p);
  });

  it('is forwarded through the outbox to every enabled destination, with its history', async () => {
    await closeDay(db, org, DAY, 'T+1', opts);
    const id = recordIdOf(org, DAY, 'T+1');
    const rows = (
      await db.query(
        `SELECT destination, resource, version, op, deadline_class, state, payload FROM outbox
          WHERE org_code = $1 AND record_id = $2 AND destination = ANY($3::varchar[]) ORDER BY resource, destination`,
        [org, id, ['national', ownDest]],
      )
    ).rows;
    expect(rows.map((r) => [r.resource, r.destination, r.version, r.op, r.deadline_class, r.state])).toEqual(
      [
        [COMPLETENESS_RESOURCE, ownDest, 1, 'upsert', 'T+1', 'pending'],
        [COMPLETENESS_RESOURCE, 'national', 1, 'upsert', 'T+1', 'pending'],
        [SUMMARY_RESOURCE, ownDest, 1, 'upsert', 'T+1', 'pending'],
        [SUMMARY_RESOURCE, 'national', 1, 'upsert', 'T+1', 'pending'],
      ].sort((x, y) => String(x[0]).localeCompare(String(y[0])) || String(x[1]).localeCompare(String(y[1]))),
    );
    const summary = rows.find((r) => r.resource === SUMMARY_RESOURCE)!.payload;
    expect(summary).toMatchObject({ id, orgCode: org, day: DAY, kind: 'T+1', outpatientVisits: 2, emergencyVisits: 1, infectiousAdmissions: 2 });
    expect(summary.closedAt).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
    const hist = (await db.query(`SELECT resource, version, op FROM record_history WHERE org_code = $1 AND record_id = $2 ORDER BY resource`, [org, id])).rows;
    expect(hist).toEqual([
      { resource: SUMMARY_RESOURCE, version: 1, op: 'upsert' },
      { resource: COMPLETENESS_RESOURCE, version: 1, op: 'upsert' },
    ]);
  });

  it('re-runs idempotently, and a changed day is the next version of what changed only', async () => {
    const before = await closeDay(db, org, DAY, 'T+1', opts);
    expect(before.changed).toEqual({ summary: false, completeness: false });
    expect(before.outboxRows).toBe(0);
    const count = async () =>
      Number(
        (
          await db.query(`SELECT count(*) AS n FROM outbox WHERE org_code = $1 AND resource IN ($2, $3) AND destination = 'national'`, [
            org,
            SUMMARY_RESOURCE,
            COMPLETENESS_RESOURCE,
          ])
        ).rows[0].n,
      );
    const n0 = await count();

    // The missing order item arrives: the completeness changes, the summary does not.
    await put('emrOrderItem', [rec('emrOrderItem', org, a('OI2'), 4, { orderId: a('O2'), operationTime: `${DAY} 09:06:00` })]);
    const after = await closeDay(db, org, DAY, 'T+1', opts);
    expect(after.changed).toEqual({ summary: false, completeness: true });
    expect([after.summaryVersion, after.completenessVersion]).toEqual([1, 2]);
    expect(after.gapCount).toBe(5);
    expect(await count()).toBe(n0 + 1);

    const again = await closeDay(db, org, DAY, 'T+1', opts);
    expect(again.changed).toEqual({ summary: false, completeness: false });
    expect(await count()).toBe(n0 + 1);
    const row = (
      await db.query(
        `SELECT status, runs, gap_count, completeness_version, completeness ->> 'gapCount' AS g FROM day_close WHERE org_code = $1 AND business_day = $2 AND kind = 'T+1'`,
        [org, DAY],
      )
    ).rows[0];
    expect(row).toMatchObject({ status: 'done', gap_count: 5, completeness_version: 2, g: '5' });
    expect(row.runs).toBeGreaterThanOrEqual(5);
  });

  it('keeps T+0 and T+1 of a day apart, and lists both for the console', async () => {
    const t0 = await closeDay(db, org, DAY, 'T+0', opts);
    expect(t0).toMatchObject({ status: 'done', id: recordIdOf(org, DAY, 'T+0'), summaryVersion: 1 });
    const days = await listDays(db, { orgCode: org, fromDay: DAY, toDay: DAY });
    expect(days.map((d) => [d.day, d.kind, d.status])).toEqual([
      [DAY, 'T+0', 'done'],
      [DAY, 'T+1', 'done'],
    ]);
    expect(days[0]!.summary).toMatchObject({ outpatientVisits: 2, kind: 'T+0' });
  });

  it('records a failed run and keeps what the last good run forwarded; a day never closed gets a failed row', async () => {
    // A clock that fails inside the close's transaction, after the ledger row is taken: its first
    // reading starts the run, the next (the close time written into the records) is no time at all.
    const failing = (): CloseOptions['now'] => {
      let reads = 0;
      return () => (reads++ === 0 ? new Date() : new Date(Number.NaN));
    };
    const ledger = async (day: string) =>
      (
        await db.query(
          `SELECT status, runs, error, gap_count, summary_version, completeness_version, summary::text AS summary
             FROM day_close WHERE org_code = $1 AND business_day = $2 AND kind = 'T+1'`,
          [org, day],
        )
      ).rows;
    const written = async () =>
      (
        await db.query(
          `SELECT (SELECT count(*) FROM outbox WHERE org_code = $1 AND resource IN ($2, $3)) AS outbox,
                  (SELECT count(*) FROM record_history WHERE org_code = $1 AND resource IN ($2, $3)) AS history`,
          [org, SUMMARY_RESOURCE, COMPLETENESS_RESOURCE],
        )
      ).rows[0];
    const [good] = await ledger(DAY);
    const before = await written();

    const r = await closeDay(db, org, DAY, 'T+1', { ...opts, now: failing() });
    expect(r).toMatchObject({ status: 'failed', outboxRows: 0, summaryVersion: 0, completenessVersion: 0 });
    expect(r.error).toMatch(/invalid time value/i);
    const [failed] = await ledger(DAY);
    expect(failed).toMatchObject({
      status: 'failed',
      runs: good.runs + 1,
      gap_count: good.gap_count,
      summary_version: good.summary_version,
      completeness_version: good.completeness_version,
      summary: good.summary,
    });
    expect(failed.error).toMatch(/invalid time value/i);
    expect(await written()).toEqual(before);

    // A day with no ledger row: the failure inserts one, and nothing of the rolled-back run stays.
    const other = '2025-06-12';
    expect(await ledger(other)).toEqual([]);
    expect((await closeDay(db, org, other, 'T+1', { ...opts, now: failing() })).status).toBe('failed');
    expect(await ledger(other)).toMatchObject([{ status: 'failed', runs: 1, summary_version: 0, completeness_version: 0, summary: null }]);
    expect(await written()).toEqual(before);

    // The next good run closes both.
    expect((await closeDay(db, org, DAY, 'T+1', opts)).status).toBe('done');
    expect((await closeDay(db, org, other, 'T+1', opts)).status).toBe('done');
    expect(await ledger(other)).toMatchObject([{ status: 'done', runs: 2, error: null }]);
  });
});

describe('what is due', () => {
  it('T+0 of today from 23:30, T+1 of yesterday from 06:00 and of the days before (catch-up), in local time', () => {
    const at = (s: string) => new Date(`${s}+08:00`);
    expect(dueCloses(at('2025-06-10T23:29:00'), TZ)).toEqual([
      { day: '2025-06-09', kind: 'T+1' },
      { day: '2025-06-08', kind: 'T+1' },
      { day: '2025-06-07', kind: 'T+1' },
    ]);
    expect(dueCloses(at('2025-06-10T23:30:00'), TZ)[0]).toEqual({ day: '2025-06-10', kind: 'T+0' });
    expect(dueCloses(at('2025-06-11T05:59:00'), TZ)).toEqual([
      { day: '2025-06-09', kind: 'T+1' },
      { day: '2025-06-08', kind: 'T+1' },
    ]);
    expect(dueCloses(at('2025-06-11T06:00:00'), TZ)[0]).toEqual({ day: '2025-06-10', kind: 'T+1' });
  });

  it('runs each due close once per organisation', async () => {
    const org = uniqueOrg();
    const now = () => new Date('2025-06-11T06:05:00+08:00');
    const first = await runDue(db, { ...opts, trigger: 'cron', schedule: { t0At: '23:30', t1At: '06:00', catchUpDays: 2 }, orgs: [org], now });
    expect(first.closes.map((c) => [c.day, c.kind, c.status])).toEqual([
      ['2025-06-10', 'T+1', 'done'],
      ['2025-06-09', 'T+1', 'done'],
    ]);
    const second = await runDue(db, { ...opts, trigger: 'cron', schedule: { t0At: '23:30', t1At: '06:00', catchUpDays: 2 }, orgs: [org], now });
    expect(second).toMatchObject({ closes: [], alreadyDone: 2 });
  });
});

describe('the day-close function', () => {
  let fn: typeof import('../../functions/day-close/handler.js')['default'];
  const org = uniqueOrg();
  // /run and /days are operator routes: the gateway's basic-auth credentials, from the secret files.
  const operator = { authorization: basicAuthHeader({ user: 'ops', password: 'day-close-test' }) };
  beforeAll(async () => {
    process.env.DATABASE_URL = databaseUrl();
    process.env.DAYCLOSE_ORGS = org;
    const secrets = mkdtempSync(join(tmpdir(), 'cdc-dayclose-'));
    writeFileSync(join(secrets, 'basic-auth-user'), 'ops\n');
    writeFileSync(join(secrets, 'basic-auth-password'), 'day-close-test\n');
    process.env.CDC_SECRETS_DIR = secrets;
    fn = (await import('../../functions/day-close/handler.js')).default;
    await fn.init?.();
  });
  afterAll(async () => fn.close?.());

  it('recomputes a day on POST /run and lists it on GET /days', async () => {
    const body1 = JSON.stringify({ orgCode: org, day: DAY, kind: 'T+1' });
    expect((await fn.app.request('/run', { method: 'POST', headers: { 'content-type': 'application/json' }, body: body1 })).status).toBe(401);
    const res = await fn.app.request('/run', { method: 'POST', headers: { 'content-type': 'application/json', ...operator }, body: body1 });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.closes).toHaveLength(1);
    expect(body.closes[0]).toMatchObject({ orgCode: org, day: DAY, kind: 'T+1', status: 'done', gapCount: 0 });
    const list = await (await fn.app.request(`/days?org=${org}&from=2025-06-01&to=2025-06-30`, { headers: operator })).json();
    expect(list.days.map((d: { day: string; kind: string }) => [d.day, d.kind])).toEqual([[DAY, 'T+1']]);
  });

  it('refuses a malformed run with the one error envelope', async () => {
    const res = await fn.app.request('/run', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...operator },
      body: JSON.stringify({ day: '2025-13-01', kind: 'T+2' }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ result: false, errorCode: 'BAD_REQUEST' });
    const bad = await fn.app.request('/days?from=yesterday', { headers: operator });
    expect(bad.status).toBe(400);
    // Today's final (T+1) figures before the day is over: refused, nothing forwarded.
    const today = localDay(new Date(), TZ);
    const early = await fn.app.request('/run', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...operator },
      body: JSON.stringify({ orgCode: org, day: today, kind: 'T+1' }),
    });
    expect(early.status).toBe(400);
    expect((await early.json()).desc).toContain(`day ${today} is not over`);
  });

  it('runs what is due on the cron call, for the configured organisations only', async () => {
    const res = await fn.app.request('/', { method: 'POST', headers: { 'x-topic': 'cron-function', 'x-connector': 'cron-connector' } });
    expect(res.status).toBe(200);
    const run = await res.json();
    expect(run.orgs).toBe(1);
    expect(run.closes.every((c: { orgCode: string; status: string }) => c.orgCode === org && c.status === 'done')).toBe(true);
    const again = await (await fn.app.request('/', { method: 'POST', headers: { 'x-topic': 'cron-function' } })).json();
    expect(again.closes).toEqual([]);
  });
});

describe('records that arrive after a close (docs/day-close.md "Late records")', () => {
  const LATE_DAY = '2025-07-20';
  const schedule = { t0At: '23:30', t1At: '06:00', catchUpDays: 2 };
  const at = (s: string) => new Date(`${s}+08:00`);
  /** A discharge record of the day (its business time), received at `received` (the receipt's time). */
  const discharge = async (org: string, day: string, n: number, received: Date) => {
    // Its patient first: a discharge record waiting for its patient is held, and a held record is not counted.
    const p = await upsertMany(db, resources.emrPatientInfo!, [rec('emrPatientInfo', org, `P${n}`, n, {})], { callId: null, test: false, now: received });
    for (const y of p) if (!y.ok) throw new Error(y.error.desc);
    const r = resources.emrDischargeInfo!;
    const x = rec('emrDischargeInfo', org, uniqueId(`late${n}`), n, {
      patientId: `P${n}`,
      serialNumber: `ZY${n}`,
      admissionDate: '2025-07-01 10:00:00',
      dischargeDate: `${day} 10:00:00`,
    });
    const res = await upsertMany(db, r, [x], { callId: null, test: false, now: received });
    for (const y of res) if (!y.ok) throw new Error(y.error.desc);
  };
  const tick = (now: Date, more: Partial<Parameters<typeof runDue>[1]> = {}) => runDue(db, { ...opts, trigger: 'cron', schedule, ...more, now: () => now });
  const written = async (org: string) =>
    (
      await db.query(
        `SELECT (SELECT count(*) FROM outbox WHERE org_code = $1 AND resource IN ($2, $3)) AS outbox,
                (SELECT count(*) FROM record_history WHERE org_code = $1 AND resource IN ($2, $3)) AS history,
                (SELECT sum(runs) FROM day_close WHERE org_code = $1) AS runs`,
        [org, SUMMARY_RESOURCE, COMPLETENESS_RESOURCE],
      )
    ).rows[0];

  it('re-closes a done T+1 on the next tick, forwards the changed summary as version 2, and then leaves it alone', async () => {
    const org = uniqueOrg();
    await discharge(org, LATE_DAY, 1, at('2025-07-21T05:00:00'));
    const first = await tick(at('2025-07-21T06:05:00'), { orgs: [org] });
    expect(first.closes.map((c) => [c.day, c.kind, c.summaryVersion, c.summary?.discharges])).toEqual([
      [LATE_DAY, 'T+1', 1, 1],
      ['2025-07-19', 'T+1', 1, 0],
    ]);

    // The HIS backfills a discharge of that day at 09:00; the 09:15 tick takes it in.
    await discharge(org, LATE_DAY, 2, at('2025-07-21T09:00:00'));
    // The console's 数据上报 shows the close and the record that came after it.
    const shown = async (now: Date) =>
      (await dayCloses(db, { orgs: [org], timeZone: TZ, now }, 7)).filter((d) => d.day === LATE_DAY).map((d) => [d.kind, d.summaryVersion, d.lateRecords]);
    expect(await shown(at('2025-07-21T09:10:00'))).toEqual([['T+1', 1, 1]]);
    const second = await tick(at('2025-07-21T09:15:00'), { orgs: [org] });
    expect(second.closes.map((c) => [c.day, c.kind, c.status, c.summaryVersion, c.changed.summary, c.summary?.discharges])).toEqual([
      [LATE_DAY, 'T+1', 'done', 2, true, 2],
    ]);
    expect(second).toMatchObject({ alreadyDone: 2, reclosed: 1, lateLeft: 0 });
    const id = recordIdOf(org, LATE_DAY, 'T+1');
    const out = (
      await db.query(
        `SELECT destination, version, state, payload ->> 'discharges' AS discharges FROM outbox
          WHERE org_code = $1 AND resource = $2 AND record_id = $3 AND destination = ANY($4::varchar[]) ORDER BY destination, version`,
        [org, SUMMARY_RESOURCE, id, ['national', ownDest]],
      )
    ).rows;
    expect(out.map((r) => [r.destination, r.version, r.state, r.discharges])).toEqual(
      [
        ['national', 1, 'pending', '1'],
        ['national', 2, 'pending', '2'],
        [ownDest, 1, 'pending', '1'],
        [ownDest, 2, 'pending', '2'],
      ].sort((x, y) => String(x[0]).localeCompare(String(y[0])) || Number(x[1]) - Number(y[1])),
    );
    const [row] = (await listDays(db, { orgCode: org, fromDay: LATE_DAY, toDay: LATE_DAY })) as Array<{ runs: number; summaryVersion: number }>;
    expect(row).toMatchObject({ runs: 2, summaryVersion: 2 });
    expect(await shown(at('2025-07-21T09:20:00'))).toEqual([['T+1', 2, 0]]);

    // Through the push, as the push function sends this destination's queue: the platform holds
    // both versions, the corrected one last.
    const sim = await startPlatformSimulator({ role: 'provincial' });
    try {
      const dest = destinationFromEnv(
        { name: ownDest, kind: 'provincial', resources: `${SUMMARY_RESOURCE} ${COMPLETENESS_RESOURCE}`, accepts_test: false },
        { [`${ownDest.toUpperCase()}_URL`]: sim.url },
        () => undefined,
      );
      const pushed = await pushDestination(db, dest);
      expect(pushed.failed).toBe(0);
      const got = sim.records().filter((x) => x.orgCode === org && x.resource === SUMMARY_RESOURCE && x.id === id);
      expect(got.map((x) => [x.version, x.payload.discharges])).toEqual([
        [1, 1],
        [2, 2],
      ]);
    } finally {
      await sim.close();
    }

    // Nothing new: the next ticks run no close and write nothing, not even the ledger.
    const before = await written(org);
    for (const t of ['2025-07-21T09:30:00', '2025-07-21T09:45:00']) {
      const r = await tick(at(t), { orgs: [org] });
      expect(r).toMatchObject({ closes: [], alreadyDone: 2, reclosed: 0 });
    }
    expect(await written(org)).toEqual(before);
  });

  it('re-closes no more than the bound per tick, the longest-standing close first, the rest on the next ticks', async () => {
    const org = uniqueOrg();
    await tick(at('2025-07-21T06:05:00'), { orgs: [org] });
    await discharge(org, LATE_DAY, 3, at('2025-07-21T07:00:00'));
    await discharge(org, '2025-07-19', 4, at('2025-07-21T07:00:00'));
    const a = await tick(at('2025-07-21T07:15:00'), { orgs: [org], lateMax: 1 });
    const b = await tick(at('2025-07-21T07:30:00'), { orgs: [org], lateMax: 1 });
    const c = await tick(at('2025-07-21T07:45:00'), { orgs: [org], lateMax: 1 });
    const closed = (r: Awaited<ReturnType<typeof tick>>) => r.closes.map((x) => [x.day, x.summaryVersion, x.summary?.discharges]);
    expect([closed(a), closed(b), closed(c)]).toEqual([[[LATE_DAY, 2, 1]], [['2025-07-19', 2, 1]], []]);
    expect(a).toMatchObject({ reclosed: 1, lateLeft: 1 });
  });
});

describe('records held for a code mapping, a rule or a parent (docs/day-close.md "Late records")', () => {
  const HELD_DAY = '2025-08-10';
  const schedule = { t0At: '23:30', t1At: '06:00', catchUpDays: 2 };
  const at = (x: string) => new Date(`${x}+08:00`);
  const tick = (now: Date, org: string) => runDue(db, { ...opts, trigger: 'cron', schedule, orgs: [org], now: () => now });
  let codes: CodeCache;
  beforeAll(async () => {
    codes = await createCodeCache(db, { refreshMs: 100 });
  });
  afterAll(async () => {
    await codes.close();
  });
  /** Two outpatient visits of the day: P1's with the hospital's own activity type `MZ` (held until mapped), P2's with the national 1. */
  const heldDay = async (org: string) => {
    await put(
      'emrPatientInfo',
      [1, 2].map((i) => rec('emrPatientInfo', org, `P${i}`, i, {})),
    );
    const res = await upsertMany(
      db,
      resources.emrActivityInfo!,
      [activity(org, uniqueId('mz'), 'P1', 'MZ1', 'MZ', `${HELD_DAY} 10:00:00`), activity(org, uniqueId('o'), 'P2', 'MZ2', '1', `${HELD_DAY} 11:00:00`)],
      { callId: null, test: false, now: at('2025-08-11T05:00:00'), codes },
    );
    for (const x of res) if (!x.ok) throw new Error(x.error.desc);
    expect(res.map((x) => (x.ok ? x.outcome.held : []))).toEqual([['mapping:activityType/MZ'], []]);
  };
  const queued = async (org: string) =>
    (
      await db.query(
        `SELECT version, payload FROM outbox WHERE destination = 'national' AND org_code = $1 AND resource = $2 AND record_id = $3 ORDER BY version`,
        [org, SUMMARY_RESOURCE, recordIdOf(org, HELD_DAY, 'T+1')],
      )
    ).rows as Array<{ version: number; payload: Rec }>;

  it('a record released from its hold after its day closed re-closes the day at the next tick, and the corrected summary is queued', async () => {
    const org = uniqueOrg();
    await heldDay(org);
    const first = await tick(at('2025-08-11T06:05:00'), org);
    expect(first.closes.filter((c) => c.day === HELD_DAY).map((c) => [c.kind, c.summaryVersion])).toEqual([['T+1', 1]]);

    await saveMapping(db, MappingInputSchema.parse({ org, domain: 'activityType', localCode: 'MZ', nationalCode: '1' }), { by: '测试员' });
    await codes.refresh();
    const swept = await sweepMappingHolds(db, codes);
    expect(swept.released).toBeGreaterThanOrEqual(1);
    // The release stamped the receipt; this file's clock is 2025-08-11 (the ticks' `now`), so the
    // stamp is moved to 09:00 of that morning, as the receive times above are given.
    const stamped = await db.query(
      `UPDATE record_receipt SET released_at = $2 WHERE org_code = $1 AND resource = 'emrActivityInfo' AND released_at IS NOT NULL`,
      [org, at('2025-08-11T09:00:00')],
    );
    expect(stamped.rowCount).toBe(1);

    const second = await tick(at('2025-08-11T09:15:00'), org);
    expect(second.closes.map((c) => [c.day, c.kind, c.status, c.summaryVersion, c.changed.summary, c.summary?.outpatientVisits])).toEqual([
      [HELD_DAY, 'T+1', 'done', 2, true, 2],
    ]);
    expect(second).toMatchObject({ reclosed: 1 });
    const rows = await queued(org);
    expect(rows.map((r) => r.version)).toEqual([1, 2]);
    expect(rows[1]!.payload).toMatchObject({ outpatientVisits: 2, activityTypes: [{ code: '1', name: '门诊', visits: 2, activities: 2 }] });
    // Released once: the tick after leaves the day alone.
    expect(await tick(at('2025-08-11T09:30:00'), org)).toMatchObject({ closes: [], reclosed: 0 });
  });

  it('counts no held record as reported, forwards no local code, and says how many of the day are held, by kind', async () => {
    const org = uniqueOrg();
    await heldDay(org);
    // A report card whose patient has not arrived (held for its parent), beside one whose patient is stored.
    const card = (id: string, patientId: string) =>
      rec('emrInfReport', org, id, 1, { patientId, onsetDate: '2025-08-07', diagnoseTime: `${HELD_DAY} 17:00:00`, reportDate: `${HELD_DAY} 18:00:00` });
    const cards = await upsertMany(db, resources.emrInfReport!, [card(uniqueId('c'), 'P1'), card(uniqueId('c'), 'P9')], {
      callId: null,
      test: false,
      now: at('2025-08-11T05:00:00'),
    });
    expect(cards.map((x) => (x.ok ? x.outcome.held : ['refused']))).toEqual([[], ['parent:emrPatientInfo/P9']]);
    // A lab item whose report has not arrived: a gap of the day, and held.
    await put('emrExLabItem', [rec('emrExLabItem', org, uniqueId('i'), 2, { exLabId: 'L-none', operationTime: `${HELD_DAY} 20:00:00` })]);

    const r = await closeDay(db, org, HELD_DAY, 'T+1', opts);
    expect(r.status).toBe('done');
    const held = {
      records: 3,
      byKind: { mapping: 1, rule: 0, parent: 2 },
      byResource: [
        { resource: 'emrActivityInfo', kind: 'mapping', count: 1 },
        { resource: 'emrExLabItem', kind: 'parent', count: 1 },
        { resource: 'emrInfReport', kind: 'parent', count: 1 },
      ],
    };
    const [payload] = (await queued(org)).map((x) => x.payload);
    expect(payload).toMatchObject({ outpatientVisits: 1, reportCards: 1, reportCardsHeld: 1, held });
    expect(payload!.activityTypes).toEqual([{ code: '1', name: '门诊', visits: 1, activities: 1 }]);
    expect(JSON.stringify(payload)).not.toContain('"MZ"');
    const c = (await db.query(`SELECT completeness FROM day_close WHERE org_code = $1 AND business_day = $2 AND kind = 'T+1'`, [org, HELD_DAY])).rows[0]
      .completeness;
    expect(c).toMatchObject({ held, gapCount: 1, complete: false });
    expect(c.checks.labItem).toEqual({ total: 1, gaps: 1, held: 1, missing: { emrExLab: 1 } });
  });
});
