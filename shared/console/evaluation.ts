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
import { addDays, dayBounds, localDay } from '../dayclose/day.js';
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
    /** Minutes of the day with a push run (the per-minute schedule ran): null before the first run ever. */
    runMinutes: number | null;
    minutes: number;
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
const RunRow = z.object({ day: z.string(), minutes: z.coerce.number(), failed: z.coerce.number(), errors: z.coerce.number() });
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

/** The last `days` local days up to and including `now`'s, for the user's orgs. */
export async function evaluate(db: Db, o: { orgs: '*' | string[]; timeZone: string; now?: Date; days?: number }): Promise<Evaluation> {
  const now = o.now ?? new Date();
  const n = o.days ?? 30;
  const to = localDay(now, o.timeZone);
  const from = addDays(to, -(n - 1));
  const list: string[] = [];
  for (let d = from; d <= to; d = addDays(d, 1)) list.push(d);
  const bounds = list.map((d) => ({ day: d, ...dayBounds(d, o.timeZone), nextTo: dayBounds(addDays(d, 1), o.timeZone).to }));
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
  /** A query that joins the days otherwise still names the origin parameter, so that it has a type. */
  const typed = uniform ? ` AND ${origin} IS NOT NULL` : '';
  const inDay = (col: string) =>
    uniform ? `d.idx = CAST(floor(extract(epoch FROM (${col} - ${origin})) / 86400) AS integer)` : `${col} >= d.from_at AND ${col} < d.to_at`;
  const p = days.params.length;
  const q = async <T>(schema: z.ZodType<T>, sql: string, params: unknown[] = []): Promise<T[]> =>
    (await db.query(sql, [...days.params, ...params])).rows.map((r) => schema.parse(r));

  // Records stored: each record's first receipt (record_receipt, one narrow row per record), not
  // record_history, whose 30 days are too wide to scan for a page (docs/console.md "The evaluation page").
  const or0 = orgs(o.orgs, 'r.org_code', p + 1);
  const received = await q(
    DayN,
    `SELECT d.day, count(*) AS n FROM record_receipt r JOIN (${days.sql}) d ON ${inDay('r.received_at')}
      WHERE NOT r.test_mode AND r.resource <> ALL($${p + 1 + or0.params.length}::varchar[]) AND ${or0.sql}
      GROUP BY d.day`,
    [...or0.params, SYNTHETIC],
  );
  const oj = orgs(o.orgs, 'j.org_code', p + 1);
  const rejected = await q(
    DayN,
    `SELECT d.day, count(*) AS n FROM ingest_rejection j JOIN (${days.sql}) d ON ${inDay('j.received_at')}
      WHERE NOT j.test_mode AND ${oj.sql} GROUP BY d.day`,
    oj.params,
  );
  const ok = orgs(o.orgs, 'k.org_code', p + 1);
  const held = await q(
    DayN,
    `SELECT d.day, count(*) AS n FROM (SELECT k.resource, k.org_code, k.record_id, min(k.since) AS since FROM record_hold k
        WHERE k.kind = 'mapping' AND ${ok.sql} GROUP BY k.resource, k.org_code, k.record_id) x
       JOIN (${days.sql}) d ON ${inDay('x.since')} GROUP BY d.day`,
    ok.params,
  );

  // HIS → front: a record's first receipt against its business time; a business time at local
  // midnight is one known to the day, counted from the day's end (docs/data-set.md "Business time").
  const orr = orgs(o.orgs, 'r.org_code', p + 1);
  const start = 'CASE WHEN r.business_at = d.from_at THEN d.to_at ELSE r.business_at END';
  const his = await q(
    ClassRow,
    `SELECT d.day, r.resource AS cls, count(*) AS n,
            sum(CASE WHEN r.received_at <= ${start} + interval '${REALTIME_S} seconds' THEN 1 ELSE 0 END) AS rt,
            sum(CASE WHEN r.received_at <= ${start} + interval '${TWO_HOURS_S} seconds' THEN 1 ELSE 0 END) AS h2,
            sum(CASE WHEN r.received_at < d.to_at THEN 1 ELSE 0 END) AS t0,
            sum(CASE WHEN r.received_at < d.next_to THEN 1 ELSE 0 END) AS t1
       FROM record_receipt r JOIN (${days.sql}) d ON r.business_day = d.day
      WHERE NOT r.test_mode AND r.business_at IS NOT NULL AND ${orr.sql}${typed}
      GROUP BY d.day, r.resource`,
    orr.params,
  );

  // Front → platforms: every outbox row stored that day (held, pending, sent, dead; not the skipped
  // or superseded), its deadline counted from when it was stored.
  const oo = orgs(o.orgs, 'o.org_code', p + 2);
  const due = `CASE o.deadline_class WHEN 'realtime' THEN o.created_at + interval '${REALTIME_S} seconds'
                 WHEN '2h' THEN o.created_at + interval '${TWO_HOURS_S} seconds' WHEN 'T+0' THEN d.to_at ELSE d.next_to END`;
  const out = await q(
    OutboxRow,
    `SELECT d.day, count(*) AS n,
            sum(CASE WHEN o.sent_at IS NOT NULL AND o.sent_at <= ${due} THEN 1 ELSE 0 END) AS on_time,
            sum(CASE WHEN (o.sent_at IS NOT NULL AND o.sent_at > ${due}) OR (o.sent_at IS NULL AND $${p + 1}::timestamptz > ${due}) THEN 1 ELSE 0 END) AS late,
            sum(CASE WHEN o.sent_at IS NULL AND $${p + 1}::timestamptz <= ${due} THEN 1 ELSE 0 END) AS pending
       FROM outbox o JOIN (${days.sql}) d ON ${inDay('o.created_at')}
      WHERE NOT o.test_mode AND o.state NOT IN ('skipped', 'superseded') AND ${oo.sql}
      GROUP BY d.day`,
    [now, ...oo.params],
  );

  // Stability: the front as a whole (push runs, alerts are not per org).
  const runs = await q(
    RunRow,
    `SELECT d.day, count(DISTINCT date_trunc('minute', u.started_at)) AS minutes, coalesce(sum(u.failed), 0) AS failed,
            sum(CASE WHEN u.note IS NOT NULL THEN 1 ELSE 0 END) AS errors
       FROM push_run u JOIN (${days.sql}) d ON ${inDay('u.started_at')} GROUP BY d.day`,
  );
  const firstRun = z.object({ t: z.date().nullable() }).parse((await db.query('SELECT min(started_at) AS t FROM push_run')).rows[0]).t;
  const alerts = await q(
    DayN,
    `SELECT d.day, count(*) AS n FROM alert_event a JOIN (${days.sql}) d ON ${inDay('a.created_at')}
      WHERE a.kind <> 'clear' GROUP BY d.day`,
  );
  const opens = await q(DayN, `SELECT d.day, count(*) AS n FROM uplink_circuit_event e JOIN (${days.sql}) d ON ${inDay('e.opened_at')} GROUP BY d.day`);

  const om = orgs(o.orgs, 'm.org_code', p + 1);
  const mappings = await q(
    ActionRow,
    `SELECT d.day, m.action, count(*) AS n FROM code_mapping_history m JOIN (${days.sql}) d ON ${inDay('m.made_at')}
      WHERE ${om.sql} GROUP BY d.day, m.action`,
    om.params,
  );
  const bundles = await q(
    ActionRow,
    `SELECT d.day, b.action, count(*) AS n FROM config_bundle b JOIN (${days.sql}) d ON ${inDay('b.applied_at')}
      GROUP BY d.day, b.action`,
  );

  const of = (rows: Array<{ day: string; n: number }>, day: string) => rows.find((r) => r.day === day)?.n ?? 0;
  const act = (rows: Array<{ day: string; action: string; n: number }>, day: string, action: string) =>
    rows.filter((r) => r.day === day && r.action === action).reduce((a, r) => a + r.n, 0);
  const result: EvaluationDay[] = bounds.map((b) => {
    const rec = of(received, b.day);
    const rej = of(rejected, b.day);
    let records = 0;
    let onTime = 0;
    for (const r of his.filter((x) => x.day === b.day)) {
      const cls: DeadlineClass | undefined = resources[r.cls]?.deadline;
      if (!cls) continue;
      records += r.n;
      onTime += { realtime: r.rt, '2h': r.h2, 'T+0': r.t0, 'T+1': r.t1 }[cls];
    }
    const ob = out.find((x) => x.day === b.day) ?? { n: 0, on_time: 0, late: 0, pending: 0 };
    const run = runs.find((x) => x.day === b.day);
    const end = Math.min(b.to.getTime(), now.getTime());
    const minutes = Math.max(0, Math.floor((end - b.from.getTime()) / 60_000));
    const ran = firstRun && firstRun.getTime() < b.to.getTime() ? (run?.minutes ?? 0) : null;
    return {
      day: b.day,
      correctness: { received: rec, rejected: rej, acceptedShare: share(rec, rec + rej), stillHeldForMapping: of(held, b.day) },
      timeliness: {
        hisToFront: { records, onTime, share: share(onTime, records) },
        frontToPlatform: { rows: ob.n, onTime: ob.on_time, late: ob.late, pending: ob.pending, share: share(ob.on_time, ob.on_time + ob.late) },
      },
      stability: {
        runMinutes: ran,
        minutes,
        uptimeShare: ran === null ? null : share(Math.min(ran, minutes), minutes),
        failedPushes: run?.failed ?? 0,
        runsWithErrors: run?.errors ?? 0,
        alerts: of(alerts, b.day),
        circuitOpens: of(opens, b.day),
      },
      adaptability: {
        mappingsCreated: act(mappings, b.day, 'create'),
        mappingsChanged: act(mappings, b.day, 'update') + act(mappings, b.day, 'delete'),
        bundlesApplied: act(bundles, b.day, 'apply'),
        rollbacks: act(bundles, b.day, 'rollback'),
      },
    };
  });

  // Mapping completeness now: the user's orgs, or (every org) those with codes seen, at most 20.
  const mapOrgs =
    o.orgs === '*'
      ? z
          .array(z.object({ org_code: z.string() }))
          .parse((await db.query('SELECT DISTINCT org_code FROM code_observed ORDER BY org_code LIMIT 20')).rows)
          .map((r) => r.org_code)
      : o.orgs.slice(0, 20);
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
  return { from, to, days: result.reverse(), mapping };
}
