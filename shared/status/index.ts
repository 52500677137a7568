/**
 * The front's status (前置软件运行状态): what the national platform reads on the monitoring port
 * (8883) and what the web console shows on /status.html (8884), from one function and one schema.
 * Requirements §8: "front status; transmission status" are checked daily by the hospital and
 * watched by the platform.
 *
 * Only counts, times and configuration names: no record content, no last_error text of outbox
 * rows (an error message can quote a field value), so no personal data can leave through here.
 *
 * A database that cannot be reached is a status, not an exception: `database.reachable` is false
 * and the sections that need it are null. Any other database error (a missing table, bad SQL) is
 * a bug and is thrown.
 */
import { z } from 'zod';
import { release, softwareVersion } from './version.js';
import { schemaState } from '../db/schema.js';
import { detectDialect, isUnavailable, type Db } from '../db/index.js';
import { lag } from '../uplink/push.js';
import { backupSummary, BackupSummarySchema } from '../backup/summary.js';
import { activation, Network } from '../activation/index.js';

const count = z.number().int().nonnegative();
const instant = z.iso.datetime({ offset: true });

export const DestinationStatusSchema = z.object({
  /** uplink_destination.name (national, provincial, ...). */
  destination: z.string(),
  /** national | provincial; null when rows wait for a destination no longer configured. */
  kind: z.string().nullable(),
  enabled: z.boolean(),
  /** 待发送: rows still to deliver. */
  pending: count,
  /** 已发送: rows delivered (receipt received). */
  sent: count,
  /** Rows given up on (state dead): they need an operator. */
  dead: count,
  /**
   * 暂缓上报: rows stored but held — a parent record not received yet, a local code not mapped yet, a
   * rule (docs/ingest.md, docs/code-mapping.md); they leave once released. Not backlog: nothing the push
   * can send, but not delivered either.
   */
  held: count,
  /** 最早未发送时长: age in seconds of the oldest pending row; null when nothing is pending. */
  oldestPendingAgeS: count.nullable(),
  /** Age in seconds of the oldest held row, from its receipt; null when nothing is held. */
  oldestHeldAgeS: count.nullable(),
});

export const LagSchema = z.object({
  destination: z.string(),
  resource: z.string(),
  pending: count,
  oldestAgeS: count.nullable(),
});

export const PushRunSchema = z.object({
  startedAt: instant,
  finishedAt: instant.nullable(),
  /** cron | nudge | manual (functions/push). */
  trigger: z.string(),
  claimed: count,
  sent: count,
  failed: count,
  /** Per-destination errors of the run ("national answered HTTP 503"); never record content. */
  note: z.string().nullable(),
});

/** The activation in force (docs/activation.md): the network the front is on, for which org, as which front. */
export const ActivationStatusSchema = z.object({
  /** none: not activated yet; test: 测试网（试运行）; production: 正式网. */
  network: z.enum(['none', ...Network.options]),
  orgCode: z.string().nullable(),
  frontId: z.string().nullable(),
  /** When the authorization code in force was applied. */
  activatedAt: instant.nullable(),
});
export type ActivationStatus = z.infer<typeof ActivationStatusSchema>;

/** The activation in force, as the monitoring port and the report to the province carry it. */
export async function activationStatus(db: Pick<Db, 'query'>): Promise<ActivationStatus> {
  const a = await activation(db);
  return a
    ? { network: a.network, orgCode: a.orgCode, frontId: a.frontId, activatedAt: a.activatedAt.toISOString() }
    : { network: 'none', orgCode: null, frontId: null, activatedAt: null };
}

export const FrontStatusSchema = z.object({
  /** When this status was computed, by the front's clock. */
  checkedAt: instant,
  /** The software version (package.json of the build). */
  version: z.string(),
  /** The release running: the version and the git commit it was built from (shared/status/version.ts). */
  release: z.string().optional(),
  database: z.object({
    reachable: z.boolean(),
    dialect: z.enum(['postgresql', 'opengauss']).nullable(),
    /** The database server's clock: a skew against checkedAt shows a clock problem. */
    serverTime: instant.nullable(),
    /**
     * The schema against this release's migrations (shared/db/schema.ts): behind names the migrations
     * to apply (bin/cdc-migrate), ahead the ones a newer release applied; null when unreachable.
     */
    schema: z
      .object({ state: z.enum(['current', 'behind', 'ahead']), missing: z.array(z.string()), unknown: z.array(z.string()) })
      .nullable()
      .optional(),
  }),
  /** Null when the database is unreachable. Test-mode rows (acceptance self-test) are not counted. */
  outbox: z
    .object({
      totals: z.object({ pending: count, sent: count, dead: count, held: count }),
      byDestination: z.array(DestinationStatusSchema),
      /** Pending rows per destination and resource (shared/uplink/push.ts `lag`). */
      lag: z.array(LagSchema),
    })
    .nullable(),
  /** The most recent push run; null before the first one or when the database is unreachable. */
  lastPushRun: PushRunSchema.nullable(),
  /** Backups (docs/backup.md): last good archives, the one running with its progress, freshness, last check; null when the database is unreachable. */
  backup: BackupSummarySchema.nullable().optional(),
  /** The activation in force (docs/activation.md); null when the database is unreachable. */
  activation: ActivationStatusSchema.nullable(),
});

export type FrontStatus = z.infer<typeof FrontStatusSchema>;
export type DestinationStatus = z.infer<typeof DestinationStatusSchema>;
export type PushRun = z.infer<typeof PushRunSchema>;

export { softwareVersion };

/** Reads the status; never throws for an unreachable database (see the module comment). */
/**
 * How long the status waits for the database (docs/monitoring.md): a server that hangs (stopped, a
 * lost network) answers no query and fails none, so past this the status says it is unreachable —
 * the platform's probe gets its 503 with the body, not the runtime's exec_timeout.
 */
export const STATUS_DB_DEADLINE_MS = 5_000;

class StatusDeadline extends Error {}

export async function frontStatus(db: Db, now: () => Date = () => new Date(), deadlineMs = STATUS_DB_DEADLINE_MS): Promise<FrontStatus> {
  const checkedAt = now().toISOString();
  let timer: NodeJS.Timeout | undefined;
  try {
    const reads = (async () => {
      const dialect = await detectDialect(db);
      const schema = await schemaState(db);
      // On a schema behind this release (bundles deployed, bin/cdc-migrate not run yet) a part that
      // reads a table or column a missing migration adds is null, not a 500: the status still answers
      // 503 naming the missing migrations (docs/deploy.md "Upgrade"). On a current schema it throws.
      const part = <T>(p: Promise<T>): Promise<T | null> =>
        p.catch((err: unknown) => {
          if (schema?.state === 'behind' && ['42703', '42P01'].includes((err as { code?: string }).code ?? '')) return null;
          throw err;
        });
      const [serverTime, outbox, lastPushRun, backup, act] = await Promise.all([
        dbTime(db),
        part(outboxStatus(db)),
        part(lastRun(db)),
        part(backupSummary(db, now())),
        part(activationStatus(db)),
      ]);
      return { dialect, schema, serverTime, outbox, lastPushRun, backup, act };
    })();
    // The reads left behind settle on their own (the pool's connections free themselves when the
    // server answers again, or their sockets fail); Promise.race has taken their rejection.
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new StatusDeadline(`the database did not answer within ${deadlineMs} ms`)), deadlineMs);
    });
    const { dialect, schema, serverTime, outbox, lastPushRun, backup, act } = await Promise.race([reads, deadline]);
    return FrontStatusSchema.parse({
      checkedAt,
      version: softwareVersion,
      release,
      database: { reachable: true, dialect, serverTime, schema },
      outbox,
      lastPushRun,
      backup,
      activation: act,
    });
  } catch (err) {
    if (!(err instanceof StatusDeadline) && !isUnavailable(err)) throw err;
    return FrontStatusSchema.parse({
      checkedAt,
      version: softwareVersion,
      release,
      database: { reachable: false, dialect: null, serverTime: null, schema: null },
      outbox: null,
      lastPushRun: null,
      backup: null,
      activation: null,
    });
  } finally {
    clearTimeout(timer);
  }
}

/** True when the database answers a trivial query within `timeoutMs`. */
export async function databaseAnswers(db: Db, timeoutMs = 3_000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([db.query('SELECT 1').then(() => true as const), timeout]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

async function dbTime(db: Db): Promise<string> {
  const r = await db.query<{ now: Date }>('SELECT now() AS now');
  return r.rows[0]!.now.toISOString();
}

async function outboxStatus(db: Db): Promise<NonNullable<FrontStatus['outbox']>> {
  // Pending rows and their age come from `lag` (the push module's own view of what waits); sent, dead
  // and held counts (the oldest held row's age) from one grouped count. Both leave test-mode rows out.
  const [pendingLag, states, configured] = await Promise.all([
    lag(db),
    db.query<{ destination: string; state: string; n: string; oldest_s: string | null }>(
      `SELECT destination, state, count(*) AS n,
              CASE WHEN state = 'held' THEN floor(extract(epoch FROM now() - min(created_at))) END AS oldest_s
         FROM outbox
        WHERE test_mode = false AND state IN ('sent', 'dead', 'held') GROUP BY destination, state`,
    ),
    db.query<{ name: string; kind: string; enabled: boolean }>('SELECT name, kind, enabled FROM uplink_destination ORDER BY name'),
  ]);

  const rows = new Map<string, DestinationStatus>();
  const entry = (destination: string): DestinationStatus => {
    let d = rows.get(destination);
    if (!d) {
      d = { destination, kind: null, enabled: false, pending: 0, sent: 0, dead: 0, held: 0, oldestPendingAgeS: null, oldestHeldAgeS: null };
      rows.set(destination, d);
    }
    return d;
  };
  for (const c of configured.rows) Object.assign(entry(c.name), { kind: c.kind, enabled: c.enabled });
  for (const l of pendingLag) {
    const d = entry(l.destination);
    d.pending += l.pending;
    if (l.oldestAgeS !== null) d.oldestPendingAgeS = Math.max(d.oldestPendingAgeS ?? 0, l.oldestAgeS);
  }
  for (const s of states.rows) {
    const d = entry(s.destination);
    if (s.state === 'sent') d.sent = Number(s.n);
    else if (s.state === 'dead') d.dead = Number(s.n);
    else {
      d.held = Number(s.n);
      d.oldestHeldAgeS = s.oldest_s === null ? null : Math.max(0, Number(s.oldest_s));
    }
  }

  // Shown: every enabled destination, and any other that still has rows waiting or given up on
  // (a disabled destination with pending rows is data that will never leave unless someone acts).
  const byDestination = [...rows.values()]
    .filter((d) => d.enabled || d.pending > 0 || d.dead > 0 || d.held > 0)
    .sort((a, b) => a.destination.localeCompare(b.destination));
  const sum = (k: 'pending' | 'sent' | 'dead' | 'held') => [...rows.values()].reduce((n, d) => n + d[k], 0);
  return {
    totals: { pending: sum('pending'), sent: sum('sent'), dead: sum('dead'), held: sum('held') },
    byDestination,
    lag: pendingLag,
  };
}

async function lastRun(db: Db): Promise<PushRun | null> {
  const r = await db.query<{
    started_at: Date;
    finished_at: Date | null;
    trigger: string;
    claimed: number;
    sent: number;
    failed: number;
    note: string | null;
  }>('SELECT started_at, finished_at, trigger, claimed, sent, failed, note FROM push_run ORDER BY run_id DESC LIMIT 1');
  const row = r.rows[0];
  if (!row) return null;
  return {
    startedAt: row.started_at.toISOString(),
    finishedAt: row.finished_at?.toISOString() ?? null,
    trigger: row.trigger,
    claimed: row.claimed,
    sent: row.sent,
    failed: row.failed,
    note: row.note,
  };
}
