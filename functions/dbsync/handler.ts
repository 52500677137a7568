// dbsync: database sync (docs/dbsync.md). The HIS writes rows into the staging tables; this function
// takes them through the same pipeline as the API. Scheduled every minute (stack.yml cron); each run
// keeps taking batches while rows arrive (up to DBSYNC_RUN_MS). One run at a time per replica, one
// replica at a time per staging table (shared/dbsync). After taking rows, a run deletes the staging
// rows and outcomes past DBSYNC_RETAIN_DAYS, within DBSYNC_PURGE_MS (docs/dbsync.md "Retention").
//   POST /          the cron's run (open, as push's: it only takes what is waiting); answers the
//                   resources' runs, the tables whose part failed, whether rows still wait (the next
//                   run then starts at once) and what the purge deleted per table
//   POST /nudge     the HIS's "rows are waiting": on the data port, authenticated like the receive
//                   paths; starts a run, or one more pass of the running one
//   GET  /lag       rows waiting per resource and the oldest one's age (HIS-authenticated)
import { Hono } from 'hono';
import { defineFunction } from '../../shared/fn/index.js';
import { handleError, notFoundAnswer, okAnswer } from '../../shared/http/errors.js';
import { hisAuth } from '../../shared/http/auth.js';
import { dbsyncConfig, type DbsyncFunctionSettings } from '../../shared/config/functions/dbsync.js';
import { closePool, getPool, openPool } from '../../shared/db/index.js';
import { createCodeCache, lazyCodeCache, listsOfAllRecords } from '../../shared/codes/cache.js';
import { stagingLag, syncAll, type ResourceRun } from '../../shared/dbsync/index.js';
import { purgeStaging, type PurgeRun } from '../../shared/dbsync/purge.js';
import { log } from '../../shared/log/index.js';
import { nudger } from '../../shared/ingest/nudge.js';

let parsed: DbsyncFunctionSettings | undefined;
const settings = (): DbsyncFunctionSettings => (parsed ??= dbsyncConfig.parse());
const codes = lazyCodeCache(() => createCodeCache(getPool(), { refreshMs: settings().codes.refreshMs, lists: listsOfAllRecords() }));

let nudge: () => void = () => undefined;
/**
 * A run's answer: each table's part that took rows, was busy or failed; the tables whose part failed
 * (a database fault, docs/dbsync.md: the other tables went on); whether rows still wait (the run
 * ended with a table's part out of time); and what the purge deleted.
 */
type Run = {
  runs: ResourceRun[];
  failed: Array<{ resource: string; fault: string }>;
  more: boolean;
  purge: PurgeRun | { failed: string };
};
let running: Promise<Run> | null = null;
let again = false;
/** Set by close(): the run under way ends after its batch, and none starts (docs/dbsync.md "Stopping"). */
let stopping = false;

/**
 * One run at a time; a nudge during a run makes it pass once more. Then the purge. A run that ends
 * with rows still waiting starts the next one at once, as a nudge would, instead of leaving the
 * tables idle until the next cron minute (docs/dbsync.md "Runs back to back").
 */
function runOnce(trigger: string): Promise<Run> {
  if (running) {
    again = true;
    return running;
  }
  if (stopping) return Promise.resolve({ runs: [], failed: [], more: false, purge: notPurged() });
  const run = (async (): Promise<Run> => {
    try {
      const { runs, more } = await takeWhileArriving(trigger);
      const failed = runs.flatMap((r) => (r.failed ? [{ resource: r.resource, fault: r.failed }] : []));
      return { runs, failed, more, purge: stopping ? notPurged() : await purge() };
    } finally {
      running = null;
    }
  })();
  running = run;
  run.then(
    (r) => {
      if (r.more && !stopping) void runOnce('continue').catch((err) => log('error', 'dbsync run failed', { err: (err as Error).message }));
    },
    () => undefined,
  );
  return run;
}

async function takeWhileArriving(trigger: string): Promise<{ runs: ResourceRun[]; more: boolean }> {
  const started = Date.now();
  const runMs = settings().dbsync.runMs;
  const total: ResourceRun[] = [];
  let more = false;
  do {
    again = false;
    // Every pass within the run's own time: a pass started late does not get a whole DBSYNC_RUN_MS.
    const pass = await syncAll(getPool(), { settings: settings().dbsync, deadline: started + runMs, codes: await codes.get(), stopping: () => stopping });
    total.push(...pass.filter((r) => r.taken > 0 || r.busy || r.failed));
    // A pass begun with no time left takes nothing and finds nothing: the pass before it tells.
    if (pass.some((r) => r.taken > 0 || r.more)) more = pass.some((r) => r.more);
    if (pass.some((r) => r.taken > 0)) again = true;
  } while (again && !stopping && Date.now() - started < runMs);
  const taken = total.reduce((n, r) => n + r.taken, 0);
  if (total.some((r) => r.created + r.updated + r.retired > 0)) nudge();
  if (taken)
    log('info', 'dbsync run', { trigger, taken, rejected: total.reduce((n, r) => n + r.rejected, 0), ms: Date.now() - started, ...(more ? { more } : {}) });
  // Rows still wait and this run took some: the next run may start at once (a run that took none waits for the cron).
  return { runs: total, more: more && taken > 0 };
}

/** A stopping function leaves the purge to its next start. */
const notPurged = (): PurgeRun => ({ retainDays: settings().purge.retainDays, purged: {}, complete: false });

/** The retention purge: counts per table only in its log line. A failure is logged, the run's rows stay taken. */
async function purge(): Promise<PurgeRun | { failed: string }> {
  const started = Date.now();
  try {
    const p = await purgeStaging(getPool(), settings().purge);
    if (Object.keys(p.purged).length || !p.complete) log('info', 'dbsync purge', { ...p, ms: Date.now() - started });
    return p;
  } catch (err) {
    log('error', 'dbsync purge failed', { err: (err as Error).message });
    return { failed: (err as Error).message };
  }
}

const app = new Hono();
app.onError(handleError);
// On the data port: a path no route takes is answered in the envelope, as the receive paths' are.
app.notFound(notFoundAnswer);
const auth = hisAuth({ config: () => settings().hisAuth });

app.post('/', async (c) => {
  const trigger = c.req.header('x-topic') === 'cron-function' ? 'cron' : 'manual';
  const { runs, failed, more, purge } = await runOnce(trigger);
  return c.json({ trigger, runs, failed, more, purge });
});
app.post('/nudge', auth, async (c) => {
  void runOnce('nudge').catch((err) => log('error', 'dbsync run failed', { err: (err as Error).message }));
  return c.json(okAnswer(null, '已通知前置软件读取中间表 (sync started)'), 202);
});
// A HIS is shown the tables' lag, not which roles' rows wait: other hospitals' role names are the operator's to see.
app.get('/lag', auth, async (c) =>
  c.json(okAnswer(null, '中间表待处理情况 (staging lag)', { lag: (await stagingLag(getPool())).map(({ roles: _, ...l }) => l) })),
);

export default defineFunction({
  app,
  config: dbsyncConfig,
  async init() {
    const s = settings();
    openPool(s.database.url, 4, s.database.limits);
    const push = nudger(s.dbsync.pushNudgeUrl);
    const warning = nudger(s.dbsync.warningNudgeUrl);
    nudge = () => {
      push();
      warning();
    };
  },
  async close() {
    // A clean stop waits for the run under way (a nudge's or the cron's), which ends after the batch
    // it is taking: the pool is closed under no run (docs/dbsync.md "Stopping").
    stopping = true;
    await running?.catch(() => undefined);
    await codes.close();
    await closePool();
  },
});
