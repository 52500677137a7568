/**
 * Prometheus text for the monitoring port (docs/monitoring.md "Metrics"): the front's own figures,
 * computed from the database at each scrape (queues, lag, dead letters, rejections, components,
 * schedules, the server), followed by the runtime's metrics — invocations, durations, replicas and
 * cron firings of every function, aggregated over all their replicas by the runtime's gateway
 * (GET /metrics there). One page, one scrape, for the national platform.
 */
import { Gauge, Registry } from 'prom-client';
import type { FrontStatus } from '../status/index.js';
import type { Components } from './components.js';

const STATE_VALUE = { ok: 1, degraded: 0.5, down: 0, unknown: -1 } as const;

/** The front's own figures, as one registry made for this scrape. */
export function frontMetrics(status: FrontStatus, comp: Components): Registry {
  const registry = new Registry();
  const gauge = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name, help, labelNames, registers: [registry] });

  gauge('cdc_front_info', 'The front: software version (value 1)', ['version']).set({ version: status.version }, 1);
  gauge('cdc_database_up', 'Whether the database answers').set(status.database.reachable ? 1 : 0);
  const pending = gauge('cdc_outbox_pending', 'Records waiting to be forwarded, per destination', ['destination']);
  const oldest = gauge('cdc_outbox_oldest_pending_age_seconds', 'Age of the oldest record waiting, per destination', ['destination']);
  const dead = gauge('cdc_outbox_dead', 'Records given up on (need an operator), per destination', ['destination']);
  const sent = gauge('cdc_outbox_sent', 'Records delivered, per destination', ['destination']);
  const held = gauge('cdc_outbox_held', 'Records stored but held (a parent not received, a code not mapped, a rule), per destination', ['destination']);
  const oldestHeld = gauge('cdc_outbox_oldest_held_age_seconds', 'Age of the oldest held record since its receipt, per destination', ['destination']);
  for (const d of status.outbox?.byDestination ?? []) {
    pending.set({ destination: d.destination }, d.pending);
    oldest.set({ destination: d.destination }, d.oldestPendingAgeS ?? 0);
    dead.set({ destination: d.destination }, d.dead);
    sent.set({ destination: d.destination }, d.sent);
    held.set({ destination: d.destination }, d.held);
    oldestHeld.set({ destination: d.destination }, d.oldestHeldAgeS ?? 0);
  }
  const lag = gauge('cdc_lag_pending', 'Records waiting per destination and resource', ['destination', 'resource']);
  const lagAge = gauge('cdc_lag_oldest_age_seconds', 'Age of the oldest waiting record per destination and resource', ['destination', 'resource']);
  for (const l of status.outbox?.lag ?? []) {
    lag.set({ destination: l.destination, resource: l.resource }, l.pending);
    lagAge.set({ destination: l.destination, resource: l.resource }, l.oldestAgeS ?? 0);
  }

  const state = gauge('cdc_component_state', 'Component state: 1 ok, 0.5 degraded, 0 down, -1 unknown', ['component']);
  const last = gauge('cdc_component_last_success_timestamp_seconds', 'Last success of a component (platforms: last delivery; schedules: last run)', [
    'component',
  ]);
  for (const c of comp.components) {
    state.set({ component: c.name }, STATE_VALUE[c.state]);
    if (c.lastSuccessAt) last.set({ component: c.name }, Date.parse(c.lastSuccessAt) / 1000);
  }
  if (comp.errors) {
    gauge('cdc_ingest_rejected_last_hour', 'Records refused in the last hour').set(comp.errors.rejectedLastHour);
    gauge('cdc_ingest_rejected_today', "Records refused since the hospital's midnight (TZ_LOCAL)").set(comp.errors.rejectedToday);
    gauge('cdc_push_failed_last_hour', 'Failed send attempts in the last hour (a record retried counts each time)').set(comp.errors.failedPushesLastHour);
  }
  const s = comp.server;
  gauge('cdc_server_cpus', 'CPU cores of the front server').set(s.cpus);
  gauge('cdc_server_load1', 'One-minute load average').set(s.load1);
  gauge('cdc_server_memory_total_bytes', 'Memory of the front server').set(s.memoryTotalBytes);
  gauge('cdc_server_memory_free_bytes', 'Free memory of the front server').set(s.memoryFreeBytes);
  if (s.disk) {
    gauge('cdc_server_disk_total_bytes', 'Size of the data disk', ['path']).set({ path: s.disk.path }, s.disk.totalBytes);
    gauge('cdc_server_disk_free_bytes', 'Free space on the data disk', ['path']).set({ path: s.disk.path }, s.disk.freeBytes);
  }
  const stWait = gauge('cdc_staging_waiting', 'Database sync: staging rows not taken yet, per resource', ['resource']);
  const stAge = gauge('cdc_staging_oldest_age_seconds', 'Database sync: age of the oldest staging row not taken, per resource', ['resource']);
  for (const l of comp.staging ?? []) {
    stWait.set({ resource: l.resource }, l.waiting);
    stAge.set({ resource: l.resource }, l.oldestAgeS ?? 0);
  }
  const connect = gauge('cdc_platform_connect_seconds', 'TCP connect time to a platform (absent when it failed)', ['destination']);
  const reach = gauge('cdc_platform_reachable', 'Whether a TCP connection to the platform opened', ['destination']);
  for (const p of comp.platforms) {
    reach.set({ destination: p.destination }, p.error ? 0 : 1);
    if (p.connectMs !== null) connect.set({ destination: p.destination }, p.connectMs / 1000);
  }
  return registry;
}

/** The runtime's metrics text, or null when the gateway does not answer within 2 s. */
export async function runtimeMetrics(url: string): Promise<string | null> {
  if (!url) return null;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return res.ok ? await res.text() : null;
  } catch {
    return null;
  }
}

/** Both in one page; `cdc_runtime_metrics_up` says whether the runtime's part is there. */
export async function metricsPage(status: FrontStatus, comp: Components, rt: string | null): Promise<string> {
  const own = await frontMetrics(status, comp).metrics();
  const up = `# HELP cdc_runtime_metrics_up Whether the runtime's metrics (every function, all replicas) were read\n# TYPE cdc_runtime_metrics_up gauge\ncdc_runtime_metrics_up ${rt === null ? 0 : 1}\n`;
  return own + up + (rt ?? '');
}
