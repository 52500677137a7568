/**
 * 设置 (/settings.html, read-only; docs/console.md "Settings"): what serves which port, the
 * platforms and their addresses, the schedules, and the network and activation state — each from
 * what this function can know: its own request and configuration, and the database (platforms, the
 * configuration bundle in force, the last scheduled runs). What it cannot know says 暂无数据, and
 * where to look instead. No secret: no password, token or key is read here.
 */
import { Hono, type MiddlewareHandler } from 'hono';
import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import pkg from '../../package.json' with { type: 'json' };
import { compareReleases } from '../../shared/configbundle/release.js';
import { release } from '../../shared/status/version.js';
import { settingsFacts, type SettingsFacts } from '../../shared/console/figures.js';
import type { Db } from '../../shared/db/index.js';
import { consolePage, h, NO_DATA, when } from './console-layout.js';
import { activation, NETWORK_ZH, type Activation } from '../../shared/activation/index.js';
import { formatLocal } from '../../shared/time/index.js';

/** What the web function's own configuration knows (handler.ts passes it). */
export interface KnownSettings {
  timeZone: string;
  allowedHosts: string[];
  idleMin: number;
  sessionH: number;
  lockoutAfter: number;
  lockoutMin: number;
  /** Where the web function nudges the push and warning functions: the gateway's address. */
  pushNudgeUrl: string | undefined;
  production: boolean;
}

const KIND_ZH: Record<string, string> = { national: '国家平台', provincial: '省级平台' };
const FN_ZH: Record<string, string> = {
  push: '数据上报（push）',
  'day-close': '日终处理（day-close）',
  backup: '备份（backup）',
  warning: '预警（warning）',
  dbsync: '中间表同步（dbsync）',
};
/** The ports the stack declares (stack.yml com.cdc-front.port) and their defaults: the deployment may change them. */
const PORTS = [
  {
    role: '数据接收接口（HIS/EMR 推送）',
    fns: ['patient', 'diagnosis', 'card', 'lab', 'exam', 'order', 'death', 'record', 'dbsync', 'remind'],
    env: 'DATA_PORT',
    def: 8881,
  },
  { role: '配置接口（国家平台下发配置包）', fns: ['config'], env: 'CONFIG_PORT', def: 8882 },
  { role: '监控接口（国家平台监控）', fns: ['monitor'], env: 'MONITOR_PORT', def: 8883 },
  { role: 'Web 控制台（本页面）', fns: ['web'], env: 'WEB_PORT', def: 8884 },
];

/** The port(s) the gateway lists for a role's functions (the config function's last pass). */
function portsOfRole(f: SettingsFacts, fns: readonly string[]): number[] {
  return [...new Set(f.ports.filter((p) => fns.includes(p.function)).map((p) => p.port))].sort((a, b) => a - b);
}

function gatewayOf(url: string | undefined): string {
  if (!url) return NO_DATA;
  try {
    return new URL(url).host;
  } catch {
    return NO_DATA;
  }
}

function portsSection(f: SettingsFacts, k: KnownSettings, here: string, tz: string): HtmlEscapedString {
  return h(html`<section id="ports"><h2>端口与服务</h2>
<table><thead><tr><th scope="col">用途</th><th scope="col">函数</th><th scope="col">端口</th></tr></thead><tbody>
${PORTS.map((p) => {
  const at = portsOfRole(f, p.fns);
  return html`<tr data-env="${p.env}"><td>${p.role}</td><td>${p.fns.join('、')}</td><td>${
    at.length
      ? html`<strong data-k="port">${at.join('、')}</strong>${p.env === 'WEB_PORT' ? html`（本次访问：<span data-k="here">${here}</span>）` : ''}`
      : p.env === 'WEB_PORT'
        ? html`<strong data-k="here">${here}</strong>（本次访问的地址）`
        : html`<span class="nodata">${NO_DATA}</span>`
  }<br><span class="muted">默认 ${p.def}，由 ${p.env} 设置</span></td></tr>`;
})}
</tbody></table>
<p class="muted">${
    f.ports.length
      ? `端口为网关上各函数的 com.cdc-front.port 注解（部署时由 DATA_PORT 等设置），由配置函数于 ${when(f.ports[0]!.checkedAt, tz)} 核对。`
      : '配置函数尚未核对网关上的端口（端口由 stack.yml 的 com.cdc-front.port 设置，make up 启动时打印）。'
  }管理网关：${gatewayOf(k.pushNudgeUrl)}（仅本机）。</p>
<dl>
<dt>允许的访问地址</dt><dd data-k="hosts">${k.allowedHosts.join('，')}</dd>
<dt>时区</dt><dd>${k.timeZone}</dd>
<dt>会话</dt><dd>空闲 ${k.idleMin} 分钟或登录 ${k.sessionH} 小时后失效；连续 ${k.lockoutAfter} 次密码错误锁定 ${k.lockoutMin} 分钟</dd>
<dt>运行环境</dt><dd>${k.production ? '生产（production）' : '开发或测试'}</dd>
</dl>
</section>`);
}

function platformsSection(f: SettingsFacts, tz: string): HtmlEscapedString {
  return h(html`<section id="platforms"><h2>上报目标</h2>
<table><thead><tr><th scope="col">名称</th><th scope="col">类型</th><th scope="col">状态</th><th scope="col">地址</th><th scope="col">接收的数据类型</th><th scope="col">最近一次确认</th><th scope="col">最近一次自报</th></tr></thead><tbody>
${f.platforms.map(
  (
    p,
  ) => html`<tr data-destination="${p.name}"><td>${p.name}</td><td>${KIND_ZH[p.kind] ?? p.kind}</td><td>${p.enabled ? '启用' : '停用'}${p.acceptsTest ? '（接收测试数据）' : ''}</td>
<td data-k="url">${p.url ? html`<code>${p.url}</code><br><span class="muted">配置包</span>` : html`<span class="nodata">${NO_DATA}</span><br><span class="muted">地址在 push 函数的 ${p.name.toUpperCase()}_URL 中</span>`}</td>
<td>${p.resources ?? '全部'}</td><td>${when(p.lastSentAt, tz)}</td><td>${p.lastReport ? html`${when(p.lastReport.at, tz)} ${p.lastReport.ok ? '成功' : html`<span class="late">失败</span>`}` : '—'}</td></tr>`,
)}
</tbody></table>
<p class="muted">不显示任何密钥与证书。</p>
</section>`);
}

function schedulesSection(f: SettingsFacts, tz: string): HtmlEscapedString {
  return h(html`<section id="schedules"><h2>定时任务</h2>
<table><thead><tr><th scope="col">函数</th><th scope="col">计划（cron，本地时间）</th><th scope="col">配置包要求</th><th scope="col">最近一次运行</th></tr></thead><tbody>
${f.schedules.map(
  (s) => html`<tr data-function="${s.function}"><td>${FN_ZH[s.function] ?? s.function}</td>
<td data-k="cron">${
    s.cron
      ? html`<code>${s.cron}</code> <span class="muted">${s.source === 'bundle' ? `配置包 v${s.bundleVersion ?? ''}` : 'stack.yml'}${s.checkedAt ? `，${when(s.checkedAt, tz)} 核对` : ''}</span>`
      : html`<span class="nodata">${NO_DATA}</span><br><span class="muted">配置函数尚未核对网关上的定时注解</span>`
  }</td>
<td data-k="requested">${
    s.requested
      ? html`<code>${s.requested}</code> <span class="muted">v${s.bundleVersion ?? ''}</span>${
          s.problem
            ? html`<br><span class="late">未生效：${s.problem}</span>`
            : s.source === 'bundle' && s.cron === s.requested
              ? html` <span class="ok">已生效</span>`
              : html` <span class="muted">待配置函数写入</span>`
        }`
      : '—'
  }</td>
<td data-k="last">${s.lastRunAt ? when(s.lastRunAt, tz) : html`<span class="nodata">${NO_DATA}</span>`}</td></tr>`,
)}
</tbody></table>
<p class="muted">配置包中的定时计划由配置函数写入网关上各函数的 schedule 注解（docs/config-bundles.md），回滚后恢复 stack.yml 的计划。</p>
</section>`);
}

function releaseSection(f: SettingsFacts): HtmlEscapedString {
  return h(html`<section id="release"><h2>软件版本</h2>
<dl><dt>当前运行</dt><dd data-k="running">${pkg.version}</dd>
<dt>构建</dt><dd data-k="build"><code>${release}</code> <span class="muted">（版本号+构建所用源码的提交号，同一版本号的两次发布以此区分）</span></dd>
<dt>最新版本</dt><dd data-k="latest">${
    f.release
      ? compareReleases(f.release.version, pkg.version) > 0
        ? html`<span class="late">有新版本 ${f.release.version}，请安排升级</span>${f.release.url ? html`：<a href="${f.release.url}" rel="noreferrer">${f.release.url}</a>` : ''}${f.release.notes ? html`<br><span class="muted">${f.release.notes}</span>` : ''}`
        : html`<span class="ok">已是最新</span> <span class="muted">（配置包 v${f.release.bundleVersion} 通告 ${f.release.version}）</span>`
      : html`<span class="nodata">${NO_DATA}</span> <span class="muted">国家平台尚未通过配置包通告版本</span>`
  }</dd></dl>
</section>`);
}

function networkSection(f: SettingsFacts, tz: string, act: Activation | null): HtmlEscapedString {
  return h(html`<section id="network"><h2>入网与激活</h2>
<dl><dt>所在网络</dt><dd data-k="network">${act ? NETWORK_ZH[act.network] : '未激活'}</dd>
<dt>激活状态</dt><dd data-k="activation">${
    act
      ? html`机构 ${act.orgCode}，前置 ${act.frontId}，授权码 ${formatLocal(act.issuedAt, tz).slice(0, 10)} 由 ${act.issuer} 签发${act.expiresAt ? `，有效期至 ${formatLocal(act.expiresAt, tz).slice(0, 10)}` : ''}；${when(act.activatedAt, tz)} 由 ${act.activatedBy} 导入${act.acceptanceRun ? html`（依据验收自检 <a href="/acceptance/${act.acceptanceRun}">#${act.acceptanceRun}</a>）` : ''}`
      : '未激活'
  }</dd>
<dt>配置包</dt><dd>${f.bundleVersion ? `v${f.bundleVersion}` : '尚未收到'}</dd></dl>
<p class="muted">授权码文件由国家平台签发：试运行期间为测试网（双轨：正式网仍手工报卡），验收自检通过后导入正式授权码转入正式网（docs/activation.md）。</p>
</section>`);
}

/** The page's body: one section per heading, top to bottom. */
export function renderSettings(f: SettingsFacts, k: KnownSettings, here: string, tz: string, act: Activation | null = null) {
  return h(html`<p class="muted">只读。修改请由运维在服务器上调整部署配置（stack.yml、环境变量）或由国家平台下发配置包。</p>
${portsSection(f, k, here, tz)}
${platformsSection(f, tz)}
${schedulesSection(f, tz)}
${releaseSection(f)}
${networkSection(f, tz, act)}`);
}

export function settingsRoutes(o: { db: () => Db; viewer: MiddlewareHandler; known: () => KnownSettings }): Hono {
  const app = new Hono();
  app.get('/settings.html', o.viewer, async (c) => {
    const k = o.known();
    const now = new Date();
    const [facts, act] = await Promise.all([settingsFacts(o.db()), activation(o.db())]);
    const here = c.req.header('x-forwarded-host') ?? c.req.header('host') ?? new URL(c.req.url).host;
    c.header('cache-control', 'no-store');
    return c.html(
      consolePage({
        title: '设置',
        path: '/settings.html',
        session: c.get('person'),
        timeZone: k.timeZone,
        now,
        body: renderSettings(facts, k, here, k.timeZone, act),
      }),
    );
  });
  return app;
}
