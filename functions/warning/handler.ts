// warning: the early-warning loop's evaluation (docs/warning.md) — every record version the receive
// functions wrote is evaluated against the trigger lists, its evidence stored, and the pending case of
// each (org, patient, disease) derived. Scheduled every minute (stack.yml); nothing is lost between
// runs: the work is the record history, written in the record's own transaction.
//   POST /            the cron (X-Topic: cron-function), or a nudge: evaluates what is pending
//   GET  /cases       ?org=&state=&limit=: pending cases, overdue first (operators; the console's later)
//   GET  /cases/:id   a case with its evidence and state history (operators)
import { Hono } from 'hono';
import { z } from 'zod';
import { defineFunction } from '../../shared/fn/index.js';
import { AppError, handleError, validationError } from '../../shared/http/errors.js';
import { operatorAuth } from '../../shared/http/auth.js';
import { warningConfig, type WarningSettings } from '../../shared/config/functions.js';
import { closePool, getPool, openPool } from '../../shared/db/index.js';
import { CASE_STATES, caseDetail, decideCase, listCases, runWarnings } from '../../shared/warning/store.js';
import { channelsOf } from '../../shared/alerts/index.js';

const app = new Hono();
app.onError(handleError);

let parsed: WarningSettings | undefined;
const settings = (): WarningSettings => (parsed ??= warningConfig.parse());

const operator = operatorAuth(() => settings().operator);
app.use('/cases', operator);
app.use('/cases/*', operator);

app.post('/', async (c) => {
  const { warning: w, alerts } = settings();
  // Within the function's exec_timeout (stack.yml): stop taking batches after 40 s, the next run goes on.
  return c.json(await runWarnings(getPool(), { ...w, maxMs: 40_000, channels: channelsOf(alerts), frontName: alerts.frontName }));
});

const CaseQuery = z.object({
  org: z.string().min(1).max(50).optional(),
  state: z.enum(CASE_STATES).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

app.get('/cases', async (c) => {
  const q = CaseQuery.safeParse(c.req.query());
  if (!q.success) throw new AppError('BAD_REQUEST', `cases takes ?org=&state=&limit=: ${q.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const cases = await listCases(getPool(), { ...(q.data.org ? { orgCode: q.data.org } : {}), ...(q.data.state ? { state: q.data.state } : {}), limit: q.data.limit, now: new Date() });
  return c.json({ count: cases.length, cases });
});

app.get('/cases/:id', async (c) => {
  const id = c.req.param('id');
  if (!/^\d{1,18}$/.test(id)) throw new AppError('BAD_REQUEST', `case id is a number: ${id}`);
  const d = await caseDetail(getPool(), id);
  if (!d) throw new AppError('NOT_FOUND', `no case ${id}`);
  return c.json(d);
});

// Public health's verification of a case's card (operators until the console's sign-in lands).
const Verify = z.object({ by: z.string().trim().min(1).max(80), note: z.string().trim().max(200).optional() }).strict();
app.post('/cases/:id/verify', async (c) => {
  const id = c.req.param('id');
  if (!/^\d{1,18}$/.test(id)) throw new AppError('BAD_REQUEST', `case id is a number: ${id}`);
  const body = Verify.safeParse(await c.req.json().catch(() => null));
  if (!body.success) throw validationError(body.error, 'verify takes {by, note?}');
  const r = await decideCase(getPool(), id, 'verify', { actor: `operator/${body.data.by}`, reason: body.data.note ?? null }, null, { caseWindowDays: settings().warning.caseWindowDays });
  return c.json(r);
});

export default defineFunction({
  app,
  config: warningConfig,
  async init() {
    openPool(settings().database.url, 3, settings().database.limits); // parsed first: a bad setting fails the start
  },
  close: closePool,
});
