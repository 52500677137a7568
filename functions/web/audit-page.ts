/**
 * 审计日志 `/audit.html` (admins; docs/console.md "Audit"): the whole audit trail — the console's own
 * rows, code-mapping changes and configuration bundle steps (shared/console/audit.ts) — newest first,
 * filtered by day range, user, action, source and text. Read-only; the page itself is not personal
 * data (details hold references, never the values shown).
 */
import { Hono, type MiddlewareHandler } from 'hono';
import { html } from 'hono/html';
import { z } from 'zod';
import { AppError } from '../../shared/http/errors.js';
import { AUDIT_SOURCES, auditTrail, type AuditRow } from '../../shared/console/audit.js';
import type { Db } from '../../shared/db/index.js';
import { addDays, dayBounds, isDay, localDay } from '../../shared/time/day.js';
import { formatLocal } from '../../shared/time/index.js';
import { consolePage, DAY_RANGE_MESSAGE, FIRST_DAY, h, inDayRange, LAST_DAY } from './console-layout.js';
import { ACTIONS } from './users-page.js';

/** A day the page's arithmetic cannot carry (console-layout.ts FIRST_DAY, LAST_DAY): 400 naming the field. */
const FIELD_ZH = { from: '从', to: '至' } as const;
function withinRange(field: 'from' | 'to', day: string | undefined): void {
  if (day === undefined || inDayRange(day)) return;
  throw new AppError(
    'BAD_REQUEST',
    `日期超出范围：${FIELD_ZH[field]} ${day}，须在 ${FIRST_DAY} 至 ${LAST_DAY} 之间 (${field}: a day from ${FIRST_DAY} to ${LAST_DAY})`,
    [{ field, rule: 'range', message: DAY_RANGE_MESSAGE }],
  );
}

const SOURCE_ZH: Record<(typeof AUDIT_SOURCES)[number], string> = { console: '控制台与访问', mapping: '代码映射', bundle: '配置包' };
const LIMIT = 1000;

const Filters = z.object({
  from: z.string().refine(isDay).optional().catch(undefined),
  to: z.string().refine(isDay).optional().catch(undefined),
  user: z.string().trim().max(200).optional().catch(undefined),
  action: z.string().trim().max(40).optional().catch(undefined),
  text: z.string().trim().max(100).optional().catch(undefined),
  source: z.enum(AUDIT_SOURCES).optional().catch(undefined),
});

function render(rows: AuditRow[], f: { from: string; to: string; user: string; action: string; text: string; source: string }, tz: string) {
  const opt = (v: string, label: string, cur: string) => html`<option value="${v}"${v === cur ? html` selected` : ''}>${label}</option>`;
  return h(html`<form method="get" action="/audit.html" class="filters">
<label>从 <input type="date" name="from" value="${f.from}" min="${FIRST_DAY}" max="${LAST_DAY}"></label> <label>至 <input type="date" name="to" value="${f.to}" min="${FIRST_DAY}" max="${LAST_DAY}"></label>
<label>用户 <input name="user" value="${f.user}" size="12"></label>
<label>操作 <select name="action">${opt('', '全部', f.action)}${Object.entries(ACTIONS).map(([k, v]) => opt(k, v, f.action))}</select></label>
<label>来源 <select name="source">${opt('', '全部', f.source)}${AUDIT_SOURCES.map((s) => opt(s, SOURCE_ZH[s], f.source))}</select></label>
<label>内容包含 <input name="text" value="${f.text}" size="14" placeholder="病例号、机构、值域"></label> <button>查询</button></form>
<p class="muted">${f.from} 至 ${f.to}（含）共 ${rows.length} 条${rows.length === LIMIT ? `（仅显示最新 ${LIMIT} 条，请缩小范围）` : ''}，最新的在前。</p>
<table id="audit"><thead><tr><th>时间</th><th>来源</th><th>用户</th><th>操作</th><th>内容</th><th>地址</th></tr></thead><tbody>
${rows.map(
  (a) =>
    html`<tr data-action="${a.action}"><td>${formatLocal(a.at, tz).slice(0, 19)}</td><td>${SOURCE_ZH[a.source]}</td><td>${a.username ?? ''}</td><td>${ACTIONS[a.action] ?? a.action} <span class="muted">${a.action}</span></td><td>${a.detail ?? ''}</td><td>${a.address ?? ''}</td></tr>`,
)}
</tbody></table>`);
}

export function auditRoutes(o: { db: () => Db; admin: MiddlewareHandler; timeZone: () => string }): Hono {
  const app = new Hono();
  app.get('/audit.html', o.admin, async (c) => {
    const tz = o.timeZone();
    const q = Filters.parse(c.req.query());
    const today = localDay(new Date(), tz);
    withinRange('from', q.from);
    withinRange('to', q.to);
    const to = q.to ?? today;
    // The last 7 days by default — never before the first day the arithmetic carries.
    const week = addDays(to, -6);
    const from = q.from && q.from <= to ? q.from : week < FIRST_DAY ? FIRST_DAY : week;
    const rows = await auditTrail(o.db(), {
      from: dayBounds(from, tz).from,
      to: dayBounds(to, tz).to,
      ...(q.user ? { user: q.user } : {}),
      ...(q.action ? { action: q.action } : {}),
      ...(q.text ? { text: q.text } : {}),
      ...(q.source ? { source: q.source } : {}),
      limit: LIMIT,
    });
    c.header('cache-control', 'no-store');
    return c.html(
      consolePage({
        title: '审计日志',
        path: '/audit.html',
        session: c.get('person'),
        timeZone: tz,
        now: new Date(),
        body: render(rows, { from, to, user: q.user ?? '', action: q.action ?? '', text: q.text ?? '', source: q.source ?? '' }, tz),
      }),
    );
  });
  return app;
}
