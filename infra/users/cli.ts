/**
 * cdc-users: the people of the web console (docs/console.md).
 *
 *   cdc-users add --username zhang --role public_health [--orgs 123456789] [--name 张医生]   password from stdin
 *   cdc-users create-admin --username admin                                               password from stdin
 *   cdc-users set-role --username zhang --role admin
 *   cdc-users reset-password --username zhang                                              password from stdin
 *   cdc-users unlock --username zhang
 *   cdc-users disable|enable --username zhang
 *   cdc-users list
 *
 * A password is read from standard input (its first line), never from the command line, where the
 * shell history and `ps` would keep it: `cdc-users create-admin --username admin < /root/pw` or type it.
 * Roles: clinician, public_health, operator, admin. The database is DATABASE_URL, else the secret file
 * cdc-database-url that `make up` wrote (infra/cli/locate.ts). Every change is audited (console_audit).
 */
import { z } from 'zod';
import { parseCommandLine, runCommand, runIfMain, textTable } from '../cli/command.js';
import { connectDatabase } from '../cli/locate.js';
import { closePool } from '../../shared/db/index.js';
import { createUser, listUsers, resetPassword, Role, ROLE_NAMES, setDisabled, setRole, unlock, Username } from '../../shared/console/index.js';
import { OrgsSchema } from '../../shared/http/auth.js';

const USAGE = `usage:
  cdc-users add --username <name> --role <clinician|public_health|operator|admin> [--orgs <code,…|*>] [--name <display name>]   (password on stdin)
  cdc-users create-admin --username <name>                         (password on stdin)
  cdc-users set-role --username <name> --role <role>
  cdc-users reset-password --username <name>                       (password on stdin)
  cdc-users unlock|disable|enable --username <name>
  cdc-users list`;

const user = { username: Username };
const CommandSchema = z.discriminatedUnion('command', [
  z.object({ command: z.literal('add'), ...user, role: Role, orgs: OrgsSchema.default('*'), name: z.string().max(100).optional() }),
  z.object({ command: z.literal('create-admin'), ...user }),
  z.object({ command: z.literal('set-role'), ...user, role: Role }),
  z.object({ command: z.literal('reset-password'), ...user }),
  z.object({ command: z.literal('unlock'), ...user }),
  z.object({ command: z.literal('disable'), ...user }),
  z.object({ command: z.literal('enable'), ...user }),
  z.object({ command: z.literal('list') }),
]);
type Command = z.output<typeof CommandSchema>;

export function parseCommand(argv: string[]): Command {
  return parseCommandLine(argv, {
    usage: USAGE,
    schema: CommandSchema,
    options: {
      username: { type: 'string' },
      role: { type: 'string' },
      orgs: { type: 'string' },
      name: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

/** The first line of standard input (a password), trailing newline removed. */
async function passwordFromStdin(read: () => Promise<string>): Promise<string> {
  const text = await read();
  return text.split(/\r?\n/)[0] ?? '';
}

const stdinText = async (): Promise<string> => {
  if (process.stdin.isTTY) process.stderr.write('password: ');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) {
    chunks.push(c as Buffer);
    if (process.stdin.isTTY && Buffer.concat(chunks).includes(10)) break;
  }
  return Buffer.concat(chunks).toString('utf8');
};

export async function run(cmd: Command, out: (s: string) => void, read: () => Promise<string> = stdinText): Promise<number> {
  const db = await connectDatabase(2);
  const by = `cli:${process.env.SUDO_USER || process.env.USER || 'operator'}`;
  try {
    switch (cmd.command) {
      case 'add':
      case 'create-admin': {
        const role = cmd.command === 'add' ? cmd.role : 'admin';
        const u = await createUser(
          db,
          {
            username: cmd.username,
            role,
            password: await passwordFromStdin(read),
            displayName: cmd.command === 'add' ? (cmd.name ?? null) : null,
            orgs: cmd.command === 'add' ? cmd.orgs : '*',
          },
          by,
        );
        out(`user ${u.username} created (${ROLE_NAMES[u.role]})`);
        return 0;
      }
      case 'set-role':
        await setRole(db, cmd.username, cmd.role, by);
        out(`${cmd.username}: role ${cmd.role}`);
        return 0;
      case 'reset-password':
        await resetPassword(db, cmd.username, await passwordFromStdin(read), by);
        out(`${cmd.username}: password set; every open session of this user ended`);
        return 0;
      case 'unlock':
        await unlock(db, cmd.username, by);
        out(`${cmd.username}: unlocked`);
        return 0;
      case 'disable':
      case 'enable':
        await setDisabled(db, cmd.username, cmd.command === 'disable', by);
        out(`${cmd.username}: ${cmd.command}d`);
        return 0;
      case 'list': {
        const users = await listUsers(db);
        out(
          users.length
            ? textTable([
                ['username', 'role', 'orgs', 'state', 'sign-in'],
                ...users.map((u) => [
                  u.username,
                  u.role,
                  u.orgs === '*' ? '*' : u.orgs.join(','),
                  u.disabled ? 'disabled' : u.lockedUntil && u.lockedUntil > new Date() ? 'locked' : 'active',
                  // A user made by the HIS's single sign-on has no password until one is reset.
                  u.his ? 'HIS single sign-on' : 'password',
                ]),
              ])
            : 'no console user yet: cdc-users create-admin --username admin',
        );
        return 0;
      }
    }
  } finally {
    await closePool();
  }
}

export const main = (argv: string[]) => runCommand(argv, USAGE, parseCommand, (cmd, out) => run(cmd, out));
runIfMain(import.meta.url, main);
