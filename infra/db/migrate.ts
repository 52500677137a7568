/**
 * Migration runner. Migrations are the numbered *.sql files of infra/db (beside this module); each runs once, in
 * its own transaction, and is recorded in the ledger table `schema_migration` (openGauss 5.0 has no
 * `ADD COLUMN IF NOT EXISTS`, so a ledger — not idempotent DDL — is what makes re-runs safe).
 * An advisory lock (present on both PostgreSQL and openGauss) serialises concurrent runners.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { projectRoot } from '../root.js';
import { convertHoldReasons } from './holds-0009.js';

const here = join(projectRoot, 'infra/db');
const LOCK_KEY = 7_204_311; // arbitrary, fixed: "cdc-front migrations"

/** Data conversions SQL alone cannot do, run after a migration's SQL in its transaction. */
const FOLLOW_UPS: Record<string, (client: pg.ClientBase) => Promise<void>> = {
  '0009_record_hold.sql': convertHoldReasons,
};

export interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

export function listMigrations(dir = here): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((name) => {
      const sql = readFileSync(join(dir, name), 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    });
}

/** Applies every pending migration; returns the names applied. */
export async function migrate(databaseUrl: string, dir = here): Promise<string[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  // A lost connection fails the statement in flight (and so the run); without a listener it would
  // also be an unhandled 'error' event that ends the process.
  client.on('error', () => undefined);
  await client.connect();
  const applied: string[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
    await client.query(
      `CREATE TABLE IF NOT EXISTS schema_migration (
         name varchar(200) PRIMARY KEY,
         checksum char(64) NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const done = new Map<string, string>(
      (await client.query<{ name: string; checksum: string }>('SELECT name, checksum FROM schema_migration')).rows.map((r) => [r.name, r.checksum.trim()]),
    );
    for (const m of listMigrations(dir)) {
      const seen = done.get(m.name);
      if (seen !== undefined) {
        if (seen !== m.checksum) {
          throw new Error(`migration ${m.name} was changed after it was applied (checksum differs); add a new migration instead`);
        }
        continue;
      }
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await FOLLOW_UPS[m.name]?.(client);
        await client.query('INSERT INTO schema_migration (name, checksum) VALUES ($1, $2)', [m.name, m.checksum]);
        await client.query('COMMIT');
        applied.push(m.name);
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${m.name} failed: ${(err as Error).message}`);
      }
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]).catch(() => undefined);
    await client.end();
  }
  return applied;
}

// import.meta.main: false inside the runtime's bundle, which holds this module (infra/build/build.mjs).
if (import.meta.main) {
  const url = process.env.DATABASE_URL;
  if (!url) {
    console.error('DATABASE_URL is not set');
    process.exit(2);
  }
  migrate(url).then(
    (names) => console.log(names.length ? `applied: ${names.join(', ')}` : 'database is up to date'),
    (err) => {
      console.error(err.message);
      process.exit(1);
    },
  );
}
