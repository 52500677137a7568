/**
 * Children waiting for their parents. Listing (for the console: orphans older than a threshold),
 * and the sweep the push run performs every minute:
 *   - a wait whose parent is in fact stored (the two arrived in concurrent transactions, each
 *     before the other committed) is released;
 *   - a wait older than ORPHAN_RELEASE_AFTER_H hours (default 48; 0 = never) is released with the
 *     data-quality flag parentMissing (on its receipt: the console's data-quality page lists it; the
 *     national data set has no field to carry it to the platforms): a parent that never comes must
 *     not keep a record from the platforms for ever. A parent that came and is held (for a code's
 *     mapping or a data-set rule) is not missing: its children keep waiting for it however long,
 *     and go out behind it when it is released (docs/ingest.md "Parents and children").
 */
import type { Db } from '../db/index.js';
import { withTx } from '../db/index.js';
import { resources as registry } from '../../schemas/index.js';
import { dropHolds, recordHolds } from '../holds/index.js';
import { releaseHeld } from '../outbox/index.js';
import { releaseChildren } from './store.js';
import { log } from '../log/index.js';
import { isParent } from './parents.js';

export interface Orphan {
  resource: string;
  orgCode: string;
  id: string;
  parentResource: string;
  parentId: string;
  since: Date;
  ageS: number;
}

export async function listOrphans(db: Db, o: { olderThanS?: number; orgCodes?: string[] | '*'; limit?: number } = {}): Promise<Orphan[]> {
  const orgs = o.orgCodes === undefined || o.orgCodes === '*' ? null : o.orgCodes;
  const res = await db.query<{ resource: string; org_code: string; record_id: string; parent_resource: string; parent_id: string; since: Date; age: number }>(
    `SELECT resource, org_code, record_id, parent_resource, parent_id, since, extract(epoch FROM (now() - since)) AS age
       FROM record_parent_wait
      WHERE since <= now() - ($1::integer * interval '1 second')
        AND ($2::varchar[] IS NULL OR org_code = ANY($2::varchar[]))
      ORDER BY since LIMIT $3`,
    [o.olderThanS ?? 0, orgs, o.limit ?? 1000],
  );
  return res.rows.map((x) => ({
    resource: x.resource,
    orgCode: x.org_code,
    id: x.record_id,
    parentResource: x.parent_resource,
    parentId: x.parent_id,
    since: x.since,
    ageS: Math.round(Number(x.age)),
  }));
}

export interface SweepResult {
  linked: number;
  expired: number;
  /** Waits whose release failed (logged; retried on the next run). */
  failed: number;
}

/** One release in its own transaction: a failure is logged and counted, never stops the sweep. */
async function each(out: SweepResult, what: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    out.failed++;
    log('error', 'orphan sweep: release failed', { what, err: (err as Error).message, code: (err as { code?: string }).code });
  }
}

export async function sweepOrphans(db: Db, releaseAfterH = 48): Promise<SweepResult> {
  const out: SweepResult = { linked: 0, expired: 0, failed: 0 };
  const parents = new Set(Object.values(registry).flatMap((r) => r.parents.map((p) => p.resource)));
  for (const name of parents) {
    const p = registry[name];
    if (!p) continue;
    const found = await db.query<{ org_code: string; parent_id: string }>(
      `SELECT DISTINCT w.org_code, w.parent_id FROM record_parent_wait w
         JOIN ${p.table} p ON p.org_code = w.org_code AND p.id = w.parent_id
         LEFT JOIN record_receipt r ON r.resource = w.parent_resource AND r.org_code = w.org_code AND r.record_id = w.parent_id
        WHERE w.parent_resource = $1 AND (r.state IS NULL OR r.state <> 'held') LIMIT 1000`,
      [name],
    );
    for (const f of found.rows) {
      await each(out, `children of ${name}`, async () => {
        const n = await withTx(db, (tx) => releaseChildren(tx, name, [[f.org_code, f.parent_id]], isParent));
        out.linked += n > 0 ? 1 : 0;
      });
    }
  }
  if (releaseAfterH > 0) {
    const old = await db.query<{ resource: string; org_code: string; record_id: string }>(
      `SELECT DISTINCT w.resource, w.org_code, w.record_id FROM record_parent_wait w
        WHERE w.since < now() - ($1::integer * interval '1 hour')
          AND NOT EXISTS (SELECT 1 FROM record_receipt r
                           WHERE r.resource = w.parent_resource AND r.org_code = w.org_code AND r.record_id = w.parent_id AND r.state = 'held')
        LIMIT 1000`,
      [releaseAfterH],
    );
    for (const w of old.rows) {
      await each(out, `expired wait of ${w.resource}`, () =>
        withTx(db, async (tx) => {
          await tx.query('DELETE FROM record_parent_wait WHERE resource = $1 AND org_code = $2 AND record_id = $3', [w.resource, w.org_code, w.record_id]);
          const rc = await tx.query<{ flags: string | null; retired: boolean }>(
            'SELECT flags, retired FROM record_receipt WHERE resource = $1 AND org_code = $2 AND record_id = $3 FOR UPDATE',
            [w.resource, w.org_code, w.record_id],
          );
          const row = rc.rows[0];
          if (!row) return;
          await dropHolds(tx, w.resource, [[w.org_code, w.record_id]], { kind: 'parent' });
          const reasons = await recordHolds(tx, w.resource, w.org_code, w.record_id);
          const flags = [...new Set([...(row.flags ?? '').split(' ').filter(Boolean), 'parentMissing'])];
          await tx.query('UPDATE record_receipt SET flags = $4, state = $5 WHERE resource = $1 AND org_code = $2 AND record_id = $3', [
            w.resource,
            w.org_code,
            w.record_id,
            flags.join(' '),
            reasons.length ? 'held' : row.retired ? 'retired' : 'stored',
          ]);
          if (!reasons.length) {
            await releaseHeld(tx, w.resource, w.org_code, w.record_id);
            if (isParent(w.resource)) await releaseChildren(tx, w.resource, [[w.org_code, w.record_id]], isParent);
          }
          out.expired++;
        }),
      );
    }
  }
  return out;
}
