/**
 * The database schema this build expects: the migrations of infra/db it was built with, against the
 * ledger `schema_migration` the migration runner keeps (infra/db/migrate.ts). A function running on a
 * database that lacks some of them (new bundles deployed, `bin/cdc-migrate` not run: docs/deploy.md
 * "Upgrade") says so — a log line at start naming the missing migrations, the monitoring port's
 * /status and /healthz — instead of failing run after run on a missing column.
 *
 * The names are baked into every bundle at build (infra/build/build.mjs defines __CDC_MIGRATIONS__);
 * from the sources (tsx, the tests) they are read from infra/db.
 */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { log } from '../log/index.js';

declare const __CDC_MIGRATIONS__: readonly string[] | undefined;

export const MIGRATION_FILE = /^\d{4}_[a-z0-9_]+\.sql$/;

let known: readonly string[] | undefined;

/** The migration names this build knows, in order. */
export function knownMigrations(): readonly string[] {
  if (known) return known;
  known =
    typeof __CDC_MIGRATIONS__ !== 'undefined'
      ? __CDC_MIGRATIONS__
      : readdirSync(fileURLToPath(new URL('../../infra/db', import.meta.url)))
          .filter((f) => MIGRATION_FILE.test(f))
          .sort();
  return known;
}

export interface SchemaState {
  /** current: every migration this build knows is applied, and no other; behind: some are missing (run bin/cdc-migrate); ahead: a newer release migrated this database. */
  state: 'current' | 'behind' | 'ahead';
  /** Migrations this build needs that the database lacks. */
  missing: string[];
  /** Migrations the database has that this build does not know (a newer release's). */
  unknown: string[];
}

/** Compares the ledger's names with the build's. */
export function compareSchema(applied: Iterable<string>, expected: readonly string[] = knownMigrations()): SchemaState {
  const have = new Set(applied);
  const want = new Set(expected);
  const missing = expected.filter((n) => !have.has(n));
  const unknown = [...have].filter((n) => !want.has(n)).sort();
  return { state: missing.length ? 'behind' : unknown.length ? 'ahead' : 'current', missing, unknown };
}

interface Queryable {
  query<R extends Record<string, unknown>>(sql: string): Promise<{ rows: R[] }>;
}

/** The database's state against this build; a database without the ledger has every migration missing. Other errors are thrown. */
export async function schemaState(db: Queryable): Promise<SchemaState> {
  try {
    const r = await db.query<{ name: string }>('SELECT name FROM schema_migration');
    return compareSchema(r.rows.map((x) => x.name));
  } catch (err) {
    if ((err as { code?: string }).code === '42P01') return compareSchema([]);
    throw err;
  }
}

/** What an operator is told to do about a state other than current (docs/deploy.md "Upgrade"). */
export function schemaAdvice(s: SchemaState): string {
  if (s.state === 'behind')
    return `database schema is behind this release: missing migration(s) ${s.missing.join(', ')}; run bin/cdc-migrate (or make migrate) against this database (docs/deploy.md "Upgrade")`;
  if (s.state === 'ahead')
    return `database was migrated by a newer release: ${s.unknown.join(', ')} unknown to this release; run that release, or restore the backup taken before the upgrade (docs/deploy.md "Upgrade")`;
  return 'database schema is current';
}

/**
 * Once per process, after the pool opens: a log line (error level) when the schema is not the one
 * this build expects. An unreachable database is left to the function's own errors.
 */
let seen: SchemaState | undefined;

/** The state the start-up check found (undefined before it answered): an error on a missing column or table names it (shared/http/errors.ts). */
export function schemaSeen(): SchemaState | undefined {
  return seen;
}

export function warnIfSchemaDiffers(db: Queryable): void {
  void schemaState(db).then(
    (s) => {
      seen = s;
      if (s.state !== 'current') log('error', schemaAdvice(s), { schema: s.state, missing: s.missing, unknown: s.unknown });
    },
    () => undefined,
  );
}
