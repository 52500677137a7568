/**
 * Configuration of a function process (docs/configuration.md). One zod schema per concern (the
 * front itself, the database, code mappings, ingest, HIS authentication, operator credentials,
 * uplink, alerts, day-close), each keyed by the environment variable names it reads; a function
 * composes the concerns it needs into one schema (shared/config/functions/, one module per function), parses it once at
 * start and passes the result down. A bad value fails the start, naming the variable.
 *
 * Secrets come from files: `$CDC_SECRETS_DIR/<name>` (this project's runtime) or
 * `/var/openfaas/secrets/<name>` (OpenFaaS) — the same file-path contract under both runtimes.
 * test/unit/config-stack.test.ts checks that stack.yml gives every function each variable and
 * secret its composed schema reads.
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

export type SecretReader = (name: string) => string | undefined;
type Env = Record<string, string | undefined>;

/** One concern's settings: the variables it reads (by name), the secret files it needs, and what the code gets. */
export interface Concern<S extends z.ZodRawShape, T> {
  name: string;
  /** Environment variables by name, each with its zod schema. An empty string counts as unset. */
  vars: S;
  /** Secret files the function must be given (stack.yml `secrets`). */
  secrets?: readonly string[];
  /**
   * Secret files read when they exist (names or `prefix*`): stack.yml names them in the function's
   * annotation com.cdc-front.optional-secrets, or lists them under `secrets` (docs/configuration.md).
   */
  optionalSecrets?: readonly string[];
  /** Variables that may instead come from a listed secret file (DATABASE_URL ↔ cdc-database-url). */
  fromSecret?: Readonly<Record<string, string>>;
  /** From the parsed variables (and secret files) to the settings; throws naming what is wrong. */
  build(v: z.output<z.ZodObject<S>>, secret: SecretReader, env: Env): T;
}

export function concern<S extends z.ZodRawShape, T>(c: Concern<S, T>): Concern<S, T> {
  return c;
}

// biome-ignore lint/suspicious/noExplicitAny: any concern, whatever its variables and settings (the composed type is inferred)
type AnyConcern = Concern<any, any>;
export type Settings<C extends Record<string, AnyConcern>> = { [K in keyof C]: ReturnType<C[K]['build']> };

export interface ConfigSpec<C extends Record<string, AnyConcern>> {
  /** Every environment variable the composed schema reads. */
  variables: string[];
  /** Secret files that must be present. */
  secrets: string[];
  /** Secret files read when present (names or `prefix*`). */
  optionalSecrets: string[];
  /** Variables satisfied by a secret file instead. */
  fromSecret: Record<string, string>;
  /** Parses the environment once; throws `configuration invalid: VAR: reason; …`. */
  parse(env?: Env, secret?: SecretReader): Settings<C>;
}

function issuesText(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(environment)'}: ${i.message}`).join('; ');
}

/** One zod schema from the concerns' variables; parse builds every concern's settings. */
export function composeConfig<C extends Record<string, AnyConcern>>(concerns: C): ConfigSpec<C> {
  const shape: z.ZodRawShape = {};
  const secrets = new Set<string>();
  const optional = new Set<string>();
  const fromSecret: Record<string, string> = {};
  for (const c of Object.values(concerns)) {
    Object.assign(shape, c.vars);
    for (const s of c.secrets ?? []) secrets.add(s);
    for (const s of c.optionalSecrets ?? []) optional.add(s);
    Object.assign(fromSecret, c.fromSecret ?? {});
  }
  const schema = z.object(shape);
  return {
    variables: Object.keys(shape).sort(),
    secrets: [...secrets].sort(),
    optionalSecrets: [...optional].sort(),
    fromSecret,
    parse(env: Env = process.env, secret: SecretReader = readSecret): Settings<C> {
      const input = Object.fromEntries(Object.keys(shape).map((k) => [k, env[k] === '' ? undefined : env[k]]));
      const parsed = schema.safeParse(input);
      if (!parsed.success) throw new Error(`configuration invalid: ${issuesText(parsed.error)}`);
      const out: Record<string, unknown> = {};
      for (const [k, c] of Object.entries(concerns)) {
        try {
          out[k] = c.build(parsed.data, secret, env);
        } catch (err) {
          throw new Error(`${c.name} configuration invalid: ${(err as Error).message}`);
        }
      }
      return out as Settings<C>;
    },
  };
}

/** One concern alone (its own tests, and the modules' former entry points). */
export function parseConcern<S extends z.ZodRawShape, T>(c: Concern<S, T>, env: Env = process.env, secret: SecretReader = readSecret): T {
  return composeConfig({ c }).parse(env, secret).c;
}

/** A comma/space separated list; empty when unset. */
export const listVar = z
  .string()
  .optional()
  .transform((s) => (s ?? '').split(/[\s,]+/).filter(Boolean));

/** 1/true/yes or 0/false/no; unset = false. */
export const flagVar = z
  .string()
  .optional()
  .transform((s, ctx) => {
    const v = (s ?? '').trim().toLowerCase();
    if (['1', 'true', 'yes'].includes(v)) return true;
    if (['', '0', 'false', 'no'].includes(v)) return false;
    ctx.addIssue({ code: 'custom', message: 'expected 1/true/yes or 0/false/no' });
    return z.NEVER;
  });

// ---- the concerns every function shares ----------------------------------------------------------

/**
 * The front itself. CDC_ENV=production marks a production install: the development fallbacks
 * (HIS_ALLOW's loopback caller) are refused at start (docs/his-auth.md).
 */
export const frontConcern = concern({
  name: 'front',
  vars: {
    CDC_ENV: z.enum(['development', 'production']).default('development'),
    TZ_LOCAL: z.string().min(1).default('Asia/Shanghai'),
    LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  },
  build: (v) => ({ production: v.CDC_ENV === 'production', timeZone: v.TZ_LOCAL, logLevel: v.LOG_LEVEL }),
});

/**
 * The database: its URL, and the session limits set on every connection (docs/faults.md): a
 * statement running longer than DB_STATEMENT_TIMEOUT_MS is cancelled (answered 503), a session idle
 * inside a transaction for DB_IDLE_TX_TIMEOUT_MS is ended, releasing its locks. 0 switches one off.
 */
export const databaseConcern = concern({
  name: 'database',
  vars: {
    DATABASE_URL: z.string().min(1).optional(),
    DB_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(0).default(20_000),
    DB_IDLE_TX_TIMEOUT_MS: z.coerce.number().int().min(0).default(60_000),
  },
  secrets: ['cdc-database-url'],
  fromSecret: { DATABASE_URL: 'cdc-database-url' },
  build: (v, secret) => {
    const url = v.DATABASE_URL ?? secret('cdc-database-url');
    if (!url) throw new Error('DATABASE_URL or the secret file cdc-database-url is required');
    return { url, limits: { statementTimeoutMs: v.DB_STATEMENT_TIMEOUT_MS, idleInTxTimeoutMs: v.DB_IDLE_TX_TIMEOUT_MS } };
  },
});

/** What every function reads: the front's own settings and its database (shared/config/functions/). */
export const baseConcerns = { front: frontConcern, database: databaseConcern };

/** How often the code-mapping cache polls for a changed mapping (ms). */
export const codesConcern = concern({
  name: 'codes',
  vars: { CODE_REFRESH_MS: z.coerce.number().int().positive().default(5000) },
  build: (v) => ({ refreshMs: v.CODE_REFRESH_MS }),
});

/** The receive functions' own settings (shared/ingest/receiver.ts). */
export const ingestConcern = concern({
  name: 'ingest',
  vars: {
    MAX_BATCH: z.coerce.number().int().positive().max(100_000).default(500),
    MAX_BODY_BYTES: z.coerce
      .number()
      .int()
      .positive()
      .default(8 * 1024 * 1024),
    DB_POOL_MAX: z.coerce.number().int().positive().default(10),
    /** Organisations whose records are test data: processed, never forwarded to a live platform. */
    TEST_ORG_CODES: listVar,
    /** Where a receive function nudges the push function after commit (async, debounced). */
    PUSH_NUDGE_URL: z.url({ protocol: /^https?$/ }).optional(),
    /** Where it nudges the warning function, so a suspected case is prompted in about a second (docs/warning.md). */
    WARNING_NUDGE_URL: z.url({ protocol: /^https?$/ }).optional(),
    /**
     * The installation's own organisation (a single-hospital front is activated for one org code):
     * the org of a record that names none and whose parent and caller do not decide it.
     */
    FRONT_ORG_CODE: z
      .string()
      .trim()
      .regex(/^[A-Za-z0-9]{1,50}$/, 'an org code: 1–50 letters and digits')
      .optional(),
    /** Group commit of concurrent single-record calls (docs/ingest.md): most records in one group. */
    GROUP_COMMIT_MAX: z.coerce.number().int().min(1).max(1000).default(64),
    /** Extra wait before a group that found its resource idle is written (ms; 0: none). */
    GROUP_COMMIT_WAIT_MS: z.coerce.number().int().min(0).max(50).default(0),
    /** Groups of one resource written at once per replica, each its own transaction and connection. */
    GROUP_COMMIT_PARALLEL: z.coerce.number().int().min(1).max(32).default(2),
  },
  build: (v) => ({
    maxBatch: v.MAX_BATCH,
    maxBodyBytes: v.MAX_BODY_BYTES,
    dbPoolMax: v.DB_POOL_MAX,
    testOrgs: new Set(v.TEST_ORG_CODES) as ReadonlySet<string>,
    pushNudgeUrl: v.PUSH_NUDGE_URL,
    warningNudgeUrl: v.WARNING_NUDGE_URL,
    frontOrgCode: v.FRONT_ORG_CODE || null,
    groupCommit: { maxGroup: v.GROUP_COMMIT_MAX, waitMs: v.GROUP_COMMIT_WAIT_MS, parallel: v.GROUP_COMMIT_PARALLEL },
  }),
});

/**
 * Operator credentials for the operator routes of push and day-close (/dead, /replay, /circuits,
 * /lag, /run, /days): the gateway's basic-auth secret files, so operators use the credentials
 * they already have for /system/* (docs/his-auth.md, "Operator routes").
 */
export const operatorConcern = concern({
  name: 'operator',
  vars: {},
  secrets: ['basic-auth-user', 'basic-auth-password'],
  // Missing files close the operator routes (401) rather than stop the function: delivery goes on.
  build: (_v, secret): { user: string; password: string } | null => {
    const user = secret('basic-auth-user')?.trim();
    const password = secret('basic-auth-password')?.trim();
    return user && password ? { user, password } : null;
  },
});

// ---- the front's base settings (the commands in infra/ that open the database) ------------------

const baseSpec = composeConfig({ front: frontConcern, database: databaseConcern, codes: codesConcern });

function baseOf(env: Env) {
  const s = baseSpec.parse(env);
  return { databaseUrl: s.database.url, timeZone: s.front.timeZone, logLevel: s.front.logLevel, codeRefreshMs: s.codes.refreshMs };
}
export type Config = ReturnType<typeof baseOf>;

let cached: Config | undefined;

/** The base settings (database, zone, log level, code refresh), parsed once per process. */
export function loadConfig(env: Env = process.env): Config {
  if (cached && env === process.env) return cached;
  const c = baseOf(env);
  if (env === process.env) cached = c;
  return c;
}
