/**
 * The TypeScript half of migration 1010_sync_result_view.sql, run by migrate.ts in that migration's
 * transaction: the HIS roles granted SELECT on the outcomes' table (bin/cdc-dbsync grant, before
 * 1010) get it on the view that now bears the table's old name, staging.sync_result, and lose it on
 * the table, renamed staging.sync_outcome (docs/dbsync.md "The HIS's role"). A HIS reads its
 * outcomes on the morning after the upgrade as the evening before, with no `grant` run in between.
 * Which roles: those the catalog names — a GRANT takes no bind parameter and SQL alone cannot loop
 * over them on openGauss 5.0 without a procedure.
 */
import type pg from 'pg';
import { quoteIdent as ident } from '../../shared/db/quote.js';

export async function moveOutcomeGrants(client: pg.ClientBase): Promise<void> {
  const roles = await client.query<{ grantee: string }>(
    `SELECT DISTINCT p.grantee FROM information_schema.table_privileges p
      WHERE p.table_schema = 'staging' AND p.table_name = 'sync_outcome' AND p.privilege_type = 'SELECT'
        AND p.grantee <> 'PUBLIC'
        AND p.grantee <> (SELECT pg_get_userbyid(c.relowner) FROM pg_class c WHERE c.oid = 'staging.sync_outcome'::regclass)
      ORDER BY p.grantee`,
  );
  for (const { grantee } of roles.rows) {
    await client.query(`GRANT SELECT ON staging.sync_result TO ${ident(grantee)}`);
    await client.query(`REVOKE ALL ON staging.sync_outcome FROM ${ident(grantee)}`);
  }
}
