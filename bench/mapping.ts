/**
 * ingest-mapping — code mapping's speed rule (docs/bench.md): the data-set run with code mapping on (every coded field
 * looked up in the in-process cache under its org's policy, observed for the unmapped queue) beside
 * the same run with mapping off (codes checked against the national lists only), through the one
 * pipeline (`upsertMany`), single records and batches of 50. Target: on within 10 % of off.
 */
import type pg from 'pg';
import { batches, generate } from '../infra/simulators/traffic.js';
import { resources } from '../schemas/index.js';
import { upsertMany, type IngestContext } from '../shared/ingest/index.js';
import { createCodeCache } from '../shared/codes/index.js';
import { compare, timed, writeResult } from './common.js';

const BATCH = 50;
const freshOrg = () => String(700_000_000 + Math.floor(Math.random() * 299_000_000));

export async function benchMapping(o: { db: pg.Pool; records: number; rounds: number; seed: number }) {
  const codes = await createCodeCache(o.db, { refreshMs: 5000 });
  const ms = { onSingle: [] as number[], offSingle: [] as number[], onBatch: [] as number[], offBatch: [] as number[] };
  const tag = Date.now().toString(36);
  const ctx = (on: boolean): IngestContext => ({ callId: null, test: false, now: new Date(), ...(on ? { codes } : {}) });
  const run = async (on: boolean, path: string, round: number, asBatch: boolean) => {
    const items = [
      ...generate({ seed: o.seed + round, count: o.records, profile: 'default', idPrefix: `m${tag}${round}${path}`, orgCodes: [freshOrg(), freshOrg()] }),
    ];
    const units = asBatch
      ? [...batches(items, BATCH)].map((u) => ({ resource: u.resource, records: u.items.map((i) => i.record) }))
      : items.map((i) => ({ resource: i.resource, records: [i.record] }));
    return timed(async () => {
      for (const u of units) {
        const res = await upsertMany(o.db, resources[u.resource]!, u.records, ctx(on));
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
    await codes.close();
  }
  const single = compare(o.records, ms.onSingle, ms.offSingle, { subject: 'mapping on, 1 record per call', baseline: 'mapping off, 1 record per call' });
  const batch50 = compare(o.records, ms.onBatch, ms.offBatch, { subject: `mapping on, batches of ${BATCH}`, baseline: `mapping off, batches of ${BATCH}` });
  const result = {
    scenario: 'ingest-mapping',
    date: new Date().toISOString(),
    records: o.records,
    rounds: o.rounds,
    seed: o.seed,
    single,
    batch50,
    target: 'rateRatio ≥ 0.90 (mapping on within 10 % of mapping off)',
  };
  return { result, file: writeResult('ingest-mapping', result) };
}
