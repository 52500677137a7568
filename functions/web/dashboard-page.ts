/**
 * 仪表盘 (/dashboard.html, docs/console.md "The dashboard"): per resource of the data set, today's
 * received, rejected, held, queued, sent and failed, the lag, arrival and delivery timeliness per
 * platform, and the 30-day trends as inline SVG. Figures from shared/console/figures.ts; a figure
 * nothing was counted for says 暂无数据, never 0% or 100%.
 */
import { Hono, type MiddlewareHandler } from 'hono';
import { html, raw } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import { DEADLINE_ZH, dashboard, type Dashboard, type ResourceFigures } from '../../shared/console/figures.js';
import { bars, sparkline } from '../../shared/console/svg-chart.js';
import type { Db } from '../../shared/db/index.js';
import { autoRefresh, age, consolePage, h, num, orgsOf, share } from './console-layout.js';

const DEST_ZH: Record<string, string> = { national: '国家平台', provincial: '省级平台' };
const destName = (d: string) => DEST_ZH[d] ?? d;

function row(f: ResourceFigures, d: Dashboard, total = false): HtmlEscapedString {
  const cell = (k: string, v: number, bad = false) => html`<td class="n${bad && v > 0 ? ' late' : ''}" data-k="${k}">${num.format(v)}</td>`;
  const trend = d.trend.map((t) => (total ? t.totals.received : (t.received[f.resource] ?? 0)));
  const name = total
    ? html`<th scope="row">合计</th><td></td>`
    : html`<th scope="row">${f.title}<br><span class="muted">${f.resource}</span></th><td>${DEADLINE_ZH[f.deadline]}</td>`;
  return h(html`<tr data-resource="${f.resource}">${name}
${cell('received', f.received)}${cell('rejected', f.rejected, true)}${cell('held', f.held, true)}${cell('queued', f.queued)}${cell('sent', f.sent)}${cell('failed', f.failed, true)}
<td class="n" data-k="lag">${age(f.lagS)}</td>
<td class="n" data-k="arrival">${share(f.timely, f.timed)}${f.untimed ? html`<br><span class="muted">无业务时间 ${num.format(f.untimed)}</span>` : ''}</td>
${d.destinations.map((dest) => html`<td class="n" data-k="delivery-${dest}">${share(f.delivery[dest]!.timely, f.delivery[dest]!.of)}</td>`)}
<td>${raw(sparkline(trend, { label: `${total ? '合计' : f.title} 近 30 日每日接收` }))}</td>
</tr>`);
}

function orgForm(orgs: '*' | string[], bound: '*' | string[]): HtmlEscapedString {
  if (bound !== '*' && bound.length <= 1) return h(html``);
  const current = orgs === '*' ? '' : orgs.length === 1 ? orgs[0]! : '';
  return h(html`<form method="get" class="inline" id="org-form"><label for="org">机构</label>
<input id="org" name="org" value="${current}" placeholder="${bound === '*' ? '全部机构' : bound.join('，')}" pattern="[A-Za-z0-9-]{1,50}"> <button>查看</button></form>`);
}

export function renderDashboard(d: Dashboard, orgs: '*' | string[], bound: '*' | string[]): HtmlEscapedString {
  const labels = d.trend.map((t) => t.day.slice(5));
  const series = [
    { name: '接收', color: '#12467a', values: d.trend.map((t) => t.totals.received) },
    { name: '拒收', color: '#d97706', values: d.trend.map((t) => t.totals.rejected) },
    { name: '已发送', color: '#1b7f3b', values: d.trend.map((t) => t.totals.sent) },
    { name: '失败', color: '#b42318', values: d.trend.map((t) => t.totals.failed) },
  ];
  const timeliness = d.trend.map((t) => (t.totals.timed ? t.totals.timely / t.totals.timed : null));
  const counted = d.trend.filter((t) => t.totals.timed > 0);
  return h(html`
<section id="today"><h2>今日各数据类型（${d.day}）</h2>
<p>${orgForm(orgs, bound)} <span class="muted">范围：${orgs === '*' ? '全部机构' : orgs.join('，')} · 测试数据不计 · 每 60 秒自动刷新</span></p>
<table id="figures">
<thead><tr><th scope="col">数据类型</th><th scope="col">时限</th><th scope="col">接收</th><th scope="col">拒收</th><th scope="col">持有</th><th scope="col">排队</th><th scope="col">已发送</th><th scope="col">失败</th><th scope="col">最早未发送</th><th scope="col">到达及时率</th>
${d.destinations.map((dest) => html`<th scope="col">上报及时率<br><span class="muted">${destName(dest)}</span></th>`)}<th scope="col">近 30 日接收</th></tr></thead>
<tbody>${d.resources.map((f) => row(f, d))}</tbody>
<tfoot>${row(d.totals, d, true)}</tfoot>
</table>
<p class="muted">接收：今日到达（新建或变更）的记录数；持有：其中仍在等待上级记录或代码映射的；排队：当前待发送的上报条目（每个上报目标各一条）；
已发送：今日送达（平台回执确认）的上报条目；失败：今日转入死信且仍未重发的上报条目；最早未发送：排队中最早一条的等待时长。
到达及时率：今日到达且有业务时间的记录中，在时限内到达的比例；上报及时率：其中在时限内送达该平台的比例（尚未到期且未送达的不计）。
“暂无数据”表示没有可计算的记录。定义与数据来源见 docs/console.md。</p>
</section>
<section id="trends"><h2>近 30 日趋势</h2>
${raw(bars(series, { label: '近 30 日每日接收、拒收、已发送、失败', labels, width: 900, height: 150 }))}
<h3>到达及时率（每日）</h3>
<p>${raw(sparkline(timeliness, { label: '近 30 日每日到达及时率', width: 900, height: 40, max: 1, color: '#1b7f3b' }))}</p>
<p class="muted">${
    counted.length
      ? html`有数据的 ${counted.length} 天中最低 ${Math.floor(Math.min(...counted.map((t) => t.totals.timely / t.totals.timed)) * 1000) / 10}%。`
      : html`<span class="nodata">暂无数据</span>。`
  }
已结束的日子在其结束后首次打开本页时统计一次并保存（console_day_figure），今日为实时数据。</p>
</section>`);
}

export function dashboardRoutes(o: { db: () => Db; viewer: MiddlewareHandler; timeZone: () => string }): Hono {
  const app = new Hono();
  app.get('/dashboard.html', o.viewer, async (c) => {
    const session = c.get('person');
    const orgs = orgsOf(session, c.req.query('org'));
    const now = new Date();
    const d = await dashboard(o.db(), { orgs, timeZone: o.timeZone(), now });
    c.header('cache-control', 'no-store');
    return c.html(
      consolePage({
        title: '仪表盘',
        path: '/dashboard.html',
        session,
        timeZone: o.timeZone(),
        now,
        refresh: autoRefresh(c.req.url, 60),
        body: renderDashboard(d, orgs, session.user.orgs),
      }),
    );
  });
  return app;
}
