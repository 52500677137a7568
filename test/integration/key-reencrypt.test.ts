// Key rotation's re-encryption job (docs/keys.md) failing part-way and run again, on a database of
// this file's own (the job re-seals every stored value there is): a run stopped by a batch the
// database failed (a row held past the job's lock timeout) and the next run, one of whose batches is
// ended by a real deadlock after it had re-sealed values and is retried. Every stored value must end
// under the new key, each row rewritten exactly once (an audit trigger counts the committed
// rewrites), and the run's counts must be the values and HMACs it really changed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { samplePatient } from '../../infra/simulators/his.js';
import { resources } from '../../schemas/index.js';
import { hmacColumn } from '../../schemas/fields.js';
import { upsertMany } from '../../shared/ingest/index.js';
import { keyIdOf, openRecord, type Pii, piiFromDir, sealedFields, setPii } from '../../shared/pii/index.js';
import { initKeys, keyStatus, readKeyFile, reencrypt, rotateKey } from '../../shared/pii/rotate.js';
import { privateDatabase, uniqueOrg } from '../setup/db.js';

let priv: Awaited<ReturnType<typeof privateDatabase>>;
const patients = resources.emrPatientInfo!;
let url: string;
let db: pg.Pool;
let secrets: string;
let keys: Pii;
/** The key the first rotation made current (a random id). */
let next = '';

beforeAll(async () => {
  priv = await privateDatabase('rk');
  ({ url, db } = priv);
  secrets = mkdtempSync(join(tmpdir(), 'cdc-rk-'));
  initKeys(secrets);
  keys = piiFromDir(secrets);
  setPii(keys);
}, 120_000);

afterAll(async () => {
  setPii(undefined);
  await priv?.drop();
  rmSync(secrets, { recursive: true, force: true });
});

/** A patient as sent: the fields the checks read. */
type Sent = Record<string, string> & { id: string; idCard: string; tel: string; currentAddrDetail: string };

/** Stored values not under `current`, over every place `status` counts. */
async function staleValues(current: string): Promise<number> {
  return (await keyStatus(db)).filter((s) => s.keyId !== current).reduce((n, s) => n + s.values, 0);
}

/** Typed rows with a sealed, hashed value and no HMAC beside it: the HMACs the job has to fill. */
async function missingHmacs(): Promise<number> {
  let n = 0;
  for (const f of sealedFields(patients).filter((x) => x.hashed)) {
    const r = await db.query(`SELECT count(*)::int AS n FROM ${patients.table} WHERE ${f.column} IS NOT NULL AND ${hmacColumn(f.column)} IS NULL`);
    n += r.rows[0].n as number;
  }
  return n;
}

/** Committed rewrites per table since the audit began (a rolled-back batch leaves none). */
async function audited(): Promise<Record<string, number>> {
  const r = await db.query<{ tbl: string; n: number }>('SELECT tbl, count(*)::int AS n FROM rk_audit GROUP BY tbl');
  return Object.fromEntries(r.rows.map((x) => [x.tbl, x.n]));
}

/** Waits until a backend of this database waits on an advisory lock. */
/** Whether a session waits for advisory lock `key` (pg_locks: a bigint key under 2^32 is objid, objsubid 1). */
async function waitingOnAdvisory(watch: pg.Client, key: number): Promise<boolean> {
  for (let i = 0; i < 1000; i++) {
    const r = await watch.query(`SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = 0 AND objid = $1 AND objsubid = 1`, [key]);
    if (r.rowCount! > 0) return true;
    await new Promise((ok) => setTimeout(ok, 10));
  }
  return false;
}

describe('re-encryption stopped part-way and run again', () => {
  it('ends with every value under the new key, each row rewritten once, and counts that are the values really re-sealed', { timeout: 120_000 }, async () => {
    const org = uniqueOrg();
    const sent = Array.from({ length: 12 }, (_, i) => samplePatient({ orgCode: org, id: `rk-${String(i + 1).padStart(2, '0')}`, seed: 700 + i }) as Sent);
    const res = await upsertMany(db, patients, sent, { callId: null, test: false, now: new Date() });
    expect(res.every((x) => x.ok)).toBe(true);
    // Two rows as stored before migration 0032: clear values, no HMAC.
    for (const p of [sent[7]!, sent[9]!]) {
      const raw = (await db.query('SELECT rec_raw FROM emr_patient_info WHERE org_code = $1 AND id = $2', [org, p.id])).rows[0].rec_raw;
      await db.query(
        `UPDATE emr_patient_info SET id_card = $3, tel = $4, id_card_hmac = NULL, tel_hmac = NULL, rec_raw = $5::jsonb WHERE org_code = $1 AND id = $2`,
        [org, p.id, p.idCard, p.tel, JSON.stringify({ ...raw, idCard: p.idCard, tel: p.tel })],
      );
    }
    const history = Number((await db.query(`SELECT count(*) AS n FROM record_history WHERE resource = 'emrPatientInfo'`)).rows[0].n);
    const outbox = Number((await db.query(`SELECT count(*) AS n FROM outbox WHERE resource = 'emrPatientInfo'`)).rows[0].n);
    expect(history).toBe(12);
    expect(outbox).toBe(12); // the one destination the migrations make
    const first = readKeyFile(secrets).current;
    const rotated = rotateKey(secrets);
    // A new key of a random id, never the next number (docs/keys.md).
    expect(rotated.previous).toBe(first);
    expect(rotated.current).toMatch(/^k[0-9a-f]{8}$/);
    expect(rotated.current).not.toBe(first);
    next = rotated.current;

    // Every committed rewrite of a row, from here on.
    await db.query('CREATE TABLE rk_audit (tbl text NOT NULL, rid text NOT NULL)');
    await db.query(`CREATE FUNCTION rk_audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO rk_audit VALUES (TG_TABLE_NAME, coalesce(to_jsonb(NEW)->>'hist_id', to_jsonb(NEW)->>'outbox_id', (to_jsonb(NEW)->>'org_code') || '/' || (to_jsonb(NEW)->>'id')));
        RETURN NEW;
      END $$`);
    for (const t of ['emr_patient_info', 'record_history', 'outbox']) {
      await db.query(`CREATE TRIGGER rk_audit AFTER UPDATE ON ${t} FOR EACH ROW EXECUTE FUNCTION rk_audit_row()`);
    }

    // 1. The first run is stopped by a batch the database fails: rk-07 is held (as a writer would
    //    hold it) past the job's lock timeout. The three batches before it stay done.
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    const impatient = new pg.Pool({ connectionString: url, max: 2, options: '-c lock_timeout=300' });
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM emr_patient_info WHERE org_code = $1 AND id = $2 FOR UPDATE', [org, 'rk-07']);
      await expect(reencrypt(impatient, keys, { batch: 2 })).rejects.toThrow(/lock timeout/);
      await holder.query('ROLLBACK');
    } finally {
      await impatient.end();
    }
    expect(await audited()).toEqual({ emr_patient_info: 6 });
    const left = await staleValues(next);
    const hmacsLeft = await missingHmacs();
    expect(left).toBeGreaterThan(0);
    expect(hmacsLeft).toBe(4); // rk-08 and rk-10: ID number and phone each

    // 2. The job runs again. Its first batch (rk-07, rk-08) re-seals both rows, then its update of
    //    rk-08 waits on a lock a writer holds while that writer waits on rk-08: a real deadlock, which
    //    the database ends by failing the job's batch (40P01); the job retries the batch.
    await db.query('CREATE SEQUENCE rk_hits');
    const lock = 424_242;
    await db.query(`CREATE FUNCTION rk_writer_first() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        -- Only the first update of rk-08 waits for the writer. The job's retry must not: it can reach
        -- rk-08 before the writer, woken by the deadlock's end, takes it, and would close the cycle again.
        IF NEW.id = 'rk-08' THEN
          IF nextval('rk_hits') = 1 THEN PERFORM pg_advisory_xact_lock(${lock}); END IF;
        END IF;
        RETURN NEW;
      END $$`);
    await db.query('CREATE TRIGGER rk_writer_first BEFORE UPDATE ON emr_patient_info FOR EACH ROW EXECUTE FUNCTION rk_writer_first()');
    const before = await audited();
    let second: Awaited<ReturnType<typeof reencrypt>>;
    // PostgreSQL looks for a cycle once per wait, deadlock_timeout after the wait began, and the
    // session that finds it is the one failed. The job looks 3 s into its wait — after the writer
    // has closed the cycle, even on a loaded machine — and the writer, 60 s into its own, never first.
    await holder.query("SET deadlock_timeout = '60s'");
    const jobPool = new pg.Pool({ connectionString: url, max: 2, options: '-c deadlock_timeout=3000' });
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock($1)', [lock]);
      const run = reencrypt(jobPool, keys, { batch: 2 });
      run.catch(() => undefined);
      expect(await waitingOnAdvisory(holder, lock), 'the job waits on the writer').toBe(true);
      // The writer now wants the row the job holds: the cycle, which the job's check finds and
      // ends by failing the job's batch.
      await holder.query('SELECT 1 FROM emr_patient_info WHERE org_code = $1 AND id = $2 FOR UPDATE', [org, 'rk-08']);
      await holder.query('COMMIT');
      second = await run;
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
      await jobPool.end();
      await db.query('DROP TRIGGER IF EXISTS rk_writer_first ON emr_patient_info');
    }
    // The batch ran twice: failed by the deadlock, then done.
    expect(Number((await db.query('SELECT last_value FROM rk_hits')).rows[0].last_value)).toBe(2);

    // Everything under k2, each row rewritten exactly once over both runs, nothing else touched.
    expect(await staleValues(next)).toBe(0);
    expect(await missingHmacs()).toBe(0);
    const twice = await db.query('SELECT tbl, rid, count(*)::int AS n FROM rk_audit GROUP BY tbl, rid HAVING count(*) <> 1');
    expect(twice.rows).toEqual([]);
    const after = await audited();
    expect(after).toEqual({ emr_patient_info: 12, record_history: history, outbox });

    // The second run's counts are what it did: the values and HMACs left after the first run, and
    // the rows it rewrote per place.
    expect(second.values).toBe(left);
    expect(second.hashes).toBe(hmacsLeft);
    expect(Object.fromEntries(Object.entries(second.rows).filter(([, n]) => n > 0))).toEqual({
      emr_patient_info: after.emr_patient_info! - (before.emr_patient_info ?? 0),
      'record_history.raw': history,
      'outbox.payload': outbox,
    });

    // Every value opens to what was sent, in every copy.
    for (const p of sent) {
      const row = (await db.query('SELECT id_card, tel, id_card_hmac, rec_raw FROM emr_patient_info WHERE org_code = $1 AND id = $2', [org, p.id])).rows[0];
      expect(keyIdOf(row.id_card)).toBe(next);
      expect(keys.open(row.id_card)).toBe(p.idCard);
      expect(keys.open(row.tel)).toBe(p.tel);
      expect(row.id_card_hmac).toBe(keys.hash('idno', p.idCard));
      expect(openRecord(patients, row.rec_raw)).toMatchObject({ idCard: p.idCard, tel: p.tel, currentAddrDetail: p.currentAddrDetail });
      const copies = await db.query(
        `SELECT raw AS doc FROM record_history WHERE resource = 'emrPatientInfo' AND org_code = $1 AND record_id = $2
         UNION ALL SELECT payload FROM outbox WHERE resource = 'emrPatientInfo' AND org_code = $1 AND record_id = $2`,
        [org, p.id],
      );
      expect(copies.rows).toHaveLength(2);
      for (const c of copies.rows) expect(openRecord(patients, c.doc)).toMatchObject({ idCard: p.idCard, tel: p.tel, currentAddrDetail: p.currentAddrDetail });
    }

    // A third run finds nothing to do and says so.
    const third = await reencrypt(db, keys);
    expect({ values: third.values, hashes: third.hashes }).toEqual({ values: 0, hashes: 0 });
  });

  it('reads a batch whose COMMIT the database refused again from where it began', { timeout: 120_000 }, async () => {
    // The rows the test before stored (or none: then these), rotated once more.
    const org = uniqueOrg();
    const sent = Array.from({ length: 5 }, (_, i) => samplePatient({ orgCode: org, id: `rc-${i + 1}`, seed: 900 + i }));
    expect((await upsertMany(db, patients, sent, { callId: null, test: false, now: new Date() })).every((x) => x.ok)).toBe(true);
    const { current } = rotateKey(secrets);
    expect(await staleValues(current)).toBeGreaterThan(0);
    // The first transaction that rewrites a typed row is refused at its COMMIT with a serialization
    // failure (40001), raised by a deferred constraint trigger; withTx retries the batch.
    await db.query('CREATE SEQUENCE rc_commits');
    await db.query(`CREATE FUNCTION rc_refuse_first_commit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF nextval('rc_commits') = 1 THEN RAISE EXCEPTION 'refused at commit' USING ERRCODE = '40001'; END IF;
        RETURN NULL;
      END $$`);
    await db.query(`CREATE CONSTRAINT TRIGGER rc_refuse_first_commit AFTER UPDATE ON emr_patient_info
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION rc_refuse_first_commit()`);
    try {
      const run = await reencrypt(db, keys, { batch: 2 });
      expect(Number((await db.query('SELECT last_value FROM rc_commits')).rows[0].last_value)).toBeGreaterThan(1);
      // Nothing left under an older key: the refused batch was written again, not skipped.
      expect(await staleValues(current)).toBe(0);
      const rows = Number((await db.query('SELECT count(*) AS n FROM emr_patient_info')).rows[0].n);
      expect(run.rows.emr_patient_info).toBe(rows);
    } finally {
      await db.query('DROP TRIGGER IF EXISTS rc_refuse_first_commit ON emr_patient_info');
    }
  });
});
