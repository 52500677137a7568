/**
 * The acceptance self-test (docs/acceptance.md): the checks a hospital must pass
 * before going live, run in one action from the console, kept as a printable report.
 *   1. every resource through the data port (8881) in test mode, with a key made for the run and
 *      revoked after it — the real HIS path: port, authentication, validation, storage;
 *   2. mapping completeness of the org (the forty value domains without a gap);
 *   3. the uplink handshake with every enabled platform (the push function probes each with the
 *      hospital's TLS client certificate; no data sent);
 *   4. backups: the last good logical and physical archives;
 *   5. time: this server's clock against the database's and each platform's.
 */
import { z } from 'zod';
import type { Db } from '../db/index.js';
import { generateApiKey } from '../http/auth.js';
import { insertCaller, revokeCaller } from '../http/auth-store.js';
import { completeness, GAP_ZH } from '../codes/store.js';
import { lastGood } from '../backup/ledger.js';
import { parentsFirst } from '../openapi/index.js';
import { exampleRecord } from '../ingest/examples.js';
import { resources as registry } from '../../schemas/index.js';
import { formatLocal } from '../time/index.js';
import { audit } from './index.js';
import { concern } from '../config/index.js';

export const Check = z.object({
  id: z.enum(['resources', 'mapping', 'uplink', 'backups', 'time']),
  title: z.string(),
  ok: z.boolean(),
  summary: z.string(),
  head: z.array(z.string()),
  rows: z.array(z.array(z.string())),
});
export type Check = z.infer<typeof Check>;

export const AcceptanceReport = z.object({
  org: z.string(),
  by: z.string(),
  version: z.string(),
  startedAt: z.string(),
  finishedAt: z.string(),
  ok: z.boolean(),
  checks: z.array(Check),
});
export type AcceptanceReport = z.infer<typeof AcceptanceReport>;

export interface AcceptanceOptions {
  db: Db;
  org: string;
  /** The signed-in user who ran it. */
  by: string;
  /** The data port as the HIS reaches it (ACCEPTANCE_DATA_URL). */
  dataUrl: string;
  /** The push function (ACCEPTANCE_PUSH_URL): its /handshake probes the platforms. */
  pushUrl: string;
  version: string;
  timeZone: string;
  now?: () => Date;
}

/**
 * Where the self-test reaches the data port and the push function (docs/console.md "Acceptance
 * self-test"). The data port as a HIS reaches it: ACCEPTANCE_DATA_URL, else plain http to this
 * server's DATA_PORT (with TLS on the port, name the https URL and trust its CA: NODE_EXTRA_CA_CERTS).
 */
export const acceptanceConcern = concern({
  name: 'acceptance',
  vars: {
    ACCEPTANCE_DATA_URL: z.union([z.literal(''), z.url({ protocol: /^https?$/ })]).default(''),
    DATA_PORT: z.coerce.number().int().min(1).max(65535).default(8881),
    ACCEPTANCE_PUSH_URL: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:8080/function/push'),
  },
  build: (v) => ({ dataUrl: v.ACCEPTANCE_DATA_URL || `http://127.0.0.1:${v.DATA_PORT}`, pushUrl: v.ACCEPTANCE_PUSH_URL }),
});

/** Clocks further apart than this fail the time check (the platforms' Date header has whole seconds). */
const MAX_SKEW_MS = 3000;

async function resourcesCheck(o: AcceptanceOptions): Promise<Check> {
  const key = generateApiKey();
  const caller = await insertCaller(o.db, {
    kind: 'apikey',
    name: `验收自检 ${o.by}`.slice(0, 100),
    orgs: [o.org],
    ratePerMin: 0,
    keyPrefix: key.prefix,
    keyHash: key.hash,
  });
  const rows: string[][] = [];
  let passed = 0;
  try {
    for (const r of parentsFirst(Object.values(registry))) {
      const rec = exampleRecord(r.name);
      if (!rec) {
        rows.push([r.name, r.title, '—', '无示例记录 (no example)']);
        continue;
      }
      rec.orgCode = o.org;
      let status = 0;
      let outcome = '';
      try {
        const res = await fetch(`${o.dataUrl.replace(/\/+$/, '')}/hclient/emr/receive/${r.name}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': key.key, 'x-test-mode': '1' },
          body: JSON.stringify(rec),
          signal: AbortSignal.timeout(15_000),
        });
        status = res.status;
        const a = (await res.json().catch(() => null)) as { result?: boolean; status?: string; held?: string[]; desc?: string } | null;
        const held = (a?.held?.length ?? 0) > 0;
        if (res.status === 200 && a?.result === true && !held) {
          passed++;
          outcome = `通过：${a.status ?? ''}`;
        } else outcome = held ? `暂缓：${a?.held?.join('，')}` : `失败：${a?.desc ?? res.statusText}`;
      } catch (err) {
        outcome = `失败：${(err as Error).message}`;
      }
      rows.push([r.name, r.title, status ? String(status) : '—', outcome]);
    }
  } finally {
    await revokeCaller(o.db, caller.id);
  }
  return {
    id: 'resources',
    title: '各数据集经数据端口（测试模式）',
    ok: passed === rows.length,
    summary: `${passed}/${rows.length} 个数据集通过（经 ${o.dataUrl}，测试模式，自检专用密钥用后即吊销）`,
    head: ['数据集', '名称', 'HTTP', '结果'],
    rows,
  };
}

async function mappingCheck(o: AcceptanceOptions): Promise<Check> {
  const c = await completeness(o.db, o.org);
  return {
    id: 'mapping',
    title: '代码映射完整性',
    ok: c.gaps.length === 0,
    summary: `无缺口值域 ${c.gapFreeDomains}/${c.totalDomains}（${c.percent}%）；已解析本地代码 ${c.resolvedCodes}/${c.seenCodes}；因映射暂缓的记录 ${c.recordsHeld} 条`,
    head: ['值域', '缺口', '本地代码数', '暂缓记录'],
    rows: c.gaps.map((g) => [g.domainName || g.domain, GAP_ZH[g.kind], String(g.codes), String(g.recordsHeld)]),
  };
}

const Handshake = z.object({
  platforms: z.array(
    z.object({
      name: z.string(),
      kind: z.string(),
      url: z.string(),
      ok: z.boolean(),
      status: z.number().optional(),
      ms: z.number(),
      clockOffsetMs: z.number().optional(),
      tls: z.object({ protocol: z.string().nullable(), subject: z.string(), validTo: z.string() }).optional(),
      reason: z.string().optional(),
      /** The batch of no records and its signed receipt (shared/uplink/handshake.ts). */
      signed: z.object({ ok: z.boolean(), reason: z.string().optional() }),
    }),
  ),
  unconfigured: z.array(z.object({ name: z.string(), reason: z.string() })),
});
type Handshake = z.infer<typeof Handshake>;

async function handshake(o: AcceptanceOptions): Promise<Handshake | string> {
  try {
    const res = await fetch(`${o.pushUrl.replace(/\/+$/, '')}/handshake`, { signal: AbortSignal.timeout(20_000) });
    if (!res.ok) return `推送函数应答 HTTP ${res.status}`;
    const h = Handshake.safeParse(await res.json());
    return h.success ? h.data : '推送函数的应答格式不对';
  } catch (err) {
    return `推送函数不可达：${(err as Error).message}`;
  }
}

function uplinkCheck(h: Handshake | string): Check {
  const head = ['平台', '地址', '结果', '探测应答', '耗时', 'TLS', '签名回执'];
  if (typeof h === 'string') return { id: 'uplink', title: '与平台握手', ok: false, summary: h, head, rows: [] };
  // The probe answered (not a refusal of our certificate, 401/403, nor a server error), and the
  // platform opened a sealed batch of no records and signed its receipt with the key we have for it.
  const reached = (p: Handshake['platforms'][number]) => p.ok && p.status !== undefined && p.status < 500 && p.status !== 401 && p.status !== 403;
  const passed = (p: Handshake['platforms'][number]) => reached(p) && p.signed.ok;
  // The probe's own answer (a GET the platform need not route: 404 is reached) apart from the signed
  // batch's, which the result names as such (docs/acceptance.md).
  const rows = [
    ...h.platforms.map((p) => [
      `${p.name}（${p.kind === 'national' ? '国家' : '省级'}）`,
      p.url,
      passed(p) ? '通过' : `失败：${p.reason ?? (!reached(p) ? `探测应答 HTTP ${p.status}` : `握手批次：${p.signed.reason ?? '签名回执未通过'}`)}`,
      p.status ? `HTTP ${p.status}${reached(p) ? '（可达）' : ''}` : '—',
      `${p.ms} ms`,
      p.tls ? `${p.tls.protocol ?? ''} ${p.tls.subject}，有效期至 ${p.tls.validTo}` : p.url.startsWith('http:') ? '明文（仅本机开发）' : '—',
      p.signed.ok ? '平台验签、解密并签回执，已验证' : `未通过：${p.signed.reason ?? ''}`,
    ]),
    ...h.unconfigured.map((u) => [u.name, '—', `未配置：${u.reason}`, '—', '—', '—', '—']),
  ];
  const ok = h.platforms.length > 0 && h.platforms.every(passed) && h.unconfigured.length === 0;
  return {
    id: 'uplink',
    title: '与平台握手',
    ok,
    summary: h.platforms.length === 0 && h.unconfigured.length === 0 ? '没有启用的平台' : `${h.platforms.filter(passed).length}/${rows.length} 个平台握手成功`,
    head,
    rows,
  };
}

async function backupsCheck(o: AcceptanceOptions, now: Date): Promise<Check> {
  const rows: string[][] = [];
  let ok = true;
  for (const [kind, name, maxH] of [
    ['logical', '逻辑备份', 25],
    ['physical', '物理备份', 8 * 24],
  ] as const) {
    const a = await lastGood(o.db, kind);
    const at = a?.finishedAt ?? null;
    const ageH = at ? (now.getTime() - at.getTime()) / 3_600_000 : null;
    const fresh = ageH !== null && ageH <= maxH;
    if (!fresh) ok = false;
    rows.push([
      name,
      at ? formatLocal(at, o.timeZone) : '无',
      ageH === null ? '—' : `${ageH.toFixed(1)} 小时前`,
      fresh ? '通过' : `失败：应在 ${maxH} 小时内有一份校验通过的备份`,
    ]);
  }
  return {
    id: 'backups',
    title: '备份',
    ok,
    summary: ok ? '最近的逻辑、物理备份均已校验通过' : '缺少近期校验通过的备份',
    head: ['备份', '完成时间', '距今', '结果'],
    rows,
  };
}

async function timeCheck(o: AcceptanceOptions, h: Handshake | string, now: () => Date): Promise<Check> {
  const before = now().getTime();
  const db = (await o.db.query<{ t: Date }>('SELECT now() AS t')).rows[0]!.t.getTime();
  const after = now().getTime();
  const dbOffset = db - (before + after) / 2;
  const rows: string[][] = [['数据库', `${(dbOffset / 1000).toFixed(2)} 秒`, Math.abs(dbOffset) <= MAX_SKEW_MS ? '通过' : '失败']];
  let ok = Math.abs(dbOffset) <= MAX_SKEW_MS;
  if (typeof h !== 'string') {
    for (const p of h.platforms) {
      if (p.clockOffsetMs === undefined) {
        rows.push([p.name, '未知（无 Date 头）', '—']);
        continue;
      }
      const good = Math.abs(p.clockOffsetMs) <= MAX_SKEW_MS;
      if (!good) ok = false;
      rows.push([p.name, `${(p.clockOffsetMs / 1000).toFixed(1)} 秒（±1 秒）`, good ? '通过' : '失败']);
    }
  }
  return {
    id: 'time',
    title: '时间同步',
    ok,
    summary: ok ? `本机时钟与数据库、各平台相差均在 ${MAX_SKEW_MS / 1000} 秒内` : `本机时钟偏差超过 ${MAX_SKEW_MS / 1000} 秒：请检查 NTP`,
    head: ['对照', '对方减本机', '结果'],
    rows,
  };
}

/** Runs every check (a failure of one never stops the others), stores the report, audits the run. */
export async function runAcceptance(o: AcceptanceOptions): Promise<{ id: string; report: AcceptanceReport }> {
  const now = o.now ?? (() => new Date());
  const started = now();
  const guard = async (id: Check['id'], title: string, f: () => Promise<Check>): Promise<Check> => {
    try {
      return await f();
    } catch (err) {
      return { id, title, ok: false, summary: `检查未能完成：${(err as Error).message}`, head: [], rows: [] };
    }
  };
  const h = await handshake(o);
  const checks = [
    await guard('resources', '各数据集经数据端口（测试模式）', () => resourcesCheck(o)),
    await guard('mapping', '代码映射完整性', () => mappingCheck(o)),
    uplinkCheck(h),
    await guard('backups', '备份', () => backupsCheck(o, now())),
    await guard('time', '时间同步', () => timeCheck(o, h, now)),
  ];
  const report: AcceptanceReport = {
    org: o.org,
    by: o.by,
    version: o.version,
    startedAt: started.toISOString(),
    finishedAt: now().toISOString(),
    ok: checks.every((c) => c.ok),
    checks,
  };
  const r = await o.db.query<{ run_id: string }>(
    'INSERT INTO console_acceptance (org_code, started_at, finished_at, by_user, ok, report) VALUES ($1, $2, $3, $4, $5, $6) RETURNING run_id',
    [o.org, started, new Date(report.finishedAt), o.by, report.ok, JSON.stringify(report)],
  );
  const id = String(r.rows[0]!.run_id);
  await audit(o.db, 'acceptance-run', o.by, `验收自检 #${id} 机构 ${o.org}：${report.ok ? '全部通过' : '未通过'}`);
  return { id, report };
}

export interface AcceptanceRun {
  id: string;
  org: string;
  by: string;
  startedAt: Date;
  ok: boolean;
}

/** The latest runs of the orgs a person sees (`'*'`: every org). */
export async function listAcceptance(db: Db, orgs: '*' | string[], limit = 20): Promise<AcceptanceRun[]> {
  if (orgs !== '*' && orgs.length === 0) return [];
  const mine = orgs === '*' ? '' : `WHERE org_code IN (${orgs.map((_, i) => `$${i + 2}`).join(', ')})`;
  const r = await db.query<{ run_id: string; org_code: string; by_user: string; started_at: Date; ok: boolean }>(
    `SELECT run_id, org_code, by_user, started_at, ok FROM console_acceptance ${mine} ORDER BY run_id DESC LIMIT $1`,
    [limit, ...(orgs === '*' ? [] : orgs)],
  );
  return r.rows.map((x) => ({ id: String(x.run_id), org: x.org_code, by: x.by_user, startedAt: x.started_at, ok: x.ok }));
}

/** A run's report, if it is of an org the person sees (`'*'`: every org); else null, as for no such run. */
export async function acceptanceReport(db: Db, id: string, orgs: '*' | string[]): Promise<AcceptanceReport | null> {
  if (!/^\d{1,18}$/.test(id)) return null;
  const r = await db.query<{ report: string; org_code: string }>('SELECT report, org_code FROM console_acceptance WHERE run_id = $1', [id]);
  const row = r.rows[0];
  if (!row || (orgs !== '*' && !orgs.includes(row.org_code))) return null;
  return AcceptanceReport.parse(JSON.parse(row.report));
}
