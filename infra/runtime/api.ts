/**
 * The control plane, /system/* (basic auth) and /healthz, as the OpenFaaS gateway answers them to
 * faas-cli: FunctionStatus, FunctionDeployment, scale, info, logs. Bodies are validated with zod.
 */
import { readdirSync } from 'node:fs';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
import { checkBasicAuth, type Credentials } from './auth.js';
import type { Registry } from './registry.js';

const labelMap = z.record(z.string(), z.string()).nullish();
const resources = z.object({ memory: z.string().optional(), cpu: z.string().optional() }).nullish();

/** faas-cli's FunctionDeployment (the body of POST/PUT /system/functions). */
export const functionDeploymentSchema = z.object({
  service: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'service must be a DNS label'),
  image: z.string().min(1),
  namespace: z.string().optional(),
  envProcess: z.string().optional(),
  envVars: labelMap,
  labels: labelMap,
  annotations: labelMap,
  secrets: z.array(z.string().regex(/^[A-Za-z0-9._-]+$/)).nullish(),
  limits: resources,
  requests: resources,
});
export type FunctionDeployment = z.infer<typeof functionDeploymentSchema>;

export const scaleRequestSchema = z.object({ serviceName: z.string().optional(), replicas: z.number().int().min(0) });
export const deleteRequestSchema = z.object({ functionName: z.string().min(1) });

export interface ApiInfo {
  version: string;
  sha: string;
  /** The zone the cron-connector reads schedules in (OpenFaaS's connector: UTC, and says nothing). */
  cronTimezone?: string;
}

/** The largest /system request body. */
export const API_BODY_BYTES = 1024 * 1024;

export function systemApi(registry: Registry, creds: () => Credentials, info: ApiInfo, secretsDir: () => string): Hono {
  const app = new Hono();
  app.get('/healthz', (c) => c.text('OK'));
  app.use('/system/*', basicAuth(creds));
  // A /system body is a small JSON document: over 1 MiB is refused 413, chunked ones too, as they
  // stream (the gateway refuses a declared length over it before reading; docs/runtime.md "Limits"),
  // and the connection closed: the rest of the body is not read, so it cannot carry another request.
  app.use(
    '/system/*',
    bodyLimit({ maxSize: API_BODY_BYTES, onError: (c) => c.json({ error: `request body larger than ${API_BODY_BYTES} bytes` }, 413, { connection: 'close' }) }),
  );
  functionRoutes(app, registry);
  infoRoutes(app, info);
  secretRoutes(app, secretsDir);
  app.get('/system/logs', (c) => logsAnswer(c, registry));
  return app;
}

/** /system/* answers 401 without the gateway's basic-auth pair. */
function basicAuth(creds: () => Credentials): MiddlewareHandler {
  return async (c, next) => {
    if (!checkBasicAuth(c.req.header('authorization'), creds())) {
      return c.text('Unauthorized\n', 401, { 'WWW-Authenticate': 'Basic realm="cdc-front-runtime"' });
    }
    await next();
  };
}

/** A zod error as the text of a 400 answer. */
const badRequest = (err: z.ZodError) => err.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
/** The request's JSON body; undefined when it is not JSON (the schema then says what is wrong). */
const json = async (req: { json(): Promise<unknown> }) => req.json().catch(() => undefined);

/** The functions: list, status, deploy (create, update), delete, scale. */
function functionRoutes(app: Hono, registry: Registry): void {
  app.get('/system/functions', (c) => c.json(registry.list().map((s) => registry.status(s))));

  app.get('/system/function/:name', (c) => {
    const svc = registry.get(c.req.param('name'));
    return svc ? c.json(registry.status(svc)) : c.text(`function ${c.req.param('name')} not found\n`, 404);
  });

  const deploy = (mode: 'create' | 'update') => async (c: Context) => {
    const parsed = functionDeploymentSchema.safeParse(await json(c.req));
    if (!parsed.success) return c.text(badRequest(parsed.error) + '\n', 400);
    const exists = registry.get(parsed.data.service) !== undefined;
    if (mode === 'create' && exists) return c.text(`function ${parsed.data.service} already exists\n`, 409);
    if (mode === 'update' && !exists) return c.text(`function ${parsed.data.service} not found\n`, 404);
    try {
      await registry.apply(registry.specFromDeployment(parsed.data, registry.get(parsed.data.service)?.spec));
    } catch (err) {
      return c.text(`${(err as Error).message}\n`, 400);
    }
    return c.body(null, 202);
  };
  app.post('/system/functions', deploy('create'));
  app.put('/system/functions', deploy('update'));

  app.delete('/system/functions', async (c) => {
    const parsed = deleteRequestSchema.safeParse(await json(c.req));
    if (!parsed.success) return c.text(badRequest(parsed.error) + '\n', 400);
    if (!registry.get(parsed.data.functionName)) return c.text(`function ${parsed.data.functionName} not found\n`, 404);
    await registry.remove(parsed.data.functionName);
    return c.body(null, 202);
  });

  app.post('/system/scale-function/:name', async (c) => {
    const name = c.req.param('name');
    const svc = registry.get(name);
    if (!svc) return c.text(`function ${name} not found\n`, 404);
    const parsed = scaleRequestSchema.safeParse(await json(c.req));
    if (!parsed.success) return c.text(badRequest(parsed.error) + '\n', 400);
    if (parsed.data.serviceName && parsed.data.serviceName !== name) return c.text('serviceName does not match the path\n', 400);
    // A floor the autoscaler keeps until the next scale by hand (docs/runtime.md, "Replicas and scaling").
    const replicas = svc.scaleByHand(parsed.data.replicas);
    return c.json({ serviceName: name, replicas }, 202);
  });
}

/** The gateway's info and its one namespace. */
function infoRoutes(app: Hono, info: ApiInfo): void {
  app.get('/system/info', (c) =>
    c.json({
      provider: { provider: 'cdc-front-runtime', orchestration: 'process', version: { release: info.version, sha: info.sha } },
      version: { release: info.version, sha: info.sha },
      arch: process.arch === 'x64' ? 'x86_64' : process.arch,
      ...(info.cronTimezone ? { cronTimezone: info.cronTimezone } : {}),
    }),
  );

  // One namespace, as faasd: every function lives in openfaas-fn.
  app.get('/system/namespaces', (c) => c.json([FUNCTION_NAMESPACE]));
}

/** Secret names (faas-cli secret list), never values, and never the gateway's own credentials. */
function secretRoutes(app: Hono, secretsDir: () => string): void {
  app.get('/system/secrets', (c) => {
    const ns = c.req.query('namespace');
    if (ns && ns !== FUNCTION_NAMESPACE) return c.text(`namespace ${ns} not found\n`, 404);
    return c.json(listSecrets(secretsDir()).map((name) => ({ name, namespace: FUNCTION_NAMESPACE })));
  });
  const secretsHint = (c: Context) =>
    c.text(`secrets are files here: put the value in ${secretsDir()}/<name> (mode 0600) and redeploy the functions that list it (docs/runtime.md)\n`, 501);
  app.post('/system/secrets', secretsHint);
  app.put('/system/secrets', secretsHint);
  app.delete('/system/secrets', secretsHint);
}

/** GET /system/logs: a function's (or the runtime's) stored lines, then, with follow, each new one. */
function logsAnswer(c: Context, registry: Registry): Response {
  const parsed = logsQuerySchema.safeParse(c.req.query());
  if (!parsed.success) return c.text(badRequest(parsed.error) + '\n', 400);
  const q = parsed.data;
  if (q.namespace && q.namespace !== FUNCTION_NAMESPACE) return c.text(`namespace ${q.namespace} not found\n`, 404);
  if (q.name !== 'runtime' && !registry.get(q.name)) return c.text(`function ${q.name} not found\n`, 404);
  // faas-cli sends tail=-1 for "all" and nothing for its default; both are capped here.
  const tail = q.tail === undefined ? 100 : q.tail < 0 || q.tail > MAX_LOG_LINES ? MAX_LOG_LINES : Math.max(1, q.tail);
  const keep = logLineFilter(q);
  const past = registry.logs
    .tail(q.name, tail)
    .map(keep)
    .filter((l): l is string => l !== null);
  const headers = { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' };
  if (!q.follow) return c.body(past.length ? past.join('\n') + '\n' : '', 200, headers);
  return new Response(followLogs(registry, q.name, past, keep), { status: 200, headers });
}

/** A stored line as answered (OpenFaaS's message, or the line itself with format=raw); null when the query leaves it out. */
function logLineFilter(q: z.output<typeof logsQuerySchema>): (line: string) => string | null {
  const raw = q.format === 'raw';
  return (line: string): string | null => {
    const m = toOpenFaasMessage(q.name, line);
    if (q.instance && m.instance !== q.instance) return null;
    if (q.since && !(Date.parse(m.timestamp) >= q.since.getTime())) return null;
    return raw ? line : JSON.stringify(m);
  };
}

/**
 * Follow: what there is, then each new line as it comes, until the client goes away (or
 * FOLLOW_MAX_MS, as a gateway's write timeout would end it).
 */
function followLogs(registry: Registry, name: string, past: string[], keep: (line: string) => string | null): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  let stop = () => undefined as undefined;
  return new ReadableStream<Uint8Array>({
    start(ctrl) {
      if (past.length) ctrl.enqueue(enc.encode(past.join('\n') + '\n'));
      const unfollow = registry.logs.follow(name, (line) => {
        const out = keep(line);
        if (out !== null) ctrl.enqueue(enc.encode(out + '\n'));
      });
      const timer = setTimeout(() => stop(), FOLLOW_MAX_MS);
      timer.unref();
      stop = () => {
        clearTimeout(timer);
        unfollow();
        try {
          ctrl.close();
        } catch {
          // already closed
        }
      };
    },
    cancel() {
      stop();
    },
  });
}

export const FUNCTION_NAMESPACE = 'openfaas-fn';
const MAX_LOG_LINES = 100_000;
const FOLLOW_MAX_MS = 10 * 60_000;

/** GET /system/logs as faas-cli sends it (its logs.Request as query values), plus our `format=raw`. */
export const logsQuerySchema = z.object({
  name: z.string().min(1),
  namespace: z.string().optional(),
  instance: z.string().optional(),
  since: z.iso
    .datetime({ offset: true })
    .transform((s) => new Date(s))
    .optional(),
  tail: z.coerce.number().int().optional(),
  follow: z
    .enum(['true', 'false', '1', '0'])
    .transform((v) => v === 'true' || v === '1')
    .optional(),
  format: z.enum(['openfaas', 'raw']).optional(),
});

export interface OpenFaasLogMessage {
  name: string;
  namespace: string;
  instance: string;
  timestamp: string;
  text: string;
}

/**
 * faas-provider's logs.Message for one stored line: the instance is the replica, the timestamp the
 * line's (RFC 3339: Go's time.Time must parse it), the text the line as the function wrote it.
 */
export function toOpenFaasMessage(name: string, line: string): OpenFaasLogMessage {
  try {
    const o = JSON.parse(line) as Record<string, unknown>;
    const { fn: _fn, replica, stream: _stream, ...own } = o;
    const ts = typeof o.ts === 'string' && !Number.isNaN(Date.parse(o.ts)) ? new Date(o.ts).toISOString() : new Date(0).toISOString();
    const text =
      own.source === 'runtime' || Object.keys(own).some((k) => k !== 'ts' && k !== 'level' && k !== 'msg') ? JSON.stringify(own) : String(own.msg ?? '');
    return { name, namespace: FUNCTION_NAMESPACE, instance: String(replica ?? (name === 'runtime' ? 'runtime' : '')), timestamp: ts, text };
  } catch {
    return { name, namespace: FUNCTION_NAMESPACE, instance: '', timestamp: new Date(0).toISOString(), text: line };
  }
}

/** The secret files in the folder, without the gateway's basic-auth pair. */
function listSecrets(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isFile() && /^[A-Za-z0-9._-]+$/.test(e.name) && !e.name.startsWith('basic-auth-'))
      .map((e) => e.name)
      .sort();
  } catch {
    return [];
  }
}
