// What the monitoring port judges by the front's own settings (docs/monitoring.md "Components"): push
// is late against the schedule in force — stack.yml's every minute, or the one a configuration bundle
// set (schedule_state) —, not a fixed five minutes; and "today" in `errors` starts at the hospital's
// midnight (TZ_LOCAL), not the database session's (UTC on make up's PostgreSQL). The evaluation's
// 运行率 (docs/console.md) counts the schedule's periods with a run, not minutes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluate } from '../../shared/console/evaluation.js';
import { components } from '../../shared/monitor/components.js';
import { longestGapS } from '../../shared/time/cron.js';
import { privateDatabase } from '../setup/db.js';

let priv: Awaited<ReturnType<typeof privateDatabase>>;
beforeAll(async () => {
  priv = await privateDatabase('cdc_mon_sched');
}, 120_000);
afterAll(async () => {
  await priv?.drop();
});

const read = (now: Date) => components(priv.db, { platforms: {}, diskPath: '/', probe: false, now, timeZone: 'Asia/Shanghai' });
const push = async (now: Date) => (await read(now)).components.find((c) => c.name === 'schedule:push')!;

describe("the monitor's figures by the front's own settings", () => {
  it('schedule:push is late against the schedule in force, not a fixed five minutes', async () => {
    const ran = new Date('2026-12-07T15:10:00.400Z');
    await priv.db.query(`INSERT INTO push_run (started_at, finished_at, trigger) VALUES ($1, $1, 'cron')`, [ran]);
    const at345 = new Date(ran.getTime() + 345_000);
    // No pass of the schedules recorded: stack.yml's every minute, five minutes of slack.
    expect(await push(at345)).toMatchObject({ state: 'degraded', detail: 'last success 345 s ago' });
    // The platform's bundle moved push to every ten minutes: 345 s after a run is on time.
    await priv.db.query(
      `INSERT INTO schedule_state (function_name, schedule, written, source, bundle_version, checked_at) VALUES ('push', '*/10 * * * *', '*/10 * * * *', 'bundle', 20, now())`,
    );
    expect(await push(at345)).toMatchObject({ state: 'ok', detail: 'last success 345 s ago (schedule */10 * * * *: due within 840 s)' });
    expect((await push(new Date(ran.getTime() + 900_000))).state).toBe('degraded');
    // Back to every minute.
    await priv.db.query(`UPDATE schedule_state SET schedule = '* * * * *', source = 'stack' WHERE function_name = 'push'`);
    expect((await push(at345)).state).toBe('degraded');
    expect(longestGapS('*/10 * * * *', ran)).toBe(600);
    expect(longestGapS('0 8,20 * * *', ran)).toBe(12 * 3600);
    expect(longestGapS('not a cron', ran)).toBeNull();
  });

  it('names a backlog alert raised and not cleared as a degraded backlog:<destination>', async () => {
    const now = new Date('2026-12-07T15:30:00Z');
    const backlog = async () => (await read(now)).components.filter((c) => c.name.startsWith('backlog:'));
    // Every enabled destination has its backlog component, computed from the outbox (docs/monitoring.md).
    const empty = { name: 'backlog:national', state: 'ok', detail: 'nothing pending; nothing delivered yet', lastSuccessAt: null };
    expect(await backlog()).toEqual([empty]);
    await priv.db.query(`INSERT INTO alert_event (destination, kind, pending, oldest_age_s, message) VALUES ('national', 'raise', 2660, 900, '积压 2660 条')`);
    expect(await backlog()).toEqual([{ name: 'backlog:national', state: 'degraded', detail: '积压 2660 条', lastSuccessAt: null }]);
    await priv.db.query(`INSERT INTO alert_event (destination, kind, pending, oldest_age_s, message) VALUES ('national', 'clear', 0, NULL, '积压已清')`);
    expect(await backlog()).toEqual([empty]);
  });

  it("counts the day's refusals from the hospital's midnight", async () => {
    // 22:55 Beijing on Dec 7 (14:55 UTC).
    await priv.db.query(`INSERT INTO ingest_rejection (resource, issues, received_at) VALUES ('emrPatientInfo', '[]', '2026-12-07T14:55:00Z')`);
    // 23:30 Beijing the same day: today's. 07:00 Beijing on Dec 8 (still Dec 7 in UTC): yesterday's.
    expect((await read(new Date('2026-12-07T15:30:00Z'))).errors!.rejectedToday).toBe(1);
    expect((await read(new Date('2026-12-07T23:00:00Z'))).errors!.rejectedToday).toBe(0);
  });

  it("运行率 counts the push schedule's periods with a run: every 20 minutes under */10 is half", async () => {
    // A whole day (Dec 18, Beijing) with a run every 20 minutes: 72 runs.
    await priv.db.query(
      `INSERT INTO push_run (started_at, finished_at, trigger) SELECT t, t, 'cron'
         FROM generate_series('2026-12-18T00:00:30+08:00'::timestamptz, '2026-12-18T23:40:30+08:00'::timestamptz, interval '20 minutes') t`,
    );
    const day = async () =>
      (await evaluate(priv.db, { orgs: '*', timeZone: 'Asia/Shanghai', now: new Date('2026-12-20T12:00:00+08:00') })).days.find((d) => d.day === '2026-12-18')!
        .stability;
    const inForce = async (schedule: string) => {
      await priv.db.query(`DELETE FROM schedule_state WHERE function_name = 'push'`);
      await priv.db.query(`INSERT INTO schedule_state (function_name, schedule, written, source, checked_at) VALUES ('push', $1, $1, 'bundle', now())`, [
        schedule,
      ]);
    };
    await inForce('*/10 * * * *');
    expect(await day()).toMatchObject({ runMinutes: 72, minutes: 1440, uptimeShare: 0.5 });
    // Under stack.yml's every minute the same runs are 72 of 1440 minutes.
    await inForce('* * * * *');
    expect(await day()).toMatchObject({ runMinutes: 72, minutes: 1440, uptimeShare: 72 / 1440 });
  });
});
