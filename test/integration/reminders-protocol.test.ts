// The reminders' sweep on the real database (shared/warning/reminders.ts, docs/warning.md "Reminders"):
// the horizon of a writer seen in pg_locks but not in the activity snapshot, a stream's position that
// never goes back, the reminders that end (`removed`), and the values at the edges of a position.
import { describe, expect, it } from 'vitest';
import { formatCursor, horizonOf, listReminders, markReminder, microsOf, parseCursor, POSITION_MAX_US, sinceRange } from '../../shared/warning/reminders.js';
import { testDb, uniqueOrg } from '../setup/db.js';

const db = testDb();

/** `n` open cases of one org (one warning run's stamp), with a department and doctor each. */
async function cases(org: string, rows: Array<{ dept: string; doctor: string }>): Promise<string[]> {
  const ids: string[] = [];
  for (const [i, r] of rows.entries()) {
    const q = await db.query<{ case_id: string }>(
      `INSERT INTO warning_case (org_code, patient_id, disease, nndrs, class_a, deadline_hours, state, first_at, due_at, evidence_count, opened_at, updated_at, dept_code, doctor_id)
       VALUES ($1, $2, '肺结核', '0700', false, 24, 'to_confirm', now(), now() + interval '24 hours', 1, now(), now(), $3, $4) RETURNING case_id`,
      [org, `rp${i}`, r.dept, r.doctor],
    );
    ids.push(String(q.rows[0]!.case_id));
  }
  return ids;
}

/** A case leaves the open set as a warning run writes it (shared/warning/store.ts deriveCase moves changed_at). */
const end = (caseId: string, state: string) =>
  db.query('UPDATE warning_case SET state = $2, updated_at = now(), changed_at = clock_timestamp() WHERE case_id = $1', [caseId, state]);

describe('the sweep horizon', () => {
  it('does not take a writer of the front’s own role whose transaction the activity snapshot does not show as 60 s old', async () => {
    const reader = await db.connect();
    const writer = await db.connect();
    try {
      await reader.query('BEGIN');
      // The reader's activity snapshot is taken now, while the writer is idle (xact_start NULL) ...
      await reader.query('SELECT count(*) FROM pg_stat_activity');
      const now = microsOf((await reader.query<{ t: string }>(`SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t`)).rows[0]!.t)!;
      // ... and the writer then locks warning_case for writing: pg_locks (read live) shows its lock.
      await writer.query('BEGIN');
      await writer.query('LOCK TABLE warning_case IN ROW EXCLUSIVE MODE');
      const seen = await reader.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.relation = 'warning_case'::regclass AND l.pid <> pg_backend_pid() AND a.xact_start IS NULL AND a.usename = current_user`,
      );
      expect(seen.rows[0]!.n, 'the writer is in pg_locks with no transaction in the snapshot').toBeGreaterThan(0);
      const h = await horizonOf(reader);
      // Before: clamped at now − 60 s. Other tests' writers, if any, are seconds old at most.
      expect(now - h).toBeLessThan(30_000_000);
    } finally {
      await writer.query('ROLLBACK').catch(() => undefined);
      await reader.query('ROLLBACK').catch(() => undefined);
      writer.release();
      reader.release();
    }
  });

  it('never puts a sweep’s asOf behind the position the caller stands at (floor), however low the horizon reads', async () => {
    const org = uniqueOrg();
    await cases(org, [{ dept: 'd1', doctor: 'x' }]);
    const since = (await listReminders(db, { orgs: [org], orgCode: org, limit: 10 }, new Date())).asOf;
    const stands = microsOf(since)!;
    const low = async () => stands - 60_000_000;
    const without = await listReminders(db, { orgs: [org], orgCode: org, since, limit: 10 }, new Date(), { horizon: low });
    expect(microsOf(without.asOf)).toBe(stands - 60_000_000);
    const withFloor = await listReminders(db, { orgs: [org], orgCode: org, since, limit: 10 }, new Date(), { horizon: low, floor: stands });
    expect(microsOf(withFloor.asOf)).toBe(stands);
  });
});

describe('reminders that end', () => {
  it('a sweep from since=asOf lists the cases that left the open set, with why, honouring dept and doctor', async () => {
    const org = uniqueOrg();
    const [a, b, c, d] = await cases(org, [
      { dept: 'd1', doctor: 'x' },
      { dept: 'd1', doctor: 'y' },
      { dept: 'd2', doctor: 'x' },
      { dept: 'd1', doctor: 'x' },
    ]);
    const q = { orgs: [org], orgCode: org, limit: 100 };
    const first = await listReminders(db, q, new Date());
    expect(first.removed).toEqual([]);
    expect(first.reminders.map((r) => r.caseId).sort()).toEqual([a, b, c, d].sort());
    await end(a!, 'excluded');
    await end(b!, 'to_verify');
    await end(c!, 'closed');
    const next = await listReminders(db, { ...q, since: first.asOf }, new Date());
    expect(next.reminders).toEqual([]);
    expect(next.removed.map((r) => [r.caseId, r.reason]).sort()).toEqual(
      [
        [a, 'excluded'],
        [b, 'carded'],
        [c, 'closed'],
      ].sort(),
    );
    expect(next.removed.find((r) => r.caseId === a)).toMatchObject({ orgCode: org, patientId: 'rp0', state: 'excluded', stateName: expect.any(String) });
    // The filters the reminders take: dept d1 (a, b), doctor x (a, c), another org's caller (none).
    const dept = await listReminders(db, { ...q, dept: 'd1', since: first.asOf }, new Date());
    expect(dept.removed.map((r) => r.caseId).sort()).toEqual([a, b].sort());
    const doctor = await listReminders(db, { ...q, doctor: 'x', since: first.asOf }, new Date());
    expect(doctor.removed.map((r) => r.caseId).sort()).toEqual([a, c].sort());
    const other = await listReminders(db, { orgs: [uniqueOrg()], since: first.asOf, limit: 100 }, new Date());
    expect(other.removed.filter((r) => r.orgCode === org)).toEqual([]);
    // A sweep without since is the open set: no removals.
    const all = await listReminders(db, q, new Date());
    expect([all.reminders.map((r) => r.caseId), all.removed]).toEqual([[d], []]);
    // Endings page with the reminders: a page of one at a time delivers each once.
    const seen: string[] = [];
    let p = await listReminders(db, { ...q, since: first.asOf, limit: 1 }, new Date());
    for (let n = 0; ; n++) {
      seen.push(...p.removed.map((r) => r.caseId), ...p.reminders.map((r) => r.caseId));
      if (!p.more) break;
      expect(n).toBeLessThan(10);
      p = await listReminders(db, { ...q, cursor: parseCursor(p.next!)!, limit: 1 }, new Date());
    }
    expect(seen.sort()).toEqual([a, b, c].sort());
  });

  it('a case the HIS marks filled is an ending at once (reason filled), not a reminder', async () => {
    const org = uniqueOrg();
    const [a] = await cases(org, [{ dept: 'd1', doctor: 'x' }]);
    const first = await listReminders(db, { orgs: [org], limit: 10 }, new Date());
    await markReminder(db, a!, 'filled', { caller: 'his:k1', doctor: 'x', note: null }, [org], new Date());
    const next = await listReminders(db, { orgs: [org], since: first.asOf, limit: 10 }, new Date());
    expect([next.reminders, next.removed.map((r) => [r.caseId, r.reason])]).toEqual([[], [[a, 'filled']]]);
  });
});

describe('values at the edges of a position', () => {
  it('a since before any data is from the beginning; far in the future or beyond a position, refused', () => {
    const now = new Date('2026-12-07T12:00:00Z');
    for (const s of ['0001-01-01T00:00:00Z', '0000-01-01T00:00:00Z', '1753-01-01T00:00:00.000+08:00', '1970-01-01T00:00:00Z'])
      expect(sinceRange(s, now), s).toBe('beginning');
    for (const s of ['9999-12-31T23:59:59.999999Z', '2200-01-01T00:00:00Z', '2026-12-09T12:00:00Z']) expect(sinceRange(s, now), s).toBe('future');
    for (const s of ['2026-12-07T11:00:00.123456Z', '2026-12-08T11:00:00+08:00', '2000-01-01T00:00:00Z']) expect(sinceRange(s, now), s).toBe('ok');
    expect(sinceRange('yesterday', now)).toBe('invalid');
  });

  it('a cursor with a time out of range is not one (c1 and c2), one the front hands out still is', () => {
    for (const c of ['c1.99999999999999999.99999999999999999.-.-', 'c2.99999999999999999.1.-.-', 'c2.-.99999999999999999.-.-', 'c2.-.1.99999999999999999.5'])
      expect(parseCursor(c), c).toBeNull();
    const ok = { from: POSITION_MAX_US - 1, horizon: 1_796_666_588_759_336, at: 1_796_666_649_020_342, caseId: '17' };
    expect(parseCursor(formatCursor(ok))).toEqual(ok);
    expect(parseCursor('c1.1796666588759.1796666649020.-.-')).not.toBeNull();
  });

  it('a sweep from a since before any data is the whole open set, not a 500', async () => {
    const org = uniqueOrg();
    const ids = await cases(org, [{ dept: 'd1', doctor: 'x' }]);
    const r = await listReminders(db, { orgs: [org], since: '0001-01-01T00:00:00Z', limit: 10 }, new Date());
    expect([r.reminders.map((x) => x.caseId), r.removed]).toEqual([ids, []]);
  });
});
