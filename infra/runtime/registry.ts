/**
 * The deployed functions by name: deploy (or update), remove, describe. Deploying a function whose
 * bundle is missing builds it first with infra/build/build.mjs (opts.build = 'missing', the default),
 * or fails naming the bundle (opts.build = 'never').
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { projectRoot } from '../root.js';
import type { FunctionDeployment } from './api.js';
import type { LogStore } from './logs.js';
import { FunctionService, type ServiceContext } from './service.js';
import type { FunctionSpec } from './stack.js';

/** Variables a deployment may not set: each makes Node (or the loader) run other code. */
const REFUSED_ENV = new Set([
  'NODE_OPTIONS',
  'NODE_PATH',
  'NODE_REPL_EXTERNAL_MODULE',
  'LD_PRELOAD',
  'LD_LIBRARY_PATH',
  'CDC_SECRETS_DIR',
  'HTTP_PORT',
  'HTTP_HOST',
]);

export type BuildPolicy = 'missing' | 'always' | 'never';

export interface RegistryOptions {
  projectDir: string;
  build: BuildPolicy;
  ctx: ServiceContext;
}

type BuildModule = { buildFunction(f: { name: string; handler: string }): Promise<string> };

export class Registry {
  private services = new Map<string, FunctionService>();
  readonly logs: LogStore;
  private buildModule: Promise<BuildModule> | null = null;

  constructor(private readonly opts: RegistryOptions) {
    this.logs = opts.ctx.logs;
  }

  get(name: string): FunctionService | undefined {
    return this.services.get(name);
  }

  list(): FunctionService[] {
    return [...this.services.values()];
  }

  private async ensureBundle(spec: FunctionSpec): Promise<void> {
    const bundle = join(spec.handler, 'dist', 'index.js');
    const policy = this.opts.build;
    if (policy === 'never' || (policy === 'missing' && existsSync(bundle))) return;
    if (!existsSync(join(spec.handler, 'handler.ts'))) return; // checkDeployable names the missing bundle
    // A runtime path, not a static import: infra/build is plain .mjs, outside this module's types.
    const buildFile = pathToFileURL(join(projectRoot, 'infra/build/build.mjs')).href;
    this.buildModule ??= import(buildFile) as Promise<BuildModule>;
    const t0 = Date.now();
    await (await this.buildModule).buildFunction({ name: spec.name, handler: spec.handler });
    this.logs.runtime.info('bundle built', { fn: spec.name, ms: Date.now() - t0 });
  }

  /** Deploys a new function or updates an existing one (rolling replacement of its replicas). */
  async apply(spec: FunctionSpec): Promise<FunctionService> {
    await this.ensureBundle(spec);
    const existing = this.services.get(spec.name);
    if (existing) {
      existing.update(spec);
      this.logs.runtime.info('function updated', { fn: spec.name });
      return existing;
    }
    const svc = new FunctionService(spec, this.opts.ctx);
    this.services.set(spec.name, svc);
    svc.reconcile();
    this.logs.runtime.info('function deployed', { fn: spec.name, replicas: svc.desired, bundle: svc.bundle });
    return svc;
  }

  async remove(name: string): Promise<void> {
    const svc = this.services.get(name);
    if (!svc) return;
    this.services.delete(name);
    await svc.stop();
    this.logs.runtime.info('function removed', { fn: name });
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.list().map((s) => s.stop()));
  }

  /**
   * Images cannot be pulled here: a deployment's bundle is found through the annotation
   * com.cdc-front.handler (a handler folder, relative to the project) or, by default, the handler
   * the function already has (an update) or functions/<service>.
   */
  specFromDeployment(d: FunctionDeployment, existing?: FunctionSpec): FunctionSpec {
    const annotations = d.annotations ?? {};
    const h = annotations['com.cdc-front.handler'];
    const kept = !h && existing ? existing.handler : null; // trusted already: stack.yml's, or checked below before
    const handler = kept ?? (h ? (isAbsolute(h) ? resolve(h) : resolve(this.opts.projectDir, h)) : join(this.opts.projectDir, 'functions', d.service));
    // A deployment through the API runs code the project ships, nothing else (docs/runtime.md
    // "Deployments without images"): a handler folder under <project>/functions, and no variable that
    // makes Node load other code.
    const functionsDir = join(this.opts.projectDir, 'functions') + sep;
    if (!kept && !handler.startsWith(functionsDir)) throw new Error(`handler ${h}: must be a folder under ${functionsDir}`);
    // …unless the function has the same value already (an update that reads the function and writes it back).
    const refused = Object.entries(d.envVars ?? {})
      .filter(([k, v]) => REFUSED_ENV.has(k.toUpperCase()) && existing?.environment[k] !== v)
      .map(([k]) => k);
    if (refused.length) throw new Error(`envVars ${refused.join(', ')}: not accepted through the API (they change what code a replica runs)`);
    return {
      name: d.service,
      image: d.image,
      handler,
      environment: d.envVars ?? {},
      secrets: d.secrets ?? [],
      labels: d.labels ?? {},
      annotations,
      ...(d.limits ? { limits: d.limits } : {}),
      ...(d.requests ? { requests: d.requests } : {}),
    };
  }

  /** FunctionStatus, as GET /system/functions answers it. */
  status(svc: FunctionService): Record<string, unknown> {
    const s = svc.spec;
    return {
      name: s.name,
      image: s.image,
      namespace: 'openfaas-fn',
      envProcess: `node ${svc.bundle}`,
      envVars: s.environment,
      secrets: s.secrets,
      labels: s.labels,
      annotations: s.annotations,
      limits: s.limits ?? null,
      requests: s.requests ?? null,
      invocationCount: svc.invocationCount,
      replicas: svc.desired,
      availableReplicas: svc.ready().length,
      createdAt: svc.createdAt.toISOString(),
      usage: { cpu: 0, totalMemoryBytes: svc.replicas.reduce((n, r) => n + rssBytes(r.pid), 0) },
    };
  }
}

function rssBytes(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const pages = Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]);
    return pages * 4096;
  } catch {
    return 0;
  }
}
