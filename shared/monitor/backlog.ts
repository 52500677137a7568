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
