/**
 * `make bench`: speed and memory as ratios against a baseline measured in the same run, never as
 * timed tests. Each scenario runs in this process against a private PostgreSQL (or
 * BENCH_DATABASE_URL), interleaving subject and baseline rounds so machine noise hits both.
 *
 *   ingest-patient  — patient records through the receive function vs bare pg (bench/patient.ts)
 *   ingest-dataset  — the traffic generator's default mix through the eight receive functions,
 *                     single records and batches of 50, vs bare pg single and multi-row inserts
 *                     of the same typed rows (bench/dataset.ts)
 *   ingest-mapping  — the same mix through the pipeline with code mapping on vs off
 *                     (bench/mapping.ts; target: on within 10 % of off)
 *   ingest-port     — the same mix through the runtime's data port (8881, stack.yml, replicas as
 *                     child processes) at 16 and 64 clients and in batches of 50, vs bare pg at the
 *                     same concurrency; RSS and CPU of every process; profile (bench/port.ts)
 *   ingest-warning  — the same mix through the pipeline with early warning's work list (the
 *                     record_history index) vs without (bench/warning.ts; target: within 10 %)
 *   truth           — early warning against known-truth traffic through the data port: recall,
 *                     false prompts, duplicate-card prompts, 2xx → SSE latency (bench/truth.ts)
 *   uplink          — push draining the outbox to the platform simulator over HTTPS with the SM
 *                     envelope vs the simulator's own ingest of the same batches, and end-to-end
 *                     latency HIS 2xx → platform receipt for the realtime class (bench/uplink.ts)
 *   headline        — the headline figures in one table, each against its baseline in the same run
 *                     (bench/headline.ts; docs/bench.md "Headline"): P1 and P2 through 8881, P3
 *                     the runtime's proxy on a no-op, P6 RSS at load, P7 replica start to ready.
 *                     Taken from the port scenario when it runs in the same process; alone, only
 *                     what the table needs (one replica count, a few minutes). Printed last.
 *
 * BENCH_SCENARIOS=patient,dataset,pii,mapping,warning,port,uplink,truth,headline (default all), BENCH_RECORDS (2000), BENCH_ROUNDS (3),
 * BENCH_SEED (1). Writes bench/results/<date>-<scenario>.json and prints a table. See docs/bench.md.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startPostgres } from '../infra/dev/postgres.js';
import { migrate } from '../infra/db/migrate.js';
import type { FaasFunction } from '../shared/fn/index.js';
import { memory, table } from './common.js';

const N = Number(process.env.BENCH_RECORDS ?? 2000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SEED = Number(process.env.BENCH_SEED ?? 1);
const SCENARIOS = new Set((process.env.BENCH_SCENARIOS ?? 'patient,dataset,pii,mapping,warning,port,uplink,truth,headline').split(',').map((s) => s.trim()));

async function main(): Promise<void> {
  let url = process.env.BENCH_DATABASE_URL;
  let dir: string | undefined;
  let stop: (() => Promise<void>) | undefined;
  let pgPid: number | undefined;
  if (!url) {
    dir = mkdtempSync(join(tmpdir(), 'cdc-bench-'));
    const server = await startPostgres({ dataDir: join(dir, 'pg') });
    url = server.url;
    stop = server.stop;
    pgPid = server.pid;
  }
  const start = memory();
  try {
    await migrate(url);
    process.env.DATABASE_URL = url;
    process.env.HIS_ALLOW = '127.0.0.1/8';
    process.env.LOG_LEVEL = 'warn';
    // Nudges would go to a gateway that is not running here; the bench measures ingest only.
    process.env.PUSH_NUDGE_URL = '';
    const apps = new Map<string, FaasFunction>([
      ['patient', (await import('../functions/patient/handler.js')).default],
      ['diagnosis', (await import('../functions/diagnosis/handler.js')).default],
      ['card', (await import('../functions/card/handler.js')).default],
      ['lab', (await import('../functions/lab/handler.js')).default],
      ['exam', (await import('../functions/exam/handler.js')).default],
      ['order', (await import('../functions/order/handler.js')).default],
      ['death', (await import('../functions/death/handler.js')).default],
      ['record', (await import('../functions/record/handler.js')).default],
    ]);
    // The functions share this process's one pool (shared/db), as replicas of one function would not.
    for (const f of apps.values()) await f.init?.();
    const db = new pg.Pool({ connectionString: url, max: 2 });
    db.on('error', () => undefined);
    const rows: Array<Record<string, string | number>> = [];
    let headlineText: string | undefined;
    if (SCENARIOS.has('patient')) {
      const { benchPatient } = await import('./patient.js');
      const { result, file } = await benchPatient({ db, patient: apps.get('patient')!, records: N, rounds: ROUNDS });
      rows.push({
        scenario: 'ingest-patient',
        path: 'single',
        'subject rec/s': result.subject.recordsPerS,
        'bare pg rec/s': result.baseline.recordsPerS,
        'rate ratio': result.rateRatio,
        file,
      });
    }
    if (SCENARIOS.has('dataset')) {
      const { benchDataset } = await import('./dataset.js');
      const { result, file } = await benchDataset({ db, apps, records: N, rounds: ROUNDS, seed: SEED });
      rows.push({
        scenario: 'ingest-dataset',
        path: 'single',
        'subject rec/s': result.single.subject.recordsPerS,
        'bare pg rec/s': result.single.baseline.recordsPerS,
        'rate ratio': result.single.rateRatio,
        file,
      });
      rows.push({
        scenario: 'ingest-dataset',
        path: 'batch 50',
        'subject rec/s': result.batch50.subject.recordsPerS,
        'bare pg rec/s': result.batch50.baseline.recordsPerS,
        'rate ratio': result.batch50.rateRatio,
        file,
      });
    }
    if (SCENARIOS.has('pii')) {
      // The cost of sealing personal data on the write path (docs/bench.md "ingest-pii"; goal ≤ 10 %).
      const { benchPii } = await import('./pii.js');
      const { result, file } = await benchPii({ db, records: N, rounds: ROUNDS, seed: SEED });
      for (const [path, c] of [
        ['single', result.single],
        ['batch 50', result.batch50],
      ] as const)
        rows.push({
          scenario: 'ingest-pii',
          path,
          'subject rec/s': c.subject.recordsPerS,
          'bare pg rec/s': `${c.baseline.recordsPerS} (sealing off)`,
          'rate ratio': c.rateRatio,
          file,
        });
    }
    if (SCENARIOS.has('mapping')) {
      const { benchMapping } = await import('./mapping.js');
      const { result, file } = await benchMapping({ db, records: N, rounds: ROUNDS, seed: SEED });
      rows.push({
        scenario: 'ingest-mapping',
        path: 'single',
        'subject rec/s': result.single.subject.recordsPerS,
        'bare pg rec/s': `${result.single.baseline.recordsPerS} (off)`,
        'rate ratio': result.single.rateRatio,
        file,
      });
      rows.push({
        scenario: 'ingest-mapping',
        path: 'batch 50',
        'subject rec/s': result.batch50.subject.recordsPerS,
        'bare pg rec/s': `${result.batch50.baseline.recordsPerS} (off)`,
        'rate ratio': result.batch50.rateRatio,
        file,
      });
    }
    if (SCENARIOS.has('warning')) {
      const { benchWarning } = await import('./warning.js');
      const { result, file } = await benchWarning({ db, records: N, rounds: ROUNDS, seed: SEED });
      rows.push({
        scenario: 'ingest-warning',
        path: 'single',
        'subject rec/s': result.single.subject.recordsPerS,
        'bare pg rec/s': `${result.single.baseline.recordsPerS} (off)`,
        'rate ratio': result.single.rateRatio,
        file,
      });
      rows.push({
        scenario: 'ingest-warning',
        path: 'batch 50',
        'subject rec/s': result.batch50.subject.recordsPerS,
        'bare pg rec/s': `${result.batch50.baseline.recordsPerS} (off)`,
        'rate ratio': result.batch50.rateRatio,
        file,
      });
    }
    if (SCENARIOS.has('port')) {
      const { benchPort } = await import('./port.js');
      const { result, rows: portRows, file, headline } = await benchPort({ db, url, pgPid, apps, records: N, rounds: ROUNDS, seed: SEED });
      headlineText = headline.text;
      const phases =
        Object.values(
          result.phases as Record<string, Record<string, { rateRatio: number; subject: { recordsPerS: number }; baseline: { recordsPerS: number } }>>,
        )[0] ?? {};
      for (const [k, v] of Object.entries(phases)) {
        rows.push({
          scenario: 'ingest-port',
          path: k.replace('-c', ' c'),
          'subject rec/s': v.subject.recordsPerS,
          'bare pg rec/s': v.baseline.recordsPerS,
          'rate ratio': v.rateRatio,
          file: file ?? '-',
        });
      }
      console.log(table(portRows));
    } else if (SCENARIOS.has('headline')) {
      const { benchPort } = await import('./port.js');
      const { headline } = await benchPort({ db, url, pgPid, apps, records: N, rounds: ROUNDS, seed: SEED, headlineOnly: true });
      headlineText = headline.text;
    }
    if (SCENARIOS.has('uplink')) {
      const { benchUplink } = await import('./uplink.js');
      const { result, file } = await benchUplink({ db, databaseUrl: url, records: N, rounds: ROUNDS, seed: SEED });
      rows.push({
        scenario: 'uplink',
        path: 'push → platform',
        'subject rec/s': result.subject.recordsPerS,
        'bare pg rec/s': `${result.baseline.recordsPerS} (simulator bare)`,
        'rate ratio': result.rateRatio,
        file,
      });
      if (result.latency) {
        rows.push({
          scenario: 'uplink',
          path: 'e2e realtime p50/p99 ms',
          'subject rec/s': result.latency.p50Ms,
          'bare pg rec/s': result.latency.p99Ms,
          'rate ratio': result.latency.met ? 'p99 < 5 s' : 'p99 ≥ 5 s',
          file,
        });
      }
    }
    if (SCENARIOS.has('truth')) {
      const { benchTruth } = await import('./truth.js');
      const { result, file } = await benchTruth({ databaseUrl: url, patients: Math.max(24, Math.round(N / 20)), rounds: ROUNDS, seed: SEED });
      rows.push({
        scenario: 'warning-truth',
        path: 'caught / true cases',
        'subject rec/s': `${result.caught}/${result.trueCases}`,
        'bare pg rec/s': '—',
        'rate ratio': result.recall.toFixed(3),
        file,
      });
      rows.push({
        scenario: 'warning-truth',
        path: 'false prompts / prompts',
        'subject rec/s': `${result.falsePrompts}/${result.prompts}`,
        'bare pg rec/s': '—',
        'rate ratio': result.falsePromptShare.toFixed(3),
        file,
      });
      rows.push({
        scenario: 'warning-truth',
        path: '2xx → SSE p50/p99 ms',
        'subject rec/s': result.latencyMs.p50,
        'bare pg rec/s': `${result.latencyMs.p99} (poll 250)`,
        'rate ratio': result.latencyMs.p99 <= 1000 ? 'p99 ≤ 1 s' : 'p99 > 1 s',
        file,
      });
    }
    const end = memory();
    if (rows.length) console.log(table(rows));
    console.log(
      `memory: heap ${start.heapUsedMiB} → ${end.heapUsedMiB} MiB, RSS ${start.rssMiB} → ${end.rssMiB} MiB (${N} records × ${ROUNDS} rounds per path)`,
    );
    // The headline table last, where it is seen (also in bench/results/<date>-headline.json).
    if (headlineText) console.log(`\n${headlineText}`);
    for (const f of apps.values()) await f.close?.();
    await db.end();
  } finally {
    await stop?.();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

await main();
