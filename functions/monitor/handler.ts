// monitor: the monitoring port (8883), read by the national platform (docs/monitoring.md).
// Served as the port's root function (stack.yml com.cdc-front.root), so it sees every path as sent.
//   GET /healthz          200 {ok:true} when the database answers and its schema is this release's,
//                         503 {ok:false} otherwise (with the missing or unknown migrations) — open,
//                         for load balancers and the platform's reachability check
// Everything else needs the platform's bearer token (secret file monitor-token) or a client
// certificate listed in MONITOR_CLIENT_CERTS (shared/monitor/auth.ts):
//   GET / , GET /status   the front's status as JSON (shared/status), the activation in force among it;
//                         503 with the same body when the database is unreachable or its schema is
//                         not this release's (database.schema, docs/deploy.md "Upgrade"), so a watcher
//                         needs only the status code
//   GET /components       each component's state, error counts, the server's health, platform latency
//                         at the addresses push sends to (docs/monitoring.md "Platforms")
//   GET /metrics          Prometheus text: the front's figures and every function's, from the runtime
import { Hono, type Context } from 'hono';
import { defineFunction } from '../../shared/fn/index.js';
import { AppError, errorAnswer, handleError } from '../../shared/http/errors.js';
import { monitorConfig, type MonitorSettings } from '../../shared/config/functions/monitor.js';
import { closePool, getPool, openPool } from '../../shared/db/index.js';
import { monitorAuth } from '../../shared/monitor/auth.js';
import { components } from '../../shared/monitor/components.js';
import { metricsPage, runtimeMetrics } from '../../shared/monitor/metrics.js';
import { databaseAnswers, frontStatus } from '../../shared/status/index.js';
import { schemaState } from '../../shared/db/schema.js';

let parsed: MonitorSettings | undefined;
const settings = (): MonitorSettings => (parsed ??= monitorConfig.parse());

const app = new Hono();
app.onError(handleError);
app.notFound((c) => c.json(errorAnswer(new AppError('NOT_FOUND', `接口不存在：${c.req.path}`)), 404));

app.get('/healthz', async (c) => {
  c.header('cache-control', 'no-store');
  if (!(await databaseAnswers(getPool()))) return c.json({ ok: false }, 503);
  // A database whose schema is not this release's (shared/db/schema.ts): unhealthy, naming the
  // migrations — only their file names, nothing of the data (docs/deploy.md "Upgrade").
  const schema = await schemaState(getPool()).catch(() => null);
  if (schema && schema.state !== 'current') return c.json({ ok: false, schema: schema.state, missing: schema.missing, unknown: schema.unknown }, 503);
  return c.json({ ok: true });
});

const auth = monitorAuth(() => settings().monitorAuth);
const status = async (c: Context) => {
  const s = await frontStatus(getPool());
  c.header('cache-control', 'no-store');
  // 503 too when the schema is not this release's (database.schema names the migrations).
  const healthy = s.database.reachable && (s.database.schema?.state ?? 'current') === 'current';
  return c.json(s, healthy ? 200 : 503);
};
app.get('/', auth, status);
app.get('/status', auth, status);
app.get('/components', auth, async (c) => {
  const m = settings().monitor;
  c.header('cache-control', 'no-store');
  return c.json(
    await components(getPool(), {
      platforms: m.platforms,
      diskPath: m.diskPath,
      runtimeMetrics: runtimeMetrics(m.runtimeMetricsUrl),
      timeZone: settings().front.timeZone,
      thresholds: m.thresholds,
    }),
  );
});
app.get('/metrics', auth, async (c) => {
  const m = settings().monitor;
  // The runtime's page is read once: for the schedules' states and appended to this page.
  const rt = runtimeMetrics(m.runtimeMetricsUrl);
  const [s, comp] = await Promise.all([
    frontStatus(getPool()),
    components(getPool(), {
      platforms: m.platforms,
      diskPath: m.diskPath,
      runtimeMetrics: rt,
      timeZone: settings().front.timeZone,
      thresholds: m.thresholds,
    }),
  ]);
  c.header('cache-control', 'no-store');
  c.header('content-type', 'text/plain; version=0.0.4; charset=utf-8');
  return c.body(await metricsPage(s, comp, await rt));
});
// The port is read-only: another method on one of its paths is 405 naming the ones it takes
// (docs/monitoring.md), an unknown path 404.
for (const path of ['/', '/status', '/components', '/metrics', '/healthz'])
  app.all(path, (c) => {
    c.header('Allow', 'GET, HEAD');
    throw new AppError('METHOD_NOT_ALLOWED', `不支持的请求方法 ${c.req.method}（此地址可用：GET, HEAD）(method not allowed)`);
  });

export default defineFunction({
  app,
  config: monitorConfig,
  async init() {
    const { database } = settings();
    openPool(database.url, 2, database.limits);
  },
  close: closePool,
});
