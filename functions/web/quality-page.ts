/**
 * 数据质量 (/quality.html, docs/console.md "Data quality"): records refused, by resource and by
 * field and rule, today and over 30 days, with the newest refusals as masked examples (a personal
 * field's value masked by its kind, its message not shown); the records held now by kind of hold;
 * the children that wait longest for their parent (orphans).
 */
import { Hono, type MiddlewareHandler } from 'hono';
import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import { resources } from '../../schemas/index.js';
import {
  holdGroups,
  rejectionExamples,
  rejections,
  RULE_SAMPLE,
  TREND_DAYS,
  type HoldGroup,
  type RejectionExample,
  type Rejections,
} from '../../shared/console/figures.js';
import { addDays, dayBounds, localDay } from '../../shared/time/day.js';
import type { Db } from '../../shared/db/index.js';
import { listOrphans, type Orphan } from '../../shared/ingest/orphans.js';
import { age, consolePage, h, NO_DATA, num, orgsOf, when } from './console-layout.js';

const title = (r: string) => resources[r]?.title ?? r;
const label = (r: string, f: string) => resources[r]?.fields[f]?.label ?? '';
const HOLD_ZH: Record<HoldGroup['kind'], string> = { parent: '等待上级记录', mapping: '等待代码映射', rule: '映射后不符合规则' };

function rejectionSection(id: string, name: string, r: Rejections): HtmlEscapedString {
  if (r.total === 0) return h(html`<section id="${id}"><h2>${name}</h2><p class="nodata">${NO_DATA}（没有被拒收的记录）</p></section>`);
  return h(html`<section id="${id}"><h2>${name}：${num.format(r.total)} 条</h2>
<h3>按数据类型</h3>
<table class="by-resource"><thead><tr><th scope="col">数据类型</th><th scope="col">拒收</th></tr></thead><tbody>
${r.byResource.map((x) => html`<tr data-resource="${x.resource}"><th scope="row">${title(x.resource)} <span class="muted">${x.resource}</span></th><td class="n">${num.format(x.n)}</td></tr>`)}
</tbody></table>
<h3>按字段与规则</h3>
<table class="by-rule"><thead><tr><th scope="col">数据类型</th><th scope="col">字段</th><th scope="col">规则</th><th scope="col">记录数</th></tr></thead><tbody>
${r.byRule.map(
  (x) =>
    html`<tr data-resource="${x.resource}" data-field="${x.field}" data-rule="${x.rule}"><td>${title(x.resource)}</td><td>${label(x.resource, x.field)} <code>${x.field}</code></td><td><code>${x.rule}</code></td><td class="n">${num.format(x.n)}</td></tr>`,
)}
</tbody></table>
${r.sampled < r.total ? html`<p class="muted">按字段与规则的统计取自最近 ${num.format(RULE_SAMPLE)} 条拒收。</p>` : ''}
</section>`);
}

function examplesSection(xs: RejectionExample[], tz: string): HtmlEscapedString {
  return h(html`<section id="examples"><h2>最近的拒收示例（个人信息已脱敏）</h2>
${
  xs.length
    ? html`<table><thead><tr><th scope="col">时间</th><th scope="col">数据类型</th><th scope="col">机构</th><th scope="col">记录 ID</th><th scope="col">问题</th></tr></thead><tbody>
${xs.map(
  (x) => html`<tr><td>${when(x.at, tz)}</td><td>${title(x.resource)}</td><td>${x.orgCode ?? '—'}</td><td><code>${x.id ?? '—'}</code></td>
<td><ul>${x.issues.map((i) => html`<li>${label(x.resource, i.field)} <code>${i.field}</code> · <code>${i.rule}</code> · ${i.message}${i.value === null ? '' : html` · 取值 <code>${i.value}</code>`}</li>`)}</ul></td></tr>`,
)}</tbody></table>`
    : html`<p class="nodata">${NO_DATA}</p>`
}
<p class="muted">姓名、证件号码、电话、地址等个人信息字段的取值按项目统一规则脱敏，其原因原文不显示；其他文字中的长数字串（证件号、电话）也已脱敏。</p>
</section>`);
}

function holdsSection(gs: HoldGroup[], tz: string, now: Date): HtmlEscapedString {
  return h(html`<section id="holds"><h2>持有的记录（按类型）</h2>
${
  gs.length
    ? html`<table><thead><tr><th scope="col">类型</th><th scope="col">数据类型</th><th scope="col">等待</th><th scope="col">记录数</th><th scope="col">最早</th></tr></thead><tbody>
${gs.map(
  (
    g,
  ) => html`<tr data-kind="${g.kind}" data-resource="${g.resource}"><td>${HOLD_ZH[g.kind]}</td><td>${title(g.resource)} <span class="muted">${g.resource}</span></td>
<td>${g.kind === 'parent' ? html`${title(g.target)} <span class="muted">${g.target}</span>` : g.kind === 'mapping' ? html`值域 <code>${g.target}</code>` : html`更正后的记录（字段 ${label(g.resource, g.target)} <code>${g.target}</code>）`}</td>
<td class="n" data-k="records">${num.format(g.records)}</td><td>${when(g.oldest, tz)}<br><span class="muted">已等待 ${age((now.getTime() - g.oldest.getTime()) / 1000)}</span></td></tr>`,
)}</tbody></table>`
    : html`<p class="nodata">${NO_DATA}（没有持有的记录）</p>`
}
<p class="muted">等待上级记录：子记录先于其上级记录（如检验项目先于检验报告）到达，上级到达后自动放行，超过设定时限（默认 48 小时，由运维设置 ORPHAN_RELEASE_AFTER_H）仍未到达则放行并标记为上级缺失；上级记录已到达但被暂缓的，子记录随上级一同放行；等待代码映射：本地代码尚未映射到国家值域，映射建立后自动放行（代码映射页）；映射后不符合规则：代码映射后记录不符合数据集规则（如人群分类与年龄不符、性别与身份证号不一致），不会上报，须由 HIS 发送更正后的记录（映射有误时先更正映射再重发）。</p>
</section>`);
}

function orphansSection(os: Orphan[], tz: string): HtmlEscapedString {
  return h(html`<section id="orphans"><h2>等待上级记录最久的记录（孤儿记录）</h2>
${
  os.length
    ? html`<table><thead><tr><th scope="col">数据类型</th><th scope="col">机构</th><th scope="col">记录 ID</th><th scope="col">等待的上级记录</th><th scope="col">自</th></tr></thead><tbody>
${os.map(
  (o) => html`<tr><td>${title(o.resource)}</td><td>${o.orgCode}</td><td><code>${o.id}</code></td><td>${title(o.parentResource)} <code>${o.parentId}</code></td>
<td>${when(o.since, tz)}<br><span class="muted">已等待 ${age(o.ageS)}</span></td></tr>`,
)}</tbody></table>`
    : html`<p class="nodata">${NO_DATA}（没有等待上级记录的记录）</p>`
}
</section>`);
}

export function qualityRoutes(o: { db: () => Db; viewer: MiddlewareHandler; timeZone: () => string }): Hono {
  const app = new Hono();
  app.get('/quality.html', o.viewer, async (c) => {
    const session = c.get('person');
    const orgs = orgsOf(session, c.req.query('org'));
    const tz = o.timeZone();
    const now = new Date();
    const today = localDay(now, tz);
    const todayFrom = dayBounds(today, tz).from;
    const monthFrom = dayBounds(addDays(today, -(TREND_DAYS - 1)), tz).from;
    const s = { orgs, timeZone: tz, now };
    const db = o.db();
    const [day, month, examples, holds, orphans] = await Promise.all([
      rejections(db, s, todayFrom, now),
      rejections(db, s, monthFrom, now),
      rejectionExamples(db, s, monthFrom, 20),
      holdGroups(db, orgs),
      listOrphans(db, { orgCodes: orgs, limit: 20 }),
    ]);
    c.header('cache-control', 'no-store');
    return c.html(
      consolePage({
        title: '数据质量',
        path: '/quality.html',
        session,
        timeZone: tz,
        now,
        body: h(html`<p class="muted">范围：${orgs === '*' ? '全部机构' : orgs.join('，')} · 测试数据不计</p>
${rejectionSection('today', `今日拒收（${today}）`, day)}
${rejectionSection('month', `近 ${TREND_DAYS} 日拒收`, month)}
${examplesSection(examples, tz)}
${holdsSection(holds, tz, now)}
${orphansSection(orphans, tz)}`),
      }),
    );
  });
  return app;
}
