/**
 * Retention of the database-sync staging tables (docs/dbsync.md "Retention"). A staging row keeps its
 * other values after it is taken (its sealed fields — ID number, name, phone, address — are emptied then),
 * and every outcome stays in staging.sync_outcome (the HIS's view staging.sync_result): without a purge both grow forever. After each run
 * the dbsync function deletes
 * - staging rows taken more than DBSYNC_RETAIN_DAYS ago (`taken_at`; a row not yet taken is never
 *   touched: its taken_at is NULL),
 * - outcomes written more than DBSYNC_RETAIN_DAYS ago (`processed_at`, which is the `taken_at` of
 *   their row: both are the now() of the transaction that took it),
 * in batches of DBSYNC_PURGE_BATCH rows, one batch of each table in turn, for at most DBSYNC_PURGE_MS:
 * a year of backlog is worked off over many runs, none of which overruns. Rows are chosen with
 * `FOR UPDATE SKIP LOCKED` and deleted by id (no `DELETE … LIMIT`, which PostgreSQL lacks;
 * docs/opengauss.md): a row an open HIS transaction holds is left to a later run, and a HIS inserting
 * is never waited for. The scans read the partial indexes on taken_at (infra/db/0940_staging_purge.sql)
 * and the outcomes' processed_at index (sync_result_time), never the waiting rows.
 */
import { z } from 'zod';
import { OUTCOME_TABLE, STAGING_SCHEMA } from '../../schemas/ddl.js';
import { resources } from '../../schemas/index.js';
import { concern } from '../config/index.js';
import { withTx, type Db, type Tx } from '../db/index.js';

export const dbsyncPurgeConcern = concern({
  name: 'dbsyncPurge',
  vars: {
    /** Days a taken staging row and an outcome are kept; 0 keeps them forever. */
    DBSYNC_RETAIN_DAYS: z.coerce.number().int().min(0).max(36_500).default(7),
    /** Rows one purge statement deletes at most. */
    DBSYNC_PURGE_BATCH: z.coerce.number().int().min(1).max(10_000).default(1000),
    /** How long one run's purge may go on before it leaves the rest to the next run. */
    DBSYNC_PURGE_MS: z.coerce.number().int().min(100).max(30_000).default(5000),
  },
  build: (v) => ({ retainDays: v.DBSYNC_RETAIN_DAYS, batch: v.DBSYNC_PURGE_BATCH, budgetMs: v.DBSYNC_PURGE_MS }),
});
export type PurgeSettings = ReturnType<typeof dbsyncPurgeConcern.build>;

/** What one run purged: rows deleted per table (tables with none left out), and whether all due went. */
export interface PurgeRun {
  retainDays: number;
  purged: Record<string, number>;
  /** false: the budget ran out with rows still due (the next run goes on). */
  complete: boolean;
}

/** One table's batch: deletes up to `limit` rows due; returns how many went. */
type Target = { name: string; purge: (tx: Tx, retainDays: number, limit: number) => Promise<number> };

const CUTOFF = `now() - $1::integer * interval '1 day'`;

/** The statement choosing a staging table's rows due ($1 the days kept, $2 the batch). */
export function stagingDueSql(table: string): string {
  return `SELECT row_id FROM ${STAGING_SCHEMA}.${table} WHERE taken_at < ${CUTOFF} ORDER BY taken_at LIMIT $2 FOR UPDATE SKIP LOCKED`;
}

/** The statement choosing the outcomes due ($1 the days kept, $2 the batch). */
export const RESULTS_DUE_SQL = `SELECT resource, row_id::text AS row_id FROM ${OUTCOME_TABLE}
  WHERE processed_at < ${CUTOFF} ORDER BY processed_at LIMIT $2 FOR UPDATE SKIP LOCKED`;

function stagingTarget(table: string): Target {
  return {
    name: table,
    purge: async (tx, days, limit) => {
      const ids = (await tx.query<{ row_id: string }>(stagingDueSql(table), [days, limit])).rows.map((x) => x.row_id);
      if (!ids.length) return 0;
      const del = await tx.query(`DELETE FROM ${STAGING_SCHEMA}.${table} WHERE row_id = ANY($1::bigint[])`, [ids]);
      return del.rowCount ?? 0;
    },
  };
}

const resultsTarget: Target = {
  name: 'sync_result',
  purge: async (tx, days, limit) => {
    const due = (await tx.query<{ resource: string; row_id: string }>(RESULTS_DUE_SQL, [days, limit])).rows;
    const byResource = new Map<string, string[]>();
    for (const x of due) (byResource.get(x.resource) ?? byResource.set(x.resource, []).get(x.resource)!).push(x.row_id);
    let n = 0;
    for (const [resource, ids] of byResource) {
      const del = await tx.query(`DELETE FROM ${OUTCOME_TABLE} WHERE resource = $1 AND row_id = ANY($2::bigint[])`, [resource, ids]);
      n += del.rowCount ?? 0;
    }
    return n;
  },
};

/** Every staging table, then the outcomes. */
export const purgeTargets = (): Target[] => [...Object.values(resources).map((r) => stagingTarget(r.table)), resultsTarget];

/**
 * Deletes what is past the retention, one batch of each table in turn (so every table advances, even
 * under a backlog), until none has more due or the budget is spent. Each batch is a transaction of
 * its own: what a run deleted stays deleted if a later batch fails.
 */
export async function purgeStaging(db: Db, s: PurgeSettings, clock: () => number = Date.now): Promise<PurgeRun> {
  const run: PurgeRun = { retainDays: s.retainDays, purged: {}, complete: true };
  if (s.retainDays === 0) return run;
  const deadline = clock() + s.budgetMs;
  let pending = purgeTargets();
  while (pending.length) {
    const more: Target[] = [];
    for (const t of pending) {
      if (clock() >= deadline) {
        run.complete = false;
        return run;
      }
      const n = await withTx(db, (tx) => t.purge(tx, s.retainDays, s.batch));
      if (n > 0) run.purged[t.name] = (run.purged[t.name] ?? 0) + n;
      if (n >= s.batch) more.push(t);
    }
    pending = more;
  }
  return run;
}
