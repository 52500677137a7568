/**
 * A bundle's `schedules` made effective (docs/config-bundles.md "Schedules"): the national platform
 * says when each scheduled function fires, and the config function writes that, as OpenFaaS does it,
 * into the function's `schedule` annotation through the gateway's API (GET /system/function/<name>,
 * PUT /system/functions). The cron-connector — OpenFaaS's, or this project's runtime — follows the
 * annotation. stack.yml's own schedule is kept beside it in the annotation `com.cdc-front.schedule.base`,
 * so a rollback to a version without the function (or without `schedules`) puts it back.
 *
 * A bundle's expressions are in the hospital's zone. The connector's zone is what the gateway's
 * /system/info says (`cronTimezone`, this project's runtime) or UTC (OpenFaaS's connector): the hour
 * field is moved by the difference, and an expression that would then cross midnight on a restricted
 * day, month or weekday is not applied (it cannot be said in the connector's zone), with the reason.
 *
 * The outcome of every pass is kept in `schedule_state` (infra/db/0037_schedule_state.sql), and the
 * hospital port each function is served on (its `com.cdc-front.port` annotation) in `gateway_port`
 * (infra/db/0038_gateway_port.sql): the console's settings page shows both. A pass runs after each apply or rollback, when the config function
 * starts (a redeploy or a runtime restart puts stack.yml's schedules back) and every few minutes while
 * it runs.
 */
import { Cron } from 'croner';
import { z } from 'zod';
import { withTx, type Db } from '../db/index.js';
import type { FieldIssue } from '../http/errors.js';
import { basicAuthHeader } from '../http/basic.js';
import { zoneOffsetMinutes } from '../time/index.js';
import { StoredSection, type Bundle } from './schema.js';
import { activeArea } from './store.js';

/** The problem of a function the bundle names and the gateway does not list (yet: the config function retries soon). */
export const NO_SUCH_FUNCTION = 'no such function at the gateway';

/** Where stack.yml's own schedule is kept while a bundle's is in force. */
export const BASE_ANNOTATION = 'com.cdc-front.schedule.base';
const CRON_TOPIC = 'cron-function';

/** The gateway's address and its basic-auth credentials (the secret files basic-auth-user/-password). */
export interface GatewayAccess {
  url: string;
  user: string;
  password: string;
}

export const ScheduleOutcome = z.object({
  function: z.string(),
  /** The expression in force at the connector, in the hospital's zone; null: none (a problem). */
  schedule: z.string().nullable(),
  /** As written into the annotation (the connector's zone). */
  written: z.string().nullable(),
  /** stack.yml's own schedule, when a bundle's replaced it. */
  base: z.string().nullable(),
  source: z.enum(['bundle', 'stack']),
  bundleVersion: z.number().int().nullable(),
  problem: z.string().nullable(),
});
export type ScheduleOutcome = z.infer<typeof ScheduleOutcome>;

/**
 * Every schedule of a bundle parses as the connector will parse it (croner); the zod schema checks
 * only the shape. Returns the failing fields (empty: all good).
 */
export function scheduleIssues(b: Bundle): FieldIssue[] {
  return (b.sections.schedules ?? []).flatMap((s, i) => cronIssues(s.schedule, i));
}

/** The schedules of a document as far as they can be read: the entries that name an expression. */
const LooseSchedules = z.object({ sections: z.object({ schedules: z.array(z.unknown()) }) });
const LooseEntry = z.object({ schedule: z.string() });

/**
 * The cron issues of a document that failed its format check, so that one refusal names every
 * problem (docs/config-bundles.md "Answers"): each entry that has an expression is tried, whatever
 * else is wrong with the document.
 */
export function rawScheduleIssues(json: unknown): FieldIssue[] {
  const doc = LooseSchedules.safeParse(json);
  if (!doc.success) return [];
  return doc.data.sections.schedules.flatMap((e, i) => {
    const entry = LooseEntry.safeParse(e);
    return entry.success ? cronIssues(entry.data.schedule, i) : [];
  });
}

function cronIssues(expr: string, i: number): FieldIssue[] {
  try {
    new Cron(expr, { paused: true }).stop();
    return [];
  } catch (err) {
    return [{ field: `sections.schedules[${i}].schedule`, rule: 'cron', message: `${expr}: ${(err as Error).message}` }];
  }
}

/** The hour field's values ("*", "5", "1-4", "*\/6", "8-18/2", lists of these), or null if not one. */
function hours(field: string): number[] | null {
  const out = new Set<number>();
  for (const item of field.split(',')) {
    const m = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(item);
    if (!m) return null;
    const from = m[1] === '*' ? 0 : Number(m[2]);
    const to = m[1] === '*' ? 23 : m[3] !== undefined ? Number(m[3]) : m[4] !== undefined ? 23 : from;
    const step = m[4] !== undefined ? Number(m[4]) : 1;
    if (from > 23 || to > 23 || from > to || step < 1) return null;
    for (let h = from; h <= to; h += step) out.add(h);
  }
  return [...out].sort((a, b) => a - b);
}

/**
 * A five-field expression in one zone said in a zone `offsetMinutes` behind it (hospital − connector:
 * +480 from Asia/Shanghai to UTC). Only whole hours move; a day that the move would change is refused
 * when the expression restricts days, months or weekdays.
 */
export function shiftCron(expr: string, offsetMinutes: number): { expr: string } | { problem: string } {
  if (offsetMinutes === 0) return { expr };
  if (offsetMinutes % 60 !== 0) return { problem: `the connector's zone differs from the hospital's by ${offsetMinutes} minutes, not whole hours` };
  const f = expr.trim().split(/\s+/);
  if (f.length !== 5) return { problem: `${expr}: not five fields` };
  const [min, hour, dom, mon, dow] = f as [string, string, string, string, string];
  if (hour === '*') return { expr };
  const hs = hours(hour);
  if (!hs) return { problem: `${expr}: the hour field cannot be moved to the connector's zone` };
  const by = offsetMinutes / 60;
  const moved = hs.map((h) => h - by);
  if (moved.some((h) => h < 0 || h > 23) && (dom !== '*' || mon !== '*' || dow !== '*'))
    return { problem: `${expr}: in the connector's zone it would fall on another day, and the expression restricts days` };
  const list = [...new Set(moved.map((h) => (h + 24) % 24))].sort((a, b) => a - b);
  return { expr: [min, list.join(','), dom, mon, dow].join(' ') };
}

/** The inverse, for showing what a connector-zone expression means in the hospital's zone. */
const unshift = (expr: string, offsetMinutes: number): string => {
  const r = shiftCron(expr, -offsetMinutes);
  return 'expr' in r ? r.expr : expr;
};

const Status = z
  .object({
    name: z.string(),
    annotations: z.record(z.string(), z.string()).nullish(),
  })
  .passthrough();
type Status = z.infer<typeof Status>;

class Gateway {
  constructor(private readonly g: GatewayAccess) {}

  private async call(method: string, path: string, body?: unknown): Promise<Response> {
    const res = await fetch(new URL(path, this.g.url), {
      method,
      headers: {
        authorization: basicAuthHeader(this.g),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok) throw new Error(`gateway ${method} ${path}: ${res.status} ${(await res.text()).slice(0, 200).trim()}`);
    return res;
  }

  async connectorZone(): Promise<string> {
    const info = z
      .object({ cronTimezone: z.string().optional() })
      .passthrough()
      .parse(await (await this.call('GET', '/system/info')).json());
    return info.cronTimezone ?? 'UTC';
  }

  async functions(): Promise<Status[]> {
    return z.array(Status).parse(await (await this.call('GET', '/system/functions')).json());
  }

  /** PUT /system/functions with the function as it is deployed, its annotations replaced. */
  async annotate(s: Status, annotations: Record<string, string>): Promise<void> {
    const { name, namespace, envProcess, image, envVars, labels, secrets, limits, requests, constraints, readOnlyRootFilesystem } = s as Record<
      string,
      unknown
    >;
    const body = { service: name, image, namespace, envProcess, envVars, labels, secrets, limits, requests, constraints, readOnlyRootFilesystem, annotations };
    await this.call('PUT', '/system/functions', body);
  }
}

export interface ReconcileOptions {
  /** The hospital's zone (TZ_LOCAL), in which a bundle's expressions are written. */
  timeZone: string;
  now?: Date;
}

/**
 * One pass: every scheduled function's annotation brought in line with the bundle's `schedules` in
 * force (or back to stack.yml's), the outcome written to schedule_state and returned. Throws only when
 * the gateway cannot be asked at all (the state is then left as the last pass wrote it).
 */
export async function reconcileSchedules(db: Db, gateway: GatewayAccess | null, o: ReconcileOptions): Promise<ScheduleOutcome[]> {
  const area = await activeArea(db, 'schedules');
  const parsed = area ? StoredSection.schedules.safeParse(area.content) : null;
  const wanted = new Map((parsed?.success ? parsed.data : []).map((s) => [s.function, s.schedule]));
  const version = area?.version ?? null;
  const out: ScheduleOutcome[] = [];
  const problem = (fn: string, why: string): ScheduleOutcome => ({
    function: fn,
    schedule: null,
    written: null,
    base: null,
    source: 'bundle',
    bundleVersion: version,
    problem: why,
  });

  if (!gateway) {
    for (const fn of wanted.keys()) out.push(problem(fn, 'the config function has no gateway credentials (basic-auth-user, basic-auth-password)'));
    await record(db, out, null);
    return out;
  }
  const gw = new Gateway(gateway);
  const now = o.now ?? new Date();
  const zone = await gw.connectorZone();
  const offset = zoneOffsetMinutes(o.timeZone, now) - zoneOffsetMinutes(zone, now);
  const seen = new Set<string>();
  const listed = await gw.functions();
  for (const s of listed) {
    const a = { ...(s.annotations ?? {}) };
    const cron = a.topic === CRON_TOPIC;
    const want = wanted.get(s.name);
    seen.add(s.name);
    if (want !== undefined && !cron) {
      out.push(problem(s.name, 'not a scheduled function (its annotations carry no topic: cron-function)'));
      continue;
    }
    if (!cron) continue;
    const current = a.schedule ?? null;
    const base = a[BASE_ANNOTATION] ?? null;
    if (want !== undefined) {
      const moved = shiftCron(want, offset);
      if ('problem' in moved) {
        out.push({ ...problem(s.name, moved.problem), schedule: current && unshift(current, offset), written: current, base });
        continue;
      }
      if (current !== moved.expr) await gw.annotate(s, { ...a, schedule: moved.expr, [BASE_ANNOTATION]: base ?? current ?? '' });
      out.push({ function: s.name, schedule: want, written: moved.expr, base: base ?? current, source: 'bundle', bundleVersion: version, problem: null });
    } else {
      let inForce = current;
      if (base !== null) {
        const { [BASE_ANNOTATION]: _kept, ...rest } = a;
        if (base === '') delete rest.schedule;
        else rest.schedule = base;
        await gw.annotate(s, rest);
        inForce = base || null;
      }
      out.push({
        function: s.name,
        schedule: inForce && unshift(inForce, offset),
        written: inForce,
        base: null,
        source: 'stack',
        bundleVersion: null,
        problem: null,
      });
    }
  }
  for (const fn of wanted.keys()) if (!seen.has(fn)) out.push(problem(fn, NO_SUCH_FUNCTION));
  await record(db, out, portsOf(listed));
  return out;
}

/** Each function's hospital port (com.cdc-front.port) and whether it is the port's root function. */
function portsOf(listed: Status[]): Array<{ fn: string; port: number; root: boolean }> {
  return listed.flatMap((s) => {
    const port = Number(s.annotations?.['com.cdc-front.port']);
    return Number.isInteger(port) && port > 0 && port < 65536 ? [{ fn: s.name, port, root: s.annotations?.['com.cdc-front.root'] === 'true' }] : [];
  });
}

/** One pass's findings, replacing the last (ports: null when the gateway was not asked). */
async function record(db: Db, rows: ScheduleOutcome[], ports: Array<{ fn: string; port: number; root: boolean }> | null): Promise<void> {
  await withTx(db, async (tx) => {
    if (ports) {
      await tx.query('DELETE FROM gateway_port');
      for (const p of ports)
        await tx.query('INSERT INTO gateway_port (function_name, port, root, checked_at) VALUES ($1, $2, $3, now())', [p.fn, p.port, p.root]);
    }
    await tx.query('DELETE FROM schedule_state');
    for (const r of rows)
      await tx.query(
        `INSERT INTO schedule_state (function_name, schedule, written, base_schedule, source, bundle_version, problem, checked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, now())`,
        [r.function, r.schedule, r.written, r.base, r.source, r.bundleVersion, r.problem],
      );
  });
}
