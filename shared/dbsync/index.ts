/**
 * Database sync (docs/dbsync.md): the HIS writes rows into the staging tables (schema `staging`, one
 * table per resource, schemas/ddl.ts stagingDdl) instead of calling the API; this module takes them
 * in row order through the same pipeline as the API (upsertGroup: same validation, mapping, holds,
 * outbox, warnings) and records each row's outcome in staging.sync_outcome, which the HIS reads
 * through the view staging.sync_result: there each outcome's `held` is its record's holds as they
 * are when read (infra/db/1010_sync_result_view.sql, docs/dbsync.md "Held records").
 *
 * Exactly once, with two replicas at once and with a replica killed mid-batch:
 * - one replica at a time per resource: a session advisory lock taken with pg_try_advisory_lock on a
 *   connection of its own (a replica that finds it taken leaves that resource to the holder; a killed
 *   replica's connection closes and the lock goes with it) — this also keeps one record's rows in
 *   row order across batches;
 * - rows are claimed in row order with FOR UPDATE SKIP LOCKED (a row the HIS is still changing in an
 *   open transaction is taken at a later run), only rows without a result, in a transaction of the
 *   claiming connection (the one holding the advisory lock) that stays open until the claimed rows
 *   are marked taken: a HIS UPDATE of a claimed row waits for that, then finds the row taken and
 *   changes nothing (docs/dbsync.md "Taking a row");
 * - a row's result is written in the same transaction as the record it became (upsertGroup's inWave,
 *   on another connection): both commit or neither does, and the primary key of the results
 *   (resource, row_id) makes a second writer of the same row fail whole. The claiming transaction
 *   then marks the rows that have a result taken and scrubs them; a run that ends between the two
 *   (killed, or its claiming connection ended by the idle-in-transaction timeout) leaves rows with a
 *   result but no taken_at, which the next run marks taken first (finishStored) — stored once.
 *   A row the pipeline refuses writes no record: its result (the error as the API would answer it) is
 *   written in the claiming transaction, and a refusal repeated after a kill is the same refusal.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { z } from 'zod';
import { OUTCOME_TABLE, STAGING_SCHEMA } from '../../schemas/ddl.js';
import { resources } from '../../schemas/index.js';
import type { Resource } from '../../schemas/resource.js';
import type { CodeCache } from '../codes/index.js';
import { concern } from '../config/index.js';
import type { Db } from '../db/index.js';
import { dbFault } from '../db/faults.js';
import { AppError, type FieldIssue } from '../http/errors.js';
import { upsertGroup, type GroupItem, type IngestContext, type Outcome } from '../ingest/index.js';
import { recordRejections, type Rejection } from '../ingest/store.js';
import { log } from '../log/index.js';
import { sealedFields } from '../pii/index.js';

export const dbsyncConcern = concern({
  name: 'dbsync',
  vars: {
    DBSYNC_BATCH: z.coerce.number().int().min(1).max(5000).default(500),
    /** Org codes the HIS's rows may carry: `*` (any) or a comma-separated list. */
    DBSYNC_ORGS: z.string().default('*'),
    /** How long one run may keep taking batches before it leaves the rest to the next run. */
    DBSYNC_RUN_MS: z.coerce.number().int().min(1000).default(40_000),
    FRONT_ORG_CODE: z.string().default(''),
    TEST_ORG_CODES: z.string().default(''),
    /** Told after a run that changed records, as the receive functions tell them (docs/ingest.md). */
    PUSH_NUDGE_URL: z.string().default(''),
    WARNING_NUDGE_URL: z.string().default(''),
  },
  build: (v) => {
    const orgs =
      v.DBSYNC_ORGS.trim() === '*'
        ? ('*' as const)
        : v.DBSYNC_ORGS.split(',')
            .map((s) => s.trim())
            .filter(Boolean);
    return {
      batch: v.DBSYNC_BATCH,
      orgs,
      runMs: v.DBSYNC_RUN_MS,
      installationOrg: v.FRONT_ORG_CODE || null,
      testOrgs: new Set(
        v.TEST_ORG_CODES.split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      ),
      pushNudgeUrl: v.PUSH_NUDGE_URL,
      warningNudgeUrl: v.WARNING_NUDGE_URL,
    };
  },
});
export type DbsyncSettings = ReturnType<typeof dbsyncConcern.build>;

/** Every resource has a staging table of the same name in the staging schema. */
export const stagingTable = (r: Resource): string => `${STAGING_SCHEMA}.${r.table}`;

export interface ResourceRun {
  resource: string;
  /** Another replica holds this resource: left to it. */
  busy?: boolean;
  taken: number;
  created: number;
  updated: number;
  unchanged: number;
  retired: number;
  rejected: number;
  /** Its time ran out with rows still waiting (the last batch was full). */
  more?: boolean;
  /** A database fault ended this table's run (the class, docs/faults.md): the other tables went on. */
  failed?: string;
}

export interface SyncOptions {
  settings: DbsyncSettings;
  codes?: CodeCache;
  /** Called inside each wave's transaction before it commits (tests: a kill mid-batch). */
  beforeCommit?: () => Promise<void>;
  now?: () => Date;
  /** The values one batch reads at most; default BATCH_MAX_BYTES (tests: smaller). */
  batchBytes?: number;
  /** The HIS roles' bound orgs (default: read from dbsync_role_org at the start of the run). */
  roles?: RoleOrgs;
  /**
   * True once the function is stopping: the run takes no further batch (the one under way commits
   * or rolls back whole), and the rows left wait for the next start (docs/dbsync.md "Stopping").
   */
  stopping?: () => boolean;
  /**
   * Where each table's run got to, per role (row_id): within one run a table's claims go on past rows
   * left waiting behind a locked row instead of finding them first again (syncAll keeps one per run).
   */
  cursors?: Map<string, TableCursor>;
  /** When the run ends (default: DBSYNC_RUN_MS from the start of syncAll): the function's later passes share one run's time. */
  deadline?: number;
}

/**
 * Where one table's claims of a run got to: per role (inserted_by; null for rows written before
 * roles) the last row looked at, and whose share comes first in the next batch (docs/dbsync.md "Fair
 * shares").
 */
export interface TableCursor {
  after: Map<string | null, string>;
  turn: number;
}
export const newCursor = (): TableCursor => ({ after: new Map(), turn: 0 });

/**
 * The orgs each HIS role may write rows for (docs/dbsync.md "Several hospitals"), by role name, as
 * bin/cdc-dbsync --orgs recorded them in dbsync_role_org. A role absent here is not bound: its rows
 * may carry any org DBSYNC_ORGS allows (one hospital per front, or rows written before the binding).
 */
export type RoleOrgs = ReadonlyMap<string, readonly string[]>;

export async function readRoleOrgs(db: Pick<pg.ClientBase, 'query'>): Promise<RoleOrgs> {
  const res = await db.query<{ role_name: string; org_code: string }>('SELECT role_name, org_code FROM dbsync_role_org ORDER BY role_name, org_code');
  const out = new Map<string, string[]>();
  for (const x of res.rows) (out.get(x.role_name) ?? out.set(x.role_name, []).get(x.role_name)!).push(x.org_code);
  return out;
}

/**
 * One pass over every staging table, in the data set's order (parents' resources first), in two
 * rounds (docs/dbsync.md "Fair shares"): first each table in turn gets its share of what is left of
 * the run (the time left divided by the tables left: an empty table passes its share on), so a
 * backlog in one table — one hospital's flood of staged rows — cannot keep every later table's rows
 * waiting run after run; then the rest of the run goes to the tables whose share ran out with rows
 * still waiting, in the same order.
 */
export async function syncAll(db: Db, o: SyncOptions): Promise<ResourceRun[]> {
  const deadline = o.deadline ?? Date.now() + o.settings.runMs;
  await assertSeesEveryRow(db);
  const withRoles = { ...o, roles: o.roles ?? (await readRoleOrgs(db)), cursors: o.cursors ?? new Map<string, TableCursor>() };
  const tables = Object.values(resources);
  const runs = new Map<string, ResourceRun>();
  for (const [i, r] of tables.entries()) {
    if (o.stopping?.()) break;
    const share = Math.max(0, deadline - Date.now()) / (tables.length - i);
    runs.set(r.name, await syncTable(db, r, withRoles, Math.min(deadline, Date.now() + share)));
  }
  for (const r of tables) {
    if (o.stopping?.() || Date.now() >= deadline) break;
    const first = runs.get(r.name);
    if (first?.more) runs.set(r.name, addRuns(first, await syncTable(db, r, withRoles, deadline)));
  }
  return [...runs.values()];
}

/**
 * One table's part of a run; a database fault in it (a statement timeout, a lost connection) ends
 * that table's part only: it is logged ("database fault") naming the table and the roles whose rows
 * the failed batch held, the table's rows wait for the next run (nothing half-taken, docs/dbsync.md
 * "Exactly once"), and the run goes on with the other tables.
 */
async function syncTable(db: Db, r: Resource, o: SyncOptions, deadline: number): Promise<ResourceRun> {
  try {
    return await syncResource(db, r, o, deadline);
  } catch (err) {
    const fault = dbFault(err);
    // Anything else is a defect: the run fails as it did.
    if (!fault) throw err;
    const e = err as Error & { code?: string; roles?: string[] };
    // No message of the database's: it may quote a value of the row (a key, a constraint's detail).
    log('warn', 'database fault', {
      resource: r.name,
      ...(e.roles?.length ? { roles: e.roles } : {}),
      fault,
      ...(e.code ? { code: e.code } : {}),
    });
    return { ...emptyRun(r), failed: fault };
  }
}

const emptyRun = (r: Resource): ResourceRun => ({ resource: r.name, taken: 0, created: 0, updated: 0, unchanged: 0, retired: 0, rejected: 0 });

/** Two runs of one table added up; `more` as the second says. */
function addRuns(a: ResourceRun, b: ResourceRun): ResourceRun {
  return {
    resource: a.resource,
    ...(a.busy || b.busy ? { busy: true } : {}),
    taken: a.taken + b.taken,
    created: a.created + b.created,
    updated: a.updated + b.updated,
    unchanged: a.unchanged + b.unchanged,
    retired: a.retired + b.retired,
    rejected: a.rejected + b.rejected,
    ...(b.more ? { more: true } : {}),
    ...(b.failed ? { failed: b.failed } : {}),
  };
}

/**
 * The front's user must own the staging tables (the migrations ran as it) or pass row-level security
 * by its role: row-level security shows any other role only the rows it wrote itself (docs/dbsync.md
 * "Several hospitals"), and a front that saw none of the HIS's rows would take nothing, silently. Said
 * loudly instead. Who passes it is a role attribute whose column differs by dialect — PostgreSQL's
 * `rolsuper`, `rolbypassrls`; openGauss's `rolsuper`, `rolsystemadmin` (docs/opengauss.md) — so the
 * role's row is read whole and whichever the server has is looked at.
 */
const BYPASSES_RLS = ['rolsuper', 'rolbypassrls', 'rolsystemadmin'] as const;

export async function assertSeesEveryRow(db: Pick<pg.ClientBase, 'query'>): Promise<void> {
  const r = await db.query<{ owner: string; me: string }>(
    `SELECT pg_get_userbyid(c.relowner) AS owner, current_user AS me
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = 'sync_outcome'`,
    [STAGING_SCHEMA],
  );
  const x = r.rows[0];
  if (!x || x.owner === x.me) return;
  const role = (await db.query<Record<string, unknown>>('SELECT * FROM pg_roles WHERE rolname = current_user')).rows[0] ?? {};
  if (!BYPASSES_RLS.some((k) => role[k] === true))
    throw new Error(
      `the front's database user ${x.me} does not own the staging tables (${x.owner} does): row-level security would hide the HIS's rows from it; run the migrations as ${x.me} (docs/dbsync.md)`,
    );
}

/** A 63-bit advisory lock key per staging table. */
export function lockKeyOf(r: Resource): string {
  return BigInt.asIntN(64, BigInt('0x' + createHash('sha256').update(`dbsync:${r.table}`).digest('hex').slice(0, 16))).toString();
}

export async function syncResource(db: Db, r: Resource, o: SyncOptions, deadline = Date.now() + o.settings.runMs): Promise<ResourceRun> {
  const run: ResourceRun = emptyRun(r);
  const client = await db.connect();
  let locked = false;
  let broken: Error | undefined;
  try {
    locked = (await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS ok', [lockKeyOf(r)])).rows[0]!.ok;
    if (!locked) return { ...run, busy: true };
    const callers = callersOf(o.settings, o.roles ?? (await readRoleOrgs(client)));
    let full = false;
    const cursor = o.cursors?.get(r.name) ?? newCursor();
    let first = true;
    // Roles whose open transactions hold rows of this table (skipped by the claims), for the log.
    const lockedBy = new Set<string>();
    let lockedRows = false;
    // A batch is begun only when one as long as the last one still ends within the deadline: a run
    // no longer overruns DBSYNC_RUN_MS by a whole batch; a table's first batch runs while the run has time
    // left (its length is not known yet), none once the deadline has passed.
    let lastMs = 0;
    while (Date.now() + lastMs < deadline && !o.stopping?.()) {
      const batchStart = Date.now();
      full = false;
      let claimed: Claimed | undefined;
      await client.query('BEGIN');
      try {
        if (first) await finishStored(client, r);
        first = false;
        claimed = await claim(client, r, o.settings.batch, o.batchBytes, cursor);
        if (claimed.rows.length || claimed.tooLarge.length) await takeBatch(db, client, r, claimed, o, callers, run);
        await client.query('COMMIT');
      } catch (err) {
        broken = err as Error;
        if (claimed) (err as { roles?: string[] }).roles = rolesOf(claimed);
        // The rows stored before the fault are marked taken still (their records and results are
        // committed); the rest wait for the next run. A failure here is left to that run as well.
        try {
          if (claimed && dbFault(err) !== 'unavailable') {
            await markTaken(client, r, claimIds(claimed));
            await client.query('COMMIT');
          } else await client.query('ROLLBACK');
        } catch {
          await client.query('ROLLBACK').catch(() => undefined);
        }
        throw err;
      }
      for (const [role, last] of claimed.lasts) cursor.after.set(role, last);
      cursor.turn++;
      lastMs = Date.now() - batchStart;
      for (const x of claimed.lockedBy) lockedBy.add(x);
      lockedRows ||= claimed.locked > 0;
      if (claimed.seen === 0) break;
      full = claimed.seen >= o.settings.batch;
      if (!full) break;
    }
    o.cursors?.set(r.name, cursor);
    if (run.taken === 0 && lockedRows) await logStalled(client, r, lockedBy, o.settings.runMs);
    return full ? { ...run, more: true } : run;
  } finally {
    // A connection whose transaction failed is closed, not returned to the pool: its session lock goes with it.
    if (locked && !broken) await client.query('SELECT pg_advisory_unlock($1::bigint)', [lockKeyOf(r)]).catch(() => undefined);
    client.release(broken);
  }
}

/** The roles whose rows a claim handed over (a fault's log line names them; no value of a row). */
function rolesOf(c: Claimed): string[] {
  const roles = new Set<string>();
  for (const x of c.rows) if (x.inserted_by) roles.add(x.inserted_by);
  for (const x of c.tooLarge) if (x.row.inserted_by) roles.add(x.row.inserted_by);
  return [...roles].sort();
}

const claimIds = (c: Claimed): string[] => [...c.rows.map((x) => x.row_id), ...c.tooLarge.map((x) => x.row.row_id)];

/**
 * A run that took no row of a table whose rows wait behind rows an open HIS transaction holds says
 * so, once per table and run: the table, how many rows wait, and the roles holding them — role names
 * only, never a value of a row (docs/dbsync.md "Rows held by a HIS transaction").
 */
async function logStalled(client: Pick<pg.ClientBase, 'query'>, r: Resource, lockedBy: Set<string>, runMs: number): Promise<void> {
  // A run may pass over the tables more than once (the function's nudge loop): one line per run.
  if (Date.now() - (stalledLogged.get(r.name) ?? Number.NEGATIVE_INFINITY) < runMs) return;
  const n = await client.query<{ waiting: string }>(lagSqlOf(r), [r.name]);
  const waiting = Number(n.rows[0]?.waiting ?? 0);
  if (waiting === 0) return;
  stalledLogged.set(r.name, Date.now());
  log('warn', 'dbsync rows wait behind a HIS transaction', { resource: r.name, waiting, roles: [...lockedBy].sort() });
}
const stalledLogged = new Map<string, number>();

type StagedRow = Record<string, string | null> & { row_id: string; inserted_at: Date };
/** What a refusal names of its row. */
type RowKey = { row_id: string; org_code?: string | null; id?: string | null; inserted_by?: string | null };

/**
 * A staging row whose values together are larger than this is refused (PAYLOAD_TOO_LARGE) without
 * being read: the API refuses a body over its default MAX_BODY_BYTES, 8 MiB (docs/runtime.md), and
 * a text column has no length limit of its own — one row of hundreds of MiB read into the function
 * would end it, run after run, and every row behind it would wait (docs/dbsync.md).
 */
export const ROW_MAX_BYTES = 8 * 1024 * 1024;
/** The values one batch reads at most (the first row of a batch is always taken). */
export const BATCH_MAX_BYTES = 16 * 1024 * 1024;

/** What a claim hands over: rows read in full, and rows too large to read (their sizes by column). */
export interface Claimed {
  rows: StagedRow[];
  tooLarge: Array<{ row: RowKey; bytes: number; columns: Record<string, number> }>;
  /** Rows looked at (taken now, refused, or left waiting behind a locked row): fewer than the batch means nothing else waits. */
  seen: number;
  /** Per role, the last row looked at: that role's next claim of the run starts after it (a role absent: unchanged). */
  lasts: Map<string | null, string>;
  /** Rows the claim skipped because an open transaction holds them, and the roles that wrote them. */
  locked: number;
  lockedBy: string[];
}

/**
 * The claim's first statement for one role's rows ($1 the resource, $2 the rows; with `after`, $3
 * the row it starts after; with `role` 'role', $4 the role, with 'none' the rows of no role; without
 * `role` every role's): the next waiting rows' ids, sizes and record keys (the id and the org as the
 * pipeline reads them: trimmed, an empty one as none). One role's rows are read by the partial index
 * of the waiting rows by role (infra/db/1090_staging_waiting_by_role.sql).
 */
export function claimSql(r: Resource, after = false, role?: 'role' | 'none'): string {
  const size = Object.values(r.fields)
    .map((d) => `coalesce(octet_length(s.${d.column}), 0)`)
    .join(' + ');
  const byRole = role === 'role' ? ' AND s.inserted_by = $4' : role === 'none' ? ' AND s.inserted_by IS NULL' : '';
  return `SELECT s.row_id::text AS row_id, (${size})::bigint AS bytes, s.inserted_by,
             ${keyOf('s', 'id')} AS key_id, ${keyOf('s', 'org_code')} AS key_org FROM ${stagingTable(r)} s
      WHERE s.taken_at IS NULL${after ? ' AND s.row_id > $3::bigint' : ''}${byRole}
        AND NOT EXISTS (SELECT 1 FROM ${OUTCOME_TABLE} x WHERE x.resource = $1 AND x.row_id = s.row_id)
      ORDER BY s.row_id LIMIT $2 FOR UPDATE OF s SKIP LOCKED`;
}

/** A record's id or org as the pipeline reads it: trimmed, an empty one as none (the key index's expression). */
const keyOf = (t: string, c: string) => `nullif(btrim(${t}.${c}), '')`;

/**
 * The roles (inserted_by) with rows waiting in a table, null for rows of no role, each with its first
 * waiting row: one descent of the index of the waiting rows by role per role (a loose index scan),
 * however many rows each has staged.
 */
export function waitingRolesSql(r: Resource): string {
  const t = stagingTable(r);
  return `WITH RECURSIVE g(role) AS (
        SELECT min(s.inserted_by) FROM ${t} s WHERE s.taken_at IS NULL
        UNION ALL
        SELECT (SELECT min(s.inserted_by) FROM ${t} s WHERE s.taken_at IS NULL AND s.inserted_by > g.role) FROM g WHERE g.role IS NOT NULL
      )
      SELECT g.role, (SELECT min(s.row_id) FROM ${t} s WHERE s.taken_at IS NULL AND s.inserted_by = g.role)::text AS first FROM g WHERE g.role IS NOT NULL
      UNION ALL
      SELECT NULL::text AS role, min(s.row_id)::text AS first FROM ${t} s WHERE s.taken_at IS NULL AND s.inserted_by IS NULL HAVING min(s.row_id) IS NOT NULL`;
}

/** A row a claim found: its size and its record's key. */
interface Found {
  row_id: string;
  bytes: string;
  inserted_by: string | null;
  key_id: string | null;
  key_org: string | null;
}

/** Rows of one record as behindSkipped compares them: the same id, and the same org or one of them without. */
const sameRecord = (a: Found, b: Found) => a.key_id !== null && a.key_id === b.key_id && (a.key_org === null || b.key_org === null || a.key_org === b.key_org);

/** How far a claim reached in one role's rows: after its cursor, up to its last row found (null: to its end). */
type Reach = { role: string | null; from: string; after: string; upTo: string | null };

/** The largest row_id: a role whose claim reached its end has no row the claim did not reach. */
const END = 9223372036854775807n;

/**
 * The rows of a claim that must wait: those of a record with an earlier row still waiting that the
 * claim did not take — an open HIS transaction holds it (an UPDATE of its columns, a long
 * statement), or an earlier claim of this run left it waiting behind such a row. Taken now, a
 * record's later version would be stored before the earlier one, which would then come in as the
 * newest (docs/dbsync.md, rule 1). One record's rows are those of one role (a row of another role is
 * another caller's, and may neither hold nor be held by it) with the same id and org as the pipeline
 * reads them — trimmed, an empty org as none — where a row without an org matches any org of its
 * role's rows: its org is only resolved by the pipeline (the role's own, the front's, a parent's), and
 * holding a row too many is safe where one too few reorders. Each role's waiting rows from its first
 * up to its claim's last (up to its end when its claim reached it: `upTo` null) are read without
 * locks (the partial index of the waiting rows by role); only when some were skipped are records compared. Also
 * says which of the skipped rows the claim itself passed over (locked now: after the role's `after`)
 * and who wrote them.
 */
async function behindSkipped(
  client: Pick<pg.ClientBase, 'query'>,
  r: Resource,
  claimed: string[],
  reach: Reach[],
): Promise<{ wait: Set<string>; locked: number; lockedBy: string[] }> {
  const none = { wait: new Set<string>(), locked: 0, lockedBy: [] };
  if (reach.length === 0) return none;
  const params: unknown[] = [r.name];
  const terms = reach.map((x) => {
    // From the role's first waiting row: a range the planner sees is narrow (the index by role, not the table).
    const role = x.role === null ? 's.inserted_by IS NULL' : `s.inserted_by = $${params.push(x.role)}`;
    const from = `s.row_id >= $${params.push(x.from)}::bigint`;
    return x.upTo === null ? `(${role} AND ${from})` : `(${role} AND ${from} AND s.row_id <= $${params.push(x.upTo)}::bigint)`;
  });
  const waiting = await client.query<{ row_id: string; inserted_by: string | null }>(
    `SELECT s.row_id::text AS row_id, s.inserted_by FROM ${stagingTable(r)} s
      WHERE s.taken_at IS NULL AND (${terms.join(' OR ')})
        AND NOT EXISTS (SELECT 1 FROM ${OUTCOME_TABLE} x WHERE x.resource = $1 AND x.row_id = s.row_id)`,
    params,
  );
  const mine = new Set(claimed);
  const skippedRows = waiting.rows.filter((x) => !mine.has(x.row_id));
  if (skippedRows.length === 0) return none;
  const afterOf = new Map(reach.map((x) => [x.role, BigInt(x.after)]));
  const lockedRows = skippedRows.filter((x) => BigInt(x.row_id) > (afterOf.get(x.inserted_by ?? null) ?? 0n));
  const lockedBy = [...new Set(lockedRows.flatMap((x) => (x.inserted_by ? [x.inserted_by] : [])))].sort();
  if (claimed.length === 0) return { wait: new Set(), locked: lockedRows.length, lockedBy };
  const behind = await client.query<{ row_id: string }>(
    `SELECT b.row_id::text AS row_id FROM ${stagingTable(r)} b
      WHERE b.row_id = ANY($1::bigint[])
        AND EXISTS (SELECT 1 FROM ${stagingTable(r)} k WHERE k.row_id = ANY($2::bigint[]) AND k.row_id < b.row_id
                      AND k.inserted_by IS NOT DISTINCT FROM b.inserted_by
                      AND ${keyOf('k', 'id')} = ${keyOf('b', 'id')}
                      AND (${keyOf('k', 'org_code')} IS NULL OR ${keyOf('b', 'org_code')} IS NULL OR ${keyOf('k', 'org_code')} = ${keyOf('b', 'org_code')}))`,
    [claimed, skippedRows.map((x) => x.row_id)],
  );
  return { wait: new Set(behind.rows.map((x) => x.row_id)), locked: lockedRows.length, lockedBy };
}

/**
 * The rows of a claim that must wait for an earlier row of the same record written by another role
 * that the claim did not reach: that role's rows after `upTo` (its share of the batch was full). Rows
 * of two roles with the same id and org — two HIS systems of one hospital writing the same record —
 * are stored in row order, as they were before the batch was shared (docs/dbsync.md "Fair shares").
 * A row the claim reached and left waiting (held open by a HIS transaction, or behind such a row)
 * holds its own role's rows only (behindSkipped). Only rows after another role's reach can be held;
 * their ids are looked up at once in the index of the waiting rows by id
 * (infra/db/1090_staging_waiting_by_role.sql), and the rows found compared here.
 */
async function behindOtherRoles(
  client: Pick<pg.ClientBase, 'query'>,
  r: Resource,
  claimed: Found[],
  upTo: ReadonlyMap<string | null, bigint>,
): Promise<Set<string>> {
  const reachOf = (role: string | null) => upTo.get(role) ?? 0n;
  const open = claimed.filter((b) => b.key_id !== null && [...upTo].some(([role, to]) => role !== b.inserted_by && to < BigInt(b.row_id)));
  if (open.length === 0) return new Set();
  const res = await client.query<Found>(
    `SELECT k.row_id::text AS row_id, k.inserted_by, ${keyOf('k', 'id')} AS key_id, ${keyOf('k', 'org_code')} AS key_org FROM ${stagingTable(r)} k
      WHERE k.taken_at IS NULL AND ${keyOf('k', 'id')} = ANY($2::text[]) AND k.row_id < $3::bigint
        AND NOT EXISTS (SELECT 1 FROM ${OUTCOME_TABLE} x WHERE x.resource = $1 AND x.row_id = k.row_id)`,
    [
      r.name,
      [...new Set(open.map((b) => b.key_id))],
      open
        .map((b) => BigInt(b.row_id))
        .reduce((m, x) => (x > m ? x : m))
        .toString(),
    ],
  );
  // Another role's rows the claim did not reach: after that role's reach (a role the claim did not know, all of them).
  const unreached = res.rows.filter((k) => BigInt(k.row_id) > reachOf(k.inserted_by));
  const wait = new Set<string>();
  for (const b of open)
    if (unreached.some((k) => k.inserted_by !== b.inserted_by && BigInt(k.row_id) < BigInt(b.row_id) && sameRecord(k, b))) wait.add(b.row_id);
  return wait;
}

/**
 * The next rows without a result, each role's after where its claims of the run got to (`cursor`),
 * locked until the claiming transaction ends, shared between the roles with rows waiting
 * (docs/dbsync.md "Fair shares"): each gets an equal share of the batch in row order, and what a
 * role leaves of its share goes to the roles that have more — so one role's flood is taken beside
 * another role's few rows, not before them. Rows locked by an open HIS transaction are skipped, and
 * the later rows of their records wait with them (behindSkipped); a row also waits for an earlier
 * row of its record by another role not reached yet (behindOtherRoles), and that role's claims stay
 * at it until it can go. Sizes are read first (octet_length, no values), so a batch holds at most
 * BATCH_MAX_BYTES of values, filled in turn from each role's rows, and a row over ROW_MAX_BYTES is
 * never read whole: only its org, id and column sizes.
 */
export async function claim(
  client: Pick<pg.ClientBase, 'query'>,
  r: Resource,
  limit: number,
  batchBytes = BATCH_MAX_BYTES,
  cursor: TableCursor = newCursor(),
): Promise<Claimed> {
  const waitingRows = (await client.query<{ role: string | null; first: string }>(waitingRolesSql(r))).rows;
  const waitingRoles = waitingRows.map((x) => x.role);
  const firstOf = new Map(waitingRows.map((x) => [x.role, x.first]));
  // Whose share comes first turns from batch to batch: a batch smaller than the roles reaches them all.
  const start = waitingRoles.length ? cursor.turn % waitingRoles.length : 0;
  const roles = [...waitingRoles.slice(start), ...waitingRoles.slice(0, start)];
  const found = new Map<string | null, Found[]>(roles.map((x) => [x, []]));
  const toEnd = new Set<string | null>();
  let left = limit;
  let active = roles;
  while (left > 0 && active.length > 0) {
    const share = Math.ceil(left / active.length);
    const more: Array<string | null> = [];
    for (const role of active) {
      const n = Math.min(share, left);
      if (n <= 0) break;
      const mine = found.get(role)!;
      const after = mine.at(-1)?.row_id ?? cursor.after.get(role) ?? '0';
      const res = await client.query<Found>(claimSql(r, true, role === null ? 'none' : 'role'), role === null ? [r.name, n, after] : [r.name, n, after, role]);
      mine.push(...res.rows);
      left -= res.rows.length;
      if (res.rows.length < n) toEnd.add(role);
      else more.push(role);
    }
    active = more;
  }
  const all = [...found.values()].flat();
  const ids = all.map((x) => x.row_id);
  const afterOf = (role: string | null) => cursor.after.get(role) ?? '0';
  const { wait, locked, lockedBy } = await behindSkipped(
    client,
    r,
    ids,
    roles.flatMap((role): Reach[] => {
      const mine = found.get(role)!;
      const from = firstOf.get(role) ?? '0';
      if (toEnd.has(role)) return [{ role, from, after: afterOf(role), upTo: null }];
      return mine.length ? [{ role, from, after: afterOf(role), upTo: mine.at(-1)!.row_id }] : [];
    }),
  );
  // Rows that wait for another role's earlier row of their record stop their role's claims there.
  const stop =
    roles.length > 1
      ? await behindOtherRoles(
          client,
          r,
          all.filter((x) => !wait.has(x.row_id)),
          new Map(roles.map((role) => [role, toEnd.has(role) ? END : BigInt(found.get(role)!.at(-1)?.row_id ?? afterOf(role))])),
        )
      : new Set<string>();
  for (const x of stop) wait.add(x);
  const holdLater = () => {
    // A row of a record whose earlier row in the claim waits waits too (and stops where that one does).
    for (const mine of found.values())
      for (const [i, x] of mine.entries()) {
        if (wait.has(x.row_id)) continue;
        const held = mine.slice(0, i).find((y) => wait.has(y.row_id) && sameRecord(y, x));
        if (!held) continue;
        wait.add(x.row_id);
        if (stop.has(held.row_id)) stop.add(x.row_id);
      }
  };
  holdLater();
  // The rows in turn, one of each role's: a batch cut short by its bytes is shared too.
  const inTurn: Found[] = [];
  for (let i = 0; inTurn.length < all.length; i++) for (const role of roles) if (found.get(role)![i]) inTurn.push(found.get(role)![i]!);
  const looked: Found[] = [];
  let total = 0;
  let cut = false;
  for (const x of inTurn) {
    // Rows left to wait behind a skipped one count as looked at: the rows after them are taken on.
    if (!wait.has(x.row_id)) {
      const bytes = Number(x.bytes);
      if (bytes <= ROW_MAX_BYTES) {
        if (total > 0 && total + bytes > batchBytes) {
          cut = true;
          break;
        }
        total += bytes;
      }
    }
    looked.push(x);
  }
  if (cut) {
    // A row the cut left out holds another role's later rows of its record, as a row not reached does.
    const left = inTurn.slice(looked.length);
    for (const x of looked)
      if (!wait.has(x.row_id) && left.some((k) => k.inserted_by !== x.inserted_by && BigInt(k.row_id) < BigInt(x.row_id) && sameRecord(k, x))) {
        wait.add(x.row_id);
        stop.add(x.row_id);
      }
    holdLater();
  }
  const isLooked = new Set(looked.map((x) => x.row_id));
  const lasts = new Map<string | null, string>();
  for (const role of roles)
    for (const x of found.get(role)!) {
      if (!isLooked.has(x.row_id) || stop.has(x.row_id)) break;
      lasts.set(role, x.row_id);
    }
  const whole = looked.filter((x) => !wait.has(x.row_id) && Number(x.bytes) <= ROW_MAX_BYTES).map((x) => x.row_id);
  const large = looked.filter((x) => !wait.has(x.row_id) && Number(x.bytes) > ROW_MAX_BYTES).map((x) => x.row_id);
  // A batch cut short by its bytes is not the end of the table: seen < limit only when nothing waits.
  const seen = cut ? limit : looked.length;
  const cols = Object.values(r.fields).map((d) => d.column);
  const rows = whole.length
    ? (await client.query<StagedRow>(`SELECT s.* FROM ${stagingTable(r)} s WHERE s.row_id = ANY($1::bigint[]) ORDER BY s.row_id`, [whole])).rows
    : [];
  const tooLarge: Claimed['tooLarge'] = [];
  if (large.length) {
    const res = await client.query<Record<string, string | null> & { row_id: string }>(
      `SELECT s.row_id::text AS row_id, left(s.org_code, 50) AS org_code, left(s.id, 80) AS id, s.inserted_by,
              ${cols.map((c) => `coalesce(octet_length(s.${c}), 0) AS "size:${c}"`).join(', ')}
         FROM ${stagingTable(r)} s WHERE s.row_id = ANY($1::bigint[]) ORDER BY s.row_id`,
      [large],
    );
    for (const x of res.rows) {
      const columns: Record<string, number> = {};
      for (const c of cols) columns[c] = Number(x[`size:${c}`]);
      const bytes = Object.values(columns).reduce((a, b) => a + b, 0);
      tooLarge.push({ row: { row_id: x.row_id, org_code: x.org_code ?? null, id: x.id ?? null, inserted_by: x.inserted_by ?? null }, bytes, columns });
    }
  }
  return { rows, tooLarge, seen, lasts, locked, lockedBy };
}

/**
 * The refusal of a row too large to read: the largest columns that take it over ROW_MAX_BYTES are
 * named, each with its size, as the API names a field (docs/dbsync.md).
 */
export function tooLargeError(r: Resource, x: Claimed['tooLarge'][number]): AppError {
  const names = new Map(Object.entries(r.fields).map(([name, d]) => [d.column, name]));
  const issues: FieldIssue[] = [];
  let rest = x.bytes;
  for (const [col, bytes] of Object.entries(x.columns).sort((a, b) => b[1] - a[1])) {
    if (rest <= ROW_MAX_BYTES) break;
    issues.push({
      field: names.get(col) ?? col,
      rule: 'tooLarge',
      message: `数据过大：该列 ${bytes} 字节，整行 ${x.bytes} 字节，超过 ${ROW_MAX_BYTES} 字节 (column of ${bytes} bytes; the row's values exceed ${ROW_MAX_BYTES} bytes)`,
    });
    rest -= bytes;
  }
  return new AppError(
    'PAYLOAD_TOO_LARGE',
    `中间表行数据过大（${x.bytes} 字节，上限 ${ROW_MAX_BYTES}），未读取 (row values of ${x.bytes} bytes exceed ${ROW_MAX_BYTES}; not read)`,
    issues,
    x.row.id,
  );
}

/**
 * PostgreSQL and openGauss write a timestamp with time zone as text with an offset of hours alone
 * ("2026-12-05 10:42:11.123456+08"): what a HIS gets in a text column when it inserts a timestamptz
 * value (`now()`, or a time column of its own). That is the instant ISO 8601 writes as
 * "2026-12-05T10:42:11.123456+08:00", which the API takes; the row is read as that.
 */
const PG_TIMESTAMPTZ = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)([+-]\d{2})(?::?(\d{2}))?(?::(\d{2}))?$/;
export function isoOfPgTime(v: string): string {
  const m = PG_TIMESTAMPTZ.exec(v.trim());
  if (!m) return v;
  if (m[5] === undefined) return `${m[1]}T${m[2]}${m[3]}:${m[4] ?? '00'}`;
  // Before 1901 a zone's offset is its local mean time, with seconds ("1899-05-01 00:00:00+08:05:43"
  // in Asia/Shanghai), which ISO 8601 cannot write: the same instant in UTC.
  const sign = m[3]!.startsWith('-') ? -1 : 1;
  const offsetS = sign * (Math.abs(Number(m[3])) * 3600 + Number(m[4] ?? 0) * 60 + Number(m[5]));
  const local = Date.parse(`${m[1]}T${m[2]!.slice(0, 12)}Z`);
  return Number.isNaN(local) ? v : new Date(local - offsetS * 1000).toISOString();
}

/** A staging row as the HIS would have posted it: each non-null column under its field's name. */
export function recordOf(r: Resource, row: Record<string, unknown>): Record<string, unknown> {
  const rec: Record<string, unknown> = {};
  for (const [name, def] of Object.entries(r.fields)) {
    const v = row[def.column];
    if (v === null || v === undefined) continue;
    rec[name] = def.kind === 'time' && typeof v === 'string' ? isoOfPgTime(v) : v;
  }
  return rec;
}

async function takeBatch(db: Db, claiming: pg.ClientBase, r: Resource, claimed: Claimed, o: SyncOptions, callers: Callers, run: ResourceRun): Promise<void> {
  const s = o.settings;
  const { rows } = claimed;
  const items: GroupItem[] = rows.map((row) => ({ body: recordOf(r, row), ctx: contextOf(row, s, callers, o.codes) }));
  // The refusals' log rows and the code sightings are written with the rows' outcomes, so that a run
  // killed mid-batch counts them once when its rows are taken again (docs/dbsync.md "Exactly once").
  const rejections: Rejection[] = [];
  // Stored on another connection, one transaction per wave, each with its rows' results; the claimed
  // rows stay locked by the claiming transaction meanwhile (a HIS UPDATE of one waits for it).
  const results = rows.length
    ? await upsertGroup(db, r, items, {
        bookkeeping: { rejections: (list) => rejections.push(...list) },
        inWave: async (tx, written) => {
          await writeResults(
            tx,
            written.map(({ index, outcome }) => resultOf(r, rows[index]!, outcome)),
          );
          await o.beforeCommit?.();
        },
      })
    : [];
  const refused = [
    ...results.flatMap((x, i) => (x.ok ? [] : [errorResultOf(r, rows[i]!, x.error)])),
    ...claimed.tooLarge.map((x) => errorResultOf(r, x.row, tooLargeError(r, x))),
  ];
  // The refusals in the claiming transaction, which then marks every claimed row with a result taken.
  await recordRejections(claiming, rejections);
  await writeResults(claiming, refused);
  await markTaken(claiming, r, claimIds(claimed));
  run.taken += rows.length + claimed.tooLarge.length;
  run.rejected += claimed.tooLarge.length;
  for (const x of results) {
    if (!x.ok) run.rejected++;
    else run[x.outcome.status]++;
  }
  log('debug', 'dbsync batch', { resource: r.name, taken: rows.length + claimed.tooLarge.length, rejected: refused.length });
}

/**
 * A staging row taken (stored, or refused with its result written) is marked taken (taken_at: the
 * claim and the lag read only the rows waiting, by a partial index, infra/db/0900_staging_taken.sql)
 * and keeps no ID number, name, phone or address: its sealed fields' columns are emptied. The record's
 * own copies are sealed (docs/keys.md), and a refused row is corrected by a new row. Only the rows
 * given that have a result are marked, with its time (taken_at = processed_at), in the transaction
 * that claimed and locked them: a HIS UPDATE waiting on one then finds it taken and changes nothing.
 */
async function markTaken(tx: Pick<pg.ClientBase, 'query'>, r: Resource, rowIds: string[]): Promise<void> {
  if (rowIds.length === 0) return;
  const sets = ['taken_at = x.processed_at', ...sealedFields(r).map((f) => `${f.column} = NULL`)];
  await tx.query(
    `UPDATE ${stagingTable(r)} s SET ${sets.join(', ')} FROM ${OUTCOME_TABLE} x
      WHERE x.resource = $1 AND x.row_id = s.row_id AND s.row_id = ANY($2::bigint[]) AND s.taken_at IS NULL`,
    [r.name, rowIds],
  );
}

/**
 * Rows stored (their results written) by a run that ended before it marked them taken — killed, or
 * its claiming connection ended (the idle-in-transaction timeout) while the store went on — are
 * marked taken first, as that run would have: never stored again. Locked rows are left to a later run.
 */
async function finishStored(tx: Pick<pg.ClientBase, 'query'>, r: Resource): Promise<void> {
  const res = await tx.query<{ row_id: string }>(
    `SELECT s.row_id::text AS row_id FROM ${stagingTable(r)} s
      WHERE s.taken_at IS NULL AND EXISTS (SELECT 1 FROM ${OUTCOME_TABLE} x WHERE x.resource = $1 AND x.row_id = s.row_id)
      FOR UPDATE OF s SKIP LOCKED`,
    [r.name],
  );
  await markTaken(
    tx,
    r,
    res.rows.map((x) => x.row_id),
  );
}

/** Who may write which orgs: DBSYNC_ORGS for every row, and a bound role's own orgs within it. */
interface Callers {
  orgs(role: string | null): '*' | readonly string[];
  authorize(role: string | null, org: string): void;
}

function callersOf(s: DbsyncSettings, roles: RoleOrgs): Callers {
  // One array per role, so that the pipeline groups a role's rows as one caller's (resolveGroupOrgs).
  const bound = new Map([...roles].map(([role, orgs]) => [role, s.orgs === '*' ? orgs : orgs.filter((x) => s.orgs.includes(x))]));
  return {
    orgs: (role) => (role !== null && bound.get(role)) || s.orgs,
    authorize: (role, org) => {
      if (s.orgs !== '*' && !s.orgs.includes(org)) throw new AppError('FORBIDDEN', `数据库同步不接收机构 ${org} 的数据 (DBSYNC_ORGS)`);
      const mine = role === null ? undefined : roles.get(role);
      if (mine && !mine.includes(org))
        throw new AppError('FORBIDDEN', `数据库角色 ${role} 未获准提交机构 ${org} 的数据 (role ${role} is bound to other orgs: bin/cdc-dbsync --orgs)`);
    },
  };
}

function contextOf(row: StagedRow, s: DbsyncSettings, callers: Callers, codes: CodeCache | undefined): IngestContext {
  const role = row.inserted_by ?? null;
  return {
    callId: `dbsync-${row.row_id}`,
    test: false,
    testOrgs: s.testOrgs,
    // The row's receive time is when the HIS wrote it: the deadline clock starts there.
    now: row.inserted_at,
    caller: 'dbsync',
    authorize: (org: string) => callers.authorize(role, org),
    callerOrgs: callers.orgs(role),
    installationOrg: s.installationOrg,
    ...(codes ? { codes } : {}),
  };
}

interface ResultRow {
  resource: string;
  rowId: string;
  /** The role that wrote the row: the outcome is that role's to read (row-level security). */
  insertedBy: string | null;
  status: string;
  orgCode: string | null;
  recordId: string | null;
  version: number | null;
  errorCode: string | null;
  errorMsg: string | null;
  issues: unknown;
  warnings: unknown;
}

function resultOf(r: Resource, row: StagedRow, o: Outcome): ResultRow {
  return {
    resource: r.name,
    rowId: row.row_id,
    insertedBy: row.inserted_by ?? null,
    status: o.status,
    orgCode: o.orgCode,
    recordId: o.id,
    version: o.version,
    errorCode: null,
    errorMsg: null,
    issues: null,
    warnings: o.warnings.length ? o.warnings : null,
  };
}

function errorResultOf(r: Resource, row: RowKey, e: AppError): ResultRow {
  const cut = (v: string | null | undefined, n: number) => (v ? v.slice(0, n) : null);
  return {
    resource: r.name,
    rowId: row.row_id,
    insertedBy: row.inserted_by ?? null,
    status: 'rejected',
    orgCode: cut(row.org_code, 50),
    recordId: cut(e.id ?? row.id, 80),
    version: null,
    errorCode: e.code,
    errorMsg: e.desc.slice(0, 500),
    issues: e.issues,
    warnings: null,
  };
}

/**
 * The rows' results, an INSERT … SELECT of single-row SELECTs (as the ingest store writes) per
 * RESULTS_PER_STATEMENT rows: the cost of one such statement grows with the square of its branches
 * (2000 took 7 s, the 5000 DBSYNC_BATCH allows would pass the 20 s statement timeout at every run).
 */
export const RESULTS_PER_STATEMENT = 250;
async function writeResults(db: Pick<pg.ClientBase, 'query'>, rows: ResultRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += RESULTS_PER_STATEMENT) await writeResultsOnce(db, rows.slice(i, i + RESULTS_PER_STATEMENT));
}

async function writeResultsOnce(db: Pick<pg.ClientBase, 'query'>, rows: ResultRow[]): Promise<void> {
  if (!rows.length) return;
  const params: unknown[] = [];
  const selects = rows.map((x) => {
    const base = params.length;
    params.push(
      x.resource,
      x.rowId,
      x.status,
      x.orgCode,
      x.recordId,
      x.version,
      x.errorCode,
      x.errorMsg,
      x.issues === null ? null : JSON.stringify(x.issues),
      x.warnings === null ? null : JSON.stringify(x.warnings),
      x.insertedBy,
    );
    const p = (i: number) => `$${base + i}`;
    return `SELECT ${p(1)}::varchar, ${p(2)}::bigint, ${p(3)}::varchar, ${p(4)}::varchar, ${p(5)}::varchar, ${p(6)}::integer, ${p(7)}::varchar, ${p(8)}::varchar, ${p(9)}::jsonb, ${p(10)}::jsonb, ${p(11)}::text`;
  });
  await db.query(
    `INSERT INTO ${OUTCOME_TABLE} (resource, row_id, status, org_code, record_id, version, error_code, error_msg, issues, warnings, inserted_by) ${selects.join(' UNION ALL ')}`,
    params,
  );
}

export interface StagingLag {
  resource: string;
  waiting: number;
  /** Age in seconds of the oldest row not yet taken; null when none waits. */
  oldestAgeS: number | null;
  /**
   * The rows waiting per HIS role that wrote them (null: rows of no role), most first: who is
   * flooding the table (docs/dbsync.md "Fair shares"). Role names and counts only, for the operator.
   */
  roles: Array<{ role: string | null; waiting: number; oldestAgeS: number | null }>;
}

/** One resource's part of the lag query; `$<param>` is its name. */
export function lagSqlOf(r: Resource, param = 1): string {
  return `SELECT $${param}::varchar AS resource, count(*) AS waiting, min(s.inserted_at) AS oldest FROM ${stagingTable(r)} s
        WHERE s.taken_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM ${OUTCOME_TABLE} x WHERE x.resource = $${param} AND x.row_id = s.row_id)`;
}

/** One resource's part of the lag query by role: the same waiting rows as lagSqlOf, per inserted_by. */
export function lagByRoleSqlOf(r: Resource, param = 1): string {
  return `SELECT $${param}::varchar AS resource, s.inserted_by AS role, count(*) AS waiting, min(s.inserted_at) AS oldest FROM ${stagingTable(r)} s
        WHERE s.taken_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM ${OUTCOME_TABLE} x WHERE x.resource = $${param} AND x.row_id = s.row_id)
        GROUP BY s.inserted_by`;
}

/** Rows waiting per resource (and per role) and the oldest one's age: the lag monitoring reads (docs/monitoring.md). */
export async function stagingLag(db: Db): Promise<StagingLag[]> {
  const list = Object.values(resources);
  const parts = list.map((r, i) => lagByRoleSqlOf(r, i + 1));
  const res = await db.query<{ resource: string; role: string | null; waiting: string; oldest: Date | null; now: Date }>(
    `SELECT l.*, now() AS now FROM (${parts.join(' UNION ALL ')}) l`,
    list.map((r) => r.name),
  );
  const age = (x: { oldest: Date | null; now: Date }) => (x.oldest ? Math.max(0, Math.round((x.now.getTime() - x.oldest.getTime()) / 1000)) : null);
  return list.map((r) => {
    const roles = res.rows
      .filter((x) => x.resource === r.name)
      .map((x) => ({ role: x.role, waiting: Number(x.waiting), oldestAgeS: age(x) }))
      .sort((a, b) => b.waiting - a.waiting || String(a.role).localeCompare(String(b.role)));
    const ages = roles.flatMap((x) => (x.oldestAgeS === null ? [] : [x.oldestAgeS]));
    return {
      resource: r.name,
      waiting: roles.reduce((n, x) => n + x.waiting, 0),
      oldestAgeS: ages.length ? Math.max(...ages) : null,
      roles,
    };
  });
}

/** Rows waiting per role, as the operator reads them: `his_a 3000, his_b 5` (most first; `(no role)` for rows of none). */
export function rolesText(roles: ReadonlyArray<{ role: string | null; waiting: number }>, most = roles.length): string {
  const shown = roles.slice(0, most).map((x) => `${x.role ?? '(no role)'} ${x.waiting}`);
  return roles.length > most ? `${shown.join(', ')}, … (${roles.length - most} more)` : shown.join(', ');
}

/** Rows waiting per role over every table, most first. */
export function waitingByRole(lag: readonly StagingLag[]): Array<{ role: string | null; waiting: number }> {
  const n = new Map<string | null, number>();
  for (const l of lag) for (const x of l.roles) n.set(x.role, (n.get(x.role) ?? 0) + x.waiting);
  return [...n].map(([role, waiting]) => ({ role, waiting })).sort((a, b) => b.waiting - a.waiting || String(a.role).localeCompare(String(b.role)));
}
