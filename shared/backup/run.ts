/**
 * Taking one archive (docs/backup.md): the tool's output streams through (optional SM4) into the
 * store, its size and SHA-256 computed on the way; the ledger row goes `running` → `good` only after
 * the tool exited cleanly, the object and its manifest are complete in the store. On any failure the
 * row is `failed` with the reason, and the object is removed: no half-recorded archive.
 *
 *   logical   pg_dump -Fc (gs_dump -F c) of the whole database, under an exported snapshot whose
 *             row counts per table are recorded for the restore drill
 *   system    the same for the configuration, code tables, mappings and callers only
 *   physical  pg_basebackup -Ft -X fetch to stdout (gs_basebackup): one tar with the WAL and manifest;
 *             refused without backup-sm4-key (PHYSICAL_NEEDS_KEY)
 *   software  a tar of package.json, stack.yml and every function bundle (functions/<fn>/dist)
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import pg from 'pg';
import { detectDialect, type Db, type Dialect } from '../db/index.js';
import { log } from '../log/index.js';
import pkg from '../../package.json' with { type: 'json' };
import { requireStore, type BackupConfig, type StoreSettings } from './config.js';
import { recordsIn } from './records.js';
import { z } from 'zod';
import { ArchiveKindSchema, insertArchive, markFailed, markGood, RowCountsSchema, setKey, setProgress, type ArchiveKind, type RowCounts } from './ledger.js';
import { ensureBucket, type Finished, ObjectWriter, openStore, putSmall, type Store } from './store.js';
import { archiveMac, heldOutput, pgEnv, runTool, sm4Encryptor, sm4Fingerprint, toolFailure, toolsOf, type Tools } from './tools.js';

/**
 * The system data (those that exist): the configuration — the signed bundles and the one in force, the
 * activation, the destinations, the schedules' state, the ports —, code tables, mappings, the HIS
 * callers and staging roles, and the console's users. No table with sealed personal data
 * (docs/keys.md: the key retirement counts only the archives that hold some).
 */
export const SYSTEM_TABLES = [
  'schema_migration',
  'config_bundle',
  'config_active',
  'front_activation',
  'schedule_state',
  'gateway_port',
  'uplink_destination',
  'his_caller',
  'dbsync_role_org',
  'console_user',
  'code_domain',
  'code_national',
  'code_mapping',
  'code_mapping_history',
  'code_policy',
  'code_map_version',
] as const;

export interface Progress {
  archiveId: string;
  kind: ArchiveKind;
  bytes: number;
  tablesDone: number;
  tablesTotal: number;
  /** Physical backups: the server's estimate of the total, in bytes. */
  totalBytes: number | null;
  startedAt: Date;
}

export interface BackupOptions {
  trigger?: 'cron' | 'manual';
  now?: () => Date;
  onProgress?: (p: Progress) => void;
  /** How often progress is written to the ledger (ms). */
  progressMs?: number;
}

export interface BackupResult {
  archiveId: string;
  kind: ArchiveKind;
  ok: boolean;
  objectKey: string;
  size?: number;
  sha256?: string;
  rowCounts?: RowCounts;
  error?: string;
  durationMs: number;
}

/**
 * The manifest stored beside each archive (docs/backup.md): what a restore needs when the database is
 * gone. Read back from the store — where anyone who can write the bucket can write it —, so parsed.
 */
export const ManifestSchema = z.object({
  archiveId: z.string().regex(/^\d{1,18}$/),
  kind: ArchiveKindSchema,
  dialect: z.enum(['postgresql', 'opengauss']),
  tool: z.string(),
  version: z.string(),
  encryption: z.string().nullable(),
  /** Encrypted archives: which backup-sm4-key (sm4Fingerprint, never the key); absent in older manifests. */
  keyFingerprint: z.string().nullable().optional(),
  /** Encrypted archives: `hmac-sm3:<hex>` of the stored bytes under the backup key (archiveMac); absent in older manifests. */
  mac: z
    .string()
    .regex(/^hmac-sm3:[0-9a-f]{64}$/)
    .nullable()
    .optional(),
  startedAt: z.string(),
  finishedAt: z.string(),
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  rowCounts: RowCountsSchema.nullable(),
  /**
   * Rows in the typed tables at backup time (recordsIn: the records, patients to report cards); 0 for
   * the database of a new installation. Absent in older manifests (make restore then sums rowCounts).
   */
  records: z.number().int().nonnegative().nullable().optional(),
});
export type Manifest = z.infer<typeof ManifestSchema>;

/** The records a manifest shows: as recorded, or (older manifests) summed from its row counts; null without either. */
export function manifestRecords(m: Partial<Pick<Manifest, 'records' | 'rowCounts'>>): number | null {
  return m.records ?? recordsIn(m.rowCounts);
}

/** The archive a manifest describes, as a restore or a fetch reads it: `key` is the object's key. */
export function restorableOf(key: string, m: Manifest) {
  return {
    archiveId: m.archiveId,
    objectKey: key,
    encryption: m.encryption,
    keyFingerprint: m.keyFingerprint ?? null,
    mac: m.mac ?? null,
    rowCounts: m.rowCounts,
    sizeBytes: m.size,
    sha256: m.sha256,
    dialect: m.dialect,
  };
}

/** A manifest's text as stored: the manifest, or an error naming the object and what is wrong. */
export function parseManifest(key: string, text: string): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`${key} is not a manifest of this front: not JSON`);
  }
  const m = ManifestSchema.safeParse(json);
  if (!m.success)
    throw new Error(`${key} is not a manifest of this front: ${m.error.issues.map((i) => `${i.path.join('.') || '(root)'} ${i.message}`).join('; ')}`);
  return m.data;
}

const EXT: Record<ArchiveKind, string> = { logical: '.dump', system: '.dump', physical: '.tar', software: '.tar' };

function stamp(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

export function manifestKey(objectKey: string): string {
  return `${objectKey}.manifest.json`;
}

/** Tables of the current schema, sorted. */
async function userTables(c: pg.ClientBase): Promise<string[]> {
  const r = await c.query<{ t: string }>(`SELECT tablename AS t FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename`);
  return r.rows.map((x) => x.t);
}

async function countRows(c: pg.ClientBase, tables: string[]): Promise<RowCounts> {
  const out: RowCounts = {};
  for (const t of tables) {
    const r = await c.query<{ n: string }>(`SELECT count(*) AS n FROM "${t.replace(/"/g, '""')}"`);
    out[t] = Number(r.rows[0]!.n);
  }
  return out;
}

interface Source {
  tool: string;
  stdout: Readable;
  tablesTotal: number;
  rowCounts: RowCounts | null;
  /** Resolves once the producer exited; rejects with why it failed. */
  done: Promise<void>;
  kill(): void;
  /** Releases what the source holds (the snapshot's transaction). */
  release(): Promise<void>;
}

export async function runBackup(db: Db, databaseUrl: string, cfg: BackupConfig, kind: ArchiveKind, opts: BackupOptions = {}): Promise<BackupResult> {
  const now = opts.now ?? (() => new Date());
  const t0 = Date.now();
  const settings = requireStore(cfg);
  const dialect = await detectDialect(db);
  const toolName = toolNameOf(kind, toolsOf(dialect, cfg.pgBin));
  const startedAt = now();
  const encryption = cfg.sm4Key ? 'sm4-ctr' : null;
  const archiveId = await insertArchive(db, {
    kind,
    trigger: opts.trigger ?? 'manual',
    bucket: settings.bucket,
    dialect,
    tool: toolName,
    encryption,
    startedAt,
  });
  const store = openStore(settings);
  const objectKey = archiveKey(settings.prefix, kind, startedAt, archiveId, encryption);
  const keyFingerprint = cfg.sm4Key ? sm4Fingerprint(cfg.sm4Key) : null;
  const run: Run = { db, store, archiveId, kind, dialect, encryption, keyFingerprint, startedAt, objectKey, t0 };
  const progress: Progress = { archiveId, kind, bytes: 0, tablesDone: 0, tablesTotal: 0, totalBytes: null, startedAt };
  let writer: ObjectWriter | undefined;
  let source: Source | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    if (kind === 'physical' && !cfg.sm4Key) throw new Error(PHYSICAL_NEEDS_KEY);
    await ensureStore(store, settings);
    source = await openSource(kind, databaseUrl, cfg, dialect, progress);
    // The tool's failure is read by upload(); until then it counts as handled here, or a tool that
    // fails at once (not runnable, or exiting early) while the ledger is written would be an
    // unhandled rejection, which ends the process instead of recording the archive as failed.
    source.done.catch(() => undefined);
    await setKey(db, archiveId, objectKey, source.tablesTotal);
    progress.tablesTotal = source.tablesTotal;
    writer = new ObjectWriter(
      store,
      objectKey,
      { kind, 'archive-id': archiveId, dialect, tool: source.tool, version: pkg.version, ...(encryption ? { encryption } : {}) },
      cfg.partSize,
    );
    timer = reportProgress(db, progress, opts);
    const mac = await upload(source, writer, cfg.sm4Key, progress);
    const finished = await complete(writer);
    await source.release();
    await putSmall(store, manifestKey(objectKey), JSON.stringify(manifestOf(run, source, finished, now(), mac), null, 2));
    clearInterval(timer);
    return await recordGood(run, source, finished, progress, opts);
  } catch (err) {
    clearInterval(timer);
    return recordFailed(run, source, writer, (err as Error).message);
  }
}

/**
 * A physical archive copies the data files and the WAL, which keep the staging tables' earlier row
 * versions — ID numbers, names, phones and addresses the HIS wrote in clear, emptied by an UPDATE — until
 * the pages are rewritten: it is never written unencrypted (docs/backup.md "Encryption at rest",
 * docs/security.md "Backups"). Recorded as a failed archive and alerted, as any failed backup.
 */
export const PHYSICAL_NEEDS_KEY =
  'physical archive refused: the secret file backup-sm4-key is missing — a physical archive copies the data files and WAL, ' +
  'which hold staged ID numbers, names, phones and addresses in clear, so it is only written SM4-encrypted; ' +
  'put 32 hex digits in backup-sm4-key (docs/backup.md "Encryption at rest") and keep a copy apart from the store';

/** One archive's fixed facts, shared by the steps of runBackup. */
interface Run {
  db: Db;
  store: Store;
  archiveId: string;
  kind: ArchiveKind;
  dialect: Dialect;
  encryption: string | null;
  keyFingerprint: string | null;
  startedAt: Date;
  objectKey: string;
  /** When the run began (Date.now()), for its duration. */
  t0: number;
}

/** The tool named in the ledger row: `tar`, or the file name of the base-backup or dump tool. */
function toolNameOf(kind: ArchiveKind, tools: Tools): string {
  return kind === 'software' ? 'tar' : (kind === 'physical' ? tools.basebackup : tools.dump).split('/').pop()!;
}

/** The object's key (docs/backup.md): `<prefix>/<kind>/<UTC day>/<kind>-<UTC stamp>-<archive id><ext>[.sm4]`. */
function archiveKey(prefix: string, kind: ArchiveKind, startedAt: Date, archiveId: string, encryption: string | null): string {
  const day = startedAt.toISOString().slice(0, 10);
  return `${prefix}/${kind}/${day}/${kind}-${stamp(startedAt)}-${archiveId}${EXT[kind]}${encryption ? '.sm4' : ''}`;
}

/** Makes sure the bucket exists: a store that cannot be reached fails at once, naming it (docs/backup.md). */
async function ensureStore(store: Store, settings: StoreSettings): Promise<void> {
  await ensureBucket(store).catch((e) => {
    throw new Error(`backup store unavailable (${settings.endPoint}:${settings.port}): ${(e as Error).message || (e as { code?: string }).code}`);
  });
}

/** Hands progress to the caller and writes it to the ledger row every `progressMs` (a failed write is skipped). */
function reportProgress(db: Db, progress: Progress, opts: BackupOptions): NodeJS.Timeout {
  return setInterval(() => {
    opts.onProgress?.({ ...progress });
    void setProgress(db, progress.archiveId, progress.bytes, progress.tablesDone, progress.tablesTotal).catch(() => undefined);
  }, opts.progressMs ?? 1000);
}

/**
 * Streams the tool's output (through SM4 when a key is set) into the store, counting the bytes, then
 * waits for the tool's exit: a failed tool fails the archive. A connection the store drops is named
 * as the store's failure (docs/backup.md).
 */
async function upload(source: Source, writer: ObjectWriter, sm4Key: Buffer | null, progress: Progress): Promise<string | null> {
  const stream: Readable = sm4Key ? source.stdout.pipe(sm4Encryptor(sm4Key)) : source.stdout;
  const mac = sm4Key ? archiveMac(sm4Key) : null;
  // A failed producer also ends its stdout: its exit is awaited before anything is completed.
  const producer = source.done.then(
    () => null,
    (e: Error) => e,
  );
  try {
    for await (const chunk of stream) {
      mac?.update(chunk as Buffer);
      await writer.write(chunk as Buffer);
      progress.bytes = writer.size;
    }
  } catch (e) {
    const err = e as Error & { code?: string };
    throw new Error(
      /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|socket hang up/i.test(`${err.code} ${err.message}`)
        ? `backup store unavailable during upload: ${err.message || err.code}`
        : err.message,
    );
  }
  const producerError = await producer;
  if (producerError) throw producerError;
  return mac?.digest() ?? null;
}

/** Completes the object in the store: its size and SHA-256. */
async function complete(writer: ObjectWriter): Promise<Finished> {
  return writer.finish().catch((e: Error) => {
    throw new Error(`backup store failed completing the archive: ${e.message || (e as { code?: string }).code}`);
  });
}

/** The manifest stored beside the archive (docs/backup.md). */
function manifestOf(run: Run, source: Source, finished: Finished, finishedAt: Date, mac: string | null): Manifest {
  return {
    archiveId: run.archiveId,
    kind: run.kind,
    dialect: run.dialect,
    tool: source.tool,
    version: pkg.version,
    encryption: run.encryption,
    keyFingerprint: run.keyFingerprint,
    mac,
    startedAt: run.startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    size: finished.size,
    sha256: finished.sha256,
    rowCounts: source.rowCounts,
    records: recordsIn(source.rowCounts),
  };
}

/** Marks the ledger row `good` with the size, SHA-256 and row counts, reports the last progress and logs it. */
async function recordGood(run: Run, source: Source, finished: Finished, progress: Progress, opts: BackupOptions): Promise<BackupResult> {
  const { archiveId, kind, objectKey } = run;
  progress.tablesDone = source.tablesTotal;
  // The archive is good only once the ledger says so: an update the database refuses, or one that
  // finds the row gone, fails the archive (recordFailed removes it from the store; docs/backup.md).
  const recorded = await markGood(run.db, archiveId, {
    size: finished.size,
    sha256: finished.sha256,
    rowCounts: source.rowCounts,
    tablesDone: source.tablesTotal,
  }).catch((e: Error) => {
    throw new Error(`backup ledger update failed: ${e.message}`);
  });
  if (!recorded) throw new Error(`backup ledger update failed: archive ${archiveId} is no longer in the ledger`);
  opts.onProgress?.({ ...progress });
  log('info', 'backup done', { archiveId, kind, objectKey, size: finished.size, ms: Date.now() - run.t0 });
  return {
    archiveId,
    kind,
    ok: true,
    objectKey,
    size: finished.size,
    sha256: finished.sha256,
    ...(source.rowCounts ? { rowCounts: source.rowCounts } : {}),
    durationMs: Date.now() - run.t0,
  };
}

/**
 * Leaves nothing half-recorded (docs/backup.md): the tool stopped, the upload aborted, the manifest
 * removed, the snapshot released, and the ledger row `failed` with the reason.
 */
async function recordFailed(run: Run, source: Source | undefined, writer: ObjectWriter | undefined, why: string): Promise<BackupResult> {
  const { archiveId, kind, objectKey } = run;
  source?.kill();
  await writer?.abort();
  await run.store.client.removeObject(run.store.bucket, manifestKey(objectKey)).catch(() => undefined);
  await source?.release().catch(() => undefined);
  await markFailed(run.db, archiveId, why).catch((e) => log('error', 'backup ledger update failed', { archiveId, err: (e as Error).message }));
  log('error', 'backup failed', { archiveId, kind, err: why });
  return { archiveId, kind, ok: false, objectKey, error: why, durationMs: Date.now() - run.t0 };
}

async function openSource(kind: ArchiveKind, databaseUrl: string, cfg: BackupConfig, dialect: Dialect, progress: Progress): Promise<Source> {
  const tools = toolsOf(dialect, cfg.pgBin);
  if (kind === 'software') return softwareSource(cfg);
  if (kind === 'physical') {
    if (!existsSync(tools.basebackup)) throw new Error(`${tools.basebackup} not found (BACKUP_PG_BIN; Debian: postgresql-client-15)`);
    const child = runTool(
      tools.basebackup,
      ['-D', '-', '-F', 't', '-X', 'fetch', '--checkpoint=fast', '--progress', '--no-password'],
      pgEnv(databaseUrl),
      (line) => {
        const m = /(\d+)\/(\d+) kB/.exec(line);
        if (m) progress.totalBytes = Number(m[2]) * 1024;
      },
    );
    child.stdin.end();
    return {
      tool: 'pg_basebackup',
      stdout: heldOutput(child),
      tablesTotal: 0,
      rowCounts: null,
      done: child.done.then((r) => {
        if (r.code !== 0) throw new Error(toolFailure(tools.basebackup.split('/').pop()!, r, child.tail()));
      }),
      kill: () => child.kill('SIGTERM'),
      release: async () => undefined,
    };
  }

  if (!existsSync(tools.dump)) throw new Error(`${tools.dump} not found (BACKUP_PG_BIN; Debian: postgresql-client-15)`);
  // One snapshot for the counts and the dump (PostgreSQL): the drill compares like with like.
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'cdc-front-backup' });
  await client.connect();
  client.on('error', () => undefined);
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    await client.query('COMMIT').catch(() => undefined);
    await client.end().catch(() => undefined);
  };
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const snapshot = dialect === 'postgresql' ? (await client.query<{ s: string }>('SELECT pg_export_snapshot() AS s')).rows[0]!.s : null;
    const all = await userTables(client);
    const tables = kind === 'system' ? all.filter((t) => (SYSTEM_TABLES as readonly string[]).includes(t)) : all;
    const rowCounts = await countRows(client, tables);
    const args = ['-F', 'c', '--no-password', '--verbose'];
    if (snapshot) args.push(`--snapshot=${snapshot}`);
    if (kind === 'system') for (const t of tables) args.push('-t', t);
    const child = runTool(tools.dump, args, pgEnv(databaseUrl), (line) => {
      if (/dumping contents of table/.test(line)) progress.tablesDone++;
    });
    child.stdin.end();
    return {
      tool: tools.dump.split('/').pop()!,
      stdout: heldOutput(child),
      tablesTotal: tables.length,
      rowCounts,
      done: child.done.then((r) => {
        if (r.code !== 0) throw new Error(toolFailure(tools.dump.split('/').pop()!, r, child.tail()));
      }),
      kill: () => child.kill('SIGTERM'),
      release,
    };
  } catch (err) {
    await release();
    throw err;
  }
}

/**
 * The software: package.json, stack.yml and every built bundle, as one tar (streamed by `tar`),
 * without source maps or the bundles' compile caches (derived and specific to one Node.js build: the
 * build primes them again, and a replica without one compiles its bundle, docs/runtime.md "Bundles"). A folder with no built bundle fails the archive (docs/backup.md): a tar of the manifests alone
 * cannot bring the functions back, and must not be recorded as a good software archive.
 */
function softwareSource(cfg: BackupConfig): Source {
  const dir = cfg.softwareDir;
  if (!dir) throw new Error('software archive: no project folder found (set BACKUP_SOFTWARE_DIR)');
  if (!existsSync(dir)) throw new Error(`software archive: ${dir} does not exist (BACKUP_SOFTWARE_DIR)`);
  const fnDir = join(dir, 'functions');
  const bundles = existsSync(fnDir)
    ? readdirSync(fnDir)
        .sort()
        .filter((f) => existsSync(join(fnDir, f, 'dist', 'index.js')))
        .map((f) => join('functions', f, 'dist'))
    : [];
  if (bundles.length === 0) {
    throw new Error(`software archive: no built function bundle in ${dir} (functions/<fn>/dist/index.js: node infra/build/build.mjs builds them)`);
  }
  const files = [...['package.json', 'stack.yml'].filter((f) => existsSync(join(dir, f))), ...bundles];
  const child = runTool('tar', ['-c', '-f', '-', '--exclude=*.map', '--exclude=compile-cache', '-C', dir, ...files], {});
  child.stdin.end();
  return {
    tool: 'tar',
    stdout: heldOutput(child),
    tablesTotal: 0,
    rowCounts: null,
    done: child.done.then((r) => {
      if (r.code !== 0) throw new Error(toolFailure('tar', r, child.tail()));
    }),
    kill: () => child.kill('SIGTERM'),
    release: async () => undefined,
  };
}
