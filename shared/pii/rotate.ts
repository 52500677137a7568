/**
 * Key rotation (docs/keys.md): the key files' changes (init, rotate, retire) and the batch job that
 * re-seals stored values under the current key — in the typed tables (with rec_raw and the HMAC
 * columns), record_history.raw and outbox.payload. Values under another key id and clear values
 * (stored before migration 0032: "no key id" is a key to retire) are re-sealed; missing HMACs are
 * filled. Each batch is its own short transaction and the work is found by what is stored, so a job
 * stopped anywhere is resumed by running it again. `status` counts the values per key id.
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

/** Removes a key that no stored value uses any more (status shows none); never the current one. */
export async function retireKey(db: Db, dir: string, id: string): Promise<void> {
  const file = readKeyFile(dir);
  if (!file.keys.some((k) => k.id === id)) throw new Error(`key id ${id} is not in ${FIELD_KEYS_SECRET}`);
  if (file.current === id) throw new Error(`key id ${id} is the current key: rotate first`);
  const left = (await keyStatus(db)).filter((s) => s.keyId === id).reduce((n, s) => n + s.values, 0);
  if (left > 0) throw new Error(`${left} stored value(s) are still under key id ${id}: run cdc-keys reencrypt first`);
  writeKeyFile(dir, { ...file, keys: file.keys.filter((k) => k.id !== id) });
}

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
    res: { rows: {}, values: 0, hashes: 0 },
    attempt: { values: 0, hashes: 0 },
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
  attempt: { values: number; hashes: number };
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
      job.attempt = { values: 0, hashes: 0 };
      return step(tx);
    });
    b.moveOn();
    job.res.values += job.attempt.values;
    job.res.hashes += job.attempt.hashes;
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
