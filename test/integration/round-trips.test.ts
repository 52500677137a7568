// The round trips of a single record's write (docs/ingest.md "Round trips"), counted on the driver:
// statements sent while none is awaited start a round trip, those sent behind them share it. A new
// record is one: BEGIN, its link locks, the composed statement (the typed row, history, outbox rows,
// receipt) guarded by its parents being stored and, for a parent, no child waiting — and COMMIT
// (docs/ingest.md "New records in one round trip"). When that try misses (the record exists, a
// parent is missing, a child waits), nothing of it is written and the usual two follow: BEGIN, the
// link locks, the row lock and the look-ups; then the composed statement with COMMIT behind it. A
// new version of a stored record is the usual two after its try, its typed row an UPDATE. A patient
// written after a held child releases it in the same transaction, the child's outbox rows behind
// the patient's: COMMIT waits for that.
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sample } from '../../infra/simulators/samples.js';
import { resources } from '../../schemas/index.js';
import { upsertMany, type IngestContext } from '../../shared/ingest/index.js';
import { GroupCommitter } from '../../shared/ingest/group.js';
import { newRecordOdds } from '../../shared/ingest/new-records.js';
import { lockLinks } from '../../shared/ingest/store.js';
import { databaseUrl, testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { residentId } from '../../infra/simulators/his.js';

const db = testDb();
const ctx = (): IngestContext => ({ callId: null, test: false, now: new Date() });
const org = uniqueOrg();

type Query = (...a: unknown[]) => unknown;
const proto = pg.Client.prototype as unknown as { query: Query };
const original = proto.query;
/** Statements in the order sent, each round trip a list. */
let trips: string[][] = [];
/** The prepared statements' names, in the order sent (unnamed ones: none). */
let names: string[] = [];
/** The statements' texts, in the order sent. */
let texts: string[] = [];
/** Every statement's text, those the pool sends outside a transaction too. */
let all: string[] = [];
let inFlight = 0;
beforeAll(() => {
  proto.query = function (this: unknown, ...args: unknown[]) {
    const q = args[0];
    const text = typeof q === 'string' ? q : ((q as { text?: string })?.text ?? '');
    const out = original.apply(this, args) as Promise<unknown> | undefined;
    all.push(text);
    // The pool's own queries (look-ups outside the transaction) take a callback and return nothing.
    if (!out) return out;
    if (inFlight === 0 || trips.length === 0) trips.push([]);
    trips.at(-1)!.push(text);
    texts.push(text);
    const name = typeof q === 'object' && q !== null ? (q as { name?: string }).name : undefined;
    if (name) names.push(name);
    inFlight++;
    // Registered before the caller's await, so it runs before anything the caller sends next.
    const settled = () => {
      inFlight--;
    };
    out.then(settled, settled);
    return out;
  };
});
afterAll(() => {
  proto.query = original;
});

/** Each statement named by its first words. */
const brief = (t: string[]) => t.map((x) => x.replace(/\s+/g, ' ').trim().split(' ').slice(0, 4).join(' '));

/** The round trips of the call's transactions, one list per transaction (each starts with BEGIN). */
async function transactionsOf(run: () => Promise<unknown>): Promise<string[][][]> {
  trips = [];
  names = [];
  texts = [];
  all = [];
  await run();
  const txs: string[][][] = [];
  for (const t of trips) {
    if (t[0]!.startsWith('BEGIN')) txs.push([]);
    txs.at(-1)?.push(brief(t));
  }
  return txs;
}

/** The round trips of the call's one transaction. */
async function tripsOf(run: () => Promise<unknown>): Promise<string[][]> {
  const txs = await transactionsOf(run);
  expect(txs).toHaveLength(1);
  return txs[0]!;
}

/** A wave of new records: one round trip, its composed statement behind its guard, with COMMIT. */
const newRecord = [['BEGIN', 'SELECT count(CASE WHEN s.x', 'WITH new_guard AS (SELECT', 'COMMIT']];

/** A try that missed: the same round trip, its guard returning no row, so nothing written and nothing failed. */
const missed = newRecord;

/** The text of the last composed statement sent. */
const composed = () => [...texts].reverse().find((t) => t.startsWith('WITH ')) ?? '';

/**
 * A trigger failing the first INSERT of an org's rows into `table` with `code` (a sequence counts the
 * INSERTs: it is not rolled back with the failed statement); the function returned drops it.
 */
async function failFirstInsert(table: string, code: string, o: string): Promise<() => Promise<void>> {
  const t = `fail_${table}_${code.toLowerCase()}`;
  await db.query(`CREATE SEQUENCE ${t}_n`);
  await db.query(`CREATE FUNCTION ${t}() RETURNS trigger LANGUAGE plpgsql AS $f$
    BEGIN IF nextval('${t}_n') = 1 THEN RAISE EXCEPTION 'forced %', '${code}' USING ERRCODE = '${code}'; END IF; RETURN NEW; END $f$`);
  await db.query(`CREATE TRIGGER ${t} BEFORE INSERT ON ${table} FOR EACH ROW WHEN (NEW.org_code = '${o}') EXECUTE PROCEDURE ${t}()`);
  return async () => {
    await db.query(`DROP TRIGGER ${t} ON ${table}`);
    await db.query(`DROP FUNCTION ${t}()`);
    await db.query(`DROP SEQUENCE ${t}_n`);
  };
}

/** Patients stored with a birth date and no resident ID (nothing else says when they were born). */
async function patientsBornOn(birthDate: string, pids: string[], seed: number): Promise<void> {
  await upsertMany(
    db,
    resources.emrPatientInfo!,
    pids.map((id, i) => ({ ...sample('emrPatientInfo', { orgCode: org, id, seed: seed + i }), birthDate, idCardTypeCode: '99', idCard: 'X' })),
    ctx(),
  );
}

/** A diagnosis of a patient at a time, carrying no birth date or resident ID of its own (unless `own` gives one). */
const diagnosisAt = (patientId: string, seed: number, activityTime: string, diagnoseTime = activityTime, own: Record<string, unknown> = {}) => ({
  ...sample('emrActivityInfo', { orgCode: org, id: uniqueId('dx'), patientId, seed }),
  id: uniqueId('dx'),
  idCardTypeCode: '99',
  idCard: 'X',
  activityTime,
  diagnoseTime,
  ...own,
});

// Each test starts as a process whose tries have hit: every wave of new records tries.
beforeEach(() => {
  for (const name of Object.keys(resources)) newRecordOdds(db).saw(name, true);
});

describe('round trips of a single record', () => {
  it('a new patient: one round trip, guarded by no child waiting; a diagnosis of a stored patient: one, guarded by its patient', async () => {
    const pid = uniqueId('p');
    const patient = await tripsOf(() => upsertMany(db, resources.emrPatientInfo!, [sample('emrPatientInfo', { orgCode: org, id: pid, seed: 1 })], ctx()));
    expect(patient).toEqual(newRecord);
    expect(names).toEqual(['link_locks', 'side1_emr_patient_info_ins_new_1w_']);
    // Neither the row nor a receipt, no child waiting; and every row source of the write behind it.
    // The payload is the first parameter, the guard's come after it.
    expect(composed()).toMatch(
      /^WITH new_guard AS \(SELECT 1 AS ok WHERE NOT EXISTS \(SELECT 1 FROM emr_patient_info t WHERE \(t\.org_code, t\.id\) = \(\$3, \$4\)\)\s+AND NOT EXISTS \(SELECT 1 FROM record_receipt c WHERE c\.resource = \$2 AND \(c\.org_code, c\.record_id\) = \(\$3, \$4\)\)\s+AND NOT EXISTS \(SELECT DISTINCT org_code, parent_id FROM record_parent_wait/,
    );
    // Sent once, read by the typed row, its history row and its outbox rows.
    expect(composed().match(/\$1::jsonb/g)).toHaveLength(3);
    expect(composed().match(/WHERE EXISTS \(SELECT 1 FROM new_guard\)/g)).toHaveLength(4);
    const dxId = uniqueId('dx');
    const dx = await tripsOf(() =>
      upsertMany(db, resources.emrActivityInfo!, [sample('emrActivityInfo', { orgCode: org, id: dxId, patientId: pid, seed: 1 })], ctx()),
    );
    expect(dx).toEqual(newRecord);
    expect(composed()).toMatch(
      /new_guard AS \(SELECT 1 AS ok WHERE NOT EXISTS [^\n]+\s+AND NOT EXISTS [^\n]+\s+AND EXISTS \(SELECT p\.org_code, p\.id FROM emr_patient_info p/,
    );
    const stored = await db.query(
      `SELECT (SELECT count(*)::int FROM emr_activity_info WHERE org_code = $1 AND id = $2) AS typed,
              (SELECT count(*)::int FROM record_history WHERE org_code = $1 AND record_id = $2) AS history,
              (SELECT state FROM record_receipt WHERE org_code = $1 AND record_id = $2) AS receipt`,
      [org, dxId],
    );
    expect(stored.rows).toEqual([{ typed: 1, history: 1, receipt: 'stored' }]);
  });

  it("a new diagnosis: its patient's birth date is checked by the try's guard, not looked up first; one before the birth is refused after the try", async () => {
    const pid = uniqueId('p');
    // Born 2000-05-01 (Beijing time); the diagnoses carry no birth date or resident ID of their own.
    await patientsBornOn('2000-05-01', [pid], 70);
    const dx = (at: string) => diagnosisAt(pid, 70, at);
    const lookUp = (t: string) => t.includes('birth_date FROM emr_patient_info');
    // Born that day: one round trip, no look-up before it; the guard says who may not be born after which instant.
    const sameDay = await tripsOf(() => upsertMany(db, resources.emrActivityInfo!, [dx('2000-05-01 00:00:00')], ctx()));
    expect(sameDay).toEqual(newRecord);
    expect(all.filter(lookUp)).toEqual([]);
    expect(names).toContain('side1_emr_activity_info_ins_new_1_emr_patient_info_b1');
    expect(composed()).toMatch(
      /AND NOT EXISTS \(SELECT 1 FROM emr_patient_info b WHERE \(b\.org_code, b\.id\) = \(\$\d+, \$\d+\) AND b\.birth_date >= \$\d+\)/,
    );
    // The day before: the try misses on the birth date, the look-up follows, the record is refused naming both times.
    newRecordOdds(db).saw('emrActivityInfo', true);
    const early = dx('2000-04-30 23:59:59');
    const txs = await transactionsOf(async () => {
      const [x] = await upsertMany(db, resources.emrActivityInfo!, [early], ctx());
      expect(x!.ok).toBe(false);
      expect(!x!.ok && x!.error.issues?.map((i) => `${i.field}/${i.rule}`)).toEqual(['activityTime/beforeBirth', 'diagnoseTime/beforeBirth']);
    });
    expect(txs).toEqual([missed]);
    expect(all.filter(lookUp)).toHaveLength(1);
    const stored = await db.query(
      `SELECT (SELECT count(*)::int FROM emr_activity_info WHERE org_code = $1 AND id = $2) AS typed,
              (SELECT count(*)::int FROM record_history WHERE org_code = $1 AND record_id = $2) AS history,
              (SELECT count(*)::int FROM ingest_rejection WHERE org_code = $1 AND record_id = $2) AS rejected`,
      [org, early.id],
    );
    expect(stored.rows).toEqual([{ typed: 0, history: 0, rejected: 1 }]);
  });

  it('a diagnosis sent twice in one call, one copy before its stored patient was born: the other stored, that one refused and logged, in either order', async () => {
    const pid = uniqueId('p');
    await patientsBornOn('2000-05-01', [pid], 73);
    const outcome = (x: Awaited<ReturnType<typeof upsertMany>>[number]) =>
      x.ok ? `${x.outcome.status}:${x.outcome.version}` : x.error.issues?.map((i) => `${i.field}/${i.rule}`).join();
    const refused = 'activityTime/beforeBirth,diagnoseTime/beforeBirth';
    for (const [order, expected] of [
      [
        ['2001-01-01 10:00:00', '1999-01-01 10:00:00'],
        ['created:1', refused],
      ],
      [
        ['1999-01-01 10:00:00', '2001-01-01 10:00:00'],
        [refused, 'created:1'],
      ],
    ] as const) {
      const id = uniqueId('dx');
      const out = await upsertMany(
        db,
        resources.emrActivityInfo!,
        order.map((at) => diagnosisAt(pid, 73, at, at, { id })),
        ctx(),
      );
      expect(out.map(outcome)).toEqual(expected);
      const stored = await db.query(
        `SELECT (SELECT max(rec_version) FROM emr_activity_info WHERE org_code = $1 AND id = $2) AS version,
                (SELECT count(*)::int FROM ingest_rejection WHERE org_code = $1 AND record_id = $2) AS rejected`,
        [org, id],
      );
      expect(stored.rows).toEqual([{ version: 1, rejected: 1 }]);
    }
  });

  it("a call's refused records are logged before its try: a try that fails leaves their rejections logged", async () => {
    const o = uniqueOrg();
    const drop = await failFirstInsert('emr_patient_info', '57014', o);
    try {
      const good = sample('emrPatientInfo', { orgCode: o, id: uniqueId('p'), seed: 74 });
      // A key with a quote in it: refused (keyFormat).
      const bad = sample('emrPatientInfo', { orgCode: o, id: `q'${uniqueId('p')}`, seed: 75 });
      await expect(upsertMany(db, resources.emrPatientInfo!, [bad, good], ctx())).rejects.toMatchObject({ code: '57014' });
      const logged = await db.query('SELECT record_id FROM ingest_rejection WHERE org_code = $1', [o]);
      expect(logged.rows).toEqual([{ record_id: bad.id }]);
    } finally {
      await drop();
    }
  });

  it("a single record's call whose try fails after its stored patient's birth date refused it: answered with that refusal, logged once", async () => {
    const pid = uniqueId('p');
    await patientsBornOn('2000-05-01', [pid], 78);
    const early = diagnosisAt(pid, 78, '1999-01-01 10:00:00');
    // Another transaction holds the link to the diagnosis's patient (as the patient's writer does), and
    // this pool waits 200 ms for a lock: the try fails (55P03) — not a race, so not a miss — and the
    // birth dates are read after it.
    const waiting = new pg.Pool({ connectionString: databaseUrl(), max: 2, options: '-c lock_timeout=200' });
    const holder = await db.connect();
    try {
      await holder.query('BEGIN');
      await lockLinks(holder, [['emrPatientInfo', org, pid, 'exclusive']]);
      const g = new GroupCommitter(() => waiting, { maxGroup: 64, waitMs: 0 });
      const [x] = await Promise.all([g.submit(resources.emrActivityInfo!, early, { ...ctx(), callId: 'late' })]);
      expect(x!.ok).toBe(false);
      expect(!x!.ok && [x!.error.code, x!.error.issues?.map((i) => `${i.field}/${i.rule}`)]).toEqual([
        'VALIDATION_FAILED',
        ['activityTime/beforeBirth', 'diagnoseTime/beforeBirth'],
      ]);
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
      await waiting.end();
    }
    const stored = await db.query(
      `SELECT (SELECT count(*)::int FROM emr_activity_info WHERE org_code = $1 AND id = $2) AS typed,
              (SELECT count(*)::int FROM ingest_rejection WHERE org_code = $1 AND record_id = $2) AS rejected`,
      [org, early.id],
    );
    expect(stored.rows).toEqual([{ typed: 0, rejected: 1 }]);
  });

  it("a key's first copy refused by its stored patient's birth date: its next copy is written with the call's other records, in one round trip", async () => {
    const [p1, p2] = [uniqueId('p'), uniqueId('p')];
    await patientsBornOn('2000-05-01', [p1, p2], 76);
    const id = uniqueId('dx');
    const calls = [
      diagnosisAt(p1, 76, '1999-01-01 10:00:00', '1999-01-01 10:00:00', { id }),
      diagnosisAt(p1, 76, '2001-01-01 10:00:00', '2001-01-01 10:00:00', { id }),
      diagnosisAt(p2, 77, '2001-02-01 10:00:00'),
    ];
    const txs = await transactionsOf(async () => {
      const out = await upsertMany(db, resources.emrActivityInfo!, calls, ctx());
      expect(out.map((x) => (x.ok ? `${x.outcome.status}:${x.outcome.version}` : x.error.issues?.[0]?.rule))).toEqual([
        'beforeBirth',
        'created:1',
        'created:1',
      ]);
    });
    // As when the birth dates are read first: the second copy and the other diagnosis are one wave, written as new in one round trip.
    expect(txs).toEqual([newRecord]);
  });

  it('a diagnosis whose own resident ID says born after it, of a patient stored as born before it: the stored birth date wins, the record is stored', async () => {
    const pid = uniqueId('p');
    await patientsBornOn('1990-03-02', [pid], 71);
    const dx = diagnosisAt(pid, 71, '2001-01-01 09:00:00', '2001-01-01 09:00:00', {
      idCardTypeCode: '01',
      idCard: residentId('110101', { y: 2010, m: 6, d: 15 }, '1', 7),
    });
    await transactionsOf(async () => {
      const [x] = await upsertMany(db, resources.emrActivityInfo!, [dx], ctx());
      expect(x!.ok && x!.outcome.status).toBe('created');
    });
    // Refused by its own ID number alone, it was validated again with the stored birth date, and nothing was logged as refused.
    expect(all.filter((t) => t.includes('birth_date FROM emr_patient_info'))).toHaveLength(1);
    const rejected = await db.query('SELECT count(*)::int AS n FROM ingest_rejection WHERE org_code = $1 AND record_id = $2', [org, dx.id]);
    expect(rejected.rows).toEqual([{ n: 0 }]);
  });

  it('a group of three diagnoses, one before its patient was born: the try misses, that one is refused, the other two are stored', async () => {
    const pids = [uniqueId('p'), uniqueId('p'), uniqueId('p')];
    await patientsBornOn('2005-07-01', pids, 72);
    const dxs = pids.map((patientId, i) => diagnosisAt(patientId, 72 + i, i === 1 ? '2005-06-30 10:00:00' : '2006-01-01 10:00:00', '2006-01-01 10:00:00'));
    const txs = await transactionsOf(async () => {
      const out = await upsertMany(db, resources.emrActivityInfo!, dxs, ctx());
      expect(out.map((x) => (x.ok ? x.outcome.status : x.error.issues?.map((i) => `${i.field}/${i.rule}`).join()))).toEqual([
        'created',
        'activityTime/beforeBirth',
        'created',
      ]);
    });
    expect(txs[0]).toEqual(missed);
    expect(txs).toHaveLength(2);
    const stored = await db.query('SELECT id FROM emr_activity_info WHERE org_code = $1 AND id = ANY($2::varchar[]) ORDER BY id', [org, dxs.map((d) => d.id)]);
    expect(stored.rows.map((r) => r.id)).toEqual([dxs[0]!.id, dxs[2]!.id].sort());
  });

  it("a group of three new diagnoses: one round trip; their corrections: the try, then two, each key's look-ups its own prepared statement", async () => {
    const pids = [uniqueId('p'), uniqueId('p'), uniqueId('p')];
    await upsertMany(
      db,
      resources.emrPatientInfo!,
      pids.map((id, i) => sample('emrPatientInfo', { orgCode: org, id, seed: 10 + i })),
      ctx(),
    );
    const dxs = pids.map((patientId, i) => sample('emrActivityInfo', { orgCode: org, id: uniqueId('dx'), patientId, seed: 10 + i }));
    expect(await tripsOf(() => upsertMany(db, resources.emrActivityInfo!, dxs, ctx()))).toEqual(newRecord);
    // One guard condition per patient, each an equality on the whole key.
    expect(composed().match(/EXISTS \(SELECT p\.org_code, p\.id FROM emr_patient_info p/g)).toHaveLength(3);
    const corrected = dxs.map((d) => ({ ...d, diagnoseTime: '2026-01-15 10:31:00' }));
    const [tried, usual] = await transactionsOf(() => upsertMany(db, resources.emrActivityInfo!, corrected, ctx()));
    const lock = 'SELECT t.org_code, t.id, t.rec_version,';
    const parent = 'SELECT p.org_code, p.id FROM';
    expect(tried).toEqual(missed);
    expect(usual).toEqual([
      ['BEGIN', 'SELECT count(CASE WHEN s.x', lock, lock, lock, parent, parent, parent],
      ['WITH rec_old_src AS (SELECT', 'COMMIT'],
    ]);
    // An equality on the whole key, prepared once per connection, for every record of the group:
    // no plan of an array of unknown length (docs/opengauss.md "Key lists").
    expect(names.filter((n) => n.startsWith('lock1_') || n.startsWith('parent1_')).sort()).toEqual([
      'lock1_emr_activity_info',
      'lock1_emr_activity_info',
      'lock1_emr_activity_info',
      'parent1_emr_patient_info',
      'parent1_emr_patient_info',
      'parent1_emr_patient_info',
    ]);
    expect(names).toContain('link_locks');
    const stored = await db.query('SELECT id FROM emr_activity_info WHERE org_code = $1 AND id = ANY($2::varchar[])', [org, dxs.map((d) => d.id)]);
    expect(stored.rowCount).toBe(3);
  });

  it('a group of three items of one report: their report is checked per item (one text per group size), and looked up once', async () => {
    const pid = uniqueId('p');
    const labId = uniqueId('lab');
    await upsertMany(db, resources.emrPatientInfo!, [sample('emrPatientInfo', { orgCode: org, id: pid, seed: 20 })], ctx());
    await upsertMany(db, resources.emrExLab!, [sample('emrExLab', { orgCode: org, id: labId, patientId: pid, seed: 20 })], ctx());
    const items = [0, 1, 2].map((i) => sample('emrExLabItem', { orgCode: org, id: uniqueId('item'), patientId: pid, parentId: labId, seed: 20 + i }));
    expect(await tripsOf(() => upsertMany(db, resources.emrExLabItem!, items, ctx()))).toEqual(newRecord);
    expect(composed().match(/EXISTS \(SELECT p\.org_code, p\.id FROM emr_ex_lab p/g)).toHaveLength(3);
    const corrected = items.map((it) => ({ ...it, itemName: `${String(it.itemName)}（复核）` }));
    const [tried, usual] = await transactionsOf(() => upsertMany(db, resources.emrExLabItem!, corrected, ctx()));
    const lock = 'SELECT t.org_code, t.id, t.rec_version,';
    expect(tried).toEqual(missed);
    expect(usual).toEqual([
      ['BEGIN', 'SELECT count(CASE WHEN s.x', lock, lock, lock, 'SELECT p.org_code, p.id FROM'],
      ['WITH rec_old_src AS (SELECT', 'COMMIT'],
    ]);
    expect(names.filter((n) => n.startsWith('parent1_'))).toEqual(['parent1_emr_ex_lab']);
    const stored = await db.query('SELECT count(*)::int AS n FROM emr_ex_lab_item WHERE org_code = $1 AND ex_lab_id = $2', [org, labId]);
    expect(stored.rows[0]).toEqual({ n: 3 });
  });

  it('a group whose row lock fails reports that failure, not the aborted look-ups sent behind it', async () => {
    const pid = uniqueId('p');
    const labId = uniqueId('lab');
    await upsertMany(db, resources.emrPatientInfo!, [sample('emrPatientInfo', { orgCode: org, id: pid, seed: 40 })], ctx());
    await upsertMany(db, resources.emrExLab!, [sample('emrExLab', { orgCode: org, id: labId, patientId: pid, seed: 40 })], ctx());
    const items = [0, 1, 2].map((i) => sample('emrExLabItem', { orgCode: org, id: uniqueId(`item${i}`), patientId: pid, parentId: labId, seed: 40 + i }));
    await upsertMany(db, resources.emrExLabItem!, items, ctx());
    // Another transaction holds the middle item's row; this pool gives up waiting after 300 ms.
    const holder = await db.connect();
    const impatient = testDb({ options: '-c lock_timeout=300' });
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM emr_ex_lab_item WHERE org_code = $1 AND id = $2 FOR UPDATE', [org, items[1]!.id]);
      const corrected = items.map((it) => ({ ...it, itemName: `${String(it.itemName)}（复核）` }));
      // The row lock's 55P03, not the 25P02 of the parent look-up behind it (whose answer settles first).
      await expect(upsertMany(impatient, resources.emrExLabItem!, corrected, ctx())).rejects.toMatchObject({ code: '55P03' });
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
      await impatient.end();
    }
  });

  it("each record's payload, sent once per statement, is its own in its typed row, its history row and its outbox rows: new, stored, and both in one batch", async () => {
    const pid = uniqueId('p');
    await upsertMany(db, resources.emrPatientInfo!, [sample('emrPatientInfo', { orgCode: org, id: pid, seed: 40 })], ctx());
    const labs = Array.from({ length: 5 }, (_, i) => sample('emrExLab', { orgCode: org, id: uniqueId(`pl${i}`), patientId: pid, seed: 40 + i }));
    // Five new; the first three corrected with two new ones (stored and new rows: the typed rows carry their own payloads);
    // then one corrected alone (a single record: the VALUES form).
    const mixed = [
      ...labs.slice(0, 3).map((l) => ({ ...l, specimenNo: `${String(l.specimenNo)}-2` })),
      ...[5, 6].map((i) => sample('emrExLab', { orgCode: org, id: uniqueId(`pl${i}`), patientId: pid, seed: 40 + i })),
    ];
    const single = { ...labs[4]!, specimenNo: `${String(labs[4]!.specimenNo)}-3` };
    // Then all five corrected again: stored rows only (the typed rows UPDATEd from the shared payloads).
    const allStored = labs.map((l) => ({ ...l, specimenNo: `${String(l.specimenNo)}-4` }));
    for (const call of [labs, mixed, [single], allStored]) {
      const out = await upsertMany(db, resources.emrExLab!, call, ctx());
      expect(out.every((x) => x.ok)).toBe(true);
    }
    const sent: Array<Record<string, unknown>> = [...labs, ...mixed, single, ...allStored];
    const rows = await db.query<{ id: string; version: number; specimen: string; raw: string; typed: string; hist: string; out: string[] }>(
      `SELECT h.record_id AS id, h.version, h.raw->>'specimenNo' AS specimen, h.raw->>'id' AS hist,
              t.rec_raw->>'id' AS raw, t.rec_raw->>'specimenNo' AS typed, array(SELECT o.payload->>'specimenNo' FROM outbox o WHERE o.org_code = h.org_code AND o.record_id = h.record_id AND o.version = h.version ORDER BY o.destination) AS out
         FROM record_history h LEFT JOIN emr_ex_lab t ON t.org_code = h.org_code AND t.id = h.record_id AND t.rec_version = h.version
        WHERE h.org_code = $1 AND h.resource = 'emrExLab' AND h.record_id = ANY($2::varchar[]) ORDER BY h.record_id, h.version`,
      [org, sent.map((l) => l.id)],
    );
    // Every version sent is in the history with its own specimen number, each outbox row carries it,
    // and the typed row (the current version) is the record itself.
    const expected = new Map<string, string[]>();
    for (const l of sent) expected.set(String(l.id), [...(expected.get(String(l.id)) ?? []), String(l.specimenNo)]);
    const destinations = (
      await db.query(`SELECT count(*)::int AS n FROM uplink_destination WHERE enabled AND (resources IS NULL OR (' ' || resources || ' ') LIKE '% emrExLab %')`)
    ).rows[0].n as number;
    expect(destinations).toBeGreaterThan(0);
    for (const [id, specimens] of expected) {
      const versions = rows.rows.filter((r) => r.id === id);
      expect(versions.map((v) => v.specimen)).toEqual(specimens);
      for (const v of versions) {
        expect(v.hist).toBe(id);
        expect(v.out).toEqual(Array(destinations).fill(v.specimen));
      }
      expect([versions.at(-1)!.raw, versions.at(-1)!.typed]).toEqual([id, specimens.at(-1)]);
    }
  });

  it('a batch of 450 lab reports (49 columns, 22 050 values): its typed rows in the composed statement, no MERGE first', async () => {
    const pid = uniqueId('p');
    await upsertMany(db, resources.emrPatientInfo!, [sample('emrPatientInfo', { orgCode: org, id: pid, seed: 30 })], ctx());
    const labs = Array.from({ length: 450 }, (_, i) => sample('emrExLab', { orgCode: org, id: uniqueId(`lab${i}`), patientId: pid, seed: 30 + i }));
    const batch = await tripsOf(() => upsertMany(db, resources.emrExLab!, labs, ctx()));
    expect(batch).toEqual([
      ['BEGIN', 'SELECT count(CASE WHEN s.x', 'SELECT t.org_code, t.id, t.rec_version,', 'SELECT DISTINCT org_code, parent_id', 'SELECT p.org_code, p.id FROM'],
      ['WITH rec_new_src AS (SELECT', 'COMMIT'],
    ]);
    const stored = await db.query<{ n: number; v: number }>(
      'SELECT count(*)::int AS n, max(rec_version) AS v FROM emr_ex_lab WHERE org_code = $1 AND id = ANY($2::varchar[]) AND rec_raw->>$3 = patient_id',
      [org, labs.map((l) => l.id), 'patientId'],
    );
    expect(stored.rows[0]).toEqual({ n: 450, v: 1 });
    // The same 450 corrected: a new version of each, UPDATEd in the composed statement.
    const corrected = labs.map((l) => ({ ...l, specimenNo: `${String(l.specimenNo)}-2` }));
    const again = await tripsOf(() => upsertMany(db, resources.emrExLab!, corrected, ctx()));
    expect(again[1]).toEqual(['WITH rec_old_src AS (SELECT', 'COMMIT']);
    const updated = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM emr_ex_lab WHERE org_code = $1 AND id = ANY($2::varchar[]) AND rec_version = 2 AND specimen_no LIKE '%-2'",
      [org, labs.map((l) => l.id)],
    );
    expect(updated.rows[0]).toEqual({ n: 450 });
  });

  it('a new version of a stored patient: the try misses on its key, then the usual two round trips, its row UPDATEd in the composed statement', async () => {
    const pid = uniqueId('p');
    const v1 = sample('emrPatientInfo', { orgCode: org, id: pid, seed: 3 });
    await upsertMany(db, resources.emrPatientInfo!, [v1], ctx());
    const v2 = await transactionsOf(() => upsertMany(db, resources.emrPatientInfo!, [{ ...v1, tel: '13700000001' }], ctx()));
    expect(v2).toHaveLength(2);
    expect(v2[0]).toEqual(missed);
    expect(v2[1]).toEqual([
      ['BEGIN', 'SELECT count(CASE WHEN s.x', 'SELECT t.org_code, t.id, t.rec_version,', 'SELECT DISTINCT org_code, parent_id'],
      ['WITH rec_old_src AS (SELECT', 'COMMIT'],
    ]);
    // The try missed: the next wave of patients does not try (shared/ingest/new-records.ts).
    const v3 = await transactionsOf(() => upsertMany(db, resources.emrPatientInfo!, [{ ...v1, tel: '13700000009' }], ctx()));
    expect(v3).toHaveLength(1);
    expect(v3[0]![1]).toEqual(['WITH rec_old_src AS (SELECT', 'COMMIT']);
    const row = await db.query<{ rec_version: number; n: string }>(
      'SELECT rec_version, (SELECT count(*) FROM record_history WHERE resource = $3 AND org_code = $1 AND record_id = $2) AS n FROM emr_patient_info WHERE org_code = $1 AND id = $2',
      [org, pid, 'emrPatientInfo'],
    );
    expect(row.rows).toEqual([{ rec_version: 3, n: '3' }]);
  });

  it("a new record's receipt is inserted without being looked for; a stored one's is updated, or inserted if it lacks one", async () => {
    const composedOf = async (run: () => Promise<unknown>): Promise<string> => {
      texts = [];
      await run();
      return composed();
    };
    const pid = uniqueId('p');
    const v1 = sample('emrPatientInfo', { orgCode: org, id: pid, seed: 5 });
    // The usual path (a miss just before: this wave does not try to be written as new, whose guard
    // does look for the receipt).
    newRecordOdds(db).saw('emrPatientInfo', false);
    const fresh = await composedOf(() => upsertMany(db, resources.emrPatientInfo!, [v1], ctx()));
    expect(fresh).toMatch(/^WITH rec_new_src/);
    expect(fresh).toMatch(/receipt_new AS \(INSERT INTO record_receipt/);
    expect(fresh).not.toMatch(/receipt_upd|FROM record_receipt c/);
    // A stored record without a receipt (none is ever deleted; made here by hand) gets one on its next version.
    await db.query(`DELETE FROM record_receipt WHERE resource = 'emrPatientInfo' AND org_code = $1 AND record_id = $2`, [org, pid]);
    const stored = await composedOf(() => upsertMany(db, resources.emrPatientInfo!, [{ ...v1, tel: '13700000002' }], ctx()));
    expect(stored).toMatch(/receipt_upd AS \(UPDATE record_receipt/);
    expect(stored).not.toMatch(/receipt_new/);
    const receipt = await db.query<{ version: number; state: string }>(
      `SELECT version, state FROM record_receipt WHERE resource = 'emrPatientInfo' AND org_code = $1 AND record_id = $2`,
      [org, pid],
    );
    expect(receipt.rows).toEqual([{ version: 2, state: 'stored' }]);
    await upsertMany(db, resources.emrPatientInfo!, [{ ...v1, tel: '13700000003' }], ctx());
    const again = await db.query<{ version: number }>(
      `SELECT version FROM record_receipt WHERE resource = 'emrPatientInfo' AND org_code = $1 AND record_id = $2`,
      [org, pid],
    );
    expect(again.rows).toEqual([{ version: 3 }]);
  });

  it('a new version of a held record still looks for its holds and drops its waits', async () => {
    const dx = sample('emrActivityInfo', { orgCode: org, id: uniqueId('dx'), patientId: uniqueId('p'), seed: 4 });
    // Its patient is not stored: the try's guard returns no row, nothing of it is written, and the
    // usual path holds the record.
    const [tried, usual] = await transactionsOf(async () => {
      const [first] = await upsertMany(db, resources.emrActivityInfo!, [dx], ctx());
      expect(first!.ok && first!.outcome.held.length).toBe(1);
    });
    expect(tried).toEqual(missed);
    expect(usual![0]).toEqual(['BEGIN', 'SELECT count(CASE WHEN s.x', 'SELECT t.org_code, t.id, t.rec_version,', 'SELECT p.org_code, p.id FROM']);
    // That try missed, so the next diagnosis does not try (shared/ingest/new-records.ts).
    const again = await tripsOf(() => upsertMany(db, resources.emrActivityInfo!, [{ ...dx, diagnoseTime: '2026-01-15 10:31:00' }], ctx()));
    expect(again).toEqual([
      ['BEGIN', 'SELECT count(CASE WHEN s.x', 'SELECT t.org_code, t.id, t.rec_version,', 'SELECT p.org_code, p.id FROM'],
      ['SELECT org_code, record_id, kind,'],
      ['DELETE FROM record_parent_wait WHERE'],
      ['INSERT INTO record_parent_wait (resource,'],
      ['WITH rec_old_src AS (SELECT'],
      ['DELETE FROM record_hold WHERE'],
      ['INSERT INTO record_hold (resource,'],
      ['COMMIT'],
    ]);
    const history = await db.query('SELECT version FROM record_history WHERE resource = $1 AND org_code = $2 AND record_id = $3 ORDER BY hist_id', [
      'emrActivityInfo',
      org,
      dx.id,
    ]);
    expect(history.rows).toEqual([{ version: 1 }, { version: 2 }]);
  });

  it('a try misses when its parent is stored but held: the child is held behind it, and the try wrote no outbox row', async () => {
    const pid = uniqueId('p');
    const labId = uniqueId('lab');
    // The report's patient is not stored: the report is stored held.
    const [lab] = await upsertMany(db, resources.emrExLab!, [sample('emrExLab', { orgCode: org, id: labId, patientId: pid, seed: 60 })], ctx());
    expect(lab!.ok && lab!.outcome.held).toEqual([`parent:emrPatientInfo/${pid}`]);
    newRecordOdds(db).saw('emrExLabItem', true);
    const item = sample('emrExLabItem', { orgCode: org, id: uniqueId('item'), patientId: pid, parentId: labId, seed: 60 });
    const [tried, usual] = await transactionsOf(async () => {
      const [x] = await upsertMany(db, resources.emrExLabItem!, [item], ctx());
      expect(x!.ok && x!.outcome.held).toEqual([`parent:emrExLab/${labId}`]);
    });
    expect(tried).toEqual(missed);
    expect(usual![0]).toEqual(['BEGIN', 'SELECT count(CASE WHEN s.x', 'SELECT t.org_code, t.id, t.rec_version,', 'SELECT p.org_code, p.id FROM']);
    const rows = await db.query<{ state: string; n: number }>(
      `SELECT state, count(*)::int AS n FROM outbox WHERE resource = 'emrExLabItem' AND org_code = $1 AND record_id = $2 GROUP BY state`,
      [org, item.id],
    );
    const dest = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM uplink_destination WHERE enabled');
    expect(rows.rows).toEqual([{ state: 'held', n: dest.rows[0]!.n }]);
  });

  it("a try failing on a race (23505, 40P01, 40001) is a miss: the record is written once the usual way; any other failure is the call's", async () => {
    const dest = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM uplink_destination WHERE enabled')).rows[0]!.n;
    for (const code of ['23505', '40P01', '40001']) {
      const o = uniqueOrg();
      const drop = await failFirstInsert('emr_patient_info', code, o);
      try {
        const pid = uniqueId('p');
        newRecordOdds(db).saw('emrPatientInfo', true);
        const txs = await transactionsOf(async () => {
          const [x] = await upsertMany(db, resources.emrPatientInfo!, [sample('emrPatientInfo', { orgCode: o, id: pid, seed: 80 })], ctx());
          expect(x!.ok && `${x!.outcome.status}:${x!.outcome.version}`).toBe('created:1');
        });
        // The try (its statement failed, its COMMIT a rollback), then the usual two.
        expect(txs).toHaveLength(2);
        expect(txs[0]).toEqual(newRecord);
        expect(txs[1]![1]).toEqual(['WITH rec_new_src AS (SELECT', 'COMMIT']);
        const stored = await db.query(
          `SELECT (SELECT count(*)::int FROM emr_patient_info WHERE org_code = $1 AND id = $2) AS typed,
                  (SELECT count(*)::int FROM record_history WHERE org_code = $1 AND record_id = $2) AS history,
                  (SELECT count(*)::int FROM outbox WHERE org_code = $1 AND record_id = $2) AS outbox`,
          [o, pid],
        );
        expect(stored.rows).toEqual([{ typed: 1, history: 1, outbox: dest }]);
      } finally {
        await drop();
      }
    }
    // Not a race: the call fails with it, and nothing of the record is stored.
    const o = uniqueOrg();
    const drop = await failFirstInsert('emr_patient_info', '22012', o);
    try {
      const pid = uniqueId('p');
      newRecordOdds(db).saw('emrPatientInfo', true);
      await expect(upsertMany(db, resources.emrPatientInfo!, [sample('emrPatientInfo', { orgCode: o, id: pid, seed: 81 })], ctx())).rejects.toMatchObject({
        code: '22012',
      });
      const stored = await db.query('SELECT count(*)::int AS n FROM record_history WHERE org_code = $1 AND record_id = $2', [o, pid]);
      expect(stored.rows).toEqual([{ n: 0 }]);
    } finally {
      await drop();
    }
  });

  it("an item without an org from a caller bound to one org takes that org without a look-up; a caller of every org looks up its header's", async () => {
    const pid = uniqueId('p');
    const labId = uniqueId('lab');
    await upsertMany(db, resources.emrPatientInfo!, [sample('emrPatientInfo', { orgCode: org, id: pid, seed: 90 })], ctx());
    await upsertMany(db, resources.emrExLab!, [sample('emrExLab', { orgCode: org, id: labId, patientId: pid, seed: 90 })], ctx());
    const item = (i: number) => {
      const { orgCode: _o, ...rest } = sample('emrExLabItem', { orgCode: org, id: uniqueId(`item${i}`), patientId: pid, parentId: labId, seed: 90 + i });
      return rest;
    };
    const orgLookUps = () => all.filter((t) => / FROM emr_ex_lab WHERE id = ANY/.test(t));
    for (const [callerOrgs, lookUps] of [[[org], 0] as const, ['*', 1] as const]) {
      const it = item(lookUps);
      const txs = await transactionsOf(async () => {
        const [x] = await upsertMany(db, resources.emrExLabItem!, [it], { ...ctx(), callerOrgs });
        expect(x!.ok && x!.outcome.status).toBe('created');
      });
      expect(txs).toEqual([newRecord]);
      expect(orgLookUps()).toHaveLength(lookUps);
      const stored = await db.query('SELECT org_code FROM emr_ex_lab_item WHERE id = $1', [it.id]);
      expect(stored.rows).toEqual([{ org_code: org }]);
    }
  });

  it("only a call's first wave tries: a record sent twice in one call tries once", async () => {
    const pid = uniqueId('p');
    const v1 = sample('emrPatientInfo', { orgCode: org, id: pid, seed: 61 });
    const txs = await transactionsOf(async () => {
      const out = await upsertMany(db, resources.emrPatientInfo!, [v1, { ...v1, tel: '13700000061' }], ctx());
      expect(out.map((x) => x.ok && `${x.outcome.status}:${x.outcome.version}`)).toEqual(['created:1', 'updated:2']);
    });
    // The first wave in one round trip; the second the usual two, without a try before them.
    expect(txs).toHaveLength(2);
    expect(txs[0]).toEqual(newRecord);
    expect(txs[1]![1]).toEqual(['WITH rec_old_src AS (SELECT', 'COMMIT']);
  });

  it('a patient arriving after its held child releases it, the child behind the patient', async () => {
    const pid = uniqueId('p');
    const dxId = uniqueId('dx');
    const [held] = await upsertMany(db, resources.emrActivityInfo!, [sample('emrActivityInfo', { orgCode: org, id: dxId, patientId: pid, seed: 2 })], ctx());
    expect(held!.ok && held!.outcome.held).toEqual([`parent:emrPatientInfo/${pid}`]);
    // A child waits for this patient: the try misses; the usual path releases the child.
    const [tried, patient] = await transactionsOf(() =>
      upsertMany(db, resources.emrPatientInfo!, [sample('emrPatientInfo', { orgCode: org, id: pid, seed: 2 })], ctx()),
    );
    expect(tried).toEqual(missed);
    // The waits are taken away in the composed statement; COMMIT only after the child is released.
    expect(patient!.slice(0, 2)).toEqual([
      ['BEGIN', 'SELECT count(CASE WHEN s.x', 'SELECT t.org_code, t.id, t.rec_version,', 'SELECT DISTINCT org_code, parent_id'],
      ['WITH rec_new_src AS (SELECT'],
    ]);
    expect(patient!.length).toBeGreaterThan(3);
    expect(patient!.at(-1)).toEqual(['COMMIT']);
    const rows = await db.query<{ resource: string; state: string }>(
      `SELECT resource, state FROM outbox WHERE org_code = $1 AND record_id IN ($2, $3) ORDER BY outbox_id`,
      [org, pid, dxId],
    );
    const states = rows.rows.map((r) => `${r.resource}:${r.state}`);
    expect(states.length).toBeGreaterThan(0);
    expect(states.every((s) => s.endsWith(':pending'))).toBe(true);
    // Per destination, the patient first: every patient row comes before every diagnosis row.
    const lastPatient = states.lastIndexOf(`emrPatientInfo:pending`);
    const firstDx = states.indexOf(`emrActivityInfo:pending`);
    expect(firstDx).toBeGreaterThan(lastPatient);
    const receipt = await db.query<{ state: string }>(
      `SELECT state FROM record_receipt WHERE resource = 'emrActivityInfo' AND org_code = $1 AND record_id = $2`,
      [org, dxId],
    );
    expect(receipt.rows[0]!.state).toBe('stored');
  });
});

describe('new records racing', () => {
  it('two calls creating one record at once: one creates it, the other its next version; nothing twice, nothing lost', async () => {
    const other = testDb();
    const pid = uniqueId('p');
    await upsertMany(db, resources.emrPatientInfo!, [sample('emrPatientInfo', { orgCode: org, id: pid, seed: 50 })], ctx());
    for (let round = 0; round < 10; round++) {
      for (const pool of [db, other]) newRecordOdds(pool).saw('emrActivityInfo', true);
      const dx = sample('emrActivityInfo', { orgCode: org, id: uniqueId('race'), patientId: pid, seed: 50 + round });
      const results = await Promise.all([
        upsertMany(db, resources.emrActivityInfo!, [dx], ctx()),
        upsertMany(other, resources.emrActivityInfo!, [{ ...dx, diagnoseTime: '2026-01-15 10:31:00' }], ctx()),
      ]);
      const outcomes = results.map(([x]) => (x?.ok ? `${x.outcome.status}:${x.outcome.version}` : String(x?.ok === false && x.error.message))).sort();
      expect(outcomes).toEqual(['created:1', 'updated:2']);
      const stored = await db.query(
        `SELECT (SELECT rec_version FROM emr_activity_info WHERE org_code = $1 AND id = $2) AS typed,
                (SELECT version FROM record_receipt WHERE resource = 'emrActivityInfo' AND org_code = $1 AND record_id = $2) AS receipt,
                (SELECT string_agg(version::text, ',' ORDER BY hist_id) FROM record_history WHERE resource = 'emrActivityInfo' AND org_code = $1 AND record_id = $2) AS history,
                (SELECT count(DISTINCT destination)::int FROM outbox WHERE resource = 'emrActivityInfo' AND org_code = $1 AND record_id = $2 AND version = 1) AS v1,
                (SELECT count(*)::int FROM outbox WHERE resource = 'emrActivityInfo' AND org_code = $1 AND record_id = $2 AND version = 1) AS v1rows,
                (SELECT count(*)::int FROM outbox WHERE resource = 'emrActivityInfo' AND org_code = $1 AND record_id = $2 AND version = 2) AS v2rows`,
        [org, dx.id],
      );
      const row = stored.rows[0]!;
      expect({ typed: row.typed, receipt: row.receipt, history: row.history }).toEqual({ typed: 2, receipt: 2, history: '1,2' });
      expect(row.v1).toBeGreaterThan(0);
      expect([row.v1rows, row.v2rows]).toEqual([row.v1, row.v1]);
    }
  });
});
