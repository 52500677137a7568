/**
 * cdc-keys: the keys of personal data at rest (docs/keys.md).
 *
 *   cdc-keys init                  makes pii-field-keys (one key, a random id) and pii-hash-key where none is
 *   cdc-keys rotate [--id k2]      adds a key and makes it current for writes (older keys stay)
 *   cdc-keys reencrypt [--batch N] re-seals every stored value not under the current key (and clear
 *                                  values stored before migration 0032), fills missing HMACs; resumable
 *   cdc-keys status                stored values per key id and place; which keys can be retired
 *   cdc-keys retire --id k1        removes a key no stored value uses any more
 *
 * The key files are in the secrets folder (`--secrets`, else CDC_SECRETS_DIR, else
 * $CDC_DATA_DIR/secrets: where `make up` keeps them, infra/cli/locate.ts); the database is
 * DATABASE_URL or that folder's cdc-database-url. Running functions see a rotated key within seconds
 * (they read the files again every 5 s). No key and no personal value is ever printed.
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import { parseCommandLine, runCommand, runIfMain, textTable } from '../cli/command.js';
import { connectDatabase, locate, shown } from '../cli/locate.js';
import { closePool } from '../../shared/db/index.js';
import { piiFromDir } from '../../shared/pii/index.js';
import { initKeys, keyStatus, readKeyFile, reencrypt, retireKey, rotateKey } from '../../shared/pii/rotate.js';

const USAGE = `usage:
  cdc-keys init                       [--secrets <dir>]
  cdc-keys rotate [--id <key id>]     [--secrets <dir>]
  cdc-keys reencrypt [--batch <n>]    [--secrets <dir>]
  cdc-keys status                     [--secrets <dir>]
  cdc-keys retire --id <key id>       [--secrets <dir>]`;

const KeyIdOpt = z.string().regex(/^[a-z][a-z0-9]{0,15}$/, 'a key id is a lowercase letter and up to 15 lowercase letters or digits');
const secrets = { secrets: z.string().min(1).optional() };
const CommandSchema = z.discriminatedUnion('command', [
  z.object({ command: z.literal('init'), ...secrets }),
  z.object({ command: z.literal('rotate'), id: KeyIdOpt.optional(), ...secrets }),
  z.object({ command: z.literal('reencrypt'), batch: z.coerce.number().int().min(1).max(10_000).default(200), ...secrets }),
  z.object({ command: z.literal('status'), ...secrets }),
  z.object({ command: z.literal('retire'), id: KeyIdOpt, ...secrets }),
]);
type Command = z.output<typeof CommandSchema>;

export function parseCommand(argv: string[]): Command {
  return parseCommandLine(argv, {
    usage: USAGE,
    schema: CommandSchema,
    options: { id: { type: 'string' }, batch: { type: 'string' }, secrets: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
}

export async function run(cmd: Command, out: (s: string) => void): Promise<number> {
  const dir = cmd.secrets ? resolve(cmd.secrets) : locate().secretsDir;
  switch (cmd.command) {
    case 'init': {
      const r = initKeys(dir);
      for (const f of r.made) out(`made ${shown(f)} (mode 0600): keep a copy with the database backups' keys, never beside them`);
      return 0;
    }
    case 'rotate': {
      const r = rotateKey(dir, cmd.id);
      out(`key ${r.current} is now current for writes (${r.previous} and older keys stay, for reading)`);
      out('running functions use it within seconds; then run: cdc-keys reencrypt, cdc-keys status, cdc-keys retire --id <old>');
      return 0;
    }
    default:
      break;
  }
  const db = await connectDatabase(2);
  try {
    switch (cmd.command) {
      case 'reencrypt': {
        const p = piiFromDir(dir);
        const r = await reencrypt(db, p, { batch: cmd.batch, progress: (place, n) => process.stderr.write(`  ${place}: ${n} row(s)\n`) });
        const rows = Object.entries(r.rows).filter(([, n]) => n > 0);
        out(
          `re-sealed ${r.values} value(s) under ${p.currentKeyId}, filled ${r.hashes} HMAC(s)${rows.length ? ` in ${rows.map(([k, n]) => `${k} ${n}`).join(', ')}` : ''}`,
        );
        return 0;
      }
      case 'status': {
        const file = readKeyFile(dir);
        const counts = await keyStatus(db);
        const per = new Map<string, number>();
        for (const c of counts) per.set(c.keyId, (per.get(c.keyId) ?? 0) + c.values);
        out(
          textTable([
            ['key id', 'state', 'stored values'],
            ...file.keys.map((k) => [
              k.id,
              k.id === file.current ? 'current' : (per.get(k.id) ?? 0) === 0 ? 'unused: can be retired' : 'old',
              String(per.get(k.id) ?? 0),
            ]),
            ...[...per.keys()]
              .filter((id) => !file.keys.some((k) => k.id === id))
              .map((id) => [id, id === 'clear' ? 'clear (before 0032): run reencrypt' : 'MISSING from the key file', String(per.get(id))]),
          ]),
        );
        if (counts.length) {
          out('');
          out(textTable([['place', 'key id', 'values'], ...counts.map((c) => [c.place, c.keyId, String(c.values)])]));
        }
        return 0;
      }
      case 'retire':
        await retireKey(db, dir, cmd.id);
        out(`key ${cmd.id} removed from ${shown(dir)}/pii-field-keys`);
        return 0;
    }
  } finally {
    await closePool();
  }
}

export const main = (argv: string[]) => runCommand(argv, USAGE, parseCommand, (cmd, out) => run(cmd, out));
runIfMain(import.meta.url, main);
