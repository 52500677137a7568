/**
 * The database's own tools, chosen by dialect (docs/backup.md): pg_dump / pg_restore /
 * pg_basebackup / pg_verifybackup on PostgreSQL, gs_dump / gs_restore / gs_basebackup on openGauss.
 * The password goes to the child in PGPASSWORD, never on its command line (which `ps` shows).
 * Also the SM4 stream cipher used for encryption at rest.
 */
import { spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { PassThrough, pipeline, Transform, type Readable, type Writable } from 'node:stream';
import type { Dialect } from '../db/index.js';

export interface Tools {
  dump: string;
  restore: string;
  basebackup: string;
  /** Null on openGauss: gs_probackup validate needs its own catalogue (docs/backup.md). */
  verify: string | null;
}

export function toolsOf(dialect: Dialect, bin: string): Tools {
  return dialect === 'opengauss'
    ? { dump: join(bin, 'gs_dump'), restore: join(bin, 'gs_restore'), basebackup: join(bin, 'gs_basebackup'), verify: null }
    : { dump: join(bin, 'pg_dump'), restore: join(bin, 'pg_restore'), basebackup: join(bin, 'pg_basebackup'), verify: join(bin, 'pg_verifybackup') };
}

/** libpq's environment for a database URL: the tools connect without a password argument. */
export function pgEnv(url: string, database?: string): Record<string, string> {
  const u = new URL(url);
  const env: Record<string, string> = {
    PGHOST: decodeURIComponent(u.hostname.replace(/^\[|\]$/g, '')),
    PGPORT: u.port || '5432',
    PGUSER: decodeURIComponent(u.username),
    PGDATABASE: database ?? decodeURIComponent(u.pathname.replace(/^\//, '')),
    PGCONNECT_TIMEOUT: '10',
  };
  if (u.password) env.PGPASSWORD = decodeURIComponent(u.password);
  const ssl = u.searchParams.get('sslmode');
  if (ssl) env.PGSSLMODE = ssl;
  return env;
}

/** A URL naming another database on the same server. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = '/' + encodeURIComponent(database);
  return u.toString();
}

export type Tool = ChildProcessByStdio<Writable, Readable, Readable> & {
  /** Resolves with the exit code once stdout and stderr have ended; never rejects. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>;
  /** The last lines the tool wrote to stderr (its error, when it fails). */
  tail(): string;
};

let pdeathsig: string | null | undefined;

/**
 * util-linux `setpriv --pdeathsig`, when this machine has it: the kernel kills the tool when the
 * process that spawned it dies, even by SIGKILL, which no handler of that process can see
 * (docs/backup.md "An interrupted restore"). Null without it: the tool then runs on to the end of the
 * archive file it was given, into a database that keeps its unfinished name.
 */
function pdeathsigWrapper(): string | null {
  if (pdeathsig === undefined) {
    const r = spawnSync('setpriv', ['--pdeathsig', 'KILL', '--', 'true'], { stdio: 'ignore', timeout: 5000 });
    pdeathsig = r.status === 0 ? 'setpriv' : null;
  }
  return pdeathsig;
}

/**
 * Spawns a tool; `onLine` gets every stderr line (progress). Only PATH and the libpq variables are
 * passed: the tools need nothing else of the function's environment. With `dieWithParent` (a restore
 * run by the operator's command) the tool runs in its own process group and dies with its parent.
 */
export function runTool(cmd: string, args: string[], env: Record<string, string>, onLine?: (line: string) => void, o: { dieWithParent?: boolean } = {}): Tool {
  const parentBound = o.dieWithParent && pdeathsigWrapper();
  const child = spawn(parentBound ? parentBound : cmd, parentBound ? ['--pdeathsig', 'KILL', '--', cmd, ...args] : args, {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
    // Its own process group: a Ctrl-C at the terminal reaches the command, which stops the tool
    // (and its group) itself and cleans up after it (docs/backup.md "An interrupted restore").
    ...(o.dieWithParent ? { detached: true } : {}),
  }) as Tool;
  const lines: string[] = [];
  let partial = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    const parts = (partial + d).split(/\r?\n|\r/);
    partial = parts.pop() ?? '';
    for (const l of parts) {
      if (!l) continue;
      lines.push(l);
      if (lines.length > 20) lines.shift();
      onLine?.(l);
    }
  });
  child.tail = () => redact([...lines, partial].filter(Boolean).slice(-5).join(' | ')).slice(0, 400);
  child.done = new Promise((resolve) => {
    let error: Error | undefined;
    child.on('error', (e) => {
      error = e;
    });
    child.on('close', (code, signal) => resolve({ code, signal, ...(error ? { error } : {}) }));
  });
  return child;
}

/**
 * The tool's stdout, read from the moment it starts, for a reader that comes later (docs/backup.md).
 * Node resumes — and so discards — the output of a child that exits while nothing reads it: a quick
 * tool (a tar of a few bundles) could end while the ledger row was still being written, before the
 * upload read it, and be stored as an empty archive recorded good. Read through this, the output
 * waits for its reader with the same backpressure; a read error ends it with that error.
 */
export function heldOutput(child: Tool): Readable {
  return pipeline(child.stdout, new PassThrough(), () => undefined);
}

/**
 * A tool's error can quote a value of a row ("invalid input syntax …: \"<value>\"", a COPY line):
 * it goes to logs, the ledger and alerts, so anything quoted that is not a plain name, and every
 * CONTEXT / DETAIL line, is cut (no personal data in a log line).
 */
export function redact(text: string): string {
  return text
    .split(' | ')
    .filter((l) => !/\b(CONTEXT|DETAIL):/.test(l))
    .join(' | ')
    .replace(/"([^"]*)"/g, (m, inner: string) => (/^[\w.$-]{1,128}$/.test(inner) ? m : '"…"'))
    .replace(/\b(line \d+): .*$/, '$1: …');
}

/** Why a tool failed, in one line: its exit and the last thing it said. */
export function toolFailure(name: string, r: { code: number | null; signal: NodeJS.Signals | null; error?: Error }, tail: string): string {
  if (r.error) return `${name} could not run: ${r.error.message}`;
  return `${name} exited with ${r.code ?? r.signal}${tail ? `: ${tail}` : ''}`;
}

/** SM4 in CTR mode (GB/T 32907): a random 16-byte IV first, then the ciphertext; streams. */
/**
 * What names a backup key without giving it away (docs/backup.md "Encryption at rest"): the first 16 hex
 * digits of HMAC-SHA256 under the key of a fixed text. Recorded in each encrypted archive's manifest, so
 * a restore with another key says so before anything is restored.
 */
export function sm4Fingerprint(key: Buffer): string {
  return createHmac('sha256', key).update('cdc-front backup-sm4-key fingerprint').digest('hex').slice(0, 16);
}

/** Said when the stored bytes' MAC is not the manifest's (a restore, a fetch). */
export const MAC_ALTERED =
  "content altered: the archive's MAC (HMAC-SM3 under backup-sm4-key) is not the one recorded — changed in the store by someone without the key";

/**
 * The archive's MAC (docs/backup.md "Encryption at rest"): SM4-CTR hides the data but does not protect
 * it — whoever can write the bucket can flip bits of the plain text through the ciphertext and write a
 * matching SHA-256 into the object's metadata and the manifest. An HMAC-SM3 of the stored bytes under a
 * key derived from backup-sm4-key (never the encryption key itself) cannot be made without that key:
 * recorded in the manifest as `hmac-sm3:<hex>`, checked by every restore from the store.
 */
export function archiveMac(key: Buffer): { update(chunk: Buffer): void; digest(): string } {
  const macKey = createHmac('sm3', key).update('cdc-front backup archive MAC v1').digest();
  const h = createHmac('sm3', macKey);
  return {
    update: (chunk) => void h.update(chunk),
    digest: () => `hmac-sm3:${h.digest('hex')}`,
  };
}

export function sm4Encryptor(key: Buffer): Transform {
  const iv = randomBytes(16);
  const cipher = createCipheriv('sm4-ctr', key, iv);
  let first = true;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      const out = cipher.update(chunk);
      if (first) {
        first = false;
        cb(null, Buffer.concat([iv, out]));
      } else cb(null, out);
    },
    flush(cb) {
      const tail = cipher.final();
      cb(null, first ? Buffer.concat([iv, tail]) : tail);
    },
  });
}

export function sm4Decryptor(key: Buffer): Transform {
  let head = Buffer.alloc(0);
  let decipher: ReturnType<typeof createDecipheriv> | undefined;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (!decipher) {
        head = Buffer.concat([head, chunk]);
        if (head.length < 16) return cb();
        decipher = createDecipheriv('sm4-ctr', key, head.subarray(0, 16));
        chunk = head.subarray(16);
      }
      cb(null, decipher.update(chunk));
    },
    flush(cb) {
      if (!decipher) return cb(new Error('encrypted archive shorter than its IV'));
      cb(null, decipher.final());
    },
  });
}
