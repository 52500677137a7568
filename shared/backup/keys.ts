/**
 * After a restore: can the front open what the restored database holds (docs/backup.md "Restore",
 * docs/keys.md)? The personal-data keys are kept apart from the backups, so a database restored on a
 * new machine comes back without them; a front started on it with other keys (or with development
 * keys made by `make up`) cannot open a sealed ID number, name, phone or address, and its lookup hashes
 * miss. Checked from the data itself:
 *
 *   - every key id the sealed columns of the typed tables use (`sm4:<key id>:…`) is in the field key
 *     file, and one sample value per key id opens under it (an id that is there but holds another key —
 *     a key file made again under the same id — does not verify);
 *   - one ID number (or name, or phone) that opens is hashed again with the hash key and compared with the
 *     HMAC stored beside it: a different `pii-hash-key` is found without any record of the old one.
 */
import pg from 'pg';
import { resources } from '../../schemas/index.js';
import { hmacColumn } from '../../schemas/fields.js';
import { quoteIdent as ident } from '../db/quote.js';
import { type Pii, PiiKeyError, PiiValueError, sealedFields } from '../pii/index.js';

export interface KeyCheck {
  ok: boolean;
  /** Key ids the restored values use, sorted. */
  keyIds: string[];
  /** Key ids the key file does not hold. */
  missing: string[];
  /** Key ids the key file holds whose sample value does not verify (another key under the same id). */
  wrong: string[];
  /** The hash key: the same one (`ok`), another (`differs`), or nothing to compare (`unchecked`). */
  hashKey: 'ok' | 'differs' | 'unchecked';
  /** Set when the key files themselves could not be read (missing, malformed). */
  keysError: string | null;
}

interface Sample {
  keyId: string;
  value: string;
  kind: ReturnType<typeof sealedFields>[number]['kind'];
  hmac: string | null;
}

/** One sample value per key id (and, for hashed fields, one with its HMAC) from every sealed column. */
async function samples(c: pg.ClientBase): Promise<Sample[]> {
  const out: Sample[] = [];
  for (const r of Object.values(resources)) {
    const fields = sealedFields(r);
    if (fields.length === 0) continue;
    // The catalogs, not to_regclass (openGauss 5.0 has none: docs/opengauss.md).
    const exists = await c.query('SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = $1', [r.table]);
    if (!exists.rowCount) continue;
    const cols = new Set(
      (await c.query<{ c: string }>(`SELECT attname AS c FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0`, [r.table])).rows.map((x) => x.c),
    );
    const parts = fields
      .filter((f) => cols.has(f.column))
      .map((f) => {
        const h = f.hashed && cols.has(hmacColumn(f.column)) ? `${ident(hmacColumn(f.column))}::text` : 'NULL::text';
        return `SELECT '${f.kind}'::text AS kind, ${ident(f.column)}::text AS v, ${h} AS h FROM ${ident(r.table)} WHERE ${ident(f.column)} LIKE 'sm4:%'`;
      });
    if (parts.length === 0) continue;
    // Aggregated by key id rather than sorting every value (plain UNION ALL and GROUP BY, which
    // openGauss takes too: docs/opengauss.md): per key id one value, and one with its HMAC beside it.
    // `kind|value|hmac`: none of the three holds a '|'.
    const q = await c.query<{ s: string }>(
      `SELECT min(kind || '|' || v || '|' || coalesce(h, '')) AS s FROM (${parts.join(' UNION ALL ')}) AS x
        GROUP BY split_part(v, ':', 2), h IS NULL`,
    );
    const rows = q.rows.map((x) => {
      const [kind, v, h] = x.s.split('|') as [string, string, string];
      return { k: v.split(':')[1]!, kind, v, h: h || null };
    });
    for (const row of rows) out.push({ keyId: row.k, value: row.v, kind: row.kind as Sample['kind'], hmac: row.h });
  }
  return out;
}

/** Checks the restored database at `url` against the keys the front would start with (`keys`). */
export async function checkRestoredKeys(url: string, keys: () => Pii): Promise<KeyCheck> {
  const c = new pg.Client({ connectionString: url, application_name: 'cdc-front-restore' });
  await c.connect();
  let found: Sample[];
  try {
    found = await samples(c);
  } finally {
    await c.end().catch(() => undefined);
  }
  const keyIds = [...new Set(found.map((s) => s.keyId))].sort();
  const result: KeyCheck = { ok: true, keyIds, missing: [], wrong: [], hashKey: 'unchecked', keysError: null };
  if (keyIds.length === 0) return result;
  let p: Pii;
  try {
    p = keys();
    p.keys();
  } catch (err) {
    return { ...result, ok: false, missing: keyIds, keysError: (err as Error).message };
  }
  const opened = new Set<string>();
  for (const s of found) {
    if (opened.has(s.keyId) && !s.hmac) continue;
    if (result.missing.includes(s.keyId) || result.wrong.includes(s.keyId)) continue;
    let clear: string;
    try {
      clear = p.open(s.value);
    } catch (err) {
      if (err instanceof PiiKeyError) result.missing.push(s.keyId);
      else if (err instanceof PiiValueError) result.wrong.push(s.keyId);
      else throw err;
      continue;
    }
    opened.add(s.keyId);
    if (s.hmac && result.hashKey !== 'differs') result.hashKey = p.hash(s.kind, clear) === s.hmac ? 'ok' : 'differs';
  }
  result.ok = result.missing.length === 0 && result.wrong.length === 0 && result.hashKey !== 'differs';
  return result;
}

/** What the operator is told when the check fails: what is missing and what to do. */
export function keyCheckMessage(k: KeyCheck, database: string, secretsDir: string): string {
  if (k.keyIds.length === 0) return 'personal-data keys: the restored database holds no sealed value';
  if (k.ok)
    return `personal-data keys: every key id the restored data uses (${k.keyIds.join(', ')}) opens with ${secretsDir}/pii-field-keys${k.hashKey === 'ok' ? ', and pii-hash-key gives the stored lookup hashes' : ''}`;
  const why = [
    k.keysError ? `the key files cannot be used: ${k.keysError}` : '',
    k.missing.length && !k.keysError ? `key id(s) ${k.missing.join(', ')} are not in ${secretsDir}/pii-field-keys` : '',
    k.wrong.length ? `key id(s) ${k.wrong.join(', ')} are in ${secretsDir}/pii-field-keys but hold another key (the values do not verify)` : '',
    k.hashKey === 'differs' ? `${secretsDir}/pii-hash-key is not the key the stored lookup hashes were made with` : '',
  ].filter(Boolean);
  return (
    `personal-data keys: ${why.join('; ')}. The restored database ${database} is kept, but do not start the front on it: ` +
    `its ID numbers, names, phones and addresses would not open and duplicate-card lookups would miss. Restore pii-field-keys ` +
    `and pii-hash-key from the copy kept apart from the backups into ${secretsDir} (docs/backup.md "Restore", docs/keys.md), ` +
    `then check again: infra/backup/cli.ts check-keys --target ${database}`
  );
}
