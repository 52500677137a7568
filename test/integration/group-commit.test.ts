// Group commit (shared/ingest/group.ts; docs/ingest.md "Group commit"): concurrent single-record
// calls are written together, each answered with its own outcome after the commit; a record that
// fails validation gets its own error and the rest are stored; a database error in a group fails
// no neighbour (the group is retried record by record); repeated keys keep their arrival order.
import { describe, expect, it } from 'vitest';
import { sample } from '../../infra/simulators/samples.js';
import { resources as registry } from '../../schemas/index.js';
import type { AppError } from '../../shared/http/errors.js';
import { GroupCommitter } from '../../shared/ingest/group.js';
import type { IngestContext, ItemResult } from '../../shared/ingest/index.js';
import { testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { keyIdOf, pii } from '../../shared/pii/index.js';

const db = testDb();
const patient = registry.emrPatientInfo!;
const ctx = (callId: string): IngestContext => ({ callId, test: false, now: new Date(), caller: 'test:group' });
const outcome = (r: ItemResult) => (r.ok ? [r.outcome.status, r.outcome.version] : ['error', r.error.code]);

/**
 * A patient row the database refuses though validation passed it (a constraint the schema cannot
 * see): a trigger raising for one id. Returns what drops it.
 */
async function refusedByTheDatabase(id: string): Promise<() => Promise<void>> {
  const fn = `refuse_${id.replace(/\W/g, '_')}`;
  await db.query(
    `CREATE FUNCTION ${fn}() RETURNS trigger AS $$ BEGIN IF NEW.id = '${id}' THEN RAISE EXCEPTION 'refused by test'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql`,
  );
  await db.query(`CREATE TRIGGER ${fn} BEFORE INSERT ON emr_patient_info FOR EACH ROW EXECUTE PROCEDURE ${fn}()`);
  return async () => {
    await db.query(`DROP TRIGGER ${fn} ON emr_patient_info`);
    await db.query(`DROP FUNCTION ${fn}()`);
  };
}

describe('group commit', () => {
  it('gathers concurrent calls into few transactions, each answered with its own outcome, repeated keys in order', async () => {
    const g = new GroupCommitter(() => db, { maxGroup: 64, waitMs: 0 });
    const org = uniqueOrg();
    const ids = Array.from({ length: 40 }, () => uniqueId('p'));
    const first = sample('emrPatientInfo', { orgCode: org, id: ids[0]!, seed: 1 });
    const calls = [
      ...ids.map((id, i) => g.submit(patient, sample('emrPatientInfo', { orgCode: org, id, seed: i + 1 }), ctx(`c${i}`))),
      // The same record again, changed, then unchanged: three calls, one key, in this order.
      g.submit(patient, { ...first, tel: '13700000000' }, ctx('again')),
      g.submit(patient, { ...first, tel: '13700000000' }, ctx('same')),
    ];
    const results = await Promise.all(calls);
    expect(results.slice(0, 40).map(outcome)).toEqual(ids.map(() => ['created', 1]));
    expect(results.slice(40).map(outcome)).toEqual([
      ['updated', 2],
      ['unchanged', 2],
    ]);
    // 42 calls, far fewer transactions: the first alone (the resource was idle), the rest together.
    expect(g.stats.records).toBe(42);
    expect(g.stats.groups).toBeLessThanOrEqual(3);
    expect(g.stats.largest).toBeGreaterThanOrEqual(20);
    // Each record's history names the call that sent it.
    const hist = (
      await db.query<{ record_id: string; version: number; call_id: string }>(
        'SELECT record_id, version, call_id FROM record_history WHERE org_code = $1 AND record_id = $2 ORDER BY version',
        [org, ids[0]],
      )
    ).rows;
    expect(hist.map((h) => [h.version, h.call_id])).toEqual([
      [1, 'c0'],
      [2, 'again'],
    ]);
    const out = (
      await db.query<{ version: number }>(`SELECT version FROM outbox WHERE destination = 'national' AND org_code = $1 AND record_id = $2 ORDER BY outbox_id`, [
        org,
        ids[0],
      ])
    ).rows;
    expect(out.map((o) => o.version)).toEqual([1, 2]);
  });

  it('keeps a record that fails validation out of the group: its own error, its neighbours stored', async () => {
    const g = new GroupCommitter(() => db, { maxGroup: 64, waitMs: 0 });
    const org = uniqueOrg();
    const good = Array.from({ length: 5 }, (_, i) => sample('emrPatientInfo', { orgCode: org, id: uniqueId('p'), seed: i + 1 }));
    const bad = { ...sample('emrPatientInfo', { orgCode: org, id: uniqueId('p'), seed: 9 }), genderCode: undefined, birthDate: 'yesterday' };
    const results = await Promise.all([
      g.submit(patient, good[0], ctx('g0')),
      ...good.slice(1).map((b, i) => g.submit(patient, b, ctx(`g${i + 1}`))),
      g.submit(patient, bad, ctx('bad')),
    ]);
    expect(results.map(outcome)).toEqual([...good.map(() => ['created', 1]), ['error', 'VALIDATION_FAILED']]);
    const fields = (results[5] as { ok: false; error: AppError }).error.issues.map((i) => i.field).sort();
    expect(fields).toEqual(['birthDate', 'genderCode']);
    expect(Number((await db.query('SELECT count(*) FROM emr_patient_info WHERE org_code = $1', [org])).rows[0].count)).toBe(5);
    expect(g.stats.retriedGroups).toBe(0);
  });

  it('retries a group record by record when the database refuses one row: only that call fails', async () => {
    const g = new GroupCommitter(() => db, { maxGroup: 64, waitMs: 0 });
    const org = uniqueOrg();
    const poison = uniqueId('poison');
    const drop = await refusedByTheDatabase(poison);
    try {
      const recs = [uniqueId('p'), uniqueId('p'), poison, uniqueId('p'), uniqueId('p')].map((id, i) =>
        sample('emrPatientInfo', { orgCode: org, id, seed: i + 1 }),
      );
      // The first call flushes alone (idle); the other four form the group the poison row is in.
      const results = await Promise.all(recs.map((b, i) => g.submit(patient, b, ctx(`r${i}`)).catch((err: Error) => ({ thrown: err.message }))));
      expect(results.map((r) => ('thrown' in r ? ['thrown', r.thrown] : outcome(r)))).toEqual([
        ['created', 1],
        ['created', 1],
        ['thrown', 'refused by test'],
        ['created', 1],
        ['created', 1],
      ]);
      expect(g.stats.retriedGroups).toBe(1);
      const stored = (await db.query<{ id: string }>('SELECT id FROM emr_patient_info WHERE org_code = $1 ORDER BY id', [org])).rows.map((r) => r.id);
      expect(stored).toEqual(
        recs
          .filter((r) => r.id !== poison)
          .map((r) => String(r.id))
          .sort(),
      );
      // Nothing of the refused record was half-stored: no history, no outbox row.
      expect(Number((await db.query('SELECT count(*) FROM record_history WHERE org_code = $1 AND record_id = $2', [org, poison])).rows[0].count)).toBe(0);
      expect(Number((await db.query('SELECT count(*) FROM outbox WHERE org_code = $1 AND record_id = $2', [org, poison])).rows[0].count)).toBe(0);
    } finally {
      await drop();
    }
  });

  it('retries a failed group without refusing its refused calls again: each logged once', async () => {
    const g = new GroupCommitter(() => db, { maxGroup: 64, waitMs: 0 });
    const org = uniqueOrg();
    const poison = uniqueId('poison');
    const drop = await refusedByTheDatabase(poison);
    try {
      const recs = [uniqueId('p'), poison, uniqueId('p')].map((id, i) => sample('emrPatientInfo', { orgCode: org, id, seed: i + 1 }));
      const badId = uniqueId('p');
      const bad = { ...sample('emrPatientInfo', { orgCode: org, id: badId, seed: 9 }), birthDate: 'yesterday' };
      const results = await Promise.all([...recs, bad].map((b, i) => g.submit(patient, b, ctx(`x${i}`)).catch((err: Error) => ({ thrown: err.message }))));
      expect(results.map((r) => ('thrown' in r ? ['thrown', r.thrown] : outcome(r)))).toEqual([
        ['created', 1],
        ['thrown', 'refused by test'],
        ['created', 1],
        ['error', 'VALIDATION_FAILED'],
      ]);
      expect(g.stats.retriedGroups).toBe(1);
      const logged = await db.query('SELECT record_id, call_id FROM ingest_rejection WHERE org_code = $1', [org]);
      expect(logged.rows).toEqual([{ record_id: badId, call_id: 'x3' }]);
    } finally {
      await drop();
    }
  });

  it('writes groups side by side, yet never two groups with one key: versions stay in call order', async () => {
    const g = new GroupCommitter(() => db, { maxGroup: 8, waitMs: 0, parallel: 3 });
    const org = uniqueOrg();
    const ids = Array.from({ length: 6 }, () => uniqueId('p'));
    // Six records, each sent five times with a different phone, interleaved: 30 calls at once.
    const calls: Array<Promise<ItemResult>> = [];
    for (let v = 1; v <= 5; v++)
      for (const [i, id] of ids.entries())
        calls.push(g.submit(patient, { ...sample('emrPatientInfo', { orgCode: org, id, seed: i + 1 }), tel: `1370000000${v}` }, ctx(`${id}-${v}`)));
    const results = await Promise.all(calls);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(g.stats.groups).toBeGreaterThan(1);
    for (const id of ids) {
      const hist = (
        await db.query<{ version: number; call_id: string }>(
          'SELECT version, call_id FROM record_history WHERE org_code = $1 AND record_id = $2 ORDER BY version',
          [org, id],
        )
      ).rows;
      expect(hist.map((h) => h.call_id)).toEqual([1, 2, 3, 4, 5].map((v) => `${id}-${v}`));
      const tel = (await db.query('SELECT tel FROM emr_patient_info WHERE org_code = $1 AND id = $2', [org, id])).rows[0].tel;
      expect(keyIdOf(tel)).not.toBeNull();
      expect(pii().open(tel)).toBe('13700000005');
    }
  });

  it('writes a lone call at once: it never waits for company', async () => {
    const g = new GroupCommitter(() => db, { maxGroup: 64, waitMs: 0 });
    const org = uniqueOrg();
    const r = await g.submit(patient, sample('emrPatientInfo', { orgCode: org, id: uniqueId('p'), seed: 3 }), ctx('lone'));
    expect(outcome(r)).toEqual(['created', 1]);
    expect(g.stats).toMatchObject({ groups: 1, records: 1, largest: 1 });
  });
});
