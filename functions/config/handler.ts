// config: the configuration port (8882), where the national platform configures the front with
// bundles signed by its SM2 key (docs/config-bundles.md). Served as the port's root function (stack.yml
// com.cdc-front.root), so it sees every path as sent.
//   GET  /healthz                      200 {ok:true} when the database answers — open
// Everything else needs the platform's bearer token (secret file config-token):
//   POST /bundles                      {bundle, sig}: signature checked first, then the document, then
//                                      every section applied in one transaction (201), or nothing
//   GET  /bundles                      ?limit=: every step (apply, rollback), newest first
//   GET  /bundles/current              the step in force and its bundle (404 before the first)
//   POST /bundles/:version/rollback    {reason?}: back to what that version left, in one transaction
//   GET  /version-check                this front's release against the latest one announced
//   POST /activation                   an authorization code file {bundle, sig}: the front activated on
//                                      the test or production network (docs/activation.md), 201
//   GET  /activation                   the activation in force and every code applied
//   GET  /schedules                    the scheduled functions and what fires them: a bundle's
//                                      schedules are written into their annotations at the gateway
//                                      (shared/configbundle/schedules.ts) after each apply or rollback,
//                                      at start and every few minutes
// Refusals are {error: {code, reason, issues?}} with the status of docs/config-bundles.md "Answers".
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import pkg from '../../package.json' with { type: 'json' };
import { configConfig, type ConfigSettings } from '../../shared/config/functions/config.js';
import {
  activeArea,
  applyBundle,
  BundleError,
  current,
  history,
  issuedAtWarning,
  parseBundle,
  rollbackTo,
  RollbackBody,
} from '../../shared/configbundle/store.js';
import { type Release, SignedBundle, StoredSection, type Bundle } from '../../shared/configbundle/schema.js';
import { SignatureError, verifyBundleSignature } from '../../shared/configbundle/sign.js';
import { bundleAuth, withinRequest } from '../../shared/configbundle/settings.js';
import { attemptOf, noteRefusal, type Attempt } from '../../shared/configbundle/refusals.js';
import { sourceAddress } from '../../shared/http/caller.js';
import { compareReleases, fetchRelease } from '../../shared/configbundle/release.js';
import { closePool, getPool, openPool, type Deadline } from '../../shared/db/index.js';
import { parseDuration } from '../../shared/time/duration.js';
import { defineFunction } from '../../shared/fn/index.js';
import { AppError, databaseError, errorOutcome, type FieldIssue } from '../../shared/http/errors.js';
import { databaseAnswers } from '../../shared/status/index.js';
import { log } from '../../shared/log/index.js';
import { NO_SUCH_FUNCTION, rawScheduleIssues, reconcileSchedules, scheduleIssues, type ScheduleOutcome } from '../../shared/configbundle/schedules.js';
import { activate, activation, ActivationError, activationHistory, verifyCode } from '../../shared/activation/index.js';
import { keyId as keyIdOf } from '../../shared/uplink/sm.js';

let parsed: ConfigSettings | undefined;
const settings = (): ConfigSettings => (parsed ??= configConfig.parse());

/**
 * One pass over the scheduled functions at a time (apply, rollback and the timer may meet). A pass
 * that cannot reach the gateway is logged and answered as an error; the bundle stays applied.
 */
let pass: Promise<unknown> = Promise.resolve();
function schedulesPass(why: string): Promise<ScheduleOutcome[] | { error: string }> {
  const run = async () => {
    const s = settings();
    try {
      const out = await reconcileSchedules(getPool(), s.gateway, { timeZone: s.front.timeZone });
      const problems = out.filter((o) => o.problem);
      if (problems.length) log('warn', 'schedules not applied', { why, functions: problems.map((p) => `${p.function}: ${p.problem}`).join('; ') });
      return out;
    } catch (err) {
      log('warn', 'schedules pass failed', { why, err: (err as Error).message });
      return { error: (err as Error).message };
    }
  };
  const next = pass.then(run, run);
  pass = next;
  return next;
}
const RECHECK_MS = 5 * 60_000;
let recheck: NodeJS.Timeout | null = null;

type Env = { Variables: { caller: string; callerAddress: string | null; attempt: Attempt } };
const app = new Hono<Env>();

/**
 * Every refusal is logged, and a failed signature or a token not accepted is kept in the audit
 * (shared/configbundle/refusals.ts, docs/config-bundles.md §3 "Refusals kept"). The answer waits for
 * that at most a second: a database that does not answer delays no refusal longer.
 */
const refuse = async (c: Context<Env>, e: BundleError) => {
  const noted = noteRefusal(poolOrNull(), {
    status: e.status,
    code: e.code,
    caller: c.get('caller') ?? null,
    address: c.get('callerAddress') ?? sourceAddress(c),
    method: c.req.method,
    path: c.req.path,
    ...c.get('attempt'),
  });
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([noted, new Promise((r) => (timer = setTimeout(r, 1000)))]);
  clearTimeout(timer);
  return c.json({ error: { code: e.code, reason: e.reason, ...(e.issues.length ? { issues: e.issues } : {}) }, applied: false }, e.status);
};
const poolOrNull = () => {
  try {
    return getPool();
  } catch {
    return null;
  }
};

app.onError((err, c) => {
  if (err instanceof BundleError) return refuse(c, err);
  if (err instanceof ActivationError) return refuse(c, new BundleError(err.status, err.code, `${err.reason} (nothing applied)`));
  if (err instanceof SignatureError) return refuse(c, new BundleError(err.code === 'no-platform-key' ? 503 : 422, err.code, `${err.reason} (nothing applied)`));
  return faultAnswer(err, c);
});

/**
 * Anything else — a database fault above all — in the port's own shape, as every other answer on it
 * (docs/config-bundles.md §3 "Answers"), never the HIS's: `timeout` or `unavailable` with Retry-After,
 * `internal` for a fault of the front's own. A statement or lock timeout rolled the work back; a
 * connection lost may have been lost at the commit, so a write says where to look.
 */
function faultAnswer(err: Error, c: Context<Env>) {
  const { status, answer, retryAfterS } = errorOutcome(err, c);
  if (retryAfterS) c.header('retry-after', String(retryAfterS));
  const kind = (err instanceof AppError ? err : databaseError(err))?.fault?.kind;
  const code = status === 500 ? 'internal' : status >= 500 ? (kind === 'timeout' ? 'timeout' : 'unavailable') : 'invalid-request';
  const said = /\(([^()]*)\)$/.exec(answer.desc)?.[1] ?? answer.desc;
  const unknown = c.req.method === 'POST' && kind !== undefined && kind !== 'timeout';
  const tail = unknown ? 'outcome unknown if it was being applied: GET /bundles/current tells' : 'nothing applied';
  return c.json({ error: { code, reason: `${said} (${tail})` }, applied: unknown ? null : false }, status);
}
/** Each national list a step changed that dropped codes in use, logged (codes and org codes only: no personal data). */
function logRemovedInUse(warnings: string[], step: string, by: string): void {
  for (const w of warnings) log('warn', 'national list change drops codes in use', { step, by, warning: w });
}

app.notFound((c) => refuse(c, new BundleError(404, 'not-found', `no such path on the configuration port: ${c.req.method} ${c.req.path}`)));

app.get('/healthz', async (c) => {
  c.header('cache-control', 'no-store');
  return (await databaseAnswers(getPool())) ? c.json({ ok: true }) : c.json({ ok: false }, 503);
});

const auth = bundleAuth(() => settings().bundles);
app.use('/bundles', auth);
app.use('/bundles/*', auth);
app.use('/version-check', auth);
app.use('/activation', auth);

/**
 * The document checked (parseBundle); a refusal of its format also names each schedule the connector
 * could not run, so that the platform mends everything in one round (docs/config-bundles.md "Answers").
 */
function parseWhole(text: string): Bundle {
  try {
    return parseBundle(text);
  } catch (err) {
    if (!(err instanceof BundleError) || err.code !== 'invalid-bundle' || err.issues.length === 0) throw err;
    const named = new Set(err.issues.map((i) => i.field));
    const cron = rawScheduleIssues(JSON.parse(text)).filter((i) => !named.has(i.field));
    throw cron.length ? new BundleError(err.status, err.code, err.reason, [...err.issues, ...cron]) : err;
  }
}

/**
 * Where an apply or a rollback that started now must be over by (BundleSettings.applyWithinMs), or
 * none; a caller's shorter `X-Timeout`, which the watchdog honours too (docs/runtime.md), shortens it
 * by the same margin.
 */
function deadlineFrom(started: number, xTimeout: string | undefined): Deadline | undefined {
  let within = settings().bundles.applyWithinMs;
  if (xTimeout) {
    let asked = 0;
    try {
      asked = parseDuration(xTimeout, 0);
    } catch {
      asked = 0;
    }
    if (asked > 0) within = within === null ? withinRequest(asked) : Math.min(within, withinRequest(asked));
  }
  return within === null ? undefined : { at: started + within, capMs: settings().database.limits.statementTimeoutMs };
}

app.post('/bundles', async (c) => {
  const deadline = deadlineFrom(Date.now(), c.req.header('x-timeout'));
  const text = await c.req.text();
  if (Buffer.byteLength(text) > settings().bundles.maxBodyBytes)
    throw new BundleError(413, 'too-large', `the request is over ${settings().bundles.maxBodyBytes} bytes`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new BundleError(400, 'invalid-request', 'the request is not JSON: POST {"bundle": "<the document>", "sig": {...}}');
  }
  // What the request claims, for the record of a refusal (never trusted, never the document itself).
  c.set('attempt', attemptOf(body));
  // An object without a signature; any other JSON (an array, a number, null) is not {bundle, sig}: 400 below.
  if (body && typeof body === 'object' && !Array.isArray(body) && !('sig' in body))
    throw new BundleError(
      422,
      'missing-signature',
      'the bundle carries no signature: POST {"bundle": "<the document>", "sig": {"alg", "uid", "keyId", "value"}} (nothing applied)',
    );
  const w = SignedBundle.safeParse(body);
  if (!w.success)
    throw new BundleError(
      400,
      'invalid-request',
      `the request is not {bundle, sig}: ${w.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ')}`,
    );
  // 1. The signature, over the document's exact bytes, before anything in it is read.
  const keyId = verifyBundleSignature(w.data, settings().bundles.platformKeys);
  // 2. The document and every section (zod), 3. all sections in one transaction.
  const bundle = parseWhole(w.data.bundle);
  const badCron = scheduleIssues(bundle);
  if (badCron.length) throw new BundleError(422, 'invalid-bundle', 'a schedule is not a cron expression the connector can run (nothing applied)', badCron);
  const done = await applyBundle(
    getPool(),
    { text: w.data.bundle, signature: w.data.sig.value, keyId, bundle },
    { by: c.get('caller'), via: c.get('callerAddress') },
    deadline,
  );
  if (done.replay) {
    // Already in force: its schedules written again (idempotent), in case the answer was lost before them.
    log('info', 'configuration bundle sent again: already in force', { version: bundle.version, seq: done.step.seq, by: c.get('caller') });
    const again = done.step.areas.includes('schedules') ? await schedulesPass(`bundle v${bundle.version} (sent again)`) : undefined;
    return c.json(
      { applied: true, replay: true, version: bundle.version, seq: done.step.seq, changed: [], effective: done.step.effective, schedules: again },
      200,
    );
  }
  log('info', 'configuration bundle applied', { version: bundle.version, issuer: bundle.issuer, areas: done.changed.join(' '), by: c.get('caller') });
  const issued = issuedAtWarning(bundle);
  if (issued) log('warn', 'configuration bundle issuedAt far from the clock', { version: bundle.version, issuedAt: bundle.issuedAt, by: c.get('caller') });
  logRemovedInUse(done.warnings, `bundle v${bundle.version}`, c.get('caller'));
  const warnings = [...(issued ? [issued] : []), ...done.warnings];
  const schedules = done.changed.includes('schedules') ? await schedulesPass(`bundle v${bundle.version}`) : undefined;
  return c.json(
    {
      applied: true,
      version: bundle.version,
      seq: done.step.seq,
      changed: done.changed,
      effective: done.step.effective,
      schedules,
      ...(warnings.length ? { warnings } : {}),
    },
    201,
  );
});

app.post('/activation', async (c) => {
  const text = await c.req.text();
  if (Buffer.byteLength(text) > 64 * 1024) throw new BundleError(413, 'too-large', 'an authorization code file is a few hundred bytes; this is over 64 KiB');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new BundleError(400, 'invalid-request', 'the request is not JSON: POST the authorization code file {"bundle": "<the code>", "sig": {...}}');
  }
  c.set('attempt', attemptOf(body));
  const v = verifyCode(body, settings().bundles.platformKeys);
  const a = await activate(getPool(), v, c.get('caller'));
  log('info', 'front activated', { org: a.orgCode, front: a.frontId, network: a.network, by: c.get('caller') });
  return c.json({ activated: true, activation: a }, 201);
});

app.get('/activation', async (c) => {
  c.header('cache-control', 'no-store');
  return c.json({ activation: await activation(getPool()), history: await activationHistory(getPool()) });
});

app.get('/bundles', async (c) => {
  const q = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) }).safeParse(c.req.query());
  if (!q.success) throw new BundleError(400, 'invalid-request', 'GET /bundles takes ?limit=1..1000');
  const steps = await history(getPool(), q.data.limit);
  c.header('cache-control', 'no-store');
  return c.json({ count: steps.length, steps });
});

app.get('/bundles/current', async (c) => {
  const q = z.object({ bundle: z.enum(['0', '1', 'false', 'true']).default('1') }).safeParse(c.req.query());
  if (!q.success) throw new BundleError(400, 'invalid-request', 'GET /bundles/current takes ?bundle=0 to leave the document out (1: with it, the default)');
  const cur = await current(getPool(), q.data.bundle === '1' || q.data.bundle === 'true');
  if (!cur) throw new BundleError(404, 'no-bundle', 'no configuration bundle has been applied on this front yet');
  c.header('cache-control', 'no-store');
  return c.json(cur);
});

app.post('/bundles/:version/rollback', async (c) => {
  const deadline = deadlineFrom(Date.now(), c.req.header('x-timeout'));
  const version = c.req.param('version');
  if (!/^\d{1,15}$/.test(version)) throw new BundleError(400, 'invalid-request', `a version is a number: ${version}`);
  const raw = (await c.req.text()).trim();
  let json: unknown = {};
  try {
    if (raw) json = JSON.parse(raw);
  } catch {
    throw new BundleError(400, 'invalid-request', 'the body is not JSON: {"reason": "…"}');
  }
  const body = RollbackBody.safeParse(json);
  if (!body.success) {
    // Each problem named, as the bundle's refusals name theirs: an unknown key, a reason over 500 characters.
    const issues = body.error.issues.flatMap((i): FieldIssue[] =>
      i.code === 'unrecognized_keys'
        ? i.keys.map((k) => ({ field: k, rule: i.code, message: `unknown key ${k}: rollback takes only "reason"` }))
        : [{ field: i.path.join('.') || '(body)', rule: i.code, message: i.message }],
    );
    throw new BundleError(
      400,
      'invalid-request',
      `rollback takes {"reason": "…"} (optional, 1 to 500 characters): ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`,
      issues,
    );
  }
  const done = await rollbackTo(
    getPool(),
    Number(version),
    { by: c.get('caller'), via: c.get('callerAddress') },
    body.data.reason ?? null,
    settings().bundles.platformKeys.map(keyIdOf),
    deadline,
  );
  log('info', 'configuration rolled back', { version: Number(version), areas: done.changed.join(' '), by: c.get('caller') });
  logRemovedInUse(done.warnings, `rollback to v${version}`, c.get('caller'));
  const schedules = done.changed.includes('schedules') ? await schedulesPass(`rollback to v${version}`) : undefined;
  return c.json({
    rolledBack: true,
    version: Number(version),
    seq: done.step.seq,
    changed: done.changed,
    effective: done.step.effective,
    schedules,
    ...(done.warnings.length ? { warnings: done.warnings } : {}),
  });
});

app.use('/schedules', auth);
app.get('/schedules', async (c) => {
  c.header('cache-control', 'no-store');
  const out = await schedulesPass('asked');
  return 'error' in out ? c.json({ error: { code: 'gateway', reason: out.error } }, 502) : c.json({ count: out.length, schedules: out });
});

app.get('/version-check', async (c) => {
  const running = pkg.version;
  const candidates: Array<Release & { source: string }> = [];
  const problems: string[] = [];
  const announced = await activeArea(getPool(), 'release');
  if (announced) {
    const r = StoredSection.release.safeParse(announced.content);
    if (r.success) candidates.push({ ...r.data, source: `bundle v${announced.version}` });
  }
  const url = settings().bundles.releaseUrl;
  if (url) {
    const got = await fetchRelease(url);
    if ('release' in got) candidates.push({ ...got.release, source: url });
    else problems.push(`${url}: ${got.error}`);
  }
  const latest = candidates.sort((a, b) => compareReleases(b.version, a.version))[0] ?? null;
  const newer = latest !== null && compareReleases(latest.version, running) > 0;
  const message = !latest
    ? `未获得最新版本信息 (no release announced${problems.length ? `; ${problems.join('; ')}` : ''})`
    : newer
      ? `有新版本 ${latest.version}，当前运行 ${running}，请安排升级 (a newer release exists${latest.url ? `: ${latest.url}` : ''})`
      : `当前版本 ${running} 已是最新 (up to date)`;
  c.header('cache-control', 'no-store');
  return c.json({ running, latest, newer, message, ...(problems.length ? { problems } : {}) });
});

export default defineFunction({
  app,
  config: configConfig,
  async init() {
    const { database } = settings();
    openPool(database.url, 2, database.limits);
    // A redeploy or a runtime restart puts stack.yml's schedules back: the bundle's are written again
    // at start, then every few minutes while this function runs. At start the gateway may not answer
    // yet, or not list every function yet (the runtime deploys them one after another, and this one
    // may come first): the first passes come soon — 1 s, doubling up to the recheck — and a pass
    // that could not ask the gateway, or missed a function the bundle names, starts that over.
    const tick = (ms: number) => {
      recheck = setTimeout(async () => {
        const out = await schedulesPass(ms === RECHECK_MS ? 'recheck' : 'start');
        const incomplete = 'error' in out || out.some((o) => o.problem === NO_SUCH_FUNCTION);
        tick(incomplete && ms >= RECHECK_MS ? 1000 : Math.min(ms * 2, RECHECK_MS));
      }, ms);
      recheck.unref();
    };
    tick(1000);
  },
  async close() {
    if (recheck) clearTimeout(recheck);
    await pass;
    await closePool();
  },
});
