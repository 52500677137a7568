// Per-record log lines aggregated (shared/ingest/tally.ts): one `records` line per interval with the
// counts per resource and outcome, written when the interval ends and at close, none when idle.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Tally } from '../../shared/ingest/tally.js';

afterEach(() => vi.restoreAllMocks());

function captured(): string[] {
  const lines: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  return lines;
}

describe('the records tally', () => {
  it('writes one line with the counts per resource and outcome after the interval', async () => {
    const lines = captured();
    const t = new Tally(50);
    for (let i = 0; i < 300; i++) t.add('emrPatientInfo', i % 3 === 0 ? 'updated' : 'created');
    t.add('emrActivityInfo', 'rejected');
    expect(lines).toEqual([]);
    await new Promise((r) => setTimeout(r, 120));
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]!);
    expect([line.level, line.msg, line.counts]).toEqual([
      'info',
      'records',
      { emrPatientInfo: { updated: 100, created: 200 }, emrActivityInfo: { rejected: 1 } },
    ]);
    // Idle: nothing more.
    await new Promise((r) => setTimeout(r, 120));
    expect(lines).toHaveLength(1);
  });

  it('flushes what it holds at close, and nothing when empty', () => {
    const lines = captured();
    const t = new Tally(60_000);
    t.flush();
    expect(lines).toEqual([]);
    t.add('emrExLab', 'created', 4);
    t.flush();
    expect(JSON.parse(lines[0]!).counts).toEqual({ emrExLab: { created: 4 } });
  });
});
