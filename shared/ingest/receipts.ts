/**
 * Every record's fate, as a HIS vendor can ask for it — so no vendor needs a home-made comparison
 * job: stored, held (and why), retired, forwarded (to which platforms), rejected (and why), or
 * unknown. And reconciliation: "of these ids for day D, which do you hold, in which state, and
 * which are missing?" — plus the ids the front holds for that day that the HIS did not list.
 */
import type { Db } from '../db/index.js';
import type { Resource } from '../../schemas/resource.js';
import { holdsOf, holdText, keyOf } from './store.js';
import { queuedVersion } from './restore-gap.js';

export type Fate = 'forwarded' | 'stored' | 'held' | 'retired' | 'rejected' | 'unknown';

export interface Delivery {
  destination: string;
  state: string;
  version: number;
  sentAt: Date | null;
}

export interface RecordFate {
  resource: string;
  orgCode: string;
  id: string;
  fate: Fate;
  version: number | null;
  held: string[];
  flags: string[];
  test: boolean;
  receivedAt: Date | null;
  updatedAt: Date | null;
  deliveries: Delivery[];
  /** The latest rejections of this id (fields and rules, masked), newest first. */
  rejections: Array<{ at: Date; issues: unknown }>;
}

interface ReceiptDbRow {
  record_id: string;
  version: number;
  state: string;
  flags: string | null;
  test_mode: boolean;
  received_at: Date;
  updated_at: Date;
}

const split = (s: string | null) => (s ?? '').split(' ').filter(Boolean);

/** A stored record whose current version every destination has received is "forwarded". */
function fateOf(state: string, deliveries: Delivery[], version: number): Fate {
  if (state === 'held') return 'held';
  // A record restored and not written since was queued under its version less whole gaps (restore-gap.ts).
  const queued = queuedVersion(
    version,
    deliveries.map((d) => d.version),
  );
  const current = deliveries.filter((d) => d.version === queued);
  const forwarded = current.length > 0 && current.every((d) => d.state === 'sent');
  if (forwarded) return 'forwarded';
  return state === 'retired' ? 'retired' : 'stored';
}

export async function recordFate(db: Db, r: Resource, orgCode: string, id: string): Promise<RecordFate> {
  const [rc, ob, rj] = await Promise.all([
    db.query<ReceiptDbRow>(
      `SELECT record_id, version, state, flags, test_mode, received_at, updated_at
         FROM record_receipt WHERE resource = $1 AND org_code = $2 AND record_id = $3`,
      [r.name, orgCode, id],
    ),
    db.query<{ destination: string; state: string; version: number; sent_at: Date | null }>(
      `SELECT destination, state, version, sent_at FROM outbox
        WHERE resource = $1 AND org_code = $2 AND record_id = $3 ORDER BY outbox_id`,
      [r.name, orgCode, id],
    ),
    db.query<{ received_at: Date; issues: unknown }>(
      `SELECT received_at, issues FROM ingest_rejection WHERE resource = $1 AND org_code = $2 AND record_id = $3
        ORDER BY rej_id DESC LIMIT 5`,
      [r.name, orgCode, id],
    ),
  ]);
  // The latest row per destination tells where that platform stands.
  const latest = new Map<string, Delivery>();
  // A destination that does not take the resource ('skipped') is no delivery at all.
  for (const o of ob.rows)
    if (o.state !== 'skipped') latest.set(o.destination, { destination: o.destination, state: o.state, version: o.version, sentAt: o.sent_at });
  const deliveries = [...latest.values()];
  const rejections = rj.rows.map((x) => ({ at: x.received_at, issues: x.issues }));
  const row = rc.rows[0];
  if (!row) {
    return {
      resource: r.name,
      orgCode,
      id,
      fate: rejections.length ? 'rejected' : 'unknown',
      version: null,
      held: [],
      flags: [],
      test: false,
      receivedAt: null,
      updatedAt: null,
      deliveries,
      rejections,
    };
  }
  return {
    resource: r.name,
    orgCode,
    id,
    fate: fateOf(row.state, deliveries, row.version),
    version: row.version,
    held: ((await holdsOf(db, r.name, [[orgCode, id]])).get(keyOf(orgCode, id)) ?? []).map(holdText),
    flags: split(row.flags),
    test: row.test_mode,
    receivedAt: row.received_at,
    updatedAt: row.updated_at,
    deliveries,
    rejections,
  };
}

export interface Reconciliation {
  resource: string;
  orgCode: string;
  date: string;
  counts: Record<Fate, number> & { listed: number; extra: number };
  records: Array<{ id: string; fate: Fate; version: number | null; held?: string[] }>;
  missing: string[];
  rejected: Array<{ id: string; issues: unknown }>;
  /** Ids the front holds for that day that the HIS did not list. */
  extra: string[];
}

export async function reconcile(db: Db, r: Resource, orgCode: string, date: string, ids: string[]): Promise<Reconciliation> {
  const uniq = [...new Set(ids)];
  const [rc, ob, ex] = await Promise.all([
    db.query<ReceiptDbRow>(
      `SELECT record_id, version, state, flags, test_mode, received_at, updated_at
         FROM record_receipt WHERE resource = $1 AND org_code = $2 AND record_id = ANY($3::varchar[])`,
      [r.name, orgCode, uniq],
    ),
    db.query<{ record_id: string; version: number; unsent: string; total: string }>(
      `SELECT record_id, version, sum(CASE WHEN state = 'sent' THEN 0 ELSE 1 END) AS unsent, count(*) AS total
         FROM outbox WHERE resource = $1 AND org_code = $2 AND record_id = ANY($3::varchar[]) AND state <> 'skipped'
        GROUP BY record_id, version`,
      [r.name, orgCode, uniq],
    ),
    db.query<{ record_id: string }>(
      `SELECT record_id FROM record_receipt WHERE resource = $1 AND org_code = $2 AND business_day = $3
          AND NOT (record_id = ANY($4::varchar[])) ORDER BY record_id LIMIT 10000`,
      [r.name, orgCode, date, uniq],
    ),
  ]);
  const sent = new Map<string, boolean>();
  const queued = new Map<string, number[]>();
  for (const o of ob.rows) {
    sent.set(`${o.record_id}|${o.version}`, Number(o.unsent) === 0 && Number(o.total) > 0);
    queued.set(o.record_id, [...(queued.get(o.record_id) ?? []), Number(o.version)]);
  }
  const byId = new Map(rc.rows.map((x) => [x.record_id, x]));
  const heldKeys = rc.rows.filter((x) => x.state === 'held').map((x): [string, string] => [orgCode, x.record_id]);
  const holds = await holdsOf(db, r.name, heldKeys);
  const missingIds = uniq.filter((i) => !byId.has(i));
  const rj = missingIds.length
    ? await db.query<{ record_id: string; issues: unknown }>(
        `SELECT record_id, issues FROM ingest_rejection WHERE resource = $1 AND org_code = $2 AND record_id = ANY($3::varchar[]) ORDER BY rej_id DESC`,
        [r.name, orgCode, missingIds],
      )
    : { rows: [] };
  const rejectedById = new Map<string, unknown>();
  for (const x of rj.rows) if (!rejectedById.has(x.record_id)) rejectedById.set(x.record_id, x.issues);

  const counts = { forwarded: 0, stored: 0, held: 0, retired: 0, rejected: 0, unknown: 0, listed: uniq.length, extra: ex.rows.length };
  const records: Reconciliation['records'] = [];
  for (const id of uniq) {
    const row = byId.get(id);
    let fate: Fate;
    if (row) {
      fate =
        row.state === 'held'
          ? 'held'
          : sent.get(`${id}|${queuedVersion(row.version, queued.get(id) ?? [])}`)
            ? 'forwarded'
            : row.state === 'retired'
              ? 'retired'
              : 'stored';
      records.push({ id, fate, version: row.version, ...(fate === 'held' ? { held: (holds.get(keyOf(orgCode, id)) ?? []).map(holdText) } : {}) });
    } else {
      fate = rejectedById.has(id) ? 'rejected' : 'unknown';
      records.push({ id, fate, version: null });
    }
    counts[fate]++;
  }
  return {
    resource: r.name,
    orgCode,
    date,
    counts,
    records,
    missing: records.filter((x) => x.fate === 'unknown' || x.fate === 'rejected').map((x) => x.id),
    rejected: [...rejectedById].map(([id, issues]) => ({ id, issues })),
    extra: ex.rows.map((x) => x.record_id),
  };
}
