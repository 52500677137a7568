// The 备份 page (docs/console.md "Backups") through the web function with a signed-in user: the
// archives and checks the backup function writes (its ledger, shared/backup/ledger.ts) — the last
// good archive of each kind, a failed one with its reason, the latest checks with their results —
// and the roles: public health, operators and admins read it, a clinician gets 403, no session the
// sign-in page. Read-only: the page has no form but sign-out.
import { describe, expect, it } from 'vitest';
import { checkFreshness } from '../../shared/backup/check.js';
import { insertArchive, lastGood, markFailed, markGood, recordCheck } from '../../shared/backup/ledger.js';
import { toolFailure } from '../../shared/backup/tools.js';
import { signedInToWeb } from '../setup/console-session.js';
import { uniqueId } from '../setup/db.js';
import { webInProcess } from '../setup/web-function.js';

const { web, db, host } = await webInProcess('backups-page');

const signedIn = (role: 'clinician' | 'public_health' | 'operator') => signedInToWeb(web, db, { role, host, next: '/backups.html' });
const get = (cookie?: string) => web.app.request('/backups.html', { headers: { ...host, ...(cookie ? { cookie: `cdc_console=${cookie}` } : {}) } });

describe('the 备份 page', () => {
  it('shows the last good archive of each kind, a failed one with its reason, and the latest checks', async () => {
    const now = new Date();
    const good = await insertArchive(db, {
      kind: 'logical',
      trigger: 'cron',
      bucket: 'cdc-backups',
      dialect: 'postgres',
      tool: 'pg_dump',
      encryption: 'SM4',
      startedAt: now,
    });
    await markGood(db, good, { size: 3 * 1024 * 1024, sha256: 'a'.repeat(64), rowCounts: null, tablesDone: 10 });
    const reason = `磁盘已满 ${uniqueId('x')}`;
    const failed = await insertArchive(db, {
      kind: 'physical',
      trigger: 'cron',
      bucket: 'cdc-backups',
      dialect: 'postgres',
      tool: 'pg_basebackup',
      encryption: null,
      startedAt: now,
    });
    await markFailed(db, failed, reason);
    // A reason as the backup function records it (tool output, English): the page says what it means.
    const full = await insertArchive(db, {
      kind: 'logical',
      trigger: 'manual',
      bucket: 'cdc-backups',
      dialect: 'postgres',
      tool: 'pg_dump',
      encryption: 'SM4',
      startedAt: now,
    });
    const toolSaid = toolFailure(
      'pg_dump',
      { code: 1, signal: null },
      `pg_dump: error: could not write to output file: No space left on device ${uniqueId('n')}`,
    );
    await markFailed(db, full, toolSaid);
    const drill = `drill ${uniqueId('d')}: 12 tables restored, row counts equal`;
    await recordCheck(db, { archiveId: good, check: 'drill', ok: true, message: drill, durationMs: 1234 });
    // A check written since checks say it in Chinese: that is what the page shows, the English line
    // (the command line's) in its title.
    const fresh = await checkFreshness(db, new Date());
    expect(fresh.note).toMatch(/^最近一次成功的逻辑备份在 \d+ 分钟前$/);
    // Dated by a run that began before the archive finished: 0 minutes, never -1.
    expect((await checkFreshness(db, new Date(Date.now() - 120_000))).note).toBe('最近一次成功的逻辑备份在 0 分钟前');

    const page = await (await get(await signedIn('public_health'))).text();
    // The newest good logical archive is this one, or one another test file's backup made since: fresh either way.
    expect(page).toMatch(/<tr data-kind="logical"><td>逻辑备份<\/td>[\s\S]*?class="ok">正常<\/td>/);
    expect((await lastGood(db, 'logical'))?.finishedAt).toBeTruthy();
    expect(page).toMatch(new RegExp(`<tr data-archive="${failed}">[\\s\\S]*?失败</td><td title="${reason}">备份失败</td></tr>`));
    expect(page).toMatch(
      new RegExp(`<tr data-archive="${full}">[\\s\\S]*?失败</td><td title="${toolSaid.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}">存储空间不足：[^<]+</td></tr>`),
    );
    // Who started it, in Chinese: the schedule.
    expect(page).toMatch(new RegExp(`<tr data-archive="${failed}">[\\s\\S]*?<td data-k="trigger">定时</td>`));
    expect(page).toMatch(
      new RegExp(`<tr data-check="drill">[\\s\\S]*?恢复演练[\\s\\S]*?${good}[\\s\\S]*?通过[\\s\\S]*?${drill.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
    );
    expect(page).toContain(`<td class="ok">通过</td><td title="${fresh.message}">${fresh.note}</td>`);
    // Read-only: the only form is the sign-out.
    expect(page.match(/<form method="post" action="([^"]+)"/g)).toEqual(['<form method="post" action="/logout"']);
  });

  it('operators read it; a clinician gets 403; no session, the sign-in page', async () => {
    expect((await get(await signedIn('operator'))).status).toBe(200);
    expect((await get(await signedIn('clinician'))).status).toBe(403);
    const anon = await get();
    expect(anon.status).toBe(302);
    expect(anon.headers.get('location')).toMatch(/^\/login\?next=%2Fbackups\.html/);
  });
});
