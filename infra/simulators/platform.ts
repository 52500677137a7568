/**
 * The national / provincial platform simulator: receives the front's record batches, removes
 * duplicates by (org, resource, id, version), keeps what it received (in memory, and appended to
 * an ndjson file when one is given, so a restart keeps it) and answers queries for it.
 * Used by `make up`, the tests and hospital acceptance runs. Fault switches let tests play outages.
 * (Signature and encryption checks arrive with the uplink wire contract, docs/uplink.md.)
 */
import { Hono } from 'hono';
import { serve, type ServerType } from '@hono/node-server';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';

const Batch = z.object({
  batchId: z.string().min(1),
  records: z.array(
    z.object({
      resource: z.string().min(1),
      orgCode: z.string().min(1),
      id: z.string().min(1),
      version: z.number().int().positive(),
      op: z.enum(['upsert', 'retire']),
      payload: z.record(z.string(), z.unknown()),
    }),
  ),
});
type Received = z.infer<typeof Batch>['records'][number] & { receivedAt: string; batchId: string };

const Fault = z.object({ mode: z.enum(['none', 'down500', 'timeout']), seconds: z.number().optional() });

export interface PlatformOptions {
  role?: 'national' | 'provincial';
  port?: number;
  host?: string;
  /** ndjson file the received records are appended to (and reloaded from on start). */
  storeFile?: string;
}

export interface PlatformHandle {
  url: string;
  port: number;
  records: () => Received[];
  close: () => Promise<void>;
}

export function platformApp(opts: PlatformOptions = {}) {
  const received: Received[] = [];
  const seen = new Set<string>();
  let duplicates = 0;
  let fault: z.infer<typeof Fault> = { mode: 'none' };
  const keyOf = (r: { orgCode: string; resource: string; id: string; version: number }) => `${r.orgCode}|${r.resource}|${r.id}|${r.version}`;
  if (opts.storeFile && existsSync(opts.storeFile)) {
    for (const line of readFileSync(opts.storeFile, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const r = JSON.parse(line) as Received;
      if (!seen.has(keyOf(r))) {
        seen.add(keyOf(r));
        received.push(r);
      }
    }
  }
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ ok: true, role: opts.role ?? 'national' }));

  app.post('/uplink/v1/batches', async (c) => {
    if (fault.mode === 'down500') return c.json({ error: 'simulated outage' }, 500);
    if (fault.mode === 'timeout') await new Promise((r) => setTimeout(r, (fault.seconds ?? 30) * 1000));
    const parsed = Batch.safeParse(await c.req.json().catch(() => null));
    if (!parsed.success) return c.json({ error: 'invalid batch', issues: parsed.error.issues.slice(0, 20) }, 400);
    const receipts = parsed.data.records.map((r) => {
      const k = keyOf(r);
      if (seen.has(k)) {
        duplicates++;
        return { orgCode: r.orgCode, resource: r.resource, id: r.id, version: r.version, status: 'duplicate' };
      }
      seen.add(k);
      const rec: Received = { ...r, receivedAt: new Date().toISOString(), batchId: parsed.data.batchId };
      received.push(rec);
      if (opts.storeFile) appendFileSync(opts.storeFile, JSON.stringify(rec) + '\n');
      return { orgCode: r.orgCode, resource: r.resource, id: r.id, version: r.version, status: 'accepted' };
    });
    return c.json({ batchId: parsed.data.batchId, receipts });
  });

  app.get('/uplink/v1/records', (c) => {
    const q = c.req.query();
    const rows = received.filter(
      (r) => (!q.resource || r.resource === q.resource) && (!q.orgCode || r.orgCode === q.orgCode) && (!q.id || r.id === q.id),
    );
    return c.json({ count: rows.length, records: rows });
  });
  app.get('/uplink/v1/stats', (c) => c.json({ received: received.length, duplicates }));
  app.post('/sim/faults', async (c) => {
    const f = Fault.safeParse(await c.req.json().catch(() => null));
    if (!f.success) return c.json({ error: 'mode must be none | down500 | timeout' }, 400);
    fault = f.data;
    return c.json(fault);
  });
  return { app, records: () => received };
}

export async function startPlatformSimulator(opts: PlatformOptions = {}): Promise<PlatformHandle> {
  const { app, records } = platformApp(opts);
  const server: ServerType = await new Promise((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: opts.port ?? 0, hostname: opts.host ?? '127.0.0.1' }, () => resolve(s));
    s.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new Error(`port ${opts.port} (${opts.role ?? 'national'} platform simulator) is already in use`) : err),
    );
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    port,
    records,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
