/**
 * `make bench`: speed and memory as ratios against a baseline measured in the same run, never as
 * timed tests. Each scenario runs in this process against a private PostgreSQL (or
 * BENCH_DATABASE_URL), interleaving subject and baseline rounds so machine noise hits both.
 *
 *   ingest  — patient records through the whole receive function (Hono app, normalise, validate,
 *             MERGE + history + outbox in one transaction) vs the baseline: bare `pg` INSERTs of the
 *             same typed rows into an unindexed copy of the table, one transaction per record.
 *
 * Writes bench/results/<date>-<scenario>.json and prints a summary.
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startPostgres } from '../infra/dev/postgres.js';
import { migrate } from '../infra/db/migrate.js';
import { samplePatient } from '../infra/simulators/his.js';

const N = Number(process.env.BENCH_RECORDS ?? 2000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

async function main(): Promise<void> {
  let url = process.env.BENCH_DATABASE_URL;
  let dir: string | undefined;
  let stop: (() => Promise<void>) | undefined;
  if (!url) {
    dir = mkdtempSync(join(tmpdir(), 'cdc-bench-'));
    const server = await startPostgres({ dataDir: join(dir, 'pg') });
    url = server.url;
    stop = server.stop;
  }
  try {
    await migrate(url);
    process.env.DATABASE_URL = url;
    process.env.HIS_ALLOW = '127.0.0.1/8';
    process.env.LOG_LEVEL = 'warn';
    const { default: patient } = await import('../functions/patient/handler.js');
    await patient.init?.();
    const db = new pg.Pool({ connectionString: url, max: 2 });
    db.on('error', () => undefined);
    await db.query('CREATE TABLE IF NOT EXISTS bench_patient_bare (LIKE emr_patient_info INCLUDING DEFAULTS)');

    const subject: number[] = [];
    const baseline: number[] = [];
    const heap: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const org = String(100_000_000 + round * 1000 + Math.floor(Math.random() * 999));
      const recs = Array.from({ length: N }, (_, i) => samplePatient({ orgCode: org, id: `b${round}-${i}`, seed: i + 1 }));
      // Subject: the receive function, in process (app.request: no socket, so only our code and pg are timed).
      let t = process.hrtime.bigint();
      for (const r of recs) {
        const res = await patient.app.request('/emrPatientInfo', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-forwarded-for': '127.0.0.1' },
          body: JSON.stringify(r),
        });
        if (res.status !== 200) throw new Error(`ingest answered ${res.status}: ${await res.text()}`);
      }
      subject.push(Number(process.hrtime.bigint() - t) / 1e6);
      heap.push(process.memoryUsage().heapUsed);
      // Baseline: the same typed columns written with bare pg, one transaction per record.
      const cols = ['org_code', 'id', 'patient_name', 'id_card', 'gender_code', 'birth_date', 'operation_time', 'rec_version', 'rec_hash', 'rec_raw', 'rec_received_at', 'rec_updated_at'];
      const sql = `INSERT INTO bench_patient_bare (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})`;
      t = process.hrtime.bigint();
      for (const r of recs) {
        const c = await db.connect();
        try {
          await c.query('BEGIN');
          await c.query(sql, [r.orgCode, `${r.id}-bare`, r.patientName, r.idCard, r.genderCode, r.birthDate, r.operationTime, 1, 'x'.repeat(64), JSON.stringify(r), new Date(), new Date()]);
          await c.query('COMMIT');
        } finally {
          c.release();
        }
      }
      baseline.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const result = {
      scenario: 'ingest-patient',
      date: new Date().toISOString(),
      records: N,
      rounds: ROUNDS,
      subject: { name: 'receive function (validate + MERGE + history + outbox, 1 tx)', ms: subject, recordsPerS: Math.round((N * 1000) / median(subject)) },
      baseline: { name: 'bare pg INSERT of the typed row, 1 tx per record', ms: baseline, recordsPerS: Math.round((N * 1000) / median(baseline)) },
      ratio: Number((median(subject) / median(baseline)).toFixed(2)),
      heapUsedMiB: heap.map((h) => Math.round(h / 1048576)),
      note: 'ratio = subject time / baseline time (median of rounds); > 1 means slower than bare pg',
    };
    mkdirSync('bench/results', { recursive: true });
    const file = join('bench/results', `${result.date.slice(0, 10)}-ingest-patient.json`);
    writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
    console.log(`ingest-patient: ${result.subject.recordsPerS} rec/s vs bare pg ${result.baseline.recordsPerS} rec/s → ratio ${result.ratio} (${file})`);
    await patient.close?.();
    await db.end();
  } finally {
    await stop?.();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

await main();
