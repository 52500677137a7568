/**
 * Pid files of the children of `make up` (`<data dir>/run/<name>.pid`), so that a start after a crash
 * (kill -9 of `make up`, a power cut) can stop what the previous run left holding its ports. A
 * recorded pid is only acted on when /proc/<pid>/cmdline shows it is still ours: a pid reused by an
 * unrelated process is left alone. README.md §What `make up` starts.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function pidFile(runDir: string, name: string): string {
  return join(runDir, `${name}.pid`);
}

export function writePidFile(runDir: string, name: string, pid: number): void {
  mkdirSync(runDir, { recursive: true, mode: 0o700 });
  writeFileSync(pidFile(runDir, name), `${pid}\n`, { mode: 0o600 });
}

/** The recorded pid, or undefined when there is no (valid) file. */
export function readPidFile(runDir: string, name: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile(runDir, name), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Removes the file, only if it still names `pid` when one is given (a newer start may have rewritten it). */
export function removePidFile(runDir: string, name: string, pid?: number): void {
  if (pid !== undefined && readPidFile(runDir, name) !== pid) return;
  rmSync(pidFile(runDir, name), { force: true });
}

/** The process's arguments, or undefined when it is gone (or a zombie, which holds nothing). */
export function processArgs(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return undefined;
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return undefined;
  }
}

export function isAlive(pid: number): boolean {
  return processArgs(pid) !== undefined;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Sends `first`, then SIGKILL after graceMs; resolves once the process is gone. */
export async function stopPid(pid: number, first: NodeJS.Signals, graceMs: number): Promise<void> {
  signal(pid, first);
  const killAt = Date.now() + graceMs;
  let killed = false;
  while (isAlive(pid)) {
    if (!killed && Date.now() > killAt) {
      signal(pid, 'SIGKILL');
      killed = true;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface StaleCheck {
  /** Whether the live process with these arguments is the child this file was written for. */
  ours: (args: string[]) => boolean;
  signal: NodeJS.Signals;
  graceMs: number;
}

/**
 * Stops the process a previous run recorded under `name`, if it is alive and ours, and removes the
 * file. Returns the pid that was stopped, if any.
 */
export async function stopStale(runDir: string, name: string, check: StaleCheck): Promise<number | undefined> {
  const pid = readPidFile(runDir, name);
  if (pid === undefined || pid === process.pid) return undefined;
  const args = processArgs(pid);
  let stopped: number | undefined;
  if (args && check.ours(args)) {
    await stopPid(pid, check.signal, check.graceMs);
    stopped = pid;
  }
  removePidFile(runDir, name, pid);
  return stopped;
}
