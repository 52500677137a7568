/**
 * After a restore: the database-sync HIS roles (docs/dbsync.md "After a restore"). A dump carries no
 * roles and the restore takes no privileges (`pg_restore --no-privileges`), so the restored database
 * names its HIS roles — their org bindings (`dbsync_role_org`) and the rows they wrote (`inserted_by`) —
 * but grants them nothing: a HIS pointed at it could not write a row. The grants of every such role
 * that exists on the server are applied again (the statements of `bin/cdc-dbsync grant`,
 * shared/dbsync/role.ts); a role the server does not have (a new machine) is reported, to be made with
 * `bin/cdc-dbsync create-role`.
 */
import pg from 'pg';
import { STAGING_SCHEMA } from '../../schemas/ddl.js';
import { resources } from '../../schemas/index.js';
import { quoteIdent as ident } from '../db/quote.js';
import { frontLockStatements, grantStatements, RoleName } from '../dbsync/role.js';

export interface HisRoles {
  /** Roles whose grants were applied again. */
  granted: string[];
  /**
   * The front's advisory lock functions kept from the HIS roles on the restored database (a function's
   * grants are the database's own, and a dump restored without privileges carries none): 'kept', or
   * 'needs-superuser' when this user may not (docs/dbsync.md "The HIS's role").
   */
  locks: 'kept' | 'needs-superuser';
  /** Roles the restored database names that the server does not have. */
  missing: string[];
}

/** The roles the database names: bound to orgs, or the writers of staged rows and outcomes. */
async function namedRoles(c: pg.ClientBase): Promise<string[]> {
  const names = new Set<string>();
  // The catalogs, not to_regclass (openGauss 5.0 has none: docs/opengauss.md).
  if ((await c.query(`SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'dbsync_role_org'`)).rowCount) {
    for (const r of (await c.query<{ r: string }>('SELECT DISTINCT role_name AS r FROM dbsync_role_org')).rows) names.add(r.r);
  }
  const tables = [...Object.values(resources).map((r) => r.table), 'sync_outcome'];
  for (const t of tables) {
    const has = await c.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_attribute a JOIN pg_class k ON k.oid = a.attrelid JOIN pg_namespace s ON s.oid = k.relnamespace
        WHERE s.nspname = $1 AND k.relname = $2 AND a.attname = 'inserted_by' AND NOT a.attisdropped`,
      [STAGING_SCHEMA, t],
    );
    if (Number(has.rows[0]!.n) === 0) continue;
    const rows = await c.query<{ r: string }>(`SELECT DISTINCT inserted_by AS r FROM ${ident(STAGING_SCHEMA)}.${ident(t)} WHERE inserted_by IS NOT NULL`);
    for (const r of rows.rows) names.add(r.r);
  }
  // The front's own user (rows it staged itself) is not a HIS role; nor is a name no role can have.
  const self = (await c.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u;
  names.delete(self);
  return [...names].filter((n) => RoleName.safeParse(n).success).sort();
}

/** Applies the grants of every HIS role the database at `url` names; reports those the server lacks. */
export async function regrantHisRoles(url: string): Promise<HisRoles> {
  const c = new pg.Client({ connectionString: url, application_name: 'cdc-front-restore' });
  await c.connect();
  try {
    const out: HisRoles = { granted: [], missing: [], locks: 'kept' };
    for (const role of await namedRoles(c)) {
      const exists = (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount === 1;
      if (!exists) {
        out.missing.push(role);
        continue;
      }
      await c.query('BEGIN');
      try {
        for (const st of grantStatements(role)) await c.query(st);
        await c.query('COMMIT');
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw new Error(`granting HIS role ${role} on the restored database failed: ${(err as Error).message}`);
      }
      out.granted.push(role);
    }
    const locks = await frontLockStatements(c);
    if (locks.length) {
      await c.query('BEGIN');
      try {
        for (const st of locks) await c.query(st);
        await c.query('COMMIT');
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        if ((err as { code?: string }).code !== '42501') throw err;
        out.locks = 'needs-superuser';
      }
    }
    return out;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * Closes the database at `url` (the one the front left for a restored one) to the HIS roles it names:
 * their USAGE on the staging schema is revoked, so a HIS still writing there is refused ("permission
 * denied for schema staging") instead of adding rows nothing will take (docs/dbsync.md "After a
 * restore"). `bin/cdc-dbsync grant` on that database admits a role again.
 */
export async function revokeHisRoles(url: string): Promise<{ revoked: string[]; missing: string[] }> {
  const c = new pg.Client({ connectionString: url, application_name: 'cdc-front-restore' });
  await c.connect();
  try {
    const out = { revoked: [] as string[], missing: [] as string[] };
    for (const role of await namedRoles(c)) {
      if ((await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount !== 1) {
        out.missing.push(role);
        continue;
      }
      await c.query(`REVOKE USAGE ON SCHEMA ${STAGING_SCHEMA} FROM ${RoleName.parse(role)}`);
      out.revoked.push(role);
    }
    return out;
  } finally {
    await c.end().catch(() => undefined);
  }
}
