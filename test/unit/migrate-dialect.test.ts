// What the migration runner does differently on openGauss 5.0 (infra/db/migrate.ts, docs/opengauss.md
// "Lock waits"): its lock bound is lockwait_timeout there (PostgreSQL's lock_timeout is unknown to it),
// and a database not created DBCOMPATIBILITY 'PG' is refused, naming how to create it; on both, a new
// database not in UTF8 is refused and one already migrated is warned about. The PostgreSQL
// side runs against a real server in test/integration/migrate-upgrade.test.ts.
import { describe, expect, it } from 'vitest';
import { compatibilityRefusal, describeHolder, encodingProblem, lockBoundSql } from '../../infra/db/migrate.js';

describe('the migration runner on each dialect', () => {
  it('bounds lock waits with the setting the server has', () => {
    expect(lockBoundSql('postgresql', 5000)).toBe("SET LOCAL lock_timeout = '5000ms'");
    expect(lockBoundSql('opengauss', 2500.7)).toBe("SET LOCAL lockwait_timeout = '2500ms'");
  });

  it('names a session in the way by what the server shows: all of it, or (another role on openGauss) its pid alone', () => {
    const all = { pid: '4711', application: 'his-sync', user: 'cdc_his', client: '10.1.2.3', state: 'idle in transaction', transactionS: 40 };
    expect(describeHolder(all)).toBe('pid 4711, application "his-sync", user cdc_his, from 10.1.2.3, idle in transaction, in a transaction for 40 s');
    const hidden = { pid: '139872262649600', application: '', user: '', client: null, state: null, transactionS: null };
    expect(describeHolder(hidden)).toBe('pid 139872262649600');
  });

  it('refuses an openGauss database not in PostgreSQL compatibility, naming how to create one', () => {
    expect(compatibilityRefusal('cdcfront', 'PG')).toBeNull();
    // Stored as typed: DBCOMPATIBILITY 'pg' is PG mode too.
    expect(compatibilityRefusal('cdcfront', 'pg')).toBeNull();
    const a = compatibilityRefusal('cdcfront', 'A');
    expect(a).toContain("created with DBCOMPATIBILITY 'A'");
    expect(a).toContain("CREATE DATABASE cdcfront DBCOMPATIBILITY 'PG'");
    expect(compatibilityRefusal('cdcfront', undefined)).toContain("DBCOMPATIBILITY 'unknown'");
  });

  it('refuses a new database not in UTF8 and warns about one already in use', () => {
    expect(encodingProblem('UTF8', true)).toBeNull();
    expect(encodingProblem('SQL_ASCII', true)).toMatch(/^refusing to migrate: database encoding is SQL_ASCII: .*needs UTF8/);
    expect(encodingProblem('LATIN1', false)).toMatch(/^warning: database encoding is LATIN1: .*text may be cut short or refused$/);
  });
});
