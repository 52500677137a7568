/**
 * 评估 — the notice's four dimensions of the front per day for the last 30 days (/evaluation.html;
 * docs/console.md "The evaluation page"), for public health, operators and the admin, in the
 * console's frame. Server-rendered, no script, no form but sign-out: each dimension's definition
 * above its table; a figure the stored data cannot give is 暂无数据, never an estimate.
 */
import { Hono } from 'hono';
import { html, raw } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { Session } from '../../shared/console/index.js';
import { evaluate, REALTIME_S, type Evaluation, type EvaluationDay } from '../../shared/console/evaluation.js';
import { sparkline } from '../../shared/console/svg-chart.js';
import { consolePage } from './console-layout.js';
import { person, type PeopleOptions } from './people.js';

/** The page's own rules, after the console's sheet (functions/web/console-layout.ts). */
const STYLE = '.def{color:#3d4b5c;font-size:13px;margin:0 0 8px}';

const num = new Intl.NumberFormat('zh-CN');
const h = (x: unknown) => x as HtmlEscapedString;
const NONE = h(html`<span class="muted">暂无数据</span>`);
const pct = (x: number | null) => (x === null ? NONE : `${(x * 100).toFixed(1)}%`);
const n = (x: number | null) => (x === null ? NONE : num.format(x));

function table(id: string, head: string[], rows: (d: EvaluationDay) => Array<unknown>, days: EvaluationDay[]): HtmlEscapedString {
  return h(html`<table id="${id}"><thead><tr><th>日期</th>${head.map((x) => html`<th>${x}</th>`)}</tr></thead><tbody>
${days.map((d) => html`<tr data-day="${d.day}"><td>${d.day}</td>${rows(d).map((c) => html`<td class="n">${c}</td>`)}</tr>`)}
</tbody></table>`);
}

/** The four dimensions' daily shares, drawn as lines over the 30 days (shared/console/svg-chart.ts). */
const TRENDS: ReadonlyArray<{ id: string; name: string; color: string; value: (d: EvaluationDay) => number | null }> = [
  { id: 'accepted', name: '接收正确率', color: '#12467a', value: (d) => d.correctness.acceptedShare },
  { id: 'his', name: 'HIS→前置 按时率', color: '#1b7f3b', value: (d) => d.timeliness.hisToFront.share },
  { id: 'platform', name: '前置→平台 按时率', color: '#7a4b12', value: (d) => d.timeliness.frontToPlatform.share },
  { id: 'uptime', name: '运行率', color: '#5b2a86', value: (d) => d.stability.uptimeShare },
];

function trendsSection(e: Evaluation): HtmlEscapedString {
  return h(html`<section id="trends"><h2>趋势</h2>
<table id="t-trends"><tbody>
${TRENDS.map((t) => {
  // Oldest to newest, left to right (the tables list the newest day first).
  const values = [...e.days].sort((a, b) => a.day.localeCompare(b.day)).map(t.value);
  const known = values.filter((v): v is number => v !== null);
  return html`<tr data-trend="${t.id}"><th scope="row">${t.name}</th><td>${raw(sparkline(values, { label: `${t.name}（${e.from} 至 ${e.to}）`, width: 600, height: 36, max: 1, color: t.color }))}</td>
<td class="n">${known.length ? html`最低 ${pct(Math.min(...known))}，最近 ${pct(known.at(-1)!)}` : NONE}</td></tr>`;
})}
</tbody></table>
<p class="muted">每日一点，无数据的日子留空；定义见下方各表。</p>
</section>`);
}

function correctnessSection(e: Evaluation): HtmlEscapedString {
  return h(html`<section id="correctness"><h2>正确性</h2>
<p class="def">接收正确率 = 当日存入的记录版本数 ÷（存入数 + 因校验不通过被拒收的记录数），不含测试数据和前置自己生成的日终记录。“仍因映射暂缓”为当日收到、至今仍因本院代码未映射而暂缓上报的记录数。映射完整性只有当前值（不按日保存），见下表。</p>
${table('t-correctness', ['存入', '拒收', '接收正确率', '仍因映射暂缓'], (d) => [n(d.correctness.received), n(d.correctness.rejected), pct(d.correctness.acceptedShare), n(d.correctness.stillHeldForMapping)], e.days)}
<h3>映射完整性（当前）</h3>
<table id="t-mapping"><thead><tr><th>机构</th><th>无缺漏值域</th><th>比例</th><th>已解析的本地代码</th></tr></thead><tbody>
${
  e.mapping.length
    ? e.mapping.map(
        (m) =>
          html`<tr data-org="${m.org}"><td>${m.org}</td><td class="n">${m.gapFreeDomains} / ${m.totalDomains}</td><td class="n">${m.percent}%</td><td class="n">${num.format(m.resolvedCodes)} / ${num.format(m.seenCodes)}</td></tr>`,
      )
    : html`<tr><td colspan="4">${NONE}</td></tr>`
}
</tbody></table>
</section>`);
}

function timelinessSection(e: Evaluation): HtmlEscapedString {
  const mins = REALTIME_S / 60;
  return h(html`<section id="timeliness"><h2>及时性</h2>
<p class="def">HIS → 前置：业务日期为当日的记录，首次收到的时间是否在其资源的时限类别内——实时：业务时间后 ${mins} 分钟内；2 小时：2 小时内；T+0：业务日结束前；T+1：次日结束前（只有日期的业务时间从当日结束起算）。没有业务时间的记录不计。
前置 → 平台：当日写入发送队列的记录，在同一时限内（从存入前置起算）送达平台的比例；未到时限、尚未送达的记为“未到期”，不计入比例；超过时限仍未送达（暂缓、重试、死信）记为超时。</p>
${table(
  't-timeliness',
  ['HIS→前置 记录', '按时', '按时率', '前置→平台 记录', '按时送达', '超时', '未到期', '按时率'],
  (d) => [
    n(d.timeliness.hisToFront.records),
    n(d.timeliness.hisToFront.onTime),
    pct(d.timeliness.hisToFront.share),
    n(d.timeliness.frontToPlatform.rows),
    n(d.timeliness.frontToPlatform.onTime),
    n(d.timeliness.frontToPlatform.late),
    n(d.timeliness.frontToPlatform.pending),
    pct(d.timeliness.frontToPlatform.share),
  ],
  e.days,
)}
</section>`);
}

function stabilitySection(e: Evaluation): HtmlEscapedString {
  return h(html`<section id="stability"><h2>稳定性</h2>
<p class="def">运行率 = 有上报运行记录的调度周期数 ÷ 当日调度周期数（今日为已过的部分）：调度周期取当前生效的上报调度（默认每分钟一次，即按分钟计；配置包改为每 10 分钟一次时按 10 分钟计），是前置在线时间的下限；运行分钟 = 有上报运行记录的分钟数；首次运行之前的日期为“暂无数据”；首次运行当日（安装当日）从首次运行的那一分钟起算。上报失败 = 当日各次上报中发送失败的记录数；出错的运行 = 记有错误类别的上报运行次数；告警 = 当日发出的积压与超时告警；熔断次数 = 当日各上报平台熔断器打开的次数（连续失败达到阈值，或熔断后的试探仍失败）。全前置统计，不分机构。</p>
${table(
  't-stability',
  ['运行分钟', '运行率', '上报失败', '出错的运行', '告警', '熔断次数'],
  (d) => [
    n(d.stability.runMinutes),
    pct(d.stability.uptimeShare),
    n(d.stability.failedPushes),
    n(d.stability.runsWithErrors),
    n(d.stability.alerts),
    n(d.stability.circuitOpens),
  ],
  e.days,
)}
</section>`);
}

function adaptabilitySection(e: Evaluation): HtmlEscapedString {
  return h(html`<section id="adaptability"><h2>适应性</h2>
<p class="def">新建映射 = 当日为本院代码新建的映射（解决未映射代码）；修改映射 = 修改或删除；配置包 = 当日应用的国家平台配置包与回退次数（全前置）。映射完整性的当前值见“正确性”。</p>
${table(
  't-adaptability',
  ['新建映射', '修改映射', '应用配置包', '回退'],
  (d) => [n(d.adaptability.mappingsCreated), n(d.adaptability.mappingsChanged), n(d.adaptability.bundlesApplied), n(d.adaptability.rollbacks)],
  e.days,
)}
</section>`);
}

/** The page: one section per dimension, after the trends, each with its definition above its table. */
export function renderEvaluationPage(e: Evaluation, f: { session: Session; timeZone: string; now: Date }): HtmlEscapedString {
  return consolePage({
    title: '评估',
    path: '/evaluation.html',
    session: f.session,
    timeZone: f.timeZone,
    now: f.now,
    style: STYLE,
    body: h(html`<p class="muted">正确性、及时性、稳定性、适应性，按日统计（${e.from} 至 ${e.to}）</p>
${trendsSection(e)}
${correctnessSection(e)}
${timelinessSection(e)}
${stabilitySection(e)}
${adaptabilitySection(e)}`),
  });
}

/** Who may read the evaluation: public health, operators and the admin (docs/console.md "Users and roles"). */
export const EVALUATION_ROLES = ['public_health', 'operator', 'admin'] as const;

/** GET /evaluation.html for a signed-in person of EVALUATION_ROLES. */
export function evaluationRoutes(people: PeopleOptions, settings: () => { front: { timeZone: string } }): Hono {
  const app = new Hono();
  app.get('/evaluation.html', person(people, EVALUATION_ROLES), async (c) => {
    const s = c.get('person');
    const e = await evaluate(people.db(), { orgs: s.user.orgs, timeZone: settings().front.timeZone });
    c.header('cache-control', 'no-store');
    return c.html(renderEvaluationPage(e, { session: s, timeZone: settings().front.timeZone, now: new Date() }));
  });
  return app;
}
