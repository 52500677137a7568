// The migrated tables still match the declarations in schemas/ (columns, types, lengths).
import { describe, expect, it } from 'vitest';
import { testDb } from '../setup/db.js';
import { resources } from '../../schemas/index.js';
import { hmacColumnsOf, sqlType } from '../../schemas/ddl.js';

const db = testDb();

describe('resource tables', () => {
  for (const r of Object.values(resources)) {
    it(`${r.table} has a column of the declared type for every field of ${r.name}`, async () => {
      const cols = await db.query<{ column_name: string; data_type: string; character_maximum_length: number | null }>(
        `SELECT column_name, data_type, character_maximum_length FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1`,
        [r.table],
      );
      const have = new Map(cols.rows.map((c) => [c.column_name, c]));
      for (const d of Object.values(r.fields)) {
        const c = have.get(d.column);
        expect(c, `${r.table}.${d.column}`).toBeDefined();
        const want = sqlType(d);
        if (want.startsWith('varchar')) {
          expect(c!.data_type).toBe('character varying');
          expect(c!.character_maximum_length, `${d.column} length`).toBe(d.max);
        } else if (want === 'timestamptz') expect(c!.data_type).toBe('timestamp with time zone');
        else if (want === 'integer') expect(c!.data_type).toBe('integer');
        else if (want === 'text') expect(c!.data_type, `${d.column} type`).toBe('text');
      }
      // The HMAC-SM3 lookup column of every ID number and phone (0032_pii.sql, shared/pii).
      for (const h of hmacColumnsOf(r)) {
        expect(have.get(h), `${r.table}.${h}`).toBeDefined();
        expect(have.get(h)!.data_type).toBe('character');
        expect(have.get(h)!.character_maximum_length).toBe(64);
      }
    });
  }
});
