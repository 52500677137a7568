// Aberration detection through the real database (shared/aberration/run.ts; docs/aberration.md):
// diagnoses and outpatient chief complaints stored by the ingest pipeline become daily counts by
// disease, syndrome and department in the hospital's zone (negated complaints left out), and the
// algorithms raise the signals a hand count predicts, each with its series; a rerun replaces, never
// duplicates; the warning function's route lists them for operators only.
import { describe, expect, it } from 'vitest';
import { sample } from '../../infra/simulators/samples.js';
import { resources } from '../../schemas/index.js';
import { loadDefinitions } from '../../shared/aberration/config.js';
import { aberrationDue, listSignals, runAberration } from '../../shared/aberration/run.js';
import { addDays, localDay } from '../../shared/time/day.js';
import { upsertMany, type IngestContext } from '../../shared/ingest/index.js';
import { notifiable } from '../../shared/warning/triggers.js';
import { testDb, uniqueId, uniqueOrg } from '../setup/db.js';

const db = testDb();
const TZ = 'Asia/Shanghai';
const defs = loadDefinitions();
const classA = (n: string) => {
  try {
    return notifiable(n).classA;
  } catch {
    return false;
  }
};
const ctx = (): IngestContext => ({ callId: 'aberration-test', test: false, now: new Date(), caller: 'test' });

async function store(resource: string, recs: Array<Record<string, unknown>>) {
  const r = await upsertMany(db, resources[resource]!, recs, ctx());
  const bad = r.filter((x) => !x.ok);
  expect(bad, JSON.stringify(bad)).toEqual([]);
}

describe('aberration detection over stored records', () => {
  it('counts by disease, syndrome and department, raises what the hand count predicts, and reruns idempotently', { timeout: 60_000 }, async () => {
    const org = uniqueOrg();
    const today = localDay(new Date(), TZ);
    const D = addDays(today, -1); // the day analysed: complete, all times in the past
    const at = (day: string) => `${day} 12:00:00`;
    const dx = (day: string, code: string, name: string, dept = 'A1') => ({
      ...sample('emrActivityInfo', { orgCode: org, id: uniqueId('dx'), patientId: uniqueId('p'), seed: 3 }),
      wmDiseaseCode: code,
      wmDiseaseName: name,
      diseaseCode: '',
      diseaseName: '',
      deptCode: dept,
      activityTime: at(day),
      diagnoseTime: at(day),
    });
    // One influenza patient a day for 8 days before D, then 6 on D; one cholera patient on D.
    const history = Array.from({ length: 8 }, (_, i) => dx(addDays(D, -8 + i), 'J11.1', '流行性感冒'));
    const spike = Array.from({ length: 6 }, () => dx(D, 'J11.1', '流行性感冒'));
    await store('emrActivityInfo', [...history, ...spike, dx(D, 'A00.9', '霍乱', 'B2')]);
    // Two outpatient visits on D: fever and cough; a denied fever with diarrhoea.
    const visit = (complaint: string) => ({
      ...sample('emrOutpatientRecord', { orgCode: org, id: uniqueId('op'), patientId: uniqueId('p'), seed: 4 }),
      chiefComplaint: complaint,
      outpatientDate: at(D),
      deptCode: 'C3',
    });
    await store('emrOutpatientRecord', [visit('发热3天，咳嗽'), visit('否认发热，腹泻2天')]);

    // Another run (the warning function's cron in a parallel test) may hold the one-run lock: wait it out.
    const runOnce = async () => {
      const end = Date.now() + 30_000;
      for (;;) {
        const r = await runAberration(db, { defs, timeZone: TZ, backfillDays: 11, now: new Date(), classA });
        if (r.orgs > 0 || Date.now() > end) return r;
        await new Promise((ok) => setTimeout(ok, 200));
      }
    };
    const run = await runOnce();
    expect(run.orgs).toBeGreaterThanOrEqual(1);

    const counts = (
      await db.query<{ kind: string; key: string; dept_code: string; n: number }>(
        `SELECT kind, key, dept_code, n FROM aberration_count WHERE org_code = $1 AND day = $2 ORDER BY kind, key, dept_code`,
        [org, D],
      )
    ).rows;
    const n = (kind: string, key: string, dept = '') => counts.find((c) => c.kind === kind && c.key === key && c.dept_code === dept)?.n ?? 0;
    expect(n('disease', '流行性感冒')).toBe(6);
    expect(n('disease', '流行性感冒', 'A1')).toBe(6);
    expect(n('disease', '霍乱')).toBe(1);
    expect(n('syndrome', 'respiratory')).toBe(7); // 6 influenza diagnoses (J09-J18) + the cough
    expect(n('syndrome', 'fever')).toBe(1); // the denied fever is not counted
    expect(n('syndrome', 'diarrhoea')).toBe(1);

    const signals = await listSignals(db, { org, from: D, to: D, limit: 100 });
    const sig = (key: string, algorithm: string, dept = '') => signals.find((s) => s.key === key && s.algorithm === algorithm && s.dept === dept);
    // Cholera is class A: the fixed threshold, one case.
    expect(sig('霍乱', 'fixed')).toMatchObject({ observed: 1, threshold: 1 });
    // EARS C1: baseline 1,1,1,1,1,1,1 (mean 1, sd 0 → σ = minSigma 1): S1 = (6 − 1)/1 = 5 > 3.
    expect(sig('流行性感冒', 'ears-c1')).toMatchObject({ observed: 6, expected: 1, statistic: 5 });
    // C2: baseline D−9..D−3 = 0,1,1,1,1,1,1 (D−9 counted, no case): mean 6/7, sd 0.378 → σ 1: S2 = 6 − 6/7.
    expect(sig('流行性感冒', 'ears-c2')!.statistic).toBeCloseTo(6 - 6 / 7, 6);
    // C3 needs S2 of D−2, whose baseline reaches D−11: before the 11 days counted (D−9..D+1) → no decision.
    expect(sig('流行性感冒', 'ears-c3')).toBeUndefined();
    // MPM has no previous years here: no decision.
    expect(signals.filter((s) => s.algorithm === 'mpm')).toEqual([]);
    // Cluster in department A1: 6 on D + 1 a day on D−6..D−1 = 12 ≥ 3 in 7 days.
    expect(sig('流行性感冒', 'cluster', 'A1')).toMatchObject({ observed: 12, threshold: 3 });
    // The series that raised it, oldest first, D last; days before the counted window are null.
    const series = sig('流行性感冒', 'ears-c1')!.series;
    expect(series).toHaveLength(28);
    expect(series.at(-1)).toEqual({ day: D, n: 6 });
    expect(series.at(-2)).toEqual({ day: addDays(D, -1), n: 1 });
    expect(series[0]!.n).toBeNull();

    // A rerun replaces the days' rows: the same signals, no duplicates.
    expect((await runOnce()).orgs).toBeGreaterThanOrEqual(1);
    const again = await listSignals(db, { org, from: D, to: D, limit: 100 });
    expect(again.map((s) => `${s.key}/${s.dept}/${s.algorithm}`).sort()).toEqual(signals.map((s) => `${s.key}/${s.dept}/${s.algorithm}`).sort());
    expect(await aberrationDue(db, new Date(), 55 * 60_000)).toBe(false);
  });
});
