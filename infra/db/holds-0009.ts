/**
 * The TypeScript half of migration 0009_record_hold.sql, run by migrate.ts in that migration's
 * transaction: the mapping holds of record_receipt.hold_reasons become record_hold rows, then the
 * column is dropped (docs/faults.md, "Hold storage"). Parent holds were copied from
 * record_parent_wait by the SQL half.
 *
 * A token counts only if it is a whole `mapping:<domain>/<URI-encoded code>` that decodes, and is
 * not a piece of one of the record's parent ids (an id with a space in it was split into pieces by
 * the old format; its real hold is the parent one).
 */
import type pg from 'pg';

const TOKEN = /^mapping:([^/\s]{1,40})\/(\S+)$/;

export async function convertHoldReasons(client: pg.ClientBase): Promise<void> {
  const rows = await client.query<{ resource: string; org_code: string; record_id: string; hold_reasons: string; updated_at: Date }>(
    `SELECT resource, org_code, record_id, hold_reasons, updated_at FROM record_receipt WHERE hold_reasons LIKE '%mapping:%'`,
  );
  for (const r of rows.rows) {
    const waits = await client.query<{ parent_id: string }>(
      'SELECT parent_id FROM record_parent_wait WHERE resource = $1 AND org_code = $2 AND record_id = $3',
      [r.resource, r.org_code, r.record_id],
    );
    const seen = new Set<string>();
    for (const token of r.hold_reasons.split(' ')) {
      const m = TOKEN.exec(token);
      if (!m || waits.rows.some((w) => w.parent_id.includes(token))) continue;
      let code: string;
      try {
        code = decodeURIComponent(m[2]!);
      } catch {
        continue;
      }
      const key = `${m[1]}\u0000${code}`;
      if (code.length > 200 || seen.has(key)) continue;
      seen.add(key);
      await client.query(`INSERT INTO record_hold (resource, org_code, record_id, kind, target, value, since) VALUES ($1, $2, $3, 'mapping', $4, $5, $6)`, [
        r.resource,
        r.org_code,
        r.record_id,
        m[1],
        code,
        r.updated_at,
      ]);
    }
  }
  await client.query('ALTER TABLE record_receipt DROP COLUMN hold_reasons');
}
