/** Helpers shared by the bench scenarios: timing, medians, memory, results on disk and stdout. */
import { mkdirSync, writeFileSync } from 'node:fs';
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
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
  const line = (cells: string[]) => cells.map((s, i) => s.padEnd(width[i]!)).join('  ');
  return [line(cols), line(width.map((w) => '-'.repeat(w))), ...rows.map((r) => line(cols.map((c) => String(r[c]))))].join('\n');
}
