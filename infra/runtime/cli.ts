/**
 * cdc-faas: faas-cli's operator verbs against this runtime's gateway (or any OpenFaaS gateway).
 *
 *   cdc-faas list
 *   cdc-faas describe <fn>
 *   cdc-faas scale <fn> --replicas N
 *   cdc-faas invoke <fn> [--method POST] [--path /x] [--header 'K: V'] < body
 *   cdc-faas logs <fn> [--tail N]
 *
 * Gateway: --gateway or OPENFAAS_URL (http://127.0.0.1:8080). Credentials: OPENFAAS_USER and
 * OPENFAAS_PASSWORD, else the files basic-auth-user/-password in --secrets (.data/secrets).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { basicAuthHeader } from '../../shared/http/basic.js';
import { readCredentials } from './auth.js';

const USAGE = `usage: cdc-faas <list|describe|scale|invoke|logs> [fn] [options]
  --gateway URL      gateway (env OPENFAAS_URL, default http://127.0.0.1:8080)
  --secrets DIR      folder with basic-auth-user/-password (default .data/secrets)
  --replicas N       scale: replica count
  --method M         invoke: HTTP method (default POST if stdin has data, else GET)
  --path /x          invoke: path inside the function (default /)
  --header 'K: V'    invoke: extra header (repeatable)
  --tail N           logs: last N lines (default 100)
  --json             list/describe: raw JSON`;

export class UsageError extends Error {}

function authHeader(secretsDir: string): Record<string, string> {
  const user = process.env.OPENFAAS_USER;
  const password = process.env.OPENFAAS_PASSWORD;
  if (user && password) return { authorization: basicAuthHeader({ user, password }) };
  if (existsSync(join(secretsDir, 'basic-auth-password'))) return { authorization: basicAuthHeader(readCredentials(secretsDir)) };
  return {};
}

async function readStdin(): Promise<Buffer> {
  if (process.stdin.isTTY) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function check(res: Response, what: string): Promise<Response> {
  if (res.status === 401) throw new Error(`${what}: unauthorized (set OPENFAAS_USER/OPENFAAS_PASSWORD or --secrets)`);
  if (!res.ok) throw new Error(`${what}: ${res.status} ${(await res.text()).trim()}`);
  return res;
}

/**
 * FunctionStatus as an OpenFaaS gateway answers it (GET /system/functions, /system/function/<fn>):
 * the fields the verbs print, checked; the rest passes through for --json.
 */
const FunctionStatus = z.looseObject({
  name: z.string(),
  image: z.string(),
  envProcess: z.string().optional(),
  invocationCount: z.number(),
  replicas: z.number(),
  availableReplicas: z.number(),
  envVars: z.record(z.string(), z.string()).nullish(),
  labels: z.record(z.string(), z.string()).nullish(),
  annotations: z.record(z.string(), z.string()).nullish(),
  createdAt: z.string().optional(),
});
type FunctionStatus = z.infer<typeof FunctionStatus>;

/** The gateway's JSON answer, checked against the schema; a gateway speaking another shape is named as such. */
async function answer<T extends z.ZodType>(res: Response, schema: T, what: string): Promise<z.infer<T>> {
  const parsed = schema.safeParse(await res.json().catch(() => undefined));
  if (!parsed.success) throw new Error(`${what}: the gateway's answer is not an OpenFaaS one (${z.prettifyError(parsed.error).replace(/\n/g, '; ')})`);
  return parsed.data;
}

interface Verb {
  gateway: string;
  auth: Record<string, string>;
  values: { replicas?: string; method?: string; path?: string; header?: string[]; tail?: string; json?: boolean };
  out: (s: string) => void;
  /** The function named on the command line, URL-encoded; a usage error when none is. */
  fn: () => string;
}

export async function run(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      gateway: { type: 'string' },
      secrets: { type: 'string' },
      replicas: { type: 'string' },
      method: { type: 'string' },
      path: { type: 'string' },
      header: { type: 'string', multiple: true },
      tail: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [verb, fn] = positionals;
  if (values.help || !verb) {
    out(USAGE + '\n');
    return verb ? 0 : 2;
  }
  const v: Verb = {
    gateway: (values.gateway ?? process.env.OPENFAAS_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, ''),
    auth: authHeader(values.secrets ?? '.data/secrets'),
    values,
    out,
    fn: () => {
      if (!fn) throw new UsageError(`${verb} needs a function name`);
      return encodeURIComponent(fn);
    },
  };
  switch (verb) {
    case 'list':
    case 'ls':
      return list(v);
    case 'describe':
      return describe(v);
    case 'scale':
      return scale(v, fn);
    case 'invoke':
      return invoke(v);
    case 'logs':
      return logs(v);
    default:
      throw new UsageError(`unknown verb "${verb}"`);
  }
}

async function list(v: Verb): Promise<number> {
  const list = await answer(await check(await fetch(`${v.gateway}/system/functions`, { headers: v.auth }), 'list'), z.array(FunctionStatus), 'list');
  if (v.values.json) {
    v.out(JSON.stringify(list, null, 2) + '\n');
    return 0;
  }
  const rows = [
    ['Function', 'Invocations', 'Replicas', 'Image'],
    ...list.map((f) => [f.name, String(f.invocationCount), `${f.availableReplicas}/${f.replicas}`, f.image]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows)
    v.out(
      r
        .map((c, i) => c.padEnd(widths[i]! + 2))
        .join('')
        .trimEnd() + '\n',
    );
  return 0;
}

async function describe(v: Verb): Promise<number> {
  const f: FunctionStatus = await answer(
    await check(await fetch(`${v.gateway}/system/function/${v.fn()}`, { headers: v.auth }), 'describe'),
    FunctionStatus,
    'describe',
  );
  if (v.values.json) {
    v.out(JSON.stringify(f, null, 2) + '\n');
    return 0;
  }
  const kv = (m: Record<string, string> | null | undefined) =>
    Object.entries(m ?? {})
      .map(([k, val]) => `\n  ${k}: ${val}`)
      .join('') || ' -';
  v.out(
    `Name:               ${f.name}\nStatus:             ${f.availableReplicas > 0 ? 'Ready' : 'Not Ready'}\nReplicas:           ${f.replicas}\n` +
      `Available Replicas: ${f.availableReplicas}\nInvocations:        ${f.invocationCount}\nImage:              ${f.image}\n` +
      `Function Process:   ${f.envProcess ?? ''}\nURL:                ${v.gateway}/function/${f.name}\n` +
      `Created:            ${f.createdAt ?? ''}\nLabels:${kv(f.labels)}\nAnnotations:${kv(f.annotations)}\nEnvironment:${kv(f.envVars)}\n`,
  );
  return 0;
}

async function scale(v: Verb, name: string | undefined): Promise<number> {
  const replicas = Number(v.values.replicas);
  if (!Number.isInteger(replicas) || replicas < 0) throw new UsageError('scale needs --replicas N');
  const res = await check(
    await fetch(`${v.gateway}/system/scale-function/${v.fn()}`, {
      method: 'POST',
      headers: { ...v.auth, 'content-type': 'application/json' },
      body: JSON.stringify({ serviceName: name, replicas }),
    }),
    'scale',
  );
  // OpenFaaS answers 202 with an empty body; this runtime answers the replicas it set.
  const body = z.object({ replicas: z.number() }).safeParse(await res.json().catch(() => undefined));
  v.out(`Function ${name} scaled to ${body.success ? body.data.replicas : replicas} replica(s)\n`);
  return 0;
}

async function invoke(v: Verb): Promise<number> {
  const body = await readStdin();
  const method = (v.values.method ?? (body.length > 0 ? 'POST' : 'GET')).toUpperCase();
  const path = v.values.path ?? '/';
  // The gateway credentials go along: push's and day-close's operator routes take them (docs/his-auth.md).
  const headers: Record<string, string> = { ...v.auth };
  for (const h of v.values.header ?? []) {
    const i = h.indexOf(':');
    if (i > 0) headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
  }
  const res = await fetch(`${v.gateway}/function/${v.fn()}${path.startsWith('/') ? path : '/' + path}`, {
    method,
    headers,
    ...(body.length > 0 && method !== 'GET' && method !== 'HEAD' ? { body: new Uint8Array(body) } : {}),
  });
  v.out(Buffer.from(await res.arrayBuffer()).toString('utf8'));
  if (!res.ok) {
    process.stderr.write(`cdc-faas: ${res.status} ${res.statusText} (X-Call-Id ${res.headers.get('x-call-id') ?? '-'})\n`);
    return 1;
  }
  return 0;
}

async function logs(v: Verb): Promise<number> {
  const tail = v.values.tail ?? '100';
  const res = await check(await fetch(`${v.gateway}/system/logs?name=${v.fn()}&format=raw&tail=${encodeURIComponent(tail)}`, { headers: v.auth }), 'logs');
  v.out(await res.text());
  return 0;
}

const isMain = process.argv[1] && /cli\.(ts|js)$/.test(process.argv[1]);
if (isMain) {
  run(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`cdc-faas: ${(err as Error).message}\n`);
      if (err instanceof UsageError) process.stderr.write(USAGE + '\n');
      process.exit(err instanceof UsageError ? 2 : 1);
    },
  );
}
