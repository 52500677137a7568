/**
 * 数据上报 (/delivery.html, docs/console.md "Delivery"): per platform its lag, circuit, queued,
 * retrying, sent and failed today and dead letters; the dead letters with a replay button; the day
 * closes of the last days; the backlog alerts. A replay (POST /delivery/replay) and a "retry now"
 * (POST /delivery/retry) are operators' and admins' changes: the session's CSRF token, the
 * signed-in user audited as their author. Both go through shared/uplink/push.ts (replay,
 * resetCircuit), which moves the rows through shared/outbox, the outbox's only writer.
 */
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import { z } from 'zod';
import { resources } from '../../schemas/index.js';
import { audit, type Session } from '../../shared/console/index.js';
import {
  alertEvents,
  dayCloses,
  deadLetter,
  deadLetterRows,
  destinationFigures,
  type AlertEvent,
  type DayCloseResult,
  type DeadLetterRow,
  type DestinationFigures,
} from '../../shared/console/figures.js';
import type { Db } from '../../shared/db/index.js';
import { destinationExists } from '../../shared/uplink/config.js';
import { requestSource } from '../../shared/http/caller.js';
import { validationError } from '../../shared/http/errors.js';
import { replay, resetCircuit } from '../../shared/uplink/push.js';
import { autoRefresh, age, consolePage, h, NO_DATA, num, OPERATORS, orgsOf, when } from './console-layout.js';
import { flash, flashOf } from '../../shared/http/flash.js';

const KIND_ZH: Record<string, string> = { national: '国家平台', provincial: '省级平台' };
const title = (r: string) => resources[r]?.title ?? r;
const csrfField = (s: Session) => html`<input type="hidden" name="_csrf" value="${s.csrf}">`;

function circuit(d: DestinationFigures, now: Date, tz: string): HtmlEscapedString {
  const c = d.circuit;
  if (!c) return h(html`<span class="muted">尚未上报</span>`);
  const err = c.lastError ? html`<br><span class="muted">${c.lastError.slice(0, 200)}</span>` : '';
  if (c.state === 'open') {
    return c.retryAt && c.retryAt > now
      ? h(html`<span class="bad" data-circuit="open">熔断（打开）</span>，${when(c.retryAt, tz)} 后重试，连续失败 ${c.failures} 次${err}`)
      : h(html`<span class="late" data-circuit="half-open">半开</span>，下次上报以一条记录试探${err}`);
  }
  if (c.failures > 0) return h(html`<span class="late" data-circuit="closed">正常（关闭）</span>，连续失败 ${c.failures} 次${err}`);
  return h(html`<span class="ok" data-circuit="closed">正常（关闭）</span>`);
}

function destinationsSection(ds: DestinationFigures[], s: Session, now: Date, tz: string): HtmlEscapedString {
  const operator = OPERATORS.includes(s.user.role);
  return h(html`<section id="destinations"><h2>上报目标</h2>
<table><thead><tr><th scope="col">上报目标</th><th scope="col">熔断状态</th><th scope="col">排队</th><th scope="col">其中重试中</th><th scope="col">最早未发送</th><th scope="col">今日已发送</th><th scope="col">今日失败</th><th scope="col">死信</th>${operator ? html`<th scope="col"></th>` : ''}</tr></thead><tbody>
${ds.map(
  (
    d,
  ) => html`<tr data-destination="${d.name}"><th scope="row">${d.name}<br><span class="muted">${KIND_ZH[d.kind] ?? d.kind}${d.enabled ? '' : '，已停用'}</span></th>
<td>${circuit(d, now, tz)}</td>
<td class="n" data-k="queued">${num.format(d.queued)}</td><td class="n" data-k="retrying">${num.format(d.retrying)}</td><td class="n" data-k="lag">${age(d.lagS)}</td>
<td class="n" data-k="sent">${num.format(d.sentToday)}</td><td class="n${d.failedToday ? ' late' : ''}" data-k="failed">${num.format(d.failedToday)}</td>
<td class="n${d.dead ? ' late' : ''}" data-k="dead">${num.format(d.dead)}</td>
${
  operator
    ? html`<td><form method="post" action="/delivery/retry" class="inline">${csrfField(s)}<input type="hidden" name="destination" value="${d.name}"><button title="清除退避并关闭熔断，排队的记录立即可发">立即重试</button></form></td>`
    : ''
}</tr>`,
)}
</tbody></table>
<p class="muted">排队：待发送的上报条目（测试数据不计）；其中重试中：已尝试过、等待退避的；今日失败：今日转入死信且仍未重发的；死信：平台拒收或多次被拒、等待运维处理的全部条目。</p>
</section>`);
}

function deadSection(xs: DeadLetterRow[], s: Session, tz: string): HtmlEscapedString {
  const operator = OPERATORS.includes(s.user.role);
  return h(html`<section id="dead"><h2>死信（最近 ${xs.length} 条）</h2>
${
  xs.length
    ? html`<table><thead><tr><th scope="col">转入时间</th><th scope="col">上报目标</th><th scope="col">数据类型</th><th scope="col">机构</th><th scope="col">记录 ID / 版本</th><th scope="col">尝试</th><th scope="col">原因</th>${operator ? html`<th scope="col"></th>` : ''}</tr></thead><tbody>
${xs.map(
  (x) => html`<tr data-outbox="${x.outboxId}"><td>${when(x.deadAt, tz)}</td><td>${x.destination}</td><td>${title(x.resource)}</td><td>${x.orgCode}</td>
<td><code>${x.id}</code> v${x.version}</td><td class="n">${x.attempts}</td><td>${x.reason ?? '—'}</td>
${
  operator
    ? html`<td><form method="post" action="/delivery/replay" class="inline">${csrfField(s)}<input type="hidden" name="outboxId" value="${x.outboxId}"><button>重发</button></form></td>`
    : ''
}</tr>`,
)}</tbody></table>`
    : html`<p class="nodata">${NO_DATA}（没有死信）</p>`
}
<p class="muted">重发：修正原因（平台侧、上报目标配置，或 HIS 已发送更正版本）后，将死信放回队列立即发送；若同一记录的更新版本已送达，则保留为死信，不以旧版本覆盖新版本。${operator ? '' : '重发需运维人员或管理员。'}</p>
</section>`);
}

const CLOSE_STATUS: Record<string, string> = { done: '完成', failed: '失败' };
/** A close's held records, by kind in its title (the 数据质量 page's names for the holds). */
function heldCell(held: DayCloseResult['held']): HtmlEscapedString {
  if (!held) return h(html`<td class="n" data-k="held"><span class="nodata">—</span></td>`);
  const byKind = `等待代码映射 ${num.format(held.byKind.mapping)}，映射后不符合规则 ${num.format(held.byKind.rule)}，等待上级记录 ${num.format(held.byKind.parent)}`;
  return h(html`<td class="n${held.records ? ' late' : ''}" data-k="held" title="${byKind}">${num.format(held.records)}</td>`);
}
function closesSection(xs: DayCloseResult[], tz: string): HtmlEscapedString {
  return h(html`<section id="closes"><h2>日终处理（近 7 日）</h2>
${
  xs.length
    ? html`<table><thead><tr><th scope="col">业务日</th><th scope="col">机构</th><th scope="col">类型</th><th scope="col">结果</th><th scope="col">完整性缺漏</th><th scope="col">日汇总版本</th><th scope="col">暂缓上报</th><th scope="col">其后收到</th><th scope="col">次数</th><th scope="col">完成时间</th><th scope="col">触发</th></tr></thead><tbody>
${xs.map(
  (x) => html`<tr data-day="${x.day}" data-org="${x.orgCode}" data-kind="${x.kind}"><td>${x.day}</td><td>${x.orgCode}</td><td>${x.kind}</td>
<td class="${x.status === 'done' ? 'ok' : 'bad'}" data-k="status">${CLOSE_STATUS[x.status] ?? x.status}${x.error ? html`<br><span class="muted">${x.error.slice(0, 200)}</span>` : ''}</td>
<td class="n${x.gapCount ? ' late' : ''}" data-k="gaps">${num.format(x.gapCount)}</td><td class="n" data-k="version">${x.summaryVersion}</td>${heldCell(x.held)}
<td class="n${x.lateRecords ? ' late' : ''}" data-k="late">${num.format(x.lateRecords)}</td><td class="n">${x.runs}</td><td>${when(x.finishedAt, tz)}</td><td>${x.trigger === 'cron' ? '定时' : '手动'}</td></tr>`,
)}</tbody></table>`
    : html`<p class="nodata">${NO_DATA}（近 7 日没有日终处理记录）</p>`
}
<p class="muted">暂缓上报：结算时该业务日被暂缓、未上报平台的记录数（等待代码映射、映射后不符合规则、等待上级记录；鼠标悬停看分类），不计入日汇总的已报告数；放行后计入“其后收到”并在下一次 T+1 重算。其后收到：该机构该业务日在本次结算开始后收到（新增、更新或作废）或解除暂缓（代码映射建立、上级记录到达后放行）的记录数。补做期内已完成的 T+1 会在下一次定时触发时重算，内容变化则日汇总版本加一并重新上报；T+0 不重算，由当天的 T+1 收入。</p>
</section>`);
}

function alertsSection(xs: AlertEvent[], tz: string): HtmlEscapedString {
  return h(html`<section id="alerts"><h2>积压告警（最近 ${xs.length} 条）</h2>
${
  xs.length
    ? html`<table><thead><tr><th scope="col">时间</th><th scope="col">上报目标</th><th scope="col">事件</th><th scope="col">待发送</th><th scope="col">最早未发送</th><th scope="col">通知</th><th scope="col">内容</th></tr></thead><tbody>
${xs.map(
  (
    x,
  ) => html`<tr data-event="${x.id}"><td>${when(x.at, tz)}</td><td>${x.destination}</td><td class="${x.kind === 'raise' ? 'bad' : 'ok'}">${x.kind === 'raise' ? '告警' : '解除'}</td>
<td class="n">${num.format(x.pending)}</td><td class="n">${age(x.oldestAgeS)}</td>
<td>${x.deliveredAt ? html`已送达（${x.channels ?? ''}）` : x.lastError ? html`<span class="late">未送达</span><br><span class="muted">${x.lastError.slice(0, 200)}</span>` : html`<span class="muted">未配置通知渠道或待送达</span>`}</td>
<td><details><summary>${x.message.split('\n')[0]}</summary><pre>${x.message}</pre></details></td></tr>`,
)}</tbody></table>`
    : html`<p class="nodata">${NO_DATA}（没有告警）</p>`
}
</section>`);
}

export interface DeliveryOptions {
  db: () => Db;
  viewer: MiddlewareHandler;
  operator: MiddlewareHandler;
  timeZone: () => string;
  trustedProxies: () => string;
  /** Starts a push run (PUSH_NUDGE_URL): a replayed or released row goes at once, not at the next cron minute. */
  nudgePush: () => void;
}

export function deliveryRoutes(o: DeliveryOptions): Hono {
  const app = new Hono();
  const address = (c: Context) => requestSource(c, o.trustedProxies()).address;
  const back = (c: Context, p: { msg?: string; err?: string }) =>
    c.redirect(`/delivery.html?${flash(c.get('person').csrf, p.msg ? 'msg' : 'err', p.msg ?? p.err ?? '')}`, 303);

  app.get('/delivery.html', o.viewer, async (c) => {
    const session = c.get('person');
    const orgs = orgsOf(session, c.req.query('org'));
    const tz = o.timeZone();
    const now = new Date();
    const s = { orgs, timeZone: tz, now };
    const db = o.db();
    const [dests, dead, closes, alerts] = await Promise.all([
      destinationFigures(db, s),
      deadLetterRows(db, orgs, 100),
      dayCloses(db, s, 7),
      alertEvents(db, 30),
    ]);
    c.header('cache-control', 'no-store');
    return c.html(
      consolePage({
        title: '数据上报',
        path: '/delivery.html',
        session,
        timeZone: tz,
        now,
        ...flashOf(c, session.csrf),
        refresh: autoRefresh(c.req.url, 60),
        body: h(html`<p class="muted">范围：${orgs === '*' ? '全部机构' : orgs.join('，')} · 每 60 秒自动刷新</p>
${destinationsSection(dests, session, now, tz)}${deadSection(dead, session, tz)}${closesSection(closes, tz)}${alertsSection(alerts, tz)}`),
      }),
    );
  });

  app.post('/delivery/replay', o.operator, async (c) => {
    const parsed = z.object({ outboxId: z.string().regex(/^\d{1,18}$/, 'a dead letter’s number') }).safeParse(await c.req.parseBody());
    if (!parsed.success) throw validationError(parsed.error, 'outboxId: 死信编号不合法 (invalid dead letter)');
    const session = c.get('person');
    const id = parsed.data.outboxId;
    const d = await deadLetter(o.db(), id);
    const orgs = session.user.orgs;
    if (!d || (orgs !== '*' && !orgs.includes(d.orgCode))) return back(c, { err: `没有可重发的死信 ${id}（已重发或无权处理）` });
    const r = await replay(o.db(), { destination: d.destination, outboxIds: [id] });
    const what = `${d.destination} outbox ${id} ${d.resource}/${d.orgCode}/${d.id} v${d.version}`;
    // The author is the signed-in operator (docs/console.md "Changes"); a record id, no personal data.
    await audit(
      o.db(),
      'replay',
      session.user.username,
      `${what}: ${r.replayed.length ? 'requeued' : r.superseded.length ? 'left dead (a later version was delivered)' : 'not dead'}`,
      address(c),
    );
    if (r.replayed.length) {
      o.nudgePush();
      return back(c, { msg: `已重发：${title(d.resource)} ${d.id} 第 ${d.version} 版 → ${d.destination}` });
    }
    return back(c, { err: r.superseded.length ? `未重发：该记录的更新版本已送达 ${d.destination}` : `没有可重发的死信 ${id}` });
  });

  app.post('/delivery/retry', o.operator, async (c) => {
    const parsed = z.object({ destination: z.string().regex(/^[A-Za-z0-9_-]{1,40}$/, 'a destination name') }).safeParse(await c.req.parseBody());
    if (!parsed.success) throw validationError(parsed.error, 'destination: 上报目标不合法 (invalid destination)');
    const dest = parsed.data.destination;
    if (!(await destinationExists(o.db(), dest))) return back(c, { err: `上报目标不存在：${dest}` });
    await resetCircuit(o.db(), dest);
    await audit(o.db(), 'retry-now', c.get('person').user.username, dest, address(c));
    o.nudgePush();
    return back(c, { msg: `已清除 ${dest} 的退避与熔断，排队的记录正在发送` });
  });
  return app;
}
