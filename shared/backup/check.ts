/**
 * The checks that prove an archive (docs/backup.md), each with a specific message:
 *
 *   integrity  the object exists; its size, its metadata's SHA-256 and the SHA-256 of its bytes all
 *              match what the ledger recorded at backup time
 *   listing    `pg_restore -l <file>` reads the archive (downloaded into a private file, archive-file.ts)
 *              and lists the data of every table recorded
 *   drill      the archive restored into a scratch database has, per table, the row counts recorded
 *   verify     physical archives: unpacked and checked by `pg_verifybackup` against their manifest
 *   freshness  the last good logical archive is younger than its period (a day, plus an hour)
 */
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, mkdtempSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { detectDialect, type Db } from '../db/index.js';
import type { BackupConfig } from './config.js';
import { log } from '../log/index.js';
import { copyStored, withArchiveFile } from './archive-file.js';
import { lastGood, markDamaged, recordCheck, type Archive, type CheckKind, type CheckResult } from './ledger.js';
import { restoreInto } from './restore.js';
import { readArchive, statArchive, type Store } from './store.js';
import { MAC_ALTERED, runTool, sm4Decryptor, toolFailure, toolsOf } from './tools.js';

const short = (h: string | null | undefined) => (h ? `${h.slice(0, 12)}…` : 'none');

/** What a check found: for the command line and the logs (`message`), and for the console (`note`, Chinese). */
export interface Outcome {
  ok: boolean;
  message: string;
  note: string;
}

export async function sha256Of(s: Readable): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const c of s) {
    h.update(c as Buffer);
    size += (c as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}

/** Exists, size, metadata checksum, content checksum: the first that fails names itself. */
export async function checkIntegrity(store: Store, a: Pick<Archive, 'objectKey' | 'sizeBytes' | 'sha256'>): Promise<Outcome> {
  const info = await statArchive(store, a.objectKey);
  if (!info) return { ok: false, message: `missing: object ${a.objectKey} is not in bucket ${store.bucket}`, note: `备份存储中没有该归档（${a.objectKey}）` };
  if (info.size !== a.sizeBytes)
    return {
      ok: false,
      message: `size mismatch: the store holds ${info.size} bytes of ${a.objectKey}, ${a.sizeBytes} were recorded (truncated or altered)`,
      note: `大小不符：存储中为 ${info.size} 字节，备份时记录为 ${a.sizeBytes} 字节（被截断或被改动）`,
    };
  if (info.meta.sha256 !== a.sha256)
    return {
      ok: false,
      message: `checksum mismatch: the object's metadata says sha256 ${short(info.meta.sha256)}, ${short(a.sha256)} was recorded`,
      note: `校验和不符：归档元数据中的 SHA-256 为 ${short(info.meta.sha256)}，备份时记录为 ${short(a.sha256)}`,
    };
  const got = await sha256Of(await readArchive(store, a.objectKey));
  if (got.sha256 !== a.sha256)
    return {
      ok: false,
      message: `content altered: the bytes of ${a.objectKey} hash to ${short(got.sha256)}, ${short(a.sha256)} was recorded`,
      note: `内容被改动：读出内容的 SHA-256 为 ${short(got.sha256)}，备份时记录为 ${short(a.sha256)}`,
    };
  return { ok: true, message: `intact: ${info.size} bytes, sha256 ${short(a.sha256)}`, note: `完整：${info.size} 字节，SHA-256 与备份时记录一致` };
}

/** The archive's plain bytes (decrypted when it was encrypted at rest). */
export async function plainStream(store: Store, a: Pick<Archive, 'objectKey' | 'encryption'>, key: Buffer | null): Promise<Readable> {
  const raw = await readArchive(store, a.objectKey);
  if (!a.encryption) return raw;
  if (!key) throw new Error(`${a.objectKey} is encrypted (${a.encryption}) but the secret file backup-sm4-key is missing`);
  const d = sm4Decryptor(key);
  raw.on('error', (e) => d.destroy(e));
  return raw.pipe(d);
}

/**
 * Tables whose data `pg_restore -l <file>` lists. The archive is a file: gs_restore reads none from its
 * stdin (docs/opengauss.md "Clients and tools").
 */
export async function listTables(restoreTool: string, file: string): Promise<string[]> {
  const child = runTool(restoreTool, ['-l', file], {});
  child.stdin.on('error', () => undefined);
  child.stdin.end();
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => (out += d));
  const r = await child.done;
  if (r.code !== 0) throw new Error(toolFailure('pg_restore -l', r, child.tail()));
  const tables: string[] = [];
  for (const line of out.split('\n')) {
    const m = /^\d+; \d+ \d+ TABLE DATA (\S+) (\S+) /.exec(line);
    if (m) tables.push(m[2]!);
  }
  return tables.sort();
}

async function timed(db: Db, archiveId: string | null, check: CheckKind, fn: () => Promise<Outcome>): Promise<CheckResult> {
  const t0 = Date.now();
  let r: Outcome;
  try {
    r = await fn();
  } catch (err) {
    // The tool's or the store's own words: the console says the check could not run, and shows them.
    const m = (err as Error).message;
    r = { ok: false, message: `${check} failed: ${m}`, note: `校验未能完成：${m}` };
  }
  const result: CheckResult = { archiveId, check, ok: r.ok, message: r.message, note: r.note, durationMs: Date.now() - t0 };
  await recordCheck(db, result);
  return result;
}

export interface CheckOptions {
  /** Run the restore drill too (logical and system archives). */
  drill?: boolean;
  databaseUrl: string;
}

/**
 * The integrity check, recorded; an archive it finds missing, truncated or altered is marked `damaged`
 * (markDamaged). A store that could not be asked (the check threw) says nothing of the archive: it
 * stays as it was and the check is recorded failed.
 */
export async function integrityChecked(db: Db, store: Store, a: Pick<Archive, 'archiveId' | 'objectKey' | 'sizeBytes' | 'sha256'>): Promise<CheckResult> {
  let found: Outcome | undefined;
  const result = await timed(db, a.archiveId, 'integrity', async () => (found = await checkIntegrity(store, a)));
  if (found && !found.ok && (await markDamaged(db, a.archiveId, found.message))) {
    log('error', 'backup archive damaged', { archiveId: a.archiveId, objectKey: a.objectKey, err: found.message });
  }
  return result;
}

/** Every check that applies to the archive; stops after a failed integrity check. */
export async function checkArchive(db: Db, store: Store, cfg: BackupConfig, a: Archive, opts: CheckOptions): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const integrity = await integrityChecked(db, store, a);
  out.push(integrity);
  if (!integrity.ok) return out;
  const tools = toolsOf(await detectDialect(db), cfg.pgBin);

  if (a.kind === 'logical' || a.kind === 'system') {
    out.push(
      await timed(db, a.archiveId, 'listing', async () => {
        // The archive downloaded and checked into a private file, removed afterwards (docs/backup.md "Restore").
        const listed = await withArchiveFile(
          store,
          a,
          cfg.sm4Key,
          (file) => listTables(tools.restore, file),
          (s) => log('info', s),
        );
        const expected = Object.keys(a.rowCounts ?? {}).sort();
        const missing = expected.filter((t) => !listed.includes(t));
        const names = missing.slice(0, 10).join(', ');
        return missing.length
          ? {
              ok: false,
              message: `listing: ${missing.length} table(s) recorded at backup time are not in the archive: ${names}`,
              note: `清单不全：备份时记录的 ${missing.length} 张表不在归档中：${names}`,
            }
          : {
              ok: true,
              message: `listing: the archive holds the data of all ${expected.length} tables`,
              note: `清单完整：归档包含备份时记录的全部 ${expected.length} 张表的数据`,
            };
      }),
    );
    if (opts.drill && out.every((c) => c.ok)) {
      out.push(
        await timed(db, a.archiveId, 'drill', async () => {
          const r = await restoreInto(db, store, cfg, a, { databaseUrl: opts.databaseUrl, scratch: true });
          return {
            ok: r.ok,
            message: `drill: ${r.message}`,
            note: r.ok
              ? `恢复演练通过：已恢复 ${r.tables} 张表、${r.rows} 行，各表行数与备份时一致`
              : `恢复演练未通过：${r.mismatches.length} 张表的行数与备份时不同：${r.mismatches.slice(0, 10).join('；')}`,
          };
        }),
      );
    }
  }
  if (a.kind === 'physical') {
    out.push(await timed(db, a.archiveId, 'verify', () => verifyPhysical(store, cfg, a, tools.verify)));
  }
  return out;
}

/** Unpacks the base backup into a temp folder and runs pg_verifybackup on it. */
async function verifyPhysical(store: Store, cfg: BackupConfig, a: Archive, verify: string | null): Promise<Outcome> {
  if (!verify)
    return {
      ok: true,
      message: 'verify: no verifier for this dialect (run gs_probackup validate; docs/backup.md)',
      note: '本数据库没有自动核对工具：请运行 gs_probackup validate 核对物理备份',
    };
  const dir = mkdtempSync(join(tmpdir(), 'cdc-verify-'));
  try {
    const tar = runTool('tar', ['-x', '-f', '-', '-C', dir], {});
    const input = await plainStream(store, a, cfg.sm4Key);
    await pipeline(input, new PassThrough(), tar.stdin).catch(() => undefined);
    const t = await tar.done;
    if (t.code !== 0) {
      const why = toolFailure('tar -x', t, tar.tail());
      return { ok: false, message: `verify: ${why}`, note: `物理备份解包失败：${why}` };
    }
    const v = runTool(verify, ['--quiet', dir], {});
    v.stdin.end();
    const r = await v.done;
    if (r.code === 0)
      return {
        ok: true,
        message: 'verify: pg_verifybackup found every file and WAL as the manifest lists them',
        note: '物理备份核对通过：所有文件和 WAL 与备份清单一致（pg_verifybackup）',
      };
    const why = toolFailure('pg_verifybackup', r, v.tail());
    return { ok: false, message: `verify: ${why}`, note: `物理备份核对未通过：${why}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The last good logical archive is younger than a day and an hour. `nothingYet`: the run took no
 * archive because the database holds no records; with no archive at all that is not a failure.
 */
export async function checkFreshness(db: Db, now: Date = new Date(), periodS = 25 * 3600, nothingYet?: string): Promise<CheckResult> {
  return timed(db, null, 'freshness', async () => {
    const last = await lastGood(db, 'logical');
    if (!last?.finishedAt && nothingYet) return { ok: true, message: `freshness: ${nothingYet}`, note: '尚无需要备份的数据：数据库中还没有任何记录' };
    if (!last?.finishedAt) return { ok: false, message: 'freshness: no good logical backup yet', note: '还没有成功的逻辑备份' };
    // An archive that finished after the run began (the check is dated by its run) is 0 minutes old, not -1.
    const age = Math.max(0, Math.round((now.getTime() - last.finishedAt.getTime()) / 1000));
    const h = Math.round(age / 3600);
    const limit = Math.round(periodS / 3600);
    return age <= periodS
      ? {
          ok: true,
          message: `freshness: last good logical backup ${Math.round(age / 60)} min old`,
          note: `最近一次成功的逻辑备份在 ${Math.round(age / 60)} 分钟前`,
        }
      : {
          ok: false,
          message: `freshness: last good logical backup is ${h} h old (more than ${limit} h)`,
          note: `最近一次成功的逻辑备份已是 ${h} 小时前（超过 ${limit} 小时）`,
        };
  });
}

/**
 * Downloads an archive to a plain file (docs/backup.md "Restore"): the SHA-256 and size of the stored
 * bytes are compared with those recorded, and their MAC with the manifest's (`mac`, when it has one:
 * the SHA-256 beside the archive can be rewritten with it, the MAC not without the backup key); an
 * encrypted archive is decrypted on the way. Written
 * beside as `<out>.part` (mode 0600: a plain archive holds what the encryption protected) and renamed
 * only once it matched; on any failure nothing is left. An existing `out` is never overwritten.
 */
export async function fetchArchive(
  store: Store,
  a: Pick<Archive, 'objectKey' | 'encryption' | 'sha256' | 'sizeBytes'> & { mac?: string | null },
  key: Buffer | null,
  out: string,
): Promise<{ size: number; sha256: string; macChecked: boolean }> {
  if (existsSync(out)) throw new Error(`${out} exists already: give another --out`);
  const part = `${out}.part`;
  try {
    const got = await copyStored(store, a, key, createWriteStream(part, { flags: 'wx', mode: 0o600 }));
    if (got.error) throw got.error;
    const sha256 = got.sha256;
    if (a.sha256 && sha256 !== a.sha256) throw new Error(`content altered: the bytes read hash to ${short(sha256)}, ${short(a.sha256)} was recorded`);
    if (a.sizeBytes !== null && a.sizeBytes !== undefined && got.size !== a.sizeBytes)
      throw new Error(`size mismatch: ${got.size} bytes read of ${a.objectKey}, ${a.sizeBytes} were recorded`);
    if (got.mac !== null && got.mac !== a.mac) throw new Error(MAC_ALTERED);
    renameSync(part, out);
    return { size: statSync(out).size, sha256, macChecked: got.mac !== null };
  } catch (err) {
    rmSync(part, { force: true });
    throw err;
  }
}
