// The HIS's database role for database sync (shared/dbsync/role.ts): with the statements
// bin/cdc-dbsync runs, a role that connects with its password may insert into and update the staging
// tables and read its rows' outcomes — and is refused everything else: the front's own tables, the
// outcome table's writes, deleting staging rows, creating objects. The statements are the ones the
// SQL scanner reads for openGauss (test/unit/sql-dialect.test.ts covers shared/).
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, privateDatabase, testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { readFileSync } from 'node:fs';
import { bindStatements, createRoleStatements, rolePassword, frontLockStatements, grantStatements } from '../../shared/dbsync/role.js';
import { assertSeesEveryRow, lockKeyOf, syncAll } from '../../shared/dbsync/index.js';
import { resources } from '../../schemas/index.js';

const db = testDb();
const role = `his_${randomBytes(4).toString('hex')}`;
const password = rolePassword('x');
let his: pg.Client;

beforeAll(async () => {
  for (const s of createRoleStatements(role, password)) await db.query(s);
  const url = new URL(databaseUrl());
  url.username = role;
  url.password = password;
  his = new pg.Client({ connectionString: url.toString() });
  await his.connect();
});
afterAll(async () => {
  await his?.end();
  await db.query(`DROP OWNED BY ${role}`);
  await db.query(`DROP ROLE ${role}`);
});

/** The dbsync function's settings for a test run: every org, a batch of 500, nothing nudged. */
const syncSettings = () => ({
  batch: 500,
  orgs: '*' as const,
  runMs: 30_000,
  installationOrg: null,
  testOrgs: new Set<string>(),
  pushNudgeUrl: '',
  warningNudgeUrl: '',
});

const refused = async (sql: string, params: unknown[] = []) => {
  const err = await his.query(sql, params).then(
    () => null,
    (e: Error & { code?: string }) => e,
  );
  expect(err, sql).not.toBeNull();
  expect(err!.code, `${sql}: ${err!.message}`).toBe('42501'); // insufficient_privilege
};

describe('the HIS role', () => {
  it('inserts and updates staging rows, and reads their outcomes', async () => {
    const org = uniqueOrg();
    const id = uniqueId('p');
    const ins = await his.query<{ row_id: string }>(
      `INSERT INTO staging.emr_patient_info (org_code, id, patient_name) VALUES ($1, $2, '测试') RETURNING row_id`,
      [org, id],
    );
    expect(ins.rows[0]!.row_id).toMatch(/^\d+$/);
    const upd = await his.query(`UPDATE staging.emr_patient_info SET patient_name = '测试二' WHERE row_id = $1`, [ins.rows[0]!.row_id]);
    expect(upd.rowCount).toBe(1);
    await his.query(`SELECT status, error_code, issues FROM staging.sync_result WHERE resource = 'emrPatientInfo' AND row_id = $1`, [ins.rows[0]!.row_id]);
  });

  it('computes local times in the hospital’s zone: a LOCALTIMESTAMP the HIS inserts is stored as now, not eight hours off', async () => {
    expect((await his.query('SHOW timezone')).rows[0].TimeZone).toBe('Asia/Shanghai');
    expect((await his.query('SHOW datestyle')).rows[0].DateStyle).toBe('ISO, YMD');
    const org = uniqueOrg();
    const id = uniqueId('p');
    const ins = await his.query<{ row_id: string }>(
      `INSERT INTO staging.emr_patient_info (org_code, id, patient_name, gender_code, birth_date, operation_time)
       VALUES ($1, $2, '测试', '1', '1980-01-01', LOCALTIMESTAMP(0)::text) RETURNING row_id`,
      [org, id],
    );
    for (let i = 0; i < 50; i++) {
      await syncAll(db, { settings: syncSettings() });
      const r = await db.query('SELECT 1 FROM staging.sync_result WHERE resource = $1 AND row_id = $2', ['emrPatientInfo', ins.rows[0]!.row_id]);
      if (r.rowCount) break;
    }
    const stored = await db.query<{ t: Date }>('SELECT operation_time AS t FROM emr_patient_info WHERE org_code = $1 AND id = $2', [org, id]);
    expect(Math.abs(stored.rows[0]!.t.getTime() - Date.now())).toBeLessThan(120_000);
  });

  it('is refused the front’s own tables, the outcomes’ writes, deletes and DDL', async () => {
    await refused('SELECT * FROM emr_patient_info LIMIT 1');
    await refused('SELECT * FROM outbox LIMIT 1');
    await refused('SELECT * FROM his_caller LIMIT 1');
    await refused(
      `INSERT INTO outbox (destination, resource, org_code, record_id, version, op, deadline_class, payload) VALUES ('national', 'x', 'x', 'x', 1, 'upsert', 'realtime', '{}')`,
    );
    await refused(`UPDATE staging.sync_result SET status = 'created'`);
    await refused(`INSERT INTO staging.sync_result (resource, row_id, status) VALUES ('x', 1, 'created')`);
    await refused(`DELETE FROM staging.emr_patient_info WHERE row_id = 0`);
    await refused('CREATE TABLE staging.mine (x int)');
    await refused('CREATE TABLE public.mine (x int)');
  });

  it('cannot set a row’s row id or receive time: the database sets them (docs/dbsync.md)', async () => {
    const org = uniqueOrg();
    // inserted_at is the record's receive time, where its deadline clock starts; a HIS that could
    // write it would date its own lateness. A row id written ahead of the sequence would make the
    // next row of every other HIS writing the table fail with a duplicate key.
    await refused(`INSERT INTO staging.emr_patient_info (org_code, id, patient_name, inserted_at) VALUES ($1, $2, '测试', '2300-01-01')`, [org, uniqueId('p')]);
    const next = await db.query<{ n: string }>(`SELECT last_value + 5 AS n FROM staging.emr_patient_info_row_id_seq`);
    await refused(`INSERT INTO staging.emr_patient_info (row_id, org_code, id, patient_name) VALUES ($1, $2, $3, '测试')`, [
      next.rows[0]!.n,
      org,
      uniqueId('p'),
    ]);
    const ins = await his.query<{ row_id: string }>(
      `INSERT INTO staging.emr_patient_info (org_code, id, patient_name) VALUES ($1, $2, '测试') RETURNING row_id`,
      [org, uniqueId('p')],
    );
    await refused(`UPDATE staging.emr_patient_info SET inserted_at = '2000-01-01' WHERE row_id = $1`, [ins.rows[0]!.row_id]);
    await refused(`UPDATE staging.emr_patient_info SET row_id = row_id + 1000000 WHERE row_id = $1`, [ins.rows[0]!.row_id]);
    // taken_at is the front's: a row the HIS marked taken would never be taken.
    await refused(`UPDATE staging.emr_patient_info SET taken_at = now() WHERE row_id = $1`, [ins.rows[0]!.row_id]);
    await refused(`UPDATE staging.emr_patient_info SET taken_at = NULL WHERE row_id = $1`, [ins.rows[0]!.row_id]);
  });

  it('reads no staging value but a row’s bookkeeping: no name, ID number, phone or address — its own org’s or another’s', async () => {
    const org = uniqueOrg();
    const ins = await his.query<{ row_id: string }>(
      `INSERT INTO staging.emr_patient_info (org_code, id, patient_name, id_card, tel) VALUES ($1, $2, '测试', '11010519491231002X', '13800000000') RETURNING row_id`,
      [org, uniqueId('p')],
    );
    const rowId = ins.rows[0]!.row_id;
    for (const col of ['patient_name', 'id_card', 'tel', 'current_addr_detail', 'contacts_tel'])
      await refused(`SELECT ${col} FROM staging.emr_patient_info WHERE row_id = $1`, [rowId]);
    await refused('SELECT * FROM staging.emr_inf_report LIMIT 1');
    // A HIS reading every staging row's content is what the grant must not allow: one front often
    // serves several hospitals, and a row keeps its name after it is taken.
    await refused(`SELECT patient_name FROM staging.emr_patient_info WHERE org_code <> $1 LIMIT 1`, [org]);
    // What the docs' queries need: the row id, its org and record id, its receive time.
    const own = await his.query(`SELECT row_id, org_code, id, inserted_at FROM staging.emr_patient_info WHERE row_id = $1`, [rowId]);
    expect(own.rows).toHaveLength(1);
    expect((await his.query(`UPDATE staging.emr_patient_info SET tel = NULL WHERE row_id = $1 AND id IS NOT NULL`, [rowId])).rowCount).toBe(1);
  });

  it('cannot lock a staging table: a lock held in an open transaction would stall every sync run and the lag query', async () => {
    await his.query('BEGIN');
    try {
      for (const mode of ['ACCESS EXCLUSIVE', 'EXCLUSIVE', 'SHARE']) {
        await refused(`LOCK TABLE staging.emr_patient_info IN ${mode} MODE`);
        await his.query('ROLLBACK');
        await his.query('BEGIN');
      }
    } finally {
      await his.query('ROLLBACK');
    }
  });

  it('a role granted by an earlier version (table-wide INSERT, UPDATE) loses the two columns when granted again', async () => {
    await db.query(`GRANT INSERT, UPDATE ON staging.emr_ex_lab TO ${role}`);
    await his.query(`INSERT INTO staging.emr_ex_lab (org_code, id, inserted_at) VALUES ('1', $1, now())`, [uniqueId('l')]);
    for (const s of grantStatements(role)) await db.query(s);
    await refused(`INSERT INTO staging.emr_ex_lab (org_code, id, inserted_at) VALUES ('1', $1, now())`, [uniqueId('l')]);
    await his.query(`INSERT INTO staging.emr_ex_lab (org_code, id) VALUES ('1', $1)`, [uniqueId('l')]);
  });

  it('grant statements are idempotent (run again after an upgrade)', async () => {
    for (const s of grantStatements(role)) await db.query(s);
    await his.query(`INSERT INTO staging.emr_ex_lab (org_code, id) VALUES ('1', $1)`, [uniqueId('l')]);
  });

  it('the SQL examples of docs/dbsync.md run as the HIS role and every row they write is taken, none refused', async () => {
    const doc = readFileSync('docs/dbsync.md', 'utf8');
    const block = /## SQL examples\s+```sql\n([\s\S]*?)```/.exec(doc)![1]!;
    const statements = block
      .split(/;\s*\n/)
      .map((x) => x.replace(/^\s*--.*$/gm, '').trim())
      .filter(Boolean);
    const written: Array<{ resource: string; rowId: string }> = [];
    for (const st of statements) {
      const res = await his.query(st.startsWith('INSERT') ? `${st} RETURNING row_id` : st);
      const table = /^INSERT INTO staging\.(\w+)/.exec(st)?.[1];
      if (table) written.push({ resource: table, rowId: String(res.rows[0].row_id) });
    }
    expect(written.length).toBeGreaterThanOrEqual(3);
    const byTable = Object.fromEntries(Object.values((await import('../../schemas/index.js')).resources).map((r) => [r.table, r.name]));
    const settings = syncSettings();
    let rows: Array<{ status: string; error_msg: string | null }> = [];
    for (let i = 0; i < 50; i++) {
      await syncAll(db, { settings });
      rows = (
        await db.query(
          `SELECT r.status, r.error_msg FROM staging.sync_result r JOIN (SELECT unnest($1::varchar[]) AS resource, unnest($2::bigint[]) AS row_id) w ON w.resource = r.resource AND w.row_id = r.row_id`,
          [written.map((w) => byTable[w.resource]), written.map((w) => w.rowId)],
        )
      ).rows;
      if (rows.length === written.length) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(rows).toHaveLength(written.length);
    for (const r of rows) expect(r.status, r.error_msg ?? '').not.toBe('rejected');
  });
});

describe('a front serving several hospitals: one role per HIS, bound to its orgs (docs/dbsync.md "Several hospitals")', () => {
  const orgA = uniqueOrg();
  const orgB = uniqueOrg();
  // A database of its own: the sync runs here take every waiting row, other files' rows included.
  let priv: Awaited<ReturnType<typeof privateDatabase>>;
  const made: Array<{ name: string; client: pg.Client }> = [];
  const connectAs = async (orgs: string[]) => {
    const name = `his_${randomBytes(4).toString('hex')}`;
    const pw = rolePassword('x');
    for (const s of [...createRoleStatements(name, pw), ...bindStatements(name, orgs)]) await priv.db.query(s);
    const url = new URL(priv.url);
    url.username = name;
    url.password = pw;
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    made.push({ name, client });
    return { name, client };
  };
  let a: { name: string; client: pg.Client };
  let b: { name: string; client: pg.Client };
  beforeAll(async () => {
    priv = await privateDatabase('dbsync_roles');
    a = await connectAs([orgA]);
    b = await connectAs([orgB]);
  });
  afterAll(async () => {
    for (const m of made) await m.client.end();
    await priv?.drop();
    for (const m of made) await db.query(`DROP ROLE ${m.name}`);
  });
  const insert = async (c: pg.Client, org: string | null, id: string) =>
    (
      await c.query<{ row_id: string }>(
        `INSERT INTO staging.emr_patient_info (org_code, id, patient_name, gender_code, birth_date, operation_time) VALUES ($1, $2, '测试', '1', '1980-01-01', '2026-12-04 08:00:00') RETURNING row_id`,
        [org, id],
      )
    ).rows[0]!.row_id;
  const outcomes = async (rowIds: string[]) => {
    const settings = syncSettings();
    for (let i = 0; i < 50; i++) {
      await syncAll(priv.db, { settings });
      const rows = (
        await priv.db.query<{ row_id: string; status: string; org_code: string | null; error_code: string | null; error_msg: string | null }>(
          `SELECT row_id::text, status, org_code, error_code, error_msg FROM staging.sync_result WHERE resource = 'emrPatientInfo' AND row_id = ANY($1::bigint[]) ORDER BY row_id`,
          [rowIds],
        )
      ).rows;
      if (rows.length === rowIds.length) return new Map(rows.map((r) => [r.row_id, r]));
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('rows not taken');
  };

  it('takes a role’s rows for its own orgs, and refuses a row it writes for another org, naming the role', async () => {
    const own = await insert(a.client, orgA, uniqueId('p'));
    const other = await insert(a.client, orgB, uniqueId('p'));
    const theirs = await insert(b.client, orgB, uniqueId('p'));
    // No org: a role bound to one org writes for it, as an API caller bound to one org does.
    const none = await insert(a.client, null, uniqueId('p'));
    const got = await outcomes([own, other, theirs, none]);
    expect(got.get(own)).toMatchObject({ status: 'created', org_code: orgA });
    expect(got.get(theirs)).toMatchObject({ status: 'created', org_code: orgB });
    expect(got.get(none)).toMatchObject({ status: 'created', org_code: orgA });
    expect(got.get(other)).toMatchObject({ status: 'rejected', error_code: 'FORBIDDEN' });
    expect(got.get(other)!.error_msg).toContain(a.name);
    expect(got.get(other)!.error_msg).toContain(orgB);
    expect(
      (
        await priv.db.query(
          'SELECT count(*)::int AS n FROM emr_patient_info WHERE org_code = $1 AND id IN (SELECT id FROM staging.emr_patient_info WHERE row_id = $2)',
          [orgB, other],
        )
      ).rows[0].n,
    ).toBe(0);
  });

  it('shows a role, and lets it change, only its own rows and their outcomes; no role names who wrote a row', async () => {
    const theirs = await insert(b.client, orgB, uniqueId('p'));
    const mine = await insert(a.client, orgA, uniqueId('p'));
    // Another HIS's row: not seen, not changed (row-level security), whatever the WHERE.
    expect((await a.client.query('SELECT row_id FROM staging.emr_patient_info WHERE row_id = $1', [theirs])).rows).toEqual([]);
    expect((await a.client.query(`UPDATE staging.emr_patient_info SET patient_name = '改写' WHERE row_id = $1`, [theirs])).rowCount).toBe(0);
    expect((await b.client.query(`UPDATE staging.emr_patient_info SET patient_name = '测试二' WHERE row_id = $1`, [theirs])).rowCount).toBe(1);
    for (const sql of [
      `INSERT INTO staging.emr_patient_info (org_code, id, inserted_by) VALUES ('${orgA}', '${uniqueId('p')}', '${b.name}')`,
      `UPDATE staging.emr_patient_info SET inserted_by = '${a.name}' WHERE row_id = ${theirs}`,
    ]) {
      const e = await b.client.query(sql).then(
        () => null,
        (x: Error & { code?: string }) => x,
      );
      expect(e?.code, sql).toBe('42501');
    }
    const row = (await priv.db.query('SELECT inserted_by, patient_name FROM staging.emr_patient_info WHERE row_id = $1', [theirs])).rows[0];
    expect(row).toEqual({ inserted_by: b.name, patient_name: '测试二' });
    // The outcomes: each role reads its own rows' only.
    await outcomes([theirs, mine]);
    const seen = async (c: pg.Client) =>
      (
        await c.query<{ row_id: string }>(`SELECT row_id::text FROM staging.sync_result WHERE resource = 'emrPatientInfo' AND row_id = ANY($1::bigint[])`, [
          [theirs, mine],
        ])
      ).rows.map((x) => x.row_id);
    expect(await seen(a.client)).toEqual([mine]);
    expect(await seen(b.client)).toEqual([theirs]);
  });

  it("keeps the front's advisory locks from the HIS roles: a table's sync or a record's link cannot be held by a HIS, whatever its org", async () => {
    const r = resources.emrPatientInfo!;
    // Before: any role may take any key, the front's own among them.
    expect((await a.client.query('SELECT pg_try_advisory_lock($1::bigint) AS ok', [lockKeyOf(r)])).rows[0].ok).toBe(true);
    await a.client.query('SELECT pg_advisory_unlock_all()');
    for (const s of await frontLockStatements(priv.db)) await priv.db.query(s);
    for (const sql of [
      'SELECT pg_advisory_lock($1::bigint)',
      'SELECT pg_try_advisory_lock($1::bigint)',
      'SELECT pg_advisory_lock_shared($1::bigint)',
      'SELECT pg_try_advisory_lock_shared($1::bigint)',
      'SELECT pg_try_advisory_xact_lock($1::bigint)',
      'SELECT pg_advisory_lock(1, 2)',
    ]) {
      const e = await a.client.query(sql, sql.includes('$1') ? [lockKeyOf(r)] : []).then(
        () => null,
        (x: Error & { code?: string }) => x,
      );
      expect(e?.code, sql).toBe('42501');
    }
    // The front's own user still takes them, and the sync runs.
    const front = await priv.db.connect();
    try {
      expect((await front.query('SELECT pg_try_advisory_lock($1::bigint) AS ok', [lockKeyOf(r)])).rows[0].ok).toBe(true);
      await front.query('SELECT pg_advisory_unlock_all()');
    } finally {
      front.release();
    }
    const row = await insert(a.client, orgA, uniqueId('p'));
    await outcomes([row]);
  });

  it('the sync refuses to run as a user that does not own the staging tables: it would see no HIS row', async () => {
    const e = await syncAll(a.client as unknown as pg.Pool, {
      settings: { ...syncSettings(), runMs: 1000 },
    }).then(
      () => null,
      (x: Error) => x,
    );
    expect(e?.message).toMatch(new RegExp(`database user ${a.name} does not own the staging tables`));
  });

  it('a user that does not own them but passes row-level security by its role (BYPASSRLS; a superuser, an openGauss sysadmin) may run it', async () => {
    const seen = async () => Number((await a.client.query('SELECT count(*) AS n FROM staging.emr_patient_info')).rows[0].n);
    const own = await seen();
    await priv.db.query(`ALTER ROLE ${a.name} BYPASSRLS`);
    try {
      // What the attribute means: every HIS's outcome rows, not only its own.
      expect(await seen()).toBeGreaterThan(own);
      await expect(assertSeesEveryRow(a.client)).resolves.toBeUndefined();
    } finally {
      await priv.db.query(`ALTER ROLE ${a.name} NOBYPASSRLS`);
    }
    await expect(assertSeesEveryRow(a.client)).rejects.toThrow(`database user ${a.name} does not own the staging tables`);
  });

  it('rebinding replaces the orgs; * unbinds', async () => {
    for (const s of bindStatements(a.name, `${orgA},${orgB}`)) await priv.db.query(s);
    const both = await insert(a.client, orgB, uniqueId('p'));
    expect((await outcomes([both])).get(both)).toMatchObject({ status: 'created', org_code: orgB });
    for (const s of bindStatements(a.name, '*')) await priv.db.query(s);
    expect((await priv.db.query('SELECT count(*)::int AS n FROM dbsync_role_org WHERE role_name = $1', [a.name])).rows[0].n).toBe(0);
    expect(() => bindStatements(a.name, 'bad code!')).toThrow(/org code/);
  });
});
