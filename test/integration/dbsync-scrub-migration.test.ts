// Migration 1110 (infra/db/1110_staging_taken_scrub.sql, docs/dbsync.md "Taking a row"): staging rows a
// release before sealed names took still hold the name in clear; the migration empties every sealed
// column of every taken row, as a row taken now is emptied, and leaves the rows still waiting alone. Its
// statements name exactly the sealed columns of each staging table, so a field sealed later cannot be
// forgotten here without this test saying so.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resources } from '../../schemas/index.js';
import { stagingTable } from '../../shared/dbsync/index.js';
import { sealedFields } from '../../shared/pii/index.js';
import { privateDatabase } from '../setup/db.js';

const sql = readFileSync(join(import.meta.dirname, '../../infra/db/1110_staging_taken_scrub.sql'), 'utf8');
let db: pg.Pool;
let drop: () => Promise<void>;
beforeAll(async () => {
  ({ db, drop } = await privateDatabase('scrub1110'));
});
afterAll(async () => {
  await drop?.();
});

describe('migration 1110: names left in taken staging rows', () => {
  it('names every sealed column of every staging table, and no other', () => {
    const stated = new Map<string, string[]>();
    for (const m of sql.matchAll(/^UPDATE (\S+) SET ([^\n]+)$/gm)) stated.set(m[1]!, [...m[2]!.matchAll(/(\w+) = NULL/g)].map((x) => x[1]!).sort());
    const expected = new Map(
      Object.values(resources)
        .filter((r) => sealedFields(r).length > 0)
        .map((r) => [
          stagingTable(r),
          sealedFields(r)
            .map((f) => f.column)
            .sort(),
        ]),
    );
    expect(stated).toEqual(expected);
  });

  it('empties them in taken rows only', async () => {
    const stage = async (id: string) =>
      (
        await db.query<{ row_id: string }>(
          `INSERT INTO staging.emr_patient_info (org_code, id, patient_name, gender_code, birth_date, id_card_type_code, id_card, tel, contacts, operation_time)
           VALUES ('440106001', $1, '李四', '2', '1949-12-31', '01', '11010519491231002X', '13800000000', '王五', '2026-12-07 08:00:00') RETURNING row_id`,
          [id],
        )
      ).rows[0]!.row_id;
    const taken = await stage('SCRUB-TAKEN');
    const waiting = await stage('SCRUB-WAITING');
    // Taken as a release before 0990 took it: the ID number and phone emptied, the name and contact kept.
    await db.query('UPDATE staging.emr_patient_info SET taken_at = now(), id_card = NULL, tel = NULL WHERE row_id = $1', [taken]);
    await db.query(sql);
    const row = async (id: string) =>
      (await db.query('SELECT patient_name, contacts, id_card, tel FROM staging.emr_patient_info WHERE row_id = $1', [id])).rows[0];
    expect(await row(taken)).toEqual({ patient_name: null, contacts: null, id_card: null, tel: null });
    expect(await row(waiting)).toEqual({ patient_name: '李四', contacts: '王五', id_card: '11010519491231002X', tel: '13800000000' });
  });
});
