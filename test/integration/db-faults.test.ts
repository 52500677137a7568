// Database faults answered right, through the real runtime and its ports (docs/faults.md,
// "Database faults"): every session of the front terminated again and again under HIS traffic (no
// replica exits, every request answered 200 or 503, service resumes); a real disk-full error
// (SQLSTATE 53100, raised by the server inside the write) answered 503 with Retry-After and nothing
// half-stored; a statement held up past statement_timeout answered 503 too.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { startPlatformSimulator, type PlatformHandle } from '../../infra/simulators/platform.js';
import { samplePatient } from '../../infra/simulators/his.js';
import { startTestFront, tagged, type TestFront } from './front-stack.js';

const tag = randomBytes(4).toString('hex');
const app = `dbfaults_${tag}`;
const DEST = `dbf${tag.slice(0, 6)}`;
const db = testDb({ max: 3 });
let sim: PlatformHandle;
let front: TestFront;

beforeAll(async () => {
  sim = await startPlatformSimulator({ role: 'national' });
  front = await startTestFront({ functions: ['patient', 'push'], databaseUrl: tagged(databaseUrl(), app), destination: { name: DEST, url: sim.url } });
}, 120_000);

afterAll(async () => {
  await front?.close();
  await sim?.close();
}, 60_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function post(body: unknown): Promise<{ status: number; retryAfter: string | null; body: Record<string, unknown> }> {
  const res = await fetch(`${front.data}/hclient/emr/receive/emrPatientInfo`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as Record<string, unknown> };
}

const pids = (fn: string) => front.rt.replicas(fn).map((r) => r.pid);

describe('pg_terminate_backend of every session of the front, under traffic', () => {
  it('no replica exits, every request is answered 200 or 503 with Retry-After, and service resumes', { timeout: 60_000 }, async () => {
    const org = uniqueOrg();
    const before = { patient: pids('patient'), push: pids('push') };
    expect(before.patient.every(Boolean)).toBe(true);
    // The push holds a connection while the platform answers slowly: a terminated backend then hits
    // a checked-out client between two queries.
    await sim.fault({ mode: 'slow', seconds: 1 });

    const statuses = new Map<number, number>();
    const faults = new Map<string, number>();
    const dropped: string[] = []; // no answer, or not the function’s (the runtime’s own, replica gone)
    const bad503: unknown[] = [];
    let stop = false;
    let terminated = 0;
    const worker = async (w: number) => {
      for (let i = 0; !stop; i++) {
        try {
          const r = await post(samplePatient({ orgCode: org, id: uniqueId(`t${w}`), seed: i }));
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          if (r.status === 503) {
            faults.set(String(r.body.fault), (faults.get(String(r.body.fault)) ?? 0) + 1);
            if (!r.retryAfter || r.body.result !== false || r.body.errorCode !== 'UNAVAILABLE') bad503.push({ retryAfter: r.retryAfter, body: r.body });
          }
        } catch (err) {
          dropped.push(String((err as Error).cause ?? err));
        }
      }
    };
    const killer = async () => {
      while (!stop) {
        const k = await db.query<{ n: string }>(
          'SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()',
          [app],
        );
        terminated += Number(k.rows[0]!.n);
        await sleep(300);
      }
    };
    const pushes = async () => {
      while (!stop) {
        await front.push().catch(() => undefined);
        await sleep(200);
      }
    };
    const running = [0, 1, 2, 3].map(worker).concat(killer(), pushes());
    await sleep(8_000);
    stop = true;
    await Promise.all(running);
    await sim.fault({ mode: 'none' });

    const seen = `statuses ${JSON.stringify([...statuses])}, faults ${JSON.stringify([...faults])}, terminated ${terminated}, unanswered ${dropped.slice(0, 3).join(' | ')}`;
    process.stdout.write(`[db-faults] ${seen}\n`);
    expect(terminated, seen).toBeGreaterThan(10);
    expect(dropped, seen).toEqual([]);
    expect(
      [...statuses.keys()].filter((s) => s !== 200 && s !== 503),
      seen,
    ).toEqual([]);
    expect(statuses.get(200) ?? 0, seen).toBeGreaterThan(0);
    expect(bad503, seen).toEqual([]);
    // The same processes: nothing crashed and was restarted.
    expect({ patient: pids('patient'), push: pids('push') }, seen).toEqual(before);

    // And they serve again: a record is stored, and the push delivers it.
    const last = samplePatient({ orgCode: org, id: uniqueId('after') });
    expect((await post(last)).status).toBe(200);
    const pushed = await front.push();
    expect(pushed.status).toBe(200);
    const end = Date.now() + 20_000;
    while (!sim.records().some((r) => r.id === last.id) && Date.now() < end) {
      await front.push();
      await sleep(300);
    }
    expect(sim.records().some((r) => r.id === last.id)).toBe(true);
  });
});

describe('a full disk (SQLSTATE 53100 from the server, inside the write)', () => {
  const org = uniqueOrg();
  const fn = `disk_full_${tag}`;
  beforeAll(async () => {
    // A trigger on the outbox raises the server's own disk_full error for this test's org only, in
    // the middle of the record's transaction (after the typed row and its history were written).
    await db.query(`CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.org_code = '${org}' THEN
          RAISE EXCEPTION 'could not extend file "base/16384/16390": No space left on device' USING ERRCODE = 'disk_full';
        END IF;
        RETURN NEW;
      END $$`);
    await db.query(`CREATE TRIGGER ${fn} BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION ${fn}()`);
  });
  afterAll(async () => {
    await db.query(`DROP TRIGGER IF EXISTS ${fn} ON outbox`);
    await db.query(`DROP FUNCTION IF EXISTS ${fn}()`);
  });

  it('answers 503 with Retry-After and the adapters’ envelope, stores nothing, and stores it once the disk has room', async () => {
    const rec = samplePatient({ orgCode: org, id: uniqueId('disk') });
    const r = await post(rec);
    expect(r.status).toBe(503);
    expect(r.retryAfter).toBe('60');
    expect(r.body).toMatchObject({ result: false, errorCode: 'UNAVAILABLE', fault: 'disk_full', id: null });
    expect(String(r.body.desc)).toMatch(/磁盘已满/);
    // A batch too.
    const b = await fetch(`${front.data}/hclient/emr/receive/emrPatientInfo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([samplePatient({ orgCode: org, id: uniqueId('disk') })]),
    });
    expect(b.status).toBe(503);
    expect(b.headers.get('retry-after')).toBe('60');
    // Nothing half-stored: no typed row, history, receipt or outbox row of the org.
    for (const table of ['emr_patient_info', 'record_history', 'record_receipt', 'outbox']) {
      const n = await db.query(`SELECT 1 FROM ${table} WHERE org_code = $1`, [org]);
      expect(n.rowCount, table).toBe(0);
    }
    // Room again: the retry is stored, as version 1.
    await db.query(`DROP TRIGGER ${fn} ON outbox`);
    const again = await post(rec);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ result: true, status: 'created', version: 1 });
  });
});

describe('a statement held up past statement_timeout', () => {
  it('is cancelled by the server and answered 503 (timeout); the record is stored once the lock is gone', { timeout: 60_000 }, async () => {
    const org = uniqueOrg();
    const rec = samplePatient({ orgCode: org, id: uniqueId('slow') });
    expect((await post(rec)).status).toBe(200);
    await front.redeploy('patient', { DB_STATEMENT_TIMEOUT_MS: '1000' });
    const locker = await db.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('SELECT 1 FROM emr_patient_info WHERE org_code = $1 AND id = $2 FOR UPDATE', [org, rec.id]);
      const t0 = Date.now();
      const r = await post({ ...rec, patientName: `${rec.patientName}改` });
      expect(r.status).toBe(503);
      expect(r.retryAfter).toBe('5');
      expect(r.body).toMatchObject({ result: false, errorCode: 'UNAVAILABLE', fault: 'timeout' });
      expect(Date.now() - t0).toBeLessThan(10_000);
      // The operator sees it in the function's log: the fault's class and SQLSTATE, never the record.
      const logged = async () => {
        const res = await fetch(`${front.rt.gatewayUrl}/system/logs?name=patient&tail=500&format=raw`, { headers: front.auth });
        return (await res.text()).split('\n').filter((l) => l.includes('"database fault"') && l.includes('"timeout"'));
      };
      let lines = await logged();
      for (let i = 0; i < 50 && lines.length === 0; i++) {
        await new Promise((ok) => setTimeout(ok, 100));
        lines = await logged();
      }
      expect(lines.length).toBeGreaterThan(0);
      expect(lines.join('\n')).toMatch(/"code":"(57014|55P03)"/);
      expect(lines.join('\n')).not.toContain(rec.patientName);
    } finally {
      await locker.query('ROLLBACK');
      locker.release();
    }
    const ok = await post({ ...rec, patientName: `${rec.patientName}改` });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ status: 'updated', version: 2 });
  });
});
