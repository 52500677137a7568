// The 预警信号 page (docs/console.md "Signals") through the web function: records stored through the
// ingest pipeline, aberration detection run over them (shared/aberration/run.ts, as the warning
// function's cron runs it), and the page lists what it raised for the doctor's org — the influenza
// spike by EARS C1 with its count, expectation and trend line, cholera by the fixed threshold — and
// nothing of another org; operators and clinicians get 403.
import { beforeAll, describe, expect, it } from 'vitest';
import { sample } from '../../infra/simulators/samples.js';
import { resources } from '../../schemas/index.js';
import { loadDefinitions } from '../../shared/aberration/config.js';
import { runAberration } from '../../shared/aberration/run.js';
import { addDays, localDay } from '../../shared/time/day.js';
import { upsertMany } from '../../shared/ingest/index.js';
import { notifiable } from '../../shared/warning/triggers.js';
import { signedInToWeb } from '../setup/console-session.js';
import { uniqueId, uniqueOrg } from '../setup/db.js';
import { webInProcess } from '../setup/web-function.js';

const { web, db, host } = await webInProcess('signals-page');
const TZ = 'Asia/Shanghai';
const org = uniqueOrg();
const D = addDays(localDay(new Date(), TZ), -1);

beforeAll(async () => {
  const dx = (day: string, code: string, name: string) => ({
    ...sample('emrActivityInfo', { orgCode: org, id: uniqueId('dx'), patientId: uniqueId('p'), seed: 3 }),
    wmDiseaseCode: code,
    wmDiseaseName: name,
    diseaseCode: '',
    diseaseName: '',
    deptCode: 'A1',
    activityTime: `${day} 12:00:00`,
    diagnoseTime: `${day} 12:00:00`,
  });
  const recs = [
    ...Array.from({ length: 8 }, (_, i) => dx(addDays(D, -8 + i), 'J11.1', '流行性感冒')),
    ...Array.from({ length: 6 }, () => dx(D, 'J11.1', '流行性感冒')),
    dx(D, 'A00.9', '霍乱'),
  ];
  const r = await upsertMany(db, resources.emrActivityInfo!, recs, { callId: null, test: false, now: new Date() });
  expect(r.every((x) => x.ok)).toBe(true);
  const classA = (n: string) => {
    try {
      return notifiable(n).classA;
    } catch {
      return false;
    }
  };
  // Another run (a parallel test's) may hold the one-run lock: until this org is counted.
  const end = Date.now() + 60_000;
  for (;;) {
    await runAberration(db, { defs: loadDefinitions(), timeZone: TZ, backfillDays: 11, now: new Date(), classA });
    const n = await db.query('SELECT 1 FROM aberration_signal WHERE org_code = $1 LIMIT 1', [org]);
    if (n.rowCount) break;
    if (Date.now() > end) throw new Error('aberration detection raised nothing for the org');
    await new Promise((ok) => setTimeout(ok, 200));
  }
}, 90_000);

const signedIn = (role: 'clinician' | 'public_health' | 'operator', orgs: string[]) => signedInToWeb(web, db, { role, host, next: '/signals.html', orgs });
const get = (cookie: string) => web.app.request('/signals.html', { headers: { ...host, cookie: `cdc_console=${cookie}` } });

describe('the 预警信号 page', () => {
  it('lists the signals detection raised for the org, with counts, expectation and trend', async () => {
    const page = await (await get(await signedIn('public_health', [org]))).text();
    const row = (key: string, algorithm: string) =>
      new RegExp(`<tr data-key="${key}" data-algorithm="${algorithm}" data-dept="">([\\s\\S]*?)</tr>`).exec(page)?.[1];
    const flu = row('流行性感冒', 'ears-c1');
    expect(flu, page.slice(0, 3000)).toBeDefined();
    expect(flu).toContain(`<td>${D}</td><td>${org}</td><td>病种</td>`);
    expect(flu).toMatch(/EARS C1<\/td>\s*<td class="n">6<\/td><td class="n">1<\/td>/);
    expect(flu).toContain('<svg');
    expect(row('霍乱', 'fixed')).toMatch(/固定阈值<\/td>\s*<td class="n">1<\/td>/);
    // Only this doctor's org.
    const other = await (await get(await signedIn('public_health', [uniqueOrg()]))).text();
    expect(other).not.toContain(org);
  });

  it('operators and clinicians get 403', async () => {
    expect((await get(await signedIn('operator', [org]))).status).toBe(403);
    expect((await get(await signedIn('clinician', [org]))).status).toBe(403);
  });
});
