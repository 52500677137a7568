/**
 * Hospital-facing ports. Each function says which port it is served on (annotation
 * com.cdc-front.port); on the data port (8881, HIS → front) the receive functions also answer
 * /hclient/emr/receive/<resource>[/...] for the resources they own (com.cdc-front.resources), and a
 * function annotated com.cdc-front.root: "true" receives every other path unchanged (config, monitor
 * and web get the whole path).
 */
import { hisAnswer, malformedPath } from './proxy.js';
import type { FunctionService } from './service.js';
import type { FunctionSpec } from './stack.js';

export interface HospitalPortSpec {
  /** Key in the handle's portUrls. */
  key: string;
  port: number;
  /** Named in errors: "port 8881 (data API, HIS → front) is already in use". */
  role: string;
  /** Named by the 503 answered while no function serves the port yet. */
  expects: string;
}

/** The four hospital ports, numbers from the environment (the same variables stack.yml substitutes). */
export function defaultHospitalPorts(env: Record<string, string | undefined>): HospitalPortSpec[] {
  const n = (k: string, d: number) => {
    const v = env[k];
    if (v === undefined || v === '') return d;
    const p = Number(v);
    if (!Number.isInteger(p) || p < 0 || p > 65535) throw new Error(`${k}="${v}" is not a port number`);
    return p;
  };
  return [
    { key: 'data', port: n('DATA_PORT', 8881), role: 'data API, HIS → front', expects: 'a receive function (annotation com.cdc-front.resources)' },
    { key: 'config', port: n('CONFIG_PORT', 8882), role: 'config', expects: 'function config' },
    { key: 'monitor', port: n('MONITOR_PORT', 8883), role: 'monitor', expects: 'function monitor' },
    { key: 'web', port: n('WEB_PORT', 8884), role: 'web', expects: 'function web' },
  ];
}

export function functionPort(svc: FunctionService): number | undefined {
  return portOf(svc.spec.annotations['com.cdc-front.port']);
}

function portOf(v: string | undefined): number | undefined {
  if (v === undefined || v.trim() === '') return undefined;
  const p = Number(v);
  return Number.isInteger(p) && p > 0 ? p : undefined;
}

export function resourcesOf(svc: FunctionService): string[] {
  return (svc.spec.annotations['com.cdc-front.resources'] ?? '').split(/[\s,]+/).filter(Boolean);
}

/** A percent-encoded path segment decoded; null when an escape is malformed (`%`, `%zz`, bad UTF-8). */
export function decodePathSegment(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

/** A function and the path it sees, or the runtime's refusal: `reason` is what `detail`'s HIS answer says in its `desc`. */
export type Route =
  | { svc: FunctionService; path: string }
  | { status: number; error: string; reason: string; retryAfterS?: number; detail: Record<string, unknown> };

/**
 * What stack.yml declares for the hospital ports, deployed or not: function → its port, and
 * resource → the function serving it. While the runtime starts or a function is redeployed, a
 * declared resource or function that is not running yet is answered 503 with Retry-After (retry),
 * never 404 (final for an adapter: the record would be dropped).
 */
export interface Declared {
  functions: Map<string, number | undefined>;
  resources: Map<string, string>;
}

export function declaredOf(specs: FunctionSpec[]): Declared {
  const functions = new Map<string, number | undefined>();
  const resources = new Map<string, string>();
  for (const f of specs) {
    functions.set(f.name, portOf(f.annotations['com.cdc-front.port']));
    for (const r of (f.annotations['com.cdc-front.resources'] ?? '').split(/[\s,]+/).filter(Boolean)) resources.set(r, f.name);
  }
  return { functions, resources };
}

/** Seconds a caller is asked to wait for a declared function that is not running yet. */
export const STARTING_RETRY_AFTER_S = 5;

/**
 * The body of a refusal the runtime makes itself on a hospital port, in the shape the port's callers
 * read: the runtime's code with the HIS answer beside it — except on the configuration port for what
 * its function would have answered (a malformed path, the function still starting), which is the
 * platform's `{"error": {"code", "reason"}, "applied": false}` (docs/config-bundles.md "Answers"). A
 * port no function serves at all (a stack without one) has no such contract: the runtime's own.
 */
export function refusalBody(port: HospitalPortSpec, route: Extract<Route, { status: number }>): Record<string, unknown> {
  if (port.key !== 'config' || route.error === 'no_function') return { error: route.error, ...route.detail };
  const code = route.error === 'bad_request' ? 'invalid-request' : route.error.replaceAll('_', '-');
  const reason = String(route.detail.reason ?? route.detail.desc ?? route.error);
  return { error: { code, reason }, applied: false };
}

/** Which function serves `url` on a hospital port, and the path it sees. */
export function routeHospital(url: string, port: HospitalPortSpec, boundPort: number, services: FunctionService[], declared?: Declared): Route {
  const mine = services.filter((s) => {
    const p = functionPort(s);
    return p !== undefined && (p === port.port || p === boundPort);
  });
  const q = url.indexOf('?');
  const pathname = q >= 0 ? url.slice(0, q) : url;
  const query = q >= 0 ? url.slice(q) : '';
  const malformed = (): Route => {
    const reason = 'malformed percent-escape in the path';
    return { status: 400, error: 'bad_request', reason, detail: { reason, ...hisAnswer(400, reason) } };
  };
  if (malformedPath(pathname)) return malformed();

  const onThisPort = (fn: string) => {
    const p = declared?.functions.get(fn);
    return p !== undefined && (p === port.port || p === boundPort);
  };
  const starting = (fn: string): Route => {
    const reason = `function ${fn} is starting; retry`;
    return { status: 503, error: 'starting', reason, retryAfterS: STARTING_RETRY_AFTER_S, detail: { function: fn, reason, ...hisAnswer(503, reason) } };
  };

  const fnMatch = /^\/function\/([^/]+)(\/.*)?$/.exec(pathname);
  if (fnMatch) {
    const svc = mine.find((s) => s.name === fnMatch[1]);
    if (svc) return { svc, path: (fnMatch[2] ?? '/') + query };
    if (onThisPort(fnMatch[1]!)) return starting(fnMatch[1]!);
    // Not one of this port's functions (a scheduled job, another port's function, a typo): said so,
    // instead of handing the path to the port's root function, which would answer about its own paths.
    if (mine.length > 0) {
      const reason = `function ${fnMatch[1]} is not served on this port`;
      return { status: 404, error: 'not_found', reason, detail: { path: pathname, ...hisAnswer(404, reason) } };
    }
  }
  const recv = /^\/hclient\/emr\/receive\/([^/]+)(\/.*)?$/.exec(pathname);
  if (recv) {
    const resource = decodePathSegment(recv[1]!);
    if (resource === null) return malformed();
    const svc = mine.find((s) => resourcesOf(s).includes(resource));
    if (svc) return { svc, path: `/${recv[1]}${recv[2] ?? ''}${query}` };
    const owner = declared?.resources.get(resource);
    if (owner !== undefined && onThisPort(owner)) return starting(owner);
    if (mine.length > 0) {
      const reason = `unknown resource ${resource}`;
      return { status: 404, error: 'unknown_resource', reason, detail: { resource, ...hisAnswer(404, reason) } };
    }
  }
  const root = mine.find((s) => s.spec.annotations['com.cdc-front.root'] === 'true');
  if (root) return { svc: root, path: url };
  if (mine.length === 0) {
    const reason = `no function serves port ${port.port}; retry`;
    return {
      status: 503,
      error: 'no_function',
      reason,
      retryAfterS: STARTING_RETRY_AFTER_S,
      detail: { port: port.port, role: port.role, missing: port.expects, ...hisAnswer(503, reason) },
    };
  }
  const reason = `no such path ${pathname}`;
  return { status: 404, error: 'not_found', reason, detail: { path: pathname, ...hisAnswer(404, reason) } };
}
