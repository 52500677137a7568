/**
 * The backup settings that point the backup code at the tests' S3 store (infra/dev/s3.ts, MinIO's
 * stand-in), under a prefix of the caller's: what the backup tests give loadBackupConfig and the CLI.
 */
import type { RunningS3 } from '../../infra/dev/s3.js';

export function backupStoreEnv(s3: RunningS3, prefix: string, o: { partMb?: string } = {}): Record<string, string> {
  return {
    BACKUP_S3_ENDPOINT: s3.endpoint,
    BACKUP_S3_ACCESS_KEY: s3.accessKey,
    BACKUP_S3_SECRET_KEY: s3.secretKey,
    BACKUP_S3_BUCKET: s3.bucket,
    BACKUP_S3_PREFIX: prefix,
    ...(o.partMb ? { BACKUP_PART_MB: o.partMb } : {}),
  };
}
