/**
 * The console's searches (docs/console.md "Cases"): a list's search form is posted, its fields are
 * kept sealed in `console_search` under a random id bound to the session, and the list is shown at a
 * URL naming only that id — so a patient's name or ID number typed into it never reaches a URL, the
 * browser's history, a Referer or a proxy's log, while back, reload and a link back to the list still
 * show the same results.
 */
import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import type { Db } from '../db/index.js';
import { pii, PiiKeyError, PiiValueError } from '../pii/index.js';
import { tokenHash } from './index.js';

/** The lists that have a search. */
export type SearchPage = 'cases' | 'cards';

/** How long any search is kept: the longest a session may last (CONSOLE_SESSION_H at most 72). */
const KEEP_HOURS = 72;
const ID = /^[0-9a-f]{32}$/;

/** Keeps a search of the session `sessionToken` (the console cookie) and returns its id for the URL. */
export async function saveSearch(db: Db, sessionToken: string, page: SearchPage, query: Record<string, string>): Promise<string> {
  const id = randomBytes(16).toString('hex');
  await db.query(`DELETE FROM console_search WHERE created_at < now() - $1 * interval '1 hour'`, [KEEP_HOURS]);
  await db.query('INSERT INTO console_search (search_id, session_hash, page, query) VALUES ($1, $2, $3, $4)', [
    id,
    tokenHash(sessionToken),
    page,
    pii().seal(JSON.stringify(query)),
  ]);
  return id;
}

/**
 * The search `id` of this session and page, as `schema` reads it; null when there is none (another
 * session's, removed at sign-out or with age, a key no longer there, or no longer valid).
 */
export async function loadSearch<T>(db: Db, sessionToken: string, page: SearchPage, id: string, schema: z.ZodType<T>): Promise<T | null> {
  if (!ID.test(id)) return null;
  const r = await db.query<{ query: string }>('SELECT query FROM console_search WHERE search_id = $1 AND session_hash = $2 AND page = $3', [
    id,
    tokenHash(sessionToken),
    page,
  ]);
  const sealed = r.rows[0]?.query;
  if (!sealed) return null;
  let clear: unknown;
  try {
    clear = JSON.parse(pii().open(sealed));
  } catch (err) {
    if (err instanceof PiiKeyError || err instanceof PiiValueError || err instanceof SyntaxError) return null;
    throw err;
  }
  const parsed = schema.safeParse(clear);
  return parsed.success ? parsed.data : null;
}
