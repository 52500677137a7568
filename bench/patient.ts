/**
 * ingest-patient — patient records through the whole receive function (Hono app, normalise,
 * validate, MERGE + history + outbox in one transaction) vs the baseline: bare `pg` INSERTs of the
 * same typed rows into an unindexed copy of the table, one transaction per record.
 */
import type pg from 'pg';
import { samplePatient } from '../infra/simulators/his.js';
import type { FaasFunction } from '../shared/fn/index.js';
import { compare, memory, median, timed, writeResult } from './common.js';

export async function benchPatient(o: { db: pg.Pool; patient: FaasFunction; records: number; rounds: number }) {
  const { db, patient } = o;
  const N = o.records;
  await db.query('CREATE TABLE IF NOT EXISTS bench_patient_bare (LIKE emr_patient_info INCLUDING DEFAULTS)');
  const before = memory();
  const subject: number[] = [];
  const baseline: number[] = [];
  const heap: number[] = [];
  for (let round = 0; round < o.rounds; round++) {
    const org = String(100_000_000 + round * 1000 + Math.floor(Math.random() * 999));
    const recs = Array.from({ length: N }, (_, i) => samplePatient({ orgCode: org, id: `b${round}-${i}-${Date.now().toString(36)}`, seed: i + 1 }));
    // Subject: the receive function, in process (app.request: no socket, so only our code and pg are timed).
    subject.push(
      await timed(async () => {
        for (const r of recs) {
          const res = await patient.app.request('/emrPatientInfo', {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-forwarded-for': '127.0.0.1' },
            body: JSON.stringify(r),
          });
          if (res.status !== 200) throw new Error(`ingest answered ${res.status}: ${await res.text()}`);
        }
      }),
    );
    heap.push(process.memoryUsage().heapUsed);
    // Baseline: the same typed columns written with bare pg, one transaction per record.
    const cols = [
      'org_code',
      'id',
      'patient_name',
      'id_card',
      'gender_code',
      'birth_date',
      'operation_time',
      'rec_version',
      'rec_hash',
      'rec_raw',
      'rec_received_at',
      'rec_updated_at',
    ];
    const sql = `INSERT INTO bench_patient_bare (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})`;
    baseline.push(
      await timed(async () => {
        for (const r of recs) {
          const c = await db.connect();
          try {
            await c.query('BEGIN');
            await c.query(sql, [
              r.orgCode,
              `${r.id}-bare`,
              r.patientName,
              r.idCard,
              r.genderCode,
              r.birthDate,
              r.operationTime,
              1,
              'x'.repeat(64),
              JSON.stringify(r),
              new Date(),
              new Date(),
            ]);
            await c.query('COMMIT');
          } finally {
            c.release();
          }
        }
      }),
    );
  }
  const cmp = compare(N, subject, baseline, {
    subject: 'receive function (validate + MERGE + history + outbox, 1 tx)',
    baseline: 'bare pg INSERT of the typed row, 1 tx per record',
  });
  const result = {
    scenario: 'ingest-patient',
    date: new Date().toISOString(),
    records: N,
    rounds: o.rounds,
    ...cmp,
    ratio: Number((median(subject) / median(baseline)).toFixed(2)),
    heapUsedMiB: heap.map((h) => Math.round(h / 1048576)),
    memory: { before, after: memory() },
    note: 'ratio = subject time / baseline time (median of rounds), > 1 means slower than bare pg; rateRatio = subject records/s ÷ baseline records/s',
  };
  const file = writeResult('ingest-patient', result);
  return { result, file };
}
