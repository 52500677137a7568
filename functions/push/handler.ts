// push: forwards outbox rows to every configured platform (docs/uplink.md). Scheduled every minute
// (stack.yml cron annotation) as the safety net; receive functions nudge it after each commit.
// Operators (basic auth with the gateway's credentials): GET /dead lists dead letters, POST /replay
// queues them again, GET /circuits and GET /lag show where each destination stands,
// POST /circuits/reset is "retry now".
import { Hono } from 'hono';
import { z } from 'zod';
import { defineFunction } from '../../shared/fn/index.js';
import { AppError, handleError } from '../../shared/http/errors.js';
import { operatorAuth } from '../../shared/http/auth.js';
import { pushConfig, type PushSettings } from '../../shared/config/functions/push.js';
import { closePool, getPool, openPool } from '../../shared/db/index.js';
import { circuits, deadLetters, lag, pushRun, replay, resetCircuit } from '../../shared/uplink/push.js';
import { log } from '../../shared/log/index.js';
import { checkBacklog, type AlertCheck } from '../../shared/alerts/index.js';
import { createCodeCache, listsOfAllRecords, type CodeCache } from '../../shared/codes/index.js';
import { destinationExists, destinations } from '../../shared/uplink/config.js';
import { handshakePlatform } from '../../shared/uplink/handshake.js';
import { reportToProvince, type ReportResult } from '../../shared/uplink/self-report.js';

let codes: CodeCache | undefined;
// Parsed once: at start (init), or at the first request when a test drives app.request() without init.
let parsed: PushSettings | undefined;
const settings = (): PushSettings => (parsed ??= pushConfig.parse());

const app = new Hono();
app.onError(handleError);

// Operator routes need the gateway's basic-auth credentials (docs/his-auth.md, "Operator routes");
// POST / (the cron and the receive functions' nudge) stays open: it only runs what is due.
const operator = operatorAuth(() => settings().operator);
for (const path of ['/dead', '/replay', '/circuits', '/circuits/*', '/lag']) app.use(path, operator);

/** Backlog alerts after each run (shared/alerts): a failed delivery is logged, never breaks the push (a bad setting fails the start). */
async function checkAlerts(db: ReturnType<typeof getPool>): Promise<AlertCheck[]> {
  try {
    return await checkBacklog(db, settings().alerts);
  } catch (err) {
    log('error', 'backlog alerts not checked', { err: (err as Error).message });
    return [];
  }
}

async function selfReport(db: ReturnType<typeof getPool>): Promise<ReportResult[]> {
  try {
    const dests = await destinations(db, settings().uplink.env);
    return await reportToProvince(db, dests.ready, settings().selfReport);
  } catch (err) {
    log('error', 'front report not run', { err: (err as Error).message });
    return [];
  }
}

/** The category of a push error (shared/uplink/push.ts writes them): what an open page may show. */
export function errorCategory(error: string): string {
  const http = /answered HTTP (\d{3})/.exec(error);
  if (http) return `平台应答 HTTP ${http[1]} (platform answered HTTP ${http[1]})`;
  if (/receipt not acknowledged/.test(error)) return '回执校验失败 (receipt not verified)';
  if (/another push run holds/.test(error)) return '推送进行中 (another run in progress)';
  if (/statement timeout/.test(error)) return '数据库语句超时 (statement timeout)';
  if (/lock timeout|deadlock/.test(error)) return '数据库锁等待 (lock timeout)';
  return '网络错误 (network error)';
}

/** A failed step of the run (a sweep, reading the destinations): its database fault, never its text. */
export function stepCategory(error: string): string {
  const c = errorCategory(error);
  return c.startsWith('网络错误') ? '步骤失败 (step failed; see the push log)' : c;
}

app.post('/', async (c) => {
  const trigger = c.req.header('x-topic') === 'cron-function' ? 'cron' : c.req.header('x-nudge') ? 'nudge' : 'manual';
  return c.json(await runOnce(trigger));
});

/** One push run, recorded in push_run and logged: what POST / does, and what an operator's replay or reset starts. */
async function runOnce(trigger: 'cron' | 'nudge' | 'manual') {
  const db = getPool();
  const started = new Date();
  // The sweeps and each destination run on their own: one that fails is logged, the others run.
  const { results, unconfigured, orphans, mapping, failedSteps } = await pushRun(db, {
    orphans: trigger === 'cron',
    orphanReleaseAfterH: settings().uplink.orphanReleaseAfterH,
    outboxRetentionDays: settings().uplink.outboxRetentionDays,
    env: settings().uplink.env,
    codes: async () => (codes ??= await createCodeCache(db, { refreshMs: settings().codes.refreshMs, lists: listsOfAllRecords() }).catch(() => undefined)),
  });
  const sum = (k: 'claimed' | 'sent' | 'failed') => results.reduce((n, r) => n + r[k], 0);
  // push_run.note is shown on the open status page and monitor port: error categories only, never
  // the platform's own text (it can quote a record). Operators see the full reasons on /circuits and /dead.
  const note = [
    ...failedSteps.map((f) => `${f.step}: ${stepCategory(f.error)}`),
    // Another run holding a destination is runs overlapping (a nudge beside the cron), no fault: log only.
    ...results.filter((r) => r.error && !ANOTHER_RUN.test(r.error)).map((r) => `${r.destination}: ${errorCategory(r.error!)}`),
    ...unconfigured.map((u) => `${u.name}: 未配置 (not configured)`),
  ]
    .join('; ')
    .slice(0, 480);
  await db
    .query(`INSERT INTO push_run (started_at, finished_at, trigger, claimed, sent, failed, note) VALUES ($1, now(), $2, $3, $4, $5, $6)`, [
      started,
      trigger,
      sum('claimed'),
      sum('sent'),
      sum('failed'),
      note || null,
    ])
    .catch((err) => log('error', 'push run not recorded', { err: (err as Error).message }));
  log('info', 'push run', {
    trigger,
    claimed: sum('claimed'),
    sent: sum('sent'),
    failed: sum('failed'),
    failedSteps: failedSteps.length,
    ms: Date.now() - started.getTime(),
  });
  const alerts = await checkAlerts(db);
  // The front's report of itself to the province rides on the schedule (docs/monitoring.md).
  const reports = trigger === 'cron' ? await selfReport(db) : [];
  return { trigger, results, unconfigured, orphans, mapping, failedSteps, alerts, reports, durationMs: Date.now() - started.getTime() };
}

const ANOTHER_RUN = /another push run holds/;

/**
 * After an operator's replay or reset the rows go at once, not at the next cron minute: a run is
 * started in the background (one that finds another holding a destination leaves it to that one).
 */
function runSoon(): void {
  void runOnce('manual').catch((err) => log('error', 'push run failed', { err: (err as Error).message }));
}

/** An operator's destination must be one the front has: a mistyped name is 404, not a success that did nothing. */
async function knownDestination(name: string): Promise<void> {
  if (!(await destinationExists(getPool(), name))) throw new AppError('NOT_FOUND', `上报目标不存在：${name} (no such destination)`);
}

// The uplink handshake of the acceptance self-test (docs/acceptance.md): each
// enabled platform probed with the hospital's TLS client certificate, then sent a batch of no records
// whose signed receipt proves the keys both ways (shared/uplink/handshake.ts); open like the
// function's root (the admin gateway), one run at a time.
let probing: Promise<unknown> | undefined;
app.get('/handshake', async (c) => {
  probing ??= (async () => {
    const dests = await destinations(getPool(), settings().uplink.env);
    const platforms = await Promise.all(dests.ready.map(async (d) => ({ name: d.name, kind: d.kind, url: d.url, ...(await handshakePlatform(d, 5000)) })));
    return { platforms, unconfigured: dests.unconfigured };
  })().finally(() => {
    probing = undefined;
  });
  return c.json(await probing);
});

app.get('/lag', async (c) => c.json({ lag: await lag(getPool()) }));
app.get('/circuits', async (c) => c.json({ circuits: await circuits(getPool()) }));

const Filter = z.object({
  destination: z.string().min(1).max(40),
  outboxIds: z
    .array(z.union([z.number().int().positive(), z.string().regex(/^\d+$/)]))
    .min(1)
    .max(10_000)
    .optional(),
  resource: z.string().min(1).max(40).optional(),
  orgCode: z.string().min(1).max(50).optional(),
});

app.get('/dead', async (c) => {
  const q = c.req.query();
  const limit = Math.min(1000, Number(q.limit ?? 200) || 200);
  const rows = await deadLetters(getPool(), { destination: q.destination, resource: q.resource, orgCode: q.orgCode }, limit);
  return c.json({ count: rows.length, dead: rows });
});

app.post('/replay', async (c) => {
  const parsed = Filter.safeParse(await c.req.json().catch(() => null));
  if (!parsed.success || !(parsed.data.outboxIds || parsed.data.resource || parsed.data.orgCode)) {
    throw new AppError('BAD_REQUEST', 'replay needs {destination} and outboxIds, resource or orgCode');
  }
  await knownDestination(parsed.data.destination);
  const r = await replay(getPool(), parsed.data);
  log('info', 'dead letters replayed', { destination: parsed.data.destination, replayed: r.replayed.length, superseded: r.superseded.length });
  if (r.replayed.length) runSoon();
  return c.json(r);
});

app.post('/circuits/reset', async (c) => {
  const body = z.object({ destination: z.string().min(1).max(40) }).safeParse(await c.req.json().catch(() => null));
  if (!body.success) throw new AppError('BAD_REQUEST', 'reset needs {destination}');
  await knownDestination(body.data.destination);
  await resetCircuit(getPool(), body.data.destination);
  runSoon();
  return c.json({ ok: true });
});

export default defineFunction({
  app,
  config: pushConfig,
  async init() {
    const cfg = settings();
    const pool = openPool(cfg.database.url, 4, cfg.database.limits);
    codes = await createCodeCache(pool, { refreshMs: cfg.codes.refreshMs, lists: listsOfAllRecords() }).catch(() => undefined);
  },
  async close() {
    await codes?.close();
    codes = undefined;
    await closePool();
  },
});
