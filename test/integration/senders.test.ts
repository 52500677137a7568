// What real senders send (docs/data-set.md "Lengths", "Business time"): a 32-character hex visit
// number is accepted with a warning above the documented length, a longer one refused; operationTime
// and a lab report's report time are not required, and the business time falls back along the
// resource's chain (report time → examination time → … → operation time).
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { sample } from '../../infra/simulators/samples.js';
import { resources } from '../../schemas/index.js';
import { upsertMany } from '../../shared/ingest/index.js';
import { formatLocal } from '../../shared/time/index.js';
import { testDb, uniqueId, uniqueOrg } from '../setup/db.js';

const db = testDb();
const ctx = () => ({ callId: null, test: false, now: new Date() });
const hex = (n: number) => randomBytes(n).toString('hex').slice(0, n);

describe('identifier lengths', () => {
  it('a 32-character hex visit number is stored with a longerThanUsual warning; 65 characters are refused', async () => {
    const org = uniqueOrg();
    const serial = hex(32);
    const [ok] = await upsertMany(
      db,
      resources.emrActivityInfo!,
      [{ ...sample('emrActivityInfo', { orgCode: org, id: uniqueId('a'), patientId: 'p', seed: 1 }), serialNumber: serial }],
      ctx(),
    );
    expect(ok!.ok).toBe(true);
    if (!ok!.ok) return;
    expect(ok!.outcome.warnings.map((w) => `${w.field}/${w.rule}`)).toContain('serialNumber/longerThanUsual');
    const row = await db.query('SELECT serial_number FROM emr_activity_info WHERE org_code = $1', [org]);
    expect(row.rows[0].serial_number).toBe(serial);
    const [bad] = await upsertMany(
      db,
      resources.emrActivityInfo!,
      [{ ...sample('emrActivityInfo', { orgCode: org, id: uniqueId('a'), patientId: 'p', seed: 1 }), serialNumber: hex(65) }],
      ctx(),
    );
    expect(bad!.ok).toBe(false);
    if (bad!.ok) return;
    expect(bad!.error.issues.map((i) => `${i.field}/${i.rule}`)).toEqual(['serialNumber/maxLength']);
  });
});

describe('business time', () => {
  it('a lab report without its report time is accepted; its business time is the examination time, else the operation time', async () => {
    const org = uniqueOrg();
    const now = Date.now();
    const t = (h: number) => formatLocal(new Date(now - h * 3_600_000));
    const base = (id: string) => {
      const rec = sample('emrExLab', { orgCode: org, id, patientId: 'p', seed: 2 });
      delete rec.examinationReportDate;
      return rec;
    };
    const a = uniqueId('lab');
    const b = uniqueId('lab');
    const recA = { ...base(a), specimenSamplingDate: t(5), specimenReceivingDate: t(4), examinationDate: t(3), operationTime: t(1) };
    const recB: Record<string, unknown> = { ...base(b), operationTime: t(2) };
    delete recB.examinationDate;
    delete recB.specimenSamplingDate;
    delete recB.specimenReceivingDate;
    const res = await upsertMany(db, resources.emrExLab!, [recA, recB], ctx());
    expect(res.map((r) => r.ok)).toEqual([true, true]);
    const rows = await db.query<{ record_id: string; business_at: Date }>(
      'SELECT record_id, business_at FROM record_receipt WHERE resource = $1 AND org_code = $2 ORDER BY record_id',
      ['emrExLab', org],
    );
    const at = Object.fromEntries(rows.rows.map((r) => [r.record_id, formatLocal(new Date(r.business_at))]));
    expect(at).toEqual({ [a]: t(3), [b]: t(2) });
  });

  it('operationTime is required nowhere', () => {
    for (const r of Object.values(resources)) expect(r.required, r.name).not.toContain('operationTime');
  });
});
