// The duplicate-card rules, card status and snoozing (docs/warning.md "Duplicate cards", "Card
// status", "Precision and snoozing") on the real pipeline and database: a prompt for a person and
// disease already carded is kept back and logged with its rule (same ID; same person without an ID;
// a chronic disease once per case) while a past course of an acute disease prompts again; of two
// competing cards the higher diagnosis level wins; a card's status follows the delivery ledger
// (stored → returned for correction → corrected); a snoozed rule raises nothing until lifted.
// Names are stored sealed (docs/keys.md): a card without an ID number is found by the name's HMAC,
// and a card stored before migration 0990 (the name clear, no HMAC) by its clear name.
import { RESTORE_VERSION_GAP } from '../../shared/ingest/restore-gap.js';
import { describe, expect, it } from 'vitest';
import { codedDiagnosis, sample } from '../../infra/simulators/samples.js';
import { resources } from '../../schemas/index.js';
import { upsertMany, type IngestContext } from '../../shared/ingest/index.js';
import { keyIdOf } from '../../shared/pii/index.js';
import { formatLocal } from '../../shared/time/index.js';
import { cardStatus, listCards } from '../../shared/warning/duplicates.js';
import { listCaseCards } from '../../shared/warning/reminders.js';
import { lift, listSnoozes, snooze } from '../../shared/warning/snooze.js';
import { assignVerifier, caseDetail, listCases, runWarnings } from '../../shared/warning/store.js';
import { loadTriggers } from '../../shared/warning/triggers.js';
import { testDb, uniqueId, uniqueOrg } from '../setup/db.js';

const db = testDb();
const triggers = loadTriggers();
const opts = { triggers, batch: 100, caseWindowDays: 90, orphanWaitMs: 60_000, maxMs: 30_000 };
const ctx = (): IngestContext => ({ callId: null, test: false, now: new Date() });
const ago = (days: number, minutes = 0) => formatLocal(new Date(Date.now() - days * 86_400_000 - minutes * 60_000));

async function put(resource: string, ...bodies: Record<string, unknown>[]) {
  const res = await upsertMany(db, resources[resource]!, bodies, ctx());
  for (const r of res) if (!r.ok) throw new Error(`${resource}: ${r.error.desc} ${JSON.stringify(r.error.issues)}`);
}

/** Runs the warning loop until nothing of the org is pending (other tests write meanwhile). */
async function drain(org: string) {
  const end = Date.now() + 60_000;
  for (;;) {
    const r = await runWarnings(db, opts);
    if (!r.skipped) {
      const left = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM record_history WHERE org_code = $1 AND warn_pending = true`, [org]);
      if (left.rows[0]!.n === 0) return;
    }
    if (Date.now() > end) throw new Error('warning runs did not drain');
    await new Promise((ok) => setTimeout(ok, 50));
  }
}

const caseOf = async (org: string, patient: string) =>
  (
    await db.query<{ case_id: string; state: string; disease: string }>(
      'SELECT case_id, state, disease FROM warning_case WHERE org_code = $1 AND patient_id = $2 ORDER BY case_id DESC',
      [org, patient],
    )
  ).rows[0];

const scrubCase = async (org: string, patient: string) =>
  (await db.query<{ state: string }>("SELECT state FROM warning_case WHERE org_code = $1 AND patient_id = $2 AND disease = '恙虫病'", [org, patient])).rows[0];

/** A person, by fields the rules read: an ID number, or none (name, sex, population, birth, address). */
function person(org: string, id: string, seed: number, over: Record<string, unknown> = {}): Record<string, unknown> & { id: string } {
  return { ...sample('emrPatientInfo', { orgCode: org, id, seed }), nultitudeTypeCode: '18', nultitudeTypeName: '家务及待业', ...over } as unknown as Record<
    string,
    unknown
  > & { id: string };
}

function card(
  org: string,
  patient: Record<string, unknown>,
  o: { code: string; name: string; state?: string; daysAgo?: number; id?: string; over?: Record<string, unknown> },
): Record<string, unknown> & { id: string } {
  const d = o.daysAgo ?? 0;
  const keys = [
    'patientName',
    'idCardTypeCode',
    'idCardTypeName',
    'idCard',
    'genderCode',
    'genderName',
    'birthDate',
    'nultitudeTypeCode',
    'nultitudeTypeName',
    'currentAddrCode',
    'currentAddrName',
    'currentAddrDetail',
  ];
  return {
    ...sample('emrInfReport', { orgCode: org, id: o.id ?? uniqueId('card'), patientId: String(patient.id), seed: 5 }),
    ...Object.fromEntries(keys.filter((k) => patient[k] !== undefined).map((k) => [k, patient[k]])),
    diseaseCode: o.code,
    diseaseName: o.name,
    diagnoseStateCode: o.state ?? '2',
    diagnoseStateName: { '1': '临床诊断病例', '2': '确诊病例', '3': '疑似病例' }[o.state ?? '2'],
    caseTypeCode: o.code === '0302' ? '2' : '3',
    caseTypeName: o.code === '0302' ? '慢性' : '未分型',
    onsetDate: ago(d + 2).slice(0, 10),
    diagnoseTime: ago(d, 60),
    reportDate: ago(d, 30),
    operationTime: ago(d, 30),
    ...o.over,
  } as unknown as Record<string, unknown> & { id: string };
}

const diagnosis = (org: string, patient: string, code: string, name: string) =>
  codedDiagnosis({ orgCode: org, id: uniqueId('dx'), patientId: patient, seed: 3, code, name, diagnosedAt: ago(0, 20) });

describe('duplicate-card rules before a prompt', () => {
  it('same ID number and disease: the new visit is a known case, the prompt kept back and logged', { timeout: 90_000 }, async () => {
    const org = uniqueOrg();
    const p1 = person(org, uniqueId('p'), 21);
    const p2 = { ...p1, id: uniqueId('p') }; // the same person under another patient record
    const p3 = person(org, uniqueId('p'), 22); // someone else
    await put('emrPatientInfo', p1, p2, p3);
    const c1 = card(org, p1, { code: '0200', name: '霍乱', daysAgo: 3 });
    await put('emrInfReport', c1);
    await put('emrActivityInfo', diagnosis(org, String(p2.id), 'A00.9', '霍乱'), diagnosis(org, String(p3.id), 'A00.9', '霍乱'));
    await drain(org);
    expect((await caseOf(org, String(p2.id)))?.state).toBe('known');
    expect((await caseOf(org, String(p3.id)))?.state).toBe('to_confirm');
    const d = await caseDetail(db, (await caseOf(org, String(p2.id)))!.case_id);
    expect(d!.suppressed.map((s: { rule: string; card_id: string }) => [s.rule, s.card_id])).toEqual([['same-id', c1.id]]);
    expect(d!.suppressed[0].reason).toContain('同一身份证号');
    // A second run logs it once.
    await put('emrActivityInfo', diagnosis(org, String(p2.id), 'A00.9', '霍乱'));
    await drain(org);
    expect((await db.query('SELECT count(*)::int AS n FROM warning_suppressed WHERE org_code = $1', [org])).rows[0].n).toBe(1);
  });

  it('without an ID number: name, sex, population class, birth date and address decide', { timeout: 90_000 }, async () => {
    const org = uniqueOrg();
    const noId = { idCardTypeCode: '99', idCardTypeName: '其他法定有效证件', idCard: '' };
    const a = person(org, uniqueId('p'), 23, noId);
    const b = { ...a, id: uniqueId('p') };
    const moved = { ...a, id: uniqueId('p'), currentAddrDetail: '另一条街1号' }; // another address: not the same person
    await put('emrPatientInfo', a, b, moved);
    // The card has no ID number either: the national form's placeholder for "unknown".
    await put(
      'emrInfReport',
      card(org, a, { code: '0200', name: '霍乱', daysAgo: 1, over: { idCardTypeCode: '01', idCardTypeName: '居民身份证', idCard: '00000000000000000X' } }),
    );
    await put('emrActivityInfo', diagnosis(org, String(b.id), 'A00.9', '霍乱'), diagnosis(org, String(moved.id), 'A00.9', '霍乱'));
    await drain(org);
    expect((await caseOf(org, String(b.id)))?.state).toBe('known');
    expect((await caseOf(org, String(moved.id)))?.state).toBe('to_confirm');
    const rules = (await db.query<{ rule: string }>('SELECT rule FROM warning_suppressed WHERE org_code = $1', [org])).rows.map((r) => r.rule);
    expect(rules).toEqual(['same-person']);
  });

  it('a chronic disease is reported once per case; an acute one after the window is a new course', { timeout: 90_000 }, async () => {
    const org = uniqueOrg();
    const tb = person(org, uniqueId('p'), 29);
    const tbAgain = { ...tb, id: uniqueId('p') };
    const acute = person(org, uniqueId('p'), 35);
    const acuteAgain = { ...acute, id: uniqueId('p') };
    await put('emrPatientInfo', tb, tbAgain, acute, acuteAgain);
    // Both cards 200 days ago: past the 90-day window.
    await put(
      'emrInfReport',
      card(org, tb, { code: '2606', name: '病原学阳性', daysAgo: 200 }),
      card(org, acute, { code: '0200', name: '霍乱', daysAgo: 200 }),
    );
    await put('emrActivityInfo', diagnosis(org, String(tbAgain.id), 'A15.0', '肺结核'), diagnosis(org, String(acuteAgain.id), 'A00.9', '霍乱'));
    await drain(org);
    expect((await caseOf(org, String(tbAgain.id)))?.state).toBe('known');
    expect((await caseOf(org, String(acuteAgain.id)))?.state).toBe('to_confirm');
    expect((await db.query<{ rule: string }>('SELECT rule FROM warning_suppressed WHERE org_code = $1', [org])).rows.map((r) => r.rule)).toEqual([
      'chronic-once',
    ]);
  });
});

/** Turns a stored row back into its form of before migration 0990: the name clear in the column and rec_raw, no HMAC. */
async function asBefore0990(table: string, org: string, id: string, name: string): Promise<void> {
  const r = await db.query(`UPDATE ${table} SET patient_name = $3, patient_name_hmac = NULL, rec_raw = rec_raw || $4::jsonb WHERE org_code = $1 AND id = $2`, [
    org,
    id,
    name,
    JSON.stringify({ patientName: name }),
  ]);
  expect(r.rowCount).toBe(1);
}

describe('duplicate-card rule by name, names sealed (docs/keys.md)', () => {
  it('finds a card stored with the name sealed, and one stored clear before migration 0990', { timeout: 90_000 }, async () => {
    const org = uniqueOrg();
    const noId = { idCardTypeCode: '99', idCardTypeName: '其他法定有效证件', idCard: '' };
    const unknownId = { idCardTypeCode: '01', idCardTypeName: '居民身份证', idCard: '00000000000000000X' };
    const a = person(org, uniqueId('p'), 51, noId);
    const aAgain = { ...a, id: uniqueId('p') };
    const b = person(org, uniqueId('p'), 52, noId);
    const bAgain = { ...b, id: uniqueId('p') };
    await put('emrPatientInfo', a, aAgain, b, bAgain);
    const sealed = card(org, a, { code: '0200', name: '霍乱', daysAgo: 1, over: unknownId });
    const legacy = card(org, b, { code: '0200', name: '霍乱', daysAgo: 1, over: unknownId });
    await put('emrInfReport', sealed, legacy);
    const stored = await db.query<{ id: string; patient_name: string; patient_name_hmac: string | null }>(
      'SELECT id, patient_name, patient_name_hmac FROM emr_inf_report WHERE org_code = $1',
      [org],
    );
    for (const r of stored.rows) {
      expect(keyIdOf(r.patient_name), r.id).not.toBeNull();
      expect(r.patient_name_hmac).toMatch(/^[0-9a-f]{64}$/);
    }
    await asBefore0990('emr_inf_report', org, legacy.id, String(b.patientName));
    await put('emrActivityInfo', diagnosis(org, String(aAgain.id), 'A00.9', '霍乱'), diagnosis(org, String(bAgain.id), 'A00.9', '霍乱'));
    await drain(org);
    expect((await caseOf(org, String(aAgain.id)))?.state).toBe('known');
    expect((await caseOf(org, String(bAgain.id)))?.state).toBe('known');
    const found = (
      await db.query<{ rule: string; card_id: string }>('SELECT rule, card_id FROM warning_suppressed WHERE org_code = $1 ORDER BY card_id', [org])
    ).rows;
    expect(found.map((r) => [r.rule, r.card_id])).toEqual(
      [
        ['same-person', sealed.id],
        ['same-person', legacy.id],
      ].sort((x, y) => x[1]!.localeCompare(y[1]!)),
    );
  });
});

describe('competing cards', () => {
  it('the higher diagnosis level wins: 确诊 over 疑似, and over a later 临床', { timeout: 90_000 }, async () => {
    const org = uniqueOrg();
    const p = person(org, uniqueId('p'), 26);
    await put('emrPatientInfo', p);
    const suspected = card(org, p, { code: '0200', name: '霍乱', state: '3', daysAgo: 2 });
    await put('emrInfReport', suspected);
    await drain(org);
    const confirmed = card(org, p, { code: '0200', name: '霍乱', state: '2', daysAgo: 1 });
    await put('emrInfReport', confirmed);
    await drain(org);
    const clinical = card(org, p, { code: '0200', name: '霍乱', state: '1', daysAgo: 0 });
    await put('emrInfReport', clinical);
    await drain(org);
    const rows = (
      await db.query<{ card_id: string; other_id: string; winner_id: string }>(
        'SELECT card_id, other_id, winner_id FROM warning_card_duplicate WHERE org_code = $1 ORDER BY card_id, other_id',
        [org],
      )
    ).rows;
    const pair = (a: string, b: string) => rows.find((r) => r.card_id === a && r.other_id === b)?.winner_id;
    expect(pair(String(confirmed.id), String(suspected.id))).toBe(confirmed.id);
    expect(pair(String(clinical.id), String(confirmed.id))).toBe(confirmed.id);
    expect(pair(String(clinical.id), String(suspected.id))).toBe(clinical.id);
    // The case lists its cards, each with the one that wins over it.
    const c = await caseOf(org, String(p.id));
    const d = await caseDetail(db, c!.case_id);
    expect(d!.cards.map((x: { cardId: string }) => x.cardId).sort()).toEqual([suspected.id, confirmed.id, clinical.id].map(String).sort());
  });
});

describe('card status back', () => {
  it('follows the delivery ledger: stored, returned for correction with the reason, corrected', { timeout: 90_000 }, async () => {
    const org = uniqueOrg();
    const p = person(org, uniqueId('p'), 27);
    await put('emrPatientInfo', p);
    await put('emrActivityInfo', diagnosis(org, String(p.id), 'A00.9', '霍乱'));
    const c = card(org, p, { code: '0200', name: '霍乱', daysAgo: 0 });
    await put('emrInfReport', c);
    await drain(org);
    expect((await cardStatus(db, org, String(c.id))).status).toBe('stored');
    const ledger = (version: number, status: string, reason: string | null) =>
      db.query(
        `INSERT INTO uplink_delivery (batch_id, destination, outbox_id, resource, org_code, record_id, version, status, reason, receipt_sig, sent_at)
         VALUES ($1, 'national', 0, 'emrInfReport', $2, $3, $4, $5, $6, 'test', now())`,
        [uniqueId('b'), org, c.id, version, status, reason],
      );
    await ledger(1, 'rejected', '现住地址编码不存在');
    const returned = await cardStatus(db, org, String(c.id));
    expect(returned).toMatchObject({ status: 'returned', name: '平台退回，待修改', version: 1, reason: '现住地址编码不存在' });
    // The HIS reads it with the case's clock still running.
    const listed = await listCaseCards(db, { orgs: [org], orgCode: org, limit: 10 }, new Date());
    expect(listed.cases).toHaveLength(1);
    expect(listed.cases[0]).toMatchObject({ open: true, classA: true, cards: [{ cardId: c.id, status: 'returned', reason: '现住地址编码不存在' }] });
    expect(listed.cases[0]!.deadlineAt).not.toBeNull();
    // Corrected and resent: version 2 accepted.
    await put('emrInfReport', { ...c, notes: '现住地址已更正' });
    await ledger(2, 'accepted', null);
    expect((await cardStatus(db, org, String(c.id))).status).toBe('corrected');
    const after = await listCaseCards(db, { orgs: [org], orgCode: org, limit: 10 }, new Date());
    expect(after.cases[0]).toMatchObject({ open: false, overdue: false });
    // Restored from an archive (docs/backup.md "Versions after a restore"): its version moved on by the
    // gap, its content the one delivered as version 2 — still corrected, not "not sent yet".
    await db.query('UPDATE emr_inf_report SET rec_version = rec_version + $3 WHERE org_code = $1 AND id = $2', [org, c.id, RESTORE_VERSION_GAP]);
    expect((await cardStatus(db, org, String(c.id))).status).toBe('corrected');
  });
});

describe('snoozing a rule', () => {
  it('raises nothing while snoozed (the evidence kept as snoozed), raises again once lifted; audited', { timeout: 90_000 }, async () => {
    const org = uniqueOrg();
    const p = person(org, uniqueId('p'), 28);
    await put('emrPatientInfo', p);
    const known = new Set(['scrub-typhus']);
    const s = await snooze(db, {
      trigger: 'scrub-typhus',
      until: new Date(Date.now() + 10 * 60_000),
      reason: '试剂批次假阳性，核查中',
      actor: 'operator/公卫科李',
      now: new Date(),
      known,
    });
    try {
      const lab = uniqueId('lab');
      await put('emrExLab', sample('emrExLab', { orgCode: org, id: lab, patientId: String(p.id), seed: 1 }));
      await put('emrExLabItem', {
        ...sample('emrExLabItem', { orgCode: org, id: `${lab}-1`, parentId: lab, seed: 1 }),
        itemName: '恙虫病东方体',
        examinationResultCode: '01',
        examinationResultName: '阳性',
      });
      await drain(org);
      expect(await scrubCase(org, String(p.id))).toBeUndefined();
      const ev = (
        await db.query<{ effect: string; trigger_id: string }>(
          "SELECT effect, trigger_id FROM warning_evidence WHERE org_code = $1 AND trigger_id = 'scrub-typhus'",
          [org],
        )
      ).rows;
      expect(ev).toEqual([{ effect: 'snoozed', trigger_id: 'scrub-typhus' }]);
    } finally {
      expect(await lift(db, 'scrub-typhus', 'operator/公卫科李', new Date())).toBe(1);
    }
    const audit = (await listSnoozes(db, new Date())).find((x) => x.snoozeId === s.snoozeId)!;
    expect(audit).toMatchObject({
      trigger: 'scrub-typhus',
      reason: '试剂批次假阳性，核查中',
      actor: 'operator/公卫科李',
      liftedBy: 'operator/公卫科李',
      active: false,
    });
    // Lifted: the next positive result raises a case.
    const lab2 = uniqueId('lab');
    await put('emrExLab', sample('emrExLab', { orgCode: org, id: lab2, patientId: String(p.id), seed: 2 }));
    await put('emrExLabItem', {
      ...sample('emrExLabItem', { orgCode: org, id: `${lab2}-1`, parentId: lab2, seed: 2 }),
      itemName: '恙虫病东方体',
      examinationResultCode: '01',
      examinationResultName: '阳性',
    });
    await drain(org);
    expect((await scrubCase(org, String(p.id)))?.state).toBe('to_confirm');
    await expect(
      snooze(db, { trigger: 'no-such-rule', until: new Date(Date.now() + 60_000), reason: 'x', actor: 'a', now: new Date(), known }),
    ).rejects.toThrow(/没有这个规则/);
  });
});

describe('queues', () => {
  it("a doctor's and a department's cases, and public health's verification queue per person, assigned with audit", { timeout: 90_000 }, async () => {
    const org = uniqueOrg();
    const p = person(org, uniqueId('p'), 41);
    await put('emrPatientInfo', p);
    await put('emrActivityInfo', { ...diagnosis(org, String(p.id), 'A00.9', '霍乱'), deptCode: 'K09', operatorId: 'D-77' });
    await drain(org);
    const c = (await caseOf(org, String(p.id)))!;
    const mine = await listCases(db, { orgCode: org, dept: 'K09', limit: 10, now: new Date() });
    expect(mine.map((x) => [x.caseId, x.deptCode, x.verifier])).toEqual([[c.case_id, 'K09', null]]);
    expect(await listCases(db, { orgCode: org, dept: 'K10', limit: 10, now: new Date() })).toEqual([]);
    await assignVerifier(db, c.case_id, '公卫科-李', 'operator/科长', new Date());
    expect((await listCases(db, { orgCode: org, verifier: '公卫科-李', limit: 10, now: new Date() })).map((x) => x.caseId)).toEqual([c.case_id]);
    const d = await caseDetail(db, c.case_id);
    expect(d!.events.at(-1)).toMatchObject({ actor: 'operator/科长', reason: expect.stringContaining('指派核查：公卫科-李') });
    await expect(assignVerifier(db, '999999999', 'x', 'y', new Date())).rejects.toThrow(/病例不存在/);
  });
});

describe('the console’s search (docs/console.md "Cases")', () => {
  it('finds a case and a card by the patient’s name or resident ID number, and nothing by another person’s', { timeout: 90_000 }, async () => {
    const org = uniqueOrg();
    const p = person(org, uniqueId('p'), 43);
    const other = person(org, uniqueId('p'), 44);
    await put('emrPatientInfo', p, other);
    await put('emrActivityInfo', diagnosis(org, String(p.id), 'A00.9', '霍乱'));
    await drain(org);
    const c = (await caseOf(org, String(p.id)))!;
    const filed = card(org, p, { code: '0200', name: '霍乱' });
    await put('emrInfReport', filed);
    const now = new Date();
    const cases = async (search: string) => (await listCases(db, { orgCode: org, search, limit: 10, now })).map((x) => x.caseId);
    const cards = async (search: string) => (await listCards(db, { orgs: [org], search, days: 30, limit: 10, now })).map((x) => x.id);
    for (const search of [String(p.patientName), String(p.idCard), String(p.idCard).toLowerCase()]) {
      expect(await cases(search), search).toEqual([c.case_id]);
      expect(await cards(search), search).toEqual([filed.id]);
    }
    // The name with a space typed inside it, or in full-width forms: the same name (its HMAC, docs/keys.md).
    const spaced = `${String(p.patientName).slice(0, 1)} ${String(p.patientName).slice(1)}`;
    expect(await cases(spaced)).toEqual([c.case_id]);
    expect(await cards(spaced)).toEqual([filed.id]);
    // Another person of the org, a part of the name, an unknown number: nothing.
    for (const search of [String(other.patientName), String(p.patientName).slice(0, 1), String(other.idCard)]) {
      expect(await cases(search), search).toEqual([]);
      expect(await cards(search), search).toEqual([]);
    }
  });

  it('finds a patient and a card stored before migration 0990 by the clear name (no HMAC yet)', { timeout: 90_000 }, async () => {
    const org = uniqueOrg();
    const p = person(org, uniqueId('p'), 48);
    await put('emrPatientInfo', p);
    await put('emrActivityInfo', diagnosis(org, String(p.id), 'A00.9', '霍乱'));
    await drain(org);
    const c = (await caseOf(org, String(p.id)))!;
    const filed = card(org, p, { code: '0200', name: '霍乱' });
    await put('emrInfReport', filed);
    await asBefore0990('emr_patient_info', org, String(p.id), String(p.patientName));
    await asBefore0990('emr_inf_report', org, filed.id, String(p.patientName));
    const now = new Date();
    expect((await listCases(db, { orgCode: org, search: String(p.patientName), limit: 10, now })).map((x) => x.caseId)).toEqual([c.case_id]);
    expect((await listCards(db, { orgs: [org], search: String(p.patientName), days: 30, limit: 10, now })).map((x) => x.id)).toEqual([filed.id]);
  });
});
