/**
 * The data layer of HIS caller identities (table his_caller, infra/db/0004_his_callers.sql): the
 * only SQL of authentication. The middleware (auth.ts) reads the table whole into a cache through a
 * CallerStore; the operator command (infra/callers/cli.ts) creates, lists and revokes rows here.
 * `memoryCallerStore` is the in-memory twin for unit tests.
 */
import { z } from 'zod';
import type { Db } from '../db/index.js';

export const CALLER_KINDS = ['apikey', 'cert', 'address'] as const;
export type StoredKind = (typeof CALLER_KINDS)[number];

/** '*' or a non-empty list of org codes (机构编码). */
export type Orgs = '*' | string[];

/** Stored form of Orgs: '*' or "code,code,...". */
export function formatOrgs(orgs: Orgs): string {
  return orgs === '*' ? '*' : orgs.join(',');
}

export function parseOrgs(stored: string): Orgs {
  const s = stored.trim();
  if (s === '*') return '*';
  return s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
}

/** A row as it crosses from the database: snake_case, bigint id as string, timestamps as Date. */
const CallerRowSchema = z
  .object({
    id: z.coerce.string(),
    name: z.string(),
    kind: z.enum(CALLER_KINDS),
    key_prefix: z.string().nullable(),
    key_hash: z.string().nullable(),
    cert_fingerprint: z.string().nullable(),
    cidr: z.string().nullable(),
    org_codes: z.string(),
    rate_per_min: z.coerce.number().int().nonnegative(),
    created_at: z.date(),
    revoked_at: z.date().nullable(),
    last_used_at: z.date().nullable(),
  })
  .transform((r) => ({
    id: r.id,
    name: r.name,
    kind: r.kind,
    keyPrefix: r.key_prefix?.trim() ?? null,
    keyHash: r.key_hash?.trim() ?? null,
    certFingerprint: r.cert_fingerprint?.trim() ?? null,
    cidr: r.cidr,
    orgs: parseOrgs(r.org_codes),
    ratePerMin: r.rate_per_min,
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
    lastUsedAt: r.last_used_at,
  }));
export type StoredCaller = z.output<typeof CallerRowSchema>;

const COLUMNS = 'id, name, kind, key_prefix, key_hash, cert_fingerprint, cidr, org_codes, rate_per_min, created_at, revoked_at, last_used_at';

/** What the middleware's cache needs from storage. */
export interface CallerStore {
  /** Every caller, revoked ones included (so a revoked key is told apart from an unknown one). */
  all(): Promise<StoredCaller[]>;
  /** Marks a caller as used now; the store skips the write when the last mark is under a minute old. */
  touch(id: string): Promise<void>;
}

export function pgCallerStore(db: () => Db): CallerStore {
  return {
    all: () => loadCallers(db()),
    touch: async (id) => {
      await db().query(
        `UPDATE his_caller SET last_used_at = now()
          WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`,
        [id],
      );
    },
  };
}

/** The in-memory twin: the same contract over an array, for unit tests. */
export function memoryCallerStore(rows: StoredCaller[] = []): CallerStore & { rows: StoredCaller[]; loads: number; touches: string[] } {
  const store = {
    rows,
    loads: 0,
    touches: [] as string[],
    async all() {
      store.loads++;
      return store.rows.map((r) => ({ ...r }));
    },
    async touch(id: string) {
      store.touches.push(id);
      const r = store.rows.find((x) => x.id === id);
      if (r) r.lastUsedAt = new Date();
    },
  };
  return store;
}

export async function loadCallers(db: Db): Promise<StoredCaller[]> {
  const r = await db.query(`SELECT ${COLUMNS} FROM his_caller ORDER BY id`);
  return r.rows.map((row) => CallerRowSchema.parse(row));
}

export type NewCaller =
  | { kind: 'apikey'; name: string; orgs: Orgs; ratePerMin: number; keyPrefix: string; keyHash: string }
  | { kind: 'cert'; name: string; orgs: Orgs; ratePerMin: number; certFingerprint: string }
  | { kind: 'address'; name: string; orgs: Orgs; ratePerMin: number; cidr: string };

/** Inserts one caller. A key-prefix collision surfaces as SQLSTATE 23505 (the caller retries). */
export async function insertCaller(db: Db, c: NewCaller): Promise<StoredCaller> {
  const r = await db.query(
    `INSERT INTO his_caller (name, kind, key_prefix, key_hash, cert_fingerprint, cidr, org_codes, rate_per_min)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     RETURNING ${COLUMNS}`,
    [
      c.name,
      c.kind,
      c.kind === 'apikey' ? c.keyPrefix : null,
      c.kind === 'apikey' ? c.keyHash : null,
      c.kind === 'cert' ? c.certFingerprint : null,
      c.kind === 'address' ? c.cidr : null,
      formatOrgs(c.orgs),
      c.ratePerMin,
    ],
  );
  return CallerRowSchema.parse(r.rows[0]);
}

/** Active (not revoked) callers holding this certificate fingerprint. */
export async function activeCertCallers(db: Db, fingerprint: string): Promise<StoredCaller[]> {
  const r = await db.query(`SELECT ${COLUMNS} FROM his_caller WHERE cert_fingerprint = $1 AND revoked_at IS NULL`, [fingerprint]);
  return r.rows.map((row) => CallerRowSchema.parse(row));
}

export type RevokeResult = { status: 'revoked' | 'already-revoked'; caller: StoredCaller } | { status: 'not-found' };

export async function revokeCaller(db: Db, id: string): Promise<RevokeResult> {
  const done = await db.query(`UPDATE his_caller SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING ${COLUMNS}`, [id]);
  if (done.rows[0]) return { status: 'revoked', caller: CallerRowSchema.parse(done.rows[0]) };
  const seen = await db.query(`SELECT ${COLUMNS} FROM his_caller WHERE id = $1`, [id]);
  return seen.rows[0] ? { status: 'already-revoked', caller: CallerRowSchema.parse(seen.rows[0]) } : { status: 'not-found' };
}
