// The fault suite (docs/faults.md): under load from the HIS generator, kill function replicas with
// SIGKILL, take the platform down and bring it back, restart PostgreSQL, inject every simulator
// fault; then drain and check that every record version acknowledged to the HIS with a 2xx is at
// the platform exactly once, in order per record, and that nothing else is. docs/faults.md.
//
// Isolation: a PostgreSQL of its own (the suite restarts it mid-run; the global test database is
// shared with other files), its own runtime (stack.yml: every receive function, push with the
// nudges and a fast cron), its own platform simulator over HTTPS with the hospital's client
// certificate. The machinery is infra/soak/harness.ts, shared with `make soak`.
//
// FAULT_SEED picks the traffic and the schedule; FAULT_SECONDS (default 80) and FAULT_RATE (40/s)
// the load. A failure prints the seed, the timeline and the records concerned.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatCounts, runFaultScenario, startStack, type ScenarioReport, type Stack } from '../../infra/soak/harness.js';

const SEED = Number(process.env.FAULT_SEED ?? 20261127);
const SECONDS = Number(process.env.FAULT_SECONDS ?? 80);
const RATE = Number(process.env.FAULT_RATE ?? 40);
const verbose = process.env.FAULT_LOG === '1';

let dir: string;
let stack: Stack;
let report: ScenarioReport;
const lines: string[] = [];
const log = (l: string) => {
  lines.push(l);
  if (verbose) process.stdout.write(`[faults] ${l}\n`);
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cdc-faults-'));
  stack = await startStack({ dir, log });
}, 180_000);

afterAll(async () => {
  await stack?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe(`HIS traffic through killed replicas, a platform outage, a PostgreSQL restart and every platform fault (seed ${SEED})`, () => {
  it('runs the load and the fault schedule, and drains', { timeout: (SECONDS + 300) * 1000 }, async () => {
    // One cycle of faults: each platform fault waited for until it has hit a batch and the push is
    // through again (at most 25 s), so every fault meets real traffic within the load.
    report = await runFaultScenario(stack, { seed: SEED, durationS: SECONDS, rate: RATE, drainS: 90, gapS: 2, outageS: 6, stepS: 25, maxCycles: 1, log });
    const c = report.counts;
    process.stdout.write(
      `\n[faults] seed ${SEED}: ${formatCounts(c)}\n` +
        `[faults] platform ${JSON.stringify(report.platform)}; fault cycles ${report.faultCycles}; push runs ${JSON.stringify(report.pushRuns)}; circuit resets ${report.circuitResets}; replay ${JSON.stringify(report.replay)}; ${report.durationS} s\n` +
        report.timeline.map((l) => `[faults]   ${l}`).join('\n') +
        '\n',
    );
    const why = `seed ${SEED}\n${lines.join('\n')}\n${JSON.stringify(report.findings, null, 1)}`;
    expect(report.drained, `outbox not drained: ${report.pendingLeft} pending; ${why}`).toBe(true);
    // The load happened, with every kind of record the assertions are about.
    // (The generator falls behind its rate on a busy 2-core machine: a floor, not the rate.)
    expect(c.acknowledged, why).toBeGreaterThan(RATE * SECONDS * 0.2);
    expect(report.traffic.held, why).toBeGreaterThan(0);
    // Every fault really hit: the platform saw the refusals, and a partial reject made dead letters.
    expect(report.platform.refused.unavailable ?? 0, why).toBeGreaterThan(0);
    expect(report.platform.refused['rate-limited'] ?? 0, why).toBeGreaterThan(0);
    expect(report.platform.badReceiptsSent, why).toBeGreaterThan(0);
    expect(report.platform.rejected, why).toBeGreaterThan(0);
  });

  it('delivers every acknowledged version exactly once, in order per record, and nothing else', () => {
    expect(report, 'the scenario ran').toBeDefined();
    const c = report.counts;
    const why = (kind: keyof ScenarioReport['findings']) =>
      `seed ${SEED}: ${formatCounts(c)}\n${report.timeline.join('\n')}\n${kind}:\n${report.findings[kind].join('\n')}`;
    expect(c.lost, why('lost')).toBe(0);
    expect(c.duplicates, why('duplicates')).toBe(0);
    expect(c.outOfOrder, why('outOfOrder')).toBe(0);
    // Finding 1 (docs/faults.md), fixed: a child of a parent that is itself held is held too.
    expect(c.childBeforeParent, why('childBeforeParent')).toBe(0);
    expect(c.phantom, why('phantom')).toBe(0);
    // Everything acknowledged is accounted for: delivered, dead with the platform's reason and left
    // dead by the replay (a later version was delivered), or a child whose parent never got stored.
    expect(c.delivered + c.deadAfterReplay + c.heldNoParent, why('dead')).toBe(c.acknowledged);
    expect(
      report.findings.dead.filter((d) => d.includes('without the platform')),
      why('dead'),
    ).toEqual([]);
  });
});
