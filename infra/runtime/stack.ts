/**
 * stack.yml (faas-cli stack file, version 1.0): read, substituted and validated once, failing fast
 * with the name of what is wrong. `${VAR}` and `${VAR:-default}` are substituted over the raw text
 * before the YAML parse, as faas-cli does; `environment_file` entries are YAML files with a top-level
 * `environment:` map, relative to the stack file, and they win over the inline `environment`.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';

const scalar = z.union([z.string(), z.number(), z.boolean()]).transform((v) => String(v));
/** A map value left empty by substitution (`KEY: ${UNSET}`) parses as null: it means "". */
const mapValue = z.union([z.string(), z.number(), z.boolean(), z.null()]).transform((v) => (v === null ? '' : String(v)));
const stringMap = z
  .record(z.string(), mapValue)
  .nullish()
  .transform((m) => m ?? {});
const resources = z
  .object({ memory: scalar.optional(), cpu: scalar.optional() })
  .nullish()
  .transform((r) => r ?? undefined);

export const stackFunctionSchema = z.object({
  lang: z.string().optional(),
  handler: z.string().min(1),
  image: z.string().optional(),
  fprocess: z.string().optional(),
  environment: stringMap,
  environment_file: z
    .array(z.string())
    .nullish()
    .transform((l) => l ?? []),
  secrets: z
    .array(z.string().regex(/^[A-Za-z0-9._-]+$/, 'secret names are plain file names'))
    .nullish()
    .transform((l) => l ?? []),
  labels: stringMap,
  annotations: stringMap,
  limits: resources,
  requests: resources,
});

export const stackSchema = z.object({
  version: scalar.optional(),
  provider: z.object({ name: z.string(), gateway: z.string().optional() }).optional(),
  configuration: z.unknown().optional(),
  functions: z.record(z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'function names are DNS labels'), stackFunctionSchema),
});

export const environmentFileSchema = z.object({ environment: stringMap });

export type StackFunction = z.infer<typeof stackFunctionSchema>;
export type Stack = z.infer<typeof stackSchema>;

/** A function as the runtime deploys it: the stack entry with environment files merged and paths absolute. */
export interface FunctionSpec {
  name: string;
  image: string;
  /** Absolute handler folder; the bundle is `<handler>/dist/index.js`. */
  handler: string;
  environment: Record<string, string>;
  secrets: string[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  limits?: { memory?: string; cpu?: string };
  requests?: { memory?: string; cpu?: string };
}

/** `${VAR}` and `${VAR:-default}` over raw text; an unset `${VAR}` becomes "" as in faas-cli (envsubst). */
export function substitute(text: string, vars: Record<string, string | undefined>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_m, name: string, def: string | undefined) => {
    const v = vars[name];
    if (v !== undefined && v !== '') return v;
    return def ?? '';
  });
}

function formatIssues(err: z.ZodError): string {
  return err.issues
    .map((i) => {
      // An invalid record key carries the key schema's own message inside.
      const inner = 'issues' in i && Array.isArray(i.issues) ? (i.issues as Array<{ message: string }>).map((x) => x.message) : [];
      return `${i.path.join('.') || '(root)'}: ${[i.message, ...inner].join(': ')}`;
    })
    .join('; ');
}

export interface LoadedStack {
  file: string;
  dir: string;
  functions: FunctionSpec[];
}

export function loadStack(stackFile: string, vars: Record<string, string | undefined>): LoadedStack {
  const file = resolve(stackFile);
  const dir = dirname(file);
  let raw: string;
  try {
    raw = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`stack file ${file} cannot be read: ${(err as Error).message}`);
  }
  const parsed = stackSchema.safeParse(YAML.parse(substitute(raw, vars)));
  if (!parsed.success) throw new Error(`stack file ${file} is invalid: ${formatIssues(parsed.error)}`);
  const functions = Object.entries(parsed.data.functions).map(([name, f]) => toSpec(name, f, dir));
  return { file, dir, functions };
}

export function toSpec(name: string, f: StackFunction, dir: string): FunctionSpec {
  const environment: Record<string, string> = { ...f.environment };
  for (const envFile of f.environment_file) {
    const path = resolve(dir, envFile);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new Error(`function ${name}: environment_file ${path} cannot be read: ${(err as Error).message}`);
    }
    // Not substituted: faas-cli substitutes ${VAR} in the stack file only.
    const ef = environmentFileSchema.safeParse(YAML.parse(text) ?? {});
    if (!ef.success) throw new Error(`function ${name}: environment_file ${path} is invalid: ${formatIssues(ef.error)}`);
    Object.assign(environment, ef.data.environment);
  }
  return {
    name,
    image: f.image ?? `${name}:latest`,
    handler: resolve(dir, f.handler),
    environment,
    secrets: f.secrets,
    labels: f.labels,
    annotations: f.annotations,
    ...(f.limits ? { limits: f.limits } : {}),
    ...(f.requests ? { requests: f.requests } : {}),
  };
}
