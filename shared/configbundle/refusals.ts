/**
 * What the configuration port refused, kept (docs/config-bundles.md §3 "Refusals kept"): every refusal
 * is logged — who (the token's label when one was accepted, the address), what (status, code, route,
 * the version the document claimed, the key id it named, the SM3 digest of the document) and never
 * the document or its reason text — and those a security review needs, a signature that failed and a
 * token that was not accepted, are counted in config_refusal (infra/db/0994_config_refusal.sql), read
 * with the bundle steps as the console's audit (shared/console/audit.ts).
 *
 * A flood cannot flood either: the table keeps one row per hour, code, caller, address and route
 * (an attempt adds to its count), and past HOUR_ROWS rows in an hour new addresses are folded into
 * '*'; the log says each kind of refusal at most once a minute per caller and address, with how many
 * it did not say since.
 */
import type { Db } from '../db/index.js';
import { log } from '../log/index.js';
import { sm3 } from '../uplink/sm.js';

/** The codes kept in the audit: the signature's refusals and the token's. */
export const AUDITED_CODES: ReadonlySet<string> = new Set(['missing-signature', 'unsupported-algorithm', 'unknown-key', 'bad-signature', 'unauthenticated']);
/** Rows an hour may add before new addresses are folded into '*'. */
export const HOUR_ROWS = 100;

/** What a refused request showed of itself, before anything in it was trusted. */
export interface Attempt {
  /** The version the document claims (read for the record only). */
  version: number | null;
  /** sig.keyId as sent (hex, at most 64 characters; otherwise 'malformed'). */
  keyId: string | null;
  /** SM3 of the document as sent. */
  digest: string | null;
}

export interface Refused extends Partial<Attempt> {
  status: number;
  code: string;
  /** The token's label; null when no token was accepted. */
  caller: string | null;
  address: string | null;
  method: string;
  path: string;
}

/** The document's claims from a request body {bundle, sig}, whatever else is wrong with it. */
export function attemptOf(body: unknown): Attempt {
  const o = body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
  const text = typeof o.bundle === 'string' ? o.bundle : null;
  const sig = o.sig && typeof o.sig === 'object' ? (o.sig as Record<string, unknown>) : {};
  const keyId = typeof sig.keyId === 'string' ? (/^[0-9a-f]{1,64}$/i.test(sig.keyId) ? sig.keyId.toLowerCase() : 'malformed') : null;
  let version: number | null = null;
  if (text !== null) {
    try {
      const v = (JSON.parse(text) as { version?: unknown }).version;
      if (Number.isSafeInteger(v)) version = v as number;
    } catch {
      // Not JSON: no version to name.
    }
  }
  return { version, keyId, digest: text === null ? null : sm3(text).toString('hex') };
}

/** The route, never the path as sent (a scanner's paths would each be a row): the port's routes by name. */
export function routeOf(method: string, path: string): string {
  const m = ['GET', 'HEAD', 'POST'].includes(method) ? method : 'OTHER';
  const known = ['/bundles', '/bundles/current', '/version-check', '/activation', '/schedules'];
  if (known.includes(path)) return `${m} ${path}`;
  if (/^\/bundles\/\d{1,15}\/rollback$/.test(path)) return `${m} /bundles/:version/rollback`;
  return `${m} (other)`;
}

const MINUTE = 60_000;
const said = new Map<string, { at: number; unsaid: number }>();

/** Logs a refusal (at most once a minute per code, route, caller and address) and keeps an audited one. */
export async function noteRefusal(db: Db | null, r: Refused, now: Date = new Date()): Promise<void> {
  const route = routeOf(r.method, r.path);
  const key = `${r.code} ${route} ${r.caller ?? ''} ${r.address ?? ''}`;
  const last = said.get(key);
  if (!last || now.getTime() - last.at >= MINUTE) {
    if (said.size > 10_000) said.clear();
    said.set(key, { at: now.getTime(), unsaid: 0 });
    log('warn', 'configuration port refused a request', {
      status: r.status,
      code: r.code,
      route,
      by: r.caller ?? 'no accepted token',
      from: r.address,
      ...(r.version != null ? { version: r.version } : {}),
      ...(r.keyId ? { keyId: r.keyId } : {}),
      ...(r.digest ? { digest: r.digest } : {}),
      ...(last?.unsaid ? { alsoRefusedSinceLastLine: last.unsaid } : {}),
    });
  } else {
    last.unsaid++;
  }
  if (!db || !AUDITED_CODES.has(r.code)) return;
  try {
    await keep(db, r, route, now);
  } catch (err) {
    // The refusal stands; only its audit row is missing, and the log line above says so.
    log('warn', 'configuration refusal not recorded in the audit', { code: r.code, err: (err as Error).message });
  }
}

async function keep(db: Db, r: Refused, route: string, now: Date): Promise<void> {
  const hour = new Date(Math.floor(now.getTime() / 3_600_000) * 3_600_000);
  const caller = (r.caller ?? '').slice(0, 200);
  let address = (r.address ?? '').slice(0, 200);
  const rows = await db.query<{ n: string; mine: string }>(
    `SELECT count(*) AS n, count(CASE WHEN code = $2 AND caller = $3 AND address = $4 AND path = $5 THEN 1 END) AS mine
       FROM config_refusal WHERE hour = $1`,
    [hour, r.code, caller, address, route],
  );
  if (Number(rows.rows[0]?.mine ?? 0) === 0 && Number(rows.rows[0]?.n ?? 0) >= HOUR_ROWS) address = '*';
  const merge = () =>
    db.query(
      `MERGE INTO config_refusal t
       USING (SELECT $1::timestamptz AS hour, $2::varchar AS code, $3::varchar AS caller, $4::varchar AS address, $5::varchar AS path) s
          ON (t.hour = s.hour AND t.code = s.code AND t.caller = s.caller AND t.address = s.address AND t.path = s.path)
       WHEN MATCHED THEN UPDATE SET attempts = t.attempts + 1, last_at = $6, version = $7, key_id = $8, digest = $9
       WHEN NOT MATCHED THEN INSERT (hour, code, caller, address, path, attempts, first_at, last_at, version, key_id, digest)
         VALUES ($1, $2, $3, $4, $5, 1, $6, $6, $7, $8, $9)`,
      [hour, r.code, caller, address, route, now, r.version ?? null, r.keyId ?? null, r.digest ?? null],
    );
  try {
    await merge();
  } catch (err) {
    // Two first attempts of the same row at once: the other inserted it; this one counts on it.
    if ((err as { code?: string }).code !== '23505') throw err;
    await merge();
  }
}
