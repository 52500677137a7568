/**
 * ingest-warning — what early warning costs the receive path (docs/warning.md): the data-set mix
 * through the one pipeline (`upsertMany`), single records and batches of 50, with the warning's work
 * list in place (record_history.warn_pending and its index, maintained on every history row) beside
 * the same run with the index dropped and the column's default off — the receive path as it was before
 * early warning. Evaluation itself runs after the commit, in the warning function, and is not on the
 * path. Target: within 10 %.
 */
import type pg from 'pg';
import { batches, generate } from '../infra/simulators/traffic.js';
import { resources } from '../schemas/index.js';
import { upsertMany } from '../shared/ingest/index.js';
import { compare, timed, writeResult } from './common.js';

const BATCH = 50;
const freshOrg = () => String(600_000_000 + Math.floor(Math.random() * 99_000_000));

async function setWarning(db: pg.Pool, on: boolean): Promise<void> {
  if (on) {
    await db.query('ALTER TABLE record_history ALTER COLUMN warn_pending SET DEFAULT true');
    await db.query('CREATE INDEX IF NOT EXISTS record_history_warn ON record_history (warn_pending, hist_id)');
  } else {
    await db.query('DROP INDEX IF EXISTS record_history_warn');
    await db.query('ALTER TABLE record_history ALTER COLUMN warn_pending DROP DEFAULT');
  }
}

export async function benchWarning(o: { db: pg.Pool; records: number; rounds: number; seed: number }) {
  const ms = { onSingle: [] as number[], offSingle: [] as number[], onBatch: [] as number[], offBatch: [] as number[] };
  const tag = Date.now().toString(36);
  const run = async (on: boolean, path: string, round: number, asBatch: boolean) => {
    await setWarning(o.db, on);
    const items = [
      ...generate({ seed: o.seed + round, count: o.records, profile: 'default', idPrefix: `w${tag}${round}${path}`, orgCodes: [freshOrg(), freshOrg()] }),
    ];
    const units = asBatch
      ? [...batches(items, BATCH)].map((u) => ({ resource: u.resource, records: u.items.map((i) => i.record) }))
      : items.map((i) => ({ resource: i.resource, records: [i.record] }));
    return timed(async () => {
      for (const u of units) {
        const res = await upsertMany(o.db, resources[u.resource]!, u.records, { callId: null, test: false, now: new Date() });
        const bad = res.find((x) => !x.ok);
        if (bad && !bad.ok) throw new Error(`bench: ${u.resource} refused: ${bad.error.desc}`);
      }
    });
  };
  try {
    for (let round = 0; round < o.rounds; round++) {
      // Interleaved, alternating which goes first, so noise and warm caches hit both alike.
      const first = round % 2 === 0;
      for (const on of first ? [true, false] : [false, true]) (on ? ms.onSingle : ms.offSingle).push(await run(on, on ? 'a' : 'b', round, false));
      for (const on of first ? [false, true] : [true, false]) (on ? ms.onBatch : ms.offBatch).push(await run(on, on ? 'c' : 'd', round, true));
    }
  } finally {
    await setWarning(o.db, true);
    // The bench's own rows are no work for a warning run that might follow on this database.
    await o.db.query(`UPDATE record_history SET warn_pending = NULL WHERE warn_pending = true AND record_id LIKE $1`, [`w${tag}%`]);
  }
  const single = compare(o.records, ms.onSingle, ms.offSingle, {
    subject: 'warning work list on, 1 record per call',
    baseline: 'warning work list off, 1 record per call',
  });
  const batch50 = compare(o.records, ms.onBatch, ms.offBatch, {
    subject: `warning work list on, batches of ${BATCH}`,
    baseline: `warning work list off, batches of ${BATCH}`,
  });
  const result = {
    scenario: 'ingest-warning',
    date: new Date().toISOString(),
    records: o.records,
    rounds: o.rounds,
    seed: o.seed,
    single,
    batch50,
    target: 'rateRatio ≥ 0.90 (the receive path slows by at most 10 %)',
  };
  return { result, file: writeResult('ingest-warning', result) };
}
