// The hospital ports on a real OpenFaaS, rendered from stack.yml (infra/openfaas/render.ts;
// docs/deploy.md): the nginx configuration for faasd is checked by nginx itself (`nginx -t`) and then
// run in front of this project's runtime, whose gateway answers /function/<fn> as OpenFaaS's does — a
// HIS record goes through it and is stored, the interface documents and reminders answer, and
// /system, /async-function, /ui and the operator routes of functions on no port are not reachable.
// The Gateway API resources, the chart's values and the secrets script are rendered and checked
// (no cluster here): every receive path routed, nothing else, timeouts above the functions'.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { hospitalRoutes, main, renderGatewayApi, renderHelmValues, renderNginx, renderSecrets } from '../../infra/openfaas/render.js';
import { watchdogConfig } from '../../infra/runtime/config.js';
import { freePort } from '../../infra/runtime/replica.js';
import { loadStack } from '../../infra/runtime/stack.js';
import { sample } from '../../infra/simulators/samples.js';
import { testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { startStackRuntime, type StackRuntime } from '../setup/stack-runtime.js';
import { basicAuthHeader } from '../../shared/http/basic.js';

const NGINX = '/usr/sbin/nginx';
const stack = loadStack(resolve('stack.yml'), {});
const ports = hospitalRoutes(stack.functions, {});
const receiveFns = stack.functions.filter((f) => f.annotations['com.cdc-front.resources']);
const allResources = receiveFns.flatMap((f) =>
  f.annotations['com.cdc-front.resources']!.split(/\s+/)
    .filter(Boolean)
    .map((r) => [f.name, r] as const),
);

describe('routes from the annotations', () => {
  it('route every receive resource on the data port to its function, and nothing of /system or the functions on no port', () => {
    const data = ports.find((p) => p.key === 'data')!;
    expect(data.port).toBe(8881);
    for (const [fn, r] of allResources) {
      expect(data.routes).toContainEqual({ match: 'exact', path: `/hclient/emr/receive/${r}`, to: `/function/${fn}/${r}`, fn });
      expect(data.routes).toContainEqual({ match: 'prefix', path: `/hclient/emr/receive/${r}/`, to: `/function/${fn}/${r}/`, fn });
    }
    expect(data.routes.filter((r) => r.path.startsWith('/openapi')).map((r) => r.path)).toEqual(['/openapi.json', '/openapi.html']);
    // The reminders and database sync's nudge and lag (docs/dbsync.md) are the data port's functions without resources.
    expect(data.routes.filter((r) => r.path.startsWith('/function/')).map((r) => r.path)).toEqual(['/function/dbsync/', '/function/remind/']);
    const all = ports.flatMap((p) => p.routes);
    const onNoPort = stack.functions.filter((f) => !f.annotations['com.cdc-front.port']).map((f) => f.name);
    expect(onNoPort).toEqual(expect.arrayContaining(['push', 'warning', 'day-close', 'backup']));
    for (const r of all) {
      expect(r.to.startsWith('/function/'), r.to).toBe(true);
      expect(onNoPort).not.toContain(r.fn);
    }
    expect(ports.find((p) => p.key === 'web')!.routes).toEqual([{ match: 'prefix', path: '/', to: '/function/web/', fn: 'web' }]);
    expect(ports.find((p) => p.key === 'config')!.routes).toEqual([{ match: 'prefix', path: '/', to: '/function/config/', fn: 'config' }]);
    expect(ports.find((p) => p.key === 'monitor')!.routes).toEqual([{ match: 'prefix', path: '/', to: '/function/monitor/', fn: 'monitor' }]);
    // Body limit and timeouts from the functions themselves.
    expect(data.maxBodyBytes).toBe(8_388_608);
    expect(data.timeoutS).toBeGreaterThanOrEqual(Math.max(...receiveFns.map((f) => watchdogConfig(f).writeTimeoutMs)) / 1000);
  });

  it('follow a port moved by the environment, as make up and faas-cli substitute it', () => {
    const moved = hospitalRoutes(loadStack(resolve('stack.yml'), { DATA_PORT: '9881', WEB_PORT: '9884' }).functions, { DATA_PORT: '9881', WEB_PORT: '9884' });
    expect(moved.find((p) => p.key === 'data')!.port).toBe(9881);
    expect(moved.find((p) => p.key === 'data')!.routes.length).toBe(ports.find((p) => p.key === 'data')!.routes.length);
    const nginx = renderNginx(moved, { upstream: '127.0.0.1:8080', listen: '0.0.0.0' });
    expect(nginx).toContain('listen 0.0.0.0:9881;');
    expect(nginx).toContain('listen 0.0.0.0:9884;');
    expect(nginx).not.toContain(':8881;');
    const k8s = YAML.parseAllDocuments(renderGatewayApi(moved, { namespace: 'cdc-front', gatewayClassName: 'nginx', openfaasNamespace: 'openfaas' })).map((d) =>
      d.toJSON(),
    );
    expect(k8s[0].spec.listeners.map((l: { port: number }) => l.port)).toEqual([9881, 8882, 8883, 9884]);
  });
});

describe('Kubernetes renders', () => {
  it('Gateway API: a Gateway with the four listeners, an HTTPRoute per served port rewriting to /function/<fn>, a ReferenceGrant', () => {
    const docs = YAML.parseAllDocuments(renderGatewayApi(ports, { namespace: 'cdc-front', gatewayClassName: 'nginx', openfaasNamespace: 'openfaas' })).map(
      (d) => d.toJSON(),
    );
    // One HTTPRoute per served port: data, config, monitor, web.
    expect(docs.map((d) => d.kind)).toEqual(['Gateway', 'HTTPRoute', 'HTTPRoute', 'HTTPRoute', 'HTTPRoute', 'ReferenceGrant']);
    const routes = docs.filter((d) => d.kind === 'HTTPRoute');
    const rules = routes.flatMap((r) => r.spec.rules);
    for (const rule of rules) {
      expect(rule.backendRefs).toEqual([{ name: 'gateway', namespace: 'openfaas', port: 8080 }]);
      const rewrite = rule.filters[0].urlRewrite.path;
      expect(rewrite.replaceFullPath ?? rewrite.replacePrefixMatch).toMatch(
        /^\/function\/(patient|diagnosis|card|lab|exam|order|death|record|remind|dbsync|web|monitor|config)(\/|$)/,
      );
    }
    const data = routes.find((r) => r.metadata.name === 'cdc-front-data');
    for (const [fn, r] of allResources) {
      expect(data.spec.rules).toContainEqual(
        expect.objectContaining({
          matches: [{ path: { type: 'Exact', value: `/hclient/emr/receive/${r}` } }],
          filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplaceFullPath', replaceFullPath: `/function/${fn}/${r}` } } }],
        }),
      );
    }
    const text = JSON.stringify(docs);
    for (const never of ['/system', '/async-function', '/ui', '/function/warning', '/function/push', '/function/backup', '/function/day-close'])
      expect(text).not.toContain(never);
    expect(docs[5].spec.to).toEqual([{ group: '', kind: 'Service', name: 'gateway' }]);
  });

  it("the chart's values: timeouts above the longest function write_timeout, basic auth, no NodePort", () => {
    const v = YAML.parse(renderHelmValues(stack.functions));
    const longest = Math.max(...stack.functions.map((f) => watchdogConfig(f).writeTimeoutMs)) / 1000;
    const s = (d: string) => Number(d.replace(/s$/, ''));
    expect(s(v.gateway.writeTimeout)).toBeGreaterThan(longest);
    expect(s(v.gateway.readTimeout)).toBeGreaterThan(longest);
    expect(s(v.gateway.upstreamTimeout)).toBeGreaterThanOrEqual(longest);
    expect(s(v.gateway.upstreamTimeout)).toBeLessThan(s(v.gateway.writeTimeout));
    expect(s(v.queueWorker.ackWait)).toBeGreaterThan(longest);
    expect(v).toMatchObject({ functionNamespace: 'openfaas-fn', basic_auth: true, exposeServices: false });
  });

  it('cron schedules fire alike in UTC (the cron-connector) and Asia/Shanghai: intervals within the hour only', () => {
    const schedules = stack.functions.filter((f) => f.annotations.topic === 'cron-function').map((f) => [f.name, f.annotations.schedule!] as const);
    expect(schedules.length).toBeGreaterThanOrEqual(4);
    for (const [fn, s] of schedules) {
      const [min, hour, dom, mon, dow] = s.split(/\s+/);
      expect([fn, hour, dom, mon, dow]).toEqual([fn, '*', '*', '*', '*']);
      expect(min, fn).toMatch(/^(\*|\*\/\d+|\d+)$/);
    }
  });

  it('the secrets script: every secret a function lists, from files, never a value', () => {
    const script = renderSecrets(stack.functions, { namespace: 'openfaas-fn', from: '/etc/cdc-front/secrets' });
    const listed = [...new Set(stack.functions.flatMap((f) => f.secrets))];
    for (const n of listed) expect(script).toContain(`create secret generic ${n} --from-file=${n}=`);
    expect(script).not.toMatch(/--from-literal/);
    const check = spawnSync('sh', ['-n'], { input: script, encoding: 'utf8' });
    expect(check.status, check.stderr).toBe(0);
  });

  it('bin/cdc-deploy renders to a file and names its usage', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdc-render-'));
    try {
      expect(main(['render', 'nginx', '--out', join(dir, 'n.conf')], {})).toContain('wrote');
      expect(() => main(['render', 'iis'], {})).toThrow(/usage: bin\/cdc-deploy render/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('nginx for faasd, run in front of the runtime', () => {
  let front: StackRuntime;
  let nginx: ChildProcess | undefined;
  let dir: string;
  let base: Record<string, string>;
  const db = testDb();

  beforeAll(async () => {
    // nginx relays from loopback: it must be a trusted proxy for its X-Forwarded-For to count
    // (docs/his-auth.md; on faasd, the address the gateway sees nginx from: docs/deploy.md).
    front = await startStackRuntime('nginx', { HIS_TRUSTED_PROXIES: '127.0.0.1/32' });
    dir = mkdtempSync(join(tmpdir(), 'cdc-nginx-'));
    const env = {
      DATA_PORT: String(await freePort()),
      CONFIG_PORT: String(await freePort()),
      MONITOR_PORT: String(await freePort()),
      WEB_PORT: String(await freePort()),
    };
    base = {
      data: `http://127.0.0.1:${env.DATA_PORT}`,
      web: `http://127.0.0.1:${env.WEB_PORT}`,
      monitor: `http://127.0.0.1:${env.MONITOR_PORT}`,
      config: `http://127.0.0.1:${env.CONFIG_PORT}`,
    };
    const routes = hospitalRoutes(loadStack(resolve('stack.yml'), env).functions, env);
    writeFileSync(join(dir, 'cdc-front.conf'), renderNginx(routes, { upstream: new URL(front.rt.gatewayUrl).host, listen: '127.0.0.1' }));
    for (const t of ['body', 'proxy']) mkdirSync(join(dir, t));
    writeFileSync(
      join(dir, 'nginx.conf'),
      `daemon off;\nmaster_process off;\nerror_log ${dir}/error.log warn;\npid ${dir}/nginx.pid;\nevents { worker_connections 256; }\nhttp {\n  access_log off;\n  client_body_temp_path ${dir}/body;\n  proxy_temp_path ${dir}/proxy;\n  include ${dir}/cdc-front.conf;\n}\n`,
    );
  }, 120_000);

  afterAll(async () => {
    nginx?.kill('SIGTERM');
    await front?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('passes nginx -t', () => {
    const t = spawnSync(NGINX, ['-t', '-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { encoding: 'utf8' });
    expect(t.status, t.stderr).toBe(0);
    expect(t.stderr).toContain('syntax is ok');
  });

  it('serves the HIS, the documents, reminders and the console through the gateway, and nothing else', { timeout: 60_000 }, async () => {
    nginx = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio: 'ignore' });
    const end = Date.now() + 10_000;
    while (Date.now() < end) {
      const ok = await fetch(`${base.data}/openapi.json`)
        .then((r) => r.status === 200)
        .catch(() => false);
      if (ok) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // A record, as an adapter posts it.
    const org = uniqueOrg();
    const id = uniqueId('p');
    const res = await fetch(`${base.data}/hclient/emr/receive/emrPatientInfo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(sample('emrPatientInfo', { orgCode: org, id, seed: 8 })),
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect((await db.query('SELECT count(*) FROM emr_patient_info WHERE org_code = $1 AND id = $2', [org, id])).rows[0].count).toBe('1');
    // Its fate, a path below the resource.
    // Each answer's status, with its headers and the start of its body when it is not the one expected.
    const status = async (url: string) => {
      const r = await fetch(url);
      const body = await r.text();
      return { status: r.status, told: `${url} → ${r.status} ${JSON.stringify(Object.fromEntries(r.headers))} ${body.slice(0, 300)}` };
    };
    const expectStatus = async (url: string, want: number) => {
      const got = await status(url);
      expect(got.status, got.told).toBe(want);
    };
    await expectStatus(`${base.data}/hclient/emr/receive/emrPatientInfo/${id}?orgCode=${org}`, 200);
    await expectStatus(`${base.data}/openapi.html`, 200);
    await expectStatus(`${base.data}/function/remind/reminders?orgCode=${org}`, 200);
    // The configuration port reaches the config function (its open health check; the rest wants its token).
    await expectStatus(`${base.config}/healthz`, 200);
    await expectStatus(`${base.config}/bundles`, 401);
    await expectStatus(`${base.web}/status.html`, 200);
    const monitor = await status(`${base.monitor}/healthz`);
    expect(monitor.status, monitor.told).not.toBe(404);
    // Never the control plane, the async queue, the UI, or a function on no port (operator routes).
    const auth = { authorization: basicAuthHeader(front.rt.credentials) };
    for (const [port, path] of [
      ['data', '/system/functions'],
      ['data', '/async-function/push'],
      ['data', '/ui/'],
      ['data', '/function/warning/cases'],
      ['data', '/function/push/dead'],
      ['data', '/function/patient/emrPatientInfo'],
      ['data', '/hclient/emr/receive/../../system/functions'],
      ['data', '/hclient/emr/receive/emrPatientInfo/../../../../system/info'],
      ['config', '/system/functions'],
      ['config', '/'],
    ] as const) {
      const r = await fetch(`${base[port]}${path}`, { headers: auth, method: path.startsWith('/async') ? 'POST' : 'GET' });
      const body = await r.text();
      expect([path, r.status], body.slice(0, 200)).toEqual([path, 404]);
      expect(body).not.toContain('"availableReplicas"');
    }
  });
});
