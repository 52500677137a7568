// day-close: closes each day (日终处理, docs/day-close.md) — completeness checks and the daily
// summary, forwarded to the platforms as records of their own and kept in day_close for the console.
// Scheduled every 15 minutes (stack.yml); the function itself decides, in the hospital's zone,
// which closes are due (T+0 from 23:30, T+1 of yesterday from 06:00) and does each once.
//   POST /        the cron (X-Topic: cron-function): runs what is due and not done yet
//   POST /run     {orgCode?, day, kind}: recomputes one day (operators); without orgCode, every active org
//   GET  /days    ?org=&from=&to=: the ledger (yyyy-MM-dd, default the last 7 days)
// /run and /days need the operator credentials (basic auth, the gateway's; docs/day-close.md).
import { Hono } from 'hono';
import { z } from 'zod';
import { defineFunction } from '../../shared/fn/index.js';
import { AppError, handleError } from '../../shared/http/errors.js';
import { operatorAuth } from '../../shared/http/auth.js';
import { dayCloseConfig, type DayCloseSettings } from '../../shared/config/functions/day-close.js';
import { closePool, getPool, openPool } from '../../shared/db/index.js';
import { activeOrgs, addDays, closeDay, isDay, listDays, localDay, runDue } from '../../shared/dayclose/index.js';

const app = new Hono();
app.onError(handleError);

// Parsed once: at start (init), or at the first request when a test drives app.request() without init.
let parsed: DayCloseSettings | undefined;
const settings = (): DayCloseSettings => (parsed ??= dayCloseConfig.parse());
const config = () => settings().dayClose;

// Operator routes need the gateway's basic-auth credentials (docs/day-close.md); POST / (the cron) stays open.
const operator = operatorAuth(() => settings().operator);
app.use('/run', operator);
app.use('/days', operator);

const Day = z.string().refine(isDay, 'a day yyyy-MM-dd');

app.post('/', async (c) => {
  const k = config();
  const trigger = c.req.header('x-topic') === 'cron-function' ? 'cron' : 'manual';
  const run = await runDue(getPool(), { ...k, trigger, ...(k.orgs ? { orgs: k.orgs } : {}) });
  return c.json(run);
});

const RunBody = z.object({
  orgCode: z.string().min(1).max(50).optional(),
  day: Day,
  kind: z.enum(['T+0', 'T+1']),
});

app.post('/run', async (c) => {
  const parsed = RunBody.safeParse(await c.req.json().catch(() => null));
  if (!parsed.success)
    throw new AppError(
      'BAD_REQUEST',
      `run needs {day: yyyy-MM-dd, kind: T+0|T+1, orgCode?}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  const { orgCode, day, kind } = parsed.data;
  const k = config();
  const db = getPool();
  const today = localDay(new Date(), k.timeZone);
  if (day > today) throw new AppError('BAD_REQUEST', `day ${day} lies in the future`);
  // A T+1 is the day's final figures (docs/day-close.md): not before the day is over.
  if (kind === 'T+1' && day === today)
    throw new AppError('BAD_REQUEST', `day ${day} is not over: its T+1 close can run from 00:00 (${k.timeZone}) of the next day; T+0 gives today's picture`);
  const orgs = orgCode ? [orgCode] : (k.orgs ?? (await activeOrgs(db, addDays(day, -30))));
  const closes = [];
  for (const org of orgs) closes.push(await closeDay(db, org, day, kind, { ...k, trigger: 'manual' }));
  const failed = closes.filter((x) => x.status === 'failed').length;
  return c.json({ day, kind, closes, failed }, failed ? 500 : 200);
});

app.get('/days', async (c) => {
  const k = config();
  const q = z
    .object({ org: z.string().min(1).max(50).optional(), from: Day.optional(), to: Day.optional(), limit: z.coerce.number().int().min(1).max(5000).optional() })
    .safeParse(c.req.query());
  if (!q.success)
    throw new AppError(
      'BAD_REQUEST',
      `days takes ?org=&from=yyyy-MM-dd&to=yyyy-MM-dd&limit=: ${q.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  const toDay = q.data.to ?? localDay(new Date(), k.timeZone);
  const fromDay = q.data.from ?? addDays(toDay, -6);
  const days = await listDays(getPool(), { fromDay, toDay, ...(q.data.org ? { orgCode: q.data.org } : {}), ...(q.data.limit ? { limit: q.data.limit } : {}) });
  return c.json({ from: fromDay, to: toDay, count: days.length, days });
});

export default defineFunction({
  app,
  config: dayCloseConfig,
  async init() {
    openPool(settings().database.url, 3, settings().database.limits); // parsed first: a bad setting fails the start
  },
  close: closePool,
});
