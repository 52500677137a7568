/**
 * DDL of a resource's table, derived from its declaration. Used to write migrations
 * (`npx tsx schemas/ddl.ts emrActivityInfo emrInfReport ...`: the tables, their parent-reference
 * indexes, in order) and by a test that checks the migrated table still matches the declaration.
 * openGauss-safe: plain types, no identity columns.
 */
import type { Resource } from './resource.js';
import { hmacColumn, isHashed, isSealed, type FieldDef, type Personal } from './fields.js';

/**
 * A field's column type. A sealed field (AT_REST: ID numbers, names, phones, addresses) holds its protected
 * form, longer than the value and checked for length before it is sealed: `text`.
 */
export function sqlType(d: FieldDef): string {
  if (isSealed(d)) return 'text';
  switch (d.kind) {
    case 'string':
      return `varchar(${d.max ?? 250})`;
    case 'text':
      return 'text';
    case 'time':
      return 'timestamptz';
    case 'int':
      return 'integer';
    case 'decimal':
      return 'numeric(18,4)';
  }
}

/** Bookkeeping columns every resource table has (prefix rec_ keeps them apart from data set fields). */
export const BOOKKEEPING = `  rec_version integer NOT NULL,
  rec_hash char(64) NOT NULL,
  rec_raw jsonb NOT NULL,
  rec_retired boolean NOT NULL DEFAULT false,
  rec_test boolean NOT NULL DEFAULT false,
  rec_received_at timestamptz NOT NULL,
  rec_updated_at timestamptz NOT NULL,
  rec_lateness_s integer`;

/** The HMAC-SM3 column of a hashed field (64 hex digits; shared/pii). */
export const HMAC_TYPE = 'char(64)';

/** The lookup columns of a resource's hashed fields (ID numbers, names, phones), after its fields. */
export function hmacColumnsOf(r: Resource): string[] {
  return Object.values(r.fields)
    .filter(isHashed)
    .map((d) => hmacColumn(d.column));
}

/**
 * The resources looked up by person: report cards (the duplicate-card rules) and patients (the
 * console's search). Their ID number's and patient name's HMAC columns are indexed; the other
 * tables' are not (an index more on every clinical record's write, for no lookup: the write-path
 * bench, docs/keys.md).
 */
export const LOOKED_UP_BY_ID = new Set(['emrInfReport', 'emrPatientInfo']);
/** The fields a person is looked up by (docs/keys.md "The stored form"): the ID number and the patient's name. */
const LOOKUP_FIELDS = new Set(['idCard', 'patientName']);

/** One index per looked-up HMAC column (org_code, column), of the given kinds. */
export function hmacIndexes(r: Resource, kinds: readonly Personal[] = ['idno', 'name']): string[] {
  if (!LOOKED_UP_BY_ID.has(r.name)) return [];
  return Object.entries(r.fields)
    .filter(([key, d]) => isHashed(d) && LOOKUP_FIELDS.has(key) && kinds.includes(d.personal!))
    .map(([, d]) => orgIndex(r.table, hmacColumn(d.column), hmacColumn(d.column)));
}

/**
 * An index on (org_code, column) for the rows that have the column: partial, so that only a query
 * naming the column can use it and a look-up by key always takes the primary key (docs/opengauss.md
 * "Key lists").
 */
export function orgIndex(table: string, suffix: string, col: string): string {
  return `CREATE INDEX ${table}_${suffix} ON ${table} (org_code, ${col}) WHERE ${col} IS NOT NULL;`;
}

export function tableDdl(r: Resource): string {
  const cols = Object.values(r.fields).map((d) => {
    const notNull = d.column === 'id' || d.column === 'org_code' ? ' NOT NULL' : '';
    return `  ${d.column} ${sqlType(d)}${notNull}`;
  });
  cols.push(...hmacColumnsOf(r).map((c) => `  ${c} ${HMAC_TYPE}`));
  return [
    `-- ${r.name} (${r.title}); generated from schemas/ by schemas/ddl.ts`,
    `CREATE TABLE ${r.table} (`,
    [...cols, BOOKKEEPING, '  PRIMARY KEY (org_code, id)'].join(',\n'),
    `);`,
    `CREATE INDEX ${r.table}_updated ON ${r.table} (rec_updated_at);`,
    ...parentIndexes(r),
    ...hmacIndexes(r),
    '',
  ].join('\n');
}

/**
 * The migration that seals the fields of some kinds of personal data: every such column becomes
 * text, every hashed one gets its HMAC column, the looked-up ones their index. Migration 0032 sealed
 * ID numbers, phones and addresses (`npx tsx schemas/ddl.ts --pii`); migration 0990 names
 * (`--pii name`), with `legacyNameIndex` after it (docs/keys.md "Upgrading a front with data").
 */
export function piiMigration(all: Resource[], kinds: readonly Personal[] = ['idno', 'phone', 'address']): string {
  const out: string[] = [];
  for (const r of all) {
    const sealed = Object.values(r.fields).filter((d) => isSealed(d) && kinds.includes(d.personal!));
    if (sealed.length === 0) continue;
    out.push(`-- ${r.name} (${r.title})`);
    for (const d of sealed) out.push(`ALTER TABLE ${r.table} ALTER COLUMN ${d.column} TYPE text;`);
    for (const d of sealed.filter(isHashed)) out.push(`ALTER TABLE ${r.table} ADD COLUMN ${hmacColumn(d.column)} ${HMAC_TYPE};`);
    out.push(...hmacIndexes(r, kinds));
    if (kinds.includes('name')) out.push(...legacyNameIndex(r));
  }
  return out.join('\n') + '\n';
}

/**
 * The rows stored before migration 0990 hold the patient's name clear with no HMAC until `bin/cdc-keys
 * reencrypt` has run: the duplicate-card rule and the search find them by the clear name
 * (shared/warning/duplicates.ts). Partial on the HMAC being absent, the index holds those rows only —
 * none once the job has run, none on a new installation — and costs a new row's write nothing.
 */
export function legacyNameIndex(r: Resource): string[] {
  if (!LOOKED_UP_BY_ID.has(r.name) || !r.fields.patientName) return [];
  const col = r.fields.patientName.column;
  return [`CREATE INDEX ${r.table}_${col}_clear ON ${r.table} (org_code, ${col}) WHERE ${hmacColumn(col)} IS NULL AND ${col} IS NOT NULL;`];
}

/** One index per parent reference (org_code, column): finding a parent's children, and orphans. */
export function parentIndexes(r: Resource): string[] {
  return r.parents.map((p) => {
    const col = r.fields[p.field]!.column;
    return orgIndex(r.table, col, col);
  });
}

/** The schema of the database-sync staging tables (docs/dbsync.md). */
export const STAGING_SCHEMA = 'staging';

/**
 * The database-sync outcomes as the front writes, takes and purges them (one row per staging row
 * taken). The HIS reads them through the view staging.sync_result, whose `held` is derived from the
 * record's holds when read (infra/db/1010_sync_result_view.sql, docs/dbsync.md "Held records").
 */
export const OUTCOME_TABLE = `${STAGING_SCHEMA}.sync_outcome`;

/**
 * A resource's staging table for database sync (docs/dbsync.md): the same columns as the resource's
 * table, every one `text` (so a value is judged by the same pipeline as on the API, never refused by
 * the database with a message the HIS cannot act on), a sequence-ordered row id, when the row
 * was written (its receive time), and when the dbsync function took it (null while it waits: the
 * partial index the claim reads; infra/db/0900_staging_taken.sql added both to the first tables),
 * and the role that wrote it, which alone (besides the front, the tables' owner) sees and changes it
 * (row-level security; infra/db/0920_staging_roles.sql added both to the first tables); and the
 * rows taken by taken_at, which the retention purge reads (infra/db/0940_staging_purge.sql added it
 * to the first tables; docs/dbsync.md "Retention"); and the waiting rows by role and by id, which the
 * fair claim reads (infra/db/1090_staging_waiting_by_role.sql added them to the first tables;
 * docs/dbsync.md "Fair shares").
 */
export function stagingDdl(r: Resource): string {
  const cols = Object.values(r.fields).map((d) => `  ${d.column} text`);
  return [
    `-- ${r.name} (${r.title}): database-sync staging; generated from schemas/ by schemas/ddl.ts --staging`,
    `CREATE TABLE ${STAGING_SCHEMA}.${r.table} (`,
    [
      '  row_id bigserial PRIMARY KEY',
      ...cols,
      '  inserted_at timestamptz NOT NULL DEFAULT now()',
      '  taken_at timestamptz',
      '  inserted_by text DEFAULT current_user',
    ].join(',\n'),
    `);`,
    `CREATE INDEX ${r.table}_waiting ON ${STAGING_SCHEMA}.${r.table} (row_id) WHERE taken_at IS NULL;`,
    `CREATE INDEX ${r.table}_taken ON ${STAGING_SCHEMA}.${r.table} (taken_at) WHERE taken_at IS NOT NULL;`,
    `CREATE INDEX ${r.table}_waiting_by ON ${STAGING_SCHEMA}.${r.table} (inserted_by, row_id) WHERE taken_at IS NULL;`,
    `CREATE INDEX ${r.table}_waiting_key ON ${STAGING_SCHEMA}.${r.table} ((nullif(btrim(id), ''))) WHERE taken_at IS NULL;`,
    `ALTER TABLE ${STAGING_SCHEMA}.${r.table} ENABLE ROW LEVEL SECURITY;`,
    `CREATE POLICY own_rows ON ${STAGING_SCHEMA}.${r.table} USING (inserted_by IS NULL OR inserted_by = current_user);`,
    '',
  ].join('\n');
}

if (process.argv[1]?.endsWith('ddl.ts') && process.argv[2] === '--pii') {
  const { resources } = await import('./index.js');
  const kinds = process.argv.slice(3) as Personal[];
  process.stdout.write(piiMigration(Object.values(resources), kinds.length ? kinds : undefined));
} else if (process.argv[1]?.endsWith('ddl.ts') && process.argv[2] === '--staging') {
  const { resources } = await import('./index.js');
  for (const r of Object.values(resources)) process.stdout.write(stagingDdl(r));
} else if (process.argv[1]?.endsWith('ddl.ts')) {
  const { resources } = await import('./index.js');
  for (const name of process.argv.slice(2)) {
    const r = resources[name];
    if (!r) throw new Error(`unknown resource ${name}`);
    process.stdout.write(tableDdl(r));
  }
}
