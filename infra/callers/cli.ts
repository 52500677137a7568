/**
 * cdc-callers: the operator command for HIS caller identities (接入认证; docs/his-auth.md).
 *
 *   cdc-callers create-key  --name "HIS 东软" --orgs 123456789,987654321 [--rate 600] [--json]
 *   cdc-callers add-cert    --name ... --fingerprint <sha256 hex or AB:CD:… form> --orgs ... [--rate N]
 *   cdc-callers add-address --name ... --cidr 10.1.2.0/24 --orgs ... [--rate N]
 *   cdc-callers list [--json]
 *   cdc-callers revoke <id>
 *
 * The database is DATABASE_URL, else the secret file cdc-database-url that `make up` wrote
 * (infra/cli/locate.ts). create-key prints the key once; only its prefix and SHA-256 are stored, and nothing here ever prints a hash.
 * Exit codes: 0 done, 1 failed (database, not found), 2 bad arguments.
 */
import { parseCommandLine, runCommand, runIfMain, textTable, UsageError } from '../cli/command.js';
import { z } from 'zod';
import { connectDatabase } from '../cli/locate.js';
import { closePool } from '../../shared/db/index.js';
import { CidrSchema, FingerprintSchema, OrgsSchema, generateApiKey } from '../../shared/http/auth.js';
import { activeCertCallers, formatOrgs, insertCaller, loadCallers, revokeCaller, type StoredCaller } from '../../shared/http/auth-store.js';

const USAGE = `usage:
  cdc-callers create-key  --name <name> --orgs <code,code,…|*> [--rate <per min>] [--json]
  cdc-callers add-cert    --name <name> --fingerprint <sha256> --orgs <…> [--rate <per min>]
  cdc-callers add-address --name <name> --cidr <cidr> --orgs <…> [--rate <per min>]
  cdc-callers list [--json]
  cdc-callers revoke <id>
--orgs * binds the identity to every org (a single-hospital install); --rate 0 = unlimited (default 600).`;

const Common = {
  name: z.string().trim().min(1, 'required').max(100),
  orgs: OrgsSchema,
  rate: z.coerce.number().int().nonnegative().max(1_000_000).default(600),
};

const CommandSchema = z.discriminatedUnion('command', [
  z.object({ command: z.literal('create-key'), ...Common, json: z.boolean().default(false) }),
  z.object({ command: z.literal('add-cert'), ...Common, fingerprint: FingerprintSchema }),
  z.object({ command: z.literal('add-address'), ...Common, cidr: CidrSchema }),
  z.object({ command: z.literal('list'), json: z.boolean().default(false) }),
  z.object({ command: z.literal('revoke'), id: z.string().regex(/^\d{1,18}$/, 'a caller id (a number, as list shows it)') }),
]);
export type Command = z.output<typeof CommandSchema>;

export { UsageError };

/** argv (without node and the script) → a validated command, or UsageError naming what is wrong. */
export function parseCommand(argv: string[]): Command {
  return parseCommandLine(argv, {
    usage: USAGE,
    schema: CommandSchema,
    positionals: { revoke: ['id'] },
    options: {
      name: { type: 'string' },
      orgs: { type: 'string' },
      rate: { type: 'string' },
      fingerprint: { type: 'string' },
      cidr: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

const iso = (d: Date | null) => (d ? d.toISOString().replace(/\.\d{3}Z$/, 'Z') : '-');

/** What identifies the caller, without anything secret: key prefix, short fingerprint, CIDR. */
function identity(c: StoredCaller): string {
  if (c.kind === 'apikey') return `cdc_${c.keyPrefix}_…`;
  if (c.kind === 'cert') return `sha256 ${c.certFingerprint!.slice(0, 16)}…`;
  return c.cidr ?? '-';
}

/** A caller as list --json prints it: never a hash, never a key. */
function publicView(c: StoredCaller) {
  return {
    id: c.id,
    name: c.name,
    kind: c.kind,
    ...(c.kind === 'apikey' ? { keyPrefix: c.keyPrefix } : {}),
    ...(c.kind === 'cert' ? { certFingerprint: c.certFingerprint } : {}),
    ...(c.kind === 'address' ? { cidr: c.cidr } : {}),
    orgs: c.orgs,
    ratePerMin: c.ratePerMin,
    createdAt: c.createdAt.toISOString(),
    revokedAt: c.revokedAt?.toISOString() ?? null,
    lastUsedAt: c.lastUsedAt?.toISOString() ?? null,
  };
}

export async function run(cmd: Command, out: (s: string) => void): Promise<number> {
  const db = await connectDatabase(1);
  try {
    switch (cmd.command) {
      case 'create-key': {
        // A prefix collision (1 in 36^10 per pair) only costs a retry.
        for (let attempt = 0; ; attempt++) {
          const k = generateApiKey();
          try {
            const c = await insertCaller(db, { kind: 'apikey', name: cmd.name, orgs: cmd.orgs, ratePerMin: cmd.rate, keyPrefix: k.prefix, keyHash: k.hash });
            if (cmd.json) out(JSON.stringify({ ...publicView(c), key: k.key }));
            else {
              out(`created API key ${c.id} "${c.name}" for orgs ${formatOrgs(c.orgs)}, ${c.ratePerMin || 'unlimited'}/min`);
              out(`key: ${k.key}`);
              out('This key is shown once and stored only as a hash: give it to the HIS vendor now (header X-Api-Key).');
            }
            return 0;
          } catch (err) {
            if ((err as { code?: string }).code === '23505' && attempt < 3) continue;
            throw err;
          }
        }
      }
      case 'add-cert': {
        const dup = await activeCertCallers(db, cmd.fingerprint);
        if (dup.length) {
          out(`error: certificate ${cmd.fingerprint.slice(0, 16)}… is already registered as caller ${dup[0]!.id} "${dup[0]!.name}"; revoke it first`);
          return 1;
        }
        const c = await insertCaller(db, { kind: 'cert', name: cmd.name, orgs: cmd.orgs, ratePerMin: cmd.rate, certFingerprint: cmd.fingerprint });
        out(`added certificate ${c.id} "${c.name}" (sha256 ${cmd.fingerprint}) for orgs ${formatOrgs(c.orgs)}`);
        out('Note: certificate headers are used only with HIS_TRUST_CERT_HEADERS=1 behind a TLS terminator that sets them (docs/his-auth.md).');
        return 0;
      }
      case 'add-address': {
        const c = await insertCaller(db, { kind: 'address', name: cmd.name, orgs: cmd.orgs, ratePerMin: cmd.rate, cidr: cmd.cidr });
        out(`added address rule ${c.id} "${c.name}" (${cmd.cidr}) for orgs ${formatOrgs(c.orgs)}`);
        out('Note: with an address rule in the table, HIS_ALLOW (the development default) is no longer used.');
        return 0;
      }
      case 'list': {
        const all = await loadCallers(db);
        if (cmd.json) {
          out(JSON.stringify(all.map(publicView)));
          return 0;
        }
        if (!all.length) {
          out('no callers registered (HIS_ALLOW, if set, admits its addresses as the development caller)');
          return 0;
        }
        out(
          textTable([
            ['ID', 'KIND', 'NAME', 'IDENTITY', 'ORGS', 'RATE/MIN', 'CREATED', 'REVOKED', 'LAST USED'],
            ...all.map((c) => [
              c.id,
              c.kind,
              c.name,
              identity(c),
              formatOrgs(c.orgs),
              c.ratePerMin ? String(c.ratePerMin) : 'unlimited',
              iso(c.createdAt),
              iso(c.revokedAt),
              iso(c.lastUsedAt),
            ]),
          ]),
        );
        return 0;
      }
      case 'revoke': {
        const r = await revokeCaller(db, cmd.id);
        if (r.status === 'not-found') {
          out(`error: no caller with id ${cmd.id}`);
          return 1;
        }
        if (r.status === 'already-revoked') out(`caller ${cmd.id} "${r.caller.name}" was already revoked at ${iso(r.caller.revokedAt)}`);
        else
          out(`revoked caller ${cmd.id} "${r.caller.name}"; running functions stop accepting it within their cache refresh (HIS_AUTH_REFRESH_S, default 10 s)`);
        return 0;
      }
    }
  } finally {
    await closePool();
  }
}

export function main(argv: string[]): Promise<number> {
  return runCommand(argv, USAGE, parseCommand, run);
}

runIfMain(import.meta.url, main);
