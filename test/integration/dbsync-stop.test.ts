// A clean stop of the dbsync function during a run (docs/dbsync.md "Stopping"): close() waits for the
// run a nudge started — which ends after the batch it is taking — before it closes the pool: no
// "Cannot use a pool after calling end", no error line, every row taken once or left waiting whole.
import { afterAll, describe, expect, it, vi } from 'vitest';
import { privateDatabase, uniqueId, uniqueOrg } from '../setup/db.js';
import { resources } from '../../schemas/index.js';
import { stagingTable } from '../../shared/dbsync/index.js';
import { sample } from '../../infra/simulators/samples.js';

// A database of its own: another file's sync run (orgs '*') would take these staging rows.
const priv = await privateDatabase('dbsync_stop');
process.env.DATABASE_URL = priv.url;
process.env.HIS_ALLOW = '127.0.0.1/8';
process.env.DBSYNC_BATCH = '25';
const { default: dbsync } = await import('../../functions/dbsync/handler.js');
const db = priv.db;
let closed = false;
afterAll(async () => {
  if (!closed) await dbsync.close?.();
  await priv.drop();
});

describe('stopping the dbsync function', () => {
  it('close() during a nudged run waits for it: no error line, nothing taken after, every row taken once or waiting', { timeout: 60_000 }, async () => {
    await dbsync.init?.();
    const patient = resources.emrPatientInfo!;
    const org = uniqueOrg();
    const recs = Array.from({ length: 1500 }, (_, i) => sample('emrPatientInfo', { orgCode: org, id: uniqueId(`stop${i}`), seed: i + 1 }));
    const names = Object.keys(recs[0]!).filter((n) => patient.fields[n] && typeof recs[0]![n] !== 'object');
    const cols = names.map((n) => patient.fields[n]!.column);
    const params: unknown[] = [];
    const tuples = recs.map(
      (rec) => `(${names.map((n) => (params.push(rec[n] === undefined || rec[n] === null ? null : String(rec[n])), `$${params.length}`)).join(', ')})`,
    );
    await db.query(`INSERT INTO ${stagingTable(patient)} (${cols.join(', ')}) VALUES ${tuples.join(', ')}`, params);
    const taken = async () =>
      Number((await db.query(`SELECT count(*) AS n FROM staging.sync_result WHERE resource = 'emrPatientInfo' AND org_code = $1`, [org])).rows[0].n);

    const lines: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
      lines.push(String(chunk));
      return (write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
    });
    try {
      const nudged = await dbsync.app.request('/nudge', { method: 'POST', headers: { 'x-forwarded-for': '127.0.0.1' } });
      expect(nudged.status).toBe(202);
      // The run is under way: some of the rows are taken, not all.
      const end = Date.now() + 20_000;
      while ((await taken()) === 0 && Date.now() < end) await new Promise((ok) => setTimeout(ok, 10));
      const before = await taken();
      expect(before).toBeGreaterThan(0);
      expect(before).toBeLessThan(recs.length);
      await dbsync.close?.();
      closed = true;
      const atClose = await taken();
      await new Promise((ok) => setTimeout(ok, 500));
      // Nothing was taken after close() returned: the run had ended.
      expect(await taken()).toBe(atClose);
    } finally {
      spy.mockRestore();
    }
    const errors = lines.filter((l) => l.includes('"level":"error"'));
    expect(errors).toEqual([]);
    // Each row taken once (one result, marked taken) or left waiting whole for the next start.
    const rows = await db.query(
      `SELECT s.taken_at IS NOT NULL AS taken, (SELECT count(*) FROM staging.sync_result x WHERE x.resource = 'emrPatientInfo' AND x.row_id = s.row_id)::int AS results
         FROM ${stagingTable(patient)} s WHERE s.org_code = $1`,
      [org],
    );
    expect(rows.rows.length).toBe(recs.length);
    for (const x of rows.rows) expect(x.results).toBe(x.taken ? 1 : 0);
  });
});
