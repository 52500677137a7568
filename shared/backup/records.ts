/**
 * Whether a database holds records at all (docs/backup.md "A database with no records"): rows in the typed
 * tables of the data set (schemas/, one table per resource: patients, diagnoses, lab reports, report
 * cards, …). A new installation's database holds none — only what the migrations seeded (code tables,
 * destinations) — and an archive of it, taken into the store that holds a lost front's archives,
 * would be the newest one and restore as an empty database.
 */
import { resources } from '../../schemas/index.js';
import type { Db } from '../db/index.js';
import type { RowCounts } from './ledger.js';

/** The typed tables, sorted: one per resource of the data set. */
export function typedTables(): string[] {
  return [...new Set(Object.values(resources).map((r) => r.table))].sort();
}

/** The records an archive's row counts show (the sum over the typed tables); null without row counts. */
export function recordsIn(rowCounts: RowCounts | null | undefined): number | null {
  if (!rowCounts) return null;
  return typedTables().reduce((n, t) => n + (rowCounts[t] ?? 0), 0);
}

/** True when any typed table holds a row (one index probe per table; tables not there count as empty). */
export async function holdsRecords(db: Db): Promise<boolean> {
  const present = await db.query<{ t: string }>(`SELECT tablename AS t FROM pg_tables WHERE schemaname = current_schema() AND tablename = ANY($1::varchar[])`, [
    typedTables(),
  ]);
  if (present.rows.length === 0) return false;
  const r = await db.query<{ n: string }>(
    `SELECT count(*) AS n FROM (${present.rows.map((x) => `(SELECT 1 AS one FROM "${x.t.replace(/"/g, '""')}" LIMIT 1)`).join(' UNION ALL ')}) AS any_rows`,
  );
  return Number(r.rows[0]!.n) > 0;
}
