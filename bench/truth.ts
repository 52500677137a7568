/**
 * truth — early warning measured against ground truth (docs/warning.md "Measured against ground
 * truth"; docs/bench.md): the runtime started from stack.yml, known-truth traffic posted on its data
 * port (infra/simulators/truth.ts), the HIS's reminder stream open throughout. Reports, per rule and
 * overall, cases caught / true cases (goal 100 %), false prompts / prompts (goal ≤ 5 %), prompts for a
 * person already carded (goal 0), and the time from the raising record's 2xx to its reminder on the
 * stream (goal p99 ≤ 1 s). The baseline of the latency is the stream's own poll interval (250 ms).
 */
import { bootStack } from '../infra/runtime/boot.js';
import { measureTruth, type TruthReport } from '../infra/simulators/truth-run.js';
import { writeResult } from './common.js';

export async function benchTruth(o: { databaseUrl: string; patients: number; rounds: number; seed: number }) {
  // Records nudge the push as deployed ('' is stack.yml's own); the platform is a closed port.
  const front = await bootStack({ name: 'bench-truth', databaseUrl: o.databaseUrl, env: { PUSH_NUDGE_URL: '' }, runtime: { autoscaler: undefined } });
  const rt = front.rt;
  const rounds: TruthReport[] = [];
  try {
    for (let i = 0; i < o.rounds; i++) {
      rounds.push(
        await measureTruth({
          dataUrl: rt.portUrls.data!,
          orgCode: String(460_000_000 + i * 1000 + Math.floor(Math.random() * 999)),
          patients: o.patients,
          seed: o.seed + i,
          settleMs: 30_000,
        }),
      );
    }
  } finally {
    await front.close();
  }
  const sum = (f: (r: TruthReport) => number) => rounds.reduce((a, r) => a + f(r), 0);
  const lat = rounds.map((r) => r.latencyMs);
  const result = {
    setup: `runtime from stack.yml (cron off: the receive functions nudge the warning function), ${o.patients} patients × ${o.rounds} rounds of known-truth traffic posted on the data port by 8 clients, reminders read from /reminders/stream`,
    patients: sum((r) => r.patients),
    trueCases: sum((r) => r.trueCases),
    caught: sum((r) => r.caught),
    recall:
      sum((r) => r.caught) /
      Math.max(
        1,
        sum((r) => r.trueCases),
      ),
    prompts: sum((r) => r.prompts),
    falsePrompts: sum((r) => r.falsePrompts),
    falsePromptShare:
      sum((r) => r.falsePrompts) /
      Math.max(
        1,
        sum((r) => r.prompts),
      ),
    duplicateCardPrompts: sum((r) => r.duplicateCardPrompts),
    latencyMs: {
      p50: Math.max(...lat.map((l) => l.p50)),
      p99: Math.max(...lat.map((l) => l.p99)),
      max: Math.max(...lat.map((l) => l.max)),
      baselinePollMs: 250,
    },
    goals: { recall: 1, falsePromptShare: 0.05, duplicateCardPrompts: 0, p99Ms: 1000 },
    rounds,
  };
  return { result, file: writeResult('warning-truth', result) };
}
