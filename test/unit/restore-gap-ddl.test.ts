// The version base's table is made by migration 1050 and, on a restored database of an older release,
// by the restore itself (shared/ingest/restore-gap.ts VERSION_BASE_DDL): the same statement in both.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VERSION_BASE_DDL, VERSION_MOVE_DDL } from '../../shared/ingest/restore-gap.js';

describe('record_version_base', () => {
  it('is created by the migration with the statement the restore runs', () => {
    const sql = readFileSync(resolve(import.meta.dirname, '../../infra/db/1050_record_version_base.sql'), 'utf8');
    const statements = sql
      .replace(/--.*$/gm, '')
      .split(';')
      .map((x) => x.replace(/\s+/g, ' ').trim())
      .filter(Boolean);
    expect(statements).toEqual([VERSION_BASE_DDL]);
  });
  it('record_version_move is created by migration 1070 with the statement the move runs', () => {
    const sql = readFileSync(resolve(import.meta.dirname, '../../infra/db/1070_record_version_move.sql'), 'utf8');
    const statements = sql
      .replace(/--.*$/gm, '')
      .split(';')
      .map((x) => x.replace(/\s+/g, ' ').trim())
      .filter(Boolean);
    expect(statements).toEqual([VERSION_MOVE_DDL]);
  });
});
