/**
 * The console's REST API of code mapping, mounted by the web function under /api/codes
 * (docs/code-mapping.md has the table). Every route runs behind the caller authentication of the
 * receive functions (shared/http/auth.ts: API key, client certificate, or an address rule bound to
 * org codes — a console PC on the hospital LAN is admitted by an address rule) and answers 403 for an
 * org the caller is not bound to. Queries and bodies are zod-validated; answers use the one envelope.
 *
 * HTML forms (the 代码映射 page) post to the same routes: a form post (urlencoded or multipart) is
 * answered with 303 back to the page, carrying a message or the error. Writes from another site are
 * refused (Origin / Sec-Fetch-Site), since a browser sends an address-rule "credential" with any
 * request.
 */
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { z } from 'zod';
import type { Db } from '../db/index.js';
import { OrgCodeSchema, assertOrg, callerOf, hisAuth, type Caller } from '../http/auth.js';
import { AppError, okAnswer, validationError } from '../http/errors.js';
import { heldForDomain } from '../holds/index.js';
import { sameOrigin } from '../http/same-origin.js';
import { decodeText, parseCsv, records, writeCsv } from './csv.js';
import { flash } from '../http/flash.js';
import { DomainSchema, LocalCodeSchema, MappingInputSchema, POLICY_ZH, PolicyInputSchema, type Actor } from './model.js';
import {
  EXPORT_COLUMNS,
  MAPPING_COLUMNS,
  completeness,
  deleteMapping,
  exportHeader,
  exportRows,
  getMapping,
  importMappings,
  listDomains,
  listMappings,
  listPolicies,
  mappingsNotApplying,
  mappingHistory,
  nationalCodes,
  saveMapping,
  setPolicy,
  suggest,
  unmappedQueue,
} from './store.js';

export interface CodesApiOptions {
  /** The database (the function's pool, opened by its init). */
  db: () => Db;
  /** Caller authentication; default hisAuth(). Tests and a future console login pass their own. */
  auth?: MiddlewareHandler;
  /** Where form posts return to. Default /codes.html. */
  page?: string;
  /** The secret that signs a form post's notice on the page it returns to (shared/http/flash.ts): the session's. */
  flashSecret?: (c: Context) => string | undefined;
}

export const IMPORT_MAX_BYTES = 5 * 1024 * 1024;

function parse<T extends z.ZodType>(schema: T, data: unknown): z.output<T> {
  const r = schema.safeParse(data);
  if (r.success) return r.data;
  throw validationError(r.error, r.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; '));
}

/** The org of a request: ?org=, else the caller's only org. 403 when the caller is not bound to it. */
export function orgOf(c: Context, given?: string | null): string {
  const caller = callerOf(c);
  const raw = given ?? c.req.query('org');
  let org: string;
  if (raw) org = parse(OrgCodeSchema, raw);
  else if (caller.orgs !== '*' && caller.orgs.length === 1) org = caller.orgs[0]!;
  else throw new AppError('BAD_REQUEST', '请指定机构编码 org (name the org: ?org=<机构编码>)');
  assertOrg(caller, org);
  return org;
}

export function actorOf(caller: Caller, person?: string): Actor {
  // A signed-in person is the author, whatever a form says (docs/console.md); a machine caller may
  // name the person it acts for.
  if (caller.kind === 'person') return { by: caller.name, via: `person:${caller.name}`.slice(0, 120) };
  return { by: person || caller.name, via: `${caller.kind}:${caller.name}`.slice(0, 120) };
}

const isForm = (c: Context) => /^(application\/x-www-form-urlencoded|multipart\/form-data)/i.test(c.req.header('content-type') ?? '');

/** The person a change is made by: a signed-in person always themselves, a machine caller as it says. */
function authorOf(c: Context, said: unknown): string | undefined {
  const caller = callerOf(c);
  if (caller.kind === 'person') return caller.name;
  return typeof said === 'string' && said.trim() ? said.trim().slice(0, 100) : undefined;
}

async function body(c: Context): Promise<Record<string, unknown>> {
  const b = await rawBody(c);
  const by = authorOf(c, b.madeBy);
  return by === undefined ? b : { ...b, madeBy: by };
}

async function rawBody(c: Context): Promise<Record<string, unknown>> {
  if (isForm(c)) return (await c.req.parseBody()) as Record<string, unknown>;
  try {
    const b = await c.req.json();
    if (b && typeof b === 'object' && !Array.isArray(b)) return b as Record<string, unknown>;
  } catch {
    /* answered below */
  }
  throw new AppError('BAD_REQUEST', '请求体应为 JSON 对象或表单 (body: a JSON object or a form)');
}

/** What a write answers: the message, the envelope's extra fields, and a status other than 200. */
type WriteResult = { desc: string; extra?: Record<string, unknown>; status?: 200 | 201 };
/** Runs a write for a route (formWrite's answer). */
type Write = (c: Context, org: string | null, fn: () => Promise<WriteResult>) => Promise<Response>;

export function codesApi(opts: CodesApiOptions): Hono {
  const app = new Hono();
  app.use('*', opts.auth ?? hisAuth());
  app.use('*', sameOrigin);
  const write = formWrite(opts.page ?? '/codes.html', opts.flashSecret);
  // Hono answers with the first matching route registered: /mappings/export.csv stays before /mappings/:id.
  registerRoutes(app, opts);
  mappingTableRoutes(app, opts, write);
  mappingRoutes(app, opts, write);
  policyRoutes(app, opts, write);
  return app;
}

/** Runs a write; a form post gets 303 back to the page with the message or the error. */
function formWrite(page: string, secret?: (c: Context) => string | undefined): Write {
  return async (c, org, fn) => {
    const form = isForm(c);
    const back = (key: 'msg' | 'err', text: string) => {
      const u = new URLSearchParams();
      if (org) u.set('org', org);
      return c.redirect(`${page}?${flash(secret?.(c), key, text.slice(0, 300), u)}`, 303);
    };
    try {
      const r = await fn();
      return form ? back('msg', r.desc) : c.json(okAnswer(null, r.desc, r.extra ?? {}), r.status ?? 200);
    } catch (err) {
      if (form && err instanceof AppError && err.code !== 'FORBIDDEN' && err.code !== 'UNAUTHENTICATED') {
        const detail = err.issues.length
          ? `${err.desc}：${err.issues
              .slice(0, 5)
              .map((i) => `${i.field} ${i.message}`)
              .join('；')}`
          : err.desc;
        return back('err', detail);
      }
      throw err;
    }
  };
}

/** The registers and the work queue: value domains, completeness, unmapped codes, suggestions, national codes. */
function registerRoutes(app: Hono, opts: CodesApiOptions): void {
  app.get('/domains', async (c) => c.json(okAnswer(null, '值域登记', { domains: await listDomains(opts.db()) })));

  app.get('/completeness', async (c) => {
    const org = orgOf(c);
    return c.json(okAnswer(null, '映射完整性', { report: await completeness(opts.db(), org) }));
  });

  app.get('/unmapped', async (c) => {
    const org = orgOf(c);
    const q = parse(z.object({ domain: DomainSchema.optional(), limit: z.coerce.number().int().min(1).max(1000).default(200) }), {
      domain: c.req.query('domain') || undefined,
      limit: c.req.query('limit') || undefined,
    });
    return c.json(okAnswer(null, '待映射的本地代码', { org, items: await unmappedQueue(opts.db(), org, q) }));
  });

  app.get('/suggest', async (c) => {
    const q = parse(z.object({ domain: DomainSchema, name: z.string().max(250).optional(), code: z.string().max(100).optional() }), {
      domain: c.req.query('domain'),
      name: c.req.query('name') || undefined,
      code: c.req.query('code') || undefined,
    });
    return c.json(okAnswer(null, '候选国家代码', { candidates: await suggest(opts.db(), q.domain, q.name ?? null, q.code ?? null, 10) }));
  });

  app.get('/national/:domain', async (c) => {
    const domain = parse(DomainSchema, c.req.param('domain'));
    return c.json(okAnswer(null, '国家值域', { domain, codes: await nationalCodes(opts.db(), domain) }));
  });
}

/** An org's mappings as a whole: the list, the CSV export and the CSV import. */
function mappingTableRoutes(app: Hono, opts: CodesApiOptions, write: Write): void {
  app.get('/mappings', async (c) => {
    const org = orgOf(c);
    const domain = c.req.query('domain') ? parse(DomainSchema, c.req.query('domain')) : undefined;
    return c.json(okAnswer(null, '映射', { org, mappings: await listMappings(opts.db(), org, domain) }));
  });

  app.get('/mappings/export.csv', async (c) => {
    const org = orgOf(c);
    const domain = c.req.query('domain') ? parse(DomainSchema, c.req.query('domain')) : undefined;
    const rows = await exportRows(opts.db(), org, { domain, unmapped: c.req.query('unmapped') === '1' });
    const name = `code-mappings-${org}${domain ? '-' + domain : ''}.csv`;
    c.header('content-type', 'text/csv; charset=utf-8');
    c.header('content-disposition', `attachment; filename="${name}"`);
    c.header('cache-control', 'no-store');
    return c.body(
      writeCsv(
        exportHeader(),
        rows.map((r) => EXPORT_COLUMNS.map((k) => r[k])),
      ),
    );
  });

  app.post('/mappings/import', async (c) => {
    const form = isForm(c);
    const org = orgOf(c, form ? (((await c.req.parseBody()).org as string | undefined) ?? null) : null);
    return write(c, org, async () => {
      const { bytes, person } = await importFile(c, form);
      const table = records(parseCsv(decodeText(bytes).text), MAPPING_COLUMNS);
      const need = (['domain', 'local_code', 'national_code'] as const).filter((k) => table.missing.includes(k));
      if (need.length) throw new AppError('BAD_REQUEST', `文件缺少列：${need.map((k) => `${MAPPING_COLUMNS[k][0]}(${k})`).join('、')}`);
      const r = await importMappings(opts.db(), org, table.records, actorOf(callerOf(c), person));
      return {
        desc: `已导入：新增 ${r.created}，修改 ${r.updated}，未变 ${r.unchanged}，跳过（未填国家代码）${r.skipped}`,
        extra: { import: r },
      };
    });
  });
}

/** The CSV file of an import: a form's file field (and its author), else the request body itself. */
async function importFile(c: Context, form: boolean): Promise<{ bytes: Uint8Array; person: string | undefined }> {
  if (form) {
    const b = await c.req.parseBody();
    const f = b.file;
    if (!(f instanceof File)) throw new AppError('BAD_REQUEST', '请选择要导入的 CSV 文件 (no file)');
    if (f.size > IMPORT_MAX_BYTES) throw new AppError('PAYLOAD_TOO_LARGE', '文件超过 5 MB');
    return { bytes: new Uint8Array(await f.arrayBuffer()), person: authorOf(c, b.madeBy) };
  }
  const buf = await c.req.arrayBuffer();
  if (buf.byteLength > IMPORT_MAX_BYTES) throw new AppError('PAYLOAD_TOO_LARGE', '文件超过 5 MB');
  return { bytes: new Uint8Array(buf), person: undefined };
}

/** The mapping of the request's :id; 404 when there is none, 403 when it is another org's. */
async function ownMapping(opts: CodesApiOptions, c: Context) {
  const m = await getMapping(opts.db(), c.req.param('id') ?? '');
  if (!m) throw new AppError('NOT_FOUND', `映射不存在：${c.req.param('id')}`);
  assertOrg(callerOf(c), m.org);
  return m;
}

/** One mapping: create, read, its history, change, delete (DELETE, or POST …/delete from a form). */
function mappingRoutes(app: Hono, opts: CodesApiOptions, write: Write): void {
  app.post('/mappings', async (c) => {
    const b = await body(c);
    const org = orgOf(c, typeof b.org === 'string' ? b.org : null);
    return write(c, org, async () => {
      const input = parse(MappingInputSchema, { ...b, org });
      const r = await saveMapping(opts.db(), input, actorOf(callerOf(c), input.madeBy));
      const verb = { created: '已新增', updated: '已修改', unchanged: '未变化' }[r.outcome];
      return {
        desc: `${verb}映射：${r.mapping.domain} ${r.mapping.localCode} → ${r.mapping.nationalCode ?? '无对应'}`,
        extra: r,
        status: r.outcome === 'created' ? 201 : 200,
      };
    });
  });

  app.get('/mappings/:id', async (c) => c.json(okAnswer(null, '映射', { mapping: await ownMapping(opts, c) })));

  app.get('/mappings/:id/history', async (c) => {
    const m = await ownMapping(opts, c);
    return c.json(okAnswer(null, '映射历史', { history: await mappingHistory(opts.db(), m.org, { id: m.id }) }));
  });

  app.put('/mappings/:id', async (c) => {
    const m = await ownMapping(opts, c);
    const b = await body(c);
    return write(c, m.org, async () => {
      const input = parse(MappingInputSchema, { localName: m.localName ?? undefined, ...b, org: m.org, domain: m.domain, localCode: m.localCode });
      const r = await saveMapping(opts.db(), input, actorOf(callerOf(c), input.madeBy));
      return { desc: r.outcome === 'unchanged' ? '未变化' : '已修改映射', extra: r };
    });
  });

  const remove = async (c: Context) => {
    const m = await ownMapping(opts, c);
    const person = authorOf(c, isForm(c) ? (await c.req.parseBody()).madeBy : undefined);
    return write(c, m.org, async () => {
      await deleteMapping(opts.db(), m.id, actorOf(callerOf(c), person));
      return { desc: `已删除映射：${m.domain} ${m.localCode}`, extra: { deleted: m } };
    });
  };
  app.delete('/mappings/:id', remove);
  app.post('/mappings/:id/delete', remove);
}

/** The policy answer's note on mappings that stop applying under the policy just set. */
function notApplyingWarning(policy: string, notApplying: Array<{ localCode: string }>): string {
  const codes = notApplying.map((m) => m.localCode);
  if (!codes.length) return '';
  const list = `${codes.slice(0, 10).join('、')}${codes.length > 10 ? '…' : ''}`;
  return policy === 'national'
    ? `；注意：此策略只收国家代码，${codes.length} 条映射不再生效（${list}） (${codes.length} mappings cannot apply under this policy: only national codes are taken)`
    : `；注意：${codes.length} 条映射的本地代码本身就是国家代码，在此策略下不生效（${list}），` +
        `本院代码与国家代码重叠时请用“${POLICY_ZH.local}” (${codes.length} mappings cannot apply under this policy: their local codes are national codes)`;
}

/** The note on records held for a mapping in the domain, which the `national` policy leaves no way to release. */
const strandedWarning = (held: number): string =>
  held
    ? `；${held} 条记录正在等待此值域的代码映射，此策略下映射无法放行它们：请 HIS 以国家代码重发，或改回“${POLICY_ZH.auto}”并建立映射 ` +
      `(${held} records held for a mapping in this domain cannot be released under this policy: the HIS must send them again with national codes)`
    : '';

/** An org's mapping history and its per-domain mapping policies. */
function policyRoutes(app: Hono, opts: CodesApiOptions, write: Write): void {
  app.get('/history', async (c) => {
    const org = orgOf(c);
    const q = parse(z.object({ domain: DomainSchema.optional(), localCode: LocalCodeSchema.optional() }), {
      domain: c.req.query('domain') || undefined,
      localCode: c.req.query('localCode') || undefined,
    });
    return c.json(okAnswer(null, '映射历史', { history: await mappingHistory(opts.db(), org, q) }));
  });

  app.get('/policies', async (c) => {
    const org = orgOf(c);
    return c.json(okAnswer(null, '映射策略', { org, policies: await listPolicies(opts.db(), org) }));
  });

  const putPolicy = async (c: Context) => {
    const b = await body(c);
    const org = orgOf(c, typeof b.org === 'string' ? b.org : null);
    return write(c, org, async () => {
      const p = parse(PolicyInputSchema, { ...b, org });
      const version = await setPolicy(opts.db(), org, p.domain, p.policy, actorOf(callerOf(c), p.madeBy));
      // Mappings that stop applying — under auto, those whose local code is a national code; under
      // national, every one — and, under national, the records held for a mapping in the domain, which
      // no mapping can release now: said at once; the mappings are also a gap of the completeness
      // report (docs/code-mapping.md, "The completeness report" and "Policies").
      const notApplying = await mappingsNotApplying(opts.db(), org, p.domain);
      const held = p.policy === 'national' ? await heldForDomain(opts.db(), org, p.domain) : 0;
      const desc = `已设置 ${p.domain} 的映射策略：${p.policy}${notApplyingWarning(p.policy, notApplying)}${strandedWarning(held)}`;
      return {
        desc,
        extra: {
          org,
          domain: p.domain,
          policy: p.policy,
          mapVersion: version,
          ...(notApplying.length ? { notApplying } : {}),
          ...(held ? { heldForMapping: held } : {}),
        },
      };
    });
  };
  app.put('/policies', putPolicy);
  app.post('/policies', putPolicy);
}
