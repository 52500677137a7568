/**
 * ingest-dataset — the traffic generator's default mix (all twenty resources, in causal order)
 * through the eight receive functions in process (app.request: no sockets), one record per POST and
 * batches of 50 records of one resource per POST; beside each, in the same rounds, bare `pg` writing
 * the same typed rows into unindexed copies of the tables: one transaction per record for the
 * single path, one multi-row INSERT per batch for the batch path.
 */
import type pg from 'pg';
import { batches, generate, type TrafficItem, type Unit } from '../infra/simulators/traffic.js';
import { resources } from '../schemas/index.js';
import type { Resource } from '../schemas/resource.js';
import { normalizeKeys } from '../shared/ingest/normalize.js';
import { validateRecord } from '../shared/ingest/validate.js';
import type { FaasFunction } from '../shared/fn/index.js';
import { compare, memory, timed, writeResult } from './common.js';

const BATCH = 50;
const BOOK = ['rec_version', 'rec_hash', 'rec_raw', 'rec_retired', 'rec_test', 'rec_received_at', 'rec_updated_at', 'rec_lateness_s'];
export const bare = (r: Resource) => `bench_bare_${r.table}`;
const freshOrg = () => String(700_000_000 + Math.floor(Math.random() * 299_000_000));

/** The typed row bare pg writes: the validated record's columns plus the bookkeeping columns. */
export function typedRow(it: TrafficItem, now: Date): unknown[] {
  const r = resources[it.resource]!;
  const v = validateRecord(r, normalizeKeys(r, it.record).known, now);
  if (!v.ok) throw new Error(`bench: generated ${it.key} is invalid: ${JSON.stringify(v.issues)}`);
  const row = Object.keys(r.fields).map((k) => v.record[k] ?? null);
  row.push(1, 'x'.repeat(64), JSON.stringify(it.record), false, false, now, now, 0);
  return row;
}
export const columnsOf = (r: Resource) => [...Object.values(r.fields).map((d) => d.column), ...BOOK];

async function postUnit(apps: Map<string, FaasFunction>, u: Unit, asBatch: boolean): Promise<number> {
  const fn = resources[u.resource]!.fn;
  const res = await apps.get(fn)!.app.request(`/${u.resource}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': '127.0.0.1' },
    body: JSON.stringify(asBatch ? u.items.map((i) => i.record) : u.items[0]!.record),
  });
  const body = (await res.json()) as { result: boolean; held?: string[]; results?: Array<{ result: boolean; held?: string[] }> };
  if (res.status !== 200 || body.result !== true) throw new Error(`bench: ${u.resource} answered ${res.status}: ${JSON.stringify(body).slice(0, 400)}`);
  return asBatch ? (body.results ?? []).filter((x) => x.held?.length).length : body.held?.length ? 1 : 0;
}

export async function benchDataset(o: { db: pg.Pool; apps: Map<string, FaasFunction>; records: number; rounds: number; seed: number }) {
  const { db, apps } = o;
  for (const r of Object.values(resources)) await db.query(`CREATE TABLE IF NOT EXISTS ${bare(r)} (LIKE ${r.table} INCLUDING DEFAULTS)`);
  const before = memory();
  const ms = { single: [] as number[], singleBare: [] as number[], batch: [] as number[], batchBare: [] as number[] };
  let held = 0;
  let mix: Record<string, number> = {};
  const tag = Date.now().toString(36);
  for (let round = 0; round < o.rounds; round++) {
    // Fresh org codes and ids per round and path: every record is a new insert, as in production.
    const traffic = (path: string) => [
      ...generate({
        seed: o.seed + round,
        count: o.records,
        profile: 'default',
        idPrefix: `b${tag}${round}${path}`,
        orgCodes: [freshOrg(), freshOrg(), freshOrg()],
      }),
    ];
    const singleItems = traffic('s');
    const batchItems = traffic('b');
    mix = {};
    for (const it of singleItems) mix[it.resource] = (mix[it.resource] ?? 0) + 1;
    const now = new Date();
    const singleRows = singleItems.map((it) => ({ r: resources[it.resource]!, row: typedRow(it, now) }));
    const batchUnits = [...batches(batchItems, BATCH)];
    const batchRows = batchUnits.map((u) => ({ r: resources[u.resource]!, rows: u.items.map((it) => typedRow(it, now)) }));

    // Interleaved: subject, baseline, subject, baseline — machine noise hits both alike.
    ms.single.push(
      await timed(async () => {
        for (const it of singleItems) held += await postUnit(apps, { resource: it.resource, items: [it] }, false);
      }),
    );
    ms.singleBare.push(
      await timed(async () => {
        for (const { r, row } of singleRows) {
          const cols = columnsOf(r);
          const c = await db.connect();
          try {
            await c.query('BEGIN');
            await c.query({
              name: `bare1_${r.table}`,
              text: `INSERT INTO ${bare(r)} (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})`,
              values: row,
            });
            await c.query('COMMIT');
          } finally {
            c.release();
          }
        }
      }),
    );
    ms.batch.push(
      await timed(async () => {
        for (const u of batchUnits) held += await postUnit(apps, u, true);
      }),
    );
    ms.batchBare.push(
      await timed(async () => {
        for (const { r, rows } of batchRows) {
          const cols = columnsOf(r);
          const values = rows.map((_, j) => `(${cols.map((_, i) => `$${j * cols.length + i + 1}`).join(', ')})`).join(', ');
          await db.query(`INSERT INTO ${bare(r)} (${cols.join(', ')}) VALUES ${values}`, rows.flat());
        }
      }),
    );
  }
  const single = compare(o.records, ms.single, ms.singleBare, {
    subject: 'receive functions, 1 record per POST (validate + MERGE + history + outbox + receipt, 1 tx)',
    baseline: 'bare pg INSERT of the typed row, 1 tx per record',
  });
  const batch50 = compare(o.records, ms.batch, ms.batchBare, {
    subject: `receive functions, batches of ${BATCH} records of one resource per POST`,
    baseline: `bare pg multi-row INSERT of the same ${BATCH} typed rows`,
  });
  const result = {
    scenario: 'ingest-dataset',
    date: new Date().toISOString(),
    records: o.records,
    rounds: o.rounds,
    seed: o.seed,
    profile: 'default',
    mix,
    heldAnswers: held,
    single,
    batch50,
    memory: { before, after: memory() },
    note: 'rateRatio = subject records/s ÷ baseline records/s (median round of each); in process, sequential (one request at a time), no sockets',
  };
  const file = writeResult('ingest-dataset', result);
  return { result, file };
}
