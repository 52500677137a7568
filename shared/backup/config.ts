/**
 * Backup settings (docs/backup.md), parsed once with zod; fails fast naming the variable. The
 * store's keys and the SM4 key come from secret files, like every secret of the project.
 *
 *   BACKUP_S3_ENDPOINT     the S3-compatible store (MinIO): http(s)://host:port
 *   BACKUP_S3_BUCKET       bucket (default cdc-front-backup); BACKUP_S3_REGION (default us-east-1)
 *   BACKUP_S3_PREFIX       key prefix of this front's archives (default cdc-front)
 *   backup-s3-access-key, backup-s3-secret-key   secret files (or BACKUP_S3_ACCESS_KEY / _SECRET_KEY)
 *   backup-sm4-key         secret file: 32 hex digits; when present archives are SM4-encrypted at rest
 *   BACKUP_KEEP_DAILY      logical (and system, software) archives kept (default 7)
 *   BACKUP_KEEP_WEEKLY     physical archives kept (default 4)
 *   BACKUP_LOGICAL_AT      local time of the nightly logical backup (default 02:00)
 *   BACKUP_PHYSICAL_DAY    weekday of the physical backup, 0 = Sunday (default 0)
 *   BACKUP_PHYSICAL_AT     local time of the weekly physical backup (default 03:00)
 *   BACKUP_PG_BIN          folder of pg_dump / pg_restore / pg_basebackup / pg_verifybackup (or gs_*)
 *   BACKUP_PART_MB         multipart part size in MiB, the upload's memory bound (default 8, min 5)
 *   BACKUP_SOFTWARE_DIR    the project folder whose bundles the software archive holds
 *   BACKUP_DRILL           yes | no: run the restore drill after each logical backup (default yes)
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { concern, parseConcern, readSecret, type SecretReader } from '../config/index.js';

const HHMM = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'HH:mm');

const vars = {
  BACKUP_S3_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
  BACKUP_S3_BUCKET: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name')
    .default('cdc-front-backup'),
  BACKUP_S3_REGION: z.string().default('us-east-1'),
  BACKUP_S3_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/)
    .default('cdc-front'),
  BACKUP_KEEP_DAILY: z.coerce.number().int().min(1).default(7),
  BACKUP_KEEP_WEEKLY: z.coerce.number().int().min(1).default(4),
  BACKUP_LOGICAL_AT: HHMM.default('02:00'),
  BACKUP_PHYSICAL_DAY: z.coerce.number().int().min(0).max(6).default(0),
  BACKUP_PHYSICAL_AT: HHMM.default('03:00'),
  BACKUP_PG_BIN: z.string().default('/usr/lib/postgresql/15/bin'),
  BACKUP_PART_MB: z.coerce.number().int().min(5).max(1024).default(8),
  BACKUP_SOFTWARE_DIR: z.string().optional(),
  BACKUP_DRILL: z.enum(['yes', 'no']).default('yes'),
  TZ_LOCAL: z.string().default('Asia/Shanghai'),
};

export interface StoreSettings {
  endPoint: string;
  port: number;
  useSSL: boolean;
  accessKey: string;
  secretKey: string;
  region: string;
  bucket: string;
  prefix: string;
}

export interface BackupConfig {
  /** Null when no store is configured: the function answers, every backup fails naming the variable. */
  store: StoreSettings | null;
  sm4Key: Buffer | null;
  keepDaily: number;
  keepWeekly: number;
  logicalAt: string;
  physicalDay: number;
  physicalAt: string;
  pgBin: string;
  partSize: number;
  softwareDir: string | null;
  drill: boolean;
  timeZone: string;
}

/** The project folder: the function's cwd is functions/<name> under this runtime. */
function findSoftwareDir(): string | null {
  for (const d of [process.cwd(), resolve(process.cwd(), '../..')]) if (existsSync(join(d, 'stack.yml'))) return d;
  return null;
}

/**
 * The backup concern of a function's configuration (docs/configuration.md): the store's keys come
 * from the secret files backup-s3-access-key / backup-s3-secret-key (or the variables, in tests and
 * commands), the SM4 key from backup-sm4-key when it exists.
 */
export const backupConcern = concern({
  name: 'backup',
  optionalSecrets: ['backup-s3-access-key', 'backup-s3-secret-key', 'backup-sm4-key'],
  vars,
  // The store's keys are optional secret files (a front may run without a store: every backup then
  // fails naming it), so they are not listed as required secrets; commands and tests may pass them as
  // BACKUP_S3_ACCESS_KEY / BACKUP_S3_SECRET_KEY instead.
  build: (v, secret, env): BackupConfig => {
    const sm4 = secret('backup-sm4-key')?.trim();
    if (sm4 !== undefined && !/^[0-9a-fA-F]{32}$/.test(sm4)) throw new Error('backup-sm4-key: 32 hex digits (128 bits)');
    return buildBackupConfig({
      ...v,
      BACKUP_S3_ACCESS_KEY: env.BACKUP_S3_ACCESS_KEY || secret('backup-s3-access-key'),
      BACKUP_S3_SECRET_KEY: env.BACKUP_S3_SECRET_KEY || secret('backup-s3-secret-key'),
      BACKUP_SM4_KEY: sm4,
    });
  },
});

/** The backup settings alone (the backup commands and tests); functions compose backupConcern. */
export function loadBackupConfig(env: Record<string, string | undefined> = process.env, secret: SecretReader = readSecret): BackupConfig {
  return parseConcern(backupConcern, env, secret);
}

function buildBackupConfig(
  c: z.output<z.ZodObject<typeof vars>> & {
    BACKUP_S3_ACCESS_KEY: string | undefined;
    BACKUP_S3_SECRET_KEY: string | undefined;
    BACKUP_SM4_KEY: string | undefined;
  },
): BackupConfig {
  let store: StoreSettings | null = null;
  if (c.BACKUP_S3_ENDPOINT) {
    if (!c.BACKUP_S3_ACCESS_KEY || !c.BACKUP_S3_SECRET_KEY) {
      // The concern's parse prefixes "backup configuration invalid: " (shared/config).
      throw new Error(
        `the backup store ${c.BACKUP_S3_ENDPOINT} needs the secret files backup-s3-access-key / backup-s3-secret-key, which are missing (or BACKUP_S3_ACCESS_KEY / BACKUP_S3_SECRET_KEY)`,
      );
    }
    const u = new URL(c.BACKUP_S3_ENDPOINT);
    const useSSL = u.protocol === 'https:';
    store = {
      endPoint: u.hostname.replace(/^\[|\]$/g, ''),
      port: u.port ? Number(u.port) : useSSL ? 443 : 80,
      useSSL,
      accessKey: c.BACKUP_S3_ACCESS_KEY,
      secretKey: c.BACKUP_S3_SECRET_KEY,
      region: c.BACKUP_S3_REGION,
      bucket: c.BACKUP_S3_BUCKET,
      prefix: c.BACKUP_S3_PREFIX,
    };
  }
  return {
    store,
    sm4Key: c.BACKUP_SM4_KEY ? Buffer.from(c.BACKUP_SM4_KEY, 'hex') : null,
    keepDaily: c.BACKUP_KEEP_DAILY,
    keepWeekly: c.BACKUP_KEEP_WEEKLY,
    logicalAt: c.BACKUP_LOGICAL_AT,
    physicalDay: c.BACKUP_PHYSICAL_DAY,
    physicalAt: c.BACKUP_PHYSICAL_AT,
    pgBin: c.BACKUP_PG_BIN,
    partSize: c.BACKUP_PART_MB * 1024 * 1024,
    softwareDir: c.BACKUP_SOFTWARE_DIR ? resolve(c.BACKUP_SOFTWARE_DIR) : findSoftwareDir(),
    drill: c.BACKUP_DRILL === 'yes',
    timeZone: c.TZ_LOCAL,
  };
}

export function requireStore(cfg: BackupConfig): StoreSettings {
  if (!cfg.store)
    throw new Error('no backup store configured: set BACKUP_S3_ENDPOINT and the secret files backup-s3-access-key / backup-s3-secret-key (docs/backup.md)');
  return cfg.store;
}
