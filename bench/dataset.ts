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
import { columnSource, valuesSource, type Cols } from '../shared/db/sql.js';
import { z } from 'zod';
import { sqlType } from '../schemas/ddl.js';

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

// ---- the "same writes" baseline (docs/bench.md "Headline") ---------------------------------------
// What the front writes per record, as bare pg would write it with nothing else: the typed row
// merged into a copy of its table with the same indexes, one history row and one outbox row per
// enabled destination, in one transaction (prepared statements for single records).

export const same = (r: Resource) => `bench_same_${r.table}`;
const BOOK_TYPES = ['integer', 'char(64)', 'jsonb', 'boolean', 'boolean', 'timestamptz', 'timestamptz', 'integer'];

/** The copies the baseline writes into: the typed tables, the history and the outbox, with all their indexes. */
export async function prepareSameWrites(db: pg.Pool): Promise<void> {
  for (const r of Object.values(resources)) await db.query(`CREATE TABLE IF NOT EXISTS ${same(r)} (LIKE ${r.table} INCLUDING ALL)`);
  await db.query('CREATE TABLE IF NOT EXISTS bench_same_history (LIKE record_history INCLUDING ALL)');
  await db.query('CREATE TABLE IF NOT EXISTS bench_same_outbox (LIKE outbox INCLUDING ALL)');
}

/**
 * How the baseline's batches give their rows (BENCH_SAME_SOURCE): `values` (the default), multi-row
 * VALUES lists sent unnamed — bare multi-row statements as bare `pg` code writes them; `columns`, one
 * array per column in statements prepared once per connection, as the front writes its batches
 * (docs/opengauss.md "Statement sources"): what the same technique gives the database alone.
 */
const SAME_SOURCE = z
  .enum(['values', 'columns'])
  .default('values')
  .parse(process.env.BENCH_SAME_SOURCE || undefined);

/** The three statements of the baseline for typed rows of one resource (`typedRow`'s shape). */
export function sameWrites(r: Resource, rows: unknown[][]): Array<{ text: string; values: unknown[]; name?: string }> {
  const cols: Cols = [...Object.values(r.fields).map((d) => [d.column, sqlType(d)] as const), ...BOOK.map((c, i) => [c, BOOK_TYPES[i]!] as const)];
  const names = cols.map(([c]) => c);
  const at = (c: string) => names.indexOf(c);
  const one = rows.length === 1;
  const columns = SAME_SOURCE === 'columns' && !one;
  const src = columns ? columnSource : valuesSource;
  const typed = src(cols, rows);
  /** Prepared once per connection: a single record's statements, and the column-array batches'. */
  const named = (single: string, batch: string) => (one ? { name: single } : columns ? { name: batch } : {});
  const hist = src(
    [
      ['resource', 'varchar'],
      ['org_code', 'varchar'],
      ['record_id', 'varchar'],
      ['version', 'integer'],
      ['rec_hash', 'varchar'],
      ['raw', 'jsonb'],
      ['received_at', 'timestamptz'],
    ],
    rows.map((x) => [r.name, x[at('org_code')], x[at('id')], 1, x[at('rec_hash')], x[at('rec_raw')], x[at('rec_received_at')]]),
  );
  const out = src(
    [
      ['resource', 'varchar'],
      ['org_code', 'varchar'],
      ['record_id', 'varchar'],
      ['payload', 'jsonb'],
      ['seq', 'integer'],
    ],
    rows.map((x, i) => [r.name, x[at('org_code')], x[at('id')], x[at('rec_raw')], i]),
  );
  const update = names.filter((c) => c !== 'org_code' && c !== 'id');
  return [
    {
      text:
        `MERGE INTO ${same(r)} t USING (${typed.sql}) s ON (t.org_code = s.org_code AND t.id = s.id) ` +
        `WHEN MATCHED THEN UPDATE SET ${update.map((c) => `${c} = s.${c}`).join(', ')} ` +
        `WHEN NOT MATCHED THEN INSERT (${names.join(', ')}) VALUES (${names.map((c) => `s.${c}`).join(', ')})`,
      values: typed.params,
      ...named(`same1_${r.table}`, `samen_${r.table}`),
    },
    {
      text: `INSERT INTO bench_same_history (resource, org_code, record_id, version, op, rec_hash, raw, received_at)
             SELECT s.resource, s.org_code, s.record_id, s.version, 'upsert', s.rec_hash, s.raw, s.received_at FROM (${hist.sql}) s`,
      values: hist.params,
      ...named('same1_history', 'samen_history'),
    },
    {
      text: `INSERT INTO bench_same_outbox (destination, resource, org_code, record_id, version, op, deadline_class, test_mode, payload, state)
             SELECT d.name, s.resource, s.org_code, s.record_id, 1, 'upsert', '${r.deadline}', false, s.payload, 'pending'
               FROM (${out.sql}) s, uplink_destination d WHERE d.enabled = true ORDER BY s.seq, d.name`,
      values: out.params,
      ...named(`same1_outbox_${r.table}`, `samen_outbox_${r.table}`),
    },
  ];
}

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
