/**
 * 预警信号 — the signals of aberration detection (docs/aberration.md, docs/console.md "Signals"),
 * read-only: each day's signals of the last 30 days by disease or syndrome and department, the
 * algorithm that raised it (fixed threshold, EARS C1/C2/C3, MPM), the count against what was expected
 * and the threshold, and the days' counts that led to it as a small line (inline SVG, no script).
 */
import { Hono, type MiddlewareHandler } from 'hono';
import { html, raw } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import type pg from 'pg';
import { loadDefinitions } from '../../shared/aberration/config.js';
import { listSignals, type SignalRow } from '../../shared/aberration/run.js';
import { sparkline } from '../../shared/console/svg-chart.js';
import { addDays, localDay } from '../../shared/time/day.js';
import type { Db } from '../../shared/db/index.js';
import { consolePage, h, orgsOf } from './console-layout.js';

const ALGORITHM_ZH: Record<string, string> = {
  fixed: '固定阈值',
  'ears-c1': 'EARS C1',
  'ears-c2': 'EARS C2',
  'ears-c3': 'EARS C3',
  mpm: '移动百分位数（MPM）',
  cluster: '聚集性',
};
let syndromes: Map<string, string> | undefined;
const syndromeName = (id: string) => (syndromes ??= new Map(loadDefinitions().syndromes.map((s) => [s.id, s.name]))).get(id) ?? id;
const fmt = (v: number | null) => (v === null ? '—' : Number.isInteger(v) ? String(v) : v.toFixed(2));

export function renderSignals(rows: SignalRow[], from: string, to: string): HtmlEscapedString {
  return h(html`<p class="muted">${from} 至 ${to}，共 ${rows.length} 条信号（按日期从新到旧）。信号是提示，不是诊断：请结合病例核实（docs/aberration.md）。</p>
${
  rows.length
    ? html`<table id="signals"><thead><tr><th>日期</th><th>机构</th><th>类别</th><th>病种或症候群</th><th>科室</th><th>方法</th><th>观察数</th><th>期望</th><th>阈值</th><th>统计量</th><th>近日趋势</th></tr></thead><tbody>
${rows.map(
  (
    s,
  ) => html`<tr data-key="${s.key}" data-algorithm="${s.algorithm}" data-dept="${s.dept}"><td>${s.day}</td><td>${s.org}</td><td>${s.kind === 'disease' ? '病种' : '症候群'}</td>
<td>${s.kind === 'syndrome' ? syndromeName(s.key) : s.key}</td><td>${s.dept || '全院'}</td><td>${ALGORITHM_ZH[s.algorithm] ?? s.algorithm}</td>
<td class="n">${s.observed}</td><td class="n">${fmt(s.expected)}</td><td class="n">${fmt(s.threshold)}</td><td class="n">${fmt(s.statistic)}</td>
<td class="chart">${raw(
    sparkline(
      s.series.map((p) => p.n),
      { label: `${s.key} 近日计数`, width: 140 },
    ),
  )}</td></tr>`,
)}</tbody></table>`
    : html`<p class="muted">这段时间没有信号。</p>`
}`);
}

export function signalsRoutes(o: { db: () => Db; viewer: MiddlewareHandler; timeZone: () => string }): Hono {
  const app = new Hono();
  app.get('/signals.html', o.viewer, async (c) => {
    const s = c.get('person');
    const now = new Date();
    const to = localDay(now, o.timeZone());
    const from = addDays(to, -30);
    const orgs = orgsOf(s, c.req.query('org'));
    const lists = await Promise.all((orgs === '*' ? [undefined] : orgs).map((org) => listSignals(o.db() as pg.Pool, { org, from, to, limit: 500 })));
    const rows = lists.flat().sort((a, b) => (a.day < b.day ? 1 : a.day > b.day ? -1 : 0));
    c.header('cache-control', 'no-store');
    return c.html(
      consolePage({ title: '预警信号', path: '/signals.html', session: s, timeZone: o.timeZone(), now, body: renderSignals(rows.slice(0, 500), from, to) }),
    );
  });
  return app;
}
