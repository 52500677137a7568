// The quality statistics of database sync survive a kill -9 mid-batch (docs/dbsync.md "Exactly
// once"): a real process is killed inside a batch's second wave, the next run takes the rest — the
// refusals' log rows (ingest_rejection, the 数据质量 page's counts) are there once per refused row, the
// code sightings and records held (code_observed) count every stored row once, none lost with the
// killed process's buffer.
import { spawn } from 'node:child_process';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { privateDatabase, uniqueId, uniqueOrg } from '../setup/db.js';
import { resources } from '../../schemas/index.js';
import type { Resource } from '../../schemas/resource.js';
import { syncResource } from '../../shared/dbsync/index.js';
import { createCodeCache, type CodeCache } from '../../shared/codes/index.js';
import { stageRecord, passportPatient, syncEveryOrg } from '../setup/records.js';

// A database of its own: another file's sync run (orgs '*') would take these staging rows.
let priv: Awaited<ReturnType<typeof privateDatabase>>;
let db: pg.Pool;
const settings = syncEveryOrg;
let codes: CodeCache;
beforeAll(async () => {
  priv = await privateDatabase('dbsync_counts');
  db = priv.db;
  codes = await createCodeCache(db, { refreshMs: 100, flushMs: 100 });
}, 120_000);
afterAll(async () => {
  await codes?.close();
  await priv?.drop();
});

const stage = (r: Resource, rec: Record<string, unknown>) => stageRecord(db, r, rec);
const patientOf = passportPatient;

describe('a run killed mid-batch', () => {
  it('leaves every refusal logged once and every code sighting counted once', { timeout: 60_000 }, async () => {
    const r = resources.emrPatientInfo!;
    const org = uniqueOrg();
    const id = uniqueId('p');
    const others = Array.from({ length: 6 }, () => uniqueId('p'));
    const refused = Array.from({ length: 3 }, () => uniqueId('p'));
    // One batch, two waves: the record's second version waits for the first's wave. Each stored row
    // carries the hospital's own sex code ZQ (held for its mapping); three rows are refused.
    const rows = [await stage(r, patientOf(org, id, { genderCode: 'ZQ', genderName: '男' }))];
    for (const o of others) rows.push(await stage(r, patientOf(org, o, { genderCode: 'ZQ', genderName: '男' })));
    for (const x of refused) rows.push(await stage(r, patientOf(org, x, { birthDate: '2026-02-30' })));
    rows.push(await stage(r, patientOf(org, id, { genderCode: 'ZQ', genderName: '男', patientName: '第二版' })));

    const child = spawn(process.execPath, ['--import', 'tsx', 'test/integration/dbsync-count-child.ts'], {
      env: { ...process.env, DBSYNC_TEST_DB: priv.url, DBSYNC_TEST_RESOURCE: r.name },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((ok, fail) => {
      child.stdout!.on('data', (b: Buffer) => b.toString().includes('second wave') && ok());
      child.once('exit', (code) => fail(new Error(`child exited (${code}) before the second wave`)));
    });
    child.kill('SIGKILL');
    await new Promise((ok) => child.once('exit', ok));

    // The next run takes the rest.
    for (let i = 0; i < 100; i++) {
      await syncResource(db, r, { settings, codes });
      const n = await db.query(`SELECT count(*)::int AS n FROM staging.sync_result WHERE resource = $1 AND row_id = ANY($2::bigint[])`, [r.name, rows]);
      if (n.rows[0].n === rows.length) break;
      await new Promise((ok) => setTimeout(ok, 100));
    }
    await codes.flush();
    const outcomes = await db.query(
      `SELECT status, count(*)::int AS n FROM staging.sync_result WHERE resource = $1 AND row_id = ANY($2::bigint[]) GROUP BY status ORDER BY status`,
      [r.name, rows],
    );
    expect(outcomes.rows).toEqual([
      { status: 'created', n: 7 },
      { status: 'rejected', n: 3 },
      { status: 'updated', n: 1 },
    ]);
    const rejections = await db.query(`SELECT record_id, count(*)::int AS n FROM ingest_rejection WHERE org_code = $1 GROUP BY record_id ORDER BY record_id`, [
      org,
    ]);
    expect(rejections.rows).toEqual([...refused].sort().map((x) => ({ record_id: x, n: 1 })));
    const seen = await db.query(
      `SELECT seen_count::int AS seen, records_held AS held FROM code_observed WHERE org_code = $1 AND domain = 'sex' AND local_code = 'ZQ'`,
      [org],
    );
    // Eight stored rows carried ZQ (the record's two versions among them); seven records are held for it.
    expect(seen.rows).toEqual([{ seen: 8, held: 7 }]);
  });
});
