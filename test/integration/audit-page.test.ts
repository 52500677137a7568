// 审计日志 (docs/console.md "Audit") through the web function: an admin sees the console's own rows
// (here their own sign-in, with the address), code-mapping changes and configuration bundle steps in
// one trail, filtered by user, source, action and text; other roles get 403. The bundle step is
// applied on a private database (a bundle changes what every function reads) and read with the same
// query the page uses.
import { beforeAll, describe, expect, it } from 'vitest';
import { auditTrail } from '../../shared/console/audit.js';
import { MappingInputSchema } from '../../shared/codes/model.js';
import { saveMapping } from '../../shared/codes/store.js';
import { applyBundle, parseBundle } from '../../shared/configbundle/store.js';
import { signBundle } from '../../shared/configbundle/sign.js';
import { expectConsoleFrame, signedInToWeb } from '../setup/console-session.js';
import { uniqueOrg, privateDatabase } from '../setup/db.js';
import { webInProcess } from '../setup/web-function.js';
import { bundleDoc, platformKey } from './config-bundles-helpers.js';

const { web, db, host } = await webInProcess('audit-page');
const org = uniqueOrg();
const admin = `adm${Math.random().toString(36).slice(2, 9)}`;

beforeAll(async () => {
  await saveMapping(db, MappingInputSchema.parse({ org, domain: 'sex', localCode: 'F', nationalCode: '2', note: '女' }), { by: 'mapper-1', via: '10.0.0.7' });
});

const rowsOf = (html: string) =>
  [...html.matchAll(/<tr data-action="([^"]+)"><td>[^<]*<\/td><td>([^<]*)<\/td><td>([^<]*)<\/td>/g)].map((m) => ({ action: m[1], source: m[2], user: m[3] }));

describe('the audit trail page', () => {
  it('shows an admin the console’s rows and the mapping changes, filtered', async () => {
    const cookie = await signedInToWeb(web, db, { role: 'admin', host, next: '/audit.html', username: admin });
    const get = async (q: string) => {
      const res = await web.app.request(`/audit.html${q}`, { headers: { ...host, cookie: `cdc_console=${cookie}` } });
      expect(res.status).toBe(200);
      return res.text();
    };
    const mine = await get(`?user=${admin}`);
    expectConsoleFrame(mine, 'admin', '/audit.html');
    expect(rowsOf(mine)).toEqual([{ action: 'signin', source: '控制台与访问', user: admin }]);
    const mapping = await get(`?source=mapping&text=${org}`);
    expect(rowsOf(mapping)).toEqual([{ action: 'mapping-create', source: '代码映射', user: 'mapper-1' }]);
    expect(mapping).toMatch(new RegExp(`${org} sex F → 2（equivalent，第 1 版）：女</td><td>10\\.0\\.0\\.7<`));
    // A day range that holds nothing, and an action filter.
    expect(rowsOf(await get(`?user=${admin}&from=2020-01-01&to=2020-01-02`))).toEqual([]);
    expect(rowsOf(await get(`?user=${admin}&action=signout`))).toEqual([]);
  });

  it('refuses 400, naming the field, a day its date arithmetic cannot carry; takes the first and last it can', async () => {
    const cookie = await signedInToWeb(web, db, { role: 'admin', host, next: '/audit.html' });
    const get = (q: string, headers: Record<string, string> = {}) =>
      web.app.request(`/audit.html${q}`, { headers: { ...host, ...headers, cookie: `cdc_console=${cookie}` } });
    for (const [q, field, day] of [
      ['?to=9999-12-31', 'to', '9999-12-31'],
      ['?from=9999-12-31', 'from', '9999-12-31'],
      ['?from=2026-01-01&to=9999-12-31', 'to', '9999-12-31'],
      ['?from=9999-12-31&to=9999-12-31', 'from', '9999-12-31'],
    ] as const) {
      const res = await get(q);
      expect(res.status, q).toBe(400);
      const a = (await res.json()) as { desc: string; errors: unknown[] };
      expect(a.desc, q).toBe(
        `日期超出范围：${field === 'to' ? '至' : '从'} ${day}，须在 1000-01-01 至 9999-12-30 之间 (${field}: a day from 1000-01-01 to 9999-12-30)`,
      );
      expect(a.errors, q).toEqual([{ field, rule: 'range', message: '须在 1000-01-01 至 9999-12-30 之间 (a day from 1000-01-01 to 9999-12-30)' }]);
    }
    // A browser gets the console's error page saying why.
    const page = await get('?to=9999-12-31', { accept: 'text/html' });
    expect(page.status).toBe(400);
    expect(await page.text()).toContain('日期超出范围：至 9999-12-31');
    // The edges it carries: the last day, and the first (the default week before it cut off there).
    for (const [q, shown] of [
      ['?to=9999-12-30', '9999-12-24 至 9999-12-30（含）'],
      ['?from=9999-12-30&to=9999-12-30', '9999-12-30 至 9999-12-30（含）'],
      ['?to=1000-01-03', '1000-01-01 至 1000-01-03（含）'],
      ['?from=1000-01-01&to=1000-01-01', '1000-01-01 至 1000-01-01（含）'],
    ] as const) {
      const res = await get(q);
      expect(res.status, q).toBe(200);
      expect(await res.text(), q).toContain(`${shown}共 0 条`);
    }
    // What is no day at all is still ignored (the default range), as before.
    for (const q of ['?to=2026-02-30', '?from=0000-01-01', '?to=99999-01-01', '?from=2026-01-02&to=2026-01-01']) expect((await get(q)).status, q).toBe(200);
  });

  it('is for admins only', async () => {
    const cookie = await signedInToWeb(web, db, { role: 'public_health', host, next: '/status.html' });
    const res = await web.app.request('/audit.html', { headers: { ...host, cookie: `cdc_console=${cookie}` } });
    expect(res.status).toBe(403);
  });

  it('holds the configuration bundle steps, with who applied them from where', async () => {
    const p = await privateDatabase('audit_trail');
    try {
      const signer = platformKey();
      const doc = bundleDoc(1, { release: { version: '9.0.0' } });
      const signed = signBundle(doc, signer.key);
      await applyBundle(
        p.db,
        { text: doc, signature: signed.sig.value, keyId: signed.sig.keyId, bundle: parseBundle(doc) },
        { by: 'platform-token:abcd1234', via: '10.1.2.3' },
      );
      const rows = await auditTrail(p.db, { from: new Date(Date.now() - 60_000), to: new Date(Date.now() + 60_000), source: 'bundle', limit: 10 });
      expect(rows).toEqual([
        { source: 'bundle', at: expect.any(Date), username: 'platform-token:abcd1234', action: 'bundle-apply', detail: 'v1 release', address: '10.1.2.3' },
      ]);
    } finally {
      await p.drop();
    }
  });
});
