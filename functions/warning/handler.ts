// warning: the early-warning loop's evaluation (docs/warning.md) — every record version the receive
// functions wrote is evaluated against the trigger lists, its evidence stored, and the pending case of
// each (org, patient, disease) derived. Scheduled every minute (stack.yml); nothing is lost between
// runs: the work is the record history, written in the record's own transaction.
//   POST /            the cron (X-Topic: cron-function), or a nudge: evaluates what is pending
//   GET  /cases       ?org=&state=&limit=: pending cases, overdue first (operators; the console's later)
//   GET  /cases/:id   a case with its evidence and state history (operators)
//   GET  /signals     ?org=&from=&to=&limit=: aberration signals with their series (operators)
//   GET  /duplicates  ?org=&days=: duplicate cards (which wins) and prompts the rules kept back (operators)
//   GET|POST /snooze, DELETE /snooze/:trigger   snoozing a noisy rule, with who and why (operators)
//   POST /aberration  ?day=yyyy-MM-dd: aberration detection now, that day recounted too (operators)
// Aberration detection (docs/aberration.md) runs from the same cron once an hour: one function fewer
// on faasd, whose Community Edition runs 15.
// The trigger lists, algorithm parameters and syndrome definitions in force are a configuration
// bundle's when the national platform sent them (docs/config-bundles.md), else the settings' own.
import { Hono } from 'hono';
import { z } from 'zod';
import { defineFunction } from '../../shared/fn/index.js';
import { AppError, handleError, validationError } from '../../shared/http/errors.js';
import { operatorAuth } from '../../shared/http/auth.js';
import { warningConfig, type WarningSettings } from '../../shared/config/functions/warning.js';
import { closePool, getPool, openPool } from '../../shared/db/index.js';
import {
  assignVerifier,
  CASE_STATES,
  caseDetail,
  decideCase,
  listCases,
  precision,
  runWarnings,
  selfCheck,
  type WarningRun,
} from '../../shared/warning/store.js';
import { formatLocal, parseTime } from '../../shared/time/index.js';
import { channelsOf } from '../../shared/alerts/index.js';
import { aberrationDue, listSignals, runAberration } from '../../shared/aberration/run.js';
import { addDays, localDay } from '../../shared/time/day.js';
import { notifiable } from '../../shared/warning/triggers.js';
import { lift, listDuplicates, listSnoozes, snooze } from '../../shared/warning/snooze.js';
import { definitionsInForce, triggersInForce } from '../../shared/configbundle/active.js';

const app = new Hono();
app.onError(handleError);

let parsed: WarningSettings | undefined;
const settings = (): WarningSettings => (parsed ??= warningConfig.parse());

const operator = operatorAuth(() => settings().operator);
app.use('/cases', operator);
app.use('/cases/*', operator);
app.use('/selfcheck', operator);
app.use('/precision', operator);
app.use('/signals', operator);
app.use('/duplicates', operator);
app.use('/snooze', operator);
app.use('/snooze/*', operator);
app.use('/aberration', operator);

const classA = (name: string): boolean => {
  try {
    return notifiable(name).classA;
  } catch {
    return false;
  }
};
const aberration = async (days?: string[]) => {
  const s = settings();
  return runAberration(getPool(), {
    defs: await definitionsInForce(getPool(), s.aberration.definitions),
    timeZone: s.front.timeZone,
    backfillDays: s.aberration.backfillDays,
    now: new Date(),
    classA,
    ...(days ? { days } : {}),
  });
};

/**
 * Nudges in this process (docs/warning.md "Reminders"): one is served at a time; a nudge arriving
 * meanwhile is folded into it — the one being served runs once more after its run — and is answered
 * at once, so that a burst of nudges never holds the function's max_inflight slots that the cron's
 * run and the operators' calls (cases, signals, snooze) need.
 */
let nudgeServed = false;
let nudgedAgain = false;

app.post('/', async (c) => {
  // Folded or served is decided before anything is awaited: nudges arriving together must not all
  // find none being served while the first one still reads its settings.
  const nudge = !!c.req.header('x-nudge');
  if (nudge && nudgeServed) {
    nudgedAgain = true;
    return c.json({ skipped: 'folded into the nudge being served', evaluated: 0 });
  }
  if (nudge) nudgeServed = true;
  let run: WarningRun;
  try {
    const { warning: w, alerts } = settings();
    // Within the function's exec_timeout (stack.yml): stop taking batches after 40 s, the next run goes on.
    // The trigger list in force is read for each run (one small query): a nudge served again and again
    // under steady traffic would otherwise evaluate with the list it read first, long after a bundle
    // replaced it (docs/config-bundles.md "triggers": from the warning function's next run).
    const once = async () =>
      runWarnings(getPool(), {
        ...w,
        triggers: await triggersInForce(getPool(), w.triggers),
        maxMs: 40_000,
        channels: channelsOf(alerts),
        frontName: alerts.frontName,
        timeZone: settings().front.timeZone,
      });
    do {
      nudgedAgain = false;
      run = await once();
      // A nudge that finds another run busy (the cron's, or another replica's) waits for it and runs
      // again: the records that nudged it may have committed after that run claimed its rows.
      for (let i = 0; run.skipped && nudge && i < 20; i++) {
        await new Promise((r) => setTimeout(r, 100));
        run = await once();
      }
    } while (nudge && nudgedAgain);
  } finally {
    if (nudge) nudgeServed = false;
  }
  // Aberration detection once an hour, by the cron (the last run's time is in the database).
  const due = c.req.header('x-topic') === 'cron-function' && (await aberrationDue(getPool(), new Date(), 55 * 60_000));
  return c.json(due ? { ...run, aberration: await aberration() } : run);
});

const Day = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'a day yyyy-MM-dd')
  .refine((d) => parseTime(d) !== null, 'a real day');

app.post('/aberration', async (c) => {
  const q = z.object({ day: Day.optional() }).safeParse(c.req.query());
  if (!q.success) throw validationError(q.error, 'aberration takes ?day=yyyy-MM-dd');
  return c.json(await aberration(q.data.day ? [q.data.day] : undefined));
});

app.get('/signals', async (c) => {
  const tz = settings().front.timeZone;
  const q = z
    .object({
      org: z.string().min(1).max(50).optional(),
      from: Day.optional(),
      to: Day.optional(),
      limit: z.coerce.number().int().min(1).max(5000).default(500),
    })
    .safeParse(c.req.query());
  if (!q.success) throw validationError(q.error, 'signals takes ?org=&from=&to=&limit=');
  const to = q.data.to ?? localDay(new Date(), tz);
  const from = q.data.from ?? addDays(to, -29);
  const signals = await listSignals(getPool(), { ...(q.data.org ? { org: q.data.org } : {}), from, to, limit: q.data.limit });
  const definitions = (await definitionsInForce(getPool(), settings().aberration.definitions)).version;
  return c.json({ from, to, count: signals.length, definitions, signals });
});

const CaseQuery = z.object({
  org: z.string().min(1).max(50).optional(),
  state: z.enum(CASE_STATES).optional(),
  dept: z.string().min(1).max(64).optional(),
  doctor: z.string().min(1).max(80).optional(),
  verifier: z.string().min(1).max(80).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

app.get('/cases', async (c) => {
  const q = CaseQuery.safeParse(c.req.query());
  if (!q.success)
    throw new AppError(
      'BAD_REQUEST',
      `cases takes ?org=&state=&dept=&doctor=&limit=: ${q.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  const { org, state, dept, doctor, verifier, limit } = q.data;
  const cases = await listCases(getPool(), {
    ...(org ? { orgCode: org } : {}),
    ...(state ? { state } : {}),
    ...(dept ? { dept } : {}),
    ...(doctor ? { doctor } : {}),
    ...(verifier ? { verifier } : {}),
    limit,
    now: new Date(),
  });
  return c.json({ count: cases.length, cases });
});

app.get('/cases/:id', async (c) => {
  const id = c.req.param('id');
  if (!/^\d{1,18}$/.test(id)) throw new AppError('BAD_REQUEST', `case id is a number: ${id}`);
  const d = await caseDetail(getPool(), id);
  if (!d) throw new AppError('NOT_FOUND', `no case ${id}`);
  return c.json(d);
});

// The missed-report self-check of a day (default yesterday, in the hospital's zone).
app.get('/selfcheck', async (c) => {
  const tz = settings().front.timeZone;
  const q = z.object({ org: z.string().min(1).max(50), day: Day.optional() }).safeParse(c.req.query());
  if (!q.success) throw validationError(q.error, 'selfcheck takes ?org=&day=yyyy-MM-dd');
  const day = q.data.day ?? formatLocal(new Date(Date.now() - 86_400_000), tz).slice(0, 10);
  return c.json(await selfCheck(getPool(), { orgCode: q.data.org, day, timeZone: tz }));
});

// Precision of each trigger over the cases opened in [from, to] (default the last 30 days).
app.get('/precision', async (c) => {
  const tz = settings().front.timeZone;
  const q = z.object({ org: z.string().min(1).max(50).optional(), from: Day.optional(), to: Day.optional() }).safeParse(c.req.query());
  if (!q.success) throw validationError(q.error, 'precision takes ?org=&from=&to= (yyyy-MM-dd)');
  const to = q.data.to ? new Date(parseTime(q.data.to, tz)!.getTime() + 86_400_000) : new Date();
  const from = q.data.from ? parseTime(q.data.from, tz)! : new Date(to.getTime() - 30 * 86_400_000);
  return c.json({
    from: formatLocal(from, tz),
    to: formatLocal(to, tz),
    triggers: await precision(getPool(), { ...(q.data.org ? { orgCode: q.data.org } : {}), from, to }),
  });
});

// Public health's verification of a case's card, for scripts (people verify on the console's case
// page: docs/console.md "Verifying a case").
const Verify = z.object({ by: z.string().trim().min(1).max(80), note: z.string().trim().max(200).optional() }).strict();
app.post('/cases/:id/verify', async (c) => {
  const id = c.req.param('id');
  if (!/^\d{1,18}$/.test(id)) throw new AppError('BAD_REQUEST', `case id is a number: ${id}`);
  const body = Verify.safeParse(await c.req.json().catch(() => null));
  if (!body.success) throw validationError(body.error, 'verify takes {by, note?}');
  const r = await decideCase(getPool(), id, 'verify', { actor: `operator/${body.data.by}`, reason: body.data.note ?? null }, null, {
    caseWindowDays: settings().warning.caseWindowDays,
  });
  return c.json(r);
});

// Public health assigns a case's verification to a person (the verifier's queue: /cases?verifier=).
const Assign = z.object({ verifier: z.string().trim().min(1).max(80), by: z.string().trim().min(1).max(80) }).strict();
app.post('/cases/:id/assign', async (c) => {
  const id = c.req.param('id');
  if (!/^\d{1,18}$/.test(id)) throw new AppError('BAD_REQUEST', `case id is a number: ${id}`);
  const body = Assign.safeParse(await c.req.json().catch(() => null));
  if (!body.success) throw validationError(body.error, 'assign takes {verifier, by}');
  return c.json(await assignVerifier(getPool(), id, body.data.verifier, `operator/${body.data.by}`, new Date()));
});

app.get('/duplicates', async (c) => {
  const q = z.object({ org: z.string().min(1).max(50).optional(), days: z.coerce.number().int().min(1).max(366).default(30) }).safeParse(c.req.query());
  if (!q.success) throw validationError(q.error, 'duplicates takes ?org=&days=');
  return c.json(await listDuplicates(getPool(), { ...(q.data.org ? { org: q.data.org } : {}), since: new Date(Date.now() - q.data.days * 86_400_000) }));
});

const knownTriggers = async (): Promise<Set<string>> => {
  const t = await triggersInForce(getPool(), settings().warning.triggers);
  return new Set(['icd10', ...t.labTests.map((x) => x.id), ...t.specialDrugs.map((x) => x.id), ...t.keywords.map((x) => x.id)]);
};
const SnoozeBody = z
  .object({ trigger: z.string().min(1).max(60), until: z.string().min(1), reason: z.string().trim().min(2).max(300), by: z.string().trim().min(1).max(80) })
  .strict();
app.get('/snooze', async (c) => c.json({ snoozes: await listSnoozes(getPool(), new Date()) }));
app.post('/snooze', async (c) => {
  const body = SnoozeBody.safeParse(await c.req.json().catch(() => null));
  if (!body.success) throw validationError(body.error, 'snooze takes {trigger, until, reason, by}');
  const until = parseTime(body.data.until, settings().front.timeZone);
  if (!until)
    throw new AppError('VALIDATION_FAILED', '暂停截止时间格式不对 (until is not a time)', [
      { field: 'until', rule: 'datetime', message: 'yyyy-MM-dd HH:mm:ss' },
    ]);
  return c.json(
    await snooze(getPool(), {
      trigger: body.data.trigger,
      until,
      reason: body.data.reason,
      actor: `operator/${body.data.by}`,
      now: new Date(),
      known: await knownTriggers(),
    }),
    201,
  );
});
app.delete('/snooze/:trigger', async (c) => {
  const by = z.string().trim().min(1).max(80).safeParse(c.req.query('by'));
  if (!by.success) throw validationError(by.error, 'lifting a snooze takes ?by=<who>');
  return c.json({ trigger: c.req.param('trigger'), lifted: await lift(getPool(), c.req.param('trigger'), `operator/${by.data}`, new Date()) });
});

export default defineFunction({
  app,
  config: warningConfig,
  async init() {
    openPool(settings().database.url, 3, settings().database.limits); // parsed first: a bad setting fails the start
  },
  close: closePool,
});
