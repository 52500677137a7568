// backup: backups to MinIO that prove themselves (docs/backup.md). Scheduled hourly (stack.yml);
// the function decides in the hospital's zone what is due — the nightly logical, system and
// software archives from BACKUP_LOGICAL_AT, the weekly physical one on BACKUP_PHYSICAL_DAY at
// BACKUP_PHYSICAL_AT — takes it, checks it (the logical one by a restore drill), applies retention,
// and alerts on failure. A failed archive is retried by the next hourly run.
//   POST /          the cron (X-Topic: cron-function): what is due
//   POST /run       {kind?: logical|physical|system|software}: one archive now, checked (operators)
//   POST /check     {archiveId?, drill?}: checks one archive (default the last good logical) and freshness
//   GET  /archives  ?kind=&status=&limit=: the ledger
//   GET  /status    the summary the status JSON carries, and the latest checks
import { Hono } from 'hono';
import { log } from '../../shared/log/index.js';
import { z } from 'zod';
import { defineFunction } from '../../shared/fn/index.js';
import { AppError, handleError } from '../../shared/http/errors.js';
import { operatorAuth } from '../../shared/http/auth.js';
import { backupConfig, type BackupSettings } from '../../shared/config/functions/backup.js';
import { closePool, getPool, openPool } from '../../shared/db/index.js';
import {
  ArchiveKindSchema,
  backupSummary,
  checkArchive,
  checkFreshness,
  failInterrupted,
  getArchive,
  lastGood,
  listArchives,
  openStore,
  raiseBackupAlert,
  recentChecks,
  requireStore,
  runDue,
} from '../../shared/backup/index.js';

const app = new Hono();
app.onError(handleError);

// Read afresh at every request, secret files included: the operator replaces backup-sm4-key (or the
// store's keys) while the front runs, and the next archive must be taken under the key in the file —
// never under the one the replica started with (docs/backup.md "Encryption at rest"). A few small
// files and the variables, for a function called a few times a day.
const settings = (): BackupSettings => backupConfig.parse();
// Everything but the cron's POST / is for operators: the gateway's credentials (docs/backup.md).
const operator = operatorAuth(() => settings().operator);
for (const path of ['/run', '/check', '/archives', '/status']) app.use(path, operator);
const issues = (e: z.ZodError) => e.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');

// Whether this process has taken archives under a backup-sm4-key: one that disappears afterwards (a
// rotation done as rm then cp, a file deleted) would leave the next archives unencrypted without a
// word — said once, in the log and as a backup alert (docs/backup.md "Encryption at rest").
let keyed = false;
async function noteKey(s: BackupSettings): Promise<void> {
  if (s.backup.sm4Key) {
    keyed = true;
    return;
  }
  if (!keyed) return;
  keyed = false;
  const said =
    'backup-sm4-key 已不存在：此后的归档不再加密（the secret file backup-sm4-key has gone: archives from now on are not encrypted; physical archives are refused）——请放回密钥文件（docs/backup.md）';
  log('error', 'backup-sm4-key has gone: archives from now on are not encrypted');
  await raiseBackupAlert(getPool(), [said], s.alerts);
}

app.post('/', async (c) => {
  const trigger = c.req.header('x-topic') === 'cron-function' ? 'cron' : 'manual';
  const s = settings();
  await noteKey(s);
  const report = await runDue(getPool(), s.database.url, s.backup, { trigger, alerts: s.alerts });
  return c.json(report);
});

const RunBody = z.object({ kind: ArchiveKindSchema.default('logical') });

app.post('/run', async (c) => {
  const parsed = RunBody.safeParse((await c.req.json().catch(() => ({}))) ?? {});
  if (!parsed.success) throw new AppError('BAD_REQUEST', `run takes {kind?: logical|physical|system|software}: ${issues(parsed.error)}`);
  const s = settings();
  await noteKey(s);
  const report = await runDue(getPool(), s.database.url, s.backup, { trigger: 'manual', kinds: [parsed.data.kind], alerts: s.alerts });
  const failed = report.backups.some((b) => !b.ok) || report.checks.some((x) => !x.ok);
  return c.json(report, failed ? 500 : 200);
});

const CheckBody = z.object({ archiveId: z.string().regex(/^\d+$/).optional(), drill: z.boolean().default(true) });

app.post('/check', async (c) => {
  const parsed = CheckBody.safeParse((await c.req.json().catch(() => ({}))) ?? {});
  if (!parsed.success) throw new AppError('BAD_REQUEST', `check takes {archiveId?, drill?}: ${issues(parsed.error)}`);
  const db = getPool();
  const s = settings();
  const k = s.backup;
  const a = parsed.data.archiveId ? await getArchive(db, parsed.data.archiveId) : await lastGood(db, 'logical');
  if (!a) throw new AppError('NOT_FOUND', parsed.data.archiveId ? `no archive ${parsed.data.archiveId}` : 'no good logical archive yet');
  if (a.status !== 'good') throw new AppError('BAD_REQUEST', `archive ${a.archiveId} is ${a.status}, not good`);
  const checks = await checkArchive(db, openStore(requireStore(k)), k, a, { databaseUrl: s.database.url, drill: parsed.data.drill });
  checks.push(await checkFreshness(db));
  const failed = checks.filter((x) => !x.ok);
  if (failed.length)
    await raiseBackupAlert(
      db,
      failed.map((x) => `备份校验失败（${x.check}，归档 ${a.archiveId}）：${x.message}`),
      s.alerts,
    );
  return c.json({ archiveId: a.archiveId, checks, ok: failed.length === 0 }, failed.length ? 500 : 200);
});

const ListQuery = z.object({
  kind: ArchiveKindSchema.optional(),
  status: z.enum(['running', 'good', 'failed', 'removed', 'damaged']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(50),
});

app.get('/archives', async (c) => {
  const q = ListQuery.safeParse(c.req.query());
  if (!q.success) throw new AppError('BAD_REQUEST', `archives takes ?kind=&status=&limit=: ${issues(q.error)}`);
  const archives = await listArchives(getPool(), {
    ...(q.data.kind ? { kind: q.data.kind } : {}),
    ...(q.data.status ? { status: q.data.status } : {}),
    limit: q.data.limit,
  });
  return c.json({ count: archives.length, archives });
});

app.get('/status', async (c) => {
  const db = getPool();
  // A row whose process died is failed (stalled) before the state is read (docs/backup.md "Progress and state").
  await failInterrupted(db);
  const [summary, checks] = await Promise.all([backupSummary(db), recentChecks(db, 20)]);
  return c.json({ ...summary, checks });
});

export default defineFunction({
  app,
  config: backupConfig,
  async init() {
    const { database } = settings(); // parsed first: a bad setting fails the start
    openPool(database.url, 3, database.limits);
  },
  close: closePool,
});
