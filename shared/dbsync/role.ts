/**
 * The HIS's database role for database sync (docs/dbsync.md "The HIS's role"): it may insert into
 * and update the staging tables' data columns (and read a row's bookkeeping, READABLE), use
 * their row-id sequences, and read staging.sync_result — its rows' outcomes and rejections, a view of
 * the front's table staging.sync_outcome that shows a role its own rows only and derives `held` from
 * the record's holds when read (infra/db/1010_sync_result_view.sql); it is granted nothing on that
 * table nor on record_hold. It may
 * not write `row_id` or `inserted_at`: the database sets them — the receive time, where a record's
 * deadline clock starts, is not the sender's to choose, and a row id written ahead of the sequence
 * would make every other writer's next row fail on a duplicate key. Nothing is granted on
 * any other schema: the front's own tables stay out of its reach (test/integration/dbsync-role.test.ts
 * proves it). The statements are plain GRANTs that PostgreSQL 15 and openGauss 5.0 both take, and
 * idempotent: run again after an upgrade that adds a staging table.
 *
 * On a front serving several hospitals each HIS has a role of its own, bound to its orgs
 * (bindStatements, dbsync_role_org): the dbsync function refuses a row of another org, and a role
 * sees and changes its own rows only (row-level security, infra/db/0920_staging_roles.sql) and reads
 * its own rows' outcomes only (the view's filter, infra/db/1010_sync_result_view.sql).
 */
import { randomBytes } from 'node:crypto';
import type { QueryResultRow } from 'pg';
import { z } from 'zod';
import { STAGING_SCHEMA } from '../../schemas/ddl.js';
import { resources } from '../../schemas/index.js';
import { OrgsSchema } from '../http/auth.js';
import { quoteIdent as ident, quoteLiteral as literal } from '../db/quote.js';

export const RoleName = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a role name: lower-case letters, digits and _, at most 63');

/**
 * The columns of a staging row the HIS may read: its bookkeeping, what RETURNING row_id, an UPDATE's
 * WHERE and the docs' queries need — never a value of the record (a name, an ID number, a phone):
 * one front may serve several hospitals, and a row keeps its name after it is taken.
 */
export const READABLE = ['row_id', 'inserted_at', 'taken_at', 'org_code', 'id'] as const;

/** The grants, without the CREATE ROLE (the role may exist already). */
export function grantStatements(role: string): string[] {
  const r = RoleName.parse(role);
  const tables = Object.values(resources).map((x) => ({
    t: `${STAGING_SCHEMA}.${x.table}`,
    cols: Object.values(x.fields)
      .map((d) => d.column)
      .join(', '),
  }));
  return [
    `GRANT USAGE ON SCHEMA ${STAGING_SCHEMA} TO ${r}`,
    // A table-wide INSERT or UPDATE (as earlier versions granted) would cover row_id and inserted_at.
    // A table-wide SELECT (as earlier versions granted) would show every org's names and ID numbers.
    ...tables.map(({ t }) => `REVOKE SELECT, INSERT, UPDATE ON ${t} FROM ${r}`),
    ...tables.map(({ t, cols }) => `GRANT SELECT (${READABLE.join(', ')}), INSERT (${cols}), UPDATE (${cols}) ON ${t} TO ${r}`),
    ...tables.map(({ t }) => `GRANT USAGE ON SEQUENCE ${t}_row_id_seq TO ${r}`),
    `GRANT SELECT ON ${STAGING_SCHEMA}.sync_result TO ${r}`,
  ];
}

/** The advisory lock functions that take a lock, each in its two signatures. */
const LOCKERS = [
  'pg_advisory_lock',
  'pg_advisory_lock_shared',
  'pg_advisory_xact_lock',
  'pg_advisory_xact_lock_shared',
  'pg_try_advisory_lock',
  'pg_try_advisory_lock_shared',
  'pg_try_advisory_xact_lock',
  'pg_try_advisory_xact_lock_shared',
].flatMap((f) => [`pg_catalog.${f}(bigint)`, `pg_catalog.${f}(integer, integer)`]);

/**
 * The front's advisory locks kept for the front: every role may call the lock functions by default,
 * and their keys follow from names in the source (a staging table's, a record's), so a HIS role
 * holding `dbsync:<table>` would stall that table's sync for every hospital on the front, and a
 * record's link key would make the API's writes of that record time out — whatever its org. The
 * functions are taken from PUBLIC and given to the front's own user (the owner of the staging
 * tables), in this database only. Run by a superuser (the functions belong to the bootstrap user);
 * docs/dbsync.md "The HIS's role".
 */
export function advisoryLockStatements(frontUser: string): string[] {
  return [...LOCKERS.map((f) => `REVOKE EXECUTE ON FUNCTION ${f} FROM PUBLIC`), ...LOCKERS.map((f) => `GRANT EXECUTE ON FUNCTION ${f} TO ${ident(frontUser)}`)];
}

/**
 * advisoryLockStatements for the database `c` is connected to: for its front user, the owner of the
 * staging tables (the dbsync function runs as it); none before the staging tables exist.
 */
export async function frontLockStatements(c: { query: <R extends QueryResultRow>(sql: string) => Promise<{ rows: R[] }> }): Promise<string[]> {
  const owner = (
    await c.query<{ owner: string }>(
      `SELECT pg_get_userbyid(c.relowner) AS owner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = '${STAGING_SCHEMA}' AND c.relname = 'sync_outcome'`,
    )
  ).rows[0]?.owner;
  return owner ? advisoryLockStatements(owner) : [];
}

/** A zone name as TZ_LOCAL gives it (Asia/Shanghai), safe in a literal. */
const ZoneName = z.string().regex(/^[A-Za-z][A-Za-z0-9_+\-/]{0,63}$/, 'a time zone name such as Asia/Shanghai');

/**
 * The role's session defaults: the hospital's time zone and ISO dates. A time the HIS computes in
 * its session on the front's server (`LOCALTIMESTAMP`, `now()::timestamp`) is then the hospital's
 * wall time — which is how a `timestamp` without zone is read (docs/dbsync.md "How it works") —
 * instead of the server's (UTC under a default install: eight hours off, and no refusal to say so).
 * A session that sets its own still wins. Altering a role takes CREATEROLE (or being a superuser).
 */
export function roleSettingStatements(role: string, timeZone = 'Asia/Shanghai'): string[] {
  const r = RoleName.parse(role);
  return [`ALTER ROLE ${r} SET timezone = ${literal(ZoneName.parse(timeZone))}`, `ALTER ROLE ${r} SET datestyle = 'ISO, YMD'`];
}

/**
 * What a role's password lacks, or null. openGauss refuses by default (password_policy = 1) a password
 * over 32 characters, of fewer than three kinds of character, or that is the role's name or its name
 * reversed; PostgreSQL has no such policy. Checked here on both, so that a role made on one could be
 * made on the other, and the HIS's administrator reads the rule, not the server's refusal (docs/dbsync.md).
 */
export function passwordProblem(role: string, password: string): string | null {
  if (password.length < 12) return 'must be at least 12 characters';
  if (password.length > 32) return "must be at most 32 characters (openGauss's password_max_length)";
  // openGauss takes these special characters only, whatever its password_policy (docs/opengauss.md).
  const odd = [...new Set(password.replace(/[A-Za-z0-9~!@#$%^&*()\-_=+\\|[{}\];:,<.>/?]/g, ''))];
  if (odd.length)
    return `must use letters, digits and ~!@#$%^&*()-_=+\\|[{}];:,<.>/? only (openGauss refuses any other character): not ${odd.map((c) => JSON.stringify(c)).join(' ')}`;
  const kinds = [/[A-Z]/, /[a-z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((k) => k.test(password)).length;
  if (kinds < 3) return "must have at least three of: upper-case letters, lower-case letters, digits, other characters (openGauss's password policy)";
  const p = password.toLowerCase();
  const name = role.toLowerCase();
  if (p === name || p === [...name].reverse().join('')) return 'must not be the role name, nor the role name reversed';
  return null;
}

/** A random password every dialect's policy takes (passwordProblem): 24 characters of base64url, drawn again until it has three kinds. */
export function rolePassword(role: string): string {
  for (;;) {
    const p = randomBytes(18).toString('base64url');
    if (!passwordProblem(role, p)) return p;
  }
}

/** CREATE ROLE with a password, its session defaults, then the grants. */
export function createRoleStatements(role: string, password: string, timeZone?: string): string[] {
  const r = RoleName.parse(role);
  const problem = passwordProblem(r, password);
  if (problem) throw new Error(`the role password ${problem}`);
  return [`CREATE ROLE ${r} LOGIN PASSWORD ${literal(password)}`, ...roleSettingStatements(r, timeZone), ...grantStatements(r)];
}

/**
 * The statements that bind a role to the orgs its rows may carry, replacing an earlier binding;
 * '*' leaves it unbound (any org DBSYNC_ORGS allows: a front for one hospital).
 */
export function bindStatements(role: string, orgs: unknown): string[] {
  const r = RoleName.parse(role);
  const list = OrgsSchema.parse(orgs);
  return [
    `DELETE FROM dbsync_role_org WHERE role_name = ${literal(r)}`,
    ...(list === '*' ? [] : [`INSERT INTO dbsync_role_org (role_name, org_code) VALUES ${list.map((o) => `(${literal(r)}, ${literal(o)})`).join(', ')}`]),
  ];
}
