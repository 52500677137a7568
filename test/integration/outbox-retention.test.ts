// Delivered payloads do not stay forever (shared/outbox scrubDelivered, docs/security.md "Data at
// rest"): rows sent, skipped or superseded longer ago than the retention lose the record's content;
// rows that may still leave (pending, held, dead) and recent ones keep it; the keys, states and times
// stay.
import { afterAll, describe, expect, it } from 'vitest';
import { testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { scrubDelivered } from '../../shared/outbox/index.js';

const db = testDb();
const dest = uniqueId('ret').replace(/-/g, '_').slice(0, 40);
afterAll(async () => {
  await db.query('DELETE FROM outbox WHERE destination = $1', [dest]);
});

async function row(state: string, ageDays: number): Promise<string> {
  const r = await db.query<{ outbox_id: string }>(
    `INSERT INTO outbox (destination, resource, org_code, record_id, version, op, deadline_class, payload, state, created_at, sent_at)
     VALUES ($1, 'emrPatientInfo', $2, $3, 1, 'upsert', 'realtime', $4::jsonb, $5::varchar,
             now() - $6 * interval '1 day', CASE WHEN $5::varchar = 'sent' THEN now() - $6 * interval '1 day' END)
     RETURNING outbox_id`,
    [dest, uniqueOrg(), uniqueId('r'), JSON.stringify({ patientName: '张三', idCard: '11010519491231002X' }), state, ageDays],
  );
  return r.rows[0]!.outbox_id;
}

describe('outbox retention', () => {
  it('scrubs old delivered payloads only, keeping the rows', async () => {
    const oldSent = await row('sent', 40);
    const oldSkipped = await row('skipped', 40);
    const newSent = await row('sent', 5);
    const oldDead = await row('dead', 40);
    const oldPending = await row('pending', 40);
    const oldHeld = await row('held', 40);
    // Bounded per call: run until nothing is left to scrub (other files' old rows may be there too).
    while ((await scrubDelivered(db, 30)) > 0);
    const rows = await db.query<{ outbox_id: string; state: string; payload: Record<string, unknown>; sent_at: Date | null }>(
      'SELECT outbox_id, state, payload, sent_at FROM outbox WHERE destination = $1',
      [dest],
    );
    const by = new Map(rows.rows.map((r) => [r.outbox_id, r]));
    for (const id of [oldSent, oldSkipped]) expect(by.get(id)!.payload).toEqual({});
    expect(by.get(oldSent)!.sent_at).not.toBeNull();
    for (const id of [newSent, oldDead, oldPending, oldHeld]) expect(by.get(id)!.payload).toMatchObject({ patientName: '张三' });
    expect(rows.rows).toHaveLength(6);
  });
});
