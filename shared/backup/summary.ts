/**
 * The backup state the status JSON carries (shared/status): the last good archives, the one being
 * taken with its progress, freshness and the latest check (docs/backup.md). Kept apart from the
 * rest of shared/backup so the monitor and web bundles do not carry the store client.
 */
import { z } from 'zod';
import type { Db } from '../db/index.js';
import { lastGood, listArchives, recentChecks, STALL_MINUTES, type Archive } from './ledger.js';

/** What the status JSON carries about backups (shared/status reads this schema). */
const instant = z.iso.datetime({ offset: true });
const ArchiveBriefSchema = z.object({ archiveId: z.string(), finishedAt: instant.nullable(), sizeBytes: z.number().int().nonnegative().nullable() });
export const BackupSummarySchema = z.object({
  lastLogical: ArchiveBriefSchema.nullable(),
  lastPhysical: ArchiveBriefSchema.nullable(),
  /** The archive being taken now, with its progress. */
  running: z
    .object({
      archiveId: z.string(),
      kind: z.string(),
      startedAt: instant,
      bytesDone: z.number().int().nonnegative(),
      tablesDone: z.number().int().nonnegative(),
      tablesTotal: z.number().int().nonnegative(),
      /** Bytes per second so far. */
      rate: z.number().nonnegative(),
      /** Seconds left, estimated from the tables done; null before the first. */
      etaS: z.number().int().nonnegative().nullable(),
      /** Seconds since its process last wrote its progress (every second while it lives). */
      progressAgeS: z.number().int().nonnegative().nullable(),
    })
    .nullable(),
  /**
   * A `running` row whose progress has not been written for STALL_MINUTES: its process died. The next
   * backup run (or the backup function's GET /status) marks it failed, stalled (docs/backup.md "Progress and state").
   */
  stalled: z.object({ archiveId: z.string(), kind: z.string(), startedAt: instant, lastProgressAt: instant.nullable() }).nullable(),
  /** The last good logical backup is younger than a day and an hour. */
  fresh: z.boolean(),
  lastCheck: z.object({ check: z.string(), ok: z.boolean(), message: z.string(), checkedAt: instant }).nullable(),
  failedChecks24h: z.number().int().nonnegative(),
});
export type BackupSummary = z.infer<typeof BackupSummarySchema>;
type ArchiveBrief = z.infer<typeof ArchiveBriefSchema>;
type RunningBrief = NonNullable<BackupSummary['running']>;

const brief = (a: Archive | null): ArchiveBrief | null =>
  a ? { archiveId: a.archiveId, finishedAt: a.finishedAt?.toISOString() ?? null, sizeBytes: a.sizeBytes } : null;

export async function backupSummary(db: Db, now: Date = new Date()): Promise<BackupSummary> {
  const [logical, physical, runningRows, checks, failed] = await Promise.all([
    lastGood(db, 'logical'),
    lastGood(db, 'physical'),
    listArchives(db, { status: 'running', limit: 10, since: new Date(now.getTime() - 6 * 3600_000) }),
    recentChecks(db, 1),
    db.query<{ n: string }>(`SELECT count(*) AS n FROM backup_check WHERE ok = false AND checked_at > now() - interval '24 hours'`),
  ]);
  // Judged against the database's clock, which wrote progress_at: a status read on another machine
  // with a clock off by minutes must not call a live backup stalled.
  const dbNow = (await db.query<{ t: Date }>('SELECT now() AS t')).rows[0]!.t.getTime();
  const isStalled = (a: Archive) => !!a.progressAt && dbNow - a.progressAt.getTime() > STALL_MINUTES * 60_000;
  const r = runningRows.find((a) => !isStalled(a));
  const s = runningRows.find(isStalled);
  let run: RunningBrief | null = null;
  if (r) {
    const el = Math.max(1, (now.getTime() - r.startedAt.getTime()) / 1000);
    run = {
      archiveId: r.archiveId,
      kind: r.kind,
      startedAt: r.startedAt.toISOString(),
      bytesDone: r.bytesDone,
      tablesDone: r.tablesDone,
      tablesTotal: r.tablesTotal,
      rate: Math.round(r.bytesDone / el),
      etaS: r.tablesDone > 0 && r.tablesTotal >= r.tablesDone ? Math.round((el * (r.tablesTotal - r.tablesDone)) / r.tablesDone) : null,
      progressAgeS: r.progressAt ? Math.max(0, Math.round((dbNow - r.progressAt.getTime()) / 1000)) : null,
    };
  }
  const c = checks[0];
  return {
    lastLogical: brief(logical),
    lastPhysical: brief(physical),
    running: run,
    stalled: s ? { archiveId: s.archiveId, kind: s.kind, startedAt: s.startedAt.toISOString(), lastProgressAt: s.progressAt?.toISOString() ?? null } : null,
    fresh: !!logical?.finishedAt && now.getTime() - logical.finishedAt.getTime() <= 25 * 3600_000,
    lastCheck: c ? { check: c.check, ok: c.ok, message: c.message, checkedAt: c.checkedAt.toISOString() } : null,
    failedChecks24h: Number(failed.rows[0]!.n),
  };
}
