/**
 * Personal data at rest (docs/keys.md, docs/security.md "Data at rest"): the owner of field
 * encryption. Which fields are protected is the field facts' one list (AT_REST in schemas/fields.ts:
 * ID numbers, names, phones, addresses); this module turns their values into protected forms and back.
 *
 * - A protected value is the text `sm4:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>`: SM4-GCM
 *   (a fresh 12-byte nonce, a 16-byte tag, the prefix `sm4:<key id>` as associated data), so a
 *   changed value, a value moved under another key id or a wrong key is refused, never decrypted
 *   to garbage. The key id travels with every value, so keys rotate: the current key seals, every
 *   key still in the file opens (bin/cdc-keys rotates and re-encrypts).
 * - The lookup hash is HMAC-SM3 under a separate key (`pii-hash-key`), of the value normalised by
 *   kind (an ID number upper-cased, a phone without spaces or dashes, a name NFKC-folded without
 *   whitespace), as 64 hex digits. It does not
 *   depend on the field keys: it stays the same across a rotation.
 * - The keys are two secret files: `pii-field-keys` (JSON, FieldKeyFile below) and `pii-hash-key`
 *   (at least 32 characters). Without them a development process uses the well-known development
 *   keys below (printed here: NOT SECRET); CDC_ENV=production refuses to start without the files.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { AT_REST, hmacColumn, isHashed, isSealed, type Personal } from '../../schemas/fields.js';
import type { Resource } from '../../schemas/resource.js';
import { resources } from '../../schemas/index.js';
import { frontConcern, parseConcern, readSecret, type SecretReader } from '../config/index.js';
import { hmacSm3, sm3, sm4GcmDecrypt, sm4GcmEncrypt } from '../uplink/sm.js';

export const FIELD_KEYS_SECRET = 'pii-field-keys';
export const HASH_KEY_SECRET = 'pii-hash-key';

const KEY_ID = /^[a-z][a-z0-9]{0,15}$/;
const KeyId = z.string().regex(KEY_ID, 'a key id is a lowercase letter and up to 15 lowercase letters or digits');

/** The field key file (`pii-field-keys`): every key still needed to open values, and which one seals. */
export const FieldKeyFile = z
  .object({
    current: KeyId,
    keys: z
      .array(
        z.object({
          id: KeyId,
          key: z.string().refine((s) => /^[A-Za-z0-9+/_-]+=*$/.test(s) && Buffer.from(s, 'base64').length === 16, 'base64 of exactly 16 bytes (an SM4 key)'),
          /** When the key was made, which is when it became current (init, rotate): docs/keys.md. */
          created: z.string().optional(),
          /**
           * When a completed `cdc-keys reencrypt` last found no stored value under the key (it was not
           * current then): backup archives begun after it do not need the key (docs/keys.md "Keys the backups still need").
           * Absent in files written before, and until that run: then every archive since the key was
           * made is taken to need it.
           */
          emptied: z.string().optional(),
        }),
      )
      .min(1, 'at least one key'),
  })
  .superRefine((f, ctx) => {
    const ids = f.keys.map((k) => k.id);
    const dup = ids.find((id, i) => ids.indexOf(id) !== i);
    if (dup) ctx.addIssue({ code: 'custom', path: ['keys'], message: `key id ${dup} appears twice` });
    if (!ids.includes(f.current)) ctx.addIssue({ code: 'custom', path: ['current'], message: `the current key ${f.current} is not among the keys` });
  });
export type FieldKeyFile = z.infer<typeof FieldKeyFile>;

/** A value names a key id that no key file holds (any more): never decrypted to garbage. */
export class PiiKeyError extends Error {
  constructor(readonly keyId: string) {
    super(`personal data sealed under key id ${keyId}, which is not in ${FIELD_KEYS_SECRET} (restore that key, docs/keys.md)`);
    this.name = 'PiiKeyError';
  }
}

/** A protected value that does not verify: changed, truncated, or moved from another key id. */
export class PiiValueError extends Error {
  constructor(readonly keyId: string) {
    super(`a protected value under key id ${keyId} does not verify (changed or damaged)`);
    this.name = 'PiiValueError';
  }
}

export interface PiiKeys {
  current: string;
  keys: ReadonlyMap<string, Buffer>;
  hashKey: Buffer;
  /** Where they came from, for messages (never the keys). */
  source: string;
}

/** The protected form: `sm4:<key id>:<base64url>`; nonce 12 + tag 16 bytes at least. */
const FORM = /^sm4:([a-z][a-z0-9]{0,15}):([A-Za-z0-9_-]{38,})$/;

/** The key id of a protected value; null for anything else (clear text written before 0032 — names: 0990 —, null). */
export function keyIdOf(value: unknown): string | null {
  if (typeof value !== 'string' || !value.startsWith('sm4:')) return null;
  return FORM.exec(value)?.[1] ?? null;
}

/**
 * A value normalised for its lookup hash (docs/keys.md "The stored form"): an ID number upper-cased,
 * a phone without spaces and dashes, a name NFKC-folded with no whitespace at all (full-width and
 * half-width forms, and a space typed inside a Chinese name, are the same name — as the comparison
 * with the direct-reporting system's export reads names, docs/console.md).
 */
export function normalizeForHash(kind: Personal, value: string): string {
  const t = value.trim();
  if (kind === 'idno') return t.toUpperCase();
  if (kind === 'phone') return t.replace(/[\s-]/g, '');
  if (kind === 'name') return t.normalize('NFKC').replace(/\s+/g, '');
  return t;
}

export class Pii {
  private loaded: PiiKeys | undefined;
  private loadedAt = 0;

  /** `load` reads the keys; they are read again at most every `refreshMs` (a rotation is seen without a restart). */
  constructor(
    private readonly load: () => PiiKeys,
    private readonly refreshMs = 5_000,
  ) {}

  keys(force = false): PiiKeys {
    const now = Date.now();
    if (!this.loaded || force || now - this.loadedAt > this.refreshMs) {
      try {
        this.loaded = this.load();
      } catch (err) {
        // A key file being rewritten (or removed by mistake) does not stop a running process.
        if (!this.loaded) throw err;
      }
      this.loadedAt = now;
    }
    return this.loaded;
  }

  get currentKeyId(): string {
    return this.keys().current;
  }

  /** Seals a value under the current key. */
  seal(clear: string): string {
    const k = this.keys();
    const key = k.keys.get(k.current)!;
    const nonce = randomBytes(12);
    const prefix = `sm4:${k.current}`;
    const ct = sm4GcmEncrypt(key, nonce, Buffer.from(clear, 'utf8'), Buffer.from(prefix));
    return `${prefix}:${Buffer.concat([nonce, ct]).toString('base64url')}`;
  }

  /**
   * Opens a protected value. Anything that is not a protected form (clear text stored before
   * migration 0032, a name before 0990, and not yet re-encrypted) is returned as it is. A key id absent from the key file
   * throws PiiKeyError naming it; a value that does not verify throws PiiValueError.
   */
  open(value: string): string {
    const m = value.startsWith('sm4:') ? FORM.exec(value) : null;
    if (!m) return value;
    const id = m[1]!;
    let key = this.keys().keys.get(id);
    if (!key) key = this.keys(true).keys.get(id); // a key added since the last read
    if (!key) throw new PiiKeyError(id);
    const raw = Buffer.from(m[2]!, 'base64url');
    try {
      return sm4GcmDecrypt(key, raw.subarray(0, 12), raw.subarray(12), Buffer.from(`sm4:${id}`)).toString('utf8');
    } catch {
      throw new PiiValueError(id);
    }
  }

  /** HMAC-SM3 of the normalised value, 64 hex digits (the same under every field key). */
  hash(kind: Personal, value: string): string {
    return hmacSm3(this.keys().hashKey, normalizeForHash(kind, value)).toString('hex');
  }
}

// ---- the keys: secret files, or the development keys --------------------------------------------

/** Parses a field key file's text; throws naming the file and the rule. */
export function parseFieldKeyFile(text: string, name = FIELD_KEYS_SECRET): FieldKeyFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`${name}: not JSON (expected {"current": "k1", "keys": [{"id": "k1", "key": "<base64 of 16 bytes>"}]})`);
  }
  const r = FieldKeyFile.safeParse(json);
  if (!r.success) throw new Error(`${name}: ${r.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`).join('; ')}`);
  return r.data;
}

export function parseHashKey(text: string, name = HASH_KEY_SECRET): Buffer {
  const t = text.trim();
  if (t.length < 32) throw new Error(`${name}: at least 32 characters`);
  return Buffer.from(t, 'utf8');
}

export function keysOf(file: FieldKeyFile, hashKey: Buffer, source: string): PiiKeys {
  return { current: file.current, keys: new Map(file.keys.map((k) => [k.id, Buffer.from(k.key, 'base64')])), hashKey, source };
}

/** The well-known development keys (key id `dev`): public, used only outside production without key files. */
export function devKeys(): PiiKeys {
  const f = devKeyFiles();
  return keysOf(parseFieldKeyFile(f[FIELD_KEYS_SECRET]), parseHashKey(f[HASH_KEY_SECRET]), 'development keys');
}

/**
 * The development keys as the texts of the two secret files: for fronts that share one database
 * (tests, the bench), which must open each other's sealed values as one front's processes do.
 */
export function devKeyFiles(): Record<typeof FIELD_KEYS_SECRET | typeof HASH_KEY_SECRET, string> {
  const key = sm3('cdc-front development field key, NOT SECRET').subarray(0, 16);
  const file: FieldKeyFile = { current: 'dev', keys: [{ id: 'dev', key: key.toString('base64') }] };
  return { [FIELD_KEYS_SECRET]: JSON.stringify(file), [HASH_KEY_SECRET]: sm3('cdc-front development hash key, NOT SECRET').toString('hex') };
}

/**
 * The keys from the secret files. Both absent: the development keys, or — with `production` — an
 * error naming the files. One absent, or a file that is malformed: an error naming it.
 */
export function keysFromSecrets(secret: SecretReader, production: boolean): PiiKeys {
  const fieldText = secret(FIELD_KEYS_SECRET);
  const hashText = secret(HASH_KEY_SECRET);
  if (fieldText === undefined && hashText === undefined) {
    if (production)
      throw new Error(`the secret files ${FIELD_KEYS_SECRET} and ${HASH_KEY_SECRET} are required when CDC_ENV=production (bin/cdc-keys init; docs/keys.md)`);
    return devKeys();
  }
  if (fieldText === undefined) throw new Error(`the secret file ${FIELD_KEYS_SECRET} is missing (${HASH_KEY_SECRET} is there; docs/keys.md)`);
  if (hashText === undefined) throw new Error(`the secret file ${HASH_KEY_SECRET} is missing (${FIELD_KEYS_SECRET} is there; docs/keys.md)`);
  return keysOf(parseFieldKeyFile(fieldText), parseHashKey(hashText), 'secret files');
}

/** The keys in a folder (the operators' tools: the secrets folder make up and the runtime use). */
export function keysFromDir(dir: string): PiiKeys {
  const read = (n: string) => (existsSync(join(dir, n)) ? readFileSync(join(dir, n), 'utf8') : undefined);
  const fieldText = read(FIELD_KEYS_SECRET);
  if (fieldText === undefined) throw new Error(`no ${join(dir, FIELD_KEYS_SECRET)} (bin/cdc-keys init makes it; docs/keys.md)`);
  const hashText = read(HASH_KEY_SECRET);
  if (hashText === undefined) throw new Error(`no ${join(dir, HASH_KEY_SECRET)} (bin/cdc-keys init makes it; docs/keys.md)`);
  return keysOf(parseFieldKeyFile(fieldText, join(dir, FIELD_KEYS_SECRET)), parseHashKey(hashText, join(dir, HASH_KEY_SECRET)), dir);
}

/** A Pii reading a folder's key files, again whenever they change. */
export function piiFromDir(dir: string): Pii {
  let seen = '';
  let keys: PiiKeys | undefined;
  return new Pii(() => {
    const f = join(dir, FIELD_KEYS_SECRET);
    const stamp = existsSync(f) ? `${statSync(f).mtimeMs}:${statSync(f).size}` : '';
    if (!keys || stamp !== seen) {
      keys = keysFromDir(dir);
      seen = stamp;
    }
    return keys;
  });
}

// ---- the process's keys ---------------------------------------------------------------------------

let installed: Pii | undefined;

/**
 * The process's keys: those installed at start by the function's configuration (piiConcern),
 * else read from the secret files ($CDC_SECRETS_DIR) on first use.
 */
export function pii(): Pii {
  return (installed ??= new Pii(() => keysFromSecrets(readSecret, parseConcern(frontConcern).production)));
}

/** Installs the process's keys (undefined: back to reading the secret files). */
export function setPii(p: Pii | undefined): void {
  installed = p;
}

// ---- records ----------------------------------------------------------------------------------------

interface SealedField {
  key: string;
  column: string;
  kind: Personal;
  hashed: boolean;
}

const sealedCache = new WeakMap<Resource, SealedField[]>();

/** A resource's protected fields (AT_REST), in declaration order. */
export function sealedFields(r: Resource): SealedField[] {
  let s = sealedCache.get(r);
  if (!s) {
    s = Object.entries(r.fields)
      .filter(([, d]) => isSealed(d))
      .map(([key, d]) => ({ key, column: d.column, kind: d.personal!, hashed: isHashed(d) }));
    sealedCache.set(r, s);
  }
  return s;
}

/** A resource's HMAC columns, in declaration order. */
export function hmacColumns(r: Resource): string[] {
  return sealedFields(r)
    .filter((f) => f.hashed)
    .map((f) => hmacColumn(f.column));
}

/**
 * Seals a record's protected fields: the typed record and its canonical payload get the same
 * protected forms (one encryption per value), and the hashed fields their HMACs, by HMAC column.
 */
export function sealRecord(
  r: Resource,
  record: Record<string, unknown>,
  payload: Record<string, unknown>,
  p: Pii = pii(),
): { record: Record<string, unknown>; payload: Record<string, unknown>; hashes: Record<string, string | null> } {
  const fields = sealedFields(r);
  const hashes: Record<string, string | null> = {};
  if (fields.length === 0) return { record, payload, hashes };
  const rec = { ...record };
  const pay = { ...payload };
  for (const f of fields) {
    const v = record[f.key];
    if (f.hashed) hashes[hmacColumn(f.column)] = typeof v === 'string' ? p.hash(f.kind, v) : null;
    if (typeof v !== 'string') continue;
    const s = p.seal(v);
    rec[f.key] = s;
    if (f.key in pay) pay[f.key] = s;
  }
  return { record: rec, payload: pay, hashes };
}

/** A stored payload (rec_raw, history, outbox) of a resource with its protected fields opened. */
export function openRecord(resource: string | Resource, payload: Record<string, unknown>, p: Pii = pii()): Record<string, unknown> {
  const r = typeof resource === 'string' ? resourceByName(resource) : resource;
  if (!r) return payload;
  let out: Record<string, unknown> | undefined;
  for (const f of sealedFields(r)) {
    const v = payload[f.key];
    if (typeof v !== 'string' || keyIdOf(v) === null) continue;
    out ??= { ...payload };
    out[f.key] = p.open(v);
  }
  return out ?? payload;
}

function resourceByName(name: string): Resource | undefined {
  return Object.hasOwn(resources, name) ? resources[name] : undefined;
}

/** Which kinds are sealed (for documents and tests). */
export const SEALED_KINDS = (Object.keys(AT_REST) as Personal[]).filter((k) => AT_REST[k] !== 'clear');
