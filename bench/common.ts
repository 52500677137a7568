/** Helpers shared by the bench scenarios: timing, medians, memory, results on disk and stdout. */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Milliseconds taken by `fn`. */
export async function timed(fn: () => Promise<void>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

export interface Memory {
  heapUsedMiB: number;
  rssMiB: number;
}

export function memory(): Memory {
  const m = process.memoryUsage();
  return { heapUsedMiB: Math.round(m.heapUsed / 1048576), rssMiB: Math.round(m.rss / 1048576) };
}

/** A subject and its baseline measured over the same rounds: rates from the median round. */
export function compare(records: number, subjectMs: number[], baselineMs: number[], names: { subject: string; baseline: string }) {
  const subjectRate = Math.round((records * 1000) / median(subjectMs));
  const baselineRate = Math.round((records * 1000) / median(baselineMs));
  return {
    subject: { name: names.subject, ms: subjectMs.map((x) => Math.round(x)), recordsPerS: subjectRate },
    baseline: { name: names.baseline, ms: baselineMs.map((x) => Math.round(x)), recordsPerS: baselineRate },
    /** Subject records/s ÷ baseline records/s: 1 = as fast as bare pg, 0.5 = half its rate. */
    rateRatio: Number((subjectRate / baselineRate).toFixed(2)),
  };
}

/** bench/results/<date>-<scenario>.json */
export function writeResult(scenario: string, result: Record<string, unknown>): string {
  mkdirSync('bench/results', { recursive: true });
  const file = join('bench/results', `${new Date().toISOString().slice(0, 10)}-${scenario}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  return file;
}

/** A short fixed-width table on stdout. */
export function table(rows: Array<Record<string, string | number>>): string {
  if (rows.length === 0) return '';
  const cols = Object.keys(rows[0]!);
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '-').length)));
  const line = (cells: string[]) => cells.map((s, i) => s.padEnd(width[i]!)).join('  ');
  return [line(cols), line(width.map((w) => '-'.repeat(w))), ...rows.map((r) => line(cols.map((c) => String(r[c] ?? '-'))))].join('\n');
}

// ---- other processes, from /proc (Linux): RSS, PSS and CPU time of the runtime, replicas, PostgreSQL ----

const TICKS_PER_S = 100; // USER_HZ: 100 on every Linux this runs on (getconf CLK_TCK)

/** A `<field>: N kB` line of a /proc file of the process, in MiB (null when it is gone or unreadable). */
function procKbMiB(pid: number, file: string, field: string): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(readFileSync(`/proc/${pid}/${file}`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : null;
  } catch {
    return null;
  }
}

/** VmRSS of a process in MiB (null when it is gone or /proc is not there). */
export const rssMiB = (pid: number) => procKbMiB(pid, 'status', 'VmRSS');

/**
 * Proportional set size of a process in MiB (null when it is gone or unreadable): its private pages
 * plus each shared page divided by the number of processes mapping it — node's own binary text,
 * mapped by every function process, is counted once across them rather than once per process
 * (docs/bench.md "Headline", P6). From /proc/<pid>/smaps_rollup (Linux 4.14+).
 */
export const pssMiB = (pid: number) => procKbMiB(pid, 'smaps_rollup', 'Pss');

export interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime of the process itself, seconds. */
  selfS: number;
  /** stime alone: the part of selfS spent in the kernel. */
  sysS: number;
  /** cutime + cstime: its children that have exited and been waited for, seconds. */
  childrenS: number;
}

/** /proc/<pid>/stat: CPU seconds of a process (null when it is gone). */
export function procStat(pid: number): ProcStat | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return {
      pid,
      ppid: Number(f[1]),
      selfS: (Number(f[11]) + Number(f[12])) / TICKS_PER_S,
      sysS: Number(f[12]) / TICKS_PER_S,
      childrenS: (Number(f[13]) + Number(f[14])) / TICKS_PER_S,
    };
  } catch {
    return null;
  }
}

/** Live children of a process (by scanning /proc). */
export function childPids(ppid: number): number[] {
  const out: number[] = [];
  let names: string[] = [];
  try {
    names = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const n of names) {
    if (!/^\d+$/.test(n)) continue;
    const st = procStat(Number(n));
    if (st?.ppid === ppid) out.push(st.pid);
  }
  return out;
}

/**
 * CPU seconds of a process tree's server (PostgreSQL's postmaster and its backends): the server's
 * own and its reaped children's time plus every live child's — so a backend that exits between two
 * readings stays counted.
 */
export function treeCpuS(pid: number): number | null {
  const root = procStat(pid);
  if (!root) return null;
  let total = root.selfS + root.childrenS;
  for (const c of childPids(pid)) total += procStat(c)?.selfS ?? 0;
  return total;
}

/** Busy CPU seconds of the whole machine (all cores, every process: ours and anyone else's), from /proc/stat. */
export function machineBusyS(): number | null {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!;
    return busy / TICKS_PER_S;
  } catch {
    return null;
  }
}
