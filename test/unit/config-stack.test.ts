// Configuration reaches the functions: every variable and secret a function's composed schema reads
// (shared/config/functions.ts, declared on the handler as `config`) is given to it by stack.yml;
// stack.yml gives nothing a function does not read; nothing in shared/ or functions/ reads
// process.env on its own; and stack.yml's resource routing is the one schemas/ states.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadStack, type FunctionSpec } from '../../infra/runtime/stack.js';
import { resources, resourcesOf } from '../../schemas/index.js';
import type { FaasFunction } from '../../shared/fn/index.js';

const root = resolve('.');
// No ${VAR} set: the defaults of stack.yml, as `faas-cli up` and `make up` see them.
const stack = loadStack(join(root, 'stack.yml'), {});

async function handlerOf(f: FunctionSpec): Promise<FaasFunction> {
  return ((await import(join(f.handler, 'handler.ts'))) as { default: FaasFunction }).default;
}

/**
 * Watchdog settings (exec_timeout, max_inflight, …) are lower case; the functions' own are upper case,
 * but for NODE_OPTIONS, which Node.js itself reads (infra/env/common.yml).
 */
const NODE_READS = new Set(['NODE_OPTIONS']);
const functionVars = (f: FunctionSpec) => Object.keys(f.environment).filter((k) => k === k.toUpperCase() && !NODE_READS.has(k));

describe('stack.yml gives each function what its configuration reads', () => {
  it('declares a configuration on every function', async () => {
    const missing: string[] = [];
    for (const f of stack.functions) if (!(await handlerOf(f)).config) missing.push(f.name);
    expect(missing).toEqual([]);
  });

  it.each(stack.functions.map((f) => [f.name, f] as const))('%s: every variable and secret it reads is set, nothing else', async (_name, f) => {
    const cfg = (await handlerOf(f)).config!;
    const given = new Set(Object.keys(f.environment));
    const notGiven = cfg.variables.filter((v) => !given.has(v) && !(cfg.fromSecret[v] && f.secrets.includes(cfg.fromSecret[v]!)));
    expect(notGiven, `variables ${f.name} reads that stack.yml does not set for it`).toEqual([]);
    expect(
      cfg.secrets.filter((s) => !f.secrets.includes(s)),
      `secrets ${f.name} needs that stack.yml does not list`,
    ).toEqual([]);
    expect(
      functionVars(f).filter((v) => !cfg.variables.includes(v)),
      `variables stack.yml sets for ${f.name} that it never reads`,
    ).toEqual([]);
  });

  it.each(stack.functions.map((f) => [f.name, f] as const))(
    '%s: every secret it reads when present is listed or in its optional-secrets annotation',
    async (_, f) => {
      const cfg = (await handlerOf(f)).config!;
      const annotated = (f.annotations['com.cdc-front.optional-secrets'] ?? '').split(/[\s,]+/).filter(Boolean);
      const missing = (cfg.optionalSecrets ?? []).filter((s) => !f.secrets.includes(s) && !annotated.includes(s));
      expect(missing, `secrets ${f.name} reads when present, that the runtime would not show it (docs/runtime.md "Secrets")`).toEqual([]);
      // And nothing annotated that it never reads: the annotation is the function's whole reach.
      expect(
        annotated.filter((s) => !(cfg.optionalSecrets ?? []).includes(s)),
        `optional secrets ${f.name} is given but never reads`,
      ).toEqual([]);
    },
  );

  it('gives TEST_ORG_CODES to every function that stores or closes records', async () => {
    for (const f of stack.functions) {
      const cfg = (await handlerOf(f)).config!;
      if (cfg.variables.includes('TEST_ORG_CODES')) expect(Object.keys(f.environment), f.name).toContain('TEST_ORG_CODES');
    }
    const readers = [];
    for (const f of stack.functions) if ((await handlerOf(f)).config!.variables.includes('TEST_ORG_CODES')) readers.push(f.name);
    // web stores the cards doctors submit in the front's own form (docs/card-form.md); dbsync stores
    // the staging tables' rows (docs/dbsync.md).
    expect(readers.sort()).toEqual(['card', 'day-close', 'dbsync', 'death', 'diagnosis', 'exam', 'lab', 'order', 'patient', 'record', 'web']);
  });

  it('leaves the development fallback off by default', () => {
    for (const f of stack.functions) {
      if ('HIS_ALLOW' in f.environment) expect(f.environment.HIS_ALLOW ?? '', f.name).toBe('');
    }
  });

  it('parses the stack.yml defaults of every function', async () => {
    for (const f of stack.functions) {
      const cfg = (await handlerOf(f)).config as { parse?: (env: Record<string, string>, secret: (n: string) => string | undefined) => unknown };
      // Given the secret files it lists (the database URL, and keys such as his-sso-key), nothing else.
      // The field key file is JSON (shared/pii FieldKeyFile).
      const fieldKeys = JSON.stringify({ current: 'k1', keys: [{ id: 'k1', key: Buffer.alloc(16, 7).toString('base64') }] });
      const secret = (n: string) =>
        n === 'cdc-database-url'
          ? 'postgresql://x@127.0.0.1/db'
          : n === 'pii-field-keys' && f.secrets.includes(n)
            ? fieldKeys
            : f.secrets.includes(n)
              ? 'k'.repeat(43)
              : undefined;
      expect(() => cfg.parse!(f.environment, secret), f.name).not.toThrow();
    }
  });
});

describe('no module reads the environment on its own', () => {
  // Each entry: a file allowed to read process.env, and why.
  const allowed: Record<string, string> = {
    'shared/config/index.ts': 'the parser itself, and CDC_SECRETS_DIR (set by the runtime, not a setting)',
    'shared/log/index.ts': 'LOG_LEVEL at import (frontConcern checks it; infra/env/common.yml sets it)',
    'shared/db/index.ts': 'FUNCTION_NAME, only the connection label',
    'shared/backup/tools.ts': 'PATH, handed on to the database tools it spawns (pg_dump and kin), not a setting',
    'schemas/fields.ts': 'TZ_LOCAL (frontConcern checks it; infra/env/common.yml sets it)',
  };
  const files = (dir: string): string[] =>
    readdirSync(dir).flatMap((n) => {
      const p = join(dir, n);
      if (n === 'node_modules' || n === 'dist') return [];
      return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
    });

  it('reads process.env.X only in shared/config (and the listed exceptions)', () => {
    const offenders: string[] = [];
    for (const p of [...files(join(root, 'shared')), ...files(join(root, 'functions')), ...files(join(root, 'schemas'))]) {
      const rel = relative(root, p);
      if (rel in allowed) continue;
      readFileSync(p, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          // Passing process.env whole as a default argument to a parser is fine; reading a variable is not.
          if (/process\.env\s*(\.|\[)/.test(line)) offenders.push(`${rel}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(offenders).toEqual([]);
  });
});

describe('resource routing is stated once', () => {
  const served = stack.functions.flatMap((f) =>
    (f.annotations['com.cdc-front.resources'] ?? '')
      .split(/[\s,]+/)
      .filter(Boolean)
      .map((r) => ({ fn: f.name, resource: r })),
  );

  it('serves every resource of schemas/ by exactly one function, and nothing else', () => {
    const byResource = new Map<string, string[]>();
    for (const s of served) byResource.set(s.resource, [...(byResource.get(s.resource) ?? []), s.fn]);
    for (const name of Object.keys(resources)) expect(byResource.get(name), name).toHaveLength(1);
    expect([...byResource.keys()].filter((r) => !(r in resources))).toEqual([]);
  });

  it('routes each resource to the function schemas/ assigns it to', () => {
    for (const { fn, resource } of served) expect(resources[resource]!.fn, resource).toBe(fn);
    for (const f of stack.functions) {
      const annotated = (f.annotations['com.cdc-front.resources'] ?? '')
        .split(/[\s,]+/)
        .filter(Boolean)
        .sort();
      expect(annotated, f.name).toEqual(
        resourcesOf(f.name)
          .map((r) => r.name)
          .sort(),
      );
    }
  });
});
