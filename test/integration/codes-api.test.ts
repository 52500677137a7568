// The code-mapping API and page of the web function (/api/codes, /codes.html) on the real database:
// org binding (403 for another org), mappings by JSON and by form, CSV export → import round trip
// (and GBK input), the unmapped queue with dangerous gaps first, the completeness report on a known
// small data set, cross-site writes refused, /status.html still open.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, testDb, uniqueOrg } from '../setup/db.js';
import { generateApiKey } from '../../shared/http/auth.js';
import { addHolds } from '../../shared/holds/index.js';
import { insertCaller } from '../../shared/http/auth-store.js';
import { CHECKED_AT_INTAKE, importNational, listDomains, listMappings, recordObserved, type Observation } from '../../shared/codes/store.js';
import { expectConsoleFrame, signedInToWeb } from '../setup/console-session.js';

/** A public-health doctor signed in to the console, bound to `orgs`: the session cookie (the page needs a person, not a HIS key). */
const signedIn = (orgs: string[]) => signedInToWeb(web, db, { role: 'public_health', host: { host: 'front.local:8884' }, next: '/codes.html', orgs });

process.env.DATABASE_URL = databaseUrl();
// The console answers to these names only (docs/console.md); the tests' Host is front.local.
process.env.WEB_ALLOWED_HOSTS = 'front.local,localhost';
const { default: web } = await import('../../functions/web/handler.js');
const db = testDb();

const mine = uniqueOrg();
const other = uniqueOrg();
const key = generateApiKey();

beforeAll(async () => {
  await insertCaller(db, { kind: 'apikey', name: '信息科', orgs: [mine], ratePerMin: 0, keyPrefix: key.prefix, keyHash: key.hash });
  await web.init?.();
});
afterAll(async () => web.close?.());

const headers = (extra: Record<string, string> = {}) => ({ 'x-api-key': key.key, host: 'front.local:8884', ...extra });
const get = (path: string) => web.app.request(path, { headers: headers() });
const send = (method: string, path: string, body: unknown) =>
  web.app.request(path, { method, headers: headers({ 'content-type': 'application/json' }), body: JSON.stringify(body) });
const form = (path: string, fields: Record<string, string>, extra: Record<string, string> = {}) =>
  web.app.request(path, {
    method: 'POST',
    headers: headers({ 'content-type': 'application/x-www-form-urlencoded', origin: 'http://front.local:8884', ...extra }),
    body: new URLSearchParams(fields).toString(),
  });

const obs = (org: string, domain: string, local: string, name: string | null, count: number, held = 0): Observation => ({
  org,
  domain,
  local,
  name,
  count,
  first: new Date('2026-11-01T08:00:00Z'),
  last: new Date('2026-11-02T08:00:00Z'),
  held,
});

describe('org binding', () => {
  it.each([
    ['GET', `/api/codes/completeness?org=${other}`],
    ['GET', `/api/codes/unmapped?org=${other}`],
    ['GET', `/api/codes/mappings?org=${other}`],
    ['GET', `/api/codes/mappings/export.csv?org=${other}`],
    ['GET', `/api/codes/policies?org=${other}`],
    ['GET', `/api/codes/history?org=${other}`],
  ])('%s %s → 403', async (method, path) => {
    const res = await web.app.request(path, { method, headers: headers() });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ result: false, errorCode: 'FORBIDDEN' });
  });

  it('the page for another org is 403 to a person bound to this one; a HIS key does not open the page at all', async () => {
    const cookie = await signedIn([mine]);
    const res = await web.app.request(`/codes.html?org=${other}`, { headers: { host: 'front.local:8884', cookie: `cdc_console=${cookie}` } });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ result: false, errorCode: 'FORBIDDEN' });
    const withKey = await web.app.request(`/codes.html?org=${mine}`, { headers: headers() });
    expect(withKey.status).toBe(302);
    expect(withKey.headers.get('location')).toBe(`/login?next=${encodeURIComponent(`/codes.html?org=${mine}`)}`);
  });

  it('writes for another org are 403, nothing stored; another org’s mapping by id is 403', async () => {
    expect((await send('POST', '/api/codes/mappings', { org: other, domain: 'sex', localCode: 'M', nationalCode: '1' })).status).toBe(403);
    expect((await send('PUT', '/api/codes/policies', { org: other, domain: 'sex', policy: 'local' })).status).toBe(403);
    expect(await listMappings(db, other)).toEqual([]);
    // A mapping of the other org, made directly: its id is not readable, changeable or deletable with this key.
    const { saveMapping } = await import('../../shared/codes/store.js');
    const { MappingInputSchema } = await import('../../shared/codes/model.js');
    const m = await saveMapping(db, MappingInputSchema.parse({ org: other, domain: 'sex', localCode: 'F', nationalCode: '2' }), { by: 'x' });
    expect((await get(`/api/codes/mappings/${m.mapping.id}`)).status).toBe(403);
    expect((await send('PUT', `/api/codes/mappings/${m.mapping.id}`, { nationalCode: '1' })).status).toBe(403);
    expect((await web.app.request(`/api/codes/mappings/${m.mapping.id}`, { method: 'DELETE', headers: headers() })).status).toBe(403);
    expect((await listMappings(db, other))[0]?.nationalCode).toBe('2');
  });

  it('no credentials: 401 on the API, the sign-in page for the page; the status page stays open', async () => {
    expect((await web.app.request(`/api/codes/mappings?org=${mine}`)).status).toBe(401);
    const page = await web.app.request('/codes.html');
    expect(page.status).toBe(302);
    expect(page.headers.get('location')).toBe('/login?next=%2Fcodes.html');
    expect([200, 503]).toContain((await web.app.request('/status.html')).status);
  });

  it('a caller bound to one org needs no ?org=', async () => {
    const res = await get('/api/codes/mappings');
    expect(res.status).toBe(200);
    expect((await res.json()).org).toBe(mine);
  });
});

describe('mappings through the API', () => {
  it('JSON: create (201), update, history, delete; validation errors name the field', async () => {
    const created = await send('POST', '/api/codes/mappings', {
      domain: 'maritalStatus',
      localCode: 'YH',
      localName: '已婚',
      nationalCode: '20',
      equivalence: 'equal',
      madeBy: '王老师',
    });
    expect(created.status).toBe(201);
    const { mapping } = await created.json();
    expect(mapping).toMatchObject({ org: mine, nationalName: '已婚', madeBy: '王老师', madeVia: 'apikey:信息科' });
    const upd = await send('PUT', `/api/codes/mappings/${mapping.id}`, { nationalCode: '21', equivalence: 'narrower' });
    expect((await upd.json()).mapping).toMatchObject({ nationalCode: '21', version: 2, localName: '已婚' });
    const hist = await (await get(`/api/codes/mappings/${mapping.id}/history`)).json();
    expect(hist.history.map((h: { action: string }) => h.action)).toEqual(['create', 'update']);
    expect((await web.app.request(`/api/codes/mappings/${mapping.id}`, { method: 'DELETE', headers: headers() })).status).toBe(200);
    const bad = await send('POST', '/api/codes/mappings', { domain: 'maritalStatus', localCode: 'Q', nationalCode: '77' });
    expect(bad.status).toBe(400);
    expect((await bad.json()).errors[0]).toMatchObject({ field: 'nationalCode', rule: 'domain' });
    expect((await send('POST', '/api/codes/mappings', { domain: 'nope', localCode: 'Q', nationalCode: '1' })).status).toBe(400);
  });

  it('a form post answers 303 back to the page, with the message or the error', async () => {
    const ok = await form('/api/codes/mappings', { org: mine, domain: 'education', localCode: 'BK', nationalCode: '20' });
    expect(ok.status).toBe(303);
    expect(decodeURIComponent(ok.headers.get('location')!)).toContain('已新增映射');
    const bad = await form('/api/codes/mappings', { org: mine, domain: 'education', localCode: 'XX', nationalCode: '99999' });
    expect(bad.status).toBe(303);
    expect(new URL(bad.headers.get('location')!, 'http://x').searchParams.get('err')).toContain('99999');
  });

  it('refuses a write from another site (CSRF)', async () => {
    const res = await form('/api/codes/mappings', { org: mine, domain: 'education', localCode: 'YJS', nationalCode: '10' }, { origin: 'http://evil.example' });
    expect(res.status).toBe(403);
    const res2 = await form(
      '/api/codes/mappings',
      { org: mine, domain: 'education', localCode: 'YJS', nationalCode: '10' },
      { 'sec-fetch-site': 'cross-site' },
    );
    expect(res2.status).toBe(403);
    const res3 = await form('/api/codes/mappings', { org: mine, domain: 'education', localCode: 'YJS', nationalCode: '10' }, { origin: 'null' });
    expect(res3.status).toBe(403);
    // A browser's own form under Referrer-Policy no-referrer: Origin null, but Sec-Fetch-Site same-origin.
    const own = await form(
      '/api/codes/mappings',
      { org: mine, domain: 'education', localCode: 'YJS', nationalCode: '10' },
      { origin: 'null', 'sec-fetch-site': 'same-origin' },
    );
    expect(own.status).toBe(303);
  });
});

describe('CSV round trip', () => {
  it('export → delete everything → import gives the same mappings', async () => {
    const org = mine;
    for (const [d, l, n, e] of [
      ['sex', 'M', '1', 'equal'],
      ['sex', 'F', '2', 'equal'],
      ['ethnicity', 'HZ', '01', 'equivalent'],
      ['idType', 'SFZ', '01', 'equal'],
      ['ethnicity', '=99', '', 'unmatched'],
    ]) {
      const r = await send('POST', '/api/codes/mappings', {
        domain: d,
        localCode: l,
        localName: `名称,"${l}"`,
        nationalCode: n || undefined,
        equivalence: e,
        note: '批量',
      });
      expect(r.status, `${d} ${l}`).toBeLessThan(300);
    }
    const pick = (ms: Awaited<ReturnType<typeof listMappings>>) => ms.map((m) => [m.domain, m.localCode, m.localName, m.nationalCode, m.equivalence, m.note]);
    const before = pick(await listMappings(db, org));
    const res = await get('/api/codes/mappings/export.csv');
    expect(res.headers.get('content-type')).toContain('text/csv');
    const bytes = new Uint8Array(await res.arrayBuffer());
    expect([...bytes.slice(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    for (const m of await listMappings(db, org)) await web.app.request(`/api/codes/mappings/${m.id}`, { method: 'DELETE', headers: headers() });
    expect(await listMappings(db, org)).toEqual([]);
    const imp = await web.app.request('/api/codes/mappings/import', { method: 'POST', headers: headers({ 'content-type': 'text/csv' }), body: bytes });
    expect(imp.status).toBe(200);
    expect((await imp.json()).import).toMatchObject({ created: before.length, updated: 0 });
    expect(pick(await listMappings(db, org))).toEqual(before);
    // The same file again changes nothing.
    const again = await web.app.request('/api/codes/mappings/import', { method: 'POST', headers: headers({ 'content-type': 'text/csv' }), body: bytes });
    expect((await again.json()).import).toMatchObject({ created: 0, updated: 0, unchanged: before.length });
  });

  it('imports GBK (Excel on a Chinese Windows), through the page’s upload form', async () => {
    // "值域,本地代码,本地名称,国家代码\r\nmaritalStatus,LH,离婚,40\r\n" in GBK.
    const gbk = Buffer.concat([
      Buffer.from('d6b5d3f22cb1beb5d8b4fac2eb2cb1beb5d8c3fbb3c62cb9fabcd2b4fac2eb0d0a', 'hex'),
      Buffer.from('maritalStatus,LH,', 'latin1'),
      Buffer.from('c0ebbbe9', 'hex'), // 离婚
      Buffer.from(',40\r\n', 'latin1'),
    ]);
    const fd = new FormData();
    fd.set('org', mine);
    fd.set('madeBy', '赵主任');
    fd.set('file', new File([gbk], 'mappings.csv', { type: 'text/csv' }));
    const res = await web.app.request('/api/codes/mappings/import', { method: 'POST', headers: headers({ origin: 'http://front.local:8884' }), body: fd });
    expect(res.status).toBe(303);
    const m = (await listMappings(db, mine, 'maritalStatus')).find((x) => x.localCode === 'LH');
    expect(m).toMatchObject({ localName: '离婚', nationalCode: '40', nationalName: '离婚', madeBy: '赵主任' });
  });

  it('a file with an error imports nothing and names the line', async () => {
    const csv = '值域,本地代码,国家代码\nsex,Z1,1\nsex,Z2,8\n';
    const res = await web.app.request('/api/codes/mappings/import', { method: 'POST', headers: headers({ 'content-type': 'text/csv' }), body: csv });
    expect(res.status).toBe(400);
    expect(JSON.stringify((await res.json()).errors)).toContain('第 3 行');
    expect((await listMappings(db, mine, 'sex')).some((m) => m.localCode === 'Z1')).toBe(false);
  });
});

describe('the unmapped queue and the completeness report on a known data set', () => {
  const key2 = generateApiKey();
  const org = uniqueOrg();
  const call = (path: string) => web.app.request(path, { headers: { 'x-api-key': key2.key } });

  beforeAll(async () => {
    await insertCaller(db, { kind: 'apikey', name: '质控科', orgs: [org], ratePerMin: 0, keyPrefix: key2.prefix, keyHash: key2.hash });
    await recordObserved(db, [
      obs(org, 'sex', '1', '男', 30), // a national code under auto
      obs(org, 'sex', 'M', '男', 20), // mapped below
      obs(org, 'sex', 'X', '不详', 5, 1), // unmapped, holds a record
      obs(org, 'ethnicity', '99', '外国血统', 2), // reviewed: no national code
      obs(org, 'diagnosis', 'D100', '高血压', 500), // common, harmless
      obs(org, 'diagnosis', 'D143', '乙型病毒性肝炎', 3, 2), // rare, dangerous: first
      obs(org, 'nndrsDisease', 'SZK', '手足口', 1), // dangerous, with a suggestion
    ]);
    const { saveMapping } = await import('../../shared/codes/store.js');
    const { MappingInputSchema } = await import('../../shared/codes/model.js');
    await saveMapping(db, MappingInputSchema.parse({ org, domain: 'sex', localCode: 'M', nationalCode: '1' }), { by: 't' });
    await saveMapping(db, MappingInputSchema.parse({ org, domain: 'ethnicity', localCode: '99', equivalence: 'unmatched' }), { by: 't' });
  });

  it('ranks dangerous gaps first, flags them, and suggests national codes', async () => {
    const { items } = await (await call('/api/codes/unmapped')).json();
    expect(items.map((i: { localCode: string }) => i.localCode)).toEqual(['D143', 'SZK', 'X', 'D100']);
    expect(items[0]).toMatchObject({ domain: 'diagnosis', count: 3, recordsHeld: 2, danger: { disease: '乙肝', nndrs: '0302', by: 'name' } });
    expect(items[1]).toMatchObject({ danger: { nndrs: '4000' }, suggestions: [{ code: '4000', name: '手足口病' }] });
    expect(items[3].danger).toBeNull();
  });

  it('counts per domain, and one figure with its list of gaps', async () => {
    const { report } = await (await call('/api/codes/completeness')).json();
    const sex = report.domains.find((d: { domain: string }) => d.domain === 'sex');
    expect(sex).toMatchObject({
      nationalCodes: 6,
      localSeen: 3,
      national: 1,
      mapped: 1,
      unmapped: 1,
      unmatched: 0,
      recordsHeld: 1,
      mappings: 1,
      gapFree: false,
      policy: 'auto',
    });
    expect(report.domains.find((d: { domain: string }) => d.domain === 'ethnicity')).toMatchObject({ localSeen: 1, unmatched: 1, gapFree: false });
    expect(report.gaps).toEqual(
      expect.arrayContaining([
        { domain: 'sex', domainName: '性别代码', kind: 'unmapped', codes: 1, recordsHeld: 1 },
        { domain: 'ethnicity', domainName: '民族代码', kind: 'unmatched', codes: 1, recordsHeld: 0 },
        expect.objectContaining({ domain: 'unknown37', kind: 'noName' }),
      ]),
    );
    expect(report).toMatchObject({ totalDomains: 40, seenCodes: 7, resolvedCodes: 2, recordsHeld: 3 });
    // Baseline from the registry as loaded now: named domains with a full list, less sex and ethnicity.
    const loaded = new Map((await listDomains(db)).map((d) => [d.domain, d]));
    // Only a domain a data-set field is checked against at intake can be complete (gap notChecked).
    const clean = [...loaded.values()].filter(
      (d) => d.nameStatus !== 'unknown' && loaded.get(d.listOf ?? d.domain)?.listStatus === 'loaded' && CHECKED_AT_INTAKE.has(d.domain),
    );
    const dataGaps = ['sex', 'ethnicity', 'diagnosis', 'nndrsDisease'].filter((k) => clean.some((d) => d.domain === k));
    expect(report.gapFreeDomains).toBe(clean.length - dataGaps.length);
    expect(report.domains.filter((d: { gapFree: boolean }) => d.gapFree)).toHaveLength(report.gapFreeDomains);

    // Closing the sex gap adds one domain to the figure.
    const fix = await web.app.request('/api/codes/mappings', {
      method: 'POST',
      headers: { 'x-api-key': key2.key, 'content-type': 'application/json' },
      body: JSON.stringify({ domain: 'sex', localCode: 'X', nationalCode: '9' }),
    });
    expect(fix.status).toBe(201);
    const after = (await (await call('/api/codes/completeness')).json()).report;
    expect(after.gapFreeDomains).toBe(report.gapFreeDomains + 1);
    expect(after.domains.find((d: { domain: string }) => d.domain === 'sex')).toMatchObject({ mapped: 2, unmapped: 0, gapFree: true });
  });

  it('a list loaded for a domain no data-set field is checked against at intake is a gap, never complete', async () => {
    // Nationality: GB/T 2659 arrives by import; nationalityCode is not read against it at intake.
    expect(CHECKED_AT_INTAKE.has('nationality')).toBe(false);
    await importNational(db, { domain: 'nationality', version: 'T-2659', source: 'test', codes: [{ code: '156', name: '中国' }] });
    const { report } = await (await call('/api/codes/completeness')).json();
    expect(report.domains.find((d: { domain: string }) => d.domain === 'nationality')).toMatchObject({ listStatus: 'loaded', gapFree: false });
    expect(report.gaps).toEqual(expect.arrayContaining([expect.objectContaining({ domain: 'nationality', kind: 'notChecked' })]));
    expect(report.gaps.filter((g: { kind: string; domain: string }) => g.kind === 'notChecked' && CHECKED_AT_INTAKE.has(g.domain))).toEqual([]);
  });

  it('renders the page: figure, dangerous rows highlighted, suggestion buttons, escaped values', async () => {
    await recordObserved(db, [obs(org, 'diagnosis', '<b>x</b>', '<script>alert(1)</script>', 1)]);
    const cookie = await signedIn([org]);
    const res = await web.app.request('/codes.html', { headers: { cookie: `cdc_console=${cookie}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("form-action 'self'");
    const page = await res.text();
    expect(page).toContain('<h1>代码映射</h1>');
    // In the console's frame: public health's navigation with this page marked, the sign-out; every
    // form of the page that posts carries the session's token once — the sign-out's too.
    expectConsoleFrame(page, 'public_health', '/codes.html');
    const posts = [...page.matchAll(/<form method="post"[^>]*>((?:<input type="hidden" name="_csrf" value="[^"]+">)*)/g)];
    expect(posts.length).toBeGreaterThan(3);
    for (const [form, tokens] of posts) expect(tokens!.match(/name="_csrf"/g)?.length, form).toBe(1);
    expect(page).toMatch(/<tr class="danger" data-domain="diagnosis" data-code="D143">/);
    expect(page).toContain('采用 4000 手足口病');
    expect(page).not.toContain('<script>alert(1)</script>');
    expect(page).toContain('&lt;script&gt;');
  });
});

// A hospital code that is itself a national code of the domain: under auto or national the national code
// is kept as sent and a mapping of it never applies (docs/code-mapping.md, "Status, exactly"), so saving
// one is refused until the domain's policy is local, and one left behind by a policy change is a gap.
describe('a local code that is itself a national code', () => {
  const k = generateApiKey();
  const org = uniqueOrg();
  const h = (extra: Record<string, string> = {}) => ({ 'x-api-key': k.key, host: 'front.local:8884', ...extra });
  const post = (path: string, body: unknown, method = 'POST') =>
    web.app.request(path, { method, headers: h({ 'content-type': 'application/json' }), body: JSON.stringify(body) });
  const importCsv = (csv: string) => web.app.request('/api/codes/mappings/import', { method: 'POST', headers: h({ 'content-type': 'text/csv' }), body: csv });

  beforeAll(async () => {
    await insertCaller(db, { kind: 'apikey', name: '信息科2', orgs: [org], ratePerMin: 0, keyPrefix: k.prefix, keyHash: k.hash });
    // An unknown key prefix re-reads the callers at most once a second (shared/http/auth.ts): the
    // describe before this one has just had its key read.
    await new Promise((r) => setTimeout(r, 1100));
  });

  it('is refused under auto and national, naming the field, the rule and the way out (policy local); accepted under local', async () => {
    const bad = await post('/api/codes/mappings', { domain: 'sex', localCode: '1', localName: '女', nationalCode: '2' });
    expect(bad.status).toBe(400);
    const [issue] = (await bad.json()).errors;
    expect(issue).toMatchObject({ field: 'localCode', rule: 'localIsNational', value: '1' });
    expect(issue.message).toMatch(
      /^本地代码 1 本身就是性别代码（sex）的现行国家代码.*院方发送本地代码.*\(local code 1 is itself a current national code of sex.*set the domain's policy to local/,
    );
    // The console's form gets the same words back on the page.
    const f = await web.app.request('/api/codes/mappings', {
      method: 'POST',
      headers: h({ 'content-type': 'application/x-www-form-urlencoded', origin: 'http://front.local:8884' }),
      body: new URLSearchParams({ org, domain: 'sex', localCode: '1', nationalCode: '2' }).toString(),
    });
    expect(f.status).toBe(303);
    expect(new URL(f.headers.get('location')!, 'http://x').searchParams.get('err')).toContain('院方发送本地代码');
    // Unmatched is refused too: the national meaning would still be sent.
    expect((await post('/api/codes/mappings', { domain: 'sex', localCode: '9', equivalence: 'unmatched' })).status).toBe(400);
    // A mapping onto the same code changes nothing and passes; a code outside the list is an ordinary mapping.
    expect((await post('/api/codes/mappings', { domain: 'sex', localCode: '2', nationalCode: '2' })).status).toBe(201);
    expect((await post('/api/codes/mappings', { domain: 'sex', localCode: 'NV', nationalCode: '2' })).status).toBe(201);

    expect((await post('/api/codes/policies', { domain: 'sex', policy: 'national' }, 'PUT')).status).toBe(200);
    expect((await post('/api/codes/mappings', { domain: 'sex', localCode: '1', nationalCode: '2' })).status).toBe(400);
    expect((await listMappings(db, org, 'sex')).map((m) => m.localCode)).toEqual(['2', 'NV']);

    expect((await post('/api/codes/policies', { domain: 'sex', policy: 'local' }, 'PUT')).status).toBe(200);
    const ok = await post('/api/codes/mappings', { domain: 'sex', localCode: '1', localName: '女', nationalCode: '2' });
    expect(ok.status).toBe(201);
  });

  it('a CSV import names such a row by its line, under the policy the domain has', async () => {
    const res = await importCsv('值域,本地代码,国家代码\nethnicity,02,01\nethnicity,HZ,01\n');
    expect(res.status).toBe(400);
    expect((await res.json()).errors).toEqual([expect.objectContaining({ field: '第 2 行 localCode', rule: 'localIsNational', value: '02' })]);
    expect(await listMappings(db, org, 'ethnicity')).toEqual([]);
  });

  it('switching back to auto names the mappings that stop applying, and the completeness report lists them as a gap', async () => {
    // sex is under local here (the first test): 1 → 2 is in force.
    const res = await post('/api/codes/policies', { domain: 'sex', policy: 'auto' }, 'PUT');
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.desc).toContain('1 条映射的本地代码本身就是国家代码，在此策略下不生效（1）');
    expect(body.notApplying).toEqual([{ domain: 'sex', localCode: '1', nationalCode: '2', policy: 'auto' }]);
    const { report } = await (await web.app.request('/api/codes/completeness', { headers: h() })).json();
    expect(report.gaps).toContainEqual({ domain: 'sex', domainName: '性别代码', kind: 'notApplying', codes: 1, recordsHeld: 0 });
    expect(report.domains.find((d: { domain: string }) => d.domain === 'sex')).toMatchObject({ policy: 'auto', gapFree: false });
    // Back under local the gap closes.
    await post('/api/codes/policies', { domain: 'sex', policy: 'local' }, 'PUT');
    const after = (await (await web.app.request('/api/codes/completeness', { headers: h() })).json()).report;
    expect(after.gaps.filter((g: { domain: string }) => g.domain === 'sex')).toEqual([]);
  });

  it('switching to national names every mapping that stops applying and the records held for a mapping, which none can release now', async () => {
    expect((await post('/api/codes/mappings', { domain: 'ethnicity', localCode: 'HZ', localName: '汉族', nationalCode: '01' })).status).toBe(201);
    // Two records held for unmapped ethnicity codes (one of them for two), one for another domain.
    const hold = (id: string, domain: string, code: string) => ({ orgCode: org, id, hold: { kind: 'mapping' as const, domain, code }, at: new Date() });
    await addHolds(db as never, 'emrPatientInfo', [
      hold('pol-1', 'ethnicity', 'QQ'),
      hold('pol-1', 'ethnicity', 'QR'),
      hold('pol-2', 'ethnicity', 'QQ'),
      hold('pol-3', 'sex', 'M'),
    ]);
    const res = await post('/api/codes/policies', { domain: 'ethnicity', policy: 'national' }, 'PUT');
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.desc).toContain('此策略只收国家代码，1 条映射不再生效（HZ）');
    expect(body.desc).toContain('2 条记录正在等待此值域的代码映射，此策略下映射无法放行它们');
    expect(body).toMatchObject({ heldForMapping: 2, notApplying: [{ domain: 'ethnicity', localCode: 'HZ', nationalCode: '01', policy: 'national' }] });
    // Back under auto the mapping applies again and nothing is stranded.
    const back = await (await post('/api/codes/policies', { domain: 'ethnicity', policy: 'auto' }, 'PUT')).json();
    expect(back.desc).toBe('已设置 ethnicity 的映射策略：auto');
    expect(back.heldForMapping).toBeUndefined();
  });

  it('a CSV import reports every error of every row in one answer, each in Chinese and English', async () => {
    const csv = ['值域,本地代码,国家代码,对应关系', 'nope,A1,1,', 'sex,,1,', 'sex,B1,1,xx', 'sex,X7,7,', 'sex,,8,', 'maritalStatus,Q1,77,'].join('\n');
    const res = await importCsv(csv);
    expect(res.status).toBe(400);
    const errors: Array<{ field: string; rule: string; message: string }> = (await res.json()).errors;
    const at = (line: number) => errors.filter((e) => e.field.startsWith(`第 ${line} 行`)).map((e) => `${e.field.replace(/^第 \d+ 行 ?/, '')}/${e.rule}`);
    expect(at(2)).toEqual(['domain/invalid']);
    expect(at(3)).toEqual(['localCode/invalid']);
    expect(at(4)).toEqual(['equivalence/invalid']);
    expect(at(5)).toEqual(['nationalCode/domain']);
    expect(at(6)).toEqual(['localCode/invalid', 'nationalCode/domain']);
    expect(at(7)).toEqual(['nationalCode/domain']);
    for (const e of errors) {
      expect(e.message, e.field).toMatch(/[\u4e00-\u9fff].*\(.*[a-z].*\)/);
      expect(e.message).not.toMatch(/Invalid input|expected string/);
    }
  });

  it('export.csv?unmapped=1 puts the best suggestion into the note of a queued code', async () => {
    await recordObserved(db, [obs(org, 'maritalStatus', 'YH', '已婚', 3, 1), obs(org, 'sex', 'M9', '男(本院)', 2, 1)]);
    const { items } = await (await web.app.request('/api/codes/unmapped', { headers: h() })).json();
    const best = items.find((i: { localCode: string }) => i.localCode === 'YH').suggestions[0];
    expect(best).toMatchObject({ code: '20', name: '已婚' });
    const csv = new TextDecoder().decode(await (await web.app.request('/api/codes/mappings/export.csv?unmapped=1', { headers: h() })).arrayBuffer());
    const line = csv.split('\r\n').find((l) => l.startsWith('maritalStatus,YH,'));
    expect(line).toBe('maritalStatus,YH,已婚,,,,建议：20 已婚,,');
    // A name with the hospital's own-code marker still finds its national code.
    expect(csv.split('\r\n').find((l) => l.startsWith('sex,M9,'))).toBe('sex,M9,男(本院),,,,建议：1 男性,,');
  });
});
