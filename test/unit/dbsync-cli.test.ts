// bin/cdc-dbsync's arguments and the statements print-sql shows a DBA (infra/dbsync/cli.ts): --orgs
// binds the HIS's role to the orgs its rows may carry (docs/dbsync.md "Several hospitals").
import { describe, expect, it } from 'vitest';
import { parseCommand, run } from '../../infra/dbsync/cli.js';

const printed = async (argv: string[]) => {
  const lines: string[] = [];
  expect(await run(parseCommand(argv), (s) => lines.push(s))).toBe(0);
  return lines;
};

describe('cdc-dbsync', () => {
  it('print-sql --orgs adds the binding; without --orgs there is none', async () => {
    const bound = await printed(['print-sql', '--role', 'his_a', '--orgs', '123456789, 987654321']);
    expect(bound[0]).toBe("CREATE ROLE his_a LOGIN PASSWORD '<password>';");
    expect(bound.filter((l) => l.includes('dbsync_role_org'))).toEqual([
      "DELETE FROM dbsync_role_org WHERE role_name = 'his_a';",
      "INSERT INTO dbsync_role_org (role_name, org_code) VALUES ('his_a', '123456789'), ('his_a', '987654321');",
    ]);
    expect((await printed(['print-sql', '--role', 'his_a', '--orgs', '*'])).filter((l) => l.includes('dbsync_role_org'))).toEqual([
      "DELETE FROM dbsync_role_org WHERE role_name = 'his_a';",
    ]);
    expect((await printed(['print-sql', '--role', 'his_a'])).some((l) => l.includes('dbsync_role_org'))).toBe(false);
  });

  it("print-sql sets the role's session defaults to the hospital's zone (TZ_LOCAL) and ISO dates, right after the CREATE ROLE", async () => {
    const lines = await printed(['print-sql', '--role', 'his_a']);
    expect(lines.slice(1, 3)).toEqual(["ALTER ROLE his_a SET timezone = 'Asia/Shanghai';", "ALTER ROLE his_a SET datestyle = 'ISO, YMD';"]);
    const was = process.env.TZ_LOCAL;
    process.env.TZ_LOCAL = "Asia/Urumqi'; DROP TABLE x; --";
    try {
      await expect(run(parseCommand(['print-sql', '--role', 'his_a']), () => undefined)).rejects.toThrow(/time zone/);
    } finally {
      if (was === undefined) delete process.env.TZ_LOCAL;
      else process.env.TZ_LOCAL = was;
    }
  });

  it("print-sql ends with what a superuser runs to keep the advisory lock functions for the front's user", async () => {
    const lines = await printed(['print-sql', '--role', 'his_a', '--front-user', 'cdcfront']);
    expect(lines).toContain('REVOKE EXECUTE ON FUNCTION pg_catalog.pg_try_advisory_lock(bigint) FROM PUBLIC;');
    expect(lines.at(-1)).toBe('GRANT EXECUTE ON FUNCTION pg_catalog.pg_try_advisory_xact_lock_shared(integer, integer) TO "cdcfront";');
  });

  it('refuses an org code that is not one, naming the option', () => {
    expect(() => parseCommand(['grant', '--role', 'his_a', '--orgs', "1'; DROP TABLE x; --"])).toThrow(/orgs/);
  });
});
