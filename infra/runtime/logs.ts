/**
 * Structured logs: every line is one JSON object. A replica's stdout/stderr is captured line by line;
 * a line that is already JSON keeps its fields (fn, replica, stream and ts are added when absent),
 * plain text is wrapped as {ts, level, fn, replica, stream, msg}. Files are `<logsDir>/<fn>.log`
 * and `<logsDir>/runtime.log`, rotated by size (`.1` … `.N`). Request bodies are never logged.
 */
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export interface RotationOptions {
  maxBytes: number;
  keep: number;
}

export const DEFAULT_ROTATION: RotationOptions = { maxBytes: 10 * 1024 * 1024, keep: 5 };

/** An append-only file, written in batches (one write per event-loop turn), rotated by size. */
export class RotatingFile {
  private fd: number | null = null;
  private size = 0;
  private pending: string[] = [];
  private scheduled = false;

  constructor(
    readonly path: string,
    private readonly rotation: RotationOptions = DEFAULT_ROTATION,
  ) {}

  write(line: string): void {
    this.pending.push(line.endsWith('\n') ? line : line + '\n');
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const chunk = this.pending.join('');
    this.pending = [];
    try {
      if (this.fd === null) this.open();
      writeSync(this.fd!, chunk);
      this.size += Buffer.byteLength(chunk);
      if (this.size >= this.rotation.maxBytes) this.rotate();
    } catch (err) {
      process.stderr.write(`cdc-front-runtime: cannot write ${this.path}: ${(err as Error).message}\n`);
    }
  }

  private open(): void {
    this.fd = openSync(this.path, 'a', 0o640);
    this.size = fstatSync(this.fd).size;
  }

  private rotate(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    const { keep } = this.rotation;
    rmSync(`${this.path}.${keep}`, { force: true });
    for (let i = keep - 1; i >= 1; i--) {
      if (existsSync(`${this.path}.${i}`)) renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
    }
    if (keep > 0) renameSync(this.path, `${this.path}.1`);
    else rmSync(this.path, { force: true });
    this.open();
  }

  close(): void {
    this.flush();
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

export type LogFields = Record<string, unknown>;

/** The runtime's own event log: runtime.log and (optionally) stdout, same JSON shape. */
export interface RuntimeLogger {
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

export class LogStore {
  private files = new Map<string, RotatingFile>();
  /** Live readers of a log (`faas-cli logs` follows it): called with each new line. */
  private readers = new Map<string, Set<(line: string) => void>>();
  readonly runtime: RuntimeLogger;

  constructor(
    readonly dir: string,
    private readonly opts: { rotation?: RotationOptions; stdout?: boolean } = {},
  ) {
    mkdirSync(dir, { recursive: true });
    const emit =
      (level: string) =>
      (msg: string, fields: LogFields = {}) => {
        const line = JSON.stringify({ ts: new Date().toISOString(), level, source: 'runtime', msg, ...fields });
        this.file('runtime').write(line);
        this.notify('runtime', line);
        if (this.opts.stdout !== false) process.stdout.write(line + '\n');
      };
    this.runtime = { info: emit('info'), warn: emit('warn'), error: emit('error') };
  }

  private file(name: string): RotatingFile {
    let f = this.files.get(name);
    if (!f) {
      f = new RotatingFile(join(this.dir, `${name}.log`), this.opts.rotation ?? DEFAULT_ROTATION);
      this.files.set(name, f);
    }
    return f;
  }

  /** One captured line of a replica's output, normalised to a JSON object. */
  replicaLine(fn: string, replica: string, stream: 'stdout' | 'stderr', text: string): void {
    if (text.trim() === '') return;
    const line = JSON.stringify(normaliseLine(fn, replica, stream, text));
    this.file(fn).write(line);
    this.notify(fn, line);
  }

  /** Calls `onLine` with every new line of `name`'s log until the returned function is called. */
  follow(name: string, onLine: (line: string) => void): () => void {
    const set = this.readers.get(name) ?? this.readers.set(name, new Set()).get(name)!;
    set.add(onLine);
    return () => {
      set.delete(onLine);
      if (set.size === 0) this.readers.delete(name);
    };
  }

  private notify(name: string, line: string): void {
    for (const f of this.readers.get(name) ?? []) {
      try {
        f(line);
      } catch {
        // a reader's failure is its own
      }
    }
  }

  /** The last `tail` lines of a function's log (current file, then the rotated ones as needed; Infinity: all). */
  tail(name: string, tail: number): string[] {
    const out: string[] = [];
    this.files.get(name)?.flush();
    const base = join(this.dir, `${name}.log`);
    const candidates = [base, ...Array.from({ length: (this.opts.rotation ?? DEFAULT_ROTATION).keep }, (_, i) => `${base}.${i + 1}`)];
    for (const path of candidates) {
      if (!existsSync(path)) break;
      const lines = readFileSync(path, 'utf8')
        .split('\n')
        .filter((l) => l !== '');
      out.unshift(...lines.slice(Math.max(0, lines.length - (tail - out.length))));
      if (out.length >= tail) break;
    }
    return out;
  }

  close(): void {
    for (const f of this.files.values()) f.close();
    this.files.clear();
  }
}

export function normaliseLine(fn: string, replica: string, stream: 'stdout' | 'stderr', text: string): LogFields {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    try {
      const obj = JSON.parse(trimmed) as unknown;
      if (obj && typeof obj === 'object' && !Array.isArray(obj)) {
        return { ts: new Date().toISOString(), ...(obj as LogFields), fn, replica, stream };
      }
    } catch {
      // not JSON after all: wrapped below
    }
  }
  return { ts: new Date().toISOString(), level: stream === 'stderr' ? 'error' : 'info', fn, replica, stream, msg: text };
}

/** Splits a byte stream into lines, bounding a single line (a runaway write without newline). */
export function lineSplitter(onLine: (line: string) => void, maxLine = 64 * 1024): { push(chunk: Buffer): void; end(): void } {
  let buf = '';
  return {
    push(chunk) {
      buf += chunk.toString('utf8');
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, i).replace(/\r$/, ''));
        buf = buf.slice(i + 1);
      }
      if (buf.length > maxLine) {
        onLine(buf);
        buf = '';
      }
    },
    end() {
      if (buf) onLine(buf);
      buf = '';
    },
  };
}
