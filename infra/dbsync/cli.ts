/**
 * cdc-dbsync: the operator command for database sync (docs/dbsync.md).
 *
 *   cdc-dbsync create-role --role cdc_his --password-file <file> [--orgs <code,…|*>]   the HIS's role, its password from a file
 *   cdc-dbsync grant --role cdc_his [--orgs <code,…|*>]              the grants again (after an upgrade); --orgs rebinds
 *   cdc-dbsync print-sql --role cdc_his [--orgs <code,…|*>] [--front-user <u>]   the statements, for a DBA to run by hand
 *   cdc-dbsync lag                                                 rows waiting per resource, oldest age
 *
 * The database is DATABASE_URL, else the secret file cdc-database-url that `make up` wrote
 * (infra/cli/locate.ts); create-role needs a user allowed to create roles (set DATABASE_URL to a
 * DBA's). The password is never an argument (it would be in the shell history and `ps`); print-sql
 * prints the CREATE ROLE with a placeholder instead. --orgs binds the role to the orgs its rows may
 * carry (a front serving several hospitals: one role per HIS, docs/dbsync.md "Several hospitals");
 * without it create-role leaves the role unbound and grant leaves the binding as it was.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseCommandLine, runCommand, runIfMain, textTable } from '../cli/command.js';
import { connectDatabase } from '../cli/locate.js';
import { closePool } from '../../shared/db/index.js';
import { rolesText, stagingLag } from '../../shared/dbsync/index.js';
import {
  advisoryLockStatements,
  bindStatements,
  createRoleStatements,
  frontLockStatements,
  grantStatements,
  RoleName,
  roleSettingStatements,
} from '../../shared/dbsync/role.js';
import { OrgsSchema } from '../../shared/http/auth.js';

const USAGE = `usage:
  cdc-dbsync create-role --role <name> --password-file <file> [--orgs <code,code,…|*>]
  cdc-dbsync grant --role <name> [--orgs <code,code,…|*>]
  cdc-dbsync print-sql --role <name> [--orgs <code,code,…|*>] [--front-user <the front's database user>]
  cdc-dbsync lag
--orgs binds the role to the orgs its rows may carry (one role per HIS on a front for several
hospitals); * unbinds it.`;

const CommandSchema = z.discriminatedUnion('command', [
  z.object({ command: z.literal('create-role'), role: RoleName, 'password-file': z.string().min(1, 'required'), orgs: OrgsSchema.optional() }),
  z.object({ command: z.literal('grant'), role: RoleName, orgs: OrgsSchema.optional() }),
  z.object({ command: z.literal('print-sql'), role: RoleName, orgs: OrgsSchema.optional(), 'front-user': z.string().min(1).max(63).optional() }),
  z.object({ command: z.literal('lag') }),
]);
type Command = z.output<typeof CommandSchema>;

export function parseCommand(argv: string[]): Command {
  return parseCommandLine(argv, {
    usage: USAGE,
    schema: CommandSchema,
    options: {
      role: { type: 'string' },
      'password-file': { type: 'string' },
      orgs: { type: 'string' },
      'front-user': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

export async function run(cmd: Command, out: (s: string) => void): Promise<number> {
  const binding = cmd.command !== 'lag' && cmd.orgs !== undefined ? bindStatements(cmd.role, cmd.orgs) : [];
  const zone = process.env.TZ_LOCAL || undefined;
  if (cmd.command === 'print-sql') {
    out(`CREATE ROLE ${cmd.role} LOGIN PASSWORD '<password>';`);
    for (const s of [...roleSettingStatements(cmd.role, zone), ...grantStatements(cmd.role), ...binding]) out(`${s};`);
    out(`-- as a superuser, in the front's database: its advisory locks for the front's own user (docs/dbsync.md "The HIS's role")`);
    for (const s of advisoryLockStatements(cmd['front-user'] ?? '<the front database user>')) out(`${s};`);
    return 0;
  }
  const db = await connectDatabase(2);
  try {
    if (cmd.command === 'lag') {
      const rows = (await stagingLag(db)).filter((l) => l.waiting > 0);
      out(
        rows.length
          ? textTable([
              ['resource', 'waiting', 'oldest (s)', 'by role (waiting)'],
              ...rows.map((l) => [l.resource, String(l.waiting), String(l.oldestAgeS ?? ''), rolesText(l.roles)]),
            ])
          : 'no staging row waiting',
      );
      return 0;
    }
    const statements = [
      ...(cmd.command === 'grant' ? grantStatements(cmd.role) : createRoleStatements(cmd.role, readFileSync(cmd['password-file'], 'utf8').trim(), zone)),
      ...binding,
    ];
    const client = await db.connect();
    const notes: string[] = [];
    /** Statements a user without the right privilege cannot run: tried, else named for a DBA. */
    const optional = async (what: string, list: string[]) => {
      await client.query('SAVEPOINT optional');
      try {
        for (const s of list) await client.query(s);
      } catch (err) {
        if ((err as { code?: string }).code !== '42501') throw err;
        await client.query('ROLLBACK TO SAVEPOINT optional');
        notes.push(`${what} — a DBA runs: ${list.join('; ')};`);
      }
    };
    try {
      await client.query('BEGIN');
      for (const s of statements) await client.query(s);
      // grant sets the role's session defaults again (a role made by an earlier version has none).
      if (cmd.command === 'grant') await optional("the role's session defaults need CREATEROLE", roleSettingStatements(cmd.role, zone));
      const locks = await frontLockStatements(client);
      if (locks.length) await optional("the front's advisory locks kept from other roles need a superuser", locks);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
    const bound = cmd.orgs === undefined ? '' : cmd.orgs === '*' ? ', any org' : `, bound to ${cmd.orgs.join(', ')}`;
    out(cmd.command === 'grant' ? `granted staging to ${cmd.role}${bound}` : `role ${cmd.role} created with its grants${bound}`);
    for (const n of notes) out(`note: ${n}`);
    return 0;
  } finally {
    await closePool();
  }
}

export const main = (argv: string[]) => runCommand(argv, USAGE, parseCommand, run);
runIfMain(import.meta.url, main);
