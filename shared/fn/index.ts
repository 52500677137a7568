/**
 * The function contract. A function folder (`functions/<name>/handler.ts`) exports, as default,
 * the value of `defineFunction`: a Hono app with routes relative to "/" and an optional
 * init/close pair for the resources it owns (pool, timers). The server entry of the OpenFaaS
 * template (infra/openfaas/template/hono/index.ts) serves it; the function never knows whether
 * it runs under OpenFaaS's of-watchdog or under this project's runtime (infra/runtime).
 */
import type { Hono } from 'hono';

export interface FaasFunction {
  /** The Hono app: every route is relative to "/" (the gateway strips /function/<name>). */
  // biome-ignore lint/suspicious/noExplicitAny: any Hono app, whatever its bindings, variables and routes
  app: Hono<any, any, any>;
  /** Opens what the function needs (pools, caches). Called once before the server listens. */
  init?: () => Promise<void>;
  /** Closes what init opened. Called after the server has drained on SIGTERM. */
  close?: () => Promise<void>;
  /** What the function reads from its environment and secret files (shared/config/functions/, one module per function), parsed in init. */
  config?: { variables: string[]; secrets: string[]; optionalSecrets?: string[]; fromSecret: Record<string, string> };
}

export function defineFunction(fn: FaasFunction): FaasFunction {
  return fn;
}
