/**
 * `make backup` / `make restore`: the operator's command for backups (docs/backup.md).
 *
 *   backup  [--kind logical|physical|system|software] [--no-check]   one archive now, then its checks
 *   restore --target <new database> [--archive latest|<object key>] [--kind logical|system]
 *   list                                                             archives in the store (manifests)
 *   check   [--archive <archive id>] [--no-drill]                    re-checks an archive of the ledger
 *   check-keys --target <database>                                   can the front's keys open its sealed data
 *   fetch   --archive <object key|archive id> --out <file>           the archive as a plain file (checked, decrypted)
 *   revoke-his --database <old database>                             closes the database the front left to the HIS roles
 *   move-versions --target <database> --archive <object key> [--force]  versions and ledger of a database restored otherwise
 *
 * `restore` needs only the store and a server to restore to: it reads the archive's manifest from
 * the store, not the (possibly lost) database. Settings as the function's: BACKUP_S3_* and the
 * secret files in CDC_SECRETS_DIR; unset, make up's (infra/cli/locate.ts: <CDC_DATA_DIR>/secrets and
 * the store on 127.0.0.1:S3_PORT). The database is DATABASE_URL or the secret file cdc-database-url. Progress (bytes, tables, rate, time left) goes to stderr every second.
 * After a restore the personal-data keys in the secrets folder are checked against the restored data
 * (shared/backup/keys.ts): a key id it uses that they lack, or another hash key, exits 1 naming them.
 * Exit codes: 0 done, 1 failed, 2 bad arguments.
 */
import { z } from 'zod';
import { parseCommandLine, runCommand, runIfMain, textTable } from '../cli/command.js';
import { locate } from '../cli/locate.js';
import { loadConfig, readSecret, secretsDir } from '../../shared/config/index.js';
import { checkRestoredKeys, keyCheckMessage } from '../../shared/backup/keys.js';
import { regrantHisRoles, revokeHisRoles } from '../../shared/backup/his-roles.js';
import { keysFromSecrets, Pii } from '../../shared/pii/index.js';
import pg from 'pg';
import { fixLedger, reserveBand, settleBand, shiftVersions, type VersionMove } from '../../shared/backup/version-move.js';
import { withDatabase } from '../../shared/backup/tools.js';
import { type Interrupt, RESTORING_SUFFIX } from '../../shared/backup/restore.js';
import { closePool, openPool } from '../../shared/db/index.js';
import {
  ArchiveKindSchema,
  checkArchive,
  fetchArchive,
  getArchive,
  keyMismatch,
  lastGood,
  listKeys,
  loadBackupConfig,
  manifestKey,
  openStore,
  readSmall,
  manifestRecords,
  restorableOf,
  requireStore,
  restoreInto,
  runDue,
  type Archive,
  type Manifest,
  parseManifest,
  type Progress,
  type RestoreProgress,
  type Store,
} from '../../shared/backup/index.js';

const USAGE = `usage:
  make backup  [KIND=logical|physical|system|software]      (infra/backup/cli.ts backup [--kind K] [--no-check])
  make restore TARGET=<new database> [ARCHIVE=latest|<key>] [ACCEPT_NO_MAC=1]  (infra/backup/cli.ts restore --target T [--archive A] [--accept-no-mac])
  infra/backup/cli.ts list
  infra/backup/cli.ts check [--archive <id>] [--no-drill]
  infra/backup/cli.ts check-keys --target <database>
  infra/backup/cli.ts fetch --archive <object key|archive id> --out <file> [--accept-no-mac]
  infra/backup/cli.ts revoke-his --database <the database the front left>
  infra/backup/cli.ts move-versions --target <database> --archive <object key> [--force]   (a database restored otherwise: a physical archive)`;

const CommandSchema = z.discriminatedUnion('command', [
  z.object({ command: z.literal('backup'), kind: ArchiveKindSchema.default('logical'), 'no-check': z.boolean().default(false) }),
  z.object({
    command: z.literal('restore'),
    target: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a new database name: lower-case letters, digits, _'),
    archive: z.string().min(1).default('latest'),
    kind: z.enum(['logical', 'system']).default('logical'),
    'accept-no-mac': z.boolean().default(false),
  }),
  z.object({ command: z.literal('list') }),
  z.object({ command: z.literal('check'), archive: z.string().regex(/^\d+$/, 'an archive id').optional(), 'no-drill': z.boolean().default(false) }),
  z.object({
    command: z.literal('fetch'),
    archive: z.string().min(1, 'an object key or an archive id'),
    out: z.string().min(1, 'a file'),
    'accept-no-mac': z.boolean().default(false),
  }),
  z.object({ command: z.literal('revoke-his'), database: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a database name: lower-case letters, digits, _') }),
  z.object({
    command: z.literal('move-versions'),
    target: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a database name: lower-case letters, digits, _'),
    archive: z.string().min(1, 'the object key of the archive the database was restored from (see: list)'),
    force: z.boolean().default(false),
  }),
  z.object({ command: z.literal('check-keys'), target: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a database name: lower-case letters, digits, _') }),
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
      out: { type: 'string' },
      database: { type: 'string' },
      'no-check': { type: 'boolean' },
      'no-drill': { type: 'boolean' },
      'accept-no-mac': { type: 'boolean' },
      force: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
}

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

/**
 * "12.3 MiB, tables 10/45, 3.1 MiB/s, ~20 s left". A restore (`downloadedAt` present) downloads the
 * archive first, then the tool loads it (shared/backup/restore.ts): while downloading, the time left is
 * the download's ("to download"); then the rate is the download's and the time left the tables'.
 */
export function progressLine(p: {
  bytes: number;
  tablesDone: number;
  tablesTotal: number;
  totalBytes: number | null;
  startedAt: Date;
  downloadedAt?: Date | null;
}): string {
  const now = Date.now();
  const restoring = p.downloadedAt !== undefined;
  const el = Math.max(0.001, ((p.downloadedAt?.getTime() ?? now) - p.startedAt.getTime()) / 1000);
  const rate = p.bytes / el;
  let left: number | null = null;
  if (p.downloadedAt) {
    const loading = Math.max(0.001, (now - p.downloadedAt.getTime()) / 1000);
    if (p.tablesTotal && p.tablesDone > 0) left = (loading * (p.tablesTotal - p.tablesDone)) / p.tablesDone;
  } else if (p.totalBytes && p.bytes > 0) left = (p.totalBytes - p.bytes) / rate;
  else if (p.tablesTotal && p.tablesDone > 0) left = (el * (p.tablesTotal - p.tablesDone)) / p.tablesDone;
  const leftText = left === null ? 'time left unknown' : `~${Math.max(0, Math.round(left))} s left${restoring && !p.downloadedAt ? ' to download' : ''}`;
  return `${mib(p.bytes)}${p.totalBytes ? ` of ~${mib(p.totalBytes)}` : ''}${p.tablesTotal ? `, tables ${p.tablesDone}/${p.tablesTotal}` : ''}, ${mib(rate)}/s, ${leftText}`;
}

/**
 * An encrypted archive read from the store alone must prove its bytes by its MAC: anyone who can write
 * the bucket can rewrite the SHA-256 beside it, and can drop the MAC from the manifest as easily. A
 * manifest without one (made before MACs were recorded) is taken only when the operator says so.
 * Given a ledger id, fetch checks the ledger's SHA-256, which the store cannot change.
 */
function refuseWithoutMac(key: string, m: Manifest, accept: boolean): void {
  if (!m.encryption || m.mac || accept) return;
  throw new Error(
    `${key} is encrypted but its manifest records no MAC (HMAC-SM3 under backup-sm4-key): it was made before MACs were recorded, or the MAC was removed in the store. ` +
      'Its bytes can then be proven only by the SHA-256 beside it, which whoever changed them could rewrite: if you know it is that old, give --accept-no-mac (make restore ACCEPT_NO_MAC=1)',
  );
}

/**
 * The manifest of the archive to restore: a key, or the newest of a kind, from the store alone. The
 * newest logical archive is the newest whose manifest shows records (docs/backup.md "A database with no
 * records"): an archive of an empty database — a replacement server's own, taken into the same store —
 * is passed over, and named with why (`say`). An explicit key is taken as given.
 */
async function findManifest(
  store: Store,
  archive: string,
  kind: 'logical' | 'system',
  say: (s: string) => void = () => undefined,
): Promise<{ key: string; manifest: Manifest }> {
  let key = archive;
  if (archive === 'latest') {
    const manifests = (await listKeys(store, `${store.prefix}/${kind}/`)).filter((k) => k.endsWith('.manifest.json')).sort();
    // Keys sort by day then time stamp: the last is the newest.
    if (manifests.length === 0) throw new Error(`no ${kind} archive in bucket ${store.bucket} under ${store.prefix}/${kind}/`);
    // The system kind holds no typed table: the newest is taken.
    if (kind === 'system') key = manifests.at(-1)!.replace(/\.manifest\.json$/, '');
    else {
      const passed: string[] = [];
      for (const m of [...manifests].reverse()) {
        const k = m.replace(/\.manifest\.json$/, '');
        const body = await readSmall(store, m);
        if (!body) continue;
        let man: Manifest;
        try {
          man = parseManifest(m, body.toString('utf8'));
        } catch (e) {
          say(`passed over ${k}: ${(e as Error).message}`);
          continue;
        }
        if (manifestRecords(man) === 0) {
          passed.push(k);
          continue;
        }
        for (const p of passed)
          say(`passed over ${p}, newer: its manifest shows no records (0 rows in the typed tables — an empty database, a new installation's own backup?)`);
        return { key: k, manifest: man };
      }
      throw new Error(
        `no logical archive in bucket ${store.bucket} under ${store.prefix}/logical/ holds records: the newest, ${manifests.at(-1)!.replace(/\.manifest\.json$/, '')}, ` +
          `was taken of a database with no records (a new installation's?). To restore one of them anyway, name it: ARCHIVE=<key> (see: list)`,
      );
    }
  }
  const body = await readSmall(store, manifestKey(key));
  if (!body) throw new Error(`no manifest ${manifestKey(key)} in bucket ${store.bucket}: not an archive of this front (see: list)`);
  return { key, manifest: parseManifest(manifestKey(key), body.toString('utf8')) };
}

/** What a restore says of an archive whose bytes are not the ones recorded (shared/backup/restore.ts). */
const DAMAGED = /is truncated|content altered|reading .* from the store failed/;

/** The newest logical archive older than `key` whose manifest shows records: what to restore when `key` is damaged. */
async function olderWithRecords(store: Store, key: string): Promise<{ key: string; manifest: Manifest } | null> {
  const manifests = (await listKeys(store, `${store.prefix}/logical/`)).filter((k) => k.endsWith('.manifest.json')).sort();
  for (const m of manifests.reverse()) {
    const k = m.replace(/\.manifest\.json$/, '');
    if (k >= key) continue;
    const body = await readSmall(store, m);
    if (!body) continue;
    try {
      const man = parseManifest(m, body.toString('utf8'));
      if (manifestRecords(man) !== 0) return { key: k, manifest: man };
    } catch {
      // An unreadable manifest is no candidate.
    }
  }
  return null;
}

/**
 * Whether the keys the front would start with (the secret files of the secrets folder; without them,
 * outside production, the development keys, as a function would) open the data of `database`.
 */
async function keysOpen(databaseUrl: string, database: string, out: (s: string) => void): Promise<boolean> {
  const u = new URL(databaseUrl);
  u.pathname = `/${database}`;
  const k = await checkRestoredKeys(u.toString(), () => new Pii(() => keysFromSecrets(readSecret, process.env.CDC_ENV === 'production')));
  out(keyCheckMessage(k, database, secretsDir()));
  return k.ok;
}

/**
 * The database-sync HIS roles the restored database names get their grants again (a dump carries
 * none); a role this server lacks is named with the command that makes it (docs/dbsync.md "After a restore").
 */
async function hisRoles(databaseUrl: string, database: string, out: (s: string) => void): Promise<void> {
  const u = new URL(databaseUrl);
  u.pathname = `/${database}`;
  const h = await regrantHisRoles(u.toString());
  for (const role of h.granted) out(`HIS role ${role}: grants re-applied on ${database} (bin/cdc-dbsync grant)`);
  if (h.locks === 'needs-superuser')
    out(
      `the advisory lock functions of ${database} are still every role's: as a superuser, DATABASE_URL=<the URL of ${database}> bin/cdc-dbsync grant --role <a HIS role> (docs/dbsync.md "The HIS's role")`,
    );
  for (const role of h.missing)
    out(
      `HIS role ${role} is named by ${database} but does not exist on this server: DATABASE_URL=<the URL of ${database}> bin/cdc-dbsync create-role --role ${role} --password-file <file>, and give the HIS that password`,
    );
  if (h.granted.length + h.missing.length > 0)
    out(
      `database sync: the HIS still writes to the database it was given; when the front moves to ${database}, give the HIS that name or rename the databases (docs/dbsync.md "After a restore")`,
    );
}

/**
 * Runs a restore that Ctrl-C, SIGTERM or SIGHUP (the ssh session dropped) stops cleanly before the
 * command exits: a download is stopped and its file removed; a running pg_restore is stopped and the
 * unfinished database dropped (docs/backup.md "An interrupted restore"). A terminal gone with SIGHUP makes writing to it fail: those errors are ignored meanwhile.
 */
async function withInterrupts<T>(run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const quiet = () => undefined;
  process.stdout.on('error', quiet);
  process.stderr.on('error', quiet);
  const on = (sig: NodeJS.Signals) => {
    if (ac.signal.aborted) return;
    process.stderr.write(`[backup] ${sig}: stopping the restore (the download, or pg_restore and the unfinished database)\n`);
    // The restore says what it stopped (shared/backup/restore.ts interruptMessage).
    ac.abort({ signal: sig } satisfies Interrupt);
  };
  const sigs: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of sigs) process.on(s, on);
  try {
    return await run(ac.signal);
  } finally {
    for (const s of sigs) process.off(s, on);
  }
}

/** What a version move did, as make restore and move-versions say it. */
function versionsLine(v: VersionMove): string {
  return (
    `record versions: ${v.moved} record(s) continue from their version + ${v.shift}, and new records start above ${v.base}: above any version the old front ` +
    `— or a front of an earlier restore (the store's restore markers) — may have sent after the archive (docs/backup.md "Versions after a restore")`
  );
}

/**
 * `move-versions`: what `make restore` does to the versions and the ledger, on a database restored
 * otherwise — a physical archive unpacked and started (docs/backup.md "Restore (runbook)", physical
 * archives). Before the front starts on it: nothing may be connected (a front reads the version base
 * once, at start). Refused a second time for the same archive unless --force.
 */
async function moveVersions(
  store: Store,
  databaseUrl: string,
  cmd: { target: string; archive: string; force: boolean },
  out: (s: string) => void,
): Promise<number> {
  const body = await readSmall(store, manifestKey(cmd.archive));
  if (!body)
    throw new Error(
      `no manifest ${manifestKey(cmd.archive)} in bucket ${store.bucket}: give the object key of the archive ${cmd.target} was restored from (see: list)`,
    );
  const manifest = parseManifest(manifestKey(cmd.archive), body.toString('utf8'));
  const url = withDatabase(databaseUrl, cmd.target);
  const c = new pg.Client({ connectionString: url, application_name: 'cdc-front-restore' });
  await c.connect().catch((e: Error) => {
    throw new Error(`cannot connect to database ${cmd.target}: ${e.message}`);
  });
  try {
    const others = await c.query<{ app: string | null }>(
      // Client sessions only: an autovacuum worker (no user) on a database just restored is not the front (docs/opengauss.md).
      'SELECT application_name AS app FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND usesysid IS NOT NULL',
    );
    if (others.rowCount)
      throw new Error(
        `${others.rowCount} session(s) (${[...new Set(others.rows.map((r) => r.app || '?'))].join(', ')}) are connected to ${cmd.target}: move the versions before the front starts on it (a running front keeps the version base it read at start) — stop it first`,
      );
    const moved = await c
      .query<{ at: Date }>('SELECT moved_at AS at FROM record_version_move WHERE archive_key = $1 ORDER BY moved_at DESC LIMIT 1', [cmd.archive])
      .catch(() => ({ rows: [] as { at: Date }[] }));
    if (moved.rows[0] && !cmd.force)
      throw new Error(
        `the versions of ${cmd.target} were already moved for ${cmd.archive} (at ${moved.rows[0].at.toISOString()}): moving them again is refused — ` +
          'give --force only if this database was restored from that archive once more since (docs/backup.md "Versions after a restore")',
      );
  } finally {
    await c.end().catch(() => undefined);
  }
  const band = await reserveBand(store, { kind: 'move-versions', target: cmd.target, archive: cmd.archive, archiveTakenAt: manifest.finishedAt });
  const v = await shiftVersions(url, { atLeast: band.marker.base, archive: cmd.archive, force: cmd.force });
  await settleBand(store, band.key, band.marker, v.base);
  const a = restorableOf(cmd.archive, manifest);
  await fixLedger(url, { archiveId: a.archiveId, objectKey: a.objectKey, sizeBytes: a.sizeBytes, sha256: a.sha256, rowCounts: a.rowCounts });
  out(versionsLine(v));
  out(
    `ledger: archive ${a.archiveId} recorded good as the store holds it; any other backup then in progress failed (docs/backup.md "The ledger after a restore")`,
  );
  return 0;
}

/** The archive to fetch: an object key (its manifest in the store) or an archive id of the ledger. */
async function archiveToFetch(
  store: Store,
  archive: string,
  acceptNoMac: boolean,
): Promise<Pick<Archive, 'objectKey' | 'encryption' | 'sha256' | 'sizeBytes'> & { keyFingerprint?: string | null; mac?: string | null }> {
  if (!/^\d+$/.test(archive)) {
    const { key, manifest } = await findManifest(store, archive, 'logical');
    refuseWithoutMac(key, manifest, acceptNoMac);
    return restorableOf(key, manifest);
  }
  const db = openPool(loadConfig().databaseUrl, 1);
  try {
    const a = await getArchive(db, archive);
    if (!a?.objectKey || !a.sha256) throw new Error(`no archive ${archive} with a recorded checksum in the ledger (see: list)`);
    // The ledger keeps no MAC: the manifest beside the archive has it (older manifests have none).
    const body = await readSmall(store, manifestKey(a.objectKey));
    const mac = body ? parseManifest(manifestKey(a.objectKey), body.toString('utf8')).mac : null;
    return { ...a, mac: mac ?? null };
  } finally {
    await closePool();
  }
}

async function run(cmd: Command, out: (s: string) => void): Promise<number> {
  const cfg = loadBackupConfig();
  const store = openStore(requireStore(cfg));
  const say = (s: string) => process.stderr.write(`[backup] ${s}\n`);
  if (cmd.command === 'list') {
    const keys = (await listKeys(store)).filter((k) => k.endsWith('.manifest.json')).sort();
    const rows: string[][] = [['KEY', 'KIND', 'FINISHED', 'SIZE', 'RECORDS', 'SHA256', 'ENC']];
    const unreadable: string[] = [];
    for (const k of keys) {
      // A manifest that does not parse is still listed, as what it is, and why is said below the table.
      let m: Partial<Manifest> = {};
      try {
        m = parseManifest(k, (await readSmall(store, k))?.toString('utf8') ?? '');
      } catch (e) {
        m = {};
        unreadable.push(`${k.replace(/\.manifest\.json$/, '')}: ${(e as Error).message}`);
      }
      rows.push([
        k.replace(/\.manifest\.json$/, ''),
        m.kind ?? '?',
        m.finishedAt ?? '?',
        m.size === undefined ? '?' : String(m.size),
        m.kind === 'logical' ? String(manifestRecords(m) ?? '?') : '-',
        (m.sha256 ?? '').slice(0, 12),
        m.encryption ? `${m.encryption}${m.keyFingerprint ? ` key ${m.keyFingerprint}` : ''}` : '-',
      ]);
    }
    out(textTable(rows));
    for (const u of unreadable) out(`? ${u}`);
    return 0;
  }
  if (cmd.command === 'fetch') {
    const a = await archiveToFetch(store, cmd.archive, cmd['accept-no-mac']);
    const wrongKey = keyMismatch(a, cfg.sm4Key);
    if (wrongKey) throw new Error(wrongKey);
    const r = await fetchArchive(store, a, cfg.sm4Key, cmd.out);
    out(
      `fetched ${a.objectKey}: sha256 ${r.sha256} as recorded${r.macChecked ? ', MAC as recorded' : ''}${a.encryption ? `, decrypted (${a.encryption})` : ''}, ${r.size} bytes in ${cmd.out}`,
    );
    return 0;
  }
  const databaseUrl = loadConfig().databaseUrl;
  if (cmd.command === 'revoke-his') {
    const u = new URL(databaseUrl);
    u.pathname = `/${cmd.database}`;
    const h = await revokeHisRoles(u.toString());
    for (const role of h.revoked)
      out(`HIS role ${role}: no longer admitted to the staging tables of ${cmd.database} (bin/cdc-dbsync grant there admits it again)`);
    for (const role of h.missing) out(`HIS role ${role} does not exist on this server: nothing to revoke`);
    if (h.revoked.length + h.missing.length === 0) out(`${cmd.database} names no HIS role`);
    return 0;
  }
  if (cmd.command === 'move-versions') return moveVersions(store, databaseUrl, cmd, out);
  if (cmd.command === 'check-keys') {
    // An unfinished restore is no database to start the front on, whatever its keys (docs/backup.md "An interrupted restore").
    if (cmd.target.endsWith(RESTORING_SUFFIX)) {
      const of = cmd.target.slice(0, -RESTORING_SUFFIX.length);
      out(
        `${cmd.target} is the unfinished database of a restore into ${of} that was stopped before it finished: do not start the front on it — run make restore TARGET=${of} again (it drops ${cmd.target}) (docs/backup.md "An interrupted restore")`,
      );
      return 1;
    }
    return (await keysOpen(databaseUrl, cmd.target, out)) ? 0 : 1;
  }
  if (cmd.command === 'restore') {
    const { key, manifest } = await findManifest(store, cmd.archive, cmd.kind, say);
    refuseWithoutMac(key, manifest, cmd['accept-no-mac']);
    const records = manifestRecords(manifest);
    say(
      `restoring ${key} (${manifest.kind}, ${mib(manifest.size)}, taken ${manifest.finishedAt}${records === null ? '' : `, ${records} records`}) into a new database ${cmd.target}`,
    );
    const r = await withInterrupts((signal) =>
      restoreInto(null, store, cfg, restorableOf(key, manifest), {
        databaseUrl,
        target: cmd.target,
        archiveTakenAt: manifest.finishedAt,
        signal,
        say,
        onProgress: (p: RestoreProgress) => say(`restore: ${progressLine(p)}`),
      }),
    ).catch(async (err: Error) => {
      // The newest archive is damaged: the one before it is named, to be given as ARCHIVE= (docs/backup.md "Restore").
      if (cmd.archive !== 'latest' || !DAMAGED.test(err.message)) throw err;
      const older = await olderWithRecords(store, key).catch(() => null);
      throw new Error(
        older
          ? `${err.message}. The archive before it with records: ${older.key} (taken ${older.manifest.finishedAt}) — restore it by name: make restore ARCHIVE=${older.key} TARGET=${cmd.target}`
          : `${err.message}. No older logical archive with records is in the store`,
      );
    });
    out(`${r.ok ? 'restored' : 'RESTORED WITH DIFFERENCES'}: ${r.message}`);
    if (r.versions) out(versionsLine(r.versions));
    const u = new URL(databaseUrl);
    u.pathname = `/${r.database}`;
    u.password = u.password ? '***' : '';
    if (r.ok) await hisRoles(databaseUrl, r.database, out);
    // The keys are kept apart from the backups: on a new machine they must be restored before the
    // front starts on this database (docs/backup.md "Restore").
    if (r.ok && !(await keysOpen(databaseUrl, r.database, out))) return 1;
    if (r.ok) out(`database: ${u.toString()} — start the front on it (docs/backup.md "Restore": DATABASE_URL, or PG_DATABASE=${r.database} under make up)`);
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

/**
 * A refused connection to the store or the database, said as what to do: under `make up` both run
 * inside it (the embedded PostgreSQL and backup store), so with `make up` stopped there is nothing to
 * back up from or restore to (docs/backup.md "Restore").
 */
export function explainRefused(err: unknown, store: { endPoint: string; port: number } | null, databaseUrl: string | undefined): Error | undefined {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (e?.code !== 'ECONNREFUSED') return undefined;
  const at = `${e.address ?? '?'}:${e.port ?? '?'}`;
  const underMakeUp = 'under make up the backup store and PostgreSQL run inside it: run this while make up is running';
  if (store && e.port === store.port)
    return new Error(`the backup store at ${at} refused the connection — ${underMakeUp}; otherwise check BACKUP_S3_ENDPOINT (docs/backup.md "Restore")`);
  let dbPort: number | undefined;
  try {
    dbPort = databaseUrl ? Number(new URL(databaseUrl).port || 5432) : undefined;
  } catch {
    dbPort = undefined;
  }
  if (e.port === dbPort)
    return new Error(`the database server at ${at} refused the connection — ${underMakeUp}; otherwise check DATABASE_URL (docs/backup.md "Restore")`);
  return undefined;
}

async function runExplained(cmd: Command, out: (s: string) => void): Promise<number> {
  try {
    return await run(cmd, out);
  } catch (err) {
    let store: { endPoint: string; port: number } | null = null;
    let databaseUrl: string | undefined;
    try {
      store = loadBackupConfig().store;
      databaseUrl = loadConfig().databaseUrl;
    } catch {
      // The settings themselves failed: the original error says so.
    }
    const explained = explainRefused(err, store, databaseUrl);
    if (explained) throw explained;
    // The store's key files missing for a store the command took by default: say where it came from.
    if (defaultedStore && /backup-s3-access-key/.test((err as Error).message))
      throw new Error(
        `${(err as Error).message} — BACKUP_S3_ENDPOINT is not set, so this command took make up's own store, ${defaultedStore}; for a front started with BACKUP_S3_ENDPOINT, set it here too (docs/backup.md "Restore")`,
      );
    throw err;
  }
}

/**
 * Where the command looks when nothing is set, as the other operator commands (infra/cli/locate.ts):
 * `make up`'s secrets folder (CDC_DATA_DIR, CDC_SECRETS_DIR) and its backup store (S3_PORT).
 */
function operatorDefaults(env: NodeJS.ProcessEnv): void {
  const loc = locate(env);
  env.CDC_SECRETS_DIR ||= loc.secretsDir;
  if (!env.BACKUP_S3_ENDPOINT) {
    env.BACKUP_S3_ENDPOINT = `http://127.0.0.1:${loc.ports.s3}`;
    defaultedStore = env.BACKUP_S3_ENDPOINT;
  }
}

/** make up's own store, when the command took it because BACKUP_S3_ENDPOINT was not set. */
let defaultedStore: string | undefined;

export function main(argv: string[]): Promise<number> {
  operatorDefaults(process.env);
  return runCommand(argv, USAGE, parseCommand, runExplained);
}

runIfMain(import.meta.url, main);
