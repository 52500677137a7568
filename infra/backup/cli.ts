/**
 * `make backup` / `make restore`: the operator's command for backups (docs/backup.md).
 *
 *   backup  [--kind logical|physical|system|software] [--no-check]   one archive now, then its checks
 *   restore --target <new database> [--archive latest|<object key>] [--kind logical|system]
 *   list                                                             archives in the store (manifests)
 *   check   [--archive <archive id>] [--no-drill]                    re-checks an archive of the ledger
 *
 * `restore` needs only the store and a server to restore to: it reads the archive's manifest from
 * the store, not the (possibly lost) database. Settings as the function's: BACKUP_S3_* and the
 * secret files in CDC_SECRETS_DIR (make: .data/secrets); the database is DATABASE_URL or the secret
 * file cdc-database-url. Progress (bytes, tables, rate, time left) goes to stderr every second.
 * Exit codes: 0 done, 1 failed, 2 bad arguments.
 */
import { z } from 'zod';
import { parseCommandLine, runCommand, runIfMain, textTable } from '../cli/command.js';
import { loadConfig } from '../../shared/config/index.js';
import { closePool, openPool } from '../../shared/db/index.js';
import {
  ArchiveKindSchema,
  checkArchive,
  getArchive,
  lastGood,
  listKeys,
  loadBackupConfig,
  openStore,
  readSmall,
  requireStore,
  restoreInto,
  runDue,
  type Manifest,
  type Progress,
  type RestoreProgress,
  type Store,
} from '../../shared/backup/index.js';

const USAGE = `usage:
  make backup  [KIND=logical|physical|system|software]      (infra/backup/cli.ts backup [--kind K] [--no-check])
  make restore TARGET=<new database> [ARCHIVE=latest|<key>]  (infra/backup/cli.ts restore --target T [--archive A])
  infra/backup/cli.ts list
  infra/backup/cli.ts check [--archive <id>] [--no-drill]`;

const CommandSchema = z.discriminatedUnion('command', [
  z.object({ command: z.literal('backup'), kind: ArchiveKindSchema.default('logical'), 'no-check': z.boolean().default(false) }),
  z.object({
    command: z.literal('restore'),
    target: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a new database name: lower-case letters, digits, _'),
    archive: z.string().min(1).default('latest'),
    kind: z.enum(['logical', 'system']).default('logical'),
  }),
  z.object({ command: z.literal('list') }),
  z.object({ command: z.literal('check'), archive: z.string().regex(/^\d+$/, 'an archive id').optional(), 'no-drill': z.boolean().default(false) }),
]);
type Command = z.infer<typeof CommandSchema>;

function parseCommand(argv: string[]): Command {
  return parseCommandLine(argv, {
    usage: USAGE,
    schema: CommandSchema,
    options: {
      kind: { type: 'string' },
      target: { type: 'string' },
      archive: { type: 'string' },
      'no-check': { type: 'boolean' },
      'no-drill': { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
}

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

/** "12.3 MiB, tables 10/45, 3.1 MiB/s, ~20 s left" */
export function progressLine(p: { bytes: number; tablesDone: number; tablesTotal: number; totalBytes: number | null; startedAt: Date }): string {
  const el = Math.max(0.001, (Date.now() - p.startedAt.getTime()) / 1000);
  const rate = p.bytes / el;
  let left: number | null = null;
  if (p.totalBytes && p.bytes > 0) left = (p.totalBytes - p.bytes) / rate;
  else if (p.tablesTotal && p.tablesDone > 0) left = (el * (p.tablesTotal - p.tablesDone)) / p.tablesDone;
  return `${mib(p.bytes)}${p.totalBytes ? ` of ~${mib(p.totalBytes)}` : ''}${p.tablesTotal ? `, tables ${p.tablesDone}/${p.tablesTotal}` : ''}, ${mib(rate)}/s, ${left === null ? 'time left unknown' : `~${Math.max(0, Math.round(left))} s left`}`;
}

/** The manifest of the archive to restore: a key, or the newest of a kind, from the store alone. */
async function findManifest(store: Store, archive: string, kind: 'logical' | 'system'): Promise<{ key: string; manifest: Manifest }> {
  let key = archive;
  if (archive === 'latest') {
    const manifests = (await listKeys(store, `${store.prefix}/${kind}/`)).filter((k) => k.endsWith('.manifest.json')).sort();
    // Keys sort by day then time stamp: the last is the newest.
    const last = manifests.at(-1);
    if (!last) throw new Error(`no ${kind} archive in bucket ${store.bucket} under ${store.prefix}/${kind}/`);
    key = last.replace(/\.manifest\.json$/, '');
  }
  const body = await readSmall(store, `${key}.manifest.json`);
  if (!body) throw new Error(`no manifest ${key}.manifest.json in bucket ${store.bucket}: not an archive of this front (see: list)`);
  return { key, manifest: JSON.parse(body.toString('utf8')) as Manifest };
}

async function run(cmd: Command, out: (s: string) => void): Promise<number> {
  const cfg = loadBackupConfig();
  const store = openStore(requireStore(cfg));
  const say = (s: string) => process.stderr.write(`[backup] ${s}\n`);
  if (cmd.command === 'list') {
    const keys = (await listKeys(store)).filter((k) => k.endsWith('.manifest.json')).sort();
    const rows: string[][] = [['KEY', 'KIND', 'FINISHED', 'SIZE', 'SHA256', 'ENC']];
    for (const k of keys) {
      const m = JSON.parse((await readSmall(store, k))?.toString('utf8') ?? '{}') as Partial<Manifest>;
      rows.push([
        k.replace(/\.manifest\.json$/, ''),
        m.kind ?? '?',
        m.finishedAt ?? '?',
        m.size === undefined ? '?' : String(m.size),
        (m.sha256 ?? '').slice(0, 12),
        m.encryption ?? '-',
      ]);
    }
    out(textTable(rows));
    return 0;
  }
  const databaseUrl = loadConfig().databaseUrl;
  if (cmd.command === 'restore') {
    const { key, manifest } = await findManifest(store, cmd.archive, cmd.kind);
    say(`restoring ${key} (${manifest.kind}, ${mib(manifest.size)}, taken ${manifest.finishedAt}) into a new database ${cmd.target}`);
    const r = await restoreInto(
      null,
      store,
      cfg,
      {
        archiveId: manifest.archiveId,
        objectKey: key,
        encryption: manifest.encryption,
        rowCounts: manifest.rowCounts,
        sizeBytes: manifest.size,
        sha256: manifest.sha256,
        dialect: manifest.dialect,
      },
      {
        databaseUrl,
        target: cmd.target,
        onProgress: (p: RestoreProgress) => say(`restore: ${progressLine(p)}`),
      },
    );
    out(`${r.ok ? 'restored' : 'RESTORED WITH DIFFERENCES'}: ${r.message}`);
    const u = new URL(databaseUrl);
    u.pathname = `/${r.database}`;
    u.password = u.password ? '***' : '';
    out(`database: ${u.toString()} — point DATABASE_URL (or the secret file cdc-database-url) at it and start the front (README: Restore)`);
    return r.ok ? 0 : 1;
  }
  const db = openPool(databaseUrl, 3);
  try {
    if (cmd.command === 'backup') {
      say(`taking a ${cmd.kind} archive to ${store.bucket} …`);
      const report = await runDue(
        db,
        databaseUrl,
        { ...cfg, drill: cfg.drill && !cmd['no-check'] },
        {
          trigger: 'manual',
          kinds: [cmd.kind],
          onProgress: (p: Progress) => say(`${p.kind}: ${progressLine(p)}`),
        },
      );
      for (const b of report.backups)
        out(
          b.ok
            ? `archive ${b.archiveId} ${b.kind}: ${b.objectKey} (${b.size} bytes, sha256 ${b.sha256})`
            : `archive ${b.archiveId} ${b.kind} FAILED: ${b.error}`,
        );
      for (const c of report.checks) out(`check ${c.check}: ${c.ok ? 'ok' : 'FAILED'} — ${c.message}`);
      for (const id of report.removed) out(`retention removed archive ${id}`);
      return report.backups.every((b) => b.ok) && report.checks.every((c) => c.ok) ? 0 : 1;
    }
    const a = cmd.archive ? await getArchive(db, cmd.archive) : await lastGood(db, 'logical');
    if (!a) throw new Error(cmd.archive ? `no archive ${cmd.archive}` : 'no good logical archive yet');
    const checks = await checkArchive(db, store, cfg, a, { databaseUrl, drill: !cmd['no-drill'] });
    for (const c of checks) out(`check ${c.check}: ${c.ok ? 'ok' : 'FAILED'} — ${c.message}`);
    return checks.every((c) => c.ok) ? 0 : 1;
  } finally {
    await closePool();
  }
}

export function main(argv: string[]): Promise<number> {
  return runCommand(argv, USAGE, parseCommand, run);
}

runIfMain(import.meta.url, main);
