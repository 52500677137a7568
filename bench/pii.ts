/**
 * ingest-pii — the cost of personal data at rest on the write path (docs/keys.md): the data set's
 * default traffic mix through the one pipeline (`upsertMany`), single records and batches of 50,
 * with the field encryption on (SM4-GCM of every ID number, phone and address, HMAC-SM3 of ID
 * numbers and phones) beside the same run with it off (values stored as sent, no HMACs), in the same
 * process and database, rounds interleaved and alternating which goes first. Target: on within 10 %
 * of off (rateRatio ≥ 0.90).
 *
 *   npx tsx bench/pii.ts            a private PostgreSQL (or BENCH_DATABASE_URL); BENCH_RECORDS (2000),
 *                                   BENCH_ROUNDS (3), BENCH_SEED (1); writes bench/results/<date>-ingest-pii.json
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startPostgres } from '../infra/dev/postgres.js';
import { migrate } from '../infra/db/migrate.js';
import { batches, generate } from '../infra/simulators/traffic.js';
import { resources } from '../schemas/index.js';
import { upsertMany, type IngestContext } from '../shared/ingest/index.js';
import { devKeys, Pii, sealRecord, setPii } from '../shared/pii/index.js';
import { compare, median, table, timed, writeResult } from './common.js';

const BATCH = 50;
const freshOrg = () => String(700_000_000 + Math.floor(Math.random() * 299_000_000));

/** The baseline: nothing sealed, no HMAC (the write path as it was before migration 0032). */
class Clear extends Pii {
  constructor() {
    super(devKeys);
  }
  override seal(v: string): string {
    return v;
  }
  override hash(): string {
    return null as unknown as string; // sealRecord writes the HMAC columns NULL
  }
}

export async function benchPii(o: { db: pg.Pool; records: number; rounds: number; seed: number }) {
  const on = new Pii(devKeys);
  const off = new Clear();
  const ms = { onSingle: [] as number[], offSingle: [] as number[], onBatch: [] as number[], offBatch: [] as number[] };
  const tag = Date.now().toString(36);
  const ctx = (): IngestContext => ({ callId: null, test: false, now: new Date() });
  const run = async (sealing: boolean, path: string, round: number, asBatch: boolean) => {
    const items = [
      ...generate({ seed: o.seed + round, count: o.records, profile: 'default', idPrefix: `s${tag}${round}${path}`, orgCodes: [freshOrg(), freshOrg()] }),
    ];
    const units = asBatch
      ? [...batches(items, BATCH)].map((u) => ({ resource: u.resource, records: u.items.map((i) => i.record) }))
      : items.map((i) => ({ resource: i.resource, records: [i.record] }));
    setPii(sealing ? on : off);
    try {
      return await timed(async () => {
        for (const u of units) {
          const res = await upsertMany(o.db, resources[u.resource]!, u.records, ctx());
          const bad = res.find((x) => !x.ok);
          if (bad && !bad.ok) throw new Error(`bench: ${u.resource} refused: ${bad.error.desc}`);
        }
      });
    } finally {
      setPii(undefined);
    }
  };
  for (let round = 0; round < o.rounds; round++) {
    const first = round % 2 === 0;
    for (const s of first ? [true, false] : [false, true]) (s ? ms.onSingle : ms.offSingle).push(await run(s, s ? 'a' : 'b', round, false));
    for (const s of first ? [false, true] : [true, false]) (s ? ms.onBatch : ms.offBatch).push(await run(s, s ? 'c' : 'd', round, true));
  }
  // The CPU of sealing alone (SM4-GCM and HMAC-SM3 of the mix's records, no database): the part of
  // the cost machine noise cannot hide, as a share of a record's time on the baseline's path.
  const mix = [...generate({ seed: o.seed, count: o.records, profile: 'default', idPrefix: `u${tag}`, orgCodes: [freshOrg()] })];
  const sealMs: number[] = [];
  for (let i = 0; i < 5; i++)
    sealMs.push(
      await timed(async () => {
        for (const it of mix) sealRecord(resources[it.resource]!, it.record as Record<string, unknown>, { ...(it.record as Record<string, unknown>) }, on);
      }),
    );
  const sealUs = Number(((median(sealMs) * 1000) / o.records).toFixed(1));
  // Check the subject really sealed: a sealed value is in the database (never assumed).
  const sealed = await o.db.query(`SELECT count(*)::int AS n FROM emr_patient_info WHERE id_card LIKE 'sm4:%'`);
  if (!(sealed.rows[0].n > 0)) throw new Error('bench: no sealed value stored by the subject runs');
  const single = compare(o.records, ms.onSingle, ms.offSingle, { subject: 'encryption on, 1 record per call', baseline: 'encryption off, 1 record per call' });
  const batch50 = compare(o.records, ms.onBatch, ms.offBatch, {
    subject: `encryption on, batches of ${BATCH}`,
    baseline: `encryption off, batches of ${BATCH}`,
  });
  // Each round's subject against its own baseline (run next to it): the median of these paired
  // ratios is less moved by load that changes between rounds than the ratio of medians.
  const paired = (on: number[], off: number[]) => Number(median(on.map((x, i) => off[i]! / x)).toFixed(2));
  const result = {
    scenario: 'ingest-pii',
    date: new Date().toISOString(),
    records: o.records,
    rounds: o.rounds,
    seed: o.seed,
    single,
    batch50,
    pairedRateRatio: { single: paired(ms.onSingle, ms.offSingle), batch50: paired(ms.onBatch, ms.offBatch) },
    sealing: {
      usPerRecord: sealUs,
      shareOfSingle: Number((sealUs / 1000 / (median(ms.offSingle) / o.records)).toFixed(4)),
      shareOfBatch50: Number((sealUs / 1000 / (median(ms.offBatch) / o.records)).toFixed(4)),
    },
    target: 'rateRatio ≥ 0.90 (encryption on within 10 % of encryption off)',
  };
  return { result, file: writeResult('ingest-pii', result) };
}

async function main(): Promise<void> {
  let url = process.env.BENCH_DATABASE_URL;
  let dir: string | undefined;
  let stop: (() => Promise<void>) | undefined;
  if (!url) {
    dir = mkdtempSync(join(tmpdir(), 'cdc-bench-pii-'));
    const server = await startPostgres({ dataDir: join(dir, 'pg') });
    url = server.url;
    stop = server.stop;
  }
  try {
    await migrate(url);
    const db = new pg.Pool({ connectionString: url, max: 4 });
    try {
      const { result, file } = await benchPii({
        db,
        records: Number(process.env.BENCH_RECORDS ?? 2000),
        rounds: Number(process.env.BENCH_ROUNDS ?? 3),
        seed: Number(process.env.BENCH_SEED ?? 1),
      });
      const row = (name: string, c: typeof result.single) => ({
        case: name,
        'on rec/s': c.subject.recordsPerS,
        'off rec/s': c.baseline.recordsPerS,
        'on/off': c.rateRatio,
        'on/off paired': c === result.single ? result.pairedRateRatio.single : result.pairedRateRatio.batch50,
      });
      process.stdout.write(
        `${table([row('1 record per call', result.single), row('batches of 50', result.batch50)])}\n` +
          `sealing alone: ${result.sealing.usPerRecord} µs per record, ${(result.sealing.shareOfSingle * 100).toFixed(1)} % of a single record's time, ` +
          `${(result.sealing.shareOfBatch50 * 100).toFixed(1)} % in batches of 50\n${file}\n`,
      );
    } finally {
      await db.end();
    }
  } finally {
    await stop?.();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1]?.endsWith('pii.ts')) await main();
