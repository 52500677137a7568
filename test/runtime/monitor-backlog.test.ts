// The backlog as the monitoring port (8883) judges it by itself, through the running runtime
// (docs/monitoring.md "Backlog and holds"): with the push function frozen, rows pending past their
// deadline class's threshold make `backlog:<destination>` degraded — and down once a realtime row is
// past its deadline — at the first /components call, with no backlog alert raised by anyone; once
// the rows are delivered it is ok again. A sudden rise of held records makes `holds` degraded, naming
// reason codes only, and ok once they are released. A private database: the shared one's national destination
// has other files' rows waiting, and the front here must judge only this file's.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootStack, type Booted } from '../../infra/runtime/boot.js';
import { devKeyFiles } from '../../shared/pii/index.js';
import { ComponentsSchema } from '../../shared/monitor/components.js';
import { privateDatabase, uniqueId } from '../setup/db.js';

let priv: Awaited<ReturnType<typeof privateDatabase>>;
let front: Booted;
let token: string;
let frozen: number[] = [];

beforeAll(async () => {
  priv = await privateDatabase('cdc_mon_backlog');
  front = await bootStack({ name: 'monitor-backlog', databaseUrl: priv.url, secrets: devKeyFiles() });
  token = readFileSync(join(front.secretsDir, 'monitor-token'), 'utf8').trim();
  // The push function hung, as a `kill -STOP` of its replica leaves it (the runtime here fires no cron
  // and nudges no one: it would not run anyway).
  frozen = front.rt
    .replicas('push')
    .map((r) => r.pid)
    .filter((p): p is number => p !== undefined);
  expect(frozen.length).toBeGreaterThan(0);
  for (const pid of frozen) process.kill(pid, 'SIGSTOP');
}, 120_000);

afterAll(async () => {
  for (const pid of frozen) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // already gone
    }
  }
  await front?.close();
  await priv?.drop();
});

async function component(name: string) {
  const res = await fetch(`${front.rt.portUrls.monitor}/components`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  const comp = ComponentsSchema.parse(await res.json());
  return comp.components.find((c) => c.name === name);
}

/** Outbox rows of the national destination stored `ageS` seconds ago, pending (never sent). */
async function pending(n: number, deadlineClass: string, ageS: number): Promise<void> {
  const org = uniqueId('o').slice(0, 20);
  await priv.db.query(
    `INSERT INTO outbox (destination, resource, org_code, record_id, version, op, deadline_class, payload, created_at, next_attempt_at)
     SELECT 'national', 'emrPatientInfo', $1, 'r' || g, 1, 'upsert', $2, '{}'::jsonb, now() - $3 * interval '1 second', now() - $3 * interval '1 second'
       FROM generate_series(1, $4::int) g`,
    [org, deadlineClass, ageS, n],
  );
}

/** The platform acknowledged every pending row: what a push run records (shared/uplink/push.ts). */
async function delivered(): Promise<void> {
  await priv.db.query(`UPDATE outbox SET state = 'sent', sent_at = now() WHERE destination = 'national' AND state = 'pending'`);
  await priv.db.query(
    `INSERT INTO uplink_batch (batch_id, destination, records, bytes, replayed, platform_key_id, received_at, sent_at, receipt)
     VALUES ($1, 'national', 1, 1, false, repeat('0', 64), now(), now(), '{}'::jsonb)`,
    [uniqueId('b')],
  );
}

describe('the backlog on the monitoring port, with the push function hung', () => {
  it('is degraded as soon as realtime rows wait past their threshold, down past their deadline, and ok once delivered', async () => {
    expect(await component('backlog:national')).toMatchObject({ state: 'ok', detail: expect.stringContaining('nothing pending') });

    // 3 minutes of a hung push: realtime rows waiting 170 s (threshold 120 s, deadline 300 s).
    await pending(40, 'realtime', 170);
    await pending(10, 'realtime', 5);
    const late = await component('backlog:national');
    expect(late).toMatchObject({ state: 'degraded' });
    expect(late!.detail).toMatch(/^上报积压 \(backlog\): 50 pending, the oldest 1[6-9]\d s; the oldest realtime row waits 1[6-9]\d s \(over 120 s\)/);
    expect(late!.detail).toContain('nothing delivered yet');
    // Nobody raised an alert: the monitor judged the outbox itself.
    expect((await priv.db.query(`SELECT count(*)::int AS n FROM alert_event`)).rows[0].n).toBe(0);

    // A realtime row past its deadline: down.
    await pending(1, 'realtime', 400);
    const past = await component('backlog:national');
    expect(past).toMatchObject({ state: 'down' });
    expect(past!.detail).toMatch(
      /^实时记录已超时限 \(backlog\): 51 pending, the oldest 4\d\d s; the oldest realtime row waits 4\d\d s, past its deadline of 300 s/,
    );

    await delivered();
    const after = await component('backlog:national');
    expect(after).toMatchObject({ state: 'ok', detail: expect.stringMatching(/^nothing pending; last delivery \d s ago$/) });
    expect(after!.lastSuccessAt).not.toBeNull();
  });

  it('is degraded when day-class rows wait and nothing was delivered for the stall time, ok while deliveries go on', async () => {
    // T+0 rows 6 minutes old: within their own threshold (an hour), but nothing moves.
    await pending(5, 'T+0', 360);
    // The last delivery (the test above) is seconds old: the backlog moves, ok.
    expect((await component('backlog:national'))!.state).toBe('ok');
    await priv.db.query(`UPDATE uplink_batch SET answered_at = now() - interval '10 minutes' WHERE destination = 'national'`);
    const stalled = await component('backlog:national');
    expect(stalled).toMatchObject({ state: 'degraded' });
    expect(stalled!.detail).toContain('nothing delivered for over 300 s while rows wait');
    await delivered();
    expect((await component('backlog:national'))!.state).toBe('ok');
  });
});

describe('held records on the monitoring port', () => {
  it('a sudden rise of holds is degraded, naming the reason codes and no record; ok once released', async () => {
    expect(await component('holds')).toEqual({ name: 'holds', state: 'ok', detail: 'no record held' });
    // A code list that dropped sex code 1: 150 new patients held for it, their 30 children behind them.
    const org = uniqueId('o').slice(0, 20);
    const child = uniqueId('lab');
    await priv.db.query(
      `INSERT INTO record_hold (resource, org_code, record_id, kind, target, value, since)
       SELECT 'emrPatientInfo', $1, 'p' || g, 'mapping', 'sex', '1', now() - interval '1 minute' FROM generate_series(1, 150) g`,
      [org],
    );
    await priv.db.query(
      `INSERT INTO record_hold (resource, org_code, record_id, kind, target, value, since)
       SELECT 'emrExLab', $1, $2 || g, 'parent', 'emrPatientInfo', 'p' || g, now() FROM generate_series(1, 30) g`,
      [org, child],
    );
    const held = await component('holds');
    expect(held).toMatchObject({ state: 'degraded' });
    expect(held!.detail).toMatch(
      /^暂缓上报增多 \(records held\): 180 records held in the last 600 s \(over 100\); 180 held in all, the oldest 6\d s; reasons: mapping:sex\/1 \(150\), parent:emrPatientInfo \(30\)$/,
    );
    // Reason codes only: not the org, not a record's id, not the parent's id.
    expect(held!.detail).not.toContain(org);
    expect(held!.detail).not.toContain(child);
    expect(held!.detail).not.toMatch(/\bp1\b/);

    // Released (the code list put back): nothing held, ok.
    await priv.db.query(`DELETE FROM record_hold WHERE org_code = $1`, [org]);
    expect(await component('holds')).toEqual({ name: 'holds', state: 'ok', detail: 'no record held' });
  });
});
