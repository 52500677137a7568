// The 备份 page says in Chinese what an archive's recorded failure means (shared/backup/ledger.ts
// archiveErrorNote, docs/backup.md "The ledger"): each reason the backup function records, as its
// producers write it, gets the note for its kind; one that matches no rule is a plain 备份失败.
import { describe, expect, it } from 'vitest';
import { archiveErrorNote, STALL_MINUTES } from '../../shared/backup/ledger.js';
import { toolFailure } from '../../shared/backup/tools.js';

const exit1 = { code: 1, signal: null };

describe('archiveErrorNote', () => {
  it.each([
    [
      `stalled: no progress for ${STALL_MINUTES} minutes — the backup process stopped (killed, or its machine restarted) before finishing`,
      /^中断：备份进程长时间没有进展/,
    ],
    ['interrupted: the backup process stopped before finishing', /^中断：备份进程在完成前停止/],
    ['integrity check failed: size mismatch: the store holds 10 bytes of logical/a.dump, 20 were recorded (truncated or altered)', /^已损坏：.*大小/],
    ['integrity check failed: missing: object logical/a.dump is not in bucket cdc-backups', /^已损坏：备份存储中已没有该归档$/],
    ['integrity check failed: content altered: the bytes of logical/a.dump hash to 0123456789ab…, ba9876543210… was recorded', /^已损坏：归档内容.*校验和/],
    ['no backup store configured: set BACKUP_S3_ENDPOINT and the secret files backup-s3-access-key / backup-s3-secret-key (docs/backup.md)', /^未配置备份存储/],
    ['backup store unavailable (127.0.0.1:9000): connect ECONNREFUSED 127.0.0.1:9000', /^无法连接备份存储/],
    ['backup store unavailable (127.0.0.1:9000): Access Denied.', /^备份存储拒绝访问/],
    ['backup store unavailable (s3.local:443): The Access Key Id you provided does not exist in our records.', /^备份存储拒绝访问/],
    ['backup store failed completing the archive: We encountered an internal error, please try again.', /^备份存储未能保存归档/],
    ['backup store failed completing the archive: Storage backend has reached its minimum free drive threshold (XMinioStorageFull)', /^存储空间不足/],
    [toolFailure('pg_dump', exit1, 'pg_dump: error: could not write to output file: No space left on device'), /^存储空间不足/],
    [toolFailure('pg_basebackup', exit1, 'pg_basebackup: error: connection to server failed: FATAL: too many connections'), /^数据库备份工具异常退出/],
    [toolFailure('gs_dump', { code: null, signal: null, error: new Error('spawn gs_dump EACCES') }, ''), /^数据库备份工具异常退出或无法启动$/],
    ['/usr/lib/postgresql/15/bin/pg_dump not found (BACKUP_PG_BIN; Debian: postgresql-client-15)', /^找不到数据库备份工具/],
    ['logical/a.dump is encrypted (SM4) but the secret file backup-sm4-key is missing', /^缺少加密密钥文件 backup-sm4-key$/],
    ['software archive: /opt/cdc-front does not exist (BACKUP_SOFTWARE_DIR)', /^软件归档失败/],
    ['backup ledger update failed: archive 12 is no longer in the ledger', /^备份台账更新失败/],
  ])('%s', (reason, note) => {
    expect(archiveErrorNote(reason)).toMatch(note);
  });

  it('a reason no rule knows is a plain 备份失败', () => {
    expect(archiveErrorNote('something nobody foresaw')).toBe('备份失败');
  });
});
