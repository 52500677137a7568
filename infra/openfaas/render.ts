/**
 * The hospital ports on a real OpenFaaS, generated from stack.yml (docs/deploy.md): the same routes
 * this project's runtime serves on 8881–8884 (infra/runtime/ports.ts), written as
 *  - an nginx configuration for faasd (nginx on the host in front of the gateway on loopback), and
 *  - Gateway API resources for Kubernetes (a Gateway with one listener per port, an HTTPRoute each,
 *    and the ReferenceGrant that lets them reach the OpenFaaS gateway Service),
 * plus the OpenFaaS Helm chart's values this stack needs and the commands that create the secrets its
 * functions list. Only the paths a hospital port serves are exposed: each receive function's
 * /hclient/emr/receive/<resource>, /openapi.json|html, the functions placed on a port
 * (/function/remind/… on 8881), and the root functions of config, monitor and console — every
 * location maps to /function/<fn>/…, so /system, /async-function, /ui and the functions that sit on
 * no port (warning, push, day-close, backup with their operator routes) are unreachable.
 *
 *   bin/cdc-deploy render nginx|gateway-api|helm-values|secrets [--out <file>]   (make render-deploy)
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import YAML from 'yaml';
import { DEFAULT_MAX_BODY_BYTES, watchdogConfig } from '../runtime/config.js';
import { defaultHospitalPorts } from '../runtime/ports.js';
import { loadStack, type FunctionSpec } from '../runtime/stack.js';

export interface Route {
  /** exact: this path only; prefix: this path and below (a trailing slash). */
  match: 'exact' | 'prefix';
  path: string;
  /** The gateway path it maps to (the match replaced by this). */
  to: string;
  fn: string;
}

export interface PortRoutes {
  key: string;
  port: number;
  role: string;
  routes: Route[];
  /** Largest body any function on the port takes (its MAX_BODY_BYTES). */
  maxBodyBytes: number;
  /** Longest write_timeout of the functions on the port, seconds: the proxy must wait that long. */
  timeoutS: number;
}

const portOf = (f: FunctionSpec): number | undefined => {
  const v = f.annotations['com.cdc-front.port'];
  const p = v === undefined || v.trim() === '' ? NaN : Number(v);
  return Number.isInteger(p) && p > 0 ? p : undefined;
};
const resourcesOf = (f: FunctionSpec): string[] => (f.annotations['com.cdc-front.resources'] ?? '').split(/[\s,]+/).filter(Boolean);
const isRoot = (f: FunctionSpec): boolean => f.annotations['com.cdc-front.root'] === 'true';

/** The routes of each hospital port, from the functions' com.cdc-front.* annotations. */
export function hospitalRoutes(functions: FunctionSpec[], env: Record<string, string | undefined>): PortRoutes[] {
  return defaultHospitalPorts(env).map((spec) => {
    const mine = functions.filter((f) => portOf(f) === spec.port);
    const routes: Route[] = [];
    const receivers = mine.filter((f) => resourcesOf(f).length > 0);
    for (const f of receivers) {
      for (const r of resourcesOf(f)) {
        routes.push({ match: 'exact', path: `/hclient/emr/receive/${r}`, to: `/function/${f.name}/${r}`, fn: f.name });
        routes.push({ match: 'prefix', path: `/hclient/emr/receive/${r}/`, to: `/function/${f.name}/${r}/`, fn: f.name });
      }
    }
    // Functions on the port by their own path (remind on the data port).
    for (const f of mine.filter((x) => resourcesOf(x).length === 0 && !isRoot(x))) {
      routes.push({ match: 'prefix', path: `/function/${f.name}/`, to: `/function/${f.name}/`, fn: f.name });
    }
    const root = mine.find(isRoot);
    if (root && receivers.length > 0) {
      // The data port's root function answers only the interface documents there.
      for (const doc of ['/openapi.json', '/openapi.html']) routes.push({ match: 'exact', path: doc, to: `/function/${root.name}${doc}`, fn: root.name });
    } else if (root) {
      routes.push({ match: 'prefix', path: '/', to: `/function/${root.name}/`, fn: root.name });
    }
    const served = mine.filter((f) => routes.some((r) => r.fn === f.name));
    const maxBodyBytes = Math.max(DEFAULT_MAX_BODY_BYTES, ...served.map((f) => watchdogConfig(f).maxBodyBytes));
    const timeoutS = Math.ceil(Math.max(10_000, ...served.map((f) => watchdogConfig(f).writeTimeoutMs)) / 1000);
    return { key: spec.key, port: spec.port, role: spec.role, routes, maxBodyBytes, timeoutS };
  });
}

export interface NginxOptions {
  /** The faasd gateway, bound to loopback (docs/deploy.md). */
  upstream: string;
  /** Address nginx listens on for the hospital LAN. */
  listen: string;
  /** TLS certificate and key per port key (data, config, monitor, web); plain HTTP without. */
  tls?: Partial<Record<string, { cert: string; key: string }>>;
}

/** nginx for faasd: one server per hospital port, each location mapping to the gateway's /function/<fn>. */
export function renderNginx(ports: PortRoutes[], o: NginxOptions): string {
  const out: string[] = [
    '# Generated from stack.yml by bin/cdc-deploy render nginx (infra/openfaas/render.ts): do not edit.',
    '# The hospital ports in front of the faasd gateway on loopback; only these paths are served.',
    `upstream cdc_front_gateway {\n    server ${o.upstream};\n    keepalive 16;\n}`,
  ];
  for (const p of ports) {
    const tls = o.tls?.[p.key];
    const lines = [
      `# port ${p.port}: ${p.role}`,
      'server {',
      `    listen ${o.listen}:${p.port}${tls ? ' ssl' : ''};`,
      ...(tls ? [`    ssl_certificate ${tls.cert};`, `    ssl_certificate_key ${tls.key};`, '    ssl_protocols TLSv1.2 TLSv1.3;'] : []),
      `    client_max_body_size ${Math.ceil(p.maxBodyBytes / 1024)}k;`,
      `    proxy_read_timeout ${p.timeoutS + 5}s;`,
      `    proxy_send_timeout ${p.timeoutS + 5}s;`,
      '    proxy_http_version 1.1;',
      '    proxy_set_header Connection "";',
      // The functions judge the HIS by the address nginx saw: replaced, never appended (docs/his-auth.md).
      '    proxy_set_header X-Forwarded-For $remote_addr;',
      '    proxy_set_header X-Forwarded-Host $http_host;',
      '    proxy_set_header X-Forwarded-Proto $scheme;',
      // Server-sent events (reminders) and long answers are streamed, not buffered.
      '    proxy_buffering off;',
    ];
    for (const r of p.routes) {
      const loc = r.match === 'exact' ? `location = ${r.path}` : `location ^~ ${r.path}`;
      lines.push(`    ${loc} {`, `        proxy_pass http://cdc_front_gateway${r.to};`, '    }');
    }
    // Everything else: 404 from nginx itself (the root function's port takes "/" instead).
    if (!p.routes.some((r) => r.path === '/')) lines.push('    location / {', '        return 404;', '    }');
    lines.push('}');
    out.push(lines.join('\n'));
  }
  return out.join('\n\n') + '\n';
}

export interface GatewayApiOptions {
  /** Namespace of the Gateway and its routes. */
  namespace: string;
  gatewayClassName: string;
  /** Where OpenFaaS runs its gateway Service (the Helm chart's namespace). */
  openfaasNamespace: string;
  /** A TLS Secret per port key (in `namespace`); plain HTTP without. */
  tls?: Partial<Record<string, string>>;
}

/**
 * Kubernetes: Gateway API (gateway.networking.k8s.io/v1) rather than an Ingress — the path rewrite to
 * /function/<fn>/… is a standard URLRewrite filter there, where an Ingress needs one controller's
 * annotations; and one Gateway has the four ports as listeners.
 */
export function renderGatewayApi(ports: PortRoutes[], o: GatewayApiOptions): string {
  const docs: unknown[] = [];
  docs.push({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name: 'cdc-front', namespace: o.namespace },
    spec: {
      gatewayClassName: o.gatewayClassName,
      listeners: ports.map((p) => {
        const secret = o.tls?.[p.key];
        return {
          name: p.key,
          port: p.port,
          protocol: secret ? 'HTTPS' : 'HTTP',
          ...(secret ? { tls: { mode: 'Terminate', certificateRefs: [{ kind: 'Secret', name: secret }] } } : {}),
          allowedRoutes: { namespaces: { from: 'Same' } },
        };
      }),
    },
  });
  for (const p of ports) {
    if (p.routes.length === 0) continue;
    docs.push({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: `cdc-front-${p.key}`, namespace: o.namespace },
      spec: {
        parentRefs: [{ name: 'cdc-front', sectionName: p.key }],
        rules: p.routes.map((r) => ({
          matches: [
            {
              path: { type: r.match === 'exact' ? 'Exact' : 'PathPrefix', value: r.match === 'prefix' && r.path !== '/' ? r.path.replace(/\/$/, '') : r.path },
            },
          ],
          filters: [
            {
              type: 'URLRewrite',
              urlRewrite: {
                path:
                  r.match === 'exact'
                    ? { type: 'ReplaceFullPath', replaceFullPath: r.to }
                    : { type: 'ReplacePrefixMatch', replacePrefixMatch: r.to.replace(/\/$/, '') || '/' },
              },
            },
          ],
          backendRefs: [{ name: 'gateway', namespace: o.openfaasNamespace, port: 8080 }],
          timeouts: { request: `${p.timeoutS + 5}s` },
        })),
      },
    });
  }
  docs.push({
    apiVersion: 'gateway.networking.k8s.io/v1beta1',
    kind: 'ReferenceGrant',
    metadata: { name: 'cdc-front-to-openfaas-gateway', namespace: o.openfaasNamespace },
    spec: {
      from: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: o.namespace }],
      to: [{ group: '', kind: 'Service', name: 'gateway' }],
    },
  });
  return (
    '# Generated from stack.yml by bin/cdc-deploy render gateway-api (infra/openfaas/render.ts): do not edit.\n' +
    docs.map((d) => YAML.stringify(d)).join('---\n')
  );
}

/** The OpenFaaS Helm chart's (faas-netes) values this stack needs. */
export function renderHelmValues(functions: FunctionSpec[]): string {
  const longestS = Math.ceil(Math.max(...functions.map((f) => watchdogConfig(f).writeTimeoutMs)) / 1000);
  const values = {
    functionNamespace: 'openfaas-fn',
    basic_auth: true,
    generateBasicAuth: true,
    // The hospital ports are the Gateway API listeners (render gateway-api), not the chart's NodePort.
    exposeServices: false,
    serviceType: 'ClusterIP',
    async: true,
    // Above the longest function write_timeout (day-close, backup), so their cron calls are answered.
    gateway: { readTimeout: `${longestS + 10}s`, writeTimeout: `${longestS + 10}s`, upstreamTimeout: `${longestS + 5}s`, replicas: 1 },
    queueWorker: { ackWait: `${longestS + 10}s`, replicas: 1 },
    ingress: { enabled: false },
  };
  return `# Generated from stack.yml by bin/cdc-deploy render helm-values (infra/openfaas/render.ts).
# helm upgrade --install openfaas openfaas/openfaas -n openfaas -f openfaas-values.yaml
# The cron schedules run on the cron-connector chart (openfaas/cron-connector, defaults); every
# schedule in stack.yml is an interval within the hour, so it fires alike in UTC and Asia/Shanghai,
# and each function decides in TZ_LOCAL what is due (docs/deploy.md).
${YAML.stringify(values)}`;
}

/** The secret files the functions list, as kubectl commands reading them from a folder (never values). */
export function renderSecrets(functions: FunctionSpec[], o: { namespace: string; from: string }): string {
  const names = [...new Set(functions.flatMap((f) => f.secrets))].sort();
  const lines = [
    '#!/bin/sh',
    '# Generated from stack.yml by bin/cdc-deploy render secrets (infra/openfaas/render.ts).',
    `# Creates the secrets the functions list in ${o.namespace}, each from the file of the same name in`,
    `# ${o.from} (mode 0600, never in git). basic-auth-user/-password are copied from the chart's own.`,
    'set -eu',
    `dir="\${1:-${o.from}}"`,
  ];
  for (const n of names) {
    if (n === 'basic-auth-user' || n === 'basic-auth-password') {
      const key = n;
      lines.push(`kubectl -n openfaas get secret basic-auth -o "jsonpath={.data.${key}}" | base64 -d > "$dir/${n}.tmp" && \\`);
      lines.push(
        `  kubectl -n ${o.namespace} create secret generic ${n} --from-file=${n}="$dir/${n}.tmp" --dry-run=client -o yaml | kubectl apply -f - && rm -f "$dir/${n}.tmp"`,
      );
    } else {
      lines.push(`kubectl -n ${o.namespace} create secret generic ${n} --from-file=${n}="$dir/${n}" --dry-run=client -o yaml | kubectl apply -f -`);
    }
  }
  return lines.join('\n') + '\n';
}

/** The functions' replica bounds (com.openfaas.scale.min/max labels), for the deploy guide. */
export function replicaTable(functions: FunctionSpec[]): Array<{ fn: string; min: string; max: string }> {
  return functions.map((f) => ({ fn: f.name, min: f.labels['com.openfaas.scale.min'] ?? '1', max: f.labels['com.openfaas.scale.max'] ?? '—' }));
}

const USAGE = `usage: bin/cdc-deploy render <nginx|gateway-api|helm-values|secrets> [--out <file>] [--stack stack.yml]
  nginx        --upstream 127.0.0.1:8080 --listen 0.0.0.0 [--tls-dir <dir>: <port key>.crt/.key]
  gateway-api  --namespace cdc-front --class <gatewayClassName> --openfaas-namespace openfaas
  secrets      --namespace openfaas-fn --from <folder of secret files>
Ports come from DATA_PORT, CONFIG_PORT, MONITOR_PORT, WEB_PORT (defaults 8881-8884), as for make up.`;

export function main(argv: string[], env: Record<string, string | undefined> = process.env): string {
  const [verb, what, ...rest] = argv;
  if (verb !== 'render' || !what) throw new Error(USAGE);
  const opt = (name: string, d: string): string => {
    const i = rest.indexOf(`--${name}`);
    return i >= 0 && rest[i + 1] ? rest[i + 1]! : d;
  };
  const stack = loadStack(resolve(opt('stack', resolve(import.meta.dirname, '../../stack.yml'))), env);
  const ports = hospitalRoutes(stack.functions, env);
  const tlsDir = opt('tls-dir', '');
  let text: string;
  switch (what) {
    case 'nginx':
      text = renderNginx(ports, {
        upstream: opt('upstream', '127.0.0.1:8080'),
        listen: opt('listen', '0.0.0.0'),
        ...(tlsDir ? { tls: Object.fromEntries(ports.map((p) => [p.key, { cert: `${tlsDir}/${p.key}.crt`, key: `${tlsDir}/${p.key}.key` }])) } : {}),
      });
      break;
    case 'gateway-api':
      text = renderGatewayApi(ports, {
        namespace: opt('namespace', 'cdc-front'),
        gatewayClassName: opt('class', 'nginx'),
        openfaasNamespace: opt('openfaas-namespace', 'openfaas'),
      });
      break;
    case 'helm-values':
      text = renderHelmValues(stack.functions);
      break;
    case 'secrets':
      text = renderSecrets(stack.functions, { namespace: opt('namespace', 'openfaas-fn'), from: opt('from', '/etc/cdc-front/secrets') });
      break;
    default:
      throw new Error(USAGE);
  }
  const out = opt('out', '');
  if (out) writeFileSync(out, text, { mode: what === 'secrets' ? 0o755 : 0o644 });
  return out ? `wrote ${out}\n` : text;
}

if (process.argv[1] && /render\.(ts|js)$/.test(process.argv[1])) {
  try {
    process.stdout.write(main(process.argv.slice(2)));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
}
