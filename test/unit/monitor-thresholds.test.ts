// The backlog component's judgement (docs/monitoring.md "Backlog and holds"), from the figures the
// monitor reads off the outbox: each deadline class against its threshold, a realtime row past its
// deadline, a destination where nothing moves; and the thresholds' settings.
import { describe, expect, it } from 'vitest';
import { backlogState, holdsState, reasonCode, type BacklogFigures } from '../../shared/monitor/backlog.js';
import { DEFAULT_THRESHOLDS, monitorConcern, REALTIME_DEADLINE_S } from '../../shared/monitor/config.js';
import { parseConcern } from '../../shared/config/index.js';
import { REALTIME_S } from '../../shared/console/figures.js';

const figures = (f: Partial<BacklogFigures>): BacklogFigures => ({
  destination: 'national',
  pending: 1,
  capped: false,
  realtimeAgeS: null,
  twoHoursAgeS: null,
  dayAgeS: null,
  lastDeliveryAgeS: 5,
  lastDeliveryAt: new Date('2026-12-07T15:00:00Z'),
  ...f,
});
const state = (f: Partial<BacklogFigures>) => backlogState(figures(f), DEFAULT_THRESHOLDS);

describe('the backlog component', () => {
  it('is ok with nothing pending, or rows within their thresholds while deliveries go on', () => {
    expect(state({ pending: 0 })).toEqual({
      name: 'backlog:national',
      state: 'ok',
      detail: 'nothing pending; last delivery 5 s ago',
      lastSuccessAt: '2026-12-07T15:00:00.000Z',
    });
    expect(state({ pending: 3, realtimeAgeS: 120, twoHoursAgeS: 900, dayAgeS: 3600 })).toMatchObject({ state: 'ok' });
  });

  it('is degraded past a class threshold, down past the realtime deadline', () => {
    expect(state({ realtimeAgeS: 121 })).toMatchObject({
      state: 'degraded',
      detail: expect.stringContaining('the oldest realtime row waits 121 s (over 120 s)'),
    });
    expect(state({ twoHoursAgeS: 901 })).toMatchObject({ state: 'degraded', detail: expect.stringContaining('the oldest 2h row waits 901 s (over 900 s)') });
    expect(state({ dayAgeS: 3601 })).toMatchObject({ state: 'degraded', detail: expect.stringContaining('the oldest T+0/T+1 row waits 3601 s') });
    expect(state({ pending: 10_000, capped: true, realtimeAgeS: 301 })).toMatchObject({
      state: 'down',
      detail: expect.stringMatching(
        /^实时记录已超时限 \(backlog\): 10000\+ pending, the oldest 301 s; the oldest realtime row waits 301 s, past its deadline of 300 s/,
      ),
    });
  });

  it('is degraded when rows waited the stall time and nothing was delivered for as long', () => {
    expect(state({ dayAgeS: 301, lastDeliveryAgeS: 301 })).toMatchObject({
      state: 'degraded',
      detail: expect.stringContaining('nothing delivered for over 300 s while rows wait'),
    });
    expect(state({ dayAgeS: 301, lastDeliveryAgeS: null, lastDeliveryAt: null })).toMatchObject({ state: 'degraded' });
    // Young rows after a quiet night: nothing stalls yet.
    expect(state({ dayAgeS: 30, lastDeliveryAgeS: 8 * 3600 })).toMatchObject({ state: 'ok' });
  });

  it('takes its thresholds from MONITOR_BACKLOG_* and MONITOR_HOLDS_*; realtime’s deadline is the console’s', () => {
    expect(REALTIME_DEADLINE_S).toBe(REALTIME_S);
    expect(parseConcern(monitorConcern, {}).thresholds).toEqual(DEFAULT_THRESHOLDS);
    const t = parseConcern(monitorConcern, { MONITOR_BACKLOG_REALTIME_S: '60', MONITOR_BACKLOG_STALL_S: '120', MONITOR_HOLDS_AGE_S: '86400' }).thresholds;
    expect(t).toMatchObject({ realtimeS: 60, stallS: 120, holdsAgeS: 86400, twoHoursS: 900 });
    expect(() => parseConcern(monitorConcern, { MONITOR_BACKLOG_2H_S: '0' })).toThrow(/MONITOR_BACKLOG_2H_S/);
  });
});

describe('the holds component', () => {
  const held = { recent: 20, held: 40, oldestAgeS: 90_000, reasons: [{ reason: 'mapping:sex/1', records: 20 }] };
  it('is degraded above the recent count, or past the age when one is set', () => {
    expect(holdsState(held, DEFAULT_THRESHOLDS)).toEqual({
      name: 'holds',
      state: 'ok',
      detail: '20 held in the last 600 s, 40 held in all, the oldest 90000 s; reasons: mapping:sex/1 (20)',
    });
    expect(holdsState({ ...held, recent: 101 }, DEFAULT_THRESHOLDS)).toMatchObject({
      state: 'degraded',
      detail: expect.stringContaining('101 records held in the last 600 s (over 100)'),
    });
    expect(holdsState(held, { ...DEFAULT_THRESHOLDS, holdsAgeS: 86_400 })).toMatchObject({
      state: 'degraded',
      detail: expect.stringContaining('a record held for 90000 s (over 86400 s)'),
    });
  });

  it('names reasons by code: a parent hold by its resource alone, never the parent’s id', () => {
    expect(reasonCode('parent', 'emrPatientInfo', 'P-0001')).toBe('parent:emrPatientInfo');
    expect(reasonCode('mapping', 'sex', 'M 1')).toBe('mapping:sex/M%201');
    expect(reasonCode('rule', 'genderCode', 'idConsistency')).toBe('rule:genderCode/idConsistency');
  });
});
