// An AIDS/HIV card needs 民族, 婚姻状况, 文化程度 and the registered address (schemas/report-card.ts
// cardHivDemographics); the HIS's patient record often lacks them, so the front's form must offer them
// (docs/card-form.md "AIDS/HIV cards"): the form shows an input for each, and what a doctor types there
// makes a card the rules accept.
import { describe, expect, it } from 'vitest';
import { cardRecord } from '../../functions/web/card.js';
import { renderCardForm } from '../../functions/web/card-form.js';
import { emrInfReport } from '../../schemas/card.js';
import { validateRecord } from '../../shared/ingest/validate.js';
import { generate } from '../../infra/simulators/traffic.js';
import { normalizeKeys } from '../../shared/ingest/normalize.js';
import type { SsoSession } from '../../shared/sso/session.js';

const START = new Date('2026-11-26T02:00:00Z');
const NOW = new Date(START.getTime() + 3_600_000);
const HIV_FIELDS = ['nationCode', 'maritalStatusCode', 'educationCode', 'permanentAddrCode', 'permanentAddrDetail'];

const card = (() => {
  const it = [...generate({ seed: 77, count: 3000, start: START })].find((i) => i.valid && i.resource === 'emrInfReport');
  if (!it) throw new Error('the generator made no valid card');
  return normalizeKeys(emrInfReport, it.record).known;
})();
// A confirmed HIV card whose patient record had none of the fields (the pre-fill the form starts from).
const prefill = Object.fromEntries(
  Object.entries({ ...card, diseaseCode: '0601', diseaseName: 'HIV', diagnoseStateCode: '2', diagnoseStateName: '确诊病例' }).filter(
    ([k]) => !HIV_FIELDS.includes(k) && !['nationName', 'maritalStatusName', 'educationName', 'permanentAddrName'].includes(k),
  ),
);
const session: SsoSession = {
  orgCode: String(card.orgCode),
  doctorId: 'D042',
  doctorName: '王医生',
  deptCode: null,
  patientId: String(card.patientId),
  caseId: '7',
  csrf: 'c',
  expiresAt: new Date(NOW.getTime() + 600_000),
};
const issuesOf = (rec: Record<string, unknown>) => {
  const v = validateRecord(emrInfReport, rec, NOW);
  return v.ok ? [] : v.issues.map((i) => `${i.field}/${i.rule}`);
};

describe('the card form for an AIDS/HIV card', () => {
  it('without the fields the rules refuse the card, naming each', () => {
    expect(issuesOf(cardRecord(session, 'W1', prefill, {}, NOW, 'Asia/Shanghai'))).toEqual(HIV_FIELDS.map((f) => `${f}/hivRequired`));
  });

  it('offers an input for each, and what the doctor enters there makes a card the rules accept', () => {
    const form = String(renderCardForm({ session, caseId: '7', cardId: 'W1', disease: 'HIV', dueText: '', overdue: false, values: prefill, issues: [] }));
    for (const f of HIV_FIELDS) expect(form, f).toMatch(new RegExp(`name="${f}"`));
    const typed = { nationCode: '01', maritalStatusCode: '10', educationCode: '20', permanentAddrCode: '440106001', permanentAddrDetail: '某街道 1 号' };
    const rec = cardRecord(session, 'W1', prefill, typed, NOW, 'Asia/Shanghai');
    expect(issuesOf(rec)).toEqual([]);
    expect(rec).toMatchObject({ nationName: '汉族', maritalStatusName: '未婚', educationName: '大学本科教育' });
  });
});
