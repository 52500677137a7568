/**
 * The readable reference of the data API for HIS vendors (/openapi.html on the data port): one
 * section per resource with its path, deadline class, every field (type, length, required, value
 * domain) and a valid example — rendered on the server from the same OpenAPI document, with no
 * external assets (a hospital LAN has no internet). hono/html escapes every interpolated value.
 */
import { html, raw } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';

// biome-ignore lint/suspicious/noExplicitAny: the OpenAPI document is walked as plain JSON
type Json = Record<string, any>;

const DEADLINE: Record<string, string> = { realtime: '实时', '2h': '2 小时内', 'T+0': '当日 (T+0)', 'T+1': '次日 (T+1)' };

function typeOf(p: Json): string {
  const variants: Json[] = p.anyOf ?? [p];
  const t = variants.find((v) => v.type !== 'null') ?? {};
  if (Array.isArray(t.type)) return '时间 (time)';
  if (t.type === 'string') return t.maxLength ? `文本 ≤${t.maxLength}` : '文本';
  if (t.type === 'integer') return '整数';
  if (t.type === 'number') return '数值';
  return String(t.type ?? '');
}

export function referencePage(doc: Json): HtmlEscapedString | Promise<HtmlEscapedString> {
  const schemas: Json = doc.components.schemas;
  // One section per resource (a report document's schema is its header's and its items').
  const names = Object.keys(schemas).filter((k) => k !== 'Answer' && k !== 'FieldIssue' && schemas[k].properties);
  const sections = names.map((name) => {
    const s = schemas[name];
    const post = doc.paths[`/hclient/emr/receive/${name}`]?.post;
    const example = post?.requestBody?.content?.['application/json']?.examples?.record?.value;
    const deadline = /deadline class (\S+);/.exec(s.description ?? '')?.[1] ?? '';
    const rows = Object.entries(s.properties as Json).map(
      ([k, p]: [string, Json]) => html`<tr>
        <td><code>${k}</code></td><td>${p.title ?? ''}</td><td>${typeOf(p)}</td>
        <td>${(s.required as string[]).includes(k) ? '必填' : ''}</td><td>${p['x-value-domain'] ?? ''}</td>
      </tr>`,
    );
    return html`<section id="${name}">
      <h2>${s.title}</h2>
      <p><code>POST|DELETE /hclient/emr/receive/${name}</code> · 函数 <code>${post?.tags?.[0] ?? ''}</code> · 上报时限 ${DEADLINE[deadline] ?? deadline}</p>
      <table><thead><tr><th>字段</th><th>含义</th><th>类型</th><th>必填</th><th>值域</th></tr></thead><tbody>${rows}</tbody></table>
      ${example ? html`<details><summary>示例 (example)</summary><pre>${JSON.stringify(example, null, 2)}</pre></details>` : ''}
    </section>`;
  });
  return html`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>数据接口说明 — ${doc.info.title}</title>
<style>
body{margin:0 auto;max-width:1100px;padding:0 20px 40px;font:14px/1.6 "Noto Sans CJK SC","Microsoft YaHei",sans-serif;color:#1f2933}
h1{font-size:22px;margin:24px 0 4px}h2{font-size:18px;margin-top:32px;border-left:4px solid #124479;padding-left:8px}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #e3e8ee;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef2f6}code,pre{font-family:"Noto Sans Mono CJK SC",monospace;font-size:13px}pre{background:#f6f8fa;padding:10px;overflow:auto}
nav a{margin-right:12px;white-space:nowrap}
</style></head><body>
<h1>${doc.info.title}</h1>
<p>版本 ${doc.info.version} · 机器可读文档：<a href="openapi.json">openapi.json</a> (OpenAPI 3.1)</p>
<p>应答格式：<code>{"result":true|false,"desc":"…","id":"…","errorCode":…,"errorName":…}</code>，校验失败时 <code>errors</code>
逐项列出字段 (field)、规则 (rule) 和原因 (message)。HTTP 200 表示已持久保存并将上报；400 校验不通过（不保存任何部分数据）；
401 调用方未识别；403 无权访问该机构数据；404 地址或记录不存在；413 请求过大；415 非 JSON；429 过于频繁，请稍后重试；502/503/504 前置暂不可用（启动、重启、数据库故障、超时），按 Retry-After 重试。批量中没有一条成功时 400，部分成功时 200（逐条结果见 results）。按本页顺序推送示例记录，上级记录总在前。
时间格式：${raw('<code>yyyy-MM-dd HH:mm:ss</code>')}（北京时间）、ISO 8601 或毫秒时间戳；空字符串视为空值；字段名可用驼峰或大写下划线。</p>
<nav>${names.map((n) => html`<a href="#${n}">${n}</a>`)}</nav>
${sections}
</body></html>`;
}
