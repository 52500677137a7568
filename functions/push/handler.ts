// push: forwards outbox rows to every configured platform. Scheduled every minute (stack.yml
// cron annotation) as the safety net; receive functions nudge it after each commit.
import { Hono } from 'hono';
import { defineFunction } from '../../shared/fn/index.js';
import { handleError } from '../../shared/http/errors.js';
import { loadConfig } from '../../shared/config/index.js';
import { closePool, getPool, openPool } from '../../shared/db/index.js';
import { destinations, lag, pushDestination, type PushResult } from '../../shared/uplink/push.js';
import { log } from '../../shared/log/index.js';
import { sweepOrphans } from '../../shared/ingest/orphans.js';

const app = new Hono();
app.onError(handleError);

app.post('/', async (c) => {
  const db = getPool();
  const trigger = c.req.header('x-topic') === 'cron-function' ? 'cron' : c.req.header('x-nudge') ? 'nudge' : 'manual';
  const started = new Date();
  // Held children whose parent did arrive (concurrent commits) or never will (expiry) go first.
  const orphans = trigger === 'cron' ? await sweepOrphans(db) : { linked: 0, expired: 0 };
  const { ready, unconfigured } = await destinations(db);
  const results: PushResult[] = [];
  for (const d of ready) results.push(await pushDestination(db, d));
  const sum = (k: 'claimed' | 'sent' | 'failed') => results.reduce((n, r) => n + r[k], 0);
  const note = [...results.filter((r) => r.error).map((r) => `${r.destination}: ${r.error}`), ...unconfigured.map((n) => `${n}: no URL configured`)]
    .join('; ')
    .slice(0, 480);
  await db.query(
    `INSERT INTO push_run (started_at, finished_at, trigger, claimed, sent, failed, note) VALUES ($1, now(), $2, $3, $4, $5, $6)`,
    [started, trigger, sum('claimed'), sum('sent'), sum('failed'), note || null],
  );
  log('info', 'push run', { trigger, claimed: sum('claimed'), sent: sum('sent'), failed: sum('failed'), ms: Date.now() - started.getTime() });
  return c.json({ trigger, results, unconfigured, orphans, durationMs: Date.now() - started.getTime() });
});

app.get('/lag', async (c) => c.json({ lag: await lag(getPool()) }));

export default defineFunction({
  app,
  async init() {
    const cfg = loadConfig();
    openPool(cfg.databaseUrl, 4);
  },
  close: closePool,
});
