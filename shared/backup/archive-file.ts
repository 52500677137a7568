/**
 * The archive as a private file for the restore tool (docs/backup.md "Restore"). openGauss's gs_restore
 * reads only a named file — it refuses to run without one and opens and locks the path more than once,
 * so neither its stdin nor a pipe will do (docs/opengauss.md "Clients and tools") — and pg_restore takes
 * a file as well: both tools are given one, on both databases.
 *
 * The stored object streams from the store into `cdc-restore-<pid>-XXXXXX/archive.dump` under the
 * system's temporary folder (`$TMPDIR`, else /tmp): the folder 0700, the file 0600. The file is the
 * plain archive: the personal data in it is sealed (docs/keys.md), but clinical text is not. Its bytes
 * are checked on the way — read in full, SHA-256, MAC — before any tool sees them. The caller removes the
 * folder when done; one left by a process that was killed is removed by the next restore or drill on
 * the machine (sweepLeftovers).
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { readArchive, type Store } from './store.js';
import { archiveMac, MAC_ALTERED, sm4Decryptor } from './tools.js';

const PREFIX = 'cdc-restore-';
const LEFTOVER = /^cdc-restore-(\d+)-[A-Za-z0-9]{6}$/;

/** The archive's file in a folder made by workDir. */
export const archiveFile = (dir: string): string => join(dir, 'archive.dump');

/** A new private folder (0700) for one archive file, named after this process (sweepLeftovers). */
export async function workDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), `${PREFIX}${process.pid}-`));
}

/** Whether a process of that id is running (EPERM: it is, under another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the archive folders of restores and drills whose process is gone (killed before their own
 * `finally` ran: SIGKILL, a reboot with a persistent $TMPDIR). A folder of a running process — this
 * one's, another restore's — is left alone, and so is one whose process id is now another running
 * process's, until that one ends. Only this user's folders; the paths removed are returned.
 */
export async function sweepLeftovers(base: string = tmpdir()): Promise<string[]> {
  const names = await readdir(base).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const n of names) {
    const m = LEFTOVER.exec(n);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || alive(pid)) continue;
    const path = join(base, n);
    const st = await lstat(path).catch(() => null);
    if (!st?.isDirectory() || st.uid !== process.getuid?.()) continue;
    await rm(path, { recursive: true, force: true })
      .then(() => removed.push(path))
      .catch(() => undefined);
  }
  return removed;
}

export interface StoredArchive {
  objectKey: string;
  encryption: string | null;
  sizeBytes: number | null;
  sha256: string | null;
  /** The stored bytes' MAC the manifest recorded (archiveMac); checked when given and the key is there. */
  mac?: string | null;
}

/** What a copy of the stored bytes saw: their count, SHA-256 and MAC, and a stream's failure if one ended it. */
export interface StoredCopy {
  size: number;
  sha256: string;
  /** The MAC of the stored bytes (archiveMac), when the manifest recorded one and the key is there. */
  mac: string | null;
  /** The pipeline's error (the store's read, or `to`'s write): the caller says which it was. */
  error?: Error;
}

/**
 * The stored object's bytes into `to`, decrypted when they were encrypted at rest, through one tap
 * that counts them and computes their SHA-256 and MAC (the stored bytes, as recorded at backup time):
 * a restore's private file and `make backup-fetch`'s `--out` alike. `onBytes` gets each chunk's
 * length (progress); `signal` stops the read.
 */
export async function copyStored(
  store: Store,
  a: StoredArchive,
  key: Buffer | null,
  to: NodeJS.WritableStream,
  o: { onBytes?: (n: number) => void; signal?: AbortSignal } = {},
): Promise<StoredCopy> {
  if (a.encryption && !key) throw new Error(`${a.objectKey} is encrypted (${a.encryption}) but the secret file backup-sm4-key is missing`);
  const raw = await readArchive(store, a.objectKey);
  const hash = createHash('sha256');
  const mac = a.mac && key ? archiveMac(key) : null;
  let size = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      mac?.update(chunk);
      size += chunk.length;
      o.onBytes?.(chunk.length);
      cb(null, chunk);
    },
  });
  const stop = () => raw.destroy(new Error('restore interrupted'));
  o.signal?.addEventListener('abort', stop);
  let error: Error | undefined;
  try {
    if (o.signal?.aborted) stop();
    const stages: NodeJS.ReadableStream[] = [raw, tap];
    if (a.encryption) stages.push(sm4Decryptor(key!));
    await pipeline([...stages, to]).catch((e: Error) => (error = e));
  } finally {
    o.signal?.removeEventListener('abort', stop);
  }
  return { size, sha256: hash.digest('hex'), mac: mac ? mac.digest() : null, ...(error ? { error } : {}) };
}

/**
 * Streams the stored object into `file` (created, mode 0600; it must not exist), decrypted when it was
 * encrypted at rest, and checks the stored bytes: read in full, as long as recorded, their SHA-256 and
 * their MAC as recorded. `onBytes` gets each chunk's length of stored bytes (progress). Aborted by
 * `signal`: the download stops (`download interrupted`). Any failure throws with its own message;
 * the caller removes the file.
 */
export async function downloadArchive(
  store: Store,
  a: StoredArchive,
  key: Buffer | null,
  file: string,
  o: { onBytes?: (n: number) => void; signal?: AbortSignal } = {},
): Promise<void> {
  if (a.encryption && !key) throw new Error(`${a.objectKey} is encrypted (${a.encryption}) but the secret file backup-sm4-key is missing`);
  const out = createWriteStream(file, { flags: 'wx', mode: 0o600 });
  let writeError: Error | undefined;
  out.on('error', (e) => (writeError ??= e));
  const got = await copyStored(store, a, key, out, o);
  if (o.signal?.aborted) throw new Error('download interrupted');
  if (writeError)
    throw new Error(`writing the archive to ${file} failed: ${writeError.message} (a restore needs room for one archive in $TMPDIR, docs/backup.md "Restore")`);
  if (got.error) throw new Error(`reading ${a.objectKey} from the store failed: ${got.error.message}`);
  if (a.sizeBytes !== null && a.sizeBytes !== undefined && got.size < a.sizeBytes)
    throw new Error(`${a.objectKey} is truncated: the store gave ${got.size} of the ${a.sizeBytes} bytes recorded`);
  if (a.sha256 && got.sha256 !== a.sha256)
    throw new Error(`content altered: the bytes read hash to ${got.sha256.slice(0, 12)}…, ${a.sha256.slice(0, 12)}… was recorded`);
  // The SHA-256 beside the archive can be rewritten with it; the MAC cannot without the backup key.
  if (got.mac !== null && got.mac !== a.mac) throw new Error(MAC_ALTERED);
}

/**
 * The archive as a checked private file for `use`, removed afterwards whatever happens (the drill's
 * listing). Leftovers of killed processes are swept first; `say` hears of each.
 */
export async function withArchiveFile<T>(
  store: Store,
  a: StoredArchive,
  key: Buffer | null,
  use: (file: string) => Promise<T>,
  say: (s: string) => void = () => undefined,
): Promise<T> {
  for (const d of await sweepLeftovers()) say(leftoverRemoved(d));
  const dir = await workDir();
  try {
    const file = archiveFile(dir);
    await downloadArchive(store, a, key, file);
    return await use(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** What is said of a leftover folder removed. */
export const leftoverRemoved = (dir: string): string =>
  `removed ${dir}: the archive file of an earlier restore or drill on this machine whose process is gone (killed before it could remove it; docs/backup.md "Restore")`;
