/**
 * One error type and one envelope. Every answer to a HIS uses the shape the existing adapters read:
 * { result, desc, id, errorCode, errorName } — extended with `errors` (each failing field and rule)
 * and `warnings`. The code decides the HTTP status; a database fault (docs/faults.md) is answered 503
 * with Retry-After and its class in `fault`; an unknown error is logged with its call id and
 * answered with a plain 500 (no stack, no message, no patient data).
 */
import type { Context } from 'hono';
import { z } from 'zod';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { log, maskPath } from '../log/index.js';
import { resources } from '../../schemas/index.js';
import { dbFault, RETRY_AFTER_S, type DbFault } from '../db/faults.js';
import { schemaAdvice, schemaSeen } from '../db/schema.js';

export const ErrorCodes = {
  VALIDATION_FAILED: { status: 400, name: '数据校验不通过' },
  BAD_REQUEST: { status: 400, name: '请求格式错误' },
  UNAUTHENTICATED: { status: 401, name: '调用方身份未识别' },
  FORBIDDEN: { status: 403, name: '无权访问该机构数据' },
  NOT_FOUND: { status: 404, name: '记录或接口不存在' },
  METHOD_NOT_ALLOWED: { status: 405, name: '不支持的请求方法' },
  CONFLICT: { status: 409, name: '当前状态下不能进行该操作' },
  PAYLOAD_TOO_LARGE: { status: 413, name: '请求体过大' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, name: '请使用 application/json' },
  RATE_LIMITED: { status: 429, name: '请求过于频繁' },
  INTERNAL: { status: 500, name: '前置软件内部错误' },
  UNAVAILABLE: { status: 503, name: '前置软件数据库暂不可用，请稍后重试' },
} as const satisfies Record<string, { status: ContentfulStatusCode; name: string }>;
export type ErrorCode = keyof typeof ErrorCodes;

export const FieldIssueSchema = z.object({
  field: z.string().describe('The JSON key as the sender spelt it (camelCase) / 字段名'),
  rule: z.string().describe('Rule name, stable for programs: required, maxLength, type, datetime, checksum, domain, … / 规则'),
  message: z.string().describe('Human-readable reason, Chinese first / 原因'),
  value: z.unknown().optional().describe('The offending value, masked when the field holds personal data / 取值（个人信息已脱敏）'),
});
export type FieldIssue = z.infer<typeof FieldIssueSchema>;

export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly desc: string,
    readonly issues: FieldIssue[] = [],
    readonly id: string | null = null,
    /** A database fault: its class, and the Retry-After it is answered with. */
    readonly fault: { kind: DbFault; retryAfterS: number; sqlstate?: string } | null = null,
  ) {
    super(desc);
  }
  get status(): ContentfulStatusCode {
    return ErrorCodes[this.code].status;
  }
}

/** The answer envelope every HIS adapter reads (extra keys per route, e.g. status, version, errors). */
export const AnswerSchema = z
  .object({
    result: z.boolean().describe('true: accepted / 成功'),
    desc: z.string().describe('Description, Chinese first / 说明'),
    id: z.string().nullable().describe('The record id / 记录ID'),
    errorCode: z.enum(Object.keys(ErrorCodes) as [ErrorCode, ...ErrorCode[]]).nullable(),
    errorName: z.string().nullable(),
    errors: z.array(FieldIssueSchema).optional(),
    warnings: z.array(FieldIssueSchema).optional(),
    fault: z
      .enum(['unavailable', 'disk_full', 'out_of_memory', 'too_many_connections', 'insufficient_resources', 'timeout', 'conflict'] satisfies DbFault[])
      .optional()
      .describe('With 503: why the database cannot take the record now (retry after Retry-After seconds) / 数据库故障类别'),
  })
  .catchall(z.unknown());
export type Answer = z.infer<typeof AnswerSchema>;

export function errorAnswer(err: AppError): Answer {
  return {
    result: false,
    desc: err.desc,
    id: err.id,
    errorCode: err.code,
    errorName: ErrorCodes[err.code].name,
    ...(err.issues.length ? { errors: err.issues } : {}),
    // A 503 always names its class; one raised without it (a lost connection) is 'unavailable'.
    ...(err.code === 'UNAVAILABLE' ? { fault: err.fault?.kind ?? 'unavailable' } : {}),
  };
}

const FAULT_DESC: Record<DbFault, string> = {
  unavailable: '数据库暂不可用，请稍后重试 (database unavailable; retry)',
  disk_full: '数据库磁盘已满，记录未保存，请稍后重试 (database disk full; nothing stored; retry)',
  out_of_memory: '数据库内存不足，记录未保存，请稍后重试 (database out of memory; nothing stored; retry)',
  too_many_connections: '数据库连接已满，请稍后重试 (database connections exhausted; retry)',
  insufficient_resources: '数据库资源不足，记录未保存，请稍后重试 (database out of resources; nothing stored; retry)',
  timeout: '数据库处理超时，记录未保存，请稍后重试 (database statement or lock timeout; nothing stored; retry)',
  conflict: '数据库并发冲突，记录未保存，请重试 (database serialization conflict; nothing stored; retry)',
};

/** The 503 answer of a database fault (docs/faults.md), or null when the error is none. */
export function databaseError(err: unknown): AppError | null {
  const kind = dbFault(err);
  const sqlstate = (err as { code?: unknown } | null)?.code;
  return kind
    ? new AppError('UNAVAILABLE', FAULT_DESC[kind], [], null, {
        kind,
        retryAfterS: RETRY_AFTER_S[kind],
        ...(typeof sqlstate === 'string' ? { sqlstate } : {}),
      })
    : null;
}

/** A zod refusal as the 400 answer: each failing field (its JSON path) and rule. */
export function validationError(err: z.ZodError, desc = '请求数据校验不通过 (validation failed)'): AppError {
  return new AppError(
    'VALIDATION_FAILED',
    desc,
    err.issues.map((i) => ({ field: i.path.join('.') || '(body)', rule: i.code, message: i.message })),
  );
}

export function okAnswer(id: string | null, desc: string, extra: Record<string, unknown> = {}): Answer {
  return { result: true, desc, id, errorCode: null, errorName: null, ...extra };
}

/** The one error handler, mounted with app.onError in every function. */
/** Resource names are route words too: a logged path keeps them (shared/log maskPath). */
const RESOURCE_NAMES: ReadonlySet<string> = new Set(Object.keys(resources));

/** A path no route takes, in the envelope every answer on a hospital port has (docs/his-guide.md 应答). */
export const notFoundAnswer = (c: Context): Response => c.json(errorAnswer(new AppError('NOT_FOUND', `接口不存在：${c.req.path}`)), 404);

/** PostgreSQL's and openGauss's SQLSTATEs for text they cannot hold: invalid byte sequence (a NUL), untranslatable character. */
const UNSTORABLE_TEXT: ReadonlySet<string> = new Set(['22021', '22P05']);

/** Text PostgreSQL and openGauss cannot store: a NUL character, or half of a UTF-16 pair without its other half. */
export function unstorableText(s: string): boolean {
  return s.includes('\u0000') || /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
}

/**
 * Why a form body cannot be read, when `err` is the form parser's refusal (Hono's parseBody hands the
 * body to undici's FormData parser, whose refusal is a TypeError with a fixed reason in its cause: a
 * multipart body cut off, without its boundary, a part without a name, …); null for any other error.
 */
export function unreadableForm(err: Error): string | null {
  if (!(err instanceof TypeError) || !err.message.startsWith('Failed to parse body as FormData')) return null;
  const cause = err.cause instanceof Error ? err.cause.message : '';
  return cause.slice(0, 100) || 'not a form body';
}

export function handleError(err: Error, c: Context): Response {
  const o = errorOutcome(err, c);
  // Every 503 says when to come back.
  if (o.retryAfterS !== undefined) c.header('Retry-After', String(o.retryAfterS));
  return c.json(o.answer, o.status);
}

/**
 * What handleError answers for `err` — the status, the envelope and, for a 503, the seconds until a
 * retry — logged as it logs it. Apart for a response already under way (a stream), whose headers are
 * sent: it ends with the answer as its last event.
 */
export function errorOutcome(err: Error, c: Context): { status: ContentfulStatusCode; answer: Answer; retryAfterS?: number } {
  if (err instanceof AppError) {
    // A database fault is the operator's to see, wherever it was turned into its answer (the receive
    // path's guard does so before this handler): logged once, here.
    if (err.fault)
      log('warn', 'database fault', {
        callId: c.req.header('x-call-id'),
        path: maskPath(c.req.path, RESOURCE_NAMES),
        fault: err.fault.kind,
        code: err.fault.sqlstate,
      });
    return {
      status: err.status,
      answer: errorAnswer(err),
      ...(err.status === 503 ? { retryAfterS: err.fault?.retryAfterS ?? RETRY_AFTER_S.unavailable } : {}),
    };
  }
  // A zod refusal that reached here (a route parsing its own request) names every failing field.
  if (err instanceof z.ZodError) return errorOutcome(validationError(err), c);
  // Text the database cannot take (a NUL character) can only have come with the request — a query
  // parameter, a path segment, a key in a body no field rule read — since nothing stored holds one:
  // the sender's to correct (400), never a fault to retry (500).
  if (UNSTORABLE_TEXT.has((err as { code?: string }).code ?? '')) {
    log('warn', 'request holds unstorable text', { callId: c.req.header('x-call-id'), path: maskPath(c.req.path, RESOURCE_NAMES) });
    return errorOutcome(
      new AppError('BAD_REQUEST', '请求中含有无法存储的字符（NUL），请检查地址参数和请求体 (the request holds a NUL character)', [
        { field: '(request)', rule: 'invalidText', message: '含有 NUL 字符 (a NUL character)' },
      ]),
      c,
    );
  }
  // A form body the parser cannot read (a multipart body cut off, or without its boundary) came so
  // from the sender — whoever it is, signed in or not: a 400 naming the problem, as a form with broken
  // %-escapes is (docs/console.md "Changes"), logged as a warning without a stack, never a 500.
  const form = unreadableForm(err);
  if (form !== null) {
    log('warn', 'unreadable form body', { callId: c.req.header('x-call-id'), path: maskPath(c.req.path, RESOURCE_NAMES), reason: form });
    return errorOutcome(
      new AppError('BAD_REQUEST', `表单无法读取，请重新提交 (the form body cannot be parsed: ${form})`, [
        { field: '(body)', rule: 'invalidForm', message: `表单内容不完整或格式错误 (${form})` },
      ]),
      c,
    );
  }
  const fault = databaseError(err);
  if (fault) return errorOutcome(fault, c);
  const code = (err as { code?: string }).code;
  // An undefined column or table on a database whose schema is behind this release: the line says
  // which migrations to apply (shared/db/schema.ts, docs/deploy.md "Upgrade").
  const schema = code === '42703' || code === '42P01' ? schemaSeen() : undefined;
  log('error', 'unhandled error', {
    callId: c.req.header('x-call-id'),
    path: maskPath(c.req.path, RESOURCE_NAMES),
    err: err.message,
    code,
    stack: err.stack?.split('\n').slice(0, 6).join(' | '),
    ...(schema && schema.state !== 'current' ? { schema: schema.state, missing: schema.missing, hint: schemaAdvice(schema) } : {}),
  });
  const internal = new AppError('INTERNAL', '内部错误，已记录；请联系前置软件运维');
  return { status: 500, answer: errorAnswer(internal) };
}
