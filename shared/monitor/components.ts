/**
 * What the national platform watches on the monitoring port besides the status (docs/monitoring.md):
 * each component's state (database, object store, platforms, schedules), error counts, the server's
 * own health (CPU, memory, disk) and the latency to each platform — to the address the push function
 * sends to (docs/monitoring.md "Platforms"). Read-only; never throws for an unreachable database (the
 * database component says so instead). No personal data: counts, ages, names of destinations and
 * functions, platform addresses only.
 */
import { statfs } from 'node:fs/promises';
import { connect } from 'node:net';
import { cpus, freemem, loadavg, totalmem, uptime } from 'node:os';
import { z } from 'zod';
import { platformsInForce } from '../configbundle/active.js';
import { isUnavailable, type Db } from '../db/index.js';
import { stagingLag, waitingByRole } from '../dbsync/index.js';
import { longestGapS } from '../time/cron.js';
import { formatLocal, fromLocalParts } from '../time/index.js';
import { backlogFigures, backlogState, holdFigures, holdsState } from './backlog.js';
import { DEFAULT_THRESHOLDS, type MonitorThresholds } from './config.js';

const State = z.enum(['ok', 'degraded', 'down', 'unknown']);
const instant = z.iso.datetime({ offset: true }).nullable();

export const ComponentSchema = z.object({ name: z.string(), state: State, detail: z.string(), lastSuccessAt: instant.optional() });
export const ComponentsSchema = z.object({
  checkedAt: z.iso.datetime({ offset: true }),
  components: z.array(ComponentSchema),
  errors: z
    .object({ rejectedLastHour: z.number().int(), rejectedToday: z.number().int(), deadLetters: z.number().int(), failedPushesLastHour: z.number().int() })
    .nullable(),
  server: z.object({
    cpus: z.number().int(),
    load1: z.number(),
    load5: z.number(),
    memoryTotalBytes: z.number(),
    memoryFreeBytes: z.number(),
    disk: z.object({ path: z.string(), totalBytes: z.number(), freeBytes: z.number() }).nullable(),
    uptimeS: z.number(),
  }),
  /** One per enabled destination, probed at the address push sends to (docs/monitoring.md "Platforms"). */
  platforms: z.array(
    z.object({
      destination: z.string(),
      host: z.string(),
      /** The address probed (no user, password, query): null when neither a bundle nor a setting gives one. */
      url: z.string().nullable(),
      /** Where the address came from: the configuration bundle in force, or the `<NAME>_URL` setting. */
      source: z.enum(['bundle', 'setting']).nullable(),
      connectMs: z.number().nullable(),
      error: z.string().nullable(),
    }),
  ),
  /** Database sync: staging rows waiting per resource (docs/dbsync.md); null when the database is down. */
  staging: z
    .array(
      z.object({
        resource: z.string(),
        waiting: z.number().int(),
        oldestAgeS: z.number().int().nullable(),
        /**
         * Per HIS role, most first, without the role's name (docs/dbsync.md "Fair shares"): whether one
         * role floods the table shows; which role it is, the hospital's operator reads from
         * `bin/cdc-dbsync lag` — role names are the hospital's database logins, not the platforms'.
         */
        roles: z.array(z.object({ waiting: z.number().int(), oldestAgeS: z.number().int().nullable() })),
      }),
    )
    .nullable(),
});
export type Component = z.infer<typeof ComponentSchema>;
export type Components = z.infer<typeof ComponentsSchema>;

/**
 * How late a scheduled function's last success may be before it is degraded: its period plus slack.
 * Push's period is its schedule in force (`fn`: stack.yml's every minute, or the one a configuration
 * bundle set, as schedule_state records it): the longest wait between two of its firings, plus the
 * slack; the day close and the logical backup are daily by what they do, whatever their cron.
 */
const SCHEDULES: Array<{ name: string; sql: string; dueS: number; fn?: string; slackS?: number }> = [
  { name: 'schedule:push', sql: `SELECT max(finished_at) AS t FROM push_run WHERE finished_at IS NOT NULL`, dueS: 5 * 60, fn: 'push', slackS: 4 * 60 },
  { name: 'schedule:day-close', sql: `SELECT max(finished_at) AS t FROM day_close WHERE status = 'done'`, dueS: 26 * 3600 },
  { name: 'schedule:backup', sql: `SELECT max(finished_at) AS t FROM backup_archive WHERE status = 'good'`, dueS: 26 * 3600 },
];

export interface ComponentOptions {
  /** Each destination's own `<NAME>_URL` setting by destination name: its address when no bundle gives one. */
  platforms: Record<string, string>;
  /** The disk the database and logs live on. */
  diskPath: string;
  /** False: no latency probe (`platforms` is then empty), for a caller that wants the states alone. */
  probe?: boolean;
  /**
   * The runtime's metrics text (read from RUNTIME_METRICS_URL by `runtimeMetrics`, once per request):
   * the cron connector's firings of the scheduled functions the database keeps no run of.
   */
  runtimeMetrics?: Promise<string | null>;
  /** The hospital's zone (TZ_LOCAL): "today" in `errors` starts at its midnight. */
  timeZone?: string;
  /** The backlog and holds components' thresholds (MONITOR_BACKLOG_*, MONITOR_HOLDS_*); the defaults without. */
  thresholds?: MonitorThresholds;
  now?: Date;
}

/**
 * The scheduled functions whose runs the database does not record (warning, dbsync, …), from the
 * cron connector's last firing per outcome (the runtime's `cdc_cron_last_fired_timestamp_seconds`):
 * ok when the latest firing succeeded, degraded when it failed. Unknown after a runtime restart until
 * the first firing.
 */
export function cronStates(metricsText: string, now: Date, skip: ReadonlySet<string>): Component[] {
  const last = new Map<string, { ok?: number; failed?: number }>();
  const line = /^cdc_cron_last_fired_timestamp_seconds\{([^}]*)\}\s+([0-9.eE+-]+)$/;
  for (const l of metricsText.split('\n')) {
    const m = line.exec(l.trim());
    if (!m) continue;
    const labels: Record<string, string> = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]));
    const fn = labels.function_name;
    const outcome = labels.outcome;
    if (!fn || skip.has(`schedule:${fn}`) || (outcome !== 'ok' && outcome !== 'failed')) continue;
    const e = last.get(fn) ?? {};
    if (outcome === 'ok') e.ok = Number(m[2]) * 1000;
    else e.failed = Number(m[2]) * 1000;
    last.set(fn, e);
  }
  return [...last]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([fn, e]) => {
      const failedLast = e.failed !== undefined && (e.ok === undefined || e.failed > e.ok);
      const ageS = e.ok === undefined ? null : Math.max(0, Math.round((now.getTime() - e.ok) / 1000));
      return {
        name: `schedule:${fn}`,
        state: failedLast ? ('degraded' as const) : ('ok' as const),
        detail: `${failedLast ? 'the last firing failed; ' : ''}${ageS === null ? 'no successful firing since the runtime started' : `last success ${ageS} s ago`} (cron connector)`,
        lastSuccessAt: e.ok === undefined ? null : new Date(e.ok).toISOString(),
      };
    });
}

export async function components(db: Db, o: ComponentOptions): Promise<Components> {
  const now = o.now ?? new Date();
  const targets = platformTargets(db, o.platforms);
  targets.catch(() => undefined); // awaited below, or left unread when the database is down
  const [fromDb, server, platforms, rtMetrics] = await Promise.all([
    databaseParts(db, now, targets, o.timeZone ?? 'Asia/Shanghai', o.thresholds ?? DEFAULT_THRESHOLDS),
    serverHealth(o.diskPath),
    o.probe === false ? [] : targets.then(probePlatforms),
    o.runtimeMetrics ?? null,
  ]);
  const known = new Set(SCHEDULES.map((x) => x.name));
  return ComponentsSchema.parse({
    checkedAt: now.toISOString(),
    components: rtMetrics ? [...fromDb.components, ...cronStates(rtMetrics, now, known)] : fromDb.components,
    errors: fromDb.errors,
    server,
    platforms,
    staging: fromDb.staging,
  });
}

/** Staging rows older than this mean the dbsync function is not taking them (its cron runs every minute). */
const STAGING_LATE_S = 5 * 60;

/** Where a destination's batches go, as the push function picks it (docs/uplink.md, docs/config-bundles.md §5). */
export interface PlatformTarget {
  destination: string;
  enabled: boolean;
  /** The address as given (may carry what the answer must not: see `shown`); null when none is known. */
  url: string | null;
  source: 'bundle' | 'setting' | null;
}

/**
 * Every destination of uplink_destination with the address push sends it to: the platforms section
 * of the configuration bundle in force when it names the destination, else the `<NAME>_URL` setting.
 * With the database unreachable the destinations are not known: the settings stand in (each one
 * enabled), so the platforms' reachability is still reported.
 */
export async function platformTargets(db: Db, settings: Record<string, string>): Promise<PlatformTarget[]> {
  try {
    const [rows, bundle] = await Promise.all([
      db.query<{ name: string; enabled: boolean }>('SELECT name, enabled FROM uplink_destination ORDER BY name'),
      platformsInForce(db),
    ]);
    return rows.rows.map((d) => {
      const p = bundle?.get(d.name);
      const setting = settings[d.name];
      return {
        destination: d.name,
        enabled: d.enabled,
        url: p ? p.url : (setting ?? null),
        source: p ? ('bundle' as const) : setting ? ('setting' as const) : null,
      };
    });
  } catch (err) {
    if (!isUnavailable(err)) throw err;
    // The two the monitor's environment is given for this (stack.yml); any other `*_URL` there may
    // name no platform at all.
    return Object.entries(settings)
      .filter(([name]) => name === 'national' || name === 'provincial')
      .map(([destination, url]) => ({ destination, enabled: true, url, source: 'setting' as const }));
  }
}

/** An address as the answer shows it: scheme, host, port and path; never a user, password or query. */
export function shown(url: string): string | null {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return null;
  }
}

const whence = (t: PlatformTarget): string =>
  t.url === null
    ? `no address: no configuration bundle names it and ${t.destination.toUpperCase()}_URL is not set here`
    : `sends to ${shown(t.url) ?? '(not a URL)'} (${t.source === 'bundle' ? 'configuration bundle' : `${t.destination.toUpperCase()}_URL`})`;

async function databaseParts(
  db: Db,
  now: Date,
  targets: Promise<PlatformTarget[]>,
  timeZone: string,
  thresholds: MonitorThresholds,
): Promise<{ components: Component[]; errors: Components['errors']; staging: Components['staging'] }> {
  const t0 = performance.now();
  try {
    await db.query('SELECT 1');
  } catch (err) {
    if (!isUnavailable(err)) throw err;
    const unknown = (name: string): Component => ({ name, state: 'unknown', detail: '数据库不可用，无法判断 (database unreachable)' });
    return {
      components: [{ name: 'database', state: 'down', detail: String((err as Error).message).slice(0, 200) }, unknown('object-store'), unknown('platforms')],
      errors: null,
      staging: null,
    };
  }
  const dbMs = Math.round(performance.now() - t0);
  const out: Component[] = [{ name: 'database', state: 'ok', detail: `answered in ${dbMs} ms` }];
  const [store, platforms, schedules, backlogs, holds, errors, staging] = await Promise.all([
    objectStore(db),
    targets.then((t) => platformStates(db, now, t)),
    scheduleStates(db, now),
    targets.then((t) => backlogStates(db, now, t, thresholds)),
    holdFigures(db, now, thresholds.holdsWindowS).then((f) => holdsState(f, thresholds)),
    errorCounts(db, now, timeZone),
    stagingLag(db),
  ]);
  out.push(store, ...platforms, ...schedules, ...backlogs, holds, dbsyncState(staging));
  return {
    components: out,
    errors,
    staging: staging.filter((l) => l.waiting > 0).map((l) => ({ ...l, roles: l.roles.map(({ waiting, oldestAgeS }) => ({ waiting, oldestAgeS })) })),
  };
}

function dbsyncState(staging: Awaited<ReturnType<typeof stagingLag>>): Component {
  const oldest = Math.max(0, ...staging.map((l) => l.oldestAgeS ?? 0));
  const waiting = staging.reduce((n, l) => n + l.waiting, 0);
  if (waiting === 0) return { name: 'dbsync', state: 'ok', detail: 'no staging row waiting' };
  // How the rows that wait are shared between roles, most first, without names (the components go to
  // the platforms): one role flooding shows; `bin/cdc-dbsync lag` names it for the hospital's operator.
  const byRole = waitingByRole(staging);
  const shares = byRole.slice(0, 3).map((x) => x.waiting);
  const roles = `${shares.join(', ')}${byRole.length > 3 ? ', …' : ''} (${byRole.length} role${byRole.length === 1 ? '' : 's'})`;
  return {
    name: 'dbsync',
    state: oldest > STAGING_LATE_S ? 'degraded' : 'ok',
    detail: `${waiting} staging rows waiting, the oldest ${oldest} s; by role: ${roles}`,
  };
}

/** The object store as the backups saw it: the last archive's outcome (the monitor holds no S3 keys). */
async function objectStore(db: Db): Promise<Component> {
  const r = await db.query<{ status: string; finished_at: Date | null; error: string | null }>(
    `SELECT status, finished_at, error FROM backup_archive WHERE status IN ('good', 'failed') ORDER BY archive_id DESC LIMIT 1`,
  );
  const last = r.rows[0];
  if (!last) return { name: 'object-store', state: 'unknown', detail: '尚无备份 (no backup yet)' };
  const at = last.finished_at?.toISOString() ?? null;
  return last.status === 'good'
    ? { name: 'object-store', state: 'ok', detail: 'last backup stored', lastSuccessAt: at }
    : { name: 'object-store', state: 'degraded', detail: `last backup failed: ${(last.error ?? '').slice(0, 200)}` };
}

async function platformStates(db: Db, now: Date, targets: PlatformTarget[]): Promise<Component[]> {
  const where = new Map(targets.map((t) => [t.destination, whence(t)]));
  const r = await db.query<{
    name: string;
    enabled: boolean;
    paused: boolean;
    state: string | null;
    failures: number | null;
    retry_at: Date | null;
    last_error: string | null;
    last_sent: Date | null;
  }>(
    `SELECT d.name, d.enabled, d.paused, c.state, c.failures, c.retry_at, c.last_error,
            (SELECT max(sent_at) FROM outbox o WHERE o.destination = d.name AND o.state = 'sent') AS last_sent
       FROM uplink_destination d LEFT JOIN uplink_circuit c ON c.destination = d.name ORDER BY d.name`,
  );
  return r.rows.map((d): Component => {
    const name = `platform:${d.name}`;
    const lastSuccessAt = d.last_sent?.toISOString() ?? null;
    // Paused by the configuration bundle: its records queue and wait (docs/config-bundles.md §5).
    if (d.paused)
      return { name, state: 'degraded', detail: '已暂停，记录排队等待启用 (paused by the configuration bundle: records queue for it)', lastSuccessAt };
    if (!d.enabled) return { name, state: 'unknown', detail: '未启用 (disabled)', lastSuccessAt };
    const to = `; ${where.get(d.name) ?? whence({ destination: d.name, enabled: true, url: null, source: null })}`;
    if (d.state === 'open') {
      const retry = d.retry_at && d.retry_at > now ? `, retry at ${d.retry_at.toISOString()}` : '';
      return {
        name,
        state: 'down',
        detail: `circuit open after ${d.failures ?? 0} failures${retry}: ${(d.last_error ?? '').slice(0, 200)}${to}`,
        lastSuccessAt,
      };
    }
    if ((d.failures ?? 0) > 0)
      return { name, state: 'degraded', detail: `${d.failures} failed batches in a row: ${(d.last_error ?? '').slice(0, 200)}${to}`, lastSuccessAt };
    return { name, state: 'ok', detail: `circuit closed${to}`, lastSuccessAt };
  });
}

async function scheduleStates(db: Db, now: Date): Promise<Component[]> {
  const inForce = new Map(
    (await db.query<{ function_name: string; schedule: string | null }>('SELECT function_name, schedule FROM schedule_state')).rows.map((r) => [
      r.function_name,
      r.schedule,
    ]),
  );
  return Promise.all(
    SCHEDULES.map(async (s) => {
      const t = (await db.query<{ t: Date | null }>(s.sql)).rows[0]?.t ?? null;
      if (!t) return { name: s.name, state: 'unknown' as const, detail: '尚未成功运行 (no successful run yet)', lastSuccessAt: null };
      const ageS = Math.round((now.getTime() - t.getTime()) / 1000);
      const expr = s.fn ? inForce.get(s.fn) : null;
      const gap = expr ? longestGapS(expr, now) : null;
      const dueS = gap === null ? s.dueS : Math.max(s.dueS, Math.ceil(gap) + (s.slackS ?? 0));
      return {
        name: s.name,
        state: ageS > dueS ? ('degraded' as const) : ('ok' as const),
        detail: `last success ${ageS} s ago${expr && gap !== null ? ` (schedule ${expr}: due within ${dueS} s)` : ''}`,
        lastSuccessAt: t.toISOString(),
      };
    }),
  );
}

/**
 * One `backlog:<destination>` per enabled destination, computed from the outbox (shared/monitor/backlog.ts,
 * docs/monitoring.md "Backlog and holds"), and one per destination whose backlog alert is raised and not
 * cleared (docs/day-close.md "Backlog alerts"): a raised alert makes a component that is ok by the
 * outbox degraded, the alert's message as its detail — what the province report names as a fault.
 * The push function raises its alerts after its runs; a push that hangs never does, so the outbox
 * decides first.
 */
async function backlogStates(db: Db, now: Date, targets: PlatformTarget[], thresholds: MonitorThresholds): Promise<Component[]> {
  const r = await db.query<{ destination: string; kind: string; message: string }>(
    `SELECT e.destination, e.kind, e.message FROM alert_event e
      WHERE e.event_id = (SELECT max(x.event_id) FROM alert_event x WHERE x.destination = e.destination)
      ORDER BY e.destination`,
  );
  const raised = new Map(r.rows.filter((a) => a.kind === 'raise').map((a) => [a.destination, a.message]));
  const names = [...new Set([...targets.filter((t) => t.enabled).map((t) => t.destination), ...raised.keys()])].sort();
  return Promise.all(
    names.map(async (destination) => {
      const c = backlogState(await backlogFigures(db, destination, now), thresholds);
      const alert = raised.get(destination);
      return c.state === 'ok' && alert !== undefined ? { ...c, state: 'degraded' as const, detail: alert.slice(0, 200) } : c;
    }),
  );
}

/** The hospital's midnight before `now` (TZ_LOCAL), not the database session's. */
export function localMidnight(now: Date, timeZone: string): Date {
  const [y, mo, d] = formatLocal(now, timeZone).slice(0, 10).split('-').map(Number);
  return fromLocalParts(timeZone, y!, mo!, d!) ?? new Date(now.getTime() - (now.getTime() % 86_400_000));
}

async function errorCounts(db: Db, now: Date, timeZone: string): Promise<NonNullable<Components['errors']>> {
  const r = await db.query<{ hour: string; today: string; dead: string; failed: string }>(
    `SELECT (SELECT count(*) FROM ingest_rejection WHERE test_mode = false AND received_at > $1::timestamptz - interval '1 hour') AS hour,
            (SELECT count(*) FROM ingest_rejection WHERE test_mode = false AND received_at >= $2::timestamptz) AS today,
            (SELECT count(*) FROM outbox WHERE state = 'dead' AND test_mode = false) AS dead,
            (SELECT coalesce(sum(failed), 0) FROM push_run WHERE started_at > $1::timestamptz - interval '1 hour') AS failed`,
    [now.toISOString(), localMidnight(now, timeZone).toISOString()],
  );
  const x = r.rows[0]!;
  return { rejectedLastHour: Number(x.hour), rejectedToday: Number(x.today), deadLetters: Number(x.dead), failedPushesLastHour: Number(x.failed) };
}

async function serverHealth(diskPath: string): Promise<Components['server']> {
  const [l1, l5] = loadavg();
  let disk: Components['server']['disk'] = null;
  try {
    const s = await statfs(diskPath);
    disk = { path: diskPath, totalBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize };
  } catch {
    disk = null;
  }
  return { cpus: cpus().length, load1: l1 ?? 0, load5: l5 ?? 0, memoryTotalBytes: totalmem(), memoryFreeBytes: freemem(), disk, uptimeS: Math.round(uptime()) };
}

/**
 * TCP connect time to each enabled destination's host, at the address push sends to (no request is
 * sent: nothing reaches the platform's logs). A disabled destination is not probed.
 */
async function probePlatforms(targets: PlatformTarget[]): Promise<Components['platforms']> {
  return Promise.all(
    targets
      .filter((t) => t.enabled)
      .map(async ({ destination, url: base, source }) => {
        if (base === null)
          return { destination, host: '', url: null, source, connectMs: null, error: whence({ destination, enabled: true, url: null, source }) };
        let url: URL;
        try {
          url = new URL(base);
        } catch {
          return { destination, host: '', url: null, source, connectMs: null, error: 'not a URL' };
        }
        const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
        const host = url.hostname.replace(/^\[|\]$/g, '');
        const t0 = performance.now();
        const error = await new Promise<string | null>((resolve) => {
          const s = connect({ host, port, timeout: 3000 });
          s.once('connect', () => {
            s.destroy();
            resolve(null);
          });
          s.once('timeout', () => {
            s.destroy();
            resolve('timeout after 3000 ms');
          });
          s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
        });
        return {
          destination,
          host: `${url.hostname}:${port}`,
          url: shown(base),
          source,
          connectMs: error ? null : Math.round(performance.now() - t0),
          error,
        };
      }),
  );
}
