// Database sync and the HIS's own transactions (docs/dbsync.md "Taking a row", "Rows held by a HIS
// transaction"): a row being taken stays locked until it is marked taken, so a HIS UPDATE meanwhile
// waits and then changes nothing — it is never lost; a taken row cannot be updated at all; a row an
// open HIS transaction holds keeps back only the later rows of its own record, of its own role (the
// run goes on past them); a row without an org is the same record as its role's rows with one; a
// database fault in one table leaves the other tables to the run. Real HIS roles on a database of
// their own, the real sync.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { resources } from '../../schemas/index.js';
import { syncAll, syncResource, type SyncOptions } from '../../shared/dbsync/index.js';
import { bindStatements, createRoleStatements, rolePassword } from '../../shared/dbsync/role.js';
import { privateDatabase, testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { syncEveryOrg } from '../setup/records.js';

const patients = resources.emrPatientInfo!;
let priv: Awaited<ReturnType<typeof privateDatabase>>;
let db: pg.Pool;
type His = { name: string; url: string; client: pg.Client; orgs: string[] };
const made: His[] = [];
const clients: pg.Client[] = [];

const connect = async (url: string) => {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  clients.push(c);
  return c;
};
/** A HIS role bound to its orgs, as bin/cdc-dbsync makes it, and a connection of its own. */
const hisRole = async (orgs: string[]): Promise<His> => {
  const name = `his_${randomBytes(4).toString('hex')}`;
  const pw = rolePassword('x');
  for (const s of [...createRoleStatements(name, pw), ...bindStatements(name, orgs)]) await priv.db.query(s);
  const u = new URL(priv.url);
  u.username = name;
  u.password = pw;
  const his = { name, url: u.toString(), client: await connect(u.toString()), orgs };
  made.push(his);
  return his;
};

beforeAll(async () => {
  priv = await privateDatabase('dbsync_locks');
  db = new pg.Pool({ connectionString: priv.url, max: 6 });
});
afterAll(async () => {
  for (const c of clients) await c.end().catch(() => undefined);
  await db?.end();
  await priv?.drop();
  const admin = testDb();
  for (const m of made) await admin.query(`DROP ROLE ${m.name}`);
});

/** A patient row as the HIS writes it; `operator_id` tells its versions apart. */
const stagePatient = async (c: pg.Client, org: string | null, id: string, operator: string, name = '测试') =>
  (
    await c.query<{ row_id: string }>(
      `INSERT INTO staging.emr_patient_info (org_code, id, patient_name, gender_code, birth_date, id_card_type_code, id_card, tel, operation_time, operator_id)
       VALUES ($1, $2, $3, '2', '1949-12-31', '01', '11010519491231002X', '13800000000', '2026-12-07 08:00:00', $4) RETURNING row_id`,
      [org, id, name, operator],
    )
  ).rows[0]!.row_id;

const outcomesOf = async (rowIds: string[]) =>
  new Map(
    (
      await db.query<{ row_id: string; status: string; version: number | null }>(
        `SELECT row_id::text, status, version FROM staging.sync_outcome WHERE resource = 'emrPatientInfo' AND row_id = ANY($1::bigint[])`,
        [rowIds],
      )
    ).rows.map((x) => [x.row_id, x]),
  );
const storedOperator = async (org: string, id: string) =>
  (await db.query<{ operator_id: string }>('SELECT operator_id FROM emr_patient_info WHERE org_code = $1 AND id = $2', [org, id])).rows[0]?.operator_id;
const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));
/** What a promise settled to within ms, or 'waiting'. */
const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, sleep(ms).then(() => 'waiting' as const)]);

/** Log lines written while fn runs, parsed. */
async function logsOf<T>(fn: () => Promise<T>): Promise<{ out: T; lines: Array<Record<string, unknown>> }> {
  const lines: Array<Record<string, unknown>> = [];
  const write = process.stdout.write.bind(process.stdout);
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    const text = chunk.toString();
    for (const l of text.split('\n'))
      if (l.startsWith('{'))
        try {
          lines.push(JSON.parse(l));
        } catch {
          // not a log line
        }
    return write(chunk);
  });
  try {
    return { out: await fn(), lines };
  } finally {
    spy.mockRestore();
  }
}

describe('a HIS UPDATE while its row is being taken', () => {
  it('waits for the row to be taken, then changes nothing: no committed update is lost', async () => {
    const org = uniqueOrg();
    const his = await hisRole([org]);
    const id = uniqueId('p');
    // One batch of two waves: the record's second version waits for the first's wave.
    await stagePatient(his.client, org, id, 'v1');
    await stagePatient(his.client, org, uniqueId('p'), 'o1');
    const second = await stagePatient(his.client, org, id, 'v2');
    let update: Promise<pg.QueryResult> | undefined;
    let early: unknown;
    // Inside the first wave (the batch claimed and read, the second wave not stored yet), the HIS
    // corrects the second version, as rule 1 allows while the row waits.
    const beforeCommit = async () => {
      if (update) return;
      update = his.client.query(`UPDATE staging.emr_patient_info SET operator_id = 'u1' WHERE taken_at IS NULL AND row_id = $1 RETURNING row_id`, [second]);
      early = await within(
        update.then((r) => r.rowCount),
        500,
      );
    };
    const run = await syncResource(db, patients, { settings: syncEveryOrg, beforeCommit });
    expect(run.taken).toBe(3);
    const updated = (await update!).rowCount;
    const stored = await storedOperator(org, id);
    // An UPDATE that found the row waiting is in the stored record …
    if (updated === 1) expect(stored).toBe('u1');
    // … and here it waited for the row to be taken, and found it taken.
    expect(early).toBe('waiting');
    expect(updated).toBe(0);
    expect(stored).toBe('v2');
  });

  it('a HIS transaction that would lock a row being taken does not make the run fail (statement timeout 1 s)', { timeout: 30_000 }, async () => {
    const org = uniqueOrg();
    const his = await hisRole([org]);
    const other = await connect(his.url);
    const id = uniqueId('p');
    const rows = [await stagePatient(his.client, org, id, 'v1'), await stagePatient(his.client, org, uniqueId('p'), 'o1')];
    rows.push(await stagePatient(his.client, org, id, 'v2'));
    const strict = new pg.Pool({ connectionString: priv.url, max: 4, options: '-c statement_timeout=1000' });
    let locking: Promise<unknown> | undefined;
    const beforeCommit = async () => {
      if (locking) return;
      // The HIS opens a transaction on the second version and keeps it open past the timeout.
      await other.query('BEGIN');
      locking = other.query(`UPDATE staging.emr_patient_info SET operator_id = 'lock' WHERE row_id = $1`, [rows[2]]);
      await within(locking, 200);
    };
    try {
      const runs = await syncAll(strict, { settings: syncEveryOrg, beforeCommit });
      expect(runs.filter((r) => r.failed)).toEqual([]);
      expect([...(await outcomesOf(rows)).keys()].sort()).toEqual([...rows].sort());
    } finally {
      await strict.end();
    }
    expect(((await locking) as pg.QueryResult).rowCount).toBe(0);
    await sleep(100);
    await other.query('COMMIT');
    expect(await storedOperator(org, id)).toBe('v2');
  });
});

describe('a taken row', () => {
  it('cannot be updated by its HIS role (UPDATE 0): its emptied personal columns stay empty, and the role still sees the row', async () => {
    const org = uniqueOrg();
    const his = await hisRole([org]);
    const row = await stagePatient(his.client, org, uniqueId('p'), 'v1');
    await syncResource(db, patients, { settings: syncEveryOrg });
    expect((await outcomesOf([row])).get(row)?.status).toBe('created');
    const upd = await his.client.query(
      `UPDATE staging.emr_patient_info SET patient_name = '更正后', id_card = '440106199001011234', tel = '13900000000', operator_id = 'u1' WHERE row_id = $1`,
      [row],
    );
    expect(upd.rowCount).toBe(0);
    const after = await db.query(
      'SELECT patient_name, id_card, tel, operator_id, taken_at IS NOT NULL AS taken FROM staging.emr_patient_info WHERE row_id = $1',
      [row],
    );
    expect(after.rows).toEqual([{ patient_name: null, id_card: null, tel: null, operator_id: 'v1', taken: true }]);
    // Still seen by the role that wrote it: its bookkeeping, as before.
    const seen = await his.client.query('SELECT row_id::text, taken_at IS NOT NULL AS taken FROM staging.emr_patient_info WHERE row_id = $1', [row]);
    expect(seen.rows).toEqual([{ row_id: row, taken: true }]);
  });

  it('every staging table has the policy (migration 1080)', async () => {
    const p = await db.query<{ tablename: string; permissive: string; cmd: string; qual: string }>(
      `SELECT tablename, permissive, cmd, qual FROM pg_policies WHERE schemaname = 'staging' AND policyname = 'waiting_rows' ORDER BY tablename`,
    );
    expect(p.rows.map((x) => x.tablename).sort()).toEqual(
      Object.values(resources)
        .map((r) => r.table)
        .sort(),
    );
    for (const x of p.rows) expect(x).toMatchObject({ permissive: 'RESTRICTIVE', cmd: 'UPDATE', qual: '(taken_at IS NULL)' });
  });
});

describe('rows an open HIS transaction holds', () => {
  it('keep back only the later rows of their record: the run goes on past them, to the other roles’ rows', async () => {
    const orgA = uniqueOrg();
    const orgB = uniqueOrg();
    const a = await hisRole([orgA]);
    const b = await hisRole([orgB]);
    const lockA = await connect(a.url);
    const stall = uniqueId('STALL');
    const held = [await stagePatient(a.client, orgA, stall, 's0')];
    for (let i = 1; i <= 12; i++) held.push(await stagePatient(a.client, orgA, stall, `s${i}`));
    const victim = await stagePatient(b.client, orgB, uniqueId('VICTIM'), 'b1');
    await lockA.query('BEGIN');
    await lockA.query(`UPDATE staging.emr_patient_info SET operator_id = 'lock' WHERE row_id = $1`, [held[0]]);
    try {
      // Batches of 5: the first three claims find only the stalled record's rows.
      const run = await syncResource(db, patients, { settings: { ...syncEveryOrg, batch: 5 } });
      expect(run.taken).toBeGreaterThanOrEqual(1);
      const early = await outcomesOf([...held, victim]);
      expect([...early.keys()]).toEqual([victim]);
    } finally {
      await lockA.query('COMMIT');
    }
    await syncResource(db, patients, { settings: syncEveryOrg });
    const all = await outcomesOf(held);
    expect(held.map((r) => all.get(r)?.version)).toEqual(held.map((_, i) => i + 1));
    expect(await storedOperator(orgA, stall)).toBe('s12');
  });

  it('of one role do not keep back another role’s row with the same key', async () => {
    const orgA = uniqueOrg();
    const orgB = uniqueOrg();
    const a = await hisRole([orgA]);
    const b = await hisRole([orgB]);
    const lockA = await connect(a.url);
    const key = uniqueId('XROLE');
    // Role A writes a row for B's org and id (refused in the end) and holds it open.
    const theirs = await stagePatient(a.client, orgB, key, 'a1');
    const mine = await stagePatient(b.client, orgB, key, 'b1');
    await lockA.query('BEGIN');
    await lockA.query(`UPDATE staging.emr_patient_info SET operator_id = 'lock' WHERE row_id = $1`, [theirs]);
    try {
      await syncResource(db, patients, { settings: syncEveryOrg });
      expect([...(await outcomesOf([theirs, mine])).keys()]).toEqual([mine]);
    } finally {
      await lockA.query('COMMIT');
    }
  });

  it('keep back the later rows of their record when one names the org and the other leaves it empty', async () => {
    const org = uniqueOrg();
    const a = await hisRole([org]);
    const lockA = await connect(a.url);
    const id = uniqueId('ORD');
    const first = await stagePatient(a.client, null, id, 'v1');
    const second = await stagePatient(a.client, ` ${org} `, id, 'v2');
    await lockA.query('BEGIN');
    await lockA.query(`UPDATE staging.emr_patient_info SET operator_id = 'v1-corrected' WHERE row_id = $1`, [first]);
    try {
      await syncResource(db, patients, { settings: syncEveryOrg });
      expect((await outcomesOf([first, second])).size).toBe(0);
    } finally {
      await lockA.query('COMMIT');
    }
    await syncResource(db, patients, { settings: syncEveryOrg });
    const done = await outcomesOf([first, second]);
    expect([done.get(first)?.version, done.get(second)?.version]).toEqual([1, 2]);
    expect(await storedOperator(org, id)).toBe('v2');
  });

  it('are named in one log line per table and run when the run takes none of the table’s rows: the table, how many wait, the role — no value', async () => {
    const org = uniqueOrg();
    const a = await hisRole([org]);
    const lockA = await connect(a.url);
    // Orders: a table no other test here leaves waiting behind a lock (a line per table per run).
    const id = uniqueId('STALL');
    const rows: string[] = [];
    for (let i = 0; i < 13; i++)
      rows.push(
        (
          await a.client.query<{ row_id: string }>(`INSERT INTO staging.emr_order (org_code, id, operator_id) VALUES ($1, $2, $3) RETURNING row_id`, [
            org,
            id,
            `s${i}`,
          ])
        ).rows[0]!.row_id,
      );
    await lockA.query('BEGIN');
    await lockA.query(`UPDATE staging.emr_order SET operator_id = 'lock' WHERE row_id = $1`, [rows[0]]);
    try {
      // Two passes, as the function's nudge loop makes them: still one line.
      const { lines } = await logsOf(async () => {
        await syncAll(db, { settings: { ...syncEveryOrg, batch: 5 } });
        await syncAll(db, { settings: { ...syncEveryOrg, batch: 5 } });
      });
      const stalled = lines.filter((l) => l.msg === 'dbsync rows wait behind a HIS transaction' && l.resource === 'emrOrder');
      expect(stalled).toHaveLength(1);
      expect(stalled[0]).toMatchObject({ level: 'warn', resource: 'emrOrder', roles: [a.name] });
      expect(stalled[0]!.waiting).toBeGreaterThanOrEqual(13);
      expect(JSON.stringify(stalled[0])).not.toMatch(/STALL/);
    } finally {
      await lockA.query('COMMIT');
    }
    await syncResource(db, resources.emrOrder!, { settings: syncEveryOrg });
    const done = await db.query(`SELECT count(*)::int AS n FROM staging.sync_outcome WHERE resource = 'emrOrder' AND row_id = ANY($1::bigint[])`, [rows]);
    expect(done.rows[0].n).toBe(13);
  });
});

describe('a database fault in one table', () => {
  it('ends that table’s part of the run only: the later tables are taken, the warning names the table and the role', async () => {
    const org = uniqueOrg();
    const his = await hisRole([org]);
    const patient = await stagePatient(his.client, org, uniqueId('p'), 'v1');
    const order = (
      await his.client.query<{ row_id: string }>(`INSERT INTO staging.emr_order (org_code, id) VALUES ($1, $2) RETURNING row_id`, [org, uniqueId('o')])
    ).rows[0]!.row_id;
    let faults = 0;
    const o: SyncOptions = {
      settings: syncEveryOrg,
      // The patients' wave is cancelled as a statement timeout would cancel it.
      beforeCommit: async () => {
        if (faults++ > 0) return;
        throw Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' });
      },
    };
    const { out: runs, lines } = await logsOf(() => syncAll(db, o));
    expect(runs.find((r) => r.resource === 'emrPatientInfo')).toMatchObject({ failed: 'timeout', taken: 0 });
    expect((await db.query(`SELECT 1 FROM staging.sync_outcome WHERE resource = 'emrOrder' AND row_id = $1`, [order])).rowCount).toBe(1);
    const warn = lines.filter((l) => l.msg === 'database fault');
    expect(warn).toEqual([expect.objectContaining({ level: 'warn', resource: 'emrPatientInfo', roles: [his.name], fault: 'timeout', code: '57014' })]);
    // The patient's row waits, whole, for the next run.
    expect((await outcomesOf([patient])).size).toBe(0);
    await syncResource(db, patients, { settings: syncEveryOrg });
    expect((await outcomesOf([patient])).get(patient)?.version).toBe(1);
  });
});
