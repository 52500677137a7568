/**
 * The figures of the console's pages (docs/console.md "The dashboard", "Data quality", "Delivery"):
 * read-only SQL over the tables the product already keeps — record_receipt (what arrived, held),
 * ingest_rejection (what was refused), outbox (queued, sent, dead letters), record_hold and
 * record_parent_wait (holds, orphans), uplink_circuit, day_close, alert_event — every row parsed
 * with zod. Each query is bounded by an index or a time range (migration 0033 adds outbox_sent);
 * the 30-day trends are counted once per finished day into console_day_figure, of which this
 * module is the only writer, so a page load never reads thirty days of receipts.
 *
 * Only counts, times, ids, codes and masked values: never a record's content in clear.
 */
import { z } from 'zod';
import type { Db } from '../db/index.js';
import { resources } from '../../schemas/index.js';
import type { DeadlineClass } from '../../schemas/resource.js';
import { addDays, dayBounds, localDay } from '../time/day.js';
import { mask } from '../ingest/mask.js';
import { HoldKind } from '../holds/index.js';
import type { DeadLetter } from '../uplink/push.js';

/** Whose figures: every organisation, or those a user is bound to. */
export type Orgs = '*' | string[];

export interface Scope {
  orgs: Orgs;
  /** The hospital's zone (TZ_LOCAL): days are its local days. */
  timeZone: string;
  now?: Date;
}

/** The twenty resources of the data set, in the order of endpoints.csv (schemas/index.ts). */
export const RESOURCES = Object.values(resources).map((r) => ({ name: r.name, title: r.title, deadline: r.deadline }));

/**
 * The notice gives "realtime" no number: the console counts a realtime record as on time when it
 * arrives (or is delivered) within this many seconds of its business time (docs/console.md).
 */
export const REALTIME_S = 300;
export const DEADLINE_ZH: Record<DeadlineClass, string> = {
  realtime: `实时（按 ${REALTIME_S / 60} 分钟计）`,
  '2h': '2 小时内',
  'T+0': '当日（T+0）',
  'T+1': '次日（T+1）',
};

/** How many days the trends cover (today included). */
export const TREND_DAYS = 30;

const n = z.coerce.number().int().nonnegative();
const nn = z.coerce.number().int().nonnegative().nullable();
const instant = z.coerce.date();

/** Positional parameters, added as a query is built. */
class Params {
  readonly list: unknown[] = [];
  add(v: unknown, cast: string): string {
    this.list.push(v);
    return `$${this.list.length}::${cast}`;
  }
  /** `AND <col> = ANY(orgs)` for a bound user; nothing for '*'. */
  orgs(col: string, orgs: Orgs): string {
    return orgs === '*' ? '' : ` AND ${col} = ANY(${this.add(orgs, 'varchar[]')})`;
  }
}

const classNames = (c: DeadlineClass) => RESOURCES.filter((r) => r.deadline === c).map((r) => r.name);

/**
 * The instant by which a receipt row `r` (resource, business_at, business_day) of a record that
 * arrived on `day` had to arrive: realtime REALTIME_S after its business time, 2h two hours after
 * it (from its day's end when it is known only to the day), T+0 the end of its business day, T+1 the end of the day after. NULL without a business time
 * (docs/data-set.md "Business time": such a record has no lateness). For T+0 and T+1 the local days
 * around `day` are enough: a business day before the day before `day` is late whatever happened.
 */
function deadlineSql(p: Params, day: string, timeZone: string): string {
  const start = (d: string) => p.add(dayBounds(d, timeZone).from, 'timestamptz');
  const yday = addDays(day, -1);
  const yd = p.add(yday, 'varchar');
  const td = p.add(day, 'varchar');
  const [ydayStart, dayStart, dayEnd, nextEnd] = [start(yday), start(day), start(addDays(day, 1)), start(addDays(day, 2))];
  // A business time at local midnight is one known only to its day (a date): counted from the day's end,
  // as the pipeline's lateness and the evaluation page count it (docs/data-set.md "Business time").
  // Only the day before and the day itself matter: an older day's record arriving on `day` is late either way.
  const from = `CASE WHEN r.business_day = ${yd} AND r.business_at = ${ydayStart} THEN ${dayStart}
                     WHEN r.business_day = ${td} AND r.business_at = ${dayStart} THEN ${dayEnd} ELSE r.business_at END`;
  return `CASE WHEN r.business_at IS NULL THEN NULL
    WHEN r.resource = ANY(${p.add(classNames('realtime'), 'varchar[]')}) THEN ${from} + ${p.add(REALTIME_S, 'integer')} * interval '1 second'
    WHEN r.resource = ANY(${p.add(classNames('2h'), 'varchar[]')}) THEN ${from} + interval '2 hours'
    WHEN r.resource = ANY(${p.add(classNames('T+0'), 'varchar[]')}) THEN
      CASE WHEN r.business_day < ${yd} THEN ${ydayStart} WHEN r.business_day = ${yd} THEN ${dayStart} WHEN r.business_day = ${td} THEN ${dayEnd} ELSE ${nextEnd} END
    ELSE CASE WHEN r.business_day < ${yd} THEN ${dayStart} WHEN r.business_day = ${yd} THEN ${dayEnd} ELSE ${nextEnd} END END`;
}

// ---- counts per organisation and resource over a range -------------------------------------------

const ArrivalRow = z.object({ resource: z.string(), org_code: z.string(), received: n, held: n, timed: n, timely: n });
const CountRow = z.object({ resource: z.string(), org_code: z.string(), n });

interface DayCounts {
  received: number;
  held: number;
  rejected: number;
  sent: number;
  failed: number;
  timely: number;
  timed: number;
}
const zero = (): DayCounts => ({ received: 0, held: 0, rejected: 0, sent: 0, failed: 0, timely: 0, timed: 0 });
const key = (org: string, resource: string) => `${org}\u0000${resource}`;

async function destinationNames(db: Db): Promise<string[]> {
  return z
    .array(z.object({ name: z.string() }))
    .parse((await db.query('SELECT name FROM uplink_destination ORDER BY name')).rows)
    .map((r) => r.name);
}

/**
 * The counts of one local day (or of today until `to`), per organisation and resource:
 * - received: records whose current version arrived in the range (record_receipt.updated_at, the
 *   index record_receipt_held on (state, updated_at)); held: of those, held now;
 * - timely / timed: of those with a business time, how many arrived before their deadline;
 * - rejected: records refused in the range (ingest_rejection_time);
 * - sent: outbox rows delivered in the range (outbox_sent);
 * - failed: outbox rows that became dead letters in the range and are dead still (outbox_dead).
 * Test-mode records are never counted.
 */
async function dayCounts(db: Db, day: string, to: Date, s: Scope): Promise<Map<string, DayCounts>> {
  const from = dayBounds(day, s.timeZone).from;
  const dests = await destinationNames(db);
  const a = new Params();
  const dl = deadlineSql(a, day, s.timeZone);
  const arrivals = db.query(
    `SELECT x.resource, x.org_code, count(*) AS received,
            sum(CASE WHEN x.state = 'held' THEN 1 ELSE 0 END) AS held,
            sum(CASE WHEN x.dl IS NULL THEN 0 ELSE 1 END) AS timed,
            sum(CASE WHEN x.updated_at < x.dl THEN 1 ELSE 0 END) AS timely
       FROM (SELECT r.resource, r.org_code, r.state, r.updated_at, ${dl} AS dl
               FROM record_receipt r
              WHERE r.state IN ('stored', 'held', 'retired') AND r.updated_at >= ${a.add(from, 'timestamptz')} AND r.updated_at < ${a.add(to, 'timestamptz')}
                AND r.test_mode = false${a.orgs('r.org_code', s.orgs)}) x
      GROUP BY x.resource, x.org_code`,
    a.list,
  );
  const r = new Params();
  const rejected = db.query(
    `SELECT resource, coalesce(org_code, '-') AS org_code, count(*) AS n FROM ingest_rejection
      WHERE received_at >= ${r.add(from, 'timestamptz')} AND received_at < ${r.add(to, 'timestamptz')} AND test_mode = false${r.orgs('org_code', s.orgs)}
      GROUP BY resource, coalesce(org_code, '-')`,
    r.list,
  );
  const t = new Params();
  const sent = db.query(
    `SELECT resource, org_code, count(*) AS n FROM outbox
      WHERE sent_at >= ${t.add(from, 'timestamptz')} AND sent_at < ${t.add(to, 'timestamptz')} AND test_mode = false${t.orgs('org_code', s.orgs)}
      GROUP BY resource, org_code`,
    t.list,
  );
  const f = new Params();
  const failed = db.query(
    `SELECT resource, org_code, count(*) AS n FROM outbox
      WHERE destination = ANY(${f.add(dests, 'varchar[]')}) AND state = 'dead'
        AND dead_at >= ${f.add(from, 'timestamptz')} AND dead_at < ${f.add(to, 'timestamptz')} AND test_mode = false${f.orgs('org_code', s.orgs)}
      GROUP BY resource, org_code`,
    f.list,
  );
  const out = new Map<string, DayCounts>();
  const at = (org: string, resource: string) => {
    let c = out.get(key(org, resource));
    if (!c) out.set(key(org, resource), (c = zero()));
    return c;
  };
  for (const x of z.array(ArrivalRow).parse((await arrivals).rows))
    Object.assign(at(x.org_code, x.resource), { received: x.received, held: x.held, timed: x.timed, timely: x.timely });
  for (const x of z.array(CountRow).parse((await rejected).rows)) at(x.org_code, x.resource).rejected = x.n;
  for (const x of z.array(CountRow).parse((await sent).rows)) at(x.org_code, x.resource).sent = x.n;
  for (const x of z.array(CountRow).parse((await failed).rows)) at(x.org_code, x.resource).failed = x.n;
  return out;
}

function byResource(counts: Map<string, DayCounts>): Map<string, DayCounts> {
  const out = new Map<string, DayCounts>();
  for (const [k, c] of counts) {
    const resource = k.slice(k.indexOf('\u0000') + 1);
    const t = out.get(resource) ?? zero();
    for (const f of Object.keys(t) as Array<keyof DayCounts>) t[f] += c[f];
    out.set(resource, t);
  }
  return out;
}

// ---- the dashboard ----------------------------------------------------------------------------------

export interface Share {
  /** Within the deadline. */
  timely: number;
  /** Counted: with a business time (arrival); delivered, or past their deadline undelivered (delivery). */
  of: number;
}

export interface ResourceFigures extends DayCounts {
  resource: string;
  title: string;
  deadline: DeadlineClass;
  /** Outbox rows waiting now (every platform). */
  queued: number;
  /** Age in seconds of the oldest waiting row; null when none waits. */
  lagS: number | null;
  /** Arrived today without any business time: no lateness (not in `timed`). */
  untimed: number;
  /** Per platform: today's arrivals delivered within their deadline. */
  delivery: Record<string, Share>;
}

export interface TrendDay {
  day: string;
  /** Today, counted now (not yet in console_day_figure). */
  live: boolean;
  totals: DayCounts;
  /** Records received, per resource. */
  received: Record<string, number>;
}

export interface Dashboard {
  day: string;
  destinations: string[];
  resources: ResourceFigures[];
  totals: ResourceFigures;
  trend: TrendDay[];
}

const QueueRow = z.object({ destination: z.string(), resource: z.string(), pending: n, oldest: z.coerce.number().nullable() });
const DeliveryRow = z.object({ destination: z.string(), resource: z.string(), due: n, timely: n });

async function queue(db: Db, dests: string[], orgs: Orgs): Promise<z.infer<typeof QueueRow>[]> {
  const p = new Params();
  const res = await db.query(
    `SELECT destination, resource, count(*) AS pending, extract(epoch FROM (now() - min(created_at))) AS oldest
       FROM outbox WHERE destination = ANY(${p.add(dests, 'varchar[]')}) AND state = 'pending' AND test_mode = false${p.orgs('org_code', orgs)}
      GROUP BY destination, resource`,
    p.list,
  );
  return z.array(QueueRow).parse(res.rows);
}

/**
 * Today's arrivals delivered in time, per platform and resource: each receipt row of today joined
 * to its version's outbox row (the index outbox_key). Counted: rows delivered, and rows not
 * delivered whose deadline has passed; rows still in time to be delivered are not counted yet.
 * Skipped and superseded rows (a platform that does not take the resource, a version replaced
 * while held) are none of a platform's business.
 */
async function deliveryShares(db: Db, day: string, to: Date, dests: string[], s: Scope): Promise<z.infer<typeof DeliveryRow>[]> {
  const p = new Params();
  const dl = deadlineSql(p, day, s.timeZone);
  const from = dayBounds(day, s.timeZone).from;
  const res = await db.query(
    `SELECT o.destination, x.resource, count(*) AS due, sum(CASE WHEN o.sent_at < x.dl THEN 1 ELSE 0 END) AS timely
       FROM (SELECT r.resource, r.org_code, r.record_id, r.version, ${dl} AS dl
               FROM record_receipt r
              WHERE r.state IN ('stored', 'held', 'retired') AND r.updated_at >= ${p.add(from, 'timestamptz')} AND r.updated_at < ${p.add(to, 'timestamptz')}
                AND r.test_mode = false${p.orgs('r.org_code', s.orgs)}) x
       JOIN outbox o ON o.destination = ANY(${p.add(dests, 'varchar[]')}) AND o.resource = x.resource AND o.org_code = x.org_code
                    AND o.record_id = x.record_id AND o.version = x.version
      WHERE x.dl IS NOT NULL AND o.state NOT IN ('skipped', 'superseded') AND (o.sent_at IS NOT NULL OR x.dl < ${p.add(to, 'timestamptz')})
      GROUP BY o.destination, x.resource`,
    p.list,
  );
  return z.array(DeliveryRow).parse(res.rows);
}

const MarkerRow = z.object({ fig_day: z.string() });
const FigureRow = z.object({
  fig_day: z.string(),
  resource: z.string(),
  received: n,
  held: n,
  rejected: n,
  sent: n,
  failed: n,
  timely: n,
  timed: n,
});

/**
 * Counts the finished days of the trend window that are not counted yet, every organisation at
 * once, into console_day_figure. A day is counted once, the first time a page needs it after it
 * ended: records that change later move nothing. Two pages counting the same day at once: the
 * day's marker row (org '*', resource '*') is inserted first, and the second one's insert fails on
 * the key and is dropped.
 */
export async function countFinishedDays(db: Db, s: Omit<Scope, 'orgs'>): Promise<string[]> {
  const today = localDay(s.now ?? new Date(), s.timeZone);
  const first = addDays(today, -(TREND_DAYS - 1));
  const have = new Set(
    z
      .array(MarkerRow)
      .parse(
        (await db.query(`SELECT fig_day FROM console_day_figure WHERE fig_day >= $1 AND fig_day < $2 AND org_code = '*' AND resource = '*'`, [first, today]))
          .rows,
      )
      .map((r) => r.fig_day),
  );
  const counted: string[] = [];
  for (let d = first; d < today; d = addDays(d, 1)) {
    if (have.has(d)) continue;
    const counts = await dayCounts(db, d, dayBounds(addDays(d, 1), s.timeZone).from, { ...s, orgs: '*' });
    const client = await db.connect();
    try {
      await client.query('BEGIN');
      await client.query(`INSERT INTO console_day_figure (fig_day, org_code, resource) VALUES ($1, '*', '*')`, [d]);
      const rows = [...counts].filter(([, c]) => Object.values(c).some((v) => v > 0));
      for (let i = 0; i < rows.length; i += 500) {
        const params: unknown[] = [];
        const values = rows.slice(i, i + 500).map(([k, c]) => {
          const [org, resource] = k.split('\u0000') as [string, string];
          params.push(d, org, resource, c.received, c.held, c.rejected, c.sent, c.failed, c.timely, c.timed);
          const b = params.length - 10;
          return `(${Array.from({ length: 10 }, (_, j) => `$${b + j + 1}`).join(', ')})`;
        });
        await client.query(
          `INSERT INTO console_day_figure (fig_day, org_code, resource, received, held, rejected, sent, failed, timely, timed) VALUES ${values.join(', ')}`,
          params,
        );
      }
      await client.query('COMMIT');
      counted.push(d);
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      // Another page counted the day meanwhile: its figures stand.
      if ((err as { code?: string }).code !== '23505') throw err;
    } finally {
      client.release();
    }
  }
  return counted;
}

async function trend(db: Db, s: Scope, today: string, live: Map<string, DayCounts>): Promise<TrendDay[]> {
  await countFinishedDays(db, s);
  const first = addDays(today, -(TREND_DAYS - 1));
  const p = new Params();
  const res = await db.query(
    `SELECT fig_day, resource, sum(received) AS received, sum(held) AS held, sum(rejected) AS rejected, sum(sent) AS sent,
            sum(failed) AS failed, sum(timely) AS timely, sum(timed) AS timed
       FROM console_day_figure
      WHERE fig_day >= ${p.add(first, 'varchar')} AND fig_day < ${p.add(today, 'varchar')} AND org_code <> '*'${p.orgs('org_code', s.orgs)}
      GROUP BY fig_day, resource`,
    p.list,
  );
  const days = new Map<string, TrendDay>();
  for (let d = first; d <= today; d = addDays(d, 1)) days.set(d, { day: d, live: d === today, totals: zero(), received: {} });
  const add = (t: TrendDay, resource: string, c: DayCounts) => {
    for (const f of Object.keys(t.totals) as Array<keyof DayCounts>) t.totals[f] += c[f];
    t.received[resource] = (t.received[resource] ?? 0) + c.received;
  };
  for (const r of z.array(FigureRow).parse(res.rows)) add(days.get(r.fig_day)!, r.resource, r);
  for (const [resource, c] of live) add(days.get(today)!, resource, c);
  return [...days.values()];
}

/**
 * The delivery shares are the dashboard's one per-row join (every arrival of today to its outbox
 * row): about 2.5 s at 60 000 arrivals so far today (docs/console.md "Cost"). They move slowly, so
 * each replica keeps them for SHARES_TTL_MS per day, scope and platform list: the pages reloading
 * every minute cost one join a minute, not one per viewer.
 */
export const SHARES_TTL_MS = 60_000;
const sharesMemo = new Map<string, { at: number; rows: Promise<z.infer<typeof DeliveryRow>[]> }>();
function memoShares(db: Db, day: string, now: Date, dests: string[], s: Scope): Promise<z.infer<typeof DeliveryRow>[]> {
  const k = JSON.stringify([day, s.orgs, dests, s.timeZone]);
  const hit = sharesMemo.get(k);
  if (hit && Date.now() - hit.at < SHARES_TTL_MS) return hit.rows;
  for (const [key, v] of sharesMemo) if (Date.now() - v.at >= SHARES_TTL_MS) sharesMemo.delete(key);
  const rows = deliveryShares(db, day, now, dests, s);
  sharesMemo.set(k, { at: Date.now(), rows });
  rows.catch(() => sharesMemo.delete(k));
  return rows;
}

export async function dashboard(db: Db, s: Scope): Promise<Dashboard> {
  const now = s.now ?? new Date();
  const day = localDay(now, s.timeZone);
  const dests = await destinationNames(db);
  const [counts, waiting, shares] = await Promise.all([dayCounts(db, day, now, s), queue(db, dests, s.orgs), memoShares(db, day, now, dests, s)]);
  const per = byResource(counts);
  const figures = RESOURCES.map((r): ResourceFigures => {
    const c = per.get(r.name) ?? zero();
    const q = waiting.filter((w) => w.resource === r.name);
    const ages = q.map((w) => w.oldest).filter((x): x is number => x !== null);
    return {
      resource: r.name,
      title: r.title,
      deadline: r.deadline,
      ...c,
      queued: q.reduce((t, w) => t + w.pending, 0),
      lagS: ages.length ? Math.max(0, Math.round(Math.max(...ages))) : null,
      untimed: c.received - c.timed,
      delivery: Object.fromEntries(
        dests.map((d) => {
          const x = shares.find((v) => v.destination === d && v.resource === r.name);
          return [d, { timely: x?.timely ?? 0, of: x?.due ?? 0 }];
        }),
      ),
    };
  });
  const totals: ResourceFigures = {
    resource: '*',
    title: '合计',
    deadline: 'realtime',
    ...zero(),
    queued: 0,
    lagS: null,
    untimed: 0,
    delivery: Object.fromEntries(dests.map((d) => [d, { timely: 0, of: 0 }])),
  };
  for (const f of figures) {
    for (const k of ['received', 'held', 'rejected', 'sent', 'failed', 'timely', 'timed', 'queued', 'untimed'] as const) totals[k] += f[k];
    if (f.lagS !== null) totals.lagS = Math.max(totals.lagS ?? 0, f.lagS);
    for (const d of dests) {
      totals.delivery[d]!.timely += f.delivery[d]!.timely;
      totals.delivery[d]!.of += f.delivery[d]!.of;
    }
  }
  return { day, destinations: dests, resources: figures, totals, trend: await trend(db, s, day, per) };
}

// ---- data quality -----------------------------------------------------------------------------------

export interface RuleCount {
  resource: string;
  field: string;
  rule: string;
  n: number;
}

export interface Rejections {
  /** Records refused in the range (exact). */
  total: number;
  byResource: Array<{ resource: string; n: number }>;
  /** Issues by resource, field and rule, read from the newest `sampled` rejections of the range. */
  byRule: RuleCount[];
  sampled: number;
}

export interface RejectionExample {
  at: Date;
  resource: string;
  orgCode: string | null;
  id: string | null;
  /** Masked again here whatever was stored: a personal field's value never shows in clear. */
  issues: Array<{ field: string; rule: string; message: string; value: string | null }>;
}

/** Rejections read per range to count issues by rule; past it, the page says the counts are of the newest ones. */
export const RULE_SAMPLE = 20_000;

const IssueSchema = z.object({ field: z.string(), rule: z.string(), message: z.string().default(''), value: z.unknown().optional() });
const RejectionRow = z.object({
  received_at: instant,
  resource: z.string(),
  org_code: z.string().nullable(),
  record_id: z.string().nullable(),
  issues: z.array(IssueSchema).catch([]),
});

/** A personal field's value masked by its kind (shared/ingest/mask.ts); a message of such a field is not shown (it could quote the value). */
function maskIssue(resource: string, i: z.infer<typeof IssueSchema>): RejectionExample['issues'][number] {
  const personal = resources[resource]?.fields[i.field]?.personal;
  const v = i.value === undefined || i.value === null ? null : mask(personal, typeof i.value === 'string' ? i.value : JSON.stringify(i.value));
  return {
    field: i.field,
    rule: i.rule,
    message: personal ? '（个人信息字段，不显示原因原文）' : maskDigits(i.message),
    value: v === null ? null : String(v).slice(0, 80),
  };
}

/** Long digit runs (ID numbers, phones) in free text, masked as an ID number is. */
export function maskDigits(text: string): string {
  return text.replace(/\d{7,}[\dXx]?/g, (m) => String(mask('idno', m)));
}

export async function rejections(db: Db, s: Scope, from: Date, to: Date): Promise<Rejections> {
  const p = new Params();
  const where = `received_at >= ${p.add(from, 'timestamptz')} AND received_at < ${p.add(to, 'timestamptz')} AND test_mode = false${p.orgs('org_code', s.orgs)}`;
  const [counts, sample] = await Promise.all([
    db.query(`SELECT resource, count(*) AS n FROM ingest_rejection WHERE ${where} GROUP BY resource ORDER BY count(*) DESC, resource`, p.list),
    db.query(
      `SELECT received_at, resource, org_code, record_id, issues FROM ingest_rejection WHERE ${where} ORDER BY received_at DESC LIMIT ${RULE_SAMPLE}`,
      p.list,
    ),
  ]);
  const byResource = z.array(z.object({ resource: z.string(), n })).parse(counts.rows);
  const rows = z.array(RejectionRow).parse(sample.rows);
  const rules = new Map<string, RuleCount>();
  for (const r of rows) {
    for (const i of new Map(r.issues.map((x) => [`${x.field}\u0000${x.rule}`, x])).values()) {
      const k = `${r.resource}\u0000${i.field}\u0000${i.rule}`;
      const c = rules.get(k) ?? { resource: r.resource, field: i.field, rule: i.rule, n: 0 };
      c.n++;
      rules.set(k, c);
    }
  }
  return {
    total: byResource.reduce((t, r) => t + r.n, 0),
    byResource,
    byRule: [...rules.values()].sort((a, b) => b.n - a.n || a.resource.localeCompare(b.resource) || a.field.localeCompare(b.field)),
    sampled: rows.length,
  };
}

export async function rejectionExamples(db: Db, s: Scope, since: Date, limit = 20): Promise<RejectionExample[]> {
  const p = new Params();
  const res = await db.query(
    `SELECT received_at, resource, org_code, record_id, issues FROM ingest_rejection
      WHERE received_at >= ${p.add(since, 'timestamptz')} AND test_mode = false${p.orgs('org_code', s.orgs)}
      ORDER BY received_at DESC LIMIT ${p.add(limit, 'integer')}`,
    p.list,
  );
  return z
    .array(RejectionRow)
    .parse(res.rows)
    .map((r) => ({ at: r.received_at, resource: r.resource, orgCode: r.org_code, id: r.record_id, issues: r.issues.map((i) => maskIssue(r.resource, i)) }));
}

export interface HoldGroup {
  kind: HoldKind;
  resource: string;
  /** parent: the parent's resource; mapping: the code domain; rule: the field the rule names. */
  target: string;
  records: number;
  oldest: Date;
}

/** Records held now, by kind of hold (shared/holds), held resource and what they wait for. */
export async function holdGroups(db: Db, orgs: Orgs): Promise<HoldGroup[]> {
  const p = new Params();
  const res = await db.query(
    `SELECT kind, resource, target, count(DISTINCT org_code || '|' || record_id) AS records, min(since) AS oldest
       FROM record_hold WHERE true${p.orgs('org_code', orgs)}
      GROUP BY kind, resource, target ORDER BY kind, count(*) DESC, resource, target`,
    p.list,
  );
  return z.array(z.object({ kind: HoldKind, resource: z.string(), target: z.string(), records: n, oldest: instant })).parse(res.rows);
}

// ---- delivery ---------------------------------------------------------------------------------------

export interface DestinationFigures {
  name: string;
  kind: string;
  enabled: boolean;
  /** Space-separated resources it takes; null: all. */
  resources: string | null;
  acceptsTest: boolean;
  circuit: { state: string; failures: number; retryAt: Date | null; lastError: string | null } | null;
  queued: number;
  /** Of the queued rows, those tried already (waiting for their backoff). */
  retrying: number;
  lagS: number | null;
  dead: number;
  sentToday: number;
  failedToday: number;
}

const DestRow = z.object({
  name: z.string(),
  kind: z.string(),
  enabled: z.boolean(),
  resources: z.string().nullable(),
  accepts_test: z.boolean(),
  c_state: z.string().nullable(),
  failures: z.number().int().nullable(),
  retry_at: instant.nullable(),
  last_error: z.string().nullable(),
});

export async function destinationFigures(db: Db, s: Scope): Promise<DestinationFigures[]> {
  const now = s.now ?? new Date();
  const from = dayBounds(localDay(now, s.timeZone), s.timeZone).from;
  const dests = z.array(DestRow).parse(
    (
      await db.query(
        `SELECT d.name, d.kind, d.enabled, d.resources, d.accepts_test, c.state AS c_state, c.failures, c.retry_at, c.last_error
           FROM uplink_destination d LEFT JOIN uplink_circuit c ON c.destination = d.name ORDER BY d.name`,
      )
    ).rows,
  );
  const names = dests.map((d) => d.name);
  const p = new Params();
  const pendingSql = `SELECT destination, count(*) AS n, sum(CASE WHEN attempts > 0 THEN 1 ELSE 0 END) AS retrying,
            extract(epoch FROM (now() - min(created_at))) AS oldest
       FROM outbox WHERE destination = ANY(${p.add(names, 'varchar[]')}) AND state = 'pending' AND test_mode = false${p.orgs('org_code', s.orgs)}
      GROUP BY destination`;
  const q = new Params();
  const deadSql = `SELECT destination, count(*) AS n, sum(CASE WHEN dead_at >= ${q.add(from, 'timestamptz')} THEN 1 ELSE 0 END) AS today
       FROM outbox WHERE destination = ANY(${q.add(names, 'varchar[]')}) AND state = 'dead' AND test_mode = false${q.orgs('org_code', s.orgs)}
      GROUP BY destination`;
  const t = new Params();
  const sentSql = `SELECT destination, count(*) AS n FROM outbox
      WHERE sent_at >= ${t.add(from, 'timestamptz')} AND test_mode = false${t.orgs('org_code', s.orgs)} GROUP BY destination`;
  const [pending, dead, sent] = await Promise.all([db.query(pendingSql, p.list), db.query(deadSql, q.list), db.query(sentSql, t.list)]);
  const P = z.array(z.object({ destination: z.string(), n, retrying: n, oldest: z.coerce.number().nullable() })).parse(pending.rows);
  const D = z.array(z.object({ destination: z.string(), n, today: n })).parse(dead.rows);
  const S = z.array(z.object({ destination: z.string(), n })).parse(sent.rows);
  return dests.map((d) => {
    const pd = P.find((x) => x.destination === d.name);
    const dd = D.find((x) => x.destination === d.name);
    return {
      name: d.name,
      kind: d.kind,
      enabled: d.enabled,
      resources: d.resources,
      acceptsTest: d.accepts_test,
      circuit:
        d.c_state === null ? null : { state: d.c_state, failures: d.failures ?? 0, retryAt: d.retry_at, lastError: d.last_error && maskDigits(d.last_error) },
      queued: pd?.n ?? 0,
      retrying: pd?.retrying ?? 0,
      lagS: pd?.oldest === null || pd?.oldest === undefined ? null : Math.max(0, Math.round(pd.oldest)),
      dead: dd?.n ?? 0,
      sentToday: S.find((x) => x.destination === d.name)?.n ?? 0,
      failedToday: dd?.today ?? 0,
    };
  });
}

/** A dead letter as the delivery page lists it: push's DeadLetter, its reason's long digit runs masked. */
export type DeadLetterRow = DeadLetter;

/** The newest dead letters (outbox_dead), at most `limit`. */
export async function deadLetterRows(db: Db, orgs: Orgs, limit = 100): Promise<DeadLetterRow[]> {
  const names = await destinationNames(db);
  const p = new Params();
  const res = await db.query(
    `SELECT outbox_id, destination, resource, org_code, record_id, version, attempts, last_error, dead_at FROM outbox
      WHERE destination = ANY(${p.add(names, 'varchar[]')}) AND state = 'dead'${p.orgs('org_code', orgs)}
      ORDER BY dead_at DESC, outbox_id DESC LIMIT ${p.add(limit, 'integer')}`,
    p.list,
  );
  return z
    .array(
      z.object({
        outbox_id: z.coerce.string(),
        destination: z.string(),
        resource: z.string(),
        org_code: z.string(),
        record_id: z.string(),
        version: z.number().int(),
        attempts: z.number().int(),
        last_error: z.string().nullable(),
        dead_at: instant.nullable(),
      }),
    )
    .parse(res.rows)
    .map((r) => ({
      outboxId: r.outbox_id,
      destination: r.destination,
      resource: r.resource,
      orgCode: r.org_code,
      id: r.record_id,
      version: r.version,
      attempts: r.attempts,
      reason: r.last_error && maskDigits(r.last_error),
      deadAt: r.dead_at,
    }));
}

/** One dead letter, to check a replay against the user's orgs. */
export async function deadLetter(
  db: Db,
  outboxId: string,
): Promise<{ destination: string; orgCode: string; resource: string; id: string; version: number } | null> {
  const res = await db.query(`SELECT destination, org_code, resource, record_id, version FROM outbox WHERE outbox_id = $1::bigint AND state = 'dead'`, [
    outboxId,
  ]);
  const r = z
    .array(z.object({ destination: z.string(), org_code: z.string(), resource: z.string(), record_id: z.string(), version: z.number().int() }))
    .parse(res.rows)[0];
  return r ? { destination: r.destination, orgCode: r.org_code, resource: r.resource, id: r.record_id, version: r.version } : null;
}

export interface DayCloseResult {
  orgCode: string;
  day: string;
  kind: string;
  status: string;
  trigger: string;
  runs: number;
  gapCount: number;
  /** The version of its dailySummary the platforms were sent last. */
  summaryVersion: number;
  /**
   * Records of its org and day written (received, updated, retired) or released from a hold since the close started: a done
   * T+1 of the catch-up window is re-closed for them at the next tick (docs/day-close.md "Late records").
   */
  lateRecords: number;
  /**
   * The day's records held back from the platforms when the close ran, by kind of hold (its summary's
   * `held`, docs/day-close.md "Held records"); null for a summary from before it carried them.
   */
  held: z.infer<typeof HeldAtClose> | null;
  finishedAt: Date | null;
  error: string | null;
}

/**
 * The closes of the last `days` local days (day_close_day), without their forwarded records. The late
 * records — received, or released from a hold, after the close — are counted on record_receipt's
 * (org_code, business_day, updated_at) and (org_code, business_day, released_at) indexes
 * (infra/db/0970_receipt_day_updated.sql, 0992_receipt_released.sql): only those past the close are read.
 */
/** What the console shows of a close's held records (shared/dayclose/figures.ts HeldFigures, as stored in its summary). */
const HeldAtClose = z.object({ records: z.number().int(), byKind: z.object({ mapping: z.number().int(), rule: z.number().int(), parent: z.number().int() }) });

export async function dayCloses(db: Db, s: Scope, days = 7): Promise<DayCloseResult[]> {
  const today = localDay(s.now ?? new Date(), s.timeZone);
  const p = new Params();
  const res = await db.query(
    `SELECT c.org_code, c.business_day, c.kind, c.status, c.trigger, c.runs, c.gap_count, c.summary_version, c.finished_at, c.error,
            c.summary -> 'held' AS held,
            (SELECT count(*) FROM record_receipt r
              WHERE r.org_code = c.org_code AND r.business_day = c.business_day AND r.updated_at > c.started_at AND r.test_mode = false)
          + (SELECT count(*) FROM record_receipt r
              WHERE r.org_code = c.org_code AND r.business_day = c.business_day AND r.released_at > c.started_at
                AND r.updated_at <= c.started_at AND r.test_mode = false) AS late
       FROM day_close c
      WHERE c.business_day >= ${p.add(addDays(today, -(days - 1)), 'varchar')} AND c.business_day <= ${p.add(today, 'varchar')} AND c.test_mode = false${p.orgs('c.org_code', s.orgs)}
      ORDER BY c.business_day DESC, c.org_code, c.kind LIMIT 500`,
    p.list,
  );
  return z
    .array(
      z.object({
        org_code: z.string(),
        business_day: z.string(),
        kind: z.string(),
        status: z.string(),
        trigger: z.string(),
        runs: z.number().int(),
        gap_count: z.number().int(),
        summary_version: z.number().int(),
        late: z.coerce.number().int(),
        held: HeldAtClose.nullable().catch(null),
        finished_at: instant.nullable(),
        error: z.string().nullable(),
      }),
    )
    .parse(res.rows)
    .map((r) => ({
      orgCode: r.org_code,
      day: r.business_day,
      kind: r.kind,
      status: r.status,
      trigger: r.trigger,
      runs: r.runs,
      gapCount: r.gap_count,
      summaryVersion: r.summary_version,
      lateRecords: r.late,
      held: r.held,
      finishedAt: r.finished_at,
      error: r.error && maskDigits(r.error),
    }));
}

export interface AlertEvent {
  id: string;
  destination: string;
  kind: string;
  pending: number;
  oldestAgeS: number | null;
  message: string;
  at: Date;
  channels: string | null;
  deliveredAt: Date | null;
  lastError: string | null;
}

/**
 * The newest backlog alerts raised or cleared (shared/alerts) of the platforms, by the primary key:
 * not the other alerts the same table keeps (an overdue case's, kind 'overdue'; a backup's,
 * destination 'backup'), which have their own pages and would push the platforms' out of the list.
 */
export async function alertEvents(db: Db, limit = 30): Promise<AlertEvent[]> {
  const res = await db.query(
    `SELECT event_id, destination, kind, pending, oldest_age_s, message, created_at, channels, delivered_at, last_error
       FROM alert_event
      WHERE kind IN ('raise', 'clear') AND destination IN (SELECT name FROM uplink_destination)
      ORDER BY event_id DESC LIMIT $1`,
    [limit],
  );
  return z
    .array(
      z.object({
        event_id: z.coerce.string(),
        destination: z.string(),
        kind: z.string(),
        pending: z.number().int(),
        oldest_age_s: nn,
        message: z.string(),
        created_at: instant,
        channels: z.string().nullable(),
        delivered_at: instant.nullable(),
        last_error: z.string().nullable(),
      }),
    )
    .parse(res.rows)
    .map((r) => ({
      id: r.event_id,
      destination: r.destination,
      kind: r.kind,
      pending: r.pending,
      oldestAgeS: r.oldest_age_s,
      message: r.message,
      at: r.created_at,
      channels: r.channels,
      deliveredAt: r.delivered_at,
      lastError: r.last_error,
    }));
}

// ---- settings (read-only) ---------------------------------------------------------------------------

export interface PlatformSetting {
  name: string;
  kind: string;
  enabled: boolean;
  resources: string | null;
  acceptsTest: boolean;
  /** The URL a configuration bundle gave (config_active 'platforms'); null: only the push function's settings know it. */
  url: string | null;
  /** The last batch the platform acknowledged (uplink_batch_dest). */
  lastSentAt: Date | null;
  lastReport: { at: Date; ok: boolean } | null;
}

export interface ScheduleSetting {
  function: string;
  /**
   * The cron in force at the connector, in the hospital's zone, as the config function's last pass
   * found or wrote it (schedule_state, docs/config-bundles.md "Schedules"); null: no pass yet.
   */
  cron: string | null;
  /** Who set it: a configuration bundle, or stack.yml. */
  source: 'bundle' | 'stack' | null;
  /** The bundle's own expression for this function (config_active 'schedules'), in force or not. */
  requested: string | null;
  bundleVersion: number | null;
  /** Why the bundle's expression is not in force. */
  problem: string | null;
  checkedAt: Date | null;
  lastRunAt: Date | null;
}

export interface SettingsFacts {
  platforms: PlatformSetting[];
  schedules: ScheduleSetting[];
  /** The configuration bundle version in force (the last step of config_bundle, as GET /bundles/current), if any. */
  bundleVersion: number | null;
  /** The hospital port of each function, as the config function last read them at the gateway (gateway_port). */
  ports: Array<{ function: string; port: number; root: boolean; checkedAt: Date }>;
  /** The latest release a bundle announced (config_active 'release'), and the bundle's version. */
  release: { version: string; url: string | null; notes: string | null; bundleVersion: number } | null;
}

const BundlePlatform = z.object({ name: z.string(), url: z.string() }).passthrough();
const BundleSchedule = z.object({ function: z.string(), schedule: z.string() }).passthrough();

const BundleRelease = z.object({ version: z.string(), url: z.string().optional(), notes: z.string().optional() }).passthrough();

function releaseOf(a: { version: number; content: string } | undefined): SettingsFacts['release'] {
  if (!a) return null;
  try {
    const r = BundleRelease.safeParse(JSON.parse(a.content));
    return r.success ? { version: r.data.version, url: r.data.url ?? null, notes: r.data.notes ?? null, bundleVersion: a.version } : null;
  } catch {
    return null;
  }
}

/** The scheduled functions whose last run the database records, and where. */
const RUNS: Array<{ fn: string; sql: string }> = [
  { fn: 'push', sql: `SELECT max(started_at) AS t FROM push_run WHERE trigger = 'cron'` },
  { fn: 'day-close', sql: `SELECT max(finished_at) AS t FROM day_close WHERE trigger = 'cron'` },
  { fn: 'backup', sql: `SELECT max(finished_at) AS t FROM backup_archive WHERE status = 'good'` },
];

/** The rows settingsFacts reads. */
const AreaRow = z.object({ area: z.string(), version: z.coerce.number().int(), content: z.string() });
const LastReportRow = z.object({ destination: z.string(), reported_at: instant.nullable(), ok: z.boolean().nullable() });
const LastRunRow = z.object({ t: instant.nullable() });
const ScheduleStateRow = z.object({
  function_name: z.string(),
  schedule: z.string().nullable(),
  source: z.enum(['bundle', 'stack']),
  problem: z.string().nullable(),
  checked_at: instant,
});
const DestinationRow = DestRow.pick({ name: true, kind: true, enabled: true, resources: true, accepts_test: true }).extend({ last_sent: instant.nullable() });
const PortRow = z.object({ function_name: z.string(), port: z.coerce.number().int(), root: z.boolean(), checked_at: instant });

/**
 * What the database knows of the front's settings: the platforms (uplink_destination, their last
 * acknowledged batch, the last self-report), the platform URLs a configuration bundle gave, the
 * schedules in force (the config function's last pass, docs/config-bundles.md "Schedules") beside
 * those a bundle asked for, and the last scheduled runs.
 * Never a key or a secret: a bundle's platform carries a public key, which is not read here.
 */
export async function settingsFacts(db: Db): Promise<SettingsFacts> {
  const [dests, areas, step, reports, states, portRows, ...runs] = await Promise.all([
    db.query(
      `SELECT d.name, d.kind, d.enabled, d.resources, d.accepts_test,
              (SELECT max(b.answered_at) FROM uplink_batch b WHERE b.destination = d.name) AS last_sent
         FROM uplink_destination d ORDER BY d.name`,
    ),
    db.query(`SELECT area, version, content FROM config_active WHERE area IN ('platforms', 'schedules', 'release')`),
    // The version in force is the last step's (an apply's own, or the one a rollback returned to), as
    // GET /bundles/current reports it (docs/config-bundles.md §4): whichever areas it changed.
    db.query(`SELECT version FROM config_bundle ORDER BY seq DESC LIMIT 1`),
    // The last self-report per platform: one probe of front_report_dest each, not a scan of the reports.
    db.query(
      `SELECT d.name AS destination,
              (SELECT max(r.reported_at) FROM front_report r WHERE r.destination = d.name) AS reported_at,
              (SELECT r.ok FROM front_report r WHERE r.destination = d.name ORDER BY r.reported_at DESC LIMIT 1) AS ok
         FROM uplink_destination d`,
    ),
    db.query(`SELECT function_name, schedule, source, problem, checked_at FROM schedule_state`),
    db.query(`SELECT function_name, port, root, checked_at FROM gateway_port ORDER BY port, function_name`),
    ...RUNS.map((r) => db.query(r.sql)),
  ]);
  const area = new Map(
    z
      .array(AreaRow)
      .parse(areas.rows)
      .map((a) => [a.area, a]),
  );
  const platformUrls = new Map(parsedArea(area, 'platforms', BundlePlatform).map((p) => [p.name, p.url]));
  const cron = new Map(parsedArea(area, 'schedules', BundleSchedule).map((s) => [s.function, s.schedule]));
  const reportOf = new Map(
    z
      .array(LastReportRow)
      .parse(reports.rows)
      .flatMap((r) => (r.reported_at ? [[r.destination, { at: r.reported_at, ok: r.ok === true }] as const] : [])),
  );
  const lastRun = new Map(RUNS.map((r, i) => [r.fn, LastRunRow.parse(runs[i]!.rows[0] ?? { t: null }).t]));
  const state = new Map(
    z
      .array(ScheduleStateRow)
      .parse(states!.rows)
      .map((r) => [r.function_name, r]),
  );
  return {
    platforms: platformsOf(dests.rows, platformUrls, reportOf),
    schedules: schedulesOf(state, cron, lastRun, area.get('schedules')),
    bundleVersion: z.object({ version: z.coerce.number().int() }).optional().parse(step.rows[0])?.version ?? null,
    release: releaseOf(area.get('release')),
    ports: z
      .array(PortRow)
      .parse(portRows!.rows)
      .map((p) => ({ function: p.function_name, port: p.port, root: p.root, checkedAt: p.checked_at })),
  };
}

/** A bundle area's content as a list of `schema`; none when the bundle has no such area, or it is not such a list. */
function parsedArea<T>(area: Map<string, z.infer<typeof AreaRow>>, name: string, schema: z.ZodType<T>): T[] {
  const a = area.get(name);
  if (!a) return [];
  try {
    const r = z.array(schema).safeParse(JSON.parse(a.content));
    return r.success ? r.data : [];
  } catch {
    return [];
  }
}

/** The platforms (uplink_destination rows), each with the URL a bundle gave and its last self-report. */
function platformsOf(rows: unknown[], urls: Map<string, string>, reportOf: Map<string, NonNullable<PlatformSetting['lastReport']>>): PlatformSetting[] {
  return z
    .array(DestinationRow)
    .parse(rows)
    .map((d) => ({
      name: d.name,
      kind: d.kind,
      enabled: d.enabled,
      resources: d.resources,
      acceptsTest: d.accepts_test,
      url: urls.get(d.name) ?? null,
      lastSentAt: d.last_sent,
      lastReport: reportOf.get(d.name) ?? null,
    }));
}

/**
 * The schedule of each function that has a recorded run (RUNS), a state at the gateway, or a
 * bundle's expression (`schedules`, the bundle's area), in name order.
 */
function schedulesOf(
  state: Map<string, z.infer<typeof ScheduleStateRow>>,
  cron: Map<string, string>,
  lastRun: Map<string, Date | null>,
  schedules: z.infer<typeof AreaRow> | undefined,
): ScheduleSetting[] {
  const fns = [...new Set([...RUNS.map((r) => r.fn), ...state.keys(), ...cron.keys()])].sort();
  return fns.map((fn) => ({
    function: fn,
    cron: state.get(fn)?.schedule ?? null,
    source: state.get(fn)?.source ?? null,
    requested: cron.get(fn) ?? null,
    bundleVersion: cron.has(fn) ? (schedules?.version ?? null) : null,
    problem: state.get(fn)?.problem ?? null,
    checkedAt: state.get(fn)?.checked_at ?? null,
    lastRunAt: lastRun.get(fn) ?? null,
  }));
}
