/**
 * Applying, reverting and listing configuration bundles (docs/config-bundles.md); tables in
 * infra/db/0030_config_bundles.sql. Every step runs in one transaction under one advisory lock: the
 * areas it changes are written where their readers read them (code tables into code_national through
 * shared/codes, everything else into config_active), their former state is kept in the step's row, and
 * any failure — a check that only the database can make, a lost connection — leaves nothing changed.
 *
 * An "area" is one unit a bundle replaces whole: `triggers`, `algorithms`, `syndromes`, `platforms`,
 * `schedules`, `release`, and `codeTable:<domain>` per national list. Each step's row records, for every
 * area bundles have ever set, the version whose content is in force (`effective`), so that a rollback
 * to version V writes exactly the areas whose content differs from what V left, and an area that V
 * left untouched returns to the state it had before any bundle set it.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { dbFault, withinDeadline, withTx, type Db, type Deadline, type Tx } from '../db/index.js';
import { AppError, type FieldIssue } from '../http/errors.js';
import {
  checkNationalImport,
  nationalListState,
  inUse,
  removedInUse,
  removedInUseWarning,
  type RemovedInUse,
  restoreNationalList,
  writeNationalList,
  type NationalListState,
} from '../codes/store.js';
import { sm3 } from '../uplink/sm.js';
import { areasOf, Bundle, CODE_TABLE, type CodeTable, StoredBundle, StoredSection } from './schema.js';

type Q = Db | Tx;

/** A refusal: HTTP status, a stable code, words an operator can act on, and the failing fields. */
export class BundleError extends Error {
  constructor(
    readonly status: 400 | 401 | 404 | 409 | 413 | 422 | 503,
    readonly code: string,
    readonly reason: string,
    readonly issues: FieldIssue[] = [],
  ) {
    super(reason);
  }
}

const LOCK_KEY = 7_204_330; // fixed: "cdc-front configuration bundles"

export interface Actor {
  by: string;
  via?: string | null;
}

type Effective = Record<string, number>;
type Previous = Record<string, unknown>;

/** A bundle whose signature was checked, with the document parsed and validated. */
export interface VerifiedBundle {
  text: string;
  signature: string;
  keyId: string;
  bundle: Bundle;
}

/** Parses and validates a bundle document (after its signature was checked). */
export function parseBundle(text: string): Bundle {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new BundleError(422, 'invalid-bundle', `the bundle is not JSON: ${(err as Error).message}`);
  }
  const r = Bundle.safeParse(json);
  if (!r.success) {
    // An unknown key is named where it stands (`sections.triggers.windowDay`), one issue per key.
    const issues = r.error.issues.flatMap((i): FieldIssue[] =>
      i.code === 'unrecognized_keys'
        ? i.keys.map((k) => ({ field: [...i.path, k].join('.'), rule: i.code, message: `unknown key ${k}` }))
        : [{ field: i.path.join('.') || '(bundle)', rule: i.code, message: i.message }],
    );
    throw new BundleError(
      422,
      'invalid-bundle',
      `the bundle does not match the format (nothing applied): ${issues
        .slice(0, 5)
        .map((i) => `${i.field}: ${i.message}`)
        .join('; ')}`,
      issues.slice(0, 100),
    );
  }
  return r.data;
}

// ---- one area: its state, writing it, putting it back ----------------------------------------------

async function snapshot(tx: Tx, area: string): Promise<unknown> {
  if (area.startsWith(CODE_TABLE)) return nationalListState(tx, area.slice(CODE_TABLE.length));
  const r = await tx.query<{ version: string; content: string }>('SELECT version, content FROM config_active WHERE area = $1', [area]);
  const row = r.rows[0];
  const active = row ? { version: Number(row.version), content: JSON.parse(row.content) } : null;
  // The platforms also decide which destinations are enabled: their rows are part of the state.
  if (area === PLATFORMS) return { active, destinations: await destinationRows(tx) };
  return active;
}

// ---- the platforms area: the destinations the outbox fills (docs/config-bundles.md §5) -------------

const PLATFORMS = 'platforms';
const DestinationState = z.object({
  name: z.string(),
  kind: z.string(),
  enabled: z.boolean(),
  /**
   * Named disabled by the platforms section: still queued for (docs/config-bundles.md §5). A state
   * saved before migration 0991 has no `paused`: a disabled destination in it is taken as paused, so a
   * rollback to it queues rather than loses (a retired one then fills its queue until a bundle names it).
   */
  paused: z.boolean().optional(),
  resources: z.string().nullable(),
  accepts_test: z.boolean(),
});
type DestinationState = z.infer<typeof DestinationState>;
const PlatformsState = z.object({ active: z.unknown(), destinations: z.array(DestinationState) });

async function destinationRows(tx: Tx): Promise<DestinationState[]> {
  const r = await tx.query('SELECT name, kind, enabled, paused, resources, accepts_test FROM uplink_destination ORDER BY name');
  return r.rows.map((x) => DestinationState.parse(x));
}

/**
 * Writes destination rows as given (by name): a destination named disabled is paused (still queued
 * for); every destination not among them is retired — disabled, not paused, never deleted (the outbox
 * names it).
 */
async function writeDestinations(tx: Tx, rows: Array<Omit<DestinationState, 'accepts_test'> & { accepts_test?: boolean }>): Promise<void> {
  for (const d of rows) {
    const paused = !d.enabled && (d.paused ?? true);
    await tx.query(
      `MERGE INTO uplink_destination t USING (SELECT $1::varchar AS name) s ON (t.name = s.name)
       WHEN MATCHED THEN UPDATE SET kind = $2, enabled = $3, paused = $6, resources = $4${d.accepts_test === undefined ? '' : ', accepts_test = $5'}
       WHEN NOT MATCHED THEN INSERT (name, kind, enabled, paused, resources, accepts_test) VALUES ($1, $2, $3, $6, $4, $5)`,
      [d.name, d.kind, d.enabled, d.resources, d.accepts_test ?? false, paused],
    );
  }
  await tx.query('UPDATE uplink_destination SET enabled = false, paused = false WHERE (enabled = true OR paused = true) AND NOT (name = ANY($1::varchar[]))', [
    rows.map((d) => d.name),
  ]);
}

/** A platforms section in force: its platforms are the destinations (a platform's test-data setting stays the front's own). */
const syncPlatforms = (tx: Tx, content: unknown) =>
  writeDestinations(
    tx,
    StoredSection.platforms.parse(content).map((p) => ({ name: p.name, kind: p.kind, enabled: p.enabled, resources: p.resources?.join(',') ?? null })),
  );

async function writeActive(tx: Tx, area: string, version: number, content: unknown): Promise<void> {
  await tx.query('DELETE FROM config_active WHERE area = $1', [area]);
  await tx.query('INSERT INTO config_active (area, version, content, changed_at) VALUES ($1, $2, $3, now())', [area, version, JSON.stringify(content)]);
}

async function write(tx: Tx, area: string, content: unknown, b: Pick<Bundle, 'version' | 'issuer'>, d?: Deadline): Promise<void> {
  // A code table is bounded by writeNationalList, after its codes are checked.
  if (!area.startsWith(CODE_TABLE)) await withinDeadline(tx, d);
  if (area === PLATFORMS) await syncPlatforms(tx, content);
  if (!area.startsWith(CODE_TABLE)) return writeActive(tx, area, b.version, content);
  const t = content as CodeTable;
  const imp = {
    domain: t.domain,
    version: t.version,
    source: t.source ?? `配置包 v${b.version} (${b.issuer})`,
    status: t.status,
    codes: t.codes.map((c) => ({ code: c.code, name: c.name, nameEn: c.nameEn ?? null })),
  };
  try {
    // The same checks as a CSV import (bin/cdc-codes import-national), made here, inside the transaction.
    checkNationalImport(imp);
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    const at = `sections.codeTables[${t.domain}]`;
    throw new BundleError(
      422,
      'invalid-bundle',
      `${at}: ${err.desc} (nothing applied)`,
      err.issues.length ? err.issues.map((i) => ({ ...i, field: `${at}.${i.field}` })) : [{ field: at, rule: 'codes', message: err.desc }],
    );
  }
  await writeNationalList(tx, imp, d);
}

async function restore(tx: Tx, area: string, state: unknown, version: number, d?: Deadline): Promise<void> {
  await withinDeadline(tx, d);
  if (area.startsWith(CODE_TABLE)) return restoreNationalList(tx, area.slice(CODE_TABLE.length), state as NationalListState, d);
  if (area === PLATFORMS) {
    const p = PlatformsState.safeParse(state);
    if (p.success) {
      await writeDestinations(tx, p.data.destinations);
      state = p.data.active;
    }
  }
  if (state === null || state === undefined) {
    await tx.query('DELETE FROM config_active WHERE area = $1', [area]);
    return;
  }
  const s = state as { version: number; content: unknown };
  await writeActive(tx, area, s.version ?? version, s.content);
}

// ---- steps ---------------------------------------------------------------------------------------

interface StepRow {
  seq: string;
  action: 'apply' | 'rollback';
  version: string;
  issuer: string;
  issued_at: Date;
  areas: string;
  effective: string;
  applied_by: string;
  applied_via: string | null;
  applied_at: Date;
  reason: string | null;
}
const STEP_COLUMNS = 'seq, action, version, issuer, issued_at, areas, effective, applied_by, applied_via, applied_at, reason';

export interface Step {
  seq: number;
  action: 'apply' | 'rollback';
  /** apply: the bundle's version; rollback: the version returned to. */
  version: number;
  issuer: string;
  issuedAt: string;
  /** The areas this step changed. */
  areas: string[];
  /** Every area bundles manage → the version whose content is in force after this step. */
  effective: Effective;
  appliedBy: string;
  appliedVia: string | null;
  appliedAt: string;
  reason: string | null;
}

const stepOf = (r: StepRow): Step => ({
  seq: Number(r.seq),
  action: r.action,
  version: Number(r.version),
  issuer: r.issuer,
  issuedAt: new Date(r.issued_at).toISOString(),
  areas: r.areas.split(' ').filter(Boolean),
  effective: JSON.parse(r.effective) as Effective,
  appliedBy: r.applied_by,
  appliedVia: r.applied_via,
  appliedAt: new Date(r.applied_at).toISOString(),
  reason: r.reason,
});

async function lastStep(q: Q): Promise<Step | null> {
  const r = await q.query<StepRow>(`SELECT ${STEP_COLUMNS} FROM config_bundle ORDER BY seq DESC LIMIT 1`);
  return r.rows[0] ? stepOf(r.rows[0]) : null;
}

export interface Applied {
  step: Step;
  /** The areas written, in order. */
  changed: string[];
  /**
   * The request was the bundle already in force, sent again (the platform's retry, or the runtime's
   * after a replica died between the commit and the answer): nothing written, its own step answered.
   */
  replay?: boolean;
  /** National lists this step changed that dropped codes still in use: one line per list (codeTableWarnings). */
  warnings: string[];
}

/**
 * What of a national list is in use before a step writes its area (inUse), for codeTableWarnings after
 * it; nothing for another area.
 */
async function inUseBefore(tx: Tx, area: string, d: Deadline | undefined): Promise<RemovedInUse | null> {
  return area.startsWith(CODE_TABLE) ? inUse(tx, area.slice(CODE_TABLE.length), 30, d) : null;
}

/**
 * For every national list a step changed, a line naming the codes it took away that the HIS still
 * sends or mappings still point at (docs/config-bundles.md "Answers"): applied all the same — the
 * platform decides the lists — but said, in the answer and the log, before records are held for them.
 */
async function codeTableWarnings(tx: Tx, before: Map<string, RemovedInUse>, d: Deadline | undefined): Promise<string[]> {
  const out: string[] = [];
  for (const [area, was] of before) {
    const w = removedInUseWarning(await removedInUse(tx, was, d), area);
    if (w) out.push(w);
  }
  return out;
}

/**
 * Runs a step bounded by `d` (withinDeadline): a statement timeout once the deadline has passed is
 * the step giving up its own time — rolled back, so answered as nothing applied and why (503
 * `timeout`), never left to the runtime's 504, whose outcome it cannot know (docs/config-bundles.md
 * "Answers").
 */
async function inTime<T>(d: Deadline | undefined, doing: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    if (d && dbFault(err) === 'timeout' && Date.now() >= d.at - 50)
      throw new BundleError(
        503,
        'timeout',
        `${doing} did not finish within this front's time for a request (the config function's exec_timeout, less a margin): rolled back, nothing applied — retry when the front is less busy; a bundle this large every time needs a longer exec_timeout (stack.yml)`,
      );
    throw err;
  }
}

/**
 * Applies a verified bundle: refuses a version not above every version applied before (409) — but
 * the bundle in force sent again, which is answered as applied (`replay`) —, then writes every area and
 * the step's row in one transaction.
 */
export async function applyBundle(db: Db, v: VerifiedBundle, actor: Actor, d?: Deadline): Promise<Applied> {
  const b = v.bundle;
  return inTime(d, 'applying', () =>
    withTx(
      db,
      async (tx) => {
        await withinDeadline(tx, d);
        await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
        const max = await tx.query<{ v: string | null }>("SELECT max(version) AS v FROM config_bundle WHERE action = 'apply'");
        const highest = max.rows[0]?.v === null || max.rows[0]?.v === undefined ? 0 : Number(max.rows[0].v);
        const digest = sm3(v.text).toString('hex');
        if (b.version <= highest) {
          // An exact replay, or another document under a number already used: the second is a
          // numbering error at the platform and is said so, with both digests (docs/config-bundles.md §3).
          const same = await tx.query<{ digest: string }>("SELECT digest FROM config_bundle WHERE action = 'apply' AND version = $1", [b.version]);
          const applied = same.rows[0]?.digest.trim();
          // The very bundle in force (its apply the last step, the same document): answered as applied,
          // nothing written — a request retried after a lost answer must not read as a refusal.
          const last = await lastStep(tx);
          if (applied === digest && last?.action === 'apply' && last.version === b.version) return { step: last, changed: [], replay: true, warnings: [] };
          const how =
            applied === undefined
              ? `an older bundle (version ${b.version} was never applied here)`
              : applied === digest
                ? `an exact replay of the applied version ${b.version} (same SM3 digest ${digest.slice(0, 16)}…)`
                : `NOT a replay: its content differs from the applied version ${b.version} (SM3 digest ${digest.slice(0, 16)}…, applied ${applied.slice(0, 16)}…): the platform numbered two different bundles ${b.version}`;
          throw new BundleError(
            409,
            'stale-version',
            `version ${b.version} is not above the highest version applied (${highest}): ${how}; refused. A new bundle takes a version above ${highest}; to return to an applied version use POST /bundles/<version>/rollback`,
            applied !== undefined && applied !== digest
              ? [
                  {
                    field: 'version',
                    rule: 'version-reused',
                    message: `version ${b.version} was applied with other content (digest ${applied})`,
                    value: digest,
                  },
                ]
              : [],
          );
        }
        const current = (await lastStep(tx))?.effective ?? {};
        const previous: Previous = {};
        const changed: string[] = [];
        const used = new Map<string, RemovedInUse>();
        for (const { area, content } of areasOf(b)) {
          await withinDeadline(tx, d);
          previous[area] = await snapshot(tx, area);
          const was = await inUseBefore(tx, area, d);
          await write(tx, area, content, b, d);
          if (was) used.set(area, was);
          changed.push(area);
        }
        const effective: Effective = { ...current, ...Object.fromEntries(changed.map((a) => [a, b.version])) };
        const warnings = await codeTableWarnings(tx, used, d);
        await withinDeadline(tx, d);
        const r = await tx.query<StepRow>(
          `INSERT INTO config_bundle (action, version, issuer, issued_at, bundle, signature, key_id, digest, areas, effective, previous, applied_by, applied_via, applied_at)
         VALUES ('apply', $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, now()) RETURNING ${STEP_COLUMNS}`,
          [
            b.version,
            b.issuer,
            b.issuedAt,
            v.text,
            v.signature,
            v.keyId,
            digest,
            changed.join(' ').slice(0, 4000),
            JSON.stringify(effective),
            JSON.stringify(previous),
            actor.by.slice(0, 200),
            actor.via?.slice(0, 200) ?? null,
          ],
        );
        return { step: stepOf(r.rows[0]!), changed, warnings };
      },
      0,
    ),
  );
}

/** The content an applied version gave an area (from the bundle as stored). */
async function contentOf(tx: Tx, version: number, area: string): Promise<unknown> {
  const r = await tx.query<{ bundle: string }>("SELECT bundle FROM config_bundle WHERE action = 'apply' AND version = $1", [version]);
  const text = r.rows[0]?.bundle;
  if (!text) throw new Error(`config_bundle has no applied version ${version}`);
  const found = areasOf(StoredBundle.parse(JSON.parse(text))).find((a) => a.area === area);
  if (!found) throw new Error(`version ${version} does not carry ${area}`);
  return found.content;
}

/** The state an area had before any bundle set it: the `previous` of the first step that changed it. */
async function baselineOf(tx: Tx, area: string): Promise<unknown> {
  const r = await tx.query<{ seq: string; areas: string }>('SELECT seq, areas FROM config_bundle ORDER BY seq');
  const first = r.rows.find((x) => x.areas.split(' ').includes(area));
  if (!first) return null;
  const p = await tx.query<{ previous: string }>('SELECT previous FROM config_bundle WHERE seq = $1', [first.seq]);
  return (JSON.parse(p.rows[0]!.previous) as Previous)[area] ?? null;
}

/**
 * Returns the configuration to what applying `version` left: every area whose content in force
 * differs is written again (from that version's bundle, or its state before bundles), in one
 * transaction, recorded as a step of its own with who, when, why and what it replaced.
 */
export async function rollbackTo(
  db: Db,
  version: number,
  actor: Actor,
  reason: string | null,
  trustedKeyIds: readonly string[],
  d?: Deadline,
): Promise<Applied> {
  return inTime(d, 'rolling back', () =>
    withTx(
      db,
      async (tx) => {
        await withinDeadline(tx, d);
        await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
        const t = await tx.query<StepRow>(`SELECT ${STEP_COLUMNS} FROM config_bundle WHERE action = 'apply' AND version = $1`, [version]);
        if (!t.rows[0]) throw new BundleError(404, 'unknown-version', `version ${version} was never applied on this front (GET /bundles lists them)`);
        const target = stepOf(t.rows[0]);
        const current = (await lastStep(tx))!.effective;
        const areas = [...new Set([...Object.keys(current), ...Object.keys(target.effective)])];
        const differs = areas.filter((a) => current[a] !== target.effective[a]);
        if (!differs.length) throw new BundleError(409, 'already-current', `the configuration in force is already what version ${version} left`);
        // Nothing comes back that a key the front no longer trusts signed: a key is taken out of
        // config-platform-pubkey because it is lost or stolen, and a bundle it signed (a platform's
        // address and key among its areas) must not return on a token alone (docs/config-bundles.md §3).
        const sources = [...new Set(differs.map((a) => target.effective[a]).filter((v): v is number => v !== undefined))];
        const signers = await tx.query<{ version: string; key_id: string }>(
          "SELECT version, key_id FROM config_bundle WHERE action = 'apply' AND version = ANY($1::bigint[])",
          [sources],
        );
        const untrusted = signers.rows.filter((r) => !trustedKeyIds.includes(r.key_id.trim()));
        if (untrusted.length)
          throw new BundleError(
            422,
            'unknown-key',
            `rolling back to version ${version} would bring back what ${untrusted
              .map((r) => `version ${r.version} (signed with key ${r.key_id.trim().slice(0, 16)}…)`)
              .join(
                ', ',
              )} set, and this front no longer trusts that key (secret file config-platform-pubkey): nothing rolled back — the platform sends what it wants in force as a bundle signed with a trusted key`,
          );
        // Written in the order a bundle writes them (code tables last).
        differs.sort((a, b) => Number(a.startsWith(CODE_TABLE)) - Number(b.startsWith(CODE_TABLE)));
        const previous: Previous = {};
        const used = new Map<string, RemovedInUse>();
        for (const area of differs) {
          await withinDeadline(tx, d);
          previous[area] = await snapshot(tx, area);
          const was = await inUseBefore(tx, area, d);
          const source = target.effective[area];
          if (source !== undefined) await write(tx, area, await contentOf(tx, source, area), { version: source, issuer: target.issuer }, d);
          else await restore(tx, area, await baselineOf(tx, area), version, d);
          if (was) used.set(area, was);
        }
        const warnings = await codeTableWarnings(tx, used, d);
        await withinDeadline(tx, d);
        const r = await tx.query<StepRow>(
          `INSERT INTO config_bundle (action, version, issuer, issued_at, areas, effective, previous, applied_by, applied_via, applied_at, reason)
         VALUES ('rollback', $1, $2, $3, $4, $5, $6, $7, $8, now(), $9) RETURNING ${STEP_COLUMNS}`,
          [
            version,
            target.issuer,
            target.issuedAt,
            differs.join(' ').slice(0, 4000),
            JSON.stringify(target.effective),
            JSON.stringify(previous),
            actor.by.slice(0, 200),
            actor.via?.slice(0, 200) ?? null,
            reason?.slice(0, 500) ?? null,
          ],
        );
        return { step: stepOf(r.rows[0]!), changed: differs, warnings };
      },
      0,
    ),
  );
}

/** Every step, newest first. */
export async function history(db: Q, limit = 100): Promise<Step[]> {
  const r = await db.query<StepRow>(`SELECT ${STEP_COLUMNS} FROM config_bundle ORDER BY seq DESC LIMIT $1`, [limit]);
  return r.rows.map(stepOf);
}

export interface Current {
  step: Step;
  /** The bundle of the version in force (the one returned to, after a rollback); absent when not asked for. */
  bundle?: Bundle;
  digest: string;
  keyId: string;
}

/**
 * The step in force and its bundle; null before any bundle. `withBundle: false` leaves the document
 * out (a full national drug list makes it tens of MB): the step, digest and key id say what is in force.
 */
export async function current(db: Q, withBundle = true): Promise<Current | null> {
  const step = await lastStep(db);
  if (!step) return null;
  const r = await db.query<{ bundle: string | null; digest: string; key_id: string }>(
    `SELECT ${withBundle ? 'bundle' : 'NULL AS bundle'}, digest, key_id FROM config_bundle WHERE action = 'apply' AND version = $1`,
    [step.version],
  );
  const row = r.rows[0]!;
  return {
    step,
    ...(row.bundle !== null ? { bundle: StoredBundle.parse(JSON.parse(row.bundle)) } : {}),
    digest: row.digest.trim(),
    keyId: row.key_id.trim(),
  };
}

// ---- what the functions read -------------------------------------------------------------------------

/** An area's content in force (config_active), or null when no bundle set it. */
export async function activeArea(db: Q, area: string): Promise<{ version: number; content: unknown } | null> {
  const r = await db.query<{ version: string; content: string }>('SELECT version, content FROM config_active WHERE area = $1', [area]);
  const row = r.rows[0];
  return row ? { version: Number(row.version), content: JSON.parse(row.content) } : null;
}

/**
 * A reader of one area for a long-running function: reads the row's version on every call (one
 * small query) and parses the content only when it changed. `fallback` is the function's own
 * setting (a shipped file, or the one its environment names), in force while no bundle set the area.
 */
export function areaReader<T>(area: string, parse: (content: unknown) => T): (db: Q) => Promise<{ value: T; version: number } | null> {
  let cached: { version: number; changed: string; value: T } | undefined;
  return async (db) => {
    const r = await db.query<{ version: string; changed_at: Date }>('SELECT version, changed_at FROM config_active WHERE area = $1', [area]);
    const row = r.rows[0];
    if (!row) {
      cached = undefined;
      return null;
    }
    const changed = new Date(row.changed_at).toISOString();
    if (!cached || cached.version !== Number(row.version) || cached.changed !== changed) {
      const a = await activeArea(db, area);
      if (!a) return null;
      cached = { version: a.version, changed, value: parse(a.content) };
    }
    return { value: cached.value, version: cached.version };
  };
}

/** How far issuedAt may lie from the front's clock without a remark (docs/config-bundles.md §3 "issuedAt"). */
export const ISSUED_PAST_MS = 30 * 86_400_000;
export const ISSUED_FUTURE_MS = 86_400_000;

/**
 * A remark on a bundle's issuedAt far from the front's clock: more than 30 days before it, or more
 * than a day after it. The bundle is applied all the same (the signature and the version decide;
 * a front whose clock is wrong must still take its configuration): the answer and the log say it.
 */
export function issuedAtWarning(b: Pick<Bundle, 'version' | 'issuedAt'>, now: Date = new Date()): string | null {
  const at = Date.parse(b.issuedAt);
  const days = (ms: number) => Math.round(ms / 86_400_000);
  if (now.getTime() - at > ISSUED_PAST_MS)
    return `issuedAt ${b.issuedAt} is ${days(now.getTime() - at)} days before this front's clock (${now.toISOString()}): applied; check that the platform did not re-sign an old document`;
  if (at - now.getTime() > ISSUED_FUTURE_MS)
    return `issuedAt ${b.issuedAt} is ${Math.max(1, days(at - now.getTime()))} day(s) after this front's clock (${now.toISOString()}): applied; check this front's clock (NTP) or the platform's`;
  return null;
}

/** SHA-256 prefix naming a token in the audit without revealing it. */
export const tokenLabel = (token: string): string => `platform-token:${createHash('sha256').update(token).digest('hex').slice(0, 8)}`;

export const RollbackBody = z.object({ reason: z.string().trim().min(1).max(500).optional() }).strict();
