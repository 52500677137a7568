// A bundle's schedules said in the cron-connector's zone (shared/configbundle/schedules.ts), and the
// runtime's rule that a change of schedule alone replaces no replica (infra/runtime/service.ts).
import { describe, expect, it } from 'vitest';
import { scheduleIssues, shiftCron } from '../../shared/configbundle/schedules.js';
import { BUNDLE_FORMAT, type Bundle } from '../../shared/configbundle/schema.js';
import { sameButSchedule } from '../../infra/runtime/service.js';
import type { FunctionSpec } from '../../infra/runtime/stack.js';

const SHANGHAI_TO_UTC = 480;

describe('shiftCron', () => {
  it('moves the hours of an expression from Asia/Shanghai to UTC', () => {
    expect(shiftCron('20 2 * * *', SHANGHAI_TO_UTC)).toEqual({ expr: '20 18 * * *' });
    expect(shiftCron('0 8,9,12 * * *', SHANGHAI_TO_UTC)).toEqual({ expr: '0 0,1,4 * * *' });
    expect(shiftCron('0 8-10 * * *', SHANGHAI_TO_UTC)).toEqual({ expr: '0 0,1,2 * * *' });
    expect(shiftCron('5 */6 * * *', SHANGHAI_TO_UTC)).toEqual({ expr: '5 4,10,16,22 * * *' });
    expect(shiftCron('5 9-21/6 * * *', SHANGHAI_TO_UTC)).toEqual({ expr: '5 1,7,13 * * *' });
  });

  it('leaves an expression alone when the zones agree or every hour fires', () => {
    expect(shiftCron('20 2 * * 1-5', 0)).toEqual({ expr: '20 2 * * 1-5' });
    expect(shiftCron('*/15 * * * *', SHANGHAI_TO_UTC)).toEqual({ expr: '*/15 * * * *' });
    expect(shiftCron('7 * 1 * *', SHANGHAI_TO_UTC)).toEqual({ expr: '7 * 1 * *' });
  });

  it('moves restricted days only when no hour changes day, and says why otherwise', () => {
    expect(shiftCron('0 9 * * 1-5', SHANGHAI_TO_UTC)).toEqual({ expr: '0 1 * * 1-5' });
    const r = shiftCron('0 2 * * 1-5', SHANGHAI_TO_UTC);
    expect(r).toMatchObject({ problem: expect.stringMatching(/another day.*restricts days/) });
    expect(shiftCron('0 2 1 * *', SHANGHAI_TO_UTC)).toHaveProperty('problem');
    expect(shiftCron('0 2 * 6 *', SHANGHAI_TO_UTC)).toHaveProperty('problem');
  });

  it('refuses zones apart by a part of an hour and hour fields it cannot read', () => {
    expect(shiftCron('0 2 * * *', 330)).toMatchObject({ problem: expect.stringMatching(/330 minutes/) });
    expect(shiftCron('0 25 * * *', SHANGHAI_TO_UTC)).toHaveProperty('problem');
    expect(shiftCron('0 5-3 * * *', SHANGHAI_TO_UTC)).toHaveProperty('problem');
  });
});

describe('scheduleIssues', () => {
  const bundle = (schedules: Array<{ function: string; schedule: string }>): Bundle => ({
    format: BUNDLE_FORMAT,
    version: 1,
    issuedAt: '2026-12-04T08:00:00+08:00',
    issuer: 'test',
    sections: { schedules },
  });
  it('names each expression the connector could not run', () => {
    expect(scheduleIssues(bundle([{ function: 'push', schedule: '*/2 * * * *' }]))).toEqual([]);
    const issues = scheduleIssues(
      bundle([
        { function: 'push', schedule: '*/2 * * * *' },
        { function: 'backup', schedule: '61 * * * *' },
        { function: 'day-close', schedule: '0 0 31 2 9' },
      ]),
    );
    expect(issues.map((i) => i.field)).toEqual(['sections.schedules[1].schedule', 'sections.schedules[2].schedule']);
    expect(issues.every((i) => i.rule === 'cron')).toBe(true);
  });
});

describe('sameButSchedule', () => {
  const spec: FunctionSpec = {
    name: 'day-close',
    image: 'cdc-front/day-close:1',
    handler: '/x/functions/day-close',
    environment: { A: '1', B: '2' },
    secrets: ['s1', 's2'],
    labels: { 'com.openfaas.scale.min': '1' },
    annotations: { topic: 'cron-function', schedule: '*/15 * * * *', 'com.cdc-front.port': '8881' },
  };
  it('is true when only the schedule annotations differ (in any order), false for anything else', () => {
    expect(
      sameButSchedule(spec, {
        ...spec,
        environment: { B: '2', A: '1' },
        annotations: { 'com.cdc-front.port': '8881', schedule: '20 2 * * *', topic: 'cron-function', 'com.cdc-front.schedule.base': '*/15 * * * *' },
      }),
    ).toBe(true);
    expect(sameButSchedule(spec, { ...spec, environment: { A: '1', B: '3' } })).toBe(false);
    expect(sameButSchedule(spec, { ...spec, annotations: { ...spec.annotations, 'com.cdc-front.port': '8882' } })).toBe(false);
    expect(sameButSchedule(spec, { ...spec, secrets: ['s1'] })).toBe(false);
    expect(sameButSchedule(spec, { ...spec, image: 'cdc-front/day-close:2' })).toBe(false);
  });
});
