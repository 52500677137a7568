// A HIS role's password meets openGauss's default password policy on both dialects
// (shared/dbsync/role.ts passwordProblem, docs/dbsync.md "The HIS's role"): 12 to 32 characters, three
// kinds of character, openGauss's special characters only, not the role's name nor its name reversed;
// the generated ones always do.
import { describe, expect, it } from 'vitest';
import { createRoleStatements, passwordProblem, rolePassword } from '../../shared/dbsync/role.js';

const ONLY = 'must use letters, digits and ~!@#$%^&*()-_=+\\|[{}];:,<.>/? only (openGauss refuses any other character): ';

describe("a HIS role's password", () => {
  it.each([
    ['short-Pw1', 'must be at least 12 characters'],
    [`Aa1-${'x'.repeat(29)}`, 'must be at most 32 characters'],
    ['a-long-random-password', 'must have at least three of'],
    ['0123456789abcdef0123', 'must have at least three of'],
    ['His_Sync_County_1', 'must not be the role name'],
    ['1_ytnuoc_cnys_sih', 'must not be the role name'],
    // Characters openGauss refuses in a password whatever its policy: named, the password is not.
    ['His Sync 2026 q7', `${ONLY}not " "`],
    ["His'Sync2026q7", `${ONLY}not "'"`],
    ['His`Sync"2026q7', `${ONLY}not "\`" "\\""`],
    ['医院His-Sync-2026', `${ONLY}not "医" "院"`],
  ])('%s is refused: %s', (pw, why) => {
    expect(passwordProblem('his_sync_county_1', pw)).toContain(why);
    expect(() => createRoleStatements('his_sync_county_1', pw)).toThrow(`the role password ${why}`);
  });

  it('takes 12 to 32 characters of three kinds', () => {
    expect(passwordProblem('cdc_his', 'His-Sync-2026-q7Rz')).toBeNull();
    expect(passwordProblem('cdc_his', 'abcdefghij12-_')).toBeNull();
    expect(passwordProblem('cdc_his', 'Aa1~!@#$%^&*()-_=+\\|[{}];:,<.>/?')).toBeNull();
    expect(createRoleStatements('cdc_his', 'His-Sync-2026-q7Rz')[0]).toBe("CREATE ROLE cdc_his LOGIN PASSWORD 'His-Sync-2026-q7Rz'");
  });

  it('is generated to meet it, every time', () => {
    for (let i = 0; i < 2000; i++) expect(passwordProblem('cdc_his', rolePassword('cdc_his'))).toBeNull();
  });
});
