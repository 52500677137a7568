/**
 * The front's report of itself to the provincial platform (docs/monitoring.md "Reporting to the
 * province"), so that the province sees which hospitals' fronts are up: every
 * FRONT_REPORT_INTERVAL_MIN minutes (run from push's cron), one record `frontStatusReport` in its own
 * sealed, signed batch — online, software version, the activation in force (network, org, front id),
 * the faults now (components not ok, backlog alerts raised and not cleared), the faults of the
 * last report that are gone (fixed: automatically, or after the operators' changes) and those changes
 * by action. It does not go
 * through the outbox: a report that fails is recorded and the next one supersedes it.
 */
import { z } from 'zod';
import { concern } from '../config/index.js';
import type { Db } from '../db/index.js';
import { log } from '../log/index.js';
import { auditTrail } from '../console/audit.js';
import { components } from '../monitor/components.js';
import { activationStatus, ActivationStatusSchema, softwareVersion } from '../status/index.js';
import { postEnvelope } from './client.js';
import type { Destination } from './config.js';
import { sealEnvelope, verifyReceipt, type UplinkRecord } from './envelope.js';

export const FRONT_REPORT_RESOURCE = 'frontStatusReport';

export const selfReportConcern = concern({
  name: 'selfReport',
  vars: {
    FRONT_REPORT_INTERVAL_MIN: z.coerce.number().int().min(0).max(1440).default(5),
    FRONT_ORG_CODE: z.string().default(''),
  },
  build: (v) => ({ intervalMin: v.FRONT_REPORT_INTERVAL_MIN, orgCode: v.FRONT_ORG_CODE }),
});
export type SelfReportSettings = ReturnType<typeof selfReportConcern.build>;

export const Fault = z.object({ component: z.string(), state: z.string(), detail: z.string() });
export type Fault = z.infer<typeof Fault>;

export const FrontReportPayload = z.object({
  online: z.literal(true),
  version: z.string(),
  /** The activation in force (docs/activation.md): network none | test | production, org, front id. */
  activation: ActivationStatusSchema,
  reportedAt: z.iso.datetime({ offset: true }),
  faults: z.array(Fault),
  /**
   * Faults named by the previous report that are gone now, and how: `operator` when the hospital's
   * operators changed something in between (listed in `actions`), else `automatic` (it recovered).
   */
  fixed: z.array(Fault.extend({ since: z.iso.datetime({ offset: true }), fixedBy: z.enum(['automatic', 'operator']) })),
  /** What the operators changed since the previous report, by action (the audit trail; never who or on what). */
  actions: z.array(z.object({ action: z.string(), count: z.number().int().positive(), lastAt: z.iso.datetime({ offset: true }) })),
});
export type FrontReportPayload = z.infer<typeof FrontReportPayload>;

/** The audit trail's changes (not views, sign-ins or uploads) that can fix a fault. */
const CHANGES = new Set([
  'replay',
  'retry-now',
  'unlocked',
  'password-reset',
  'role-changed',
  'user-created',
  'disabled',
  'enabled',
  'activation',
  'acceptance-run',
  'mapping-create',
  'mapping-update',
  'mapping-delete',
  'bundle-apply',
  'bundle-rollback',
]);

/** The operators' changes in [from, to), by action with their count and the latest time. */
async function operatorActions(db: Db, from: Date, to: Date): Promise<FrontReportPayload['actions']> {
  const rows = await auditTrail(db, { from, to, limit: 5000 });
  const by = new Map<string, { count: number; last: Date }>();
  for (const r of rows) {
    if (!CHANGES.has(r.action)) continue;
    const e = by.get(r.action) ?? { count: 0, last: r.at };
    e.count++;
    if (r.at > e.last) e.last = r.at;
    by.set(r.action, e);
  }
  return [...by].sort(([a], [b]) => a.localeCompare(b)).map(([action, e]) => ({ action, count: e.count, lastAt: e.last.toISOString() }));
}

export interface ReportResult {
  destination: string;
  sent: boolean;
  skipped?: 'not due';
  error?: string;
  faults?: number;
  fixed?: number;
}

/** Reports to every provincial destination that is due. Never throws: a failure is the result's error. */
export async function reportToProvince(db: Db, dests: Destination[], s: SelfReportSettings, now = new Date()): Promise<ReportResult[]> {
  if (s.intervalMin === 0) return [];
  const out: ReportResult[] = [];
  for (const d of dests.filter((x) => x.kind === 'provincial')) {
    try {
      out.push(await reportOnce(db, d, dests, s, now));
    } catch (err) {
      log('error', 'front report not sent', { destination: d.name, err: (err as Error).message });
      out.push({ destination: d.name, sent: false, error: (err as Error).message.slice(0, 300) });
    }
  }
  return out;
}

async function reportOnce(db: Db, d: Destination, dests: Destination[], s: SelfReportSettings, now: Date): Promise<ReportResult> {
  const last = (
    await db.query<{ reported_at: Date; ok: boolean; faults: Fault[] }>(
      'SELECT reported_at, ok, faults FROM front_report WHERE destination = $1 ORDER BY report_id DESC LIMIT 1',
      [d.name],
    )
  ).rows[0];
  if (last && now.getTime() - last.reported_at.getTime() < s.intervalMin * 60_000 - 5_000) return { destination: d.name, sent: false, skipped: 'not due' };
  const [faults, act] = await Promise.all([currentFaults(db, dests), activationStatus(db)]);
  const lastSent = last?.ok
    ? last
    : (
        await db.query<{ reported_at: Date; faults: Fault[] }>(
          'SELECT reported_at, faults FROM front_report WHERE destination = $1 AND ok ORDER BY report_id DESC LIMIT 1',
          [d.name],
        )
      ).rows[0];
  const now_ = new Set(faults.map((f) => f.component));
  const actions = await operatorActions(db, lastSent?.reported_at ?? new Date(now.getTime() - s.intervalMin * 60_000), now);
  const fixedBy = actions.length ? ('operator' as const) : ('automatic' as const);
  const fixed = (lastSent?.faults ?? []).filter((f) => !now_.has(f.component)).map((f) => ({ ...f, since: lastSent!.reported_at.toISOString(), fixedBy }));
  const payload = FrontReportPayload.parse({ online: true, version: softwareVersion, activation: act, reportedAt: now.toISOString(), faults, fixed, actions });
  const orgCode = s.orgCode || d.sender.name;
  const stamp = now
    .toISOString()
    .replace(/[-:T.Z]/g, '')
    .slice(0, 14);
  const record: UplinkRecord = {
    resource: FRONT_REPORT_RESOURCE,
    orgCode,
    id: `${orgCode}-${stamp}`,
    version: 1,
    op: 'upsert',
    deadlineClass: 'realtime',
    test: false,
    payload,
  };
  const batchId = `report-${d.name}-${orgCode}-${stamp}`;
  const { body } = sealEnvelope({ batchId, destination: d.name, records: [record], sender: d.sender, recipient: d.platformKey, now });
  const answer = await postEnvelope({ url: d.url, ...(d.tls ? { tls: d.tls } : {}) }, batchId, body, 15_000);
  let error: string | undefined;
  if (answer.kind === 'network') error = answer.reason;
  else if (answer.status !== 200) error = `${d.name} answered HTTP ${answer.status}`;
  else {
    try {
      const receipt = verifyReceipt(answer.body, d.platformKey, { batchId, records: [record] });
      const status = receipt.receipts[0]?.status;
      if (status === 'rejected') error = `${d.name} rejected the report: ${receipt.receipts[0]?.reason ?? ''}`;
    } catch (err) {
      error = `${d.name}: receipt not acknowledged: ${(err as Error).message}`;
    }
  }
  await db.query('INSERT INTO front_report (destination, reported_at, batch_id, ok, error, faults) VALUES ($1, $2, $3, $4, $5, $6::jsonb)', [
    d.name,
    now,
    batchId,
    !error,
    error?.slice(0, 500) ?? null,
    JSON.stringify(faults),
  ]);
  log(error ? 'warn' : 'info', 'front report', {
    destination: d.name,
    sent: !error,
    faults: faults.length,
    fixed: fixed.length,
    ...(error ? { err: error } : {}),
  });
  return { destination: d.name, sent: !error, faults: faults.length, fixed: fixed.length, ...(error ? { error } : {}) };
}

/**
 * Components not ok (shared/monitor; each platform named with the address push sends it to, its
 * latency not probed; backlog alerts raised and not cleared since, `backlog:<destination>`).
 */
async function currentFaults(db: Db, dests: Destination[]): Promise<Fault[]> {
  const comp = await components(db, { platforms: Object.fromEntries(dests.map((x) => [x.name, x.url])), diskPath: '/', probe: false });
  return comp.components.filter((c) => c.state === 'degraded' || c.state === 'down').map((c) => ({ component: c.name, state: c.state, detail: c.detail }));
}
