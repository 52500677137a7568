// The 病例 queue and the 报告卡 list (docs/console.md "Cases", "Report cards") through the web
// function: the pending cases of the doctor's org, overdue first, with the states and the search done
// by the query — an org with more than the page's 500 closed and reported cases still shows the one
// case that waits, and finds it by patient id or disease; another org's case never appears. The
// cards: returned by the platform first (with its reason), then not yet sent, then accepted; a status
// filter and a search by card id; another org's card never appears.
import { beforeAll, describe, expect, it } from 'vitest';
import { sample } from '../../infra/simulators/samples.js';
import { resources } from '../../schemas/index.js';
import { upsertMany } from '../../shared/ingest/index.js';
import { expectConsoleFrame, signedInToWeb } from '../setup/console-session.js';
import { onlyNationalPlatform, uniqueId, uniqueOrg } from '../setup/db.js';
import { webInProcess } from '../setup/web-function.js';

const { web, db, host } = await webInProcess('cases-page');
const org = uniqueOrg();
const other = uniqueOrg();
const waiting = uniqueId('pw');
const overdue = uniqueId('po');

/** Cases as the warning loop leaves them (shared/warning/store.ts), written directly: only the queue is under test. */
async function cases(rows: Array<{ org: string; patient: string; disease: string; state: string; dueMinutes: number | null; updatedMinutes: number }>) {
  const now = Date.now();
  await db.query(
    `INSERT INTO warning_case (org_code, patient_id, disease, class_a, deadline_hours, state, first_at, due_at, evidence_count, opened_at, updated_at)
     SELECT o, p, d, false, 24, s, now(), CASE WHEN due IS NULL THEN NULL ELSE to_timestamp(due / 1000.0) END, 1, now(), to_timestamp(upd / 1000.0)
       FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::varchar[], $5::float8[], $6::float8[]) AS t(o, p, d, s, due, upd)`,
    [
      rows.map((r) => r.org),
      rows.map((r) => r.patient),
      rows.map((r) => r.disease),
      rows.map((r) => r.state),
      rows.map((r) => (r.dueMinutes === null ? null : now + r.dueMinutes * 60_000)),
      rows.map((r) => now + r.updatedMinutes * 60_000),
    ],
  );
}

beforeAll(async () => {
  // The waiting cases are the oldest; 600 cases updated since, none of them waiting for anyone.
  await cases([
    { org, patient: waiting, disease: '肺结核', state: 'to_diagnose', dueMinutes: 600, updatedMinutes: -600 },
    { org, patient: overdue, disease: '细菌性痢疾', state: 'to_confirm', dueMinutes: -30, updatedMinutes: -700 },
    ...Array.from({ length: 600 }, (_, i) => ({
      org,
      patient: uniqueId('pc'),
      disease: '流行性感冒',
      state: i % 2 ? 'closed' : 'reported',
      dueMinutes: null,
      updatedMinutes: -i,
    })),
    { org: other, patient: uniqueId('px'), disease: '肺结核', state: 'to_diagnose', dueMinutes: 600, updatedMinutes: 0 },
  ]);
}, 60_000);

const page = async (cookie: string, q = '', path = '/cases.html') => {
  const res = await web.app.request(`${path}${q}`, { headers: { ...host, cookie: `cdc_console=${cookie}` } });
  expect(res.status).toBe(200);
  return res.text();
};
/**
 * A search posted as the list's form posts it (with the session's token): the 303's Location, and the
 * list found there.
 */
const search = async (cookie: string, fields: Record<string, string>, path = '/cases.html') => {
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await page(cookie, '', path))![1]!;
  const res = await web.app.request(path, {
    method: 'POST',
    headers: { ...host, cookie: `cdc_console=${cookie}`, 'content-type': 'application/x-www-form-urlencoded', origin: 'http://front.local:8884' },
    body: new URLSearchParams({ ...fields, _csrf: csrf }).toString(),
  });
  expect(res.status, await res.clone().text()).toBe(303);
  const location = res.headers.get('location')!;
  expect(location.startsWith(`${path}`)).toBe(true);
  return { location, html: await page(cookie, location.slice(path.length), path) };
};
const listed = (html: string) => [...html.matchAll(/<tr data-case="(\d+)"/g)].map((m) => m[1]!);

describe('a case, as a doctor reads it', () => {
  it('names its evidence and the warning run’s reasons in Chinese: the record’s table, the kind and the effect', async () => {
    // An org of its own: the queue's tests count this org's waiting cases.
    const org = uniqueOrg();
    const patient = uniqueId('pe');
    await cases([{ org, patient, disease: '肺结核', state: 'to_confirm', dueMinutes: 600, updatedMinutes: 0 }]);
    const id = (await db.query<{ case_id: string }>('SELECT case_id FROM warning_case WHERE org_code = $1 AND patient_id = $2', [org, patient])).rows[0]!
      .case_id;
    await db.query(
      `INSERT INTO warning_evidence (org_code, source_resource, source_id, seq, source_version, patient_id, disease, kind, effect, trigger_id, field, detail, evidence_at, recorded_at, trigger_version)
       VALUES ($1, 'emrExLabItem', $2, 0, 1, $3, '肺结核', 'lab', 'raise', 'tb-xpert', 'itemName', '结核分枝杆菌核酸: 阳性', now(), now(), 't1'),
              ($1, 'emrActivityInfo', $4, 0, 1, $3, '肺结核', 'diagnosis', 'close', 'icd10', 'wmDiseaseCode', 'A15.0（已修正 revised）', now(), now(), 't1')`,
      [org, uniqueId('lab'), patient, uniqueId('dx')],
    );
    await db.query(
      `INSERT INTO warning_case_event (case_id, at, actor, from_state, to_state, reason) VALUES ($1, now(), 'system', NULL, 'to_confirm', 'evidence: lab/tb-xpert/raise, diagnosis/icd10/close')`,
      [id],
    );
    const cookie = await signedInToWeb(web, db, { role: 'public_health', host, next: '/cases.html', orgs: [org] });
    const html = await page(cookie, '', `/cases/${id}`);
    const evidence = /<table id="evidence">([\s\S]*?)<\/table>/.exec(html)![1]!;
    expect(evidence).toContain('检验报告项目');
    expect(evidence).toContain('<td>检验</td><td data-effect="raise">提示疑似（待确认）</td>');
    expect(evidence).toContain('<td>诊断</td><td data-effect="close">不再支持（阴性、作废或修正）</td>');
    expect(html).toContain('证据：检验 tb-xpert 提示疑似（待确认）；诊断 icd10 不再支持（阴性、作废或修正）');
    expect(html).not.toMatch(/>(raise|close|carded|lab|diagnosis)</);
  });
});

describe('the cases queue', () => {
  it('shows the waiting cases of the org, overdue first, however many others it has', async () => {
    const cookie = await signedInToWeb(web, db, { role: 'public_health', host, next: '/cases.html', orgs: [org] });
    const ids = (
      await db.query<{ case_id: string; patient_id: string }>(
        `SELECT case_id, patient_id FROM warning_case WHERE org_code = $1 AND state IN ('to_confirm', 'to_diagnose')`,
        [org],
      )
    ).rows;
    const idOf = (p: string) => String(ids.find((r) => r.patient_id === p)!.case_id);
    const html = await page(cookie);
    expect(listed(html)).toEqual([idOf(overdue), idOf(waiting)]);
    // A state asked for lists that state (up to the page's 500), never the queue's.
    const closed = listed(await page(cookie, '?state=closed'));
    expect(closed.length).toBe(300);
  });

  it('finds a waiting case by part of its patient id or by its disease, and not another org’s', async () => {
    const cookie = await signedInToWeb(web, db, { role: 'public_health', host, next: '/cases.html', orgs: [org] });
    expect(listed((await search(cookie, { q: waiting.slice(-6) })).html).length).toBe(1);
    expect(listed((await search(cookie, { q: '肺结核' })).html).length).toBe(1);
    expect(listed((await search(cookie, { q: '流行性感冒' })).html)).toEqual([]); // none waiting
    expect(listed((await search(cookie, { q: '流行性感冒', state: 'closed' })).html).length).toBe(300);
  });

  it('keeps what was typed out of every URL: the form posts, the list is at ?s=<random id> of this session only, and reloads', async () => {
    const cookie = await signedInToWeb(web, db, { role: 'public_health', host, next: '/cases.html', orgs: [org] });
    const form = await page(cookie);
    expect(form).toMatch(/<form method="post" action="\/cases.html" class="filters" id="search"><input type="hidden" name="_csrf"/);
    const typed = '张三丰 110101199003077777';
    const found = await search(cookie, { q: typed });
    expect(found.location).toMatch(/^\/cases.html\?s=[0-9a-f]{32}$/);
    // The list shows the search in its box (the page, not the URL), and again on reload.
    expect(found.html).toContain('value="张三丰 110101199003077777"');
    expect(await page(cookie, found.location.slice('/cases.html'.length))).toContain('value="张三丰 110101199003077777"');
    // Kept sealed, never in clear.
    const kept = await db.query<{ query: string }>('SELECT query FROM console_search WHERE search_id = $1', [found.location.slice(-32)]);
    expect(kept.rows[0]!.query).toMatch(/^sm4:/);
    expect(kept.rows[0]!.query).not.toContain('110101199003077777');
    // Another session (even the same user's) cannot read it: the list unfiltered, and why.
    const other = await signedInToWeb(web, db, { role: 'public_health', host, next: '/cases.html', orgs: [org] });
    const theirs = await page(other, found.location.slice('/cases.html'.length));
    expect(theirs).not.toContain('张三丰');
    expect(theirs).toContain('该查询已失效');
    // A state alone (no personal data) stays a plain filter in the URL; an empty search is the queue.
    expect((await search(cookie, { q: '', state: 'closed' })).location).toBe('/cases.html?state=closed');
    expect((await search(cookie, { q: '' })).location).toBe('/cases.html');
    // A GET with ?q= no longer searches.
    expect(listed(await page(cookie, `?q=${encodeURIComponent('肺结核')}`)).length).toBe(2);
  });

  it('carries the search’s id (only) to a case opened from the list and back: 返回病例列表 shows the same results', async () => {
    const cookie = await signedInToWeb(web, db, { role: 'public_health', host, next: '/cases.html', orgs: [org] });
    const found = await search(cookie, { q: '肺结核' });
    const sid = found.location.slice(-32);
    const [id] = listed(found.html);
    expect(found.html).toContain(`<a href="/cases/${id}?s=${sid}">`);
    const detail = await page(cookie, `?s=${sid}`, `/cases/${id}`);
    expect(detail).toContain(`<a href="/cases.html?s=${sid}" id="back">`);
    // Anything but a search id is dropped.
    expect(await page(cookie, '?s=%3Cx%3E', `/cases/${id}`)).toContain('<a href="/cases.html" id="back">');
  });

  it('refuses a search without the session’s token, and one too long naming the field', async () => {
    const cookie = await signedInToWeb(web, db, { role: 'public_health', host, next: '/cases.html', orgs: [org] });
    const post = (body: Record<string, string>) =>
      web.app.request('/cases.html', {
        method: 'POST',
        headers: { ...host, cookie: `cdc_console=${cookie}`, 'content-type': 'application/x-www-form-urlencoded', origin: 'http://front.local:8884' },
        body: new URLSearchParams(body).toString(),
      });
    expect((await post({ q: '肺结核' })).status).toBe(403);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(await page(cookie))![1]!;
    const long = await post({ q: '肺'.repeat(61), _csrf: csrf });
    expect(long.status).toBe(400);
    expect(await long.text()).toContain('q');
    expect((await db.query('SELECT 1 FROM console_search WHERE query LIKE $1', ['%肺肺肺%'])).rowCount).toBe(0);
  });

  it('ends the session’s searches at sign-out', async () => {
    const cookie = await signedInToWeb(web, db, { role: 'public_health', host, next: '/cases.html', orgs: [org] });
    const found = await search(cookie, { q: '肺结核' });
    const id = found.location.slice(-32);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(found.html)![1]!;
    const out = await web.app.request('/logout', {
      method: 'POST',
      headers: { ...host, cookie: `cdc_console=${cookie}`, 'content-type': 'application/x-www-form-urlencoded', origin: 'http://front.local:8884' },
      body: new URLSearchParams({ _csrf: csrf }).toString(),
    });
    expect(out.status).toBe(303);
    expect((await db.query('SELECT 1 FROM console_search WHERE search_id = $1', [id])).rowCount).toBe(0);
  });
});

describe('verifying and assigning a case (docs/console.md "Verifying a case")', () => {
  const caseOf = async (o: string, state: string) =>
    String((await db.query<{ case_id: string }>('SELECT case_id FROM warning_case WHERE org_code = $1 AND state = $2 LIMIT 1', [o, state])).rows[0]!.case_id);
  const post = async (cookie: string, path: string, fields: Record<string, string>, withToken = true) => {
    const csrf = /name="_csrf" value="([^"]+)"/.exec(await page(cookie))![1]!;
    return web.app.request(path, {
      method: 'POST',
      headers: { ...host, cookie: `cdc_console=${cookie}`, 'content-type': 'application/x-www-form-urlencoded', origin: 'http://front.local:8884' },
      body: new URLSearchParams({ ...fields, ...(withToken ? { _csrf: csrf } : {}) }).toString(),
    });
  };

  it('assigns a waiting case’s verifier: on the case, in the queue, in its history and the audit, by the user', async () => {
    const cookie = await signedInToWeb(web, db, { role: 'public_health', host, next: '/cases.html', orgs: [org] });
    // A colleague: one of the org's public-health doctors.
    const colleague = `phwang${Math.random().toString(36).slice(2, 8)}`;
    await signedInToWeb(web, db, { role: 'public_health', host, next: '/cases.html', orgs: [org], username: colleague });
    const id = await caseOf(org, 'to_diagnose');
    const res = await post(cookie, `/cases/${id}/assign`, { verifier: colleague });
    expect(res.status, await res.clone().text()).toBe(303);
    expect(res.headers.get('location')).toBe(`/cases/${id}`);
    const detail = await page(cookie, '', `/cases/${id}`);
    expect(detail).toContain(`<dd id="verifier">${colleague}</dd>`);
    // Not yet carded: no verification offered, only the verifier.
    expect(detail).not.toContain('id="verify"');
    expect(detail).toContain('id="assign"');
    expect(await page(cookie)).toMatch(new RegExp(`<tr data-case="${id}"[^]*?<td>${colleague}</td>`));
    const ev = await db.query<{ actor: string; reason: string }>(
      'SELECT actor, reason FROM warning_case_event WHERE case_id = $1 ORDER BY event_id DESC LIMIT 1',
      [id],
    );
    expect(ev.rows[0]!.actor).toMatch(/^console:/);
    expect(ev.rows[0]!.reason).toContain(colleague);
    const audited = await db.query<{ username: string }>("SELECT username FROM console_audit WHERE action = 'assign-case' AND detail LIKE $1", [
      `%病例 ${id}（%`,
    ]);
    expect(audited.rows.map((r) => `console:${r.username}`)).toEqual([ev.rows[0]!.actor]);
  });

  it('指派给我 assigns the case to the signed-in user, and ?mine=1 is their queue: only the cases assigned to them', async () => {
    const cookie = await signedInToWeb(web, db, { role: 'public_health', host, next: '/cases.html', orgs: [org] });
    const id = await caseOf(org, 'to_confirm');
    const detail = await page(cookie, '', `/cases/${id}`);
    const me = /<form method="post" action="\/cases\/\d+\/assign" id="assign-me">.*?name="verifier" value="([^"]+)"/s.exec(detail)![1]!;
    expect(await page(cookie, '?mine=1')).not.toContain(`data-case="${id}"`);
    const res = await post(cookie, `/cases/${id}/assign`, { verifier: me });
    expect(res.status, await res.clone().text()).toBe(303);
    const after = await page(cookie, '', `/cases/${id}`);
    expect(after).toContain(`<dd id="verifier">${me}</dd>`);
    // Already hers: no 指派给我 any more.
    expect(after).not.toContain('id="assign-me"');
    const queue = await page(cookie, '?mine=1');
    expect(listed(queue)).toEqual([id]);
    expect(queue).toContain(`指派给我（${me}）核查的`);
    // The whole queue still lists the others waiting.
    expect(listed(await page(cookie)).length).toBeGreaterThan(1);
  });

  it('offers the org’s public-health doctors as 核查人 to pick from: not a clinician, not another org’s, not a disabled one', async () => {
    const tag = Math.random().toString(36).slice(2, 8);
    const name = (p: string) => `${p}${tag}`;
    const cookie = await signedInToWeb(web, db, { role: 'public_health', host, next: '/cases.html', orgs: [org], username: name('phme') });
    await signedInToWeb(web, db, { role: 'public_health', host, next: '/cases.html', orgs: [org], username: name('phok') });
    await signedInToWeb(web, db, { role: 'clinician', host, next: '/status.html', orgs: [org], username: name('clin') });
    await signedInToWeb(web, db, { role: 'public_health', host, next: '/cases.html', orgs: [other], username: name('phother') });
    await signedInToWeb(web, db, { role: 'public_health', host, next: '/cases.html', orgs: [org], username: name('phoff') });
    await db.query('UPDATE console_user SET disabled = true WHERE username = $1', [name('phoff')]);
    const detail = await page(cookie, '', `/cases/${await caseOf(org, 'to_diagnose')}`);
    const offered = [.../<datalist id="verifiers">(.*?)<\/datalist>/s.exec(detail)![1]!.matchAll(/<option value="([^"]+)">/g)].map((m) => m[1]!);
    expect(offered.filter((u) => u.endsWith(tag)).sort()).toEqual([name('phme'), name('phok')].sort());
    expect(detail).toMatch(/<input name="verifier"[^>]* list="verifiers"/);
  });

  it('takes as 核查人 only someone whose queue will show the case: not an unknown name, a clinician, another org’s or a disabled doctor (400 naming verifier, the case unchanged)', async () => {
    const tag = Math.random().toString(36).slice(2, 8);
    const name = (p: string) => `${p}${tag}`;
    const cookie = await signedInToWeb(web, db, { role: 'public_health', host, next: '/cases.html', orgs: [org] });
    await signedInToWeb(web, db, { role: 'clinician', host, next: '/status.html', orgs: [org], username: name('clin') });
    await signedInToWeb(web, db, { role: 'public_health', host, next: '/cases.html', orgs: [other], username: name('phother') });
    await signedInToWeb(web, db, { role: 'public_health', host, next: '/cases.html', orgs: [org], username: name('phoff') });
    await db.query('UPDATE console_user SET disabled = true WHERE username = $1', [name('phoff')]);
    const id = await caseOf(org, 'to_confirm');
    const before = await db.query('SELECT verifier FROM warning_case WHERE case_id = $1', [id]);
    const events = async () => Number((await db.query('SELECT count(*) AS n FROM warning_case_event WHERE case_id = $1', [id])).rows[0]!.n);
    const eventsBefore = await events();
    for (const verifier of ['公卫科 王医生', name('clin'), name('phother'), name('phoff')]) {
      const res = await post(cookie, `/cases/${id}/assign`, { verifier });
      expect(res.status, verifier).toBe(400);
      const text = await res.text();
      expect(text, verifier).toContain('verifier');
      expect(text, verifier).toContain('不是本机构可核查病例的公共卫生人员');
    }
    expect((await db.query('SELECT verifier FROM warning_case WHERE case_id = $1', [id])).rows).toEqual(before.rows);
    expect(await events()).toBe(eventsBefore);
    // An admin's 指派给我 is her own name: taken.
    const admin = await signedInToWeb(web, db, { role: 'admin', host, next: '/cases.html', orgs: [org], username: name('adm') });
    const mine = await post(admin, `/cases/${id}/assign`, { verifier: name('adm') });
    expect(mine.status, await mine.clone().text()).toBe(303);
    expect((await db.query('SELECT verifier FROM warning_case WHERE case_id = $1', [id])).rows[0]!.verifier).toBe(name('adm'));
  });

  it('refuses a verification in a state that has no card yet (409, the state named), another org’s case (404), without the token (403), a note too long (400 naming it)', async () => {
    const cookie = await signedInToWeb(web, db, { role: 'public_health', host, next: '/cases.html', orgs: [org] });
    const mine = await caseOf(org, 'to_diagnose');
    const before = await db.query('SELECT state, verified_at FROM warning_case WHERE case_id = $1', [mine]);
    const early = await post(cookie, `/cases/${mine}/verify`, { note: '已核实' });
    expect(early.status).toBe(409);
    expect(await early.text()).toContain('病例当前状态为待确诊，不能核查');
    expect((await post(cookie, `/cases/${await caseOf(other, 'to_diagnose')}/verify`, {})).status).toBe(404);
    expect((await post(cookie, `/cases/${mine}/verify`, {}, false)).status).toBe(403);
    const long = await post(cookie, `/cases/${mine}/verify`, { note: '核'.repeat(201) });
    expect(long.status).toBe(400);
    expect(await long.text()).toContain('note');
    expect((await post(cookie, `/cases/${mine}/assign`, { verifier: ' ' })).status).toBe(400);
    expect((await db.query('SELECT state, verified_at FROM warning_case WHERE case_id = $1', [mine])).rows).toEqual(before.rows);
    expect((await db.query("SELECT 1 FROM console_audit WHERE action = 'verify-case' AND detail LIKE $1", [`%病例 ${mine}（%`])).rowCount).toBe(0);
  });

  it('is not for clinicians, even with their session’s token', async () => {
    const cookie = await signedInToWeb(web, db, { role: 'clinician', host, next: '/status.html', orgs: [org] });
    const status = await web.app.request('/status.html', { headers: { ...host, cookie: `cdc_console=${cookie}` } });
    const csrf = /name="_csrf" value="([^"]+)"/.exec(await status.text())![1]!;
    const id = await caseOf(org, 'to_diagnose');
    const before = await db.query('SELECT state, verifier FROM warning_case WHERE case_id = $1', [id]);
    for (const [path, fields] of [
      [`/cases/${id}/verify`, { note: 'x' }],
      [`/cases/${id}/assign`, { verifier: '某人' }],
    ] as const) {
      const res = await web.app.request(path, {
        method: 'POST',
        headers: { ...host, cookie: `cdc_console=${cookie}`, 'content-type': 'application/x-www-form-urlencoded', origin: 'http://front.local:8884' },
        body: new URLSearchParams({ ...fields, _csrf: csrf }).toString(),
      });
      expect(res.status, path).toBe(403);
    }
    expect((await db.query('SELECT state, verifier FROM warning_case WHERE case_id = $1', [id])).rows).toEqual(before.rows);
  });

  it('assigns no verifier to a case no longer waiting (409, the state named)', async () => {
    const cookie = await signedInToWeb(web, db, { role: 'public_health', host, next: '/cases.html', orgs: [org] });
    const res = await post(cookie, `/cases/${await caseOf(org, 'closed')}/assign`, { verifier: '王医生' });
    expect(res.status).toBe(409);
    expect(await res.text()).toContain('已关闭');
  });
});

describe('the report cards', () => {
  const [returned, stored, accepted, foreign] = [uniqueId('cr'), uniqueId('cs'), uniqueId('ca'), uniqueId('cf')];
  beforeAll(async () => {
    const now = new Date();
    const card = (o: string, id: string, seed: number) => sample('emrInfReport', { orgCode: o, id, patientId: uniqueId('pp'), seed });
    for (const [o, id, seed] of [
      [org, returned, 3],
      [org, stored, 3],
      [org, accepted, 3],
      [other, foreign, 3],
    ] as const) {
      const r = await upsertMany(db, resources.emrInfReport!, [card(o, id, seed)], { callId: null, test: false, now });
      expect(
        r.every((x) => x.ok),
        JSON.stringify(r),
      ).toBe(true);
    }
    // The platform's receipts, as push records them (uplink_delivery): one card returned, one accepted.
    const national = 'national';
    for (const [id, status, reason] of [
      [returned, 'rejected', '现住址不完整，请补充'],
      [accepted, 'accepted', null],
    ] as const)
      await db.query(
        `INSERT INTO uplink_delivery (batch_id, destination, outbox_id, resource, org_code, record_id, version, status, reason, receipt_sig, sent_at)
         VALUES ($1, $2, 0, 'emrInfReport', $3, $4, 1, $5, $6, 'test', now())`,
        [uniqueId('b'), national, org, id, status, reason],
      );
  }, 60_000);

  it('lists the org’s cards, returned first with the platform’s reason, then not yet sent, then accepted', async () => {
    await onlyNationalPlatform(db, [org, other]);
    const cookie = await signedInToWeb(web, db, { role: 'public_health', host, next: '/cards.html', orgs: [org] });
    const html = await page(cookie, '', '/cards.html');
    expectConsoleFrame(html, 'public_health', '/cards.html');
    const rows = [...html.matchAll(/<tr data-card="([^"]+)" data-status="([^"]+)"/g)].map((m) => [m[1], m[2]]);
    expect(rows).toEqual([
      [returned, 'returned'],
      [stored, 'stored'],
      [accepted, 'accepted'],
    ]);
    expect(html).toContain('现住址不完整，请补充');
    const only = await page(cookie, '?status=returned', '/cards.html');
    expect([...only.matchAll(/<tr data-card="([^"]+)"/g)].map((m) => m[1])).toEqual([returned]);
    const { location, html: found } = await search(cookie, { q: accepted }, '/cards.html');
    expect(location).toMatch(/^\/cards.html\?s=[0-9a-f]{32}$/);
    expect([...found.matchAll(/<tr data-card="([^"]+)"/g)].map((m) => m[1])).toEqual([accepted]);
    expect(html).not.toContain(foreign);
  });

  it('is not for clinicians', async () => {
    const cookie = await signedInToWeb(web, db, { role: 'clinician', host, next: '/status.html', orgs: [org] });
    const res = await web.app.request('/cards.html', { headers: { ...host, cookie: `cdc_console=${cookie}` } });
    expect(res.status).toBe(403);
  });
});
