import { describe, expect, it } from 'vitest';
import { redact } from '../../shared/backup/tools.js';

describe('tool errors in logs and alerts', () => {
  it('cut quoted values and CONTEXT/DETAIL lines, keep table names', () => {
    const tail = [
      'pg_restore: processing data for table "public.emr_patient_info"',
      'pg_restore: error: COPY failed for table "emr_patient_info": ERROR:  value too long for type character varying(10): "张三 11010519491231002X"',
      'CONTEXT:  COPY emr_patient_info, line 1: "P0001	张三	11010519491231002X"',
    ].join(' | ');
    const out = redact(tail);
    expect(out).not.toMatch(/张三|11010519491231002X|P0001/);
    expect(out).toContain('"public.emr_patient_info"');
    expect(out).toContain('COPY failed for table "emr_patient_info"');
    expect(out).toContain('"…"');
  });
});
