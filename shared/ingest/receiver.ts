/**
 * A receive function as a declaration: `receiveFunction({ resources: [emrPatientInfo, ...] })`.
 * Routes (relative to the function; the gateway strips /function/<name>, and the data port maps
 * /hclient/emr/receive/<resource> onto /<resource>):
 *   POST   /<resource>   one record (object) or a batch (array) → insert or update
 *   DELETE /<resource>   body with the key {orgCode, id} → retire
 *   POST|DELETE /        the same, when the function serves one resource
 *   GET    /<resource>/<id>?orgCode=…        the record's fate (stored, held, forwarded, rejected …)
 *   POST   /<resource>/_reconcile            {orgCode, date, ids} → held / missing / extra
 * Test mode: header `X-Test-Mode: 1`, or an org code listed in TEST_ORG_CODES — such records are
 * processed like any other but never leave for a live platform. Settings: shared/config/functions/receive.ts
 * receiveConfig, parsed once at start (docs/configuration.md).
 */
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { defineFunction, type FaasFunction } from '../fn/index.js';
import { AppError, databaseError, errorAnswer, handleError, notFoundAnswer, okAnswer, validationError, type Answer } from '../http/errors.js';
import { parseJsonExact } from '../http/json.js';
import { assertOrg, callerOf, hisAuth } from '../http/auth.js';
import { receiveConfig, type ReceiveSettings } from '../config/functions/receive.js';
import { closePool, getPool, openPool } from '../db/index.js';
import { log } from '../log/index.js';
import type { Resource } from '../../schemas/resource.js';
import { retireRecord, upsertDocument, upsertMany, type DocumentOutcome, type IngestContext, type Outcome } from './index.js';
import { reconcile, recordFate } from './receipts.js';
import { softwareVersion } from '../status/version.js';
import { documentItems, resources as registry } from '../../schemas/index.js';
import { createCodeCache, lazyCodeCache, listsLookedUp, type CodeCache } from '../codes/cache.js';
import { z } from 'zod';

const ReconcileRequest = z.object({
  orgCode: z.string().min(1).max(50),
  // A day of the calendar (2026-02-30 is none): a HIS that computed a wrong day is told so, not "nothing missing".
  date: z.iso.date('日期应为存在的日期 yyyy-MM-dd (a calendar day, yyyy-MM-dd)'),
  ids: z.array(z.union([z.string().min(1).max(80), z.number()]).transform(String)).max(10_000),
});
const TEST_HEADER = /^(1|true|yes)$/i;

/**
 * Charsets a body may declare (docs/his-guide.md §2): UTF-8 (the default; a BOM is skipped) and
 * the Chinese GB family legacy HIS middleware sends — GBK, GB2312 and GB18030 all decode as GB18030,
 * their superset. Bytes the charset cannot decode become U+FFFD, and the field is flagged
 * `garbledText` (shared/ingest/quality.ts) — as the national front-end takes them, never refused.
 */
const CHARSETS: Record<string, string> = {
  'utf-8': 'utf-8',
  utf8: 'utf-8',
  gbk: 'gb18030',
  gb2312: 'gb18030',
  gb18030: 'gb18030',
  cp936: 'gb18030',
  'x-gbk': 'gb18030',
};

function decodeBody(bytes: Uint8Array, contentType: string): string {
  const declared = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType)?.[1]?.toLowerCase() ?? 'utf-8';
  const encoding = CHARSETS[declared];
  if (!encoding) throw new AppError('UNSUPPORTED_MEDIA_TYPE', `不支持的字符集 ${declared}：请使用 UTF-8、GBK 或 GB18030 (unsupported charset ${declared})`);
  return decoderOf(encoding).decode(bytes);
}

import { nudger } from './nudge.js';
import { GroupCommitter } from './group.js';
import { Tally } from './tally.js';

const decoders = new Map<string, TextDecoder>();
/** One decoder per charset: a TextDecoder decoding whole bodies (no `stream` option) keeps no state between calls. */
const decoderOf = (encoding: string): TextDecoder => {
  let d = decoders.get(encoding);
  if (!d) decoders.set(encoding, (d = new TextDecoder(encoding)));
  return d;
};

const DESC: Record<Outcome['status'], string> = {
  created: '接收成功 (stored)',
  updated: '更新成功 (updated)',
  unchanged: '内容未变化 (unchanged)',
  retired: '已作废 (retired)',
};

export interface ReceiveOptions {
  resources: Resource[];
  /** Largest batch accepted in one POST (records). */
  maxBatch?: number;
  /** A valid example record per resource, for the interface documents. */
  example?: (resource: string) => Record<string, unknown> | undefined;
}

/**
 * The resource `POST /function/<fn>` (no resource in the path) takes when the function serves
 * several; a function serving one takes that one (docs/his-guide.md §1).
 */
const PRIMARY: Record<string, string> = { patient: 'emrPatientInfo', lab: 'emrExLab', exam: 'emrExClinical', order: 'emrOrder' };

function isPrimary(r: Resource): boolean {
  return PRIMARY[r.fn] === r.name || Object.values(registry).filter((x) => x.fn === r.fn).length === 1;
}

/** What each route needs: the settings, the code cache, the group committer, the tally and the nudges of one replica. */
class Receiver {
  private parsed: ReceiveSettings | undefined;
  // The code-mapping cache loads from the database: a replica that starts while the database is
  // down keeps trying on each request (answering 503 meanwhile), never falls back to refusing codes.
  private readonly codes = lazyCodeCache(() =>
    createCodeCache(getPool(), { refreshMs: this.settings().codes.refreshMs, lists: listsLookedUp(this.opts.resources) }),
  );
  private readonly byName: Map<string, Resource>;
  // One log line per interval with the counts, instead of one per record (shared/ingest/tally.ts).
  readonly tally = new Tally();
  // Concurrent single-record calls of this replica, written together (shared/ingest/group.ts).
  private committer = new GroupCommitter(getPool, { maxGroup: 64, waitMs: 0, parallel: 2 });
  private nudge: () => void = () => undefined;

  constructor(readonly opts: ReceiveOptions) {
    this.byName = new Map(opts.resources.map((r) => [r.name.toLowerCase(), r]));
  }

  /** Parsed once: at start (init), or at the first request when a test drives app.request() without init. */
  settings(): ReceiveSettings {
    return (this.parsed ??= receiveConfig.parse());
  }

  codeCache(): Promise<CodeCache> {
    return this.codes.get();
  }

  async init(): Promise<void> {
    const cfg = this.settings();
    openPool(cfg.database.url, cfg.ingest.dbPoolMax, cfg.database.limits);
    // The first commit after a quiet spell nudges at once, so a prompt is due within a second of the
    // record (docs/warning.md); under load one nudge per 250 ms per replica (shared/ingest/nudge.ts).
    const push = nudger(cfg.ingest.pushNudgeUrl);
    const warning = nudger(cfg.ingest.warningNudgeUrl);
    this.nudge = () => {
      push();
      warning();
    };
    this.committer = new GroupCommitter(getPool, cfg.ingest.groupCommit);
    // Loaded while the replica starts listening, not before: a request that comes first waits for
    // the same load (lazyCodeCache), and the replica is ready sooner (docs/bench.md "P7").
    void this.codeCache().catch((err) => log('warn', 'code mappings not loaded yet; retried on the next request', { err: String((err as Error).message) }));
  }

  async close(): Promise<void> {
    this.tally.flush();
    await this.codes.close();
    await closePool();
  }

  resourceOf(c: Context): Resource {
    const { resources } = this.opts;
    // At the function's root a resource may be named by `?resource=` (faas-cli invoke has no path).
    const name = c.req.param('resource') ?? c.req.query('resource');
    if (name === undefined) {
      if (resources.length === 1) return resources[0]!;
      const primary = resources.find(isPrimary);
      if (primary) return primary;
      throw new AppError('NOT_FOUND', `请在路径中指明资源：${resources.map((r) => r.name).join(', ')}`);
    }
    const r = this.byName.get(name.toLowerCase());
    if (!r) throw new AppError('NOT_FOUND', `本函数不接收 ${name}（可用：${resources.map((r) => r.name).join(', ')}）`);
    return r;
  }

  async context(c: Context): Promise<IngestContext> {
    const cache = await this.codeCache();
    const caller = callerOf(c);
    const ingest = this.settings().ingest;
    return {
      codes: cache,
      callId: c.req.header('x-call-id') ?? null,
      test: TEST_HEADER.test(c.req.header('x-test-mode') ?? ''),
      testOrgs: ingest.testOrgs,
      now: new Date(),
      caller: `${caller.kind}:${caller.id}`,
      authorize: (org: string) => assertOrg(caller, org),
      callerOrgs: caller.orgs,
      installationOrg: ingest.frontOrgCode,
    };
  }

  /** An outcome counted, nudged when something changed, and logged at debug. */
  private settled(c: Context, r: Resource, o: Outcome, what = 'record'): void {
    if (o.status !== 'unchanged') this.nudge();
    this.tally.add(r.name, o.status);
    log('debug', what, { resource: r.name, status: o.status, version: o.version, callId: c.req.header('x-call-id') });
  }

  readonly post = async (c: Context) => {
    const r = this.resourceOf(c);
    const input = await jsonBody(c);
    if (isDocument(r, input, c.req.param('resource') === undefined)) return this.postDocument(c, r, input);
    if (Array.isArray(input)) return this.postBatch(c, r, input);
    const o = await dbGuard(async () => {
      const res = await this.committer.submit(r, input, await this.context(c));
      if (!res.ok) {
        this.tally.add(r.name, 'rejected');
        throw res.error;
      }
      return res.outcome;
    });
    this.settled(c, r, o);
    return c.json(answer(o));
  };

  private async postDocument(c: Context, r: Resource, input: unknown) {
    const d = await dbGuard(async () => upsertDocument(getPool(), r, input, await this.context(c)));
    if (d.header.status !== 'unchanged' || d.items.some((o) => o.status !== 'unchanged')) this.nudge();
    this.tally.add(r.name, d.header.status);
    log('debug', 'document', { resource: r.name, status: d.header.status, items: d.items.length, callId: c.req.header('x-call-id') });
    return c.json(documentAnswer(d));
  }

  private async postBatch(c: Context, r: Resource, input: unknown[]) {
    const maxBatch = this.opts.maxBatch ?? this.settings().ingest.maxBatch;
    if (input.length > maxBatch) throw new AppError('PAYLOAD_TOO_LARGE', `批量记录数不能超过 ${maxBatch} (batch limit ${maxBatch})`);
    const items = await dbGuard(async () => upsertMany(getPool(), r, input, await this.context(c)));
    for (const x of items) this.tally.add(r.name, x.ok ? x.outcome.status : 'rejected');
    const results: Answer[] = items.map((x) => (x.ok ? answer(x.outcome) : errorAnswer(x.error)));
    if (results.some((x) => x.result)) this.nudge();
    const { body, status } = batchAnswer(results);
    return c.json(body, status);
  }

  readonly del = async (c: Context) => {
    const r = this.resourceOf(c);
    const input = await jsonBody(c);
    const o = await dbGuard(async () => retireRecord(getPool(), r, input, await this.context(c)));
    this.settled(c, r, o);
    return c.json(answer(o));
  };

  readonly fate = async (c: Context) => {
    const r = this.resourceOf(c);
    const orgCode = c.req.query('orgCode');
    if (orgCode) assertOrg(callerOf(c), orgCode);
    if (!orgCode)
      throw new AppError('VALIDATION_FAILED', '请提供 orgCode 查询参数', [{ field: 'orgCode', rule: 'required', message: '必填 (orgCode is required)' }]);
    const f = await dbGuard(() => recordFate(getPool(), r, orgCode, c.req.param('id')!));
    if (f.fate === 'unknown')
      return c.json({ ...errorAnswer(new AppError('NOT_FOUND', `前置软件未收到该记录：${f.id} (unknown record)`, [], f.id)), fate: f }, 404);
    return c.json(okAnswer(f.id, `记录状态：${f.fate}`, { fate: f }));
  };

  readonly reconcile = async (c: Context) => {
    const r = this.resourceOf(c);
    const parsed = ReconcileRequest.safeParse(await jsonBody(c));
    if (!parsed.success) throw validationError(parsed.error, '对账请求格式错误');
    const { orgCode, date, ids } = parsed.data;
    assertOrg(callerOf(c), orgCode);
    const rec = await dbGuard(() => reconcile(getPool(), r, orgCode, date, ids));
    return c.json(
      okAnswer(null, `对账：列出 ${rec.counts.listed} 条，缺失 ${rec.missing.length} 条，前置多出 ${rec.extra.length} 条`, { reconciliation: rec }),
    );
  };
}

export function receiveFunction(opts: ReceiveOptions): FaasFunction {
  const rx = new Receiver(opts);
  const app = new Hono();
  app.onError(handleError);
  app.notFound(notFoundAnswer);
  // A %-escape that is no UTF-8 text (`%C0%AF`) names nothing: 400, as the runtime and OpenFaaS's
  // gateway answer a malformed escape (docs/his-guide.md 应答) — never a record id or resource of its
  // literal text, which a router falls back to when it cannot decode.
  app.use('*', async (c, next) => {
    if (c.req.url.includes('%') && !escapesDecode(new URL(c.req.url).pathname))
      throw new AppError('BAD_REQUEST', '路径中的 % 转义不是合法的 UTF-8 文本 (malformed percent-escape in the path)');
    await next();
  });

  // The interface documents are public on the data port (before the caller check): every receive
  // function answers them for the whole data set, and the data port's root function serves them
  // at /openapi.json and /openapi.html.
  // The documents' builder and their example records are loaded at the first request for them, not
  // at every start: a replica that never serves them never builds them (docs/runtime.md "Bundles").
  let doc: Promise<Record<string, unknown>> | undefined;
  const document = () =>
    (doc ??= (async () => {
      const [{ openApiDocument }, { exampleRecord }] = await Promise.all([import('../openapi/index.js'), import('./examples.js')]);
      return openApiDocument(Object.values(registry), { version: softwareVersion, example: opts.example ?? exampleRecord, primary: isPrimary });
    })().catch((e: unknown) => {
      doc = undefined;
      throw e;
    }));
  app.get('/openapi.json', async (c) => c.json(await document()));
  app.get('/openapi.html', async (c) => {
    const [{ referencePage }, d] = await Promise.all([import('../openapi/page.js'), document()]);
    return c.html(referencePage(d));
  });

  // The caller check and the body limit guard the function's own routes only: a path no route takes
  // answers 404 without reading settings or the database (the image's self-test runs with neither,
  // docs/runtime.md).
  const auth = hisAuth({ config: () => rx.settings().hisAuth });
  const sized = bodySized(() => rx.settings().ingest.maxBodyBytes);

  app.post('/:resource/_reconcile', auth, sized, rx.reconcile);
  app.get('/:resource/:id', auth, sized, rx.fate);
  app.post('/', auth, sized, rx.post);
  app.delete('/', auth, sized, rx.del);
  app.post('/:resource', auth, sized, rx.post);
  app.delete('/:resource', auth, sized, rx.del);
  app.get('/', auth, sized, (c) => c.json({ resources: opts.resources.map((r) => ({ name: r.name, title: r.title, deadline: r.deadline })) }));
  // Another method on one of these paths: 405 with the methods it takes (docs/his-guide.md 应答);
  // a resource this function does not serve stays 404.
  const only = (methods: string) => (c: Context) => {
    if (c.req.param('resource') !== undefined) rx.resourceOf(c);
    c.header('Allow', methods);
    throw new AppError('METHOD_NOT_ALLOWED', `不支持的请求方法 ${c.req.method}（此地址可用：${methods}）(method not allowed)`);
  };
  app.all('/:resource/_reconcile', only('POST'));
  app.all('/:resource/:id', only('GET, HEAD'));
  app.all('/:resource', only('POST, DELETE'));
  app.all('/', only('GET, HEAD, POST, DELETE'));

  return defineFunction({ app, config: receiveConfig, init: () => rx.init(), close: () => rx.close() });
}

const tooLarge = () => new AppError('PAYLOAD_TOO_LARGE', '请求体过大 (body too large)');

/**
 * The body limit. A body with a Content-Length is judged by it before a byte is read, and is then
 * read by the route straight from the socket (the node server's request reads it without a web
 * stream). Hono's bodyLimit would first build the full web Request and a stream around the socket:
 * skipping that saves about a tenth of a receive replica's CPU per record (docs/bench.md "A/B of one
 * replica"). A chunked body has no length to judge: it goes through Hono's bodyLimit, which counts it
 * as it arrives.
 */
function bodySized(max: () => number): MiddlewareHandler {
  let streamed: MiddlewareHandler | undefined;
  return (c, next) => {
    const length = c.req.header('content-length');
    if (length !== undefined && c.req.header('transfer-encoding') === undefined) {
      if (Number(length) > max()) throw tooLarge();
      return next();
    }
    streamed ??= bodyLimit({
      maxSize: max(),
      onError: () => {
        throw tooLarge();
      },
    });
    return streamed(c, next);
  };
}

/** The body as JSON, in the charset it declares (UTF-8 or the GB family). */
async function jsonBody(c: Context): Promise<unknown> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/(.+\+)?json\b/i.test(type)) {
    throw new AppError(
      'UNSUPPORTED_MEDIA_TYPE',
      `Content-Type 应为 application/json（收到 ${type || '无'}；faas-cli invoke 请加 --content-type application/json）`,
    );
  }
  // Nothing is decompressed (a small gzip body may inflate past any limit): a coded body is refused as
  // such, not read as broken JSON.
  const coding = c.req.header('content-encoding')?.trim().toLowerCase();
  if (coding && coding !== 'identity') {
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', `不接受压缩的请求体（Content-Encoding: ${coding}）：请发送未压缩的 JSON (only identity content coding)`);
  }
  const text = decodeBody(new Uint8Array(await c.req.arrayBuffer()), type);
  try {
    return parseJsonExact(text);
  } catch {
    throw new AppError('BAD_REQUEST', '请求体不是合法的 JSON (body is not valid JSON)');
  }
}

/** A database that is down or refusing becomes the 503 / error answer the HIS can act on. */
async function dbGuard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw databaseError(err) ?? err;
  }
}

/**
 * What a held record waits for, by the kind of its holds (`parent:…`, `mapping:…`, docs/his-guide.md 应答):
 * Chinese, then English. A kind not named here (one added later) is said generically, never as another.
 */
const WAITS_FOR: Record<string, [string, string]> = {
  parent: ['等待上级记录', 'waiting for the parent record'],
  mapping: ['等待本院代码映射到国家值域（代码映射）', 'waiting for the hospital code to be mapped to the national value domain'],
  rule: ['代码映射后不符合数据集规则，等待更正后的记录', 'breaks a data-set rule once its codes are mapped: waiting for a corrected version'],
};
const WAITS_FOR_OTHER: [string, string] = ['等待处理', 'waiting'];

/** The desc part of a held record: what it waits for, each kind once, in the order of its holds. */
export function heldDesc(held: readonly string[]): string {
  const kinds = [...new Set(held.map((h) => h.slice(0, Math.max(0, h.indexOf(':')))))];
  const says = [...new Set(kinds.map((k) => WAITS_FOR[k] ?? WAITS_FOR_OTHER))];
  return `暂缓上报，${says.map(([zh]) => zh).join('；')} (held, ${says.map(([, en]) => en).join('; ')}: ${held.join(', ')})`;
}

function answer(o: Outcome): Answer {
  const desc = o.held.length ? `${DESC[o.status]}；${heldDesc(o.held)}` : DESC[o.status];
  return okAnswer(o.id, desc, {
    status: o.status,
    version: o.version,
    ...(o.held.length ? { held: o.held } : {}),
    ...(o.test ? { test: true } : {}),
    ...(o.warnings.length ? { warnings: o.warnings } : {}),
  });
}

/** A header with its items in one document (docs/his-guide.md §1): one answer, one per item inside. */
function documentAnswer(d: DocumentOutcome): Answer {
  const a = answer(d.header);
  const held = d.items.filter((o) => o.held.length).length;
  return { ...a, desc: `${a.desc}；条目 ${d.items.length} 条${held ? `，暂缓 ${held} 条` : ''}`, items: d.items.map(answer) } as Answer;
}

const isDocument = (r: Resource, input: unknown, atRoot: boolean): boolean =>
  documentItems(r) !== undefined && input !== null && typeof input === 'object' && !Array.isArray(input) && (atRoot || 'items' in input);

/**
 * One result per record. A batch in which nothing was accepted is a 400 (an adapter reading only the
 * status must not count it as delivered); a mixed one stays 200.
 */
function batchAnswer(results: Answer[]): { body: Answer; status: 200 | 400 } {
  const ok = results.filter((x) => x.result).length;
  const all = ok === results.length;
  const none = ok === 0 && results.length > 0;
  const summary = all ? `共 ${results.length} 条，全部成功` : `共 ${results.length} 条，成功 ${ok} 条，失败 ${results.length - ok} 条`;
  return {
    body: {
      ...okAnswer(null, summary, { results }),
      result: all,
      errorCode: all ? null : 'VALIDATION_FAILED',
      errorName: all ? null : none ? '全部记录校验不通过' : '部分记录校验不通过',
    } as Answer,
    status: none ? 400 : 200,
  };
}

/** Whether every %-escape of a path decodes, each segment as UTF-8 text. */
function escapesDecode(path: string): boolean {
  try {
    for (const segment of path.split('/')) decodeURIComponent(segment);
    return true;
  } catch {
    return false;
  }
}
