/**
 * The control plane, /system/* (basic auth) and /healthz, as the OpenFaaS gateway answers them to
 * faas-cli: FunctionStatus, FunctionDeployment, scale, info, logs. Bodies are validated with zod.
 */
import { Hono } from 'hono';
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
}

export function systemApi(registry: Registry, creds: () => Credentials, info: ApiInfo): Hono {
  const app = new Hono();

  app.get('/healthz', (c) => c.text('OK'));

  app.use('/system/*', async (c, next) => {
    if (!checkBasicAuth(c.req.header('authorization'), creds())) {
      return c.text('Unauthorized\n', 401, { 'WWW-Authenticate': 'Basic realm="cdc-front-runtime"' });
    }
    await next();
  });

  const badRequest = (err: z.ZodError) => err.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
  const json = async (req: { json(): Promise<unknown> }) => req.json().catch(() => undefined);

  app.get('/system/functions', (c) => c.json(registry.list().map((s) => registry.status(s))));

  app.get('/system/function/:name', (c) => {
    const svc = registry.get(c.req.param('name'));
    return svc ? c.json(registry.status(svc)) : c.text(`function ${c.req.param('name')} not found\n`, 404);
  });

  const deploy = (mode: 'create' | 'update') => async (c: import('hono').Context) => {
    const parsed = functionDeploymentSchema.safeParse(await json(c.req));
    if (!parsed.success) return c.text(badRequest(parsed.error) + '\n', 400);
    const exists = registry.get(parsed.data.service) !== undefined;
    if (mode === 'create' && exists) return c.text(`function ${parsed.data.service} already exists\n`, 409);
    if (mode === 'update' && !exists) return c.text(`function ${parsed.data.service} not found\n`, 404);
    try {
      await registry.apply(registry.specFromDeployment(parsed.data));
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

  app.get('/system/info', (c) =>
    c.json({
      provider: { provider: 'cdc-front-runtime', orchestration: 'process', version: info.version },
      version: { release: info.version, sha: info.sha },
      arch: process.arch === 'x64' ? 'x86_64' : process.arch,
    }),
  );

  app.get('/system/logs', (c) => {
    const name = c.req.query('name') ?? '';
    if (name !== 'runtime' && !registry.get(name)) return c.text(`function ${name} not found\n`, 404);
    const tail = Math.min(100_000, Math.max(1, Number(c.req.query('tail') ?? 100) || 100));
    const lines = registry.logs.tail(name, tail);
    const body =
      c.req.query('format') === 'openfaas'
        ? lines.map((l) => JSON.stringify(toOpenFaasMessage(name, l))).join('\n')
        : lines.join('\n');
    return c.body(body ? body + '\n' : '', 200, { 'content-type': 'application/x-ndjson' });
  });

  return app;
}

/** faas-cli's logs.Message shape, for `faas-cli logs` pointed at this gateway. */
function toOpenFaasMessage(name: string, line: string): Record<string, string> {
  try {
    const o = JSON.parse(line) as Record<string, unknown>;
    return { name, namespace: 'openfaas-fn', instance: String(o.replica ?? ''), timestamp: String(o.ts ?? ''), text: typeof o.msg === 'string' ? o.msg : line };
  } catch {
    return { name, namespace: 'openfaas-fn', instance: '', timestamp: '', text: line };
  }
}
