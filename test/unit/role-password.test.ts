// A HIS role's password meets openGauss's default password policy on both dialects
// (shared/dbsync/role.ts passwordProblem, docs/dbsync.md "The HIS's role"): 12 to 32 characters, three
// kinds of character, not the role's name nor its name reversed; the generated ones always do.
import { describe, expect, it } from 'vitest';
import { createRoleStatements, passwordProblem, rolePassword } from '../../shared/dbsync/role.js';

describe("a HIS role's password", () => {
  it.each([
    ['short-Pw1', 'must be at least 12 characters'],
    [`Aa1-${'x'.repeat(29)}`, 'must be at most 32 characters'],
    ['a-long-random-password', 'must have at least three of'],
    ['0123456789abcdef0123', 'must have at least three of'],
    ['His_Sync_County_1', 'must not be the role name'],
    ['1_ytnuoc_cnys_sih', 'must not be the role name'],
  ])('%s is refused: %s', (pw, why) => {
    expect(passwordProblem('his_sync_county_1', pw)).toContain(why);
    expect(() => createRoleStatements('his_sync_county_1', pw)).toThrow(`the role password ${why}`);
  });

  it('takes 12 to 32 characters of three kinds', () => {
    expect(passwordProblem('cdc_his', 'His-Sync-2026-q7Rz')).toBeNull();
    expect(passwordProblem('cdc_his', 'abcdefghij12-_')).toBeNull();
    expect(createRoleStatements('cdc_his', 'His-Sync-2026-q7Rz')[0]).toBe("CREATE ROLE cdc_his LOGIN PASSWORD 'His-Sync-2026-q7Rz'");
  });

  it('is generated to meet it, every time', () => {
    for (let i = 0; i < 2000; i++) expect(passwordProblem('cdc_his', rolePassword('cdc_his'))).toBeNull();
  });
});
