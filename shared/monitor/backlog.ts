/**
 * The backlog and holds components of the monitoring port (docs/monitoring.md "Backlog and holds"),
 * computed by the monitor itself from the outbox at each request — not from the alerts the push
 * function raises after its runs, which a push function that hangs or keeps crashing never raises.
 *
 * - `backlog:<destination>`: the oldest pending row (not held, not dead) of each deadline class
 *   against its threshold, and whether anything was delivered to the destination lately. One
 *   statement per destination, bounded: it reads at most BACKLOG_SCAN pending rows, in the order of
 *   the index push claims them by (outbox_due: destination, state, next_attempt_at, outbox_id).
 * - `holds`: records held back (a parent not received, a code not mapped, a rule): how many were held
 *   within the last window, and the reasons most of them are held for — reason codes only
 *   (`mapping:sex/1`, `parent:emrPatientInfo`), never a record's id or a person's data.
 *
 * SQL for PostgreSQL 15 and openGauss 5.0 (docs/opengauss.md): no FILTER, no LATERAL, no integer
 * division; ages are taken against the request's `now` (a parameter), as the other components'.
 */
import type { Db } from '../db/index.js';
import type { Component } from './components.js';
import type { MonitorThresholds } from './config.js';

/** Pending rows read per destination at most: a count beyond it is shown as `10000+`. */
export const BACKLOG_SCAN = 10_000;

export interface BacklogFigures {
  destination: string;
  /** Pending rows, at most BACKLOG_SCAN (then `capped`). */
  pending: number;
  capped: boolean;
  /** Seconds since the oldest pending row of each class was stored (or released from a hold); null: none. */
  realtimeAgeS: number | null;
  twoHoursAgeS: number | null;
  dayAgeS: number | null;
  /** Seconds since the destination's last acknowledged batch (uplink_batch); null: never. */
  lastDeliveryAgeS: number | null;
  lastDeliveryAt: Date | null;
}

const ageOf = (v: string | number | null): number | null => (v === null ? null : Math.max(0, Math.round(Number(v))));

/**
 * A destination's pending rows by deadline class and its last delivery. A held row's wait is counted
 * from its release (`released_at`), as the backlog alert counts it (docs/day-close.md "Backlog alerts"):
 * time on hold is the holds component's, not transmission backlog.
 */
export async function backlogFigures(db: Db, destination: string, now: Date): Promise<BacklogFigures> {
  const r = await db.query<{
    pending: string;
    realtime: string | number | null;
    h2: string | number | null;
    day: string | number | null;
    last: Date | null;
  }>(
    `SELECT count(*) AS pending,
            extract(epoch FROM ($2::timestamptz - min(CASE WHEN p.deadline_class = 'realtime' THEN p.waits_from END))) AS realtime,
            extract(epoch FROM ($2::timestamptz - min(CASE WHEN p.deadline_class = '2h' THEN p.waits_from END))) AS h2,
            extract(epoch FROM ($2::timestamptz - min(CASE WHEN p.deadline_class NOT IN ('realtime', '2h') THEN p.waits_from END))) AS day,
            (SELECT max(b.answered_at) FROM uplink_batch b WHERE b.destination = $1) AS last
       FROM (SELECT o.deadline_class, coalesce(o.released_at, o.created_at) AS waits_from
               FROM outbox o
              WHERE o.destination = $1 AND o.state = 'pending'
              ORDER BY o.next_attempt_at, o.outbox_id
              LIMIT ${BACKLOG_SCAN}) p`,
    [destination, now.toISOString()],
  );
  const x = r.rows[0]!;
  const pending = Number(x.pending);
  return {
    destination,
    pending,
    capped: pending >= BACKLOG_SCAN,
    realtimeAgeS: ageOf(x.realtime),
    twoHoursAgeS: ageOf(x.h2),
    dayAgeS: ageOf(x.day),
    lastDeliveryAgeS: x.last ? Math.max(0, Math.round((now.getTime() - x.last.getTime()) / 1000)) : null,
    lastDeliveryAt: x.last,
  };
}

/**
 * The state of a destination's backlog: down when a realtime row is past its deadline; degraded when
 * the oldest row of a class is past its threshold, or rows have waited `stallS` and nothing was
 * delivered for as long (the backlog does not move); else ok.
 */
export function backlogState(f: BacklogFigures, t: MonitorThresholds): Component {
  const name = `backlog:${f.destination}`;
  const lastSuccessAt = f.lastDeliveryAt?.toISOString() ?? null;
  const delivered = f.lastDeliveryAgeS === null ? 'nothing delivered yet' : `last delivery ${f.lastDeliveryAgeS} s ago`;
  if (f.pending === 0) return { name, state: 'ok', detail: `nothing pending; ${delivered}`, lastSuccessAt };
  const late: string[] = [];
  const over = (age: number | null, limit: number, what: string) => {
    if (age !== null && age > limit) late.push(`the oldest ${what} row waits ${age} s (over ${limit} s)`);
  };
  const down = f.realtimeAgeS !== null && f.realtimeAgeS > t.realtimeDownS;
  if (down) late.push(`the oldest realtime row waits ${f.realtimeAgeS} s, past its deadline of ${t.realtimeDownS} s`);
  else over(f.realtimeAgeS, t.realtimeS, 'realtime');
  over(f.twoHoursAgeS, t.twoHoursS, '2h');
  over(f.dayAgeS, t.dayS, 'T+0/T+1');
  const oldest = Math.max(f.realtimeAgeS ?? 0, f.twoHoursAgeS ?? 0, f.dayAgeS ?? 0);
  if (oldest > t.stallS && (f.lastDeliveryAgeS === null || f.lastDeliveryAgeS > t.stallS))
    late.push(`nothing delivered for over ${t.stallS} s while rows wait`);
  const count = `${f.pending}${f.capped ? '+' : ''} pending, the oldest ${oldest} s`;
  if (late.length === 0) return { name, state: 'ok', detail: `${count}; ${delivered}`, lastSuccessAt };
  return {
    name,
    state: down ? 'down' : 'degraded',
    detail: `${down ? '实时记录已超时限' : '上报积压'} (backlog): ${count}; ${late.join('; ')}; ${delivered}`,
    lastSuccessAt,
  };
}

export interface HoldFigures {
  /** Records held now whose hold began within the window. */
  recent: number;
  /** Records held now. */
  held: number;
  /** Seconds since the oldest hold began; null: nothing held. */
  oldestAgeS: number | null;
  /** The most frequent reasons (of the recent holds, or of all when none is recent), most first. */
  reasons: Array<{ reason: string; records: number }>;
}

/** Reasons shown at most. */
const TOP_REASONS = 5;

/**
 * A reason as a code, never a record's data: `mapping:<domain>/<code>` (the code URI-encoded, as
 * shared/holds holdText writes it), `rule:<field>/<rule>`, and `parent:<resource>` — without the
 * parent's id, which is a record's.
 */
export function reasonCode(kind: string, target: string, value: string): string {
  if (kind === 'parent') return `parent:${target}`;
  if (kind === 'mapping') return `mapping:${target}/${encodeURIComponent(value).slice(0, 40)}`;
  return `${kind}:${target}/${value.slice(0, 40)}`;
}

/** Held records from record_hold (docs/faults.md "Hold storage"): one record counts once, whatever its reasons. */
export async function holdFigures(db: Db, now: Date, windowS: number): Promise<HoldFigures> {
  const from = new Date(now.getTime() - windowS * 1000).toISOString();
  const counts = await db.query<{ recent: string; held: string; oldest: string | number | null }>(
    `SELECT (SELECT count(*) FROM (SELECT h.resource, h.org_code, h.record_id FROM record_hold h
                                    WHERE h.since > $1::timestamptz GROUP BY h.resource, h.org_code, h.record_id) r) AS recent,
            (SELECT count(*) FROM (SELECT h.resource, h.org_code, h.record_id FROM record_hold h
                                    GROUP BY h.resource, h.org_code, h.record_id) a) AS held,
            extract(epoch FROM ($2::timestamptz - (SELECT min(h.since) FROM record_hold h))) AS oldest`,
    [from, now.toISOString()],
  );
  const c = counts.rows[0]!;
  const recent = Number(c.recent);
  const reasons = await db.query<{ kind: string; target: string; value: string; n: string }>(
    `SELECT h.kind, h.target, CASE WHEN h.kind = 'parent' THEN '' ELSE h.value END AS value, count(*) AS n
       FROM record_hold h WHERE h.since > $1::timestamptz
      GROUP BY h.kind, h.target, CASE WHEN h.kind = 'parent' THEN '' ELSE h.value END
      ORDER BY count(*) DESC, h.kind, h.target LIMIT ${TOP_REASONS}`,
    [recent > 0 ? from : new Date(0).toISOString()],
  );
  return {
    recent,
    held: Number(c.held),
    oldestAgeS: ageOf(c.oldest),
    reasons: reasons.rows.map((r) => ({ reason: reasonCode(r.kind, r.target, r.value), records: Number(r.n) })),
  };
}

/**
 * The holds component: degraded when more than `holdsRecent` records were held within the window (a
 * code list that dropped codes in use, a parent resource that stopped arriving), or — when
 * `holdsAgeS` is set — a record has been held longer than that; else ok.
 */
export function holdsState(f: HoldFigures, t: MonitorThresholds): Component {
  if (f.held === 0) return { name: 'holds', state: 'ok', detail: 'no record held' };
  const why: string[] = [];
  if (f.recent > t.holdsRecent) why.push(`${f.recent} records held in the last ${t.holdsWindowS} s (over ${t.holdsRecent})`);
  if (t.holdsAgeS > 0 && (f.oldestAgeS ?? 0) > t.holdsAgeS) why.push(`a record held for ${f.oldestAgeS} s (over ${t.holdsAgeS} s)`);
  const figures = `${f.recent} held in the last ${t.holdsWindowS} s, ${f.held} held in all, the oldest ${f.oldestAgeS ?? 0} s`;
  const reasons = f.reasons.length === 0 ? '' : `; reasons: ${f.reasons.map((r) => `${r.reason} (${r.records})`).join(', ')}`;
  if (why.length === 0) return { name: 'holds', state: 'ok', detail: `${figures}${reasons}` };
  return {
    name: 'holds',
    state: 'degraded',
    detail: `暂缓上报增多 (records held): ${why.join('; ')}; ${f.held} held in all, the oldest ${f.oldestAgeS ?? 0} s${reasons}`,
  };
}
