/**
 * 评估: the notice's four dimensions of the front, per local day (docs/console.md "The evaluation
 * page") — correctness, timeliness (both legs), stability, adaptability — each figure counted from
 * what the front's tables hold. Where the tables do not hold what a figure needs, it is null (the
 * page says 暂无数据) and docs/console.md says why; nothing is estimated.
 */
import { z } from 'zod';
import { REALTIME_S } from './figures.js';
import type { Db } from '../db/index.js';
import { source } from '../db/sql.js';
import { longestGapS } from '../time/cron.js';
import { addDays, dayBounds, localDay } from '../time/day.js';
import { completeness } from '../codes/store.js';
import { resources } from '../../schemas/index.js';
import type { DeadlineClass } from '../../schemas/resource.js';

/**
 * How late "realtime" may be: the notice names the class without a number; the console reads it as
 * REALTIME_S (shared/console/figures.ts, one figure for the dashboard and the evaluation) after the
 * business time (HIS → front) or after being stored (front → platform).
 */
export { REALTIME_S };
/** The 2-hour class. T+0: before the end of the business (stored) day; T+1: before the end of the next. */
export const TWO_HOURS_S = 7200;
/** Resources the front writes itself (day close): not data from the HIS. */
const SYNTHETIC = ['dailySummary', 'dayCompleteness'];

export interface EvaluationDay {
  day: string;
  correctness: {
    /** Records stored, by their first receipt (record_receipt), test records aside. */
    received: number;
    /** Records refused with 400 (ingest_rejection). */
    rejected: number;
    /** received / (received + rejected); null with neither. */
    acceptedShare: number | null;
    /** Records received that day still held today for a code with no mapping (record_hold kind mapping). */
    stillHeldForMapping: number;
  };
  timeliness: {
    /** HIS → front: records of the business day, arrived within their resource's deadline class. */
    hisToFront: { records: number; onTime: number; share: number | null };
    /** Front → platforms: outbox rows stored that day, delivered within their class; pending = not yet due. */
    frontToPlatform: { rows: number; onTime: number; late: number; pending: number; share: number | null };
  };
  stability: {
    /** Minutes of the day with a push run: null before the first run ever. */
    runMinutes: number | null;
    /** The minutes counted: the day's, from the first run's minute on its day, up to now today. */
    minutes: number;
    /** Periods of the push schedule in force with a run ÷ the periods counted (minutes under stack.yml's). */
    uptimeShare: number | null;
    failedPushes: number;
    runsWithErrors: number;
    alerts: number;
    /** Openings of any platform's circuit breaker that day (uplink_circuit_event). */
    circuitOpens: number;
  };
  adaptability: {
    mappingsCreated: number;
    mappingsChanged: number;
    bundlesApplied: number;
    rollbacks: number;
  };
}

export interface MappingNow {
  org: string;
  gapFreeDomains: number;
  totalDomains: number;
  percent: number;
  resolvedCodes: number;
  seenCodes: number;
}

export interface Evaluation {
  from: string;
  to: string;
  days: EvaluationDay[];
  /** The mapping completeness now, per org (not kept per day). */
  mapping: MappingNow[];
}

const DayN = z.object({ day: z.string(), n: z.coerce.number() });
const ClassRow = z.object({
  day: z.string(),
  cls: z.string(),
  n: z.coerce.number(),
  rt: z.coerce.number(),
  h2: z.coerce.number(),
  t0: z.coerce.number(),
  t1: z.coerce.number(),
});
const OutboxRow = z.object({ day: z.string(), n: z.coerce.number(), on_time: z.coerce.number(), late: z.coerce.number(), pending: z.coerce.number() });
const RunRow = z.object({ day: z.string(), minutes: z.coerce.number(), slots: z.coerce.number(), failed: z.coerce.number(), errors: z.coerce.number() });
const ActionRow = z.object({ day: z.string(), action: z.string(), n: z.coerce.number() });

const DAY_COLS = [
  ['idx', 'integer'],
  ['day', 'varchar'],
  ['from_at', 'timestamptz'],
  ['to_at', 'timestamptz'],
  ['next_to', 'timestamptz'],
] as const;

/** The org condition: every org, or the listed ones (a column that may be NULL then excludes the row). */
function orgs(list: '*' | string[], col: string, at: number): { sql: string; params: unknown[] } {
  return list === '*' ? { sql: 'true', params: [] } : { sql: `${col} = ANY($${at}::varchar[])`, params: [list] };
}

const share = (part: number, whole: number) => (whole > 0 ? part / whole : null);
/** A day's count in rows of (day, n); 0 for a day without a row. */
const of = (rows: Array<{ day: string; n: number }>, day: string) => rows.find((r) => r.day === day)?.n ?? 0;
/** A day's count of one action in rows of (day, action, n). */
const act = (rows: Array<{ day: string; action: string; n: number }>, day: string, action: string) =>
  rows.filter((r) => r.day === day && r.action === action).reduce((a, r) => a + r.n, 0);

/** A local day of the window with its bounds, and the end of the day after it (T+1). */
interface DayBounds {
  day: string;
  from: Date;
  to: Date;
  nextTo: Date;
}

/** The window's days as one source every figure's query joins, and how a row finds its day. */
interface DayWindow {
  bounds: DayBounds[];
  /** The days' VALUES source; its parameters come first in every query. */
  sql: string;
  /** The number of the days' last parameter: a query's own parameters are numbered after it. */
  p: number;
  /** The join condition of a row's time column to its day. */
  inDay: (col: string) => string;
  /** Appended to a query that joins the days otherwise, so that the origin parameter still has a type. */
  typed: string;
  /** Runs a query with the days' parameters ahead of its own, each row parsed by `schema`. */
  q: <T>(schema: z.ZodType<T>, sql: string, params?: unknown[]) => Promise<T[]>;
}

/**
 * The local days `from`..`to` in the hospital's zone as a VALUES source of their bounds
 * (docs/console.md "The evaluation page").
 */
function dayWindow(db: Db, from: string, to: string, timeZone: string): DayWindow {
  const list: string[] = [];
  for (let d = from; d <= to; d = addDays(d, 1)) list.push(d);
  const bounds = list.map((d) => ({ day: d, ...dayBounds(d, timeZone), nextTo: dayBounds(addDays(d, 1), timeZone).to }));
  const days = source(
    DAY_COLS,
    bounds.map((b, i) => [i, b.day, b.from, b.to, b.nextTo]),
  );
  // A row's day: in a zone whose days are all 24 hours in the window (China's), the day's index is
  // arithmetic on the instant and the join an equality (a hash join: a range join against 30 days
  // costs a comparison per row and day — 3 s for 300 000 rows); else the range.
  const uniform = bounds.every((b) => b.to.getTime() - b.from.getTime() === 86_400_000);
  if (uniform) days.params.push(bounds[0]!.from);
  const origin = `$${days.params.length}::timestamptz`;
  const typed = uniform ? ` AND ${origin} IS NOT NULL` : '';
  const inDay = (col: string) =>
    uniform ? `d.idx = CAST(floor(extract(epoch FROM (${col} - ${origin})) / 86400) AS integer)` : `${col} >= d.from_at AND ${col} < d.to_at`;
  const q = async <T>(schema: z.ZodType<T>, sql: string, params: unknown[] = []): Promise<T[]> =>
    (await db.query(sql, [...days.params, ...params])).rows.map((r) => schema.parse(r));
  return { bounds, sql: days.sql, p: days.params.length, inDay, typed, q };
}

/** Correctness: records stored and refused per day, and those received that day still held for a mapping. */
async function readCorrectness(w: DayWindow, list: '*' | string[]) {
  const { sql: days, p, inDay, q } = w;
  // Records stored: each record's first receipt (record_receipt, one narrow row per record), not
  // record_history, whose 30 days are too wide to scan for a page (docs/console.md "The evaluation page").
  const or0 = orgs(list, 'r.org_code', p + 1);
  const received = await q(
    DayN,
    `SELECT d.day, count(*) AS n FROM record_receipt r JOIN (${days}) d ON ${inDay('r.received_at')}
      WHERE NOT r.test_mode AND r.resource <> ALL($${p + 1 + or0.params.length}::varchar[]) AND ${or0.sql}
      GROUP BY d.day`,
    [...or0.params, SYNTHETIC],
  );
  const oj = orgs(list, 'j.org_code', p + 1);
  const rejected = await q(
    DayN,
    `SELECT d.day, count(*) AS n FROM ingest_rejection j JOIN (${days}) d ON ${inDay('j.received_at')}
      WHERE NOT j.test_mode AND ${oj.sql} GROUP BY d.day`,
    oj.params,
  );
  const ok = orgs(list, 'k.org_code', p + 1);
  const held = await q(
    DayN,
    `SELECT d.day, count(*) AS n FROM (SELECT k.resource, k.org_code, k.record_id, min(k.since) AS since FROM record_hold k
        WHERE k.kind = 'mapping' AND ${ok.sql} GROUP BY k.resource, k.org_code, k.record_id) x
       JOIN (${days}) d ON ${inDay('x.since')} GROUP BY d.day`,
    ok.params,
  );
  return { received, rejected, held };
}

/** Timeliness, both legs: HIS → front per day and resource, front → platforms per day. */
async function readTimeliness(w: DayWindow, list: '*' | string[], now: Date) {
  const { sql: days, p, inDay, typed, q } = w;
  // HIS → front: a record's first receipt against its business time; a business time at local
  // midnight is one known to the day, counted from the day's end (docs/data-set.md "Business time").
  const orr = orgs(list, 'r.org_code', p + 1);
  const start = 'CASE WHEN r.business_at = d.from_at THEN d.to_at ELSE r.business_at END';
  const his = await q(
    ClassRow,
    `SELECT d.day, r.resource AS cls, count(*) AS n,
            sum(CASE WHEN r.received_at <= ${start} + interval '${REALTIME_S} seconds' THEN 1 ELSE 0 END) AS rt,
            sum(CASE WHEN r.received_at <= ${start} + interval '${TWO_HOURS_S} seconds' THEN 1 ELSE 0 END) AS h2,
            sum(CASE WHEN r.received_at < d.to_at THEN 1 ELSE 0 END) AS t0,
            sum(CASE WHEN r.received_at < d.next_to THEN 1 ELSE 0 END) AS t1
       FROM record_receipt r JOIN (${days}) d ON r.business_day = d.day
      WHERE NOT r.test_mode AND r.business_at IS NOT NULL AND ${orr.sql}${typed}
      GROUP BY d.day, r.resource`,
    orr.params,
  );

  // Front → platforms: every outbox row stored that day (held, pending, sent, dead; not the skipped
  // or superseded), its deadline counted from when it was stored.
  const oo = orgs(list, 'o.org_code', p + 2);
  const due = `CASE o.deadline_class WHEN 'realtime' THEN o.created_at + interval '${REALTIME_S} seconds'
                 WHEN '2h' THEN o.created_at + interval '${TWO_HOURS_S} seconds' WHEN 'T+0' THEN d.to_at ELSE d.next_to END`;
  const out = await q(
    OutboxRow,
    `SELECT d.day, count(*) AS n,
            sum(CASE WHEN o.sent_at IS NOT NULL AND o.sent_at <= ${due} THEN 1 ELSE 0 END) AS on_time,
            sum(CASE WHEN (o.sent_at IS NOT NULL AND o.sent_at > ${due}) OR (o.sent_at IS NULL AND $${p + 1}::timestamptz > ${due}) THEN 1 ELSE 0 END) AS late,
            sum(CASE WHEN o.sent_at IS NULL AND $${p + 1}::timestamptz <= ${due} THEN 1 ELSE 0 END) AS pending
       FROM outbox o JOIN (${days}) d ON ${inDay('o.created_at')}
      WHERE NOT o.test_mode AND o.state NOT IN ('skipped', 'superseded') AND ${oo.sql}
      GROUP BY d.day`,
    [now, ...oo.params],
  );
  return { his, out };
}

/** Stability: the front as a whole (push runs, alerts are not per org), and the first push run ever. */
async function readStability(db: Db, w: DayWindow) {
  const { sql: days, inDay, q } = w;
  // The push schedule in force (stack.yml's every minute, or a configuration bundle's): its period in
  // whole minutes is the slot a run is expected in.
  const schedule = (await db.query<{ schedule: string | null }>(`SELECT schedule FROM schedule_state WHERE function_name = 'push'`)).rows[0]?.schedule;
  const gap = schedule ? longestGapS(schedule, new Date()) : null;
  const periodMinutes = gap === null ? 1 : Math.max(1, Math.round(gap / 60));
  const runs = await q(
    RunRow,
    `SELECT d.day, count(DISTINCT date_trunc('minute', u.started_at)) AS minutes,
            count(DISTINCT floor(extract(epoch FROM u.started_at) / ${periodMinutes * 60})) AS slots, coalesce(sum(u.failed), 0) AS failed,
            sum(CASE WHEN u.note IS NOT NULL THEN 1 ELSE 0 END) AS errors
       FROM push_run u JOIN (${days}) d ON ${inDay('u.started_at')} GROUP BY d.day`,
  );
  const firstRun = z.object({ t: z.date().nullable() }).parse((await db.query('SELECT min(started_at) AS t FROM push_run')).rows[0]).t;
  const alerts = await q(
    DayN,
    `SELECT d.day, count(*) AS n FROM alert_event a JOIN (${days}) d ON ${inDay('a.created_at')}
      WHERE a.kind <> 'clear' GROUP BY d.day`,
  );
  const opens = await q(DayN, `SELECT d.day, count(*) AS n FROM uplink_circuit_event e JOIN (${days}) d ON ${inDay('e.opened_at')} GROUP BY d.day`);
  return { runs, firstRun, alerts, opens, periodMinutes };
}

/** Adaptability: mapping changes of the user's orgs, configuration bundles of the front. */
async function readAdaptability(w: DayWindow, list: '*' | string[]) {
  const { sql: days, p, inDay, q } = w;
  const om = orgs(list, 'm.org_code', p + 1);
  const mappings = await q(
    ActionRow,
    `SELECT d.day, m.action, count(*) AS n FROM code_mapping_history m JOIN (${days}) d ON ${inDay('m.made_at')}
      WHERE ${om.sql} GROUP BY d.day, m.action`,
    om.params,
  );
  const bundles = await q(
    ActionRow,
    `SELECT d.day, b.action, count(*) AS n FROM config_bundle b JOIN (${days}) d ON ${inDay('b.applied_at')}
      GROUP BY d.day, b.action`,
  );
  return { mappings, bundles };
}

/** Every figure's rows over the window, as the readers above return them. */
type Rows = Awaited<ReturnType<typeof readCorrectness>> &
  Awaited<ReturnType<typeof readTimeliness>> &
  Awaited<ReturnType<typeof readStability>> &
  Awaited<ReturnType<typeof readAdaptability>>;

/**
 * The minutes a day's run rate is counted over (docs/console.md "The evaluation page"): from the
 * day's start — or, on the day of the front's first push run, from that run's minute, as the hours
 * before it the front was not yet installed — to the day's end, or to `now` today.
 */
function dayMinutes(b: DayBounds, firstRun: Date | null, now: Date): number {
  const first = firstRun ? Math.floor(firstRun.getTime() / 60_000) * 60_000 : null;
  const start = first !== null && first > b.from.getTime() ? first : b.from.getTime();
  const end = Math.min(b.to.getTime(), now.getTime());
  return Math.max(0, Math.floor((end - start) / 60_000));
}

/** One day's four dimensions from the window's rows; today's minutes end at `now`. */
function dayOf(b: DayBounds, rows: Rows, now: Date): EvaluationDay {
  const rec = of(rows.received, b.day);
  const rej = of(rows.rejected, b.day);
  let records = 0;
  let onTime = 0;
  for (const r of rows.his.filter((x) => x.day === b.day)) {
    const cls: DeadlineClass | undefined = resources[r.cls]?.deadline;
    if (!cls) continue;
    records += r.n;
    onTime += { realtime: r.rt, '2h': r.h2, 'T+0': r.t0, 'T+1': r.t1 }[cls];
  }
  const ob = rows.out.find((x) => x.day === b.day) ?? { n: 0, on_time: 0, late: 0, pending: 0 };
  const run = rows.runs.find((x) => x.day === b.day);
  const minutes = dayMinutes(b, rows.firstRun, now);
  const ran = rows.firstRun && rows.firstRun.getTime() < b.to.getTime() ? (run?.minutes ?? 0) : null;
  // Each period of the push schedule in force is one slot a run is due in (a minute under stack.yml's).
  const slots = Math.ceil(minutes / rows.periodMinutes);
  return {
    day: b.day,
    correctness: { received: rec, rejected: rej, acceptedShare: share(rec, rec + rej), stillHeldForMapping: of(rows.held, b.day) },
    timeliness: {
      hisToFront: { records, onTime, share: share(onTime, records) },
      frontToPlatform: { rows: ob.n, onTime: ob.on_time, late: ob.late, pending: ob.pending, share: share(ob.on_time, ob.on_time + ob.late) },
    },
    stability: {
      runMinutes: ran,
      minutes,
      uptimeShare: ran === null ? null : share(Math.min(run?.slots ?? 0, slots), slots),
      failedPushes: run?.failed ?? 0,
      runsWithErrors: run?.errors ?? 0,
      alerts: of(rows.alerts, b.day),
      circuitOpens: of(rows.opens, b.day),
    },
    adaptability: {
      mappingsCreated: act(rows.mappings, b.day, 'create'),
      mappingsChanged: act(rows.mappings, b.day, 'update') + act(rows.mappings, b.day, 'delete'),
      bundlesApplied: act(rows.bundles, b.day, 'apply'),
      rollbacks: act(rows.bundles, b.day, 'rollback'),
    },
  };
}

/** Mapping completeness now: the user's orgs, or (every org) those with codes seen, at most 20. */
async function mappingNow(db: Db, list: '*' | string[]): Promise<MappingNow[]> {
  const mapOrgs =
    list === '*'
      ? z
          .array(z.object({ org_code: z.string() }))
          .parse((await db.query('SELECT DISTINCT org_code FROM code_observed ORDER BY org_code LIMIT 20')).rows)
          .map((r) => r.org_code)
      : list.slice(0, 20);
  const mapping: MappingNow[] = [];
  for (const org of mapOrgs) {
    const c = await completeness(db, org);
    mapping.push({
      org,
      gapFreeDomains: c.gapFreeDomains,
      totalDomains: c.totalDomains,
      percent: c.percent,
      resolvedCodes: c.resolvedCodes,
      seenCodes: c.seenCodes,
    });
  }
  return mapping;
}

/** The last `days` local days up to and including `now`'s, for the user's orgs. */
export async function evaluate(db: Db, o: { orgs: '*' | string[]; timeZone: string; now?: Date; days?: number }): Promise<Evaluation> {
  const now = o.now ?? new Date();
  const n = o.days ?? 30;
  const to = localDay(now, o.timeZone);
  const from = addDays(to, -(n - 1));
  const w = dayWindow(db, from, to, o.timeZone);
  // One grouped query per figure, one after another, in the order of the page's dimensions.
  const rows: Rows = {
    ...(await readCorrectness(w, o.orgs)),
    ...(await readTimeliness(w, o.orgs, now)),
    ...(await readStability(db, w)),
    ...(await readAdaptability(w, o.orgs)),
  };
  const days = w.bounds.map((b) => dayOf(b, rows, now));
  return { from, to, days: days.reverse(), mapping: await mappingNow(db, o.orgs) };
}
