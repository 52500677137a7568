// The restore gap's rule is said twice, for two kinds of reader: queuedVersion (TypeScript, a record's
// fate and the reconciliation) and sameContentSql (SQL, a card's status over many cards at once). Both
// must name the same queued version for every history a record can have: versions queued one by one,
// restores that move the current version on by whole gaps, writes after a restore (docs/backup.md
// "Versions after a restore").
import { describe, expect, it } from 'vitest';
import { queuedVersion, RESTORE_VERSION_GAP, sameContentSql } from '../../shared/ingest/restore-gap.js';
import { testDb } from '../setup/db.js';

const db = testDb();

/** Every history of up to three writes, restores and writes after: [current version, versions queued]. */
function histories(): Array<[number, number[]]> {
  const out: Array<[number, number[]]> = [];
  const walk = (current: number, queued: number[], steps: number) => {
    out.push([current, [...queued]]);
    if (steps === 0) return;
    walk(current + 1, [...queued, current + 1], steps - 1); // a write: the next version queued
    if (current > 0) walk(current + RESTORE_VERSION_GAP, queued, steps - 1); // a restore: moved on, nothing queued
  };
  walk(1, [1], 4);
  return out;
}

describe('the restore gap in TypeScript and in SQL', () => {
  it('names the same queued version of the current content for every history', async () => {
    const all = histories();
    expect(all.length).toBeGreaterThan(20);
    for (const [current, queued] of all) {
      const ts = queuedVersion(current, queued);
      const r = await db.query<{ v: number | null }>(
        `SELECT max(q.version) AS v FROM (SELECT unnest($1::int[]) AS version) q WHERE ${sameContentSql('q', '$2::int')}`,
        [queued, current],
      );
      // The SQL names a queued version or none; the TypeScript the current version when none is queued.
      expect(r.rows[0]!.v ?? current, `current ${current}, queued ${queued.join(',')}`).toBe(ts);
    }
  });
});
