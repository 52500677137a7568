/**
 * `make soak`: the fault suite (test/e2e/faults.test.ts) for longer — HIS traffic from the generator
 * while the fault schedule repeats (SIGKILLed replicas, platform outages, PostgreSQL restarts, every
 * simulator fault), then a drain, the dead-letter replay and the reconciliation. Prints the counts
 * every SOAK_PROGRESS_S seconds and at the end; exits 1 on a lost, duplicated, reordered or phantom
 * record (or an outbox that did not drain), 0 otherwise. Not run by CI. docs/faults.md.
 *
 *   SOAK_MINUTES  load duration (default 10)
 *   SOAK_RATE     HIS records per second (default 30)
 *   SOAK_SEED     traffic and schedule (default: the time)
 *   SOAK_GAP_S    pause before each fault step (default 10; a cycle has 13 steps)
 *   SOAK_OUTAGE_S how long the platform is down in the outage step (default 30)
 *   SOAK_STEP_S   how long a platform fault may take to hit and the push to get through again (default 120)
 *   SOAK_DRAIN_S  drain deadline after the load (default 300)
 *   SOAK_PROGRESS_S  progress line interval (default 30)
 *   SOAK_KEEP=1   keep the working folder (PostgreSQL, logs, the platform's ndjson store)
 *   SOAK_REPORT   also write the full report (JSON) to this file
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatCounts, runFaultScenario, startStack, type Stack } from './harness.js';

const minutes = Number(process.env.SOAK_MINUTES ?? 10);
const rate = Number(process.env.SOAK_RATE ?? 30);
const seed = Number(process.env.SOAK_SEED ?? Date.now() % 1_000_000_007);
const gapS = Number(process.env.SOAK_GAP_S ?? 10);
const outageS = Number(process.env.SOAK_OUTAGE_S ?? 30);
const stepS = Number(process.env.SOAK_STEP_S ?? 120);
const drainS = Number(process.env.SOAK_DRAIN_S ?? 300);
const progressS = Number(process.env.SOAK_PROGRESS_S ?? 30);
const keep = process.env.SOAK_KEEP === '1';

const out = (l: string) => process.stdout.write(`[soak] ${l}\n`);

async function main(): Promise<number> {
  if (!(minutes > 0) || !(rate > 0)) throw new Error('SOAK_MINUTES and SOAK_RATE must be positive numbers');
  const dir = mkdtempSync(join(tmpdir(), 'cdc-soak-'));
  out(
    `seed ${seed}, ${minutes} min at ${rate} records/s, fault steps ${gapS} s apart, outages of ${outageS} s, drain up to ${drainS} s; working folder ${dir}`,
  );
  let stack: Stack | undefined;
  const stop = async () => {
    await stack?.close();
    if (!keep) rmSync(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void stop().finally(() => process.exit(130)));
  try {
    stack = await startStack({ dir, log: out });
    const report = await runFaultScenario(stack, { seed, durationS: minutes * 60, rate, gapS, outageS, stepS, drainS, progressEveryS: progressS, log: out });
    if (process.env.SOAK_REPORT) writeFileSync(process.env.SOAK_REPORT, JSON.stringify(report, null, 2));
    const c = report.counts;
    out(`platform ${JSON.stringify(report.platform)}`);
    out(
      `fault cycles ${report.faultCycles}; push runs ${JSON.stringify(report.pushRuns)}; circuit resets ${report.circuitResets}; replay ${JSON.stringify(report.replay)}; ${report.durationS} s`,
    );
    for (const [kind, list] of Object.entries(report.findings)) {
      for (const f of list) out(`${kind}: ${f}`);
    }
    out(`seed ${seed}: ${formatCounts(c)}`);
    const bad = c.lost + c.duplicates + c.outOfOrder + c.childBeforeParent + c.phantom;
    const accounted = c.delivered + c.deadAfterReplay + c.heldNoParent === c.acknowledged;
    if (bad > 0 || !report.drained || !accounted) {
      out(
        `FAIL: ${bad} lost/duplicated/reordered/child-before-parent/phantom, drained ${report.drained} (${report.pendingLeft} pending), accounted ${accounted}. Reproduce: SOAK_SEED=${seed} SOAK_MINUTES=${minutes} SOAK_RATE=${rate} make soak`,
      );
      return 1;
    }
    out('PASS');
    return 0;
  } finally {
    await stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`[soak] ${(err as Error).stack ?? String(err)}\n`);
    process.exit(2);
  },
);
