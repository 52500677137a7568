/**
 * Configuration of a function process, parsed once with zod at the edge; fails fast naming what
 * is missing. Secrets come from files: `$CDC_SECRETS_DIR/<name>` (this project's runtime) or
 * `/var/openfaas/secrets/<name>` (OpenFaaS) — the same file-path contract under both runtimes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';

export function secretsDir(): string {
  return process.env.CDC_SECRETS_DIR || '/var/openfaas/secrets';
}

/** Reads a secret file; undefined when absent. Trailing newlines are trimmed. */
export function readSecret(name: string): string | undefined {
  try {
    return readFileSync(join(secretsDir(), name), 'utf8').replace(/\r?\n$/, '');
  } catch {
    return undefined;
  }
}

const ConfigSchema = z.object({
  databaseUrl: z.string().min(1, 'DATABASE_URL or the secret file cdc-database-url is required'),
  timeZone: z.string().default('Asia/Shanghai'),
  logLevel: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  /** Where a receive function nudges the push function after commit (async, debounced). */
  pushNudgeUrl: z.string().optional(),
  dbPoolMax: z.coerce.number().int().positive().default(10),
  /** How often the code-mapping cache polls for a changed mapping (ms). */
  codeRefreshMs: z.coerce.number().int().positive().default(5000),
});
export type Config = z.infer<typeof ConfigSchema>;

let cached: Config | undefined;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  if (cached && env === process.env) return cached;
  const parsed = ConfigSchema.safeParse({
    databaseUrl: env.DATABASE_URL || readSecret('cdc-database-url'),
    timeZone: env.TZ_LOCAL || undefined,
    logLevel: env.LOG_LEVEL || undefined,
    pushNudgeUrl: env.PUSH_NUDGE_URL || undefined,
    dbPoolMax: env.DB_POOL_MAX || undefined,
    codeRefreshMs: env.CODE_REFRESH_MS || undefined,
  });
  if (!parsed.success) {
    const what = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`configuration invalid: ${what}`);
  }
  if (env === process.env) cached = parsed.data;
  return parsed.data;
}
