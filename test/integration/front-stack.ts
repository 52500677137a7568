/**
 * The front on the real runtime for integration tests that need it: stack.yml cut down to the
 * functions a test names (the same bundles, environment and annotations; absolute paths), on free
 * loopback ports, with its own secrets folder. Cron and autoscaler off; the push function is
 * invoked through the gateway, as the cron-connector or a nudge would.
 *
 * The test database is shared with other test files that run fronts of their own, whose push
 * functions forward the `national` destination's rows to their own simulators. So, as in
 * test/e2e/traffic.test.ts, this front forwards through a destination of its own (enabled while it
 * runs, its URL known only to this front's push function) and leaves `national` alone.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import YAML from 'yaml';
import pg from 'pg';
import { bootStack } from '../../infra/runtime/boot.js';
import type { RuntimeHandle } from '../../infra/runtime/index.js';
import { basicAuthHeader } from '../../shared/http/basic.js';

export interface TestFront {
  rt: RuntimeHandle;
  data: string;
  auth: Record<string, string>;
  /** Invokes the push function through the gateway (cron: as the cron-connector does). */
  push(o?: { cron?: boolean }): Promise<{ status: number; body: Record<string, unknown> }>;
  /** Redeploys a function through the gateway API with extra environment; waits for its new replica. */
  redeploy(fn: string, env: Record<string, string>): Promise<void>;
  close(): Promise<void>;
}

export async function startTestFront(o: {
  functions: string[];
  databaseUrl: string;
  /** The destination this front's push forwards to: a name of its own and the platform's URL. */
  destination: { name: string; url: string };
  env?: Record<string, string>;
}): Promise<TestFront> {
  const root = resolve('.');
  const stack = YAML.parse(readFileSync(join(root, 'stack.yml'), 'utf8')) as {
    functions: Record<string, { handler: string; environment?: Record<string, string>; environment_file?: string[] }>;
  };
  const functions = Object.fromEntries(
    o.functions.map((name) => {
      const f = stack.functions[name];
      if (!f) throw new Error(`no function ${name} in stack.yml`);
      const environment =
        name === 'push' ? { ...f.environment, NATIONAL_URL: '', [`${o.destination.name.toUpperCase()}_URL`]: o.destination.url } : f.environment;
      return [name, { ...f, environment, handler: join(root, f.handler), environment_file: (f.environment_file ?? []).map((e) => join(root, e)) }];
    }),
  );
  const setDestination = async (enabled: boolean) => {
    const c = new pg.Client({ connectionString: o.databaseUrl });
    c.on('error', () => undefined);
    await c.connect();
    try {
      const u = await c.query('UPDATE uplink_destination SET enabled = $2 WHERE name = $1', [o.destination.name, enabled]);
      if (!u.rowCount && enabled) await c.query(`INSERT INTO uplink_destination (name, kind, enabled) VALUES ($1, 'simulator', true)`, [o.destination.name]);
    } finally {
      await c.end();
    }
  };
  await setDestination(true);
  let rt: RuntimeHandle;
  try {
    // infra/runtime/boot.ts; NATIONAL_URL '' keeps stack.yml's own for the other functions (push's
    // is emptied above), and pushes are nudged through this front's own gateway.
    ({ rt } = await bootStack({
      name: 'front-it',
      databaseUrl: o.databaseUrl,
      stackYaml: YAML.stringify({ ...stack, functions }),
      nudge: true,
      env: { NATIONAL_URL: '', ...o.env },
      runtime: { projectDir: root },
    }));
  } catch (err) {
    await setDestination(false);
    throw err;
  }
  const auth = { authorization: basicAuthHeader(rt.credentials) };
  return {
    rt,
    data: rt.portUrls.data!,
    auth,
    async push(p = {}) {
      // The push takes few runs at once (max_inflight): while nudged runs fill it the watchdog
      // answers 429, as it would an operator; like an operator, wait and ask again.
      const end = Date.now() + 30_000;
      let res: Response;
      for (;;) {
        res = await fetch(`${rt.gatewayUrl}/function/push`, {
          method: 'POST',
          headers: p.cron ? { 'x-topic': 'cron-function', 'x-connector': 'cron-connector' } : {},
          body: '',
        });
        if (res.status !== 429 || Date.now() > end) break;
        await res.text();
        await new Promise((r) => setTimeout(r, 200));
      }
      const text = await res.text();
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(text) as Record<string, unknown>;
      } catch {
        body = { text };
      }
      return { status: res.status, body };
    },
    async redeploy(fn, env) {
      const before = new Set(rt.replicas(fn).map((r) => r.pid));
      const current = (await (await fetch(`${rt.gatewayUrl}/system/function/${fn}`, { headers: auth })).json()) as {
        image: string;
        envVars: Record<string, string>;
        labels: Record<string, string>;
        annotations: Record<string, string>;
      };
      const put = await fetch(`${rt.gatewayUrl}/system/functions`, {
        method: 'PUT',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({
          service: fn,
          image: current.image,
          envVars: { ...current.envVars, ...env },
          labels: current.labels,
          annotations: current.annotations,
          // The personal-data keys (docs/keys.md): a replica without them would seal under other keys.
          secrets: ['cdc-database-url', 'pii-field-keys', 'pii-hash-key'],
        }),
      });
      if (put.status !== 202) throw new Error(`redeploying ${fn} answered ${put.status}: ${await put.text()}`);
      // Done when every replica is a new one, and ready (the old ones have drained and left).
      const end = Date.now() + 30_000;
      for (;;) {
        const now = rt.replicas(fn);
        if (now.length > 0 && now.every((r) => r.state === 'ready' && !before.has(r.pid))) return;
        if (Date.now() > end) throw new Error(`${fn} was not redeployed within 30 s`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async close() {
      await setDestination(false).catch(() => undefined);
      await rt.close();
    },
  };
}

/** The database URL with an application_name of its own, so a test can find (and terminate) its front's sessions. */
export function tagged(url: string, applicationName: string): string {
  const u = new URL(url);
  u.searchParams.set('application_name', applicationName);
  return u.toString();
}
