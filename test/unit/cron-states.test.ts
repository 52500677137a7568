// The monitor's state of the scheduled functions the database keeps no run of (shared/monitor/
// components.ts cronStates), read from the runtime's own metrics text (infra/runtime/metrics.ts).
import { describe, expect, it } from 'vitest';
import { RuntimeMetrics } from '../../infra/runtime/metrics.js';
import type { Registry } from '../../infra/runtime/registry.js';
import { cronStates } from '../../shared/monitor/components.js';

const noFunctions = { list: () => [] } as unknown as Registry;

describe('cronStates', () => {
  it('says ok after a successful firing, degraded when the latest failed, and skips what the database covers', async () => {
    const m = new RuntimeMetrics(noFunctions);
    const t0 = Date.now();
    m.cronFired('warning', 200);
    m.cronFired('dbsync', 200);
    await new Promise((r) => setTimeout(r, 20));
    m.cronFired('dbsync', 503);
    m.cronFired('push', 200);
    const now = new Date(t0 + 30_000);
    const states = cronStates(await m.text(), now, new Set(['schedule:push']));
    expect(states.map((s) => [s.name, s.state])).toEqual([
      ['schedule:dbsync', 'degraded'],
      ['schedule:warning', 'ok'],
    ]);
    const warning = states.find((s) => s.name === 'schedule:warning')!;
    expect(warning.detail).toMatch(/^last success (29|30) s ago \(cron connector\)$/);
    expect(Date.parse(warning.lastSuccessAt!)).toBeGreaterThanOrEqual(t0 - 1000);
    expect(states.find((s) => s.name === 'schedule:dbsync')!.detail).toMatch(/^the last firing failed; last success/);
  });

  it('says nothing of functions never fired', async () => {
    expect(cronStates(await new RuntimeMetrics(noFunctions).text(), new Date(), new Set())).toEqual([]);
  });
});
