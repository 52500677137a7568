/**
 * The ledger of a restored archive taken by an older release (docs/backup.md "The ledger after a
 * restore"): its backup_archive has no progress_at (added by migration 1020), and the restore that
 * records the archive `good` must not fail on it — the backup an upgrade's first step takes is such an
 * archive, and it is the way back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { fixLedger } from '../../shared/backup/version-move.js';
import { privateDatabase } from '../setup/db.js';

let db: pg.Pool;
let url: string;
let drop: () => Promise<void>;
beforeAll(async () => {
  ({ db, url, drop } = await privateDatabase('ledger_older'));
});
afterAll(async () => {
  await drop?.();
});

describe('the ledger of an archive taken before migration 1020', () => {
  it('records the archive good and the other running one failed, its finish its start', async () => {
    // The restored snapshot as a release before 1020 left it: no progress_at column.
    await db.query('ALTER TABLE backup_archive DROP COLUMN progress_at');
    const row = async (sql: string) => (await db.query(sql)).rows[0] as { archive_id: string };
    const own = await row(
      `INSERT INTO backup_archive (kind, status, trigger, bucket, object_key, dialect, tool, started_at)
       VALUES ('logical', 'running', 'manual', 'b', '', 'postgresql', 'pg_dump', now() - interval '1 minute') RETURNING archive_id`,
    );
    const other = await row(
      `INSERT INTO backup_archive (kind, status, trigger, bucket, object_key, dialect, tool, started_at)
       VALUES ('physical', 'running', 'cron', 'b', '', 'postgresql', 'pg_basebackup', now()) RETURNING archive_id`,
    );
    await fixLedger(url, { archiveId: String(own.archive_id), objectKey: 'p/logical/a.dump', sizeBytes: 10, sha256: 'ab', rowCounts: { t: 1 } });
    const rows = (await db.query('SELECT archive_id, status, object_key, finished_at = started_at AS at_start FROM backup_archive ORDER BY archive_id')).rows;
    expect(rows).toEqual([
      { archive_id: own.archive_id, status: 'good', object_key: 'p/logical/a.dump', at_start: true },
      { archive_id: other.archive_id, status: 'failed', object_key: '', at_start: null },
    ]);
  });
});
