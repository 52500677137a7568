// The statements of a single record's write (docs/ingest.md "Round trips"), counted on the driver:
// a new patient is BEGIN with its link lock, the row lock, one composed statement (the typed row,
// history, outbox rows, receipt and the waits of its children) and COMMIT; a diagnosis whose
// patient is stored adds only the parent check; a new version of a stored record is the same four,
// its typed row an UPDATE instead of an INSERT. A patient written after a held child releases it
// in the same transaction, the child's outbox rows behind the patient's.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sample } from '../../infra/simulators/samples.js';
import { resources } from '../../schemas/index.js';
import { upsertMany, type IngestContext } from '../../shared/ingest/index.js';
import { testDb, uniqueId, uniqueOrg } from '../setup/db.js';

const db = testDb();
const ctx = (): IngestContext => ({ callId: null, test: false, now: new Date() });
const org = uniqueOrg();

type Query = (...a: unknown[]) => unknown;
const proto = pg.Client.prototype as unknown as { query: Query };
const original = proto.query;
let seen: string[] = [];
beforeAll(() => {
  proto.query = function (this: unknown, ...args: unknown[]) {
    const q = args[0];
    seen.push(typeof q === 'string' ? q : ((q as { text?: string })?.text ?? ''));
    return original.apply(this, args);
  };
});
afterAll(() => {
  proto.query = original;
});

/** The statements of the call's transaction, each named by its first words. */
async function statementsOf(run: () => Promise<unknown>): Promise<string[]> {
  seen = [];
  await run();
  const begin = seen.findIndex((s) => s.startsWith('BEGIN'));
  const commit = seen.indexOf('COMMIT');
  return seen.slice(begin, commit + 1).map((s) => s.replace(/\s+/g, ' ').trim().split(' ').slice(0, 4).join(' '));
}

describe('round trips of a single record', () => {
  it('a new patient: four statements, a diagnosis of a stored patient: five', async () => {
    const pid = uniqueId('p');
    const patient = await statementsOf(() => upsertMany(db, resources.emrPatientInfo!, [sample('emrPatientInfo', { orgCode: org, id: pid, seed: 1 })], ctx()));
    expect(patient).toEqual([
      'BEGIN; SELECT count(pg_advisory_xact_lock(k)) FROM',
      'SELECT t.org_code, t.id, t.rec_version,',
      'WITH rec_new_src AS (SELECT',
      'COMMIT',
    ]);
    const dx = await statementsOf(() =>
      upsertMany(db, resources.emrActivityInfo!, [sample('emrActivityInfo', { orgCode: org, id: uniqueId('dx'), patientId: pid, seed: 1 })], ctx()),
    );
    expect(dx).toEqual([
      'BEGIN; SELECT count(pg_advisory_xact_lock(k)) FROM',
      'SELECT t.org_code, t.id, t.rec_version,',
      'SELECT p.org_code, p.id FROM',
      'WITH rec_new_src AS (SELECT',
      'COMMIT',
    ]);
  });

  it('a new version of a stored patient: the same four, its row UPDATEd in the composed statement', async () => {
    const pid = uniqueId('p');
    const v1 = sample('emrPatientInfo', { orgCode: org, id: pid, seed: 3 });
    await upsertMany(db, resources.emrPatientInfo!, [v1], ctx());
    const v2 = await statementsOf(() => upsertMany(db, resources.emrPatientInfo!, [{ ...v1, tel: '13700000001' }], ctx()));
    expect(v2).toEqual([
      'BEGIN; SELECT count(pg_advisory_xact_lock(k)) FROM',
      'SELECT t.org_code, t.id, t.rec_version,',
      'WITH rec_old_src AS (SELECT',
      'COMMIT',
    ]);
    const row = await db.query<{ rec_version: number; n: string }>(
      'SELECT rec_version, (SELECT count(*) FROM record_history WHERE resource = $3 AND org_code = $1 AND record_id = $2) AS n FROM emr_patient_info WHERE org_code = $1 AND id = $2',
      [org, pid, 'emrPatientInfo'],
    );
    expect(row.rows).toEqual([{ rec_version: 2, n: '2' }]);
  });

  it('a new version of a held record still looks for its holds and drops its waits', async () => {
    const dx = sample('emrActivityInfo', { orgCode: org, id: uniqueId('dx'), patientId: uniqueId('p'), seed: 4 });
    const [first] = await upsertMany(db, resources.emrActivityInfo!, [dx], ctx());
    expect(first!.ok && first!.outcome.held.length).toBe(1);
    const again = await statementsOf(() => upsertMany(db, resources.emrActivityInfo!, [{ ...dx, diagnoseTime: '2026-01-15 10:31:00' }], ctx()));
    expect(again).toEqual([
      'BEGIN; SELECT count(pg_advisory_xact_lock(k)) FROM',
      'SELECT t.org_code, t.id, t.rec_version,',
      'SELECT p.org_code, p.id FROM',
      'SELECT org_code, record_id, kind,',
      'DELETE FROM record_parent_wait WHERE',
      'INSERT INTO record_parent_wait (resource,',
      'WITH rec_old_src AS (SELECT',
      'DELETE FROM record_hold WHERE',
      'INSERT INTO record_hold (resource,',
      'COMMIT',
    ]);
  });

  it('a patient arriving after its held child releases it, the child behind the patient', async () => {
    const pid = uniqueId('p');
    const dxId = uniqueId('dx');
    const [held] = await upsertMany(db, resources.emrActivityInfo!, [sample('emrActivityInfo', { orgCode: org, id: dxId, patientId: pid, seed: 2 })], ctx());
    expect(held!.ok && held!.outcome.held).toEqual([`parent:emrPatientInfo/${pid}`]);
    await upsertMany(db, resources.emrPatientInfo!, [sample('emrPatientInfo', { orgCode: org, id: pid, seed: 2 })], ctx());
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
