// The database a restore or a drill makes is made like the front's own (shared/backup/restore.ts
// createDatabaseSql, docs/backup.md "Restore"): from template0 with the source's encoding and locale,
// and on openGauss in PostgreSQL compatibility. The statement itself runs on PostgreSQL in every
// restore of test/backup.
import { describe, expect, it } from 'vitest';
import { createDatabaseSql } from '../../shared/backup/restore.js';

const like = { encoding: 'UTF8', collate: 'zh_CN.UTF-8', ctype: 'zh_CN.UTF-8' };

describe('the database a restore makes', () => {
  it('takes the encoding and locale of the front’s own, from template0', () => {
    expect(createDatabaseSql('cdcfront_restored', 'postgresql', like)).toBe(
      `CREATE DATABASE "cdcfront_restored" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'zh_CN.UTF-8' LC_CTYPE 'zh_CN.UTF-8'`,
    );
  });

  it('is in PostgreSQL compatibility on openGauss', () => {
    expect(createDatabaseSql('cdc_drill_42_a1b2c3', 'opengauss', { ...like, collate: 'C', ctype: 'C' })).toBe(
      `CREATE DATABASE "cdc_drill_42_a1b2c3" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' DBCOMPATIBILITY 'PG'`,
    );
  });
});
