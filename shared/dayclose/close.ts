/**
 * Closing a day (日终处理) for one organisation: compute the completeness checks and the daily
 * summary, forward both to every destination that takes them, and leave a row in `day_close`.
 *
 * Forwarding uses the pipeline's own outbox and history writers (shared/ingest/store.ts): the two
 * results are records of two synthetic resources, `dailySummary` and `dayCompleteness`, with the
 * stable id `<org>-<day>-<kind>`. A recompute whose content did not change writes nothing (the
 * platform already has that version); a changed one is the next version, which the push sends after
 * the earlier one (order per key). One transaction holds the ledger row's lock, the figures, the
 * history, the outbox rows and the ledger update: a close is never half written.
 */
import { createHash } from 'node:crypto';
import type { Db, Tx } from '../db/index.js';
import { withTx } from '../db/index.js';
import { versionBase } from '../ingest/restore-gap.js';
import { canonical } from '../ingest/index.js';
import { appendHistory } from '../ingest/store.js';
import { enqueue } from '../outbox/index.js';
import { log } from '../log/index.js';
import { formatLocal } from '../time/index.js';
import { dayBounds } from '../time/day.js';
import type { CloseKind } from './day.js';
import { computeDay, type Completeness, type Summary } from './figures.js';

/** The synthetic resources a close forwards (their wire names). */
export const SUMMARY_RESOURCE = 'dailySummary';
export const COMPLETENESS_RESOURCE = 'dayCompleteness';

export interface CloseOptions {
  timeZone: string;
  trigger: 'cron' | 'manual';
  /** Organisations whose data is test data (TEST_ORG_CODES): their close counts test records and is a test record itself. */
  testOrgs?: ReadonlySet<string>;
  /** Gaps listed per check in the forwarded record (default 200; counts are always complete). */
  listLimit?: number;
  now?: () => Date;
}

export interface CloseResult {
  orgCode: string;
  day: string;
  kind: CloseKind;
  status: 'done' | 'failed';
  /** The record id of both forwarded records. */
  id: string;
  summaryVersion: number;
  completenessVersion: number;
  /** Which of the two got a new version (and outbox rows) in this run. */
  changed: { summary: boolean; completeness: boolean };
  outboxRows: number;
  gapCount: number;
  summary?: Summary;
  durationMs: number;
  error?: string;
}

export const recordIdOf = (orgCode: string, day: string, kind: CloseKind) => `${orgCode}-${day}-${kind}`;

function digest(v: unknown): string {
  return createHash('sha256').update(JSON.stringify(v)).digest('hex');
}

/** What every step of one close names: the day's ledger key, the record id, and how the run started. */
interface Run {
  orgCode: string;
  day: string;
  kind: CloseKind;
  id: string;
  test: boolean;
  trigger: CloseOptions['trigger'];
  started: Date;
}

/** The ledger row's versions and hashes of the two records as last forwarded. */
interface Ledger {
  summary_version: number;
  summary_hash: string | null;
  completeness_version: number;
  completeness_hash: string | null;
}

/** One forwarded record: its content now, the ledger's last version and hash, and the hash of the content. */
interface Doc {
  resource: string;
  content: Record<string, unknown>;
  version: number;
  hash: string | null;
  newHash: string;
}

/** What forwarding left, per document (summary, completeness): its version now, whether it changed, its stored payload. */
interface Forwarded {
  versions: number[];
  changed: boolean[];
  payloads: Record<string, unknown>[];
  outboxRows: number;
}

/**
 * Closes one organisation's day (docs/day-close.md): the ledger row locked, the figures, the changed
 * records forwarded and the ledger updated in one transaction; a failure is recorded outside it.
 */
export async function closeDay(db: Db, orgCode: string, day: string, kind: CloseKind, opts: CloseOptions): Promise<CloseResult> {
  const now = opts.now ?? (() => new Date());
  const run: Run = {
    orgCode,
    day,
    kind,
    id: recordIdOf(orgCode, day, kind),
    test: opts.testOrgs?.has(orgCode) ?? false,
    trigger: opts.trigger,
    started: now(),
  };
  const t0 = Date.now();
  const { from, to } = dayBounds(day, opts.timeZone);
  try {
    // A restored database's version base: the close's documents start above it, as new records do
    // (docs/backup.md "Versions after a restore").
    const base = await versionBase(db);
    const out = await withTx(db, async (tx) => {
      const cur = await lockLedger(tx, run);
      const { completeness, summary } = await computeDay(tx, { orgCode, day, from, to, test: run.test, listLimit: opts.listLimit ?? 200 });
      const closedAt = formatLocal(now(), opts.timeZone);
      const docs = forwardedDocs(run, opts.timeZone, { from, to }, { completeness, summary }, cur);
      const fwd = await forwardChanged(tx, run, docs, closedAt, base);
      await recordDone(tx, run, completeness.gapCount, docs, fwd);
      return { versions: fwd.versions, changed: fwd.changed, outboxRows: fwd.outboxRows, gapCount: completeness.gapCount, summary };
    });
    const result: CloseResult = {
      orgCode,
      day,
      kind,
      status: 'done',
      id: run.id,
      summaryVersion: out.versions[0]!,
      completenessVersion: out.versions[1]!,
      changed: { summary: out.changed[0]!, completeness: out.changed[1]! },
      outboxRows: out.outboxRows,
      gapCount: out.gapCount,
      summary: out.summary,
      durationMs: Date.now() - t0,
    };
    log('info', 'day closed', {
      orgCode,
      day,
      kind,
      trigger: opts.trigger,
      gaps: out.gapCount,
      changed: result.changed,
      outboxRows: out.outboxRows,
      ms: result.durationMs,
    });
    return result;
  } catch (err) {
    const error = (err as Error).message.slice(0, 480);
    log('error', 'day close failed', { orgCode, day, kind, trigger: opts.trigger, err: error });
    await recordFailure(db, run, error);
    return failedResult(run, error, Date.now() - t0);
  }
}

/**
 * Takes the day's ledger row — inserted as running if missing (INSERT … WHERE NOT EXISTS: no ON
 * CONFLICT on openGauss, docs/opengauss.md) — and locks it for the close's transaction, so that an
 * operator's re-run and the cron never interleave (docs/day-close.md "Scheduling").
 */
async function lockLedger(tx: Tx, run: Run): Promise<Ledger> {
  const { orgCode, day, kind } = run;
  await tx.query(
    `INSERT INTO day_close (org_code, business_day, kind, status, trigger, started_at)
         SELECT $1::varchar, $2::varchar, $3::varchar, 'running', $4::varchar, $5::timestamptz
          WHERE NOT EXISTS (SELECT 1 FROM day_close WHERE org_code = $1::varchar AND business_day = $2::varchar AND kind = $3::varchar)`,
    [orgCode, day, kind, run.trigger, run.started],
  );
  return (
    await tx.query<Ledger>(
      `SELECT summary_version, summary_hash, completeness_version, completeness_hash FROM day_close
            WHERE org_code = $1 AND business_day = $2 AND kind = $3 FOR UPDATE`,
      [orgCode, day, kind],
    )
  ).rows[0]!;
}

/**
 * The two forwarded documents, summary then completeness, each under the same head (the record id,
 * the day and its bounds in the hospital's zone) and against the ledger's last version and hash of it.
 */
function forwardedDocs(
  run: Run,
  timeZone: string,
  bounds: { from: Date; to: Date },
  figures: { completeness: Completeness; summary: Summary },
  cur: Ledger,
): Doc[] {
  const { id, orgCode, day, kind, test } = run;
  const { completeness, summary } = figures;
  const head = { id, orgCode, day, kind, timeZone, from: formatLocal(bounds.from, timeZone), to: formatLocal(bounds.to, timeZone), test };
  return [
    { resource: SUMMARY_RESOURCE, content: canonical({ ...head, ...summary }), version: cur.summary_version, hash: cur.summary_hash?.trim() ?? null },
    {
      resource: COMPLETENESS_RESOURCE,
      content: canonical({ ...head, ...completenessContent(completeness) }),
      version: cur.completeness_version,
      hash: cur.completeness_hash?.trim() ?? null,
    },
  ].map((d) => ({ ...d, newHash: digest(d.content) }));
}

/**
 * Forwards the documents whose content changed: the next version (decided from the history) in
 * record_history and the outbox, through the pipeline's own writers. An unchanged one keeps its
 * version and writes nothing: the platform already holds it. On a restored database the next version
 * is above its version base (`base`): the lost front may have sent a later close of the day under the
 * versions after the archive's (docs/backup.md "Versions after a restore").
 */
async function forwardChanged(tx: Tx, run: Run, docs: Doc[], closedAt: string, base: number): Promise<Forwarded> {
  const { orgCode, id, kind, test, started } = run;
  let outboxRows = 0;
  const changed = docs.map((d) => d.newHash !== d.hash);
  const versions: number[] = [];
  const payloads: Record<string, unknown>[] = [];
  for (const [i, d] of docs.entries()) {
    // The stored content of an unchanged record keeps its closedAt: what the platform holds.
    if (!changed[i]) {
      versions.push(d.version);
      payloads.push({});
      continue;
    }
    // The history decides the next version, should the ledger row ever have been lost.
    const h = await tx.query<{ v: number | null }>('SELECT max(version) AS v FROM record_history WHERE resource = $1 AND org_code = $2 AND record_id = $3', [
      d.resource,
      orgCode,
      id,
    ]);
    const version = Math.max(d.version, h.rows[0]?.v ?? 0, base) + 1;
    const payload = canonical({ ...d.content, closedAt });
    await appendHistory(tx, [
      { resource: d.resource, orgCode, id, version, op: 'upsert', hash: d.newHash, raw: payload, callId: null, at: started, warn: !test },
    ]);
    outboxRows += await enqueue(tx, [{ resource: d.resource, orgCode, id, version, op: 'upsert', deadline: kind, test, held: false, payload }]);
    versions.push(version);
    payloads.push(payload);
  }
  return { versions, changed, payloads, outboxRows };
}

/** Records the finished run in its ledger row: the stored content of a record only where it changed, versions and hashes always. */
async function recordDone(tx: Tx, run: Run, gapCount: number, docs: Doc[], fwd: Forwarded): Promise<void> {
  const { changed, payloads, versions } = fwd;
  await tx.query(
    `UPDATE day_close SET status = 'done', trigger = $4, runs = runs + 1, started_at = $5, finished_at = now(), test_mode = $6,
                gap_count = $7, error = NULL,
                summary = CASE WHEN $8 THEN CAST($9 AS jsonb) ELSE summary END,
                summary_version = $10, summary_hash = $11,
                completeness = CASE WHEN $12 THEN CAST($13 AS jsonb) ELSE completeness END,
                completeness_version = $14, completeness_hash = $15
          WHERE org_code = $1 AND business_day = $2 AND kind = $3`,
    [
      run.orgCode,
      run.day,
      run.kind,
      run.trigger,
      run.started,
      run.test,
      gapCount,
      changed[0],
      JSON.stringify(payloads[0]),
      versions[0],
      docs[0]!.newHash,
      changed[1],
      JSON.stringify(payloads[1]),
      versions[1],
      docs[1]!.newHash,
    ],
  );
}

/**
 * Records a failed run outside the close's (rolled back) transaction: the figures of the last
 * successful run stay, the status says this run failed (a MERGE: no ON CONFLICT on openGauss,
 * docs/opengauss.md). A failure to record it is logged, never thrown.
 */
async function recordFailure(db: Db, run: Run, error: string): Promise<void> {
  const { orgCode, day, kind } = run;
  await db
    .query(
      `MERGE INTO day_close t
         USING (SELECT $1::varchar AS org_code, $2::varchar AS business_day, $3::varchar AS kind) s
            ON (t.org_code = s.org_code AND t.business_day = s.business_day AND t.kind = s.kind)
          WHEN MATCHED THEN UPDATE SET status = 'failed', trigger = $4::varchar, runs = t.runs + 1, started_at = $5::timestamptz, finished_at = now(), error = $6::varchar
          WHEN NOT MATCHED THEN INSERT (org_code, business_day, kind, status, trigger, runs, started_at, finished_at, error)
               VALUES (s.org_code, s.business_day, s.kind, 'failed', $4::varchar, 1, $5::timestamptz, now(), $6::varchar)`,
      [orgCode, day, kind, run.trigger, run.started, error],
    )
    .catch((e: Error) => log('error', 'day close failure not recorded', { orgCode, day, kind, err: e.message }));
}

/** The result of a failed close: no versions, nothing changed or queued. */
function failedResult(run: Run, error: string, durationMs: number): CloseResult {
  return {
    orgCode: run.orgCode,
    day: run.day,
    kind: run.kind,
    status: 'failed',
    id: run.id,
    summaryVersion: 0,
    completenessVersion: 0,
    changed: { summary: false, completeness: false },
    outboxRows: 0,
    gapCount: 0,
    durationMs,
    error,
  };
}

/** The forwarded form of the completeness checks: counts per check, then the listed gaps. */
function completenessContent(c: Completeness): Record<string, unknown> {
  const checks: Record<string, unknown> = {};
  const gaps: unknown[] = [];
  let truncated = false;
  for (const [name, r] of Object.entries(c.checks)) {
    checks[name] = { total: r.total, gaps: r.gaps, held: r.held, missing: r.missing };
    gaps.push(...r.list);
    truncated ||= r.truncated;
  }
  return { checks, gapCount: c.gapCount, complete: c.gapCount === 0, gaps, gapsTruncated: truncated, held: c.held };
}
