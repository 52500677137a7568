/**
 * Key rotation (docs/keys.md): the key files' changes (init, rotate, retire) and the batch job that
 * re-seals stored values under the current key — in the typed tables (with rec_raw and the HMAC
 * columns), record_history.raw and outbox.payload. Values under another key id and clear values
 * (stored before migration 0032: "no key id" is a key to retire) are re-sealed; missing HMACs are
 * filled. Each batch is its own short transaction and the work is found by what is stored, so a job
 * stopped anywhere is resumed by running it again. `status` counts the values per key id, and which
 * kept backup archives need each key (docs/keys.md "Keys the backups still need").
 */
import { newKeyId } from './key-id.js';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Db, Tx } from '../db/index.js';
import { withTx } from '../db/index.js';
import { rewriteHistoryRaw, rewriteSealed } from '../ingest/store.js';
import { replacePayloads } from '../outbox/index.js';
import { resources } from '../../schemas/index.js';
import { hmacColumn } from '../../schemas/fields.js';
import type { Resource } from '../../schemas/resource.js';
import { FIELD_KEYS_SECRET, HASH_KEY_SECRET, keyIdOf, parseFieldKeyFile, type FieldKeyFile, type Pii, sealedFields } from './index.js';

// ---- the key files --------------------------------------------------------------------------------

function writeSecretFile(file: string, text: string): void {
  // Written beside and renamed over: a reader sees the old file or the new one, never half of one.
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

const newKey = (id: string) => ({ id, key: randomBytes(16).toString('base64'), created: new Date().toISOString() });

export function readKeyFile(dir: string): FieldKeyFile {
  const f = join(dir, FIELD_KEYS_SECRET);
  if (!existsSync(f)) throw new Error(`no ${f} (cdc-keys init makes it)`);
  return parseFieldKeyFile(readFileSync(f, 'utf8'), f);
}

function writeKeyFile(dir: string, file: FieldKeyFile): void {
  writeSecretFile(join(dir, FIELD_KEYS_SECRET), JSON.stringify(file, null, 2) + '\n');
}

/** Makes the two key files (a key of a random id, and a hash key) where none is; refuses to replace an existing one. */
export function initKeys(dir: string): { made: string[] } {
  const made: string[] = [];
  const fk = join(dir, FIELD_KEYS_SECRET);
  const hk = join(dir, HASH_KEY_SECRET);
  if (existsSync(fk) || existsSync(hk)) {
    throw new Error(`${existsSync(fk) ? fk : hk} exists already: keys are never replaced (cdc-keys rotate adds a key)`);
  }
  // A new installation's secrets folder may not exist yet: made private, as the runtime makes it.
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const id = newKeyId();
  writeKeyFile(dir, { current: id, keys: [newKey(id)] });
  made.push(fk);
  writeSecretFile(hk, randomBytes(32).toString('base64url') + '\n');
  made.push(hk);
  return { made };
}

/** Adds a new key and makes it current for writes; every older key stays until retired. */
export function rotateKey(dir: string, id?: string): { previous: string; current: string } {
  const file = readKeyFile(dir);
  const taken = new Set(file.keys.map((k) => k.id));
  let next = id;
  while (!next || (id === undefined && taken.has(next))) next = newKeyId();
  if (taken.has(next)) throw new Error(`key id ${next} is in ${FIELD_KEYS_SECRET} already (a key id is never reused)`);
  const updated = parseFieldKeyFile(JSON.stringify({ current: next, keys: [...file.keys, newKey(next)] }));
  writeKeyFile(dir, updated);
  return { previous: file.current, current: next };
}

/**
 * Removes a key that no stored value uses any more (status shows none); never the current one. A key
 * that kept backup archives still need (`archivesNeeding`) is refused, naming them, unless `force`:
 * then it goes all the same, and the archives it leaves unable to open their personal data are returned.
 */
export async function retireKey(db: Db, dir: string, id: string, o: { force?: boolean; now?: Date } = {}): Promise<{ archives: KeptArchive[] }> {
  const file = readKeyFile(dir);
  if (!file.keys.some((k) => k.id === id)) throw new Error(`key id ${id} is not in ${FIELD_KEYS_SECRET}`);
  if (file.current === id) throw new Error(`key id ${id} is the current key: rotate first`);
  const left = (await keyStatus(db)).filter((s) => s.keyId === id).reduce((n, s) => n + s.values, 0);
  if (left > 0) throw new Error(`${left} stored value(s) are still under key id ${id}: run cdc-keys reencrypt first`);
  const archives = archivesNeeding(file, await keptArchives(db), o.now).get(id) ?? [];
  if (archives.length > 0 && !o.force) {
    throw new Error(
      `key id ${id} is still needed by ${describeArchives(archives)}: keep it until they age out` +
        `${keyHasEmptied(file, id) ? '' : ' (cdc-keys reencrypt records that no stored value uses it, from when archives stop needing it)'}` +
        `, or retire it with --force — those archives could then no longer open their personal data (docs/keys.md "Keys the backups still need")`,
    );
  }
  writeKeyFile(dir, { ...file, keys: file.keys.filter((k) => k.id !== id) });
  return { archives };
}

/**
 * After a completed re-encryption: records in the key file, on each key that is not current and that
 * no stored value uses any more, the time this was found (`emptied`) — where it is not recorded yet, or
 * where the run just re-sealed values from that key (it was not empty before). Returns the key ids
 * marked. The count is taken after the job, so a value written under the old key while the job ran
 * (a function still on the key file it read before the rotation) keeps the key from being marked.
 */
export async function recordEmptied(db: Db, dir: string, resealedFrom: readonly string[], now: () => Date = () => new Date()): Promise<string[]> {
  const status = await keyStatus(db);
  const at = now().toISOString();
  const file = readKeyFile(dir); // read again: as it is now, after the job
  const used = new Set(status.filter((s) => s.values > 0).map((s) => s.keyId));
  const marked = file.keys.filter((k) => k.id !== file.current && !used.has(k.id) && (!k.emptied || resealedFrom.includes(k.id))).map((k) => k.id);
  if (marked.length) writeKeyFile(dir, { ...file, keys: file.keys.map((k) => (marked.includes(k.id) ? { ...k, emptied: at } : k)) });
  return marked;
}

const keyHasEmptied = (file: FieldKeyFile, id: string) => Boolean(file.keys.find((k) => k.id === id)?.emptied);

// ---- the keys the kept backup archives need -------------------------------------------------------

/**
 * The archive kinds that hold the database's rows, so its sealed values: the logical dump and the
 * physical base backup. The system kind holds configuration and code tables only, the software kind
 * no data (docs/backup.md "What is archived"; a test checks the system tables hold no sealed field).
 */
export const KINDS_WITH_SEALED_VALUES = ['logical', 'physical'] as const;

/**
 * A margin on every time compared: running functions read the key file again every 5 s (docs/keys.md
 * "The keys"), so a value may still be sealed under a key a little after it stopped being current and
 * be committed after that; and the ledger's times are the database server's clock, the key file's
 * this machine's.
 */
export const KEY_TIME_MARGIN_MS = 60_000;

/** A backup archive the ledger keeps (good, or still running), as far as the keys are concerned. */
export interface KeptArchive {
  archiveId: string;
  kind: string;
  status: string;
  startedAt: Date;
  /** NULL while running: it may still be reading the database. */
  finishedAt: Date | null;
}

/**
 * The kept archives that hold sealed values: good (retention marks the ones it removes `removed`,
 * docs/backup.md "Retention") or still running, of the kinds above. The keys' own query of the ledger
 * (migration 0019), oldest first.
 */
export async function keptArchives(db: Db): Promise<KeptArchive[]> {
  const r = await db.query<{ archive_id: string; kind: string; status: string; started_at: Date; finished_at: Date | null }>(
    `SELECT archive_id, kind, status, started_at, finished_at FROM backup_archive
      WHERE status IN ('good', 'running') AND kind IN (${KINDS_WITH_SEALED_VALUES.map((k) => `'${k}'`).join(', ')})
      ORDER BY started_at, archive_id`,
  );
  return r.rows.map((x) => ({ archiveId: String(x.archive_id), kind: x.kind, status: x.status, startedAt: x.started_at, finishedAt: x.finished_at }));
}

const timeOf = (s: string | undefined): number | undefined => {
  const t = s === undefined ? Number.NaN : Date.parse(s);
  return Number.isFinite(t) ? t : undefined;
};

/**
 * When stored values may have been under each key of the file, in ms (±Infinity where unknown): from
 * its `created` (when it became current), up to its `emptied` (when a completed re-encryption found
 * none left). Conservative: a key without `created` may have been used at any time before, one without
 * `emptied` — or the current key — may be used still; both widened by the margin.
 */
export function keySpans(file: FieldKeyFile): Map<string, { from: number; until: number }> {
  return new Map(
    file.keys.map((k) => {
      const created = timeOf(k.created);
      const emptied = k.id === file.current ? undefined : timeOf(k.emptied);
      return [
        k.id,
        {
          from: created === undefined ? Number.NEGATIVE_INFINITY : created - KEY_TIME_MARGIN_MS,
          until: emptied === undefined ? Number.POSITIVE_INFINITY : emptied + KEY_TIME_MARGIN_MS,
        },
      ];
    }),
  );
}

/**
 * Per key id of the file: the kept archives that may hold values sealed under it, oldest first. An
 * archive needs every key that stored values were under at any time while it read the database — from
 * its start to its end (a running one: now) — so one taken after a rotation but before the
 * re-encryption finished needs the old key and the new one.
 */
export function archivesNeeding(file: FieldKeyFile, archives: readonly KeptArchive[], now: Date = new Date()): Map<string, KeptArchive[]> {
  const out = new Map<string, KeptArchive[]>();
  for (const [id, span] of keySpans(file)) {
    out.set(
      id,
      archives.filter((a) => (a.finishedAt ?? now).getTime() >= span.from && a.startedAt.getTime() <= span.until),
    );
  }
  return out;
}

/** `3 kept backup archive(s) (logical 2, physical 1) taken from <oldest> to <newest>`, for messages. */
export function describeArchives(archives: readonly KeptArchive[]): string {
  const kinds = new Map<string, number>();
  for (const a of archives) kinds.set(a.kind, (kinds.get(a.kind) ?? 0) + 1);
  const oldest = archives.reduce((m, a) => (a.startedAt < m ? a.startedAt : m), archives[0]!.startedAt);
  const newest = archives.reduce((m, a) => (a.startedAt > m ? a.startedAt : m), archives[0]!.startedAt);
  return (
    `${archives.length} kept backup archive(s) (${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}) taken from ${shownTime(oldest)} to ${shownTime(newest)}` +
    ` (archive id(s) ${
      archives.length > 10
        ? `${archives
            .slice(0, 10)
            .map((a) => a.archiveId)
            .join(', ')}, …`
        : archives.map((a) => a.archiveId).join(', ')
    })`
  );
}

/** A time as the operator reads it beside the archives' names: `2026-12-07 12:15 UTC`. */
export const shownTime = (d: Date): string => `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;

// ---- where sealed values are ----------------------------------------------------------------------

const sealedResources = (): Resource[] => Object.values(resources).filter((r) => sealedFields(r).length > 0);

/** SQL text of the stored value's key id ('clear' for a value that is not a protected form). */
const keyIdSql = (expr: string) => `CASE WHEN ${expr} LIKE 'sm4:%' THEN split_part(${expr}, ':', 2) ELSE 'clear' END`;

/** The JSON key of a field in a stored payload, as a jsonb text read (an operator only: docs/opengauss.md). */
const jsonText = (col: string, key: string) => `(${col}->>'${key.replace(/'/g, "''")}')`;

export interface KeyCount {
  /** `table.column`, `record_history.raw` or `outbox.payload`. */
  place: string;
  keyId: string;
  values: number;
}

/** How many stored values each key id (or 'clear') holds, per place. */
export async function keyStatus(db: Db): Promise<KeyCount[]> {
  const out = new Map<string, KeyCount>();
  const add = (place: string, keyId: string, n: number) => {
    const k = `${place}|${keyId}`;
    const e = out.get(k) ?? { place, keyId, values: 0 };
    e.values += n;
    out.set(k, e);
  };
  for (const r of sealedResources()) {
    for (const f of sealedFields(r)) {
      for (const [place, from, expr] of [
        [`${r.table}.${f.column}`, r.table, f.column],
        [`${r.table}.rec_raw`, r.table, jsonText('rec_raw', f.key)],
        ['record_history.raw', `record_history WHERE resource = '${r.name}'`, jsonText('raw', f.key)],
        ['outbox.payload', `outbox WHERE resource = '${r.name}'`, jsonText('payload', f.key)],
      ] as const) {
        const where = from.includes(' WHERE ') ? `${from} AND ${expr} IS NOT NULL` : `${from} WHERE ${expr} IS NOT NULL`;
        const res = await db.query<{ k: string; n: string }>(`SELECT ${keyIdSql(expr)} AS k, count(*) AS n FROM ${where} GROUP BY 1`);
        for (const row of res.rows) add(place, row.k, Number(row.n));
      }
    }
  }
  return [...out.values()].sort((a, b) => a.place.localeCompare(b.place) || a.keyId.localeCompare(b.keyId));
}

// ---- the re-encryption job ------------------------------------------------------------------------

export interface ReencryptResult {
  /** Rows rewritten, per place. */
  rows: Record<string, number>;
  /** Stored values re-sealed (other key ids and clear values), counted as `keyStatus` counts them: a typed column and its rec_raw copy are two. */
  values: number;
  /** HMACs filled where missing. */
  hashes: number;
  /** The key ids values were re-sealed from (`clear` for clear values), sorted. */
  from: string[];
}

export interface ReencryptOptions {
  batch?: number;
  /** Called after each batch (progress for the command). */
  progress?: (place: string, done: number) => void;
}

/** Re-seals every stored value not under the current key, filling missing HMACs; resumable. */
export async function reencrypt(db: Db, p: Pii, o: ReencryptOptions = {}): Promise<ReencryptResult> {
  const current = p.keys(true).current; // the key file as it is now (a rotation just made)
  const job: Job = {
    db,
    p,
    batch: o.batch ?? 200,
    current,
    like: `sm4:${current}:%`,
    res: { rows: {}, values: 0, hashes: 0, from: [] },
    attempt: { values: 0, hashes: 0, from: new Set() },
    progress: o.progress,
  };
  for (const r of sealedResources()) {
    await reencryptTyped(job, r);
    // History and outbox copies of this resource's records.
    for (const copy of COPIES) await reencryptCopies(job, r, copy);
  }
  return job.res;
}

/** One run of the re-encryption job: its settings and what it has done so far. */
interface Job {
  db: Db;
  p: Pii;
  batch: number;
  /** The key id values are sealed under; a value under it stays. */
  current: string;
  /** `sm4:<current>:%`, the LIKE pattern of a value under the current key ($1 of every batch). */
  like: string;
  res: ReencryptResult;
  /** What the batch being written has re-sealed and filled: added to `res` once it committed. */
  attempt: { values: number; hashes: number; from: Set<string> };
  progress?: (place: string, done: number) => void;
}

/** Adds a batch's rows to the place's count and reports the total (after a batch that did something). */
function count(job: Job, place: string, n: number): void {
  job.res.rows[place] = (job.res.rows[place] ?? 0) + n;
  if (n) job.progress?.(place, job.res.rows[place]!);
}

/** A value under the current key stays; anything else is opened (clear passes through) and sealed again. */
function reseal(job: Job, v: unknown): unknown {
  if (typeof v !== 'string' || keyIdOf(v) === job.current) return v;
  job.attempt.values++;
  job.attempt.from.add(keyIdOf(v) ?? 'clear');
  return job.p.seal(job.p.open(v));
}

/**
 * Runs `step` in its own short transaction until a batch comes back short, counting its rows under
 * `place`. Each step finds its work by what is stored, so a run stopped anywhere is resumed by
 * running it again (docs/keys.md). A batch counts, and the job's position moves past it, once it
 * committed: an attempt the database failed (a deadlock with a writer, or a COMMIT refused, which
 * withTx retries) re-sealed nothing that stays, counts nothing, and is read again from where it began.
 */
async function inBatches(job: Job, place: string, step: (tx: Tx) => Promise<Batch>): Promise<void> {
  for (;;) {
    const b = await withTx(job.db, (tx) => {
      job.attempt = { values: 0, hashes: 0, from: new Set() };
      return step(tx);
    });
    b.moveOn();
    job.res.values += job.attempt.values;
    job.res.hashes += job.attempt.hashes;
    job.res.from = [...new Set([...job.res.from, ...job.attempt.from])].sort();
    count(job, place, b.rows);
    if (b.rows < job.batch) break;
  }
}

/** A batch written: its row count, and how the job's position moves past it (once it committed). */
interface Batch {
  rows: number;
  moveOn: () => void;
}

type TypedRow = Record<string, unknown> & { org_code: string; id: string; rec_raw: Record<string, unknown> };

/** A resource's typed table, in (org_code, id) order from where the last batch ended. */
async function reencryptTyped(job: Job, r: Resource): Promise<void> {
  const fields = sealedFields(r);
  // Typed rows: a sealed column or its rec_raw copy not under the current key, or a missing HMAC.
  const stale = fields.flatMap((f) => [
    `${f.column} NOT LIKE $1`,
    `${jsonText('rec_raw', f.key)} NOT LIKE $1`,
    ...(f.hashed ? [`(${f.column} IS NOT NULL AND ${hmacColumn(f.column)} IS NULL)`] : []),
  ]);
  const cols = [...fields.map((f) => f.column), ...fields.filter((f) => f.hashed).map((f) => hmacColumn(f.column))];
  const batch = job.batch;
  let after: [string, string] = ['', ''];
  await inBatches(job, r.table, async (tx: Tx) => {
    const rows = (
      await tx.query<TypedRow>(
        `SELECT org_code, id, rec_raw, ${cols.join(', ')} FROM ${r.table}
              WHERE (org_code, id) > ($2, $3) AND (${stale.join(' OR ')})
              ORDER BY org_code, id LIMIT ${batch} FOR UPDATE`,
        [job.like, after[0], after[1]],
      )
    ).rows;
    for (const row of rows) await resealRow(job, tx, r, fields, row);
    return {
      rows: rows.length,
      moveOn: () => {
        if (rows.length) after = [rows.at(-1)!.org_code, rows.at(-1)!.id];
      },
    };
  });
}

/** One typed row re-sealed: its changed columns, its rec_raw copy, and the HMACs it lacks. */
async function resealRow(job: Job, tx: Tx, r: Resource, fields: ReturnType<typeof sealedFields>, row: TypedRow): Promise<void> {
  const raw = { ...row.rec_raw };
  const columns: Record<string, unknown> = {};
  for (const f of fields) {
    const v = row[f.column];
    const next = reseal(job, v);
    if (next !== v) columns[f.column] = next;
    // The rec_raw copy gets the column's new form when it held the same value: one more value moved.
    if (typeof raw[f.key] === 'string' && raw[f.key] === v) {
      raw[f.key] = next;
      if (next !== v) job.attempt.values++;
    } else if (typeof raw[f.key] === 'string') raw[f.key] = reseal(job, raw[f.key]);
    if (f.hashed && typeof v === 'string' && row[hmacColumn(f.column)] === null) {
      columns[hmacColumn(f.column)] = job.p.hash(f.kind, job.p.open(v));
      job.attempt.hashes++;
    }
  }
  await rewriteSealed(tx, r, row.org_code, row.id, columns, raw);
}

/** Where a resource's records are copied as JSON: the table, its id column and the document column. */
const COPIES = [
  ['record_history', 'hist_id', 'raw'],
  ['outbox', 'outbox_id', 'payload'],
] as const;

/** A resource's history entries or outbox payloads with a sealed field not under the current key, in id order. */
async function reencryptCopies(job: Job, r: Resource, [table, idCol, col]: (typeof COPIES)[number]): Promise<void> {
  const fields = sealedFields(r);
  const staleJson = fields.map((f) => `${jsonText(col, f.key)} NOT LIKE $1`);
  const batch = job.batch;
  let last = '0';
  await inBatches(job, `${table}.${col}`, async (tx: Tx) => {
    const rows = (
      await tx.query<{ rid: string; doc: Record<string, unknown> }>(
        `SELECT ${idCol} AS rid, ${col} AS doc FROM ${table}
                WHERE resource = $2 AND ${idCol} > $3 AND (${staleJson.join(' OR ')})
                ORDER BY ${idCol} LIMIT ${batch} FOR UPDATE`,
        [job.like, r.name, last],
      )
    ).rows;
    const docs = rows.map((row) => {
      const doc = { ...row.doc };
      for (const f of fields) if (f.key in doc) doc[f.key] = reseal(job, doc[f.key]);
      return { id: row.rid, doc };
    });
    if (table === 'outbox')
      await replacePayloads(
        tx,
        docs.map((d) => ({ outboxId: d.id, payload: d.doc })),
      );
    else
      await rewriteHistoryRaw(
        tx,
        docs.map((d) => ({ histId: d.id, raw: d.doc })),
      );
    return {
      rows: rows.length,
      moveOn: () => {
        if (rows.length) last = rows.at(-1)!.rid;
      },
    };
  });
}
