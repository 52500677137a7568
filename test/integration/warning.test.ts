// The warning run (docs/warning.md "Cases") on the real pipeline and database: records stored by the
// ingest pipeline are evaluated once, their evidence kept per record, and the pending case of each
// (org, patient, disease) derived — raised, awaiting a diagnosis, reported, re-derived when a record
// is retired — with every state change audited. A run killed half-way loses and doubles nothing.
import { spawn } from 'node:child_process';
import pg from 'pg';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { channelsOf } from '../../shared/alerts/index.js';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sample } from '../../infra/simulators/samples.js';
import { resources } from '../../schemas/index.js';
import { retireRecord, upsertMany, type IngestContext } from '../../shared/ingest/index.js';
import { formatLocal } from '../../shared/time/index.js';
import { loadTriggers } from '../../shared/warning/triggers.js';
import { listReminders, markReminder } from '../../shared/warning/reminders.js';
import { decideCase, precision, runWarnings, selfCheck, stateOf } from '../../shared/warning/store.js';
import { databaseUrl, testDb, uniqueId, uniqueOrg } from '../setup/db.js';

const db = testDb();
const triggers = loadTriggers();
const opts = { triggers, batch: 50, caseWindowDays: 90, orphanWaitMs: 60_000, maxMs: 30_000 };
const ctx = (): IngestContext => ({ callId: null, test: false, now: new Date() });

async function put(resource: string, ...bodies: Record<string, unknown>[]) {
  const res = await upsertMany(db, resources[resource]!, bodies, ctx());
  for (const r of res) if (!r.ok) throw new Error(`${resource}: ${r.error.desc}`);
}

const hourAgo = () => formatLocal(new Date(Date.now() - 3_600_000));

/**
 * Runs until nothing of `org` is pending or waiting is all that is left (the run is global: other
 * tests' records, written meanwhile, are evaluated too, so "nothing evaluated" never comes on a busy
 * database). Without an org: until a run evaluates nothing.
 */
async function drain(org?: string) {
  const end = Date.now() + (org === undefined ? 10_000 : 60_000);
  for (;;) {
    const r = await runWarnings(db, opts);
    if (!r.skipped) {
      if (org === undefined && r.evaluated === 0) return;
      if (org !== undefined) {
        // Pending rows of the org, but for items still waiting for a header that has not arrived.
        const left = await db.query(
          `SELECT count(*)::int AS n FROM record_history h WHERE h.org_code = $1 AND h.warn_pending = true
              AND NOT (h.resource = 'emrExLabItem' AND NOT EXISTS (SELECT 1 FROM emr_ex_lab l WHERE l.org_code = h.org_code AND l.id = h.raw->>'exLabId'))
              AND NOT (h.resource = 'emrOrderItem' AND NOT EXISTS (SELECT 1 FROM emr_order o WHERE o.org_code = h.org_code AND o.id = h.raw->>'orderId'))`,
          [org],
        );
        if (left.rows[0].n === 0) return;
      }
    }
    // Without an org this is a best effort to clear the backlog before a test: never a failure.
    if (Date.now() > end) {
      if (org === undefined) return;
      throw new Error('warning runs did not drain');
    }
    await new Promise((ok) => setTimeout(ok, 50));
  }
}

async function cases(org: string) {
  const r = await db.query<{ case_id: string; patient_id: string; disease: string; state: string; due_at: Date | null; first_at: Date | null }>(
    'SELECT case_id, patient_id, disease, state, due_at, first_at FROM warning_case WHERE org_code = $1 ORDER BY patient_id, disease, case_id',
    [org],
  );
  return r.rows;
}

async function patient(org: string, id: string) {
  await put('emrPatientInfo', sample('emrPatientInfo', { orgCode: org, id, seed: 2 }));
}

describe('case states from evidence', () => {
  it.each([
    [
      [
        { effect: 'raise', explained: false },
        { effect: 'close', explained: false },
      ],
      'to_confirm',
    ],
    [[{ effect: 'confirm', explained: false }], 'to_diagnose'],
    [[{ effect: 'confirm', explained: true }], 'closed'],
    [[{ effect: 'known', explained: false }], 'known'],
    [
      [
        { effect: 'raise', explained: false },
        { effect: 'carded', explained: false },
      ],
      'to_verify',
    ],
    [[{ effect: 'close', explained: false }], 'closed'],
  ] as const)('%o → %s', (effects, state) => {
    expect(stateOf([...effects])).toBe(state);
  });
});

describe('the warning run', () => {
  it('raises, asks for a diagnosis, reports and re-derives cases, each change audited', { timeout: 60_000 }, async () => {
    const org = uniqueOrg();
    const [p1, p2] = [uniqueId('p'), uniqueId('p')];
    await patient(org, p1);
    await patient(org, p2);
    const dxTime = hourAgo();
    const dxId = uniqueId('dx');
    const dx = {
      ...sample('emrActivityInfo', { orgCode: org, id: dxId, patientId: p1, seed: 3 }),
      wmDiseaseCode: 'A15.0',
      wmDiseaseName: '肺结核',
      diseaseCode: '',
      diseaseName: '',
      diagnoseTime: dxTime,
      activityTime: dxTime,
    };
    await put('emrActivityInfo', dx);
    const lab = uniqueId('lab');
    await put('emrExLab', sample('emrExLab', { orgCode: org, id: lab, patientId: p1, seed: 4 }));
    await put('emrExLabItem', {
      ...sample('emrExLabItem', { orgCode: org, id: `${lab}-1`, parentId: lab, seed: 1 }),
      itemName: '乙型肝炎表面抗原',
      examinationResultCode: '01',
      examinationResultName: '阳性',
    });
    // Isoniazid for p1 is explained by the tuberculosis diagnosis; for p2 it asks for one.
    for (const [p, id] of [
      [p1, uniqueId('ord')],
      [p2, uniqueId('ord')],
    ] as const) {
      await put('emrOrder', sample('emrOrder', { orgCode: org, id, patientId: p, seed: 5 }));
      await put('emrOrderItem', { ...sample('emrOrderItem', { orgCode: org, id: `${id}-1`, parentId: id, seed: 1 }), drugName: '异烟肼片' });
    }
    await drain(org);
    const c1 = await cases(org);
    expect(c1.map((c) => [c.patient_id, c.disease, c.state])).toEqual(
      [
        [p1, '病毒性肝炎', 'to_confirm'],
        [p1, '肺结核', 'to_confirm'],
        [p2, '肺结核', 'to_diagnose'],
      ].sort((a, b) => `${a[0]}${a[1]}`.localeCompare(`${b[0]}${b[1]}`)),
    );
    // The 24-hour clock runs from the diagnosis time.
    const tb = c1.find((c) => c.patient_id === p1 && c.disease === '肺结核')!;
    expect(new Date(tb.due_at!).getTime() - new Date(tb.first_at!).getTime()).toBe(24 * 3_600_000);
    expect(formatLocal(new Date(tb.first_at!))).toBe(dxTime);

    // A card for hepatitis B reports that case.
    await put('emrInfReport', {
      ...sample('emrInfReport', { orgCode: org, id: uniqueId('card'), patientId: p1, seed: 6 }),
      diseaseCode: '0302',
      diseaseName: '乙肝',
      caseTypeCode: '2',
      caseTypeName: '慢性',
    });
    // The diagnosis is retired: p1's tuberculosis now rests on the drug alone.
    await retireRecord(db, resources.emrActivityInfo!, { orgCode: org, id: dxId }, ctx());
    await drain(org);
    const c2 = await cases(org);
    expect(c2.filter((c) => c.patient_id === p1).map((c) => [c.disease, c.state])).toEqual([
      ['病毒性肝炎', 'to_verify'],
      ['肺结核', 'to_diagnose'],
    ]);
    const events = await db.query<{ from_state: string | null; to_state: string; actor: string }>(
      'SELECT e.from_state, e.to_state, e.actor FROM warning_case_event e JOIN warning_case c ON c.case_id = e.case_id WHERE c.org_code = $1 AND c.patient_id = $2 ORDER BY e.event_id',
      [org, p1],
    );
    expect(events.rows.map((e) => `${e.from_state}→${e.to_state}`).sort()).toEqual(
      ['null→to_confirm', 'null→to_confirm', 'to_confirm→to_verify', 'to_confirm→to_diagnose'].sort(),
    );
    expect(new Set(events.rows.map((e) => e.actor))).toEqual(new Set(['system']));
    // Each record version was evaluated once: nothing is pending for this org.
    const pending = await db.query('SELECT count(*)::int AS n FROM record_history WHERE org_code = $1 AND warn_pending = true', [org]);
    expect(pending.rows[0].n).toBe(0);
  });

  it('a batch reads its items’ headers and its records’ earlier evidence set-wise, and a record’s versions in one batch end as its last says', {
    timeout: 60_000,
  }, async () => {
    await drain();
    const org = uniqueOrg();
    const p = uniqueId('p');
    await patient(org, p);
    const lab = uniqueId('lab');
    await put('emrExLab', {
      ...sample('emrExLab', { orgCode: org, id: lab, patientId: p, seed: 4 }),
      examinationObjectiveDesc: '见检验项目',
      applyDeptCode: 'A03',
      applyPhysicianId: 'D-LAB-9',
    });
    const items = Array.from({ length: 60 }, (_, i) => ({
      ...sample('emrExLabItem', { orgCode: org, id: `${lab}-${i}`, parentId: lab, seed: i + 1 }),
      itemName: i === 0 ? '乙型肝炎表面抗原' : '谷丙转氨酶',
      examinationResultCode: i === 0 ? '01' : '',
    }));
    await put('emrExLabItem', ...items);
    // One diagnosis in three versions, all waiting for the same run: tuberculosis, then cholera, then nothing notifiable.
    const dxId = uniqueId('dx');
    const dx = (code: string, name: string) => ({
      ...sample('emrActivityInfo', { orgCode: org, id: dxId, patientId: p, seed: 3 }),
      wmDiseaseCode: code,
      wmDiseaseName: name,
      diseaseCode: '',
      diseaseName: '',
      diagnoseTime: hourAgo(),
      activityTime: hourAgo(),
    });
    await put('emrActivityInfo', dx('A15.0', '肺结核'));
    await put('emrActivityInfo', dx('A00.9', '霍乱'));
    await put('emrActivityInfo', dx('J18.9', '肺炎'));
    // The statements of this org's work: per row they were a header look-up and an evidence look-up each.
    const seen: string[] = [];
    const orig = pg.Client.prototype.query as (...a: unknown[]) => unknown;
    (pg.Client.prototype as unknown as { query: unknown }).query = function (this: unknown, ...a: unknown[]) {
      const text = typeof a[0] === 'string' ? a[0] : ((a[0] as { text?: string })?.text ?? '');
      const params = Array.isArray(a[1]) ? a[1] : [];
      if (params[0] === org && /FROM (?:emr_ex_lab|warning_evidence) WHERE org_code = \$1 AND (?:id|source_resource)/.test(text)) seen.push(text);
      return orig.apply(this, a);
    };
    try {
      await drain(org);
    } finally {
      (pg.Client.prototype as unknown as { query: unknown }).query = orig;
    }
    expect(seen.filter((t) => t.includes('emr_ex_lab')).length).toBeLessThanOrEqual(2);
    expect(seen.filter((t) => t.includes('warning_evidence')).length).toBeLessThanOrEqual(6);
    // The last version speaks for the record: no tuberculosis, no cholera; the lab's hepatitis B stands.
    expect((await cases(org)).filter((c) => c.state !== 'closed').map((c) => [c.disease, c.state])).toEqual([['病毒性肝炎', 'to_confirm']]);
    const ev = await db.query('SELECT source_resource, source_version, disease FROM warning_evidence WHERE org_code = $1 ORDER BY 1', [org]);
    expect(ev.rows, JSON.stringify(ev.rows)).toEqual([{ source_resource: 'emrExLabItem', source_version: 1, disease: '病毒性肝炎' }]);
    // An item's evidence is its request's: the requesting department and physician.
    const who = await db.query('SELECT dept_code, doctor_id FROM warning_case WHERE org_code = $1', [org]);
    expect(who.rows).toEqual([{ dept_code: 'A03', doctor_id: 'D-LAB-9' }]);
  });

  it('an item waits for its header’s patient, then is evaluated', { timeout: 60_000 }, async () => {
    const org = uniqueOrg();
    const p = uniqueId('p');
    const lab = uniqueId('lab');
    await put('emrExLabItem', {
      ...sample('emrExLabItem', { orgCode: org, id: `${lab}-1`, parentId: lab, seed: 1 }),
      itemName: 'HIV抗体确证',
      examinationResultCode: '01',
    });
    await drain(org);
    expect(await cases(org)).toEqual([]);
    await patient(org, p);
    await put('emrExLab', { ...sample('emrExLab', { orgCode: org, id: lab, patientId: p, seed: 4 }), examinationObjectiveDesc: '见检验项目' });
    await drain(org);
    expect((await cases(org)).map((c) => [c.patient_id, c.disease, c.state])).toEqual([[p, '艾滋病(含HIV感染)', 'to_confirm']]);
  });

  it('a run killed with SIGKILL in the middle of its transaction loses and doubles nothing', { timeout: 90_000 }, async () => {
    await drain();
    const org = uniqueOrg();
    const ps = Array.from({ length: 5 }, () => uniqueId('p'));
    for (const p of ps) {
      await patient(org, p);
      await put('emrActivityInfo', {
        ...sample('emrActivityInfo', { orgCode: org, id: uniqueId('dx'), patientId: p, seed: 3 }),
        wmDiseaseCode: 'A01.0',
        wmDiseaseName: '伤寒',
        diagnoseTime: hourAgo(),
        activityTime: hourAgo(),
      });
    }
    // Hold the evidence table so that the run blocks inside its transaction, after claiming rows.
    const blocker = await db.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE warning_evidence IN EXCLUSIVE MODE');
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '-e',
        `
      import('${resolve('shared/warning/store.ts')}').then(async ({ runWarnings }) => {
        const { loadTriggers } = await import('${resolve('shared/warning/triggers.ts')}');
        const pg = (await import('pg')).default;
        const pool = new pg.Pool({ connectionString: process.env.DB });
        await runWarnings(pool, { triggers: loadTriggers(), batch: 500, caseWindowDays: 90, orphanWaitMs: 60000, maxMs: 30000 });
      });`,
      ],
      { env: { ...process.env, DB: databaseUrl() }, stdio: 'ignore' },
    );
    // Wait until the child's transaction waits on the lock.
    for (let i = 0; ; i++) {
      const w = await db.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND (query LIKE 'DELETE FROM warning_evidence WHERE org_code%' OR query LIKE 'INSERT INTO warning_evidence %')",
      );
      if (w.rows[0].n > 0) break;
      if (i > 300) throw new Error('the run never reached the evidence table');
      await new Promise((ok) => setTimeout(ok, 50));
    }
    child.kill('SIGKILL');
    await new Promise((ok) => child.once('exit', ok));
    await blocker.query('ROLLBACK');
    blocker.release();
    // The dead client's transaction ends when its server process notices; until then its rows stay
    // locked (and skipped). Every row of the org is evaluated in the end.
    for (let i = 0; ; i++) {
      await drain(org);
      const left = await db.query('SELECT count(*)::int AS n FROM record_history WHERE org_code = $1 AND warn_pending = true', [org]);
      if (left.rows[0].n === 0) break;
      if (i > 100) throw new Error(`${left.rows[0].n} history rows never evaluated`);
      await new Promise((ok) => setTimeout(ok, 100));
    }
    const ev = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM warning_evidence WHERE org_code = $1', [org]);
    expect(ev.rows[0]!.n).toBe(5);
    expect((await cases(org)).map((c) => [c.disease, c.state])).toEqual(ps.map(() => ['伤寒和副伤寒', 'to_confirm']));
  });
});

describe('the card a reminder pre-fills', () => {
  it('names the subtype the diagnosis itself sent in diseaseCode (肺结核 病原学阳性 2606), not the disease alone', { timeout: 60_000 }, async () => {
    const org = uniqueOrg();
    const [p1, p2] = [uniqueId('p'), uniqueId('p')];
    await patient(org, p1);
    await patient(org, p2);
    const at = hourAgo();
    for (const [p, code] of [
      [p1, '2606'],
      [p2, ''],
    ] as const)
      await put('emrActivityInfo', {
        ...sample('emrActivityInfo', { orgCode: org, id: uniqueId('dx'), patientId: p, seed: 3 }),
        wmDiseaseCode: 'A15.0',
        wmDiseaseName: '肺结核',
        diseaseCode: code,
        diseaseName: code ? '病原学阳性' : '',
        diagnoseTime: at,
        activityTime: at,
      });
    await drain(org);
    const card = async (p: string) => (await listReminders(db, { orgs: [org], orgCode: org, patient: p, limit: 10 }, new Date())).reminders[0]?.card;
    expect(await card(p1)).toMatchObject({ diseaseCode: '2606', diseaseName: '病原学阳性' });
    expect(await card(p2)).toMatchObject({ diseaseCode: '2600', diseaseName: '肺结核' });
  });
});

describe('deadlines', () => {
  it('a case past its deadline is alerted once through the webhook, never naming the patient; a failed delivery is retried', { timeout: 60_000 }, async () => {
    await drain();
    const got: string[] = [];
    let failing = true;
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        if (failing) {
          res.writeHead(500).end();
          return;
        }
        got.push(body);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"errcode":0}');
      });
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
      const channels = channelsOf({ backlogCount: 1, backlogAgeS: 1, realtimeAgeS: 1, clearRatio: 0.5, frontName: 'test', timeoutMs: 5000, webhook: { url } });
      const org = uniqueOrg();
      const p = uniqueId('p');
      await patient(org, p);
      // Plague diagnosed three hours ago: its 2-hour deadline has passed.
      const at = formatLocal(new Date(Date.now() - 3 * 3_600_000));
      await put('emrActivityInfo', {
        ...sample('emrActivityInfo', { orgCode: org, id: uniqueId('dx'), patientId: p, seed: 3 }),
        wmDiseaseCode: 'A20.0',
        wmDiseaseName: '腺鼠疫',
        diagnoseTime: at,
        activityTime: at,
      });
      const run = () => runWarnings(db, { ...opts, channels, frontName: 'test' });
      const first = await run();
      expect(first.overdue).toBeGreaterThanOrEqual(1);
      const c = (await cases(org))[0]!;
      const marked = async () => (await db.query('SELECT overdue_alerted_at FROM warning_case WHERE case_id = $1', [c.case_id])).rows[0].overdue_alerted_at;
      expect(await marked(), 'not marked while no channel took it').toBeNull();
      failing = false;
      await run();
      expect(await marked()).not.toBeNull();
      const mine = got.filter((b) => b.includes(`病例 ${c.case_id}`));
      expect(mine).toHaveLength(1);
      expect(mine[0]).toContain('鼠疫');
      expect(mine[0]).toContain('2 小时');
      expect(mine[0]).not.toContain(p);
      await run();
      expect(got.filter((b) => b.includes(`病例 ${c.case_id}`))).toHaveLength(1);
      const ev = await db.query("SELECT kind, channels FROM alert_event WHERE destination = 'warning' AND message LIKE $1", [`%病例 ${c.case_id}）%`]);
      expect(ev.rows).toEqual([{ kind: 'overdue', channels: 'webhook' }]);
    } finally {
      server.close();
    }
  });
});

/** A new patient of a new org (the warning run drained first), and diagnoses of `code` for them by id and time. */
async function patientToDiagnose(code: string, name: string) {
  await drain();
  const org = uniqueOrg();
  const p = uniqueId('p');
  await patient(org, p);
  const dx = (id: string, t: string) => ({
    ...sample('emrActivityInfo', { orgCode: org, id, patientId: p, seed: 3 }),
    wmDiseaseCode: code,
    wmDiseaseName: name,
    diagnoseTime: t,
    activityTime: t,
  });
  return { org, p, dx };
}

describe('people decide', () => {
  it('a card the HIS marked filled before the case was excluded does not silence the case when new evidence reopens it', { timeout: 60_000 }, async () => {
    const { org, dx } = await patientToDiagnose('A00.9', '霍乱');
    await put('emrActivityInfo', dx(uniqueId('dx'), hourAgo()));
    await drain(org);
    const c = (await cases(org))[0]!;
    const reminded = async () => (await listReminders(db, { orgs: [org], limit: 100 }, new Date())).reminders.map((r) => r.caseId);
    expect(await reminded()).toEqual([c.case_id]);
    expect((await decideCase(db, c.case_id, 'exclude', { actor: 'his/D1', reason: '腹泻为食物中毒' }, null, { caseWindowDays: 90 })).state).toBe('excluded');
    // The HIS marks the (excluded) reminder filled: recorded, the case stays excluded.
    expect((await markReminder(db, c.case_id, 'filled', { caller: 'his:k1', doctor: 'D1', note: null }, [org], new Date())).state).toBe('excluded');
    // New raising evidence after the exclusion reopens the class A case: reminded again.
    await put('emrActivityInfo', dx(uniqueId('dx'), formatLocal(new Date(Date.now() + 2000))));
    await drain(org);
    expect((await cases(org)).map((x) => x.state)).toEqual(['to_confirm']);
    expect(await reminded()).toEqual([c.case_id]);
    // Marked filled while it is open, it leaves the reminders (the card is on its way) and new evidence
    // that does not reopen it keeps it so.
    await markReminder(db, c.case_id, 'filled', { caller: 'his:k1', doctor: 'D2', note: null }, [org], new Date());
    expect(await reminded()).toEqual([]);
    await put('emrActivityInfo', dx(uniqueId('dx'), formatLocal(new Date(Date.now() + 3000))));
    await drain(org);
    expect(await reminded()).toEqual([]);
  });

  it('a doctor excludes with a reason (held until new evidence), confirms; public health verifies the card', { timeout: 60_000 }, async () => {
    const { org, p, dx } = await patientToDiagnose('B05.9', '麻疹');
    const first = uniqueId('dx');
    const firstAt = hourAgo();
    await put('emrActivityInfo', dx(first, firstAt));
    await drain(org);
    const c = (await cases(org))[0]!;
    const w = { caseWindowDays: 90 };
    await expect(decideCase(db, c.case_id, 'exclude', { actor: 'his/D1', reason: null }, null, w)).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    await expect(decideCase(db, c.case_id, 'verify', { actor: 'op', reason: null }, null, w)).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(decideCase(db, c.case_id, 'confirm', { actor: 'his/D1', reason: null }, ['999999999'], w)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await decideCase(db, c.case_id, 'exclude', { actor: 'his/D1', reason: '皮疹为药疹' }, null, w)).toEqual({ caseId: c.case_id, state: 'excluded' });
    // A new version of the same diagnosis (its time unchanged) does not reopen it …
    await put('emrActivityInfo', { ...dx(first, firstAt), chiefComplaint: '皮疹2天' });
    await drain(org);
    expect((await cases(org)).map((x) => x.state)).toEqual(['excluded']);
    // … new raising evidence after the exclusion does.
    await put('emrActivityInfo', dx(uniqueId('dx'), formatLocal(new Date(Date.now() + 2000))));
    await drain(org);
    expect((await cases(org)).map((x) => x.state)).toEqual(['to_confirm']);
    expect((await decideCase(db, c.case_id, 'confirm', { actor: 'his/D2', reason: null }, null, w)).state).toBe('to_confirm');
    await put('emrInfReport', {
      ...sample('emrInfReport', { orgCode: org, id: uniqueId('card'), patientId: p, seed: 6 }),
      diseaseCode: '1000',
      diseaseName: '麻疹',
      caseTypeCode: '3',
      caseTypeName: '未分型',
    });
    await drain(org);
    expect((await cases(org)).map((x) => x.state)).toEqual(['to_verify']);
    expect((await decideCase(db, c.case_id, 'verify', { actor: 'op/公卫科', reason: '已核实' }, null, w)).state).toBe('reported');
    const ev = await db.query<{ actor: string; from_state: string | null; to_state: string; reason: string }>(
      'SELECT actor, from_state, to_state, reason FROM warning_case_event WHERE case_id = $1 ORDER BY event_id',
      [c.case_id],
    );
    expect(ev.rows.map((e) => [e.actor, `${e.from_state}→${e.to_state}`])).toEqual([
      ['system', 'null→to_confirm'],
      ['his/D1', 'to_confirm→excluded'],
      ['system', 'excluded→to_confirm'],
      ['his/D2', 'to_confirm→to_confirm'],
      ['system', 'to_confirm→to_verify'],
      ['op/公卫科', 'to_verify→reported'],
    ]);
    expect(ev.rows[1]!.reason).toContain('皮疹为药疹');
  });
});

describe('the self-check and precision', () => {
  it('at the end of its day a case without a card is marked missed, listed with its evidence and prompted again; precision per trigger', {
    timeout: 60_000,
  }, async () => {
    await drain();
    const org = uniqueOrg();
    const [p1, p2, p3] = [uniqueId('p'), uniqueId('p'), uniqueId('p')];
    const at = hourAgo();
    for (const p of [p1, p2, p3]) {
      await patient(org, p);
      await put('emrActivityInfo', {
        ...sample('emrActivityInfo', { orgCode: org, id: uniqueId('dx'), patientId: p, seed: 3 }),
        wmDiseaseCode: 'A38',
        wmDiseaseName: '猩红热',
        diagnoseTime: at,
        activityTime: at,
      });
    }
    await drain(org);
    const byPatient = new Map((await cases(org)).map((c) => [c.patient_id, c.case_id]));
    await decideCase(db, byPatient.get(p2)!, 'exclude', { actor: 'his/D1', reason: '咽峡炎' }, null, { caseWindowDays: 90 });
    await put('emrInfReport', {
      ...sample('emrInfReport', { orgCode: org, id: uniqueId('card'), patientId: p3, seed: 6 }),
      diseaseCode: '1400',
      diseaseName: '猩红热',
      caseTypeCode: '3',
      caseTypeName: '未分型',
    });
    await drain(org);

    const day = at.slice(0, 10);
    const sc = await selfCheck(db, { orgCode: org, day, timeZone: 'Asia/Shanghai' });
    expect(sc.cases).toBe(3);
    expect(sc.withoutCard.map((c) => [c.patientId, c.disease, c.state, c.evidence.map((e) => `${e.kind}:${e.detail}`)])).toEqual([
      [p1, '猩红热', 'to_confirm', ['diagnosis:A38']],
    ]);

    // The next day's first run marks it missed, once, and it changes (prompted anew). The cases are
    // moved a day back rather than the clock forward: other tests' cases (opened today) stay as they are.
    await db.query("UPDATE warning_case SET opened_at = opened_at - interval '1 day', updated_at = updated_at - interval '1 day' WHERE org_code = $1", [org]);
    const before = (await db.query('SELECT updated_at FROM warning_case WHERE case_id = $1', [byPatient.get(p1)])).rows[0].updated_at;
    const r1 = await runWarnings(db, opts);
    expect(r1.missed).toBeGreaterThanOrEqual(1);
    const after = (await db.query('SELECT missed_at, updated_at FROM warning_case WHERE case_id = $1', [byPatient.get(p1)])).rows[0];
    expect(after.missed_at).not.toBeNull();
    expect(new Date(after.updated_at).getTime()).toBeGreaterThan(new Date(before).getTime());
    const others = await db.query('SELECT count(*)::int AS n FROM warning_case WHERE org_code = $1 AND missed_at IS NOT NULL', [org]);
    expect(others.rows[0].n).toBe(1);
    await runWarnings(db, opts);
    const events = await db.query("SELECT count(*)::int AS n FROM warning_case_event WHERE case_id = $1 AND reason LIKE '漏报自查%'", [byPatient.get(p1)]);
    expect(events.rows[0].n).toBe(1);

    const pr = await precision(db, { orgCode: org, from: new Date(Date.now() - 3 * 86_400_000), to: new Date(Date.now() + 86_400_000) });
    expect(pr).toEqual([{ trigger: 'icd10', kind: 'diagnosis', cases: 3, confirmed: 0, excluded: 1, carded: 1, open: 1, precision: 0.5 }]);
  });
});
