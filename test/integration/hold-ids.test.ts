// Hold bookkeeping no id can break, through the real runtime and its ports (docs/faults.md, "Hold
// storage"): children of parents whose ids hold "mapping:", "parent:", "%", "/", backslashes and
// Chinese are held and released exactly (ids with whitespace inside or quotes are refused as keys,
// docs/his-guide.md `keyFormat`), a code like "%" is held until mapped, and meanwhile other orgs' records
// reach the platform. And a push-run step that fails (the orphan sweep, timed out on a locked
// table) stops neither the other sweeps nor the destinations.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { startPlatformSimulator, type PlatformHandle } from '../../infra/simulators/platform.js';
import { samplePatient } from '../../infra/simulators/his.js';
import { sample } from '../../infra/simulators/samples.js';
import { freePort } from '../../infra/runtime/replica.js';
import { MappingInputSchema, saveMapping } from '../../shared/codes/index.js';
import { startTestFront, type TestFront } from './front-stack.js';

const db = testDb({ max: 3 });
const DEST = `hid${randomBytes(3).toString('hex')}`;
let sim: PlatformHandle;
let front: TestFront;

beforeAll(async () => {
  sim = await startPlatformSimulator({ role: 'national' });
  // No nudges: every push run below is one the test starts, so its answer is the run that sent.
  front = await startTestFront({
    functions: ['patient', 'lab', 'push'],
    databaseUrl: databaseUrl(),
    destination: { name: DEST, url: sim.url },
    env: { PUSH_NUDGE_URL: `http://127.0.0.1:${await freePort()}/closed` },
  });
}, 120_000);

afterAll(async () => {
  await front?.close();
  await sim?.close();
}, 60_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function post(resource: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${front.data}/hclient/emr/receive/${resource}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Runs the push (as the cron does) until `done` holds; every run must answer 200 with no failed step. */
async function pushUntil(done: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 20_000;
  for (;;) {
    const run = await front.push({ cron: true });
    expect(run.status, JSON.stringify(run.body)).toBe(200);
    expect(run.body.failedSteps, JSON.stringify(run.body)).toEqual([]);
    if (done()) return;
    if (Date.now() > end) throw new Error(`not at the platform in time: ${what}`);
    await sleep(300);
  }
}

const atPlatform = (org: string, id: string) => sim.records().some((r) => r.orgCode === org && r.id === id);

const HOSTILE = ['a_mapping:x/%_b', 'p-parent:emrExLab/zz-q', '%E0%A4%A', `中文\\%%mapping:`, 'x--mapping:sex/%25--y'];

describe('hostile ids and codes', () => {
  it('are held and released exactly, and never stop other orgs’ records from reaching the platform', { timeout: 90_000 }, async () => {
    const org = uniqueOrg();
    const other = uniqueOrg();
    const pid = uniqueId('P');
    expect((await post('emrPatientInfo', samplePatient({ orgCode: org, id: pid }))).status).toBe(200);

    // Children first, each waiting for a lab report whose id is hostile. Their own ids are hostile too.
    const items = HOSTILE.map((parent) => ({
      parent,
      rec: sample('emrExLabItem', { orgCode: org, id: `${uniqueId('i')}-${parent}`.slice(0, 80), parentId: parent, patientId: pid }),
    }));
    // Whitespace inside a key, or a quote, is no key at all: refused, naming the rule.
    for (const bad of ['a mapping:x/% b', `中 文'"\\ %% mapping:`]) {
      const r = await post('emrExLabItem', sample('emrExLabItem', { orgCode: org, id: uniqueId('i'), parentId: bad, patientId: pid }));
      expect(r.status).toBe(400);
    }
    for (const { parent, rec } of items) {
      const r = await post('emrExLabItem', rec);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.held).toEqual([`parent:emrExLab/${parent}`]);
    }
    // A code that is all escape character: held for its mapping.
    const odd = samplePatient({ orgCode: org, id: uniqueId('P'), seed: 3 });
    odd.genderCode = '%';
    const h = await post('emrPatientInfo', odd);
    expect(h.status).toBe(200);
    expect(h.body.held).toEqual(['mapping:sex/%25']);

    // Stored as fields, exactly as sent.
    const holds = await db.query<{ record_id: string; kind: string; target: string; value: string }>(
      'SELECT record_id, kind, target, value FROM record_hold WHERE org_code = $1 ORDER BY record_id',
      [org],
    );
    expect(holds.rows).toEqual(
      expect.arrayContaining([
        ...items.map(({ parent, rec }) => ({ record_id: rec.id, kind: 'parent', target: 'emrExLab', value: parent })),
        { record_id: odd.id, kind: 'mapping', target: 'sex', value: '%' },
      ]),
    );
    expect(holds.rowCount).toBe(items.length + 1);
    // The HIS sees the same when it asks.
    const fate = await fetch(`${front.data}/hclient/emr/receive/emrExLabItem/${encodeURIComponent(items[0]!.rec.id as string)}?orgCode=${org}`);
    expect(((await fate.json()) as { fate: { held: string[] } }).fate.held).toEqual([`parent:emrExLab/${HOSTILE[0]}`]);

    // Meanwhile another org's record goes out, through runs that sweep these holds (cron: orphans too).
    const b = samplePatient({ orgCode: other, id: uniqueId('B') });
    expect((await post('emrPatientInfo', b)).status).toBe(200);
    await pushUntil(() => atPlatform(other, b.id as string), 'the other org’s patient');
    expect(items.some(({ rec }) => atPlatform(org, rec.id as string))).toBe(false);

    // The parents come: every child is released, behind its parent.
    for (const parent of HOSTILE) {
      const r = await post('emrExLab', sample('emrExLab', { orgCode: org, id: parent, patientId: pid }));
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.held).toBeUndefined();
    }
    await pushUntil(() => items.every(({ rec }) => atPlatform(org, rec.id as string)), 'the released children');
    const order = sim
      .records()
      .filter((r) => r.orgCode === org)
      .map((r) => `${r.resource}/${r.id}`);
    for (const { parent, rec } of items) {
      expect(order.indexOf(`emrExLab/${parent}`)).toBeGreaterThanOrEqual(0);
      expect(order.indexOf(`emrExLab/${parent}`)).toBeLessThan(order.indexOf(`emrExLabItem/${rec.id}`));
    }

    // The code gets its mapping: the record is re-mapped and released.
    await saveMapping(db, MappingInputSchema.parse({ org, domain: 'sex', localCode: '%', nationalCode: '2', localName: '女' }), { by: 'hold-ids test' });
    await pushUntil(() => atPlatform(org, odd.id as string), 'the re-mapped patient');
    expect(sim.records().find((r) => r.id === odd.id)!.payload).toMatchObject({ genderCode: '2', _local: { genderCode: { code: '%' } } });
    expect((await db.query('SELECT 1 FROM record_hold WHERE org_code = $1', [org])).rowCount).toBe(0);
    expect((await db.query(`SELECT 1 FROM record_receipt WHERE org_code = $1 AND state = 'held'`, [org])).rowCount).toBe(0);
  });
});

describe('a push-run step that fails', () => {
  it('is logged and reported, and the other sweeps and the destinations still run', { timeout: 90_000 }, async () => {
    const org = uniqueOrg();
    const rec = samplePatient({ orgCode: org, id: uniqueId('C') });
    expect((await post('emrPatientInfo', rec)).status).toBe(200);
    await front.redeploy('push', { DB_STATEMENT_TIMEOUT_MS: '1500' });
    // The orphan sweep reads record_parent_wait first; with the table locked it times out.
    const t0 = new Date();
    const locker = await db.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE record_parent_wait IN ACCESS EXCLUSIVE MODE');
      const run = await front.push({ cron: true });
      expect(run.status, JSON.stringify(run.body)).toBe(200);
      expect(run.body.failedSteps).toEqual([{ step: 'orphans', error: expect.stringMatching(/statement timeout/) }]);
      // The mapping sweep ran: its counts are reported. Records of other test files held for a
      // mapping (the database is shared) may be re-mapped in this run; their release reads
      // record_parent_wait, locked here, so each fails on its own and stays held for the next run
      // (shared/ingest/mapping.ts), which is the sweep working, not failing.
      expect(run.body.mapping).toEqual({ checked: expect.any(Number), remapped: expect.any(Number), released: expect.any(Number), failed: expect.any(Number) });
      const m = run.body.mapping as { checked: number; remapped: number; failed: number };
      expect(m.failed).toBe(m.checked - m.remapped);
      const mine = (run.body.results as Array<{ destination: string; sent: number }>).find((r) => r.destination === DEST);
      expect(mine?.sent, JSON.stringify(run.body)).toBeGreaterThanOrEqual(1);
      expect(atPlatform(org, rec.id as string)).toBe(true);
    } finally {
      await locker.query('ROLLBACK');
      locker.release();
    }
    // The run is recorded with the failed step named.
    const note = await db.query<{ note: string | null }>(`SELECT note FROM push_run WHERE started_at >= $1 AND note LIKE 'orphans: %'`, [t0]);
    expect(note.rows[0]?.note).toMatch(/^orphans: .*statement timeout/);
  });
});
