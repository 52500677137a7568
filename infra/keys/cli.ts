/**
 * cdc-keys: the keys of personal data at rest (docs/keys.md).
 *
 *   cdc-keys init                  makes pii-field-keys (one key, a random id) and pii-hash-key where none is
 *   cdc-keys rotate [--id k2]      adds a key and makes it current for writes (older keys stay)
 *   cdc-keys reencrypt [--batch N] re-seals every stored value not under the current key (and clear
 *                                  values stored before migration 0032), fills missing HMACs; resumable
 *   cdc-keys status                stored values per key id and place, the kept backup archives that
 *                                  need each key; which keys can be retired
 *   cdc-keys retire --id k1 [--force]
 *                                  removes a key no stored value and no kept backup archive uses any
 *                                  more (--force: even though archives need it, saying which)
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
import {
  archivesNeeding,
  describeArchives,
  initKeys,
  keptArchives,
  keyStatus,
  readKeyFile,
  recordEmptied,
  reencrypt,
  retireKey,
  rotateKey,
  shownTime,
} from '../../shared/pii/rotate.js';

const USAGE = `usage:
  cdc-keys init                       [--secrets <dir>]
  cdc-keys rotate [--id <key id>]     [--secrets <dir>]
  cdc-keys reencrypt [--batch <n>]    [--secrets <dir>]
  cdc-keys status                     [--secrets <dir>]
  cdc-keys retire --id <key id> [--force]  [--secrets <dir>]`;

const KeyIdOpt = z.string().regex(/^[a-z][a-z0-9]{0,15}$/, 'a key id is a lowercase letter and up to 15 lowercase letters or digits');
const secrets = { secrets: z.string().min(1).optional() };
const CommandSchema = z.discriminatedUnion('command', [
  z.object({ command: z.literal('init'), ...secrets }),
  z.object({ command: z.literal('rotate'), id: KeyIdOpt.optional(), ...secrets }),
  z.object({ command: z.literal('reencrypt'), batch: z.coerce.number().int().min(1).max(10_000).default(200), ...secrets }),
  z.object({ command: z.literal('status'), ...secrets }),
  z.object({ command: z.literal('retire'), id: KeyIdOpt, force: z.boolean().default(false), ...secrets }),
]);
type Command = z.output<typeof CommandSchema>;

export function parseCommand(argv: string[]): Command {
  return parseCommandLine(argv, {
    usage: USAGE,
    schema: CommandSchema,
    options: {
      id: { type: 'string' },
      batch: { type: 'string' },
      force: { type: 'boolean' },
      secrets: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
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
        // From now on, new backup archives no longer need the keys left without a value (docs/keys.md).
        const emptied = await recordEmptied(db, dir, r.from);
        if (emptied.length)
          out(
            `no stored value is under ${emptied.join(', ')} any more (recorded in ${shown(dir)}/pii-field-keys): backup archives taken until now still need ${emptied.length > 1 ? 'them' : 'it'} — cdc-keys status`,
          );
        return 0;
      }
      case 'status': {
        const file = readKeyFile(dir);
        const counts = await keyStatus(db);
        const per = new Map<string, number>();
        for (const c of counts) per.set(c.keyId, (per.get(c.keyId) ?? 0) + c.values);
        // The kept backup archives each key may have sealed values in (docs/keys.md "Keys the backups still need").
        const needing = archivesNeeding(file, await keptArchives(db));
        const state = (id: string): string => {
          if (id === file.current) return 'current';
          if ((per.get(id) ?? 0) > 0) return 'old';
          const archives = needing.get(id) ?? [];
          if (archives.length === 0) return 'unused: can be retired';
          const newest = archives.reduce((m, a) => (a.startedAt > m ? a.startedAt : m), archives[0]!.startedAt);
          return (
            `unused by live data; ${archives.length} archive(s) up to ${shownTime(newest)} still need it — keep it until they age out` +
            (file.keys.find((k) => k.id === id)?.emptied ? '' : ' (cdc-keys reencrypt records that no stored value uses it)')
          );
        };
        const oldest = (id: string) => {
          const a = needing.get(id) ?? [];
          return a.length ? shownTime(a.reduce((m, x) => (x.startedAt < m ? x.startedAt : m), a[0]!.startedAt)) : '-';
        };
        out(
          textTable([
            ['key id', 'state', 'stored values', 'kept archives', 'oldest archive'],
            ...file.keys.map((k) => [k.id, state(k.id), String(per.get(k.id) ?? 0), String(needing.get(k.id)?.length ?? 0), oldest(k.id)]),
            ...[...per.keys()]
              .filter((id) => !file.keys.some((k) => k.id === id))
              .map((id) => [
                id,
                id === 'clear' ? 'clear (stored before its field was protected: 0032, names 0990): run reencrypt' : 'MISSING from the key file',
                String(per.get(id)),
                '',
                '',
              ]),
          ]),
        );
        if (counts.length) {
          out('');
          out(textTable([['place', 'key id', 'values'], ...counts.map((c) => [c.place, c.keyId, String(c.values)])]));
        }
        return 0;
      }
      case 'retire': {
        const r = await retireKey(db, dir, cmd.id, { force: cmd.force });
        out(`key ${cmd.id} removed from ${shown(dir)}/pii-field-keys`);
        if (r.archives.length)
          out(
            `--force: ${describeArchives(r.archives)} were sealed with it: they can no longer open their personal data (ID numbers, names, phones, addresses) unless a copy of the key kept with the backups' keys is put back (docs/keys.md)`,
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
