/**
 * 备份 — the backups and their checks (docs/console.md "Backups", docs/backup.md), read-only: the
 * last good archive of each kind and how old it is, every archive of the last 30 days (state, size,
 * encryption, a failure's reason), and the latest checks — integrity, listing, restore drill,
 * verification, freshness — each with its result. Running or restoring a backup stays with the
 * backup function and its operators (docs/backup.md); nothing here changes anything.
 */
import { Hono, type MiddlewareHandler } from 'hono';
import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import { ARCHIVE_KINDS, archiveErrorNote, lastGood, listArchives, recentChecks, type Archive, type ArchiveKind } from '../../shared/backup/ledger.js';
import type { Db } from '../../shared/db/index.js';
import { age, consolePage, h, num, when } from './console-layout.js';

const KIND_ZH: Record<ArchiveKind, string> = { logical: '逻辑备份', physical: '物理备份', system: '系统配置', software: '软件' };
/** Who started an archive (shared/backup/run.ts): the schedule, or an operator (make backup, POST /run). */
const TRIGGER_ZH: Record<string, string> = { cron: '定时', manual: '手动' };
const STATUS_ZH: Record<Archive['status'], string> = { running: '进行中', good: '完成', failed: '失败', removed: '已清理', damaged: '已损坏' };
const CHECK_ZH: Record<string, string> = { integrity: '完整性', listing: '清单', drill: '恢复演练', verify: '恢复核对', freshness: '时效' };
/** How old the last good archive of a kind may be before the page marks it late (docs/backup.md's schedule). */
const MAX_AGE_H: Record<ArchiveKind, number> = { logical: 25, physical: 8 * 24, system: 25, software: 8 * 24 };

const size = (b: number | null) => (b === null ? '—' : b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(1)} MiB` : `${num.format(Math.ceil(b / 1024))} KiB`);

export function renderBackups(
  d: {
    last: Array<{ kind: ArchiveKind; archive: Archive | null }>;
    archives: Archive[];
    checks: Awaited<ReturnType<typeof recentChecks>>;
    now: Date;
  },
  tz: string,
): HtmlEscapedString {
  return h(html`<section id="last"><h2>最近一次成功的备份</h2>
<table><thead><tr><th>类型</th><th>完成时间</th><th>距今</th><th>大小</th><th>加密</th><th>状态</th></tr></thead><tbody>
${d.last.map(({ kind, archive: a }) => {
  const ageS = a?.finishedAt ? Math.round((d.now.getTime() - a.finishedAt.getTime()) / 1000) : null;
  const late = ageS === null || ageS > MAX_AGE_H[kind] * 3600;
  return html`<tr data-kind="${kind}"><td>${KIND_ZH[kind]}</td><td>${a ? when(a.finishedAt, tz) : '无'}</td><td>${age(ageS)}</td><td>${size(a?.sizeBytes ?? null)}</td>
<td>${a?.encryption ?? (a ? '未加密' : '—')}</td><td class="${late ? 'late' : 'ok'}">${late ? `超过 ${MAX_AGE_H[kind]} 小时没有成功的备份` : '正常'}</td></tr>`;
})}
</tbody></table></section>
<section id="checks"><h2>最近的校验</h2>${
    d.checks.length
      ? html`<table><thead><tr><th>时间</th><th>校验</th><th>备份</th><th>结果</th><th>说明</th><th>耗时</th></tr></thead><tbody>
${d.checks.map(
  (c) => html`<tr data-check="${c.check}"><td>${when(c.checkedAt, tz)}</td><td>${CHECK_ZH[c.check] ?? c.check}</td><td>${c.archiveId ?? '—'}</td>
<td class="${c.ok ? 'ok' : 'bad'}">${c.ok ? '通过' : '未通过'}</td><td title="${c.message}">${c.note ?? c.message}</td><td class="n">${num.format(c.durationMs)} ms</td></tr>`,
)}</tbody></table>`
      : html`<p class="muted">尚无校验记录。</p>`
  }</section>
<section id="archives"><h2>近 30 天的备份</h2>${
    d.archives.length
      ? html`<table><thead><tr><th>编号</th><th>类型</th><th>开始</th><th>完成</th><th>触发</th><th>大小</th><th>状态</th><th>说明</th></tr></thead><tbody>
${d.archives.map(
  (
    a,
  ) => html`<tr data-archive="${a.archiveId}"><td>${a.archiveId}</td><td>${KIND_ZH[a.kind]}</td><td>${when(a.startedAt, tz)}</td><td>${when(a.finishedAt, tz)}</td><td data-k="trigger">${TRIGGER_ZH[a.trigger] ?? a.trigger}</td>
<td>${size(a.sizeBytes)}</td><td class="${a.status === 'failed' || a.status === 'damaged' ? 'bad' : ''}">${STATUS_ZH[a.status]}</td>${a.error ? html`<td title="${a.error}">${archiveErrorNote(a.error)}</td>` : html`<td></td>`}</tr>`,
)}</tbody></table>`
      : html`<p class="muted">近 30 天没有备份。</p>`
  }</section>
<p class="muted">备份由 backup 函数按计划执行并自行校验（docs/backup.md）；本页只读。</p>`);
}

export function backupsRoutes(o: { db: () => Db; viewer: MiddlewareHandler; timeZone: () => string }): Hono {
  const app = new Hono();
  app.get('/backups.html', o.viewer, async (c) => {
    const now = new Date();
    const db = o.db();
    const [last, archives, checks] = await Promise.all([
      Promise.all(ARCHIVE_KINDS.map(async (kind) => ({ kind, archive: await lastGood(db, kind) }))),
      listArchives(db, { since: new Date(now.getTime() - 30 * 86_400_000), limit: 200 }),
      recentChecks(db, 30),
    ]);
    c.header('cache-control', 'no-store');
    return c.html(
      consolePage({
        title: '备份',
        path: '/backups.html',
        session: c.get('person'),
        timeZone: o.timeZone(),
        now,
        body: renderBackups({ last, archives, checks, now }, o.timeZone()),
      }),
    );
  });
  return app;
}
