/**
 * The backup ledger in the database (migration 0019): archives and their checks (docs/backup.md).
 */
import { z } from 'zod';
import type pg from 'pg';
import type { Db } from '../db/index.js';

export const ARCHIVE_KINDS = ['logical', 'physical', 'system', 'software'] as const;
export const ArchiveKindSchema = z.enum(ARCHIVE_KINDS);
export type ArchiveKind = z.infer<typeof ArchiveKindSchema>;

export const CHECK_KINDS = ['integrity', 'listing', 'drill', 'verify', 'freshness'] as const;
export type CheckKind = (typeof CHECK_KINDS)[number];

export const RowCountsSchema = z.record(z.string(), z.number().int().nonnegative());
export type RowCounts = z.infer<typeof RowCountsSchema>;

export interface Archive {
  archiveId: string;
  kind: ArchiveKind;
  /** `damaged`: was good, then an integrity check found the object missing or altered (docs/backup.md "The checks"). */
  status: 'running' | 'good' | 'failed' | 'removed' | 'damaged';
  trigger: string;
  bucket: string;
  objectKey: string;
  dialect: string;
  tool: string;
  encryption: string | null;
  startedAt: Date;
  finishedAt: Date | null;
  sizeBytes: number | null;
  sha256: string | null;
  bytesDone: number;
  tablesTotal: number;
  tablesDone: number;
  rowCounts: RowCounts | null;
  error: string | null;
  /** When the process taking it last wrote its progress (null on rows of older releases). */
  progressAt: Date | null;
}

interface ArchiveRow {
  archive_id: string;
  kind: ArchiveKind;
  status: Archive['status'];
  trigger: string;
  bucket: string;
  object_key: string;
  dialect: string;
  tool: string;
  encryption: string | null;
  started_at: Date;
  finished_at: Date | null;
  size_bytes: string | null;
  sha256: string | null;
  bytes_done: string;
  tables_total: number;
  tables_done: number;
  row_counts: string | null;
  error: string | null;
  progress_at: Date | null;
}

const COLS = `archive_id, kind, status, trigger, bucket, object_key, dialect, tool, encryption, started_at, finished_at,
  size_bytes, sha256, bytes_done, tables_total, tables_done, row_counts, error, progress_at`;

function toArchive(r: ArchiveRow): Archive {
  return {
    archiveId: String(r.archive_id),
    kind: r.kind,
    status: r.status,
    trigger: r.trigger,
    bucket: r.bucket,
    objectKey: r.object_key,
    dialect: r.dialect,
    tool: r.tool,
    encryption: r.encryption,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    sizeBytes: r.size_bytes === null ? null : Number(r.size_bytes),
    sha256: r.sha256?.trim() ?? null,
    bytesDone: Number(r.bytes_done),
    tablesTotal: r.tables_total,
    tablesDone: r.tables_done,
    rowCounts: r.row_counts ? RowCountsSchema.parse(JSON.parse(r.row_counts)) : null,
    error: r.error,
    progressAt: r.progress_at,
  };
}

export async function insertArchive(
  db: Db,
  a: { kind: ArchiveKind; trigger: string; bucket: string; dialect: string; tool: string; encryption: string | null; startedAt: Date },
): Promise<string> {
  const r = await db.query<{ archive_id: string }>(
    `INSERT INTO backup_archive (kind, status, trigger, bucket, object_key, dialect, tool, encryption, started_at, progress_at)
     VALUES ($1, 'running', $2, $3, '', $4, $5, $6, $7, now()) RETURNING archive_id`,
    [a.kind, a.trigger, a.bucket, a.dialect, a.tool, a.encryption, a.startedAt],
  );
  return String(r.rows[0]!.archive_id);
}

export async function setKey(db: Db, id: string, key: string, tablesTotal: number): Promise<void> {
  await db.query('UPDATE backup_archive SET object_key = $2, tables_total = $3, progress_at = now() WHERE archive_id = $1', [id, key, tablesTotal]);
}

export async function setProgress(db: Db, id: string, bytes: number, tablesDone: number, tablesTotal: number): Promise<void> {
  await db.query('UPDATE backup_archive SET bytes_done = $2, tables_done = $3, tables_total = $4, progress_at = now() WHERE archive_id = $1 AND status = $5', [
    id,
    bytes,
    tablesDone,
    tablesTotal,
    'running',
  ]);
}

/** Records the archive as good; false when its row is no longer in the ledger (nothing was updated). */
export async function markGood(db: Db, id: string, f: { size: number; sha256: string; rowCounts: RowCounts | null; tablesDone: number }): Promise<boolean> {
  const r = await db.query(
    `UPDATE backup_archive SET status = 'good', finished_at = now(), size_bytes = $2, sha256 = $3, bytes_done = $2,
            row_counts = $4, tables_done = $5, error = NULL WHERE archive_id = $1`,
    [id, f.size, f.sha256, f.rowCounts ? JSON.stringify(f.rowCounts) : null, f.tablesDone],
  );
  return (r.rowCount ?? 0) > 0;
}

export async function markFailed(db: Db, id: string, error: string): Promise<void> {
  await db.query(`UPDATE backup_archive SET status = 'failed', finished_at = now(), error = $2 WHERE archive_id = $1`, [id, error.slice(0, 500)]);
}

/**
 * How long a running archive's progress may go unwritten before its process counts as dead (docs/backup.md
 * "Progress and state"). The process writes it every second from the moment the object key is set, and
 * once before (the row, the key) — the longest gap is the store's connect and the snapshot's row counts,
 * seconds on the bench's million records. Five minutes is 300 missed writes: a database restart or a
 * pause of the function's event loop does not reach it, and a killed backup is seen within minutes, not hours.
 */
export const STALL_MINUTES = 5;

/** SQL: a running row whose process is gone — no progress for STALL_MINUTES, or (older rows, no progress time) 6 hours old. */
export const STALLED = `(status = 'running' AND ((progress_at IS NOT NULL AND progress_at < now() - interval '${STALL_MINUTES} minutes')
  OR (progress_at IS NULL AND started_at < now() - interval '6 hours')))`;

/** Rows left `running` by a process that died are failed (stalled), not trusted: the next run may take the kind again. */
export async function failInterrupted(db: Db): Promise<number> {
  const r = await db.query(
    `UPDATE backup_archive SET status = 'failed', finished_at = now(),
            error = CASE WHEN progress_at IS NULL THEN 'interrupted: the backup process stopped before finishing'
                         ELSE 'stalled: no progress for ${STALL_MINUTES} minutes — the backup process stopped (killed, or its machine restarted) before finishing' END
      WHERE ${STALLED}`,
  );
  return r.rowCount ?? 0;
}

/**
 * A good archive the integrity check found missing, truncated or altered is no longer counted good
 * (docs/backup.md "The checks"): freshness, the status and the schedule then see what is really
 * restorable, and the next hourly run takes a new archive of that kind. True when it was good.
 */
export async function markDamaged(db: Db, id: string, why: string): Promise<boolean> {
  const r = await db.query(`UPDATE backup_archive SET status = 'damaged', error = $2 WHERE archive_id = $1 AND status = 'good'`, [
    id,
    `integrity check failed: ${why}`.slice(0, 500),
  ]);
  return (r.rowCount ?? 0) > 0;
}

export async function markRemoved(db: Db, id: string): Promise<void> {
  await db.query(`UPDATE backup_archive SET status = 'removed', removed_at = now() WHERE archive_id = $1`, [id]);
}

/**
 * Runs `SELECT <cols> <rest>`; on a database behind this release (a later migration's column not yet
 * there: its pages still have to be shown, docs/deploy.md "Database migrations") runs it again with
 * each of `later`'s columns read as a typed NULL. `later` names each such column with its SQL type.
 */
async function selectBehindTolerant<R extends pg.QueryResultRow>(
  db: Db,
  cols: string,
  later: Record<string, string>,
  rest: string,
  params: unknown[],
): Promise<R[]> {
  try {
    return (await db.query<R>(`SELECT ${cols} ${rest}`, params)).rows;
  } catch (err) {
    if ((err as { code?: string }).code !== '42703') throw err;
    const older = cols
      .split(',')
      .map((c) => c.trim())
      .map((c) => (c in later ? `NULL::${later[c]} AS ${c}` : c))
      .join(', ');
    return (await db.query<R>(`SELECT ${older} ${rest}`, params)).rows;
  }
}

/** Reads ledger rows; progress_at came with migration 1020. */
async function selectArchives(db: Db, rest: string, params: unknown[]): Promise<Archive[]> {
  return (await selectBehindTolerant<ArchiveRow>(db, COLS, { progress_at: 'timestamptz' }, rest, params)).map(toArchive);
}

export async function getArchive(db: Db, id: string): Promise<Archive | null> {
  return (await selectArchives(db, 'FROM backup_archive WHERE archive_id = $1', [id]))[0] ?? null;
}

export async function listArchives(db: Db, opts: { kind?: ArchiveKind; status?: Archive['status']; limit?: number; since?: Date } = {}): Promise<Archive[]> {
  return selectArchives(
    db,
    `FROM backup_archive
      WHERE ($1::varchar IS NULL OR kind = $1::varchar) AND ($2::varchar IS NULL OR status = $2::varchar)
        AND ($4::timestamptz IS NULL OR started_at >= $4::timestamptz)
      ORDER BY started_at DESC, archive_id DESC LIMIT $3`,
    [opts.kind ?? null, opts.status ?? null, opts.limit ?? 100, opts.since ?? null],
  );
}

export async function lastGood(db: Db, kind: ArchiveKind): Promise<Archive | null> {
  return (await listArchives(db, { kind, status: 'good', limit: 1 }))[0] ?? null;
}

export interface CheckResult {
  archiveId: string | null;
  check: CheckKind;
  ok: boolean;
  /** What the check found, for the command line and the logs. */
  message: string;
  /** The same for the console (Chinese); null on checks recorded before there was one. */
  note?: string | null;
  durationMs: number;
}

export async function recordCheck(db: Db, c: CheckResult): Promise<void> {
  await db.query('INSERT INTO backup_check (archive_id, check_kind, ok, message, note, duration_ms) VALUES ($1, $2, $3, $4, $5, $6)', [
    c.archiveId,
    c.check,
    c.ok,
    c.message.slice(0, 1000),
    c.note?.slice(0, 1000) ?? null,
    Math.round(c.durationMs),
  ]);
}

export async function recentChecks(db: Db, limit = 20): Promise<Array<CheckResult & { checkedAt: Date }>> {
  // note came with migration 1040.
  const r = await selectBehindTolerant<{
    archive_id: string | null;
    check_kind: CheckKind;
    ok: boolean;
    message: string;
    note: string | null;
    duration_ms: number;
    checked_at: Date;
  }>(db, 'archive_id, check_kind, ok, message, note, duration_ms, checked_at', { note: 'varchar' }, 'FROM backup_check ORDER BY check_id DESC LIMIT $1', [
    limit,
  ]);
  return r.map((x) => ({
    archiveId: x.archive_id === null ? null : String(x.archive_id),
    check: x.check_kind,
    ok: x.ok,
    message: x.message,
    note: x.note,
    durationMs: x.duration_ms,
    checkedAt: x.checked_at,
  }));
}

/**
 * What an archive's recorded failure means, in Chinese for the console's 备份 page (docs/backup.md
 * "The ledger"): the reason is tool and library output, English, kept as it was for the command line
 * and the logs; the page shows the kind of failure and what to check, the reason itself beside it.
 * The first rule whose pattern the reason matches names it.
 */
const FAILURE_NOTES: ReadonlyArray<readonly [RegExp, string]> = [
  [/^integrity check failed: size mismatch/, '已损坏：存储中的归档大小与备份时记录的不符（被截断或被改动）'],
  [/^integrity check failed: missing/, '已损坏：备份存储中已没有该归档'],
  [/^integrity check failed/, '已损坏：归档内容与备份时记录的校验和不符'],
  [/^stalled:/, '中断：备份进程长时间没有进展（被终止或机器重启），下一次计划备份会重新进行'],
  [/^interrupted:/, '中断：备份进程在完成前停止，下一次计划备份会重新进行'],
  [/no backup store configured/, '未配置备份存储：请设置 BACKUP_S3_ENDPOINT 和密钥文件 backup-s3-access-key / backup-s3-secret-key'],
  [
    /Access ?Denied|InvalidAccessKeyId|Access Key Id you provided|SignatureDoesNotMatch|signature we calculated/i,
    '备份存储拒绝访问：请检查密钥文件 backup-s3-access-key / backup-s3-secret-key',
  ],
  [/ENOSPC|No space left|StorageFull|quota/i, '存储空间不足：请清理或扩容备份存储或本机磁盘'],
  [/backup store unavailable|ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|ECONNRESET|socket hang up/i, '无法连接备份存储：请检查 BACKUP_S3_ENDPOINT 与网络'],
  [/backup store failed/i, '备份存储未能保存归档：请检查备份存储的状态'],
  [/backup-sm4-key is missing/, '缺少加密密钥文件 backup-sm4-key'],
  [/not found \(BACKUP_PG_BIN/, '找不到数据库备份工具：请安装 postgresql-client-15 或设置 BACKUP_PG_BIN'],
  [/^software archive:/, '软件归档失败：找不到已构建的函数包或项目目录（BACKUP_SOFTWARE_DIR）'],
  [/ledger update failed/, '备份台账更新失败：请检查数据库连接'],
  [/^\S+ (exited with|could not run)/, '数据库备份工具异常退出或无法启动'],
];

export function archiveErrorNote(error: string): string {
  return FAILURE_NOTES.find(([pattern]) => pattern.test(error))?.[1] ?? '备份失败';
}
