/**
 * truth — early warning measured against ground truth (docs/warning.md "Measured against ground
 * truth"; docs/bench.md): the runtime started from stack.yml, known-truth traffic posted on its data
 * port (infra/simulators/truth.ts), the HIS's reminder stream open throughout. Reports, per rule and
 * overall, cases caught / true cases (goal 100 %), false prompts / prompts (goal ≤ 5 %), prompts for a
 * person already carded (goal 0), and the time from the raising record's 2xx to its reminder on the
 * stream (goal p99 ≤ 1 s). The baseline of the latency is the stream's own poll interval (250 ms).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startRuntime } from '../infra/runtime/index.js';
import { freePort } from '../infra/runtime/replica.js';
import { measureTruth, type TruthReport } from '../infra/simulators/truth-run.js';
import { writeResult } from './common.js';

export async function benchTruth(o: { databaseUrl: string; patients: number; rounds: number; seed: number }) {
  const dir = mkdtempSync(join(tmpdir(), 'cdc-bench-truth-'));
  mkdirSync(join(dir, 'secrets'));
  writeFileSync(join(dir, 'secrets', 'cdc-database-url'), o.databaseUrl, { mode: 0o600 });
  const rt = await startRuntime({
    stackFile: resolve('stack.yml'),
    env: {
      HIS_ALLOW: '127.0.0.1/8,::1/128',
      NATIONAL_URL: `http://127.0.0.1:${await freePort()}`,
      DATA_PORT: String(await freePort()),
      CONFIG_PORT: String(await freePort()),
      MONITOR_PORT: String(await freePort()),
      WEB_PORT: String(await freePort()),
    },
    secretsDir: join(dir, 'secrets'),
    logsDir: join(dir, 'logs'),
    logToStdout: false,
    gateway: { host: '127.0.0.1', port: await freePort() },
    hospital: { host: '127.0.0.1' },
    cron: false,
    build: 'missing',
  });
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
    await rt.close();
    rmSync(dir, { recursive: true, force: true });
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
