// Request paths in log lines (shared/log maskPath): the route's words kept, ids replaced by `*`.
import { describe, expect, it } from 'vitest';
import { maskPath } from '../../shared/log/index.js';

const words = new Set(['emrPatientInfo', 'emrExLab']);

describe('a logged path', () => {
  it('keeps route words and resource names, masks every other segment and drops the query', () => {
    expect(maskPath('/emrPatientInfo/P0001', words)).toBe('/emrPatientInfo/*');
    expect(maskPath('/hclient/emr/receive/emrExLab/LAB-440106199001011234?orgCode=123', words)).toBe('/hclient/emr/receive/emrExLab/*');
    expect(maskPath('/reminders/123/ack', words)).toBe('/reminders/*/ack');
    expect(maskPath('/cases/9/assign', words)).toBe('/cases/*/assign');
    expect(maskPath('/张三/13800000000', words)).toBe('/*/*');
    expect(maskPath('/', words)).toBe('/');
    expect(maskPath('/openapi.json', words)).toBe('/openapi.json');
  });
});
