// The HIS's database-sync outcomes are a view (infra/db/1010_sync_result_view.sql, docs/dbsync.md
// "Held records"): `held` is read from the record's holds when the outcome is read, so it follows a
// change of holds made anywhere — a later version of the record sent through the API among them —
// in the API answer's form (holdText, holdsOf's order); and a HIS role reads its own rows' outcomes
// only, with no way through the view to another org's rows or holds.
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, emptyDatabase, privateDatabase, uniqueId, uniqueOrg } from '../setup/db.js';
import { resources } from '../../schemas/index.js';
import type { Resource } from '../../schemas/resource.js';
import { syncAll } from '../../shared/dbsync/index.js';
import { bindStatements, createRoleStatements, rolePassword, grantStatements } from '../../shared/dbsync/role.js';
import { createCodeCache, type CodeCache } from '../../shared/codes/index.js';
import { withTx } from '../../shared/db/index.js';
import { addHolds, holdsOf, holdText, type Hold } from '../../shared/holds/index.js';
import { upsertMany, type IngestContext } from '../../shared/ingest/index.js';
import { listMigrations, migrate } from '../../infra/db/migrate.js';
import { sample } from '../../infra/simulators/samples.js';
import { heldNow as heldOf, passportPatient, stageRecord, syncedOutcome, syncEveryOrg } from '../setup/records.js';

// A database of its own: these runs take every org's staging rows (orgs '*').
let priv: Awaited<ReturnType<typeof privateDatabase>>;
let db: pg.Pool;
let codes: CodeCache;
const settings = syncEveryOrg;
const patient = resources.emrPatientInfo!;
const visit = resources.emrActivityInfo!;
const roles: string[] = [];
const clients: pg.Client[] = [];

beforeAll(async () => {
  priv = await privateDatabase('dbsync_view');
  db = priv.db;
  codes = await createCodeCache(db, { refreshMs: 100, flushMs: 100 });
}, 120_000);
afterAll(async () => {
  for (const c of clients) await c.end();
  await codes?.close();
  await priv?.drop();
  const admin = new pg.Client({ connectionString: databaseUrl() });
  await admin.connect();
  for (const r of roles) await admin.query(`DROP ROLE IF EXISTS ${r}`);
  await admin.end();
});

const outcome = (r: Resource, rowId: string) => syncedOutcome(db, r, rowId, { settings, codes });
const heldNow = (r: Resource, rowId: string) => heldOf(db, r, rowId);
const api = (): IngestContext => ({ callId: null, test: false, now: new Date(), caller: 'test', codes });

describe('held is derived from the record’s holds when read', () => {
  it('a later version sent through the API that is held, then one that is not, shows in the staged row’s held', async () => {
    const org = uniqueOrg();
    const id = uniqueId('p');
    const row = await stageRecord(db, patient, passportPatient(org, id, {}));
    expect(await outcome(patient, row)).toEqual({ status: 'created', held: null });

    // A correction through the API (port 8881) with a local sex code not mapped: held for its mapping.
    const held = (await upsertMany(db, patient, [passportPatient(org, id, { genderCode: 'VQ', genderName: undefined })], api()))[0]!;
    expect(held.ok && held.outcome).toMatchObject({ status: 'updated', held: ['mapping:sex/VQ'] });
    expect(await heldNow(patient, row)).toEqual(['mapping:sex/VQ']);

    // Another through the API with a national code: released, and the staged row says so.
    const freed = (await upsertMany(db, patient, [passportPatient(org, id, { genderCode: '2', genderName: '女' })], api()))[0]!;
    expect(freed.ok && freed.outcome).toMatchObject({ status: 'updated', held: [] });
    expect(await heldNow(patient, row)).toBeNull();
  });

  it('a staged record held, corrected through the API: its staged rows say NULL; a refusal among them stays as it was', async () => {
    const org = uniqueOrg();
    const id = uniqueId('p');
    const bad = await stageRecord(db, patient, passportPatient(org, id, { genderCode: 'VR', genderName: undefined, birthDate: '2026-02-30' }));
    const row = await stageRecord(db, patient, passportPatient(org, id, { genderCode: 'VR', genderName: undefined }));
    expect(await outcome(patient, bad)).toMatchObject({ status: 'rejected', held: null });
    expect(await outcome(patient, row)).toEqual({ status: 'created', held: ['mapping:sex/VR'] });
    const fixed = (await upsertMany(db, patient, [passportPatient(org, id, {})], api()))[0]!;
    expect(fixed.ok && fixed.outcome).toMatchObject({ status: 'updated', held: [] });
    expect(await heldNow(patient, row)).toBeNull();
    expect(await db.query(`SELECT status, held FROM staging.sync_result WHERE resource = $1 AND row_id = $2`, [patient.name, bad])).toMatchObject({
      rows: [{ status: 'rejected', held: null }],
    });
  });

  it('is the API answer’s text (holdText), in holdsOf’s order, for codes and ids that need escaping', async () => {
    const org = uniqueOrg();
    const id = uniqueId('v');
    const rowId = String(9_000_000_000 + Math.floor(Math.random() * 1_000_000_000));
    await db.query(
      `INSERT INTO staging.sync_outcome (resource, row_id, status, org_code, record_id, version, inserted_by) VALUES ($1, $2, 'created', $3, $4, 1, current_user)`,
      [visit.name, rowId, org, id],
    );
    const at = (s: number) => new Date(Date.UTC(2026, 11, 4, 8, 0, s));
    const holds: Array<{ hold: Hold; at: Date }> = [
      { hold: { kind: 'rule', field: 'genderCode', rule: 'idConsistency' }, at: at(0) },
      { hold: { kind: 'parent', resource: 'emrPatientInfo', id: 'P"1\\2 中文\u0007' }, at: at(0) },
      { hold: { kind: 'mapping', domain: 'sex', code: 'M é/%"x+&=?#it\'s(*)!~-_.' }, at: at(0) },
      { hold: { kind: 'mapping', domain: 'sex', code: '男\\\t\n😀' }, at: at(0) },
      { hold: { kind: 'mapping', domain: 'activityType', code: 'Az09' }, at: at(1) },
      { hold: { kind: 'mapping', domain: 'activityType', code: '' }, at: at(1) },
    ];
    await withTx(db, (tx) =>
      addHolds(
        tx,
        visit.name,
        holds.map((h) => ({ orgCode: org, id, ...h })),
      ),
    );
    const expected = ((await holdsOf(db, visit.name, [[org, id]])).get(`${org}\u0000${id}`) ?? []).map(holdText);
    expect(expected).toHaveLength(holds.length);
    expect(await heldNow(visit, rowId)).toEqual(expected);
    expect((await db.query(`SELECT held::text AS t FROM staging.sync_result WHERE resource = $1 AND row_id = $2`, [visit.name, rowId])).rows[0].t).toBe(
      (await db.query(`SELECT $1::jsonb::text AS t`, [JSON.stringify(expected)])).rows[0].t,
    );
  });
});

describe('a HIS role reads its own rows’ outcomes only, and no other org’s holds (docs/dbsync.md "Several hospitals")', () => {
  const connectAs = async (orgs: string[]) => {
    const name = `his_${randomBytes(4).toString('hex')}`;
    const pw = rolePassword('x');
    roles.push(name);
    for (const s of [...createRoleStatements(name, pw), ...bindStatements(name, orgs)]) await db.query(s);
    const url = new URL(priv.url);
    url.username = name;
    url.password = pw;
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    clients.push(client);
    return { name, client };
  };
  const insert = async (c: pg.Client, r: Resource, rec: Record<string, unknown>) => {
    const cols: string[] = [];
    const vals: string[] = [];
    for (const [k, v] of Object.entries(rec)) {
      const d = r.fields[k];
      if (!d || v === null || v === undefined) continue;
      cols.push(d.column);
      vals.push(typeof v === 'object' ? JSON.stringify(v) : String(v));
    }
    return (
      await c.query<{ row_id: string }>(
        `INSERT INTO staging.${r.table} (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')}) RETURNING row_id`,
        vals,
      )
    ).rows[0]!.row_id;
  };

  it('sees neither org B’s outcome rows nor their holds: by query, through a refused row of B’s key, or a function of its own', async () => {
    const orgA = uniqueOrg();
    const orgB = uniqueOrg();
    const a = await connectAs([orgA]);
    const b = await connectAs([orgB]);
    const pB = uniqueId('p');
    const vB = uniqueId('v');
    // B's rows: a patient held for its sex code, a visit held for a patient not yet sent.
    const rowPB = await insert(b.client, patient, passportPatient(orgB, pB, { genderCode: 'WB', genderName: undefined }));
    const rowVB = await insert(b.client, visit, sample('emrActivityInfo', { orgCode: orgB, id: vB, patientId: uniqueId('p'), seed: 12 }));
    // A's: its own held patient, and a row for B's org with B's record id (refused: A is bound to orgA).
    const rowPA = await insert(a.client, patient, passportPatient(orgA, uniqueId('p'), { genderCode: 'WA', genderName: undefined }));
    const rowSteal = await insert(a.client, patient, passportPatient(orgB, pB, { genderCode: 'WB', genderName: undefined }));
    const mine = [rowPA, rowSteal];
    // This test's rows (the row ids are each staging table's own sequence): visits first, then patients.
    const ours = (c: pg.Client | pg.Pool) =>
      c.query<{ resource: string; row_id: string; status: string; org_code: string; held: string[] | null }>(
        `SELECT resource, row_id::text, status, org_code, held FROM staging.sync_result
          WHERE (resource = 'emrPatientInfo' AND row_id = ANY($1::bigint[])) OR (resource = 'emrActivityInfo' AND row_id = ANY($2::bigint[]))
          ORDER BY resource, row_id`,
        [[rowPB, rowPA, rowSteal], [rowVB]],
      );
    for (let i = 0; i < 50 && (await ours(db)).rows.length < 4; i++) {
      await syncAll(db, { settings, codes });
      await new Promise((ok) => setTimeout(ok, 100));
    }
    // The front sees every row and B's holds.
    expect((await ours(db)).rows.map((r) => [r.row_id, r.status, r.held])).toEqual([
      [rowVB, 'created', [expect.stringMatching(/^parent:emrPatientInfo\//)]],
      [rowPB, 'created', ['mapping:sex/WB']],
      [rowPA, 'created', ['mapping:sex/WA']],
      [rowSteal, 'rejected', null],
    ]);

    // A: its two rows; the refused one names B's key but shows no hold of B's record.
    expect((await ours(a.client)).rows).toEqual([
      { resource: 'emrPatientInfo', row_id: rowPA, status: 'created', org_code: orgA, held: ['mapping:sex/WA'] },
      { resource: 'emrPatientInfo', row_id: rowSteal, status: 'rejected', org_code: orgB, held: null },
    ]);
    expect((await a.client.query(`SELECT count(*)::int AS n FROM staging.sync_result WHERE org_code = $1 AND status <> 'rejected'`, [orgB])).rows[0].n).toBe(0);
    expect((await a.client.query(`SELECT count(*)::int AS n FROM staging.sync_result WHERE held::text LIKE '%WB%'`)).rows[0].n).toBe(0);
    // Nothing under the view is granted to it.
    for (const sql of ['SELECT * FROM record_hold LIMIT 1', 'SELECT * FROM staging.sync_outcome LIMIT 1']) {
      const e = await a.client.query(sql).then(
        () => null,
        (x: Error & { code?: string }) => x,
      );
      expect(e?.code, sql).toBe('42501');
    }
    // A cheap function of its own in the WHERE runs after the view's filter (security_barrier): it is
    // handed A's rows only, never B's values.
    const notices: string[] = [];
    a.client.on('notice', (n) => notices.push(n.message ?? ''));
    await a.client.query(
      `CREATE FUNCTION pg_temp.peek(a text, b text, c text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS $$ BEGIN RAISE NOTICE 'peek % % %', a, b, c; RETURN true; END $$`,
    );
    const peeked = await a.client.query(`SELECT row_id::text FROM staging.sync_result WHERE pg_temp.peek(org_code, record_id, held::text) ORDER BY row_id`);
    expect(peeked.rows.map((r) => r.row_id)).toEqual(mine);
    expect(notices.filter((n) => n.startsWith('peek'))).toHaveLength(mine.length);
    const peekedNoHeld = await a.client.query(`SELECT row_id::text FROM staging.sync_result WHERE pg_temp.peek(org_code, record_id, status) ORDER BY row_id`);
    expect(peekedNoHeld.rows.map((r) => r.row_id)).toEqual(mine);
    expect(notices.join('\n')).not.toContain(vB);
    expect(notices.join('\n')).not.toContain('WB"');
    expect(notices.filter((n) => n.includes(orgB))).toEqual([expect.stringContaining(`peek ${orgB} ${pB}`), expect.stringContaining(`peek ${orgB} ${pB}`)]);

    // B: its own two, held as the front sees them.
    expect((await ours(b.client)).rows.map((r) => [r.row_id, r.held?.length])).toEqual([
      [rowVB, 1],
      [rowPB, 1],
    ]);
  });
});

describe('migration 1010 on a database with HIS roles', () => {
  it('moves a role’s SELECT from the outcomes’ table to the view: it reads its outcomes after the upgrade without a grant, and the table no more', async () => {
    const name = `heldview_${randomBytes(4).toString('hex')}`;
    const url = await emptyDatabase(name);
    const dir = mkdtempSync(join(tmpdir(), 'cdc-heldview-'));
    const front = new pg.Client({ connectionString: url });
    let his: pg.Client | undefined;
    try {
      const src = resolve(import.meta.dirname, '../../infra/db');
      for (const m of listMigrations(src).filter((x) => x.name < '1010')) cpSync(join(src, m.name), join(dir, m.name));
      await migrate(url, dir);
      await front.connect();
      const role = `his_${randomBytes(4).toString('hex')}`;
      const pw = rolePassword('x');
      roles.push(role);
      // The release before: the grants of bin/cdc-dbsync on the outcomes' table.
      for (const s of [...createRoleStatements(role, pw), ...grantStatements(role)]) await front.query(s);
      const org = uniqueOrg();
      const id = uniqueId('p');
      await front.query(
        `INSERT INTO staging.sync_result (resource, row_id, status, org_code, record_id, version, inserted_by, held) VALUES ('emrPatientInfo', 1, 'created', $1, $2, 1, $3, '["mapping:sex/Q"]')`,
        [org, id, role],
      );
      await front.query(
        `INSERT INTO record_hold (resource, org_code, record_id, kind, target, value, since) VALUES ('emrPatientInfo', $1, $2, 'mapping', 'sex', 'Q', now())`,
        [org, id],
      );
      expect(await migrate(url)).toEqual(
        listMigrations()
          .filter((x) => x.name >= '1010')
          .map((x) => x.name),
      );
      const hu = new URL(url);
      hu.username = role;
      hu.password = pw;
      his = new pg.Client({ connectionString: hu.toString() });
      await his.connect();
      expect((await his.query(`SELECT row_id::text, held FROM staging.sync_result`)).rows).toEqual([{ row_id: '1', held: ['mapping:sex/Q'] }]);
      const e = await his.query('SELECT 1 FROM staging.sync_outcome').then(
        () => null,
        (x: Error & { code?: string }) => x,
      );
      expect(e?.code).toBe('42501');
      // The held derived now: released, it says so.
      await front.query(`DELETE FROM record_hold WHERE org_code = $1`, [org]);
      expect((await his.query(`SELECT held FROM staging.sync_result`)).rows).toEqual([{ held: null }]);
    } finally {
      await his?.end();
      await front.end();
      const a = new pg.Client({ connectionString: databaseUrl() });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await a.end();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
