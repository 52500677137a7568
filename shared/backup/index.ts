/**
 * Backups that prove themselves (docs/backup.md): what is due when, retention, alerts, and the
 * summary the status JSON carries.
 */
import type { Db } from '../db/index.js';
import { log } from '../log/index.js';
import { formatLocal, fromLocalParts } from '../time/index.js';
import { alertConfig, channelsOf, type AlertConfig } from '../alerts/index.js';
import { requireStore, type BackupConfig } from './config.js';
import { checkArchive, checkFreshness, integrityChecked } from './check.js';
import { failInterrupted, getArchive, listArchives, markRemoved, STALLED, type ArchiveKind, type CheckResult } from './ledger.js';
import { manifestKey, runBackup, type BackupOptions, type BackupResult } from './run.js';
import { holdsRecords } from './records.js';
import { openStore, type Store } from './store.js';

export { loadBackupConfig, requireStore, type BackupConfig } from './config.js';
export { checkArchive, checkFreshness, checkIntegrity, fetchArchive, integrityChecked, listTables, plainStream } from './check.js';
export {
  ARCHIVE_KINDS,
  ArchiveKindSchema,
  failInterrupted,
  STALL_MINUTES,
  getArchive,
  lastGood,
  listArchives,
  recentChecks,
  type Archive,
  type ArchiveKind,
  type CheckResult,
} from './ledger.js';
export { keyMismatch, restoreInto, type RestoreProgress, type RestoreResult } from './restore.js';
export { manifestKey, manifestRecords, parseManifest, restorableOf, runBackup, SYSTEM_TABLES, type BackupResult, type Manifest, type Progress } from './run.js';
export { holdsRecords, recordsIn, typedTables } from './records.js';
export { backupSummary, BackupSummarySchema, type BackupSummary } from './summary.js';
export { ObjectWriter, openStore, statArchive, putSmall, readSmall, replaceMeta, listKeys, type Store } from './store.js';

/** Local wall-clock parts of an instant. */
function localParts(at: Date, tz: string): { y: number; mo: number; d: number; wd: number } {
  const s = formatLocal(at, tz); // yyyy-MM-dd HH:mm:ss
  const [y, mo, d] = s.slice(0, 10).split('-').map(Number) as [number, number, number];
  return { y, mo, d, wd: new Date(Date.UTC(y, mo - 1, d)).getUTCDay() };
}

/**
 * The latest scheduled instant at or before `now`: today's (or an earlier day's) `at`, local time,
 * on any day or, with `weekday`, on that weekday only.
 */
export function lastScheduled(now: Date, tz: string, at: string, weekday?: number): Date {
  const [h, m] = at.split(':').map(Number) as [number, number];
  for (let back = 0; back <= 8; back++) {
    const p = localParts(new Date(now.getTime() - back * 86_400_000), tz);
    if (weekday !== undefined && p.wd !== weekday) continue;
    const t = fromLocalParts(tz, p.y, p.mo, p.d, h, m)!;
    if (t.getTime() <= now.getTime()) return t;
  }
  throw new Error('unreachable: no scheduled instant in the last 8 days');
}

/** Kinds whose archive is due: none good (or running) since their last scheduled instant. */
export async function dueKinds(db: Db, cfg: BackupConfig, now: Date): Promise<ArchiveKind[]> {
  const daily = lastScheduled(now, cfg.timeZone, cfg.logicalAt);
  const weekly = lastScheduled(now, cfg.timeZone, cfg.physicalAt, cfg.physicalDay);
  const due: ArchiveKind[] = [];
  for (const kind of ['logical', 'system', 'software', 'physical'] as const) {
    const since = kind === 'physical' ? weekly : daily;
    const r = await db.query<{ n: string }>(
      `SELECT count(*) AS n FROM backup_archive WHERE kind = $1 AND started_at >= $2
          AND (status = 'good' OR (status = 'running' AND NOT ${STALLED}))`,
      [kind, since],
    );
    if (Number(r.rows[0]!.n) === 0) due.push(kind);
  }
  return due;
}

/** Why the cron took no database archive: the database holds no records yet. */
export const NOTHING_YET = 'nothing to back up yet: the database holds no records (no row in any typed table)';

export interface RunReport {
  /** Kinds the cron left out, and why: a database with no records yet (docs/backup.md). */
  skipped?: { kinds: ArchiveKind[]; reason: string };
  backups: BackupResult[];
  checks: CheckResult[];
  removed: string[];
  alerted: string[];
}

/**
 * The cron's work: every archive due (each checked right after, the logical one restored in a
 * drill), the daily freshness check, retention; failures raise an alert. Never throws for a
 * failed backup: it is reported, recorded, and retried by the next run.
 */
export async function runDue(
  db: Db,
  databaseUrl: string,
  cfg: BackupConfig,
  opts: BackupOptions & { kinds?: ArchiveKind[]; alerts?: AlertConfig /** Default: when kinds are not given (the cron). */; recheck?: boolean } = {},
): Promise<RunReport> {
  const now = (opts.now ?? (() => new Date()))();
  await failInterrupted(db);
  const report: RunReport = { backups: [], checks: [], removed: [], alerted: [] };
  const store = openStore(requireStore(cfg));
  // The daily re-check first: an archive it finds damaged is no longer good, so its kind is due again
  // in this same run (docs/backup.md "The checks").
  if (opts.recheck ?? !opts.kinds) report.checks.push(...(await recheckDaily(db, store)));
  let kinds = opts.kinds ?? (await dueKinds(db, cfg, now));
  // The cron takes no archive of a database that holds no records (docs/backup.md "A database with no
  // records"): on a replacement server it would be the newest archive in the lost front's store. An
  // operator's run (kinds given) takes what it is asked for.
  if (!opts.kinds && kinds.some((k) => k !== 'software') && !(await holdsRecords(db))) {
    const left = kinds.filter((k) => k !== 'software');
    kinds = kinds.filter((k) => k === 'software');
    report.skipped = { kinds: left, reason: NOTHING_YET };
    log('info', 'backup: nothing to back up yet', { kinds: left });
  }
  for (const kind of kinds) {
    const b = await runBackup(db, databaseUrl, cfg, kind, opts);
    report.backups.push(b);
    if (!b.ok) continue;
    const a = (await listArchives(db, { kind, status: 'good', limit: 1 }))[0];
    if (a) report.checks.push(...(await checkArchive(db, store, cfg, a, { databaseUrl, drill: cfg.drill && kind === 'logical' })));
  }
  // Freshness is the logical archive's: judged by the cron, and by a run that took a logical archive.
  // An operator's run of another kind on a fresh front (no logical archive yet) is not failed for it.
  if (!opts.kinds || kinds.includes('logical')) report.checks.push(await checkFreshness(db, now, undefined, report.skipped ? NOTHING_YET : undefined));
  if (report.backups.some((b) => b.ok))
    report.removed = await applyRetention(db, store, cfg).catch((e: Error) => {
      log('error', 'backup retention failed', { err: e.message });
      return [];
    });
  const failures = [
    ...report.backups.filter((b) => !b.ok).map((b) => `备份失败（${b.kind}）：${b.error}`),
    ...report.checks.filter((c) => !c.ok).map((c) => `备份校验失败（${c.check}${c.archiveId ? `，归档 ${c.archiveId}` : ''}）：${c.message}`),
  ];
  if (failures.length) report.alerted = await raiseBackupAlert(db, failures, opts.alerts);
  return report;
}

/**
 * The daily re-check of every archive kept: its integrity (exists, size, metadata and content
 * checksums), once a day each, so an archive damaged or removed in the store after it was taken is
 * found within a day, not on the day it is needed.
 */
export async function recheckDaily(db: Db, store: Store): Promise<CheckResult[]> {
  const due = await db.query<{ archive_id: string }>(
    `SELECT a.archive_id FROM backup_archive a
      WHERE a.status = 'good' AND a.bucket = $1
        AND NOT EXISTS (SELECT 1 FROM backup_check c WHERE c.archive_id = a.archive_id AND c.check_kind = 'integrity'
                          AND c.checked_at > now() - interval '23 hours')
      ORDER BY a.archive_id`,
    [store.bucket],
  );
  const out: CheckResult[] = [];
  for (const r of due.rows) {
    const a = await getArchive(db, String(r.archive_id));
    if (!a) continue;
    out.push(await integrityChecked(db, store, a));
  }
  return out;
}

/**
 * Keeps the newest `keepDaily` good archives of the daily kinds and `keepWeekly` physical ones;
 * removes the others' objects and manifests and marks them removed. Returns the removed ids.
 */
export async function applyRetention(db: Db, store: Store, cfg: BackupConfig): Promise<string[]> {
  const removed: string[] = [];
  for (const kind of ['logical', 'system', 'software', 'physical'] as const) {
    const keep = kind === 'physical' ? cfg.keepWeekly : cfg.keepDaily;
    const good = await listArchives(db, { kind, status: 'good', limit: 10_000 });
    for (const a of good.slice(keep)) {
      await store.client.removeObject(store.bucket, a.objectKey);
      await store.client.removeObject(store.bucket, manifestKey(a.objectKey));
      await markRemoved(db, a.archiveId);
      removed.push(a.archiveId);
      log('info', 'backup removed by retention', { archiveId: a.archiveId, kind, objectKey: a.objectKey });
    }
  }
  return removed;
}

/**
 * A failure alert through the configured channels (shared/alerts), recorded in alert_event under
 * the destination "backup". Delivery failures are logged, never thrown.
 */
export async function raiseBackupAlert(db: Db, failures: string[], alerts?: AlertConfig): Promise<string[]> {
  let chans: ReturnType<typeof channelsOf> = [];
  let front = 'cdc-front';
  try {
    const cfg = alerts ?? alertConfig();
    front = cfg.frontName;
    chans = channelsOf(cfg);
  } catch (err) {
    log('error', 'backup alert: alert configuration invalid', { err: (err as Error).message });
  }
  const subject = '【传染病监测前置软件告警】备份或备份校验失败';
  const text = [
    subject,
    `前置：${front}`,
    ...failures.slice(0, 10),
    '请检查备份存储（MinIO）与数据库，详见控制台备份状态。',
    `时间：${formatLocal(new Date())}`,
  ]
    .join('\n')
    .slice(0, 2000);
  const delivered: string[] = [];
  const errors: string[] = [];
  for (const ch of chans) {
    try {
      await ch.send(subject, text);
      delivered.push(ch.name);
    } catch (err) {
      errors.push(`${ch.name}: ${(err as Error).message}`);
    }
  }
  log('warn', 'backup alert raised', { failures: failures.length, channels: delivered, errors });
  await db
    .query(
      `INSERT INTO alert_event (destination, kind, pending, oldest_age_s, message, channels, delivered_at, last_error)
       VALUES ('backup', 'raise', $1, NULL, $2, $3, $4, $5)`,
      [
        failures.length,
        text,
        delivered.length ? delivered.join(' ') : null,
        chans.length && errors.length === 0 ? new Date() : null,
        chans.length ? errors.join('; ').slice(0, 500) || null : 'no alert channel configured',
      ],
    )
    .catch((e: Error) => log('error', 'backup alert not recorded', { err: e.message }));
  return delivered;
}
