/**
 * A notice carried by a redirect's query (`?msg=` or `?err=`, the page shows it), signed with the
 * session's own secret (its CSRF token), so that only the front puts text on its pages: a link from
 * elsewhere that carries `?msg=` — "call this number with your password" — shows nothing
 * (docs/console.md "Notices").
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';

export type FlashKey = 'msg' | 'err';

const tag = (secret: string, key: FlashKey, text: string): string =>
  createHmac('sha256', secret).update(`${key}\u0000${text}`).digest('base64url').slice(0, 22);

/** The query (without `?`) of a redirect that shows `text` as the page's notice; `params` kept beside it. */
export function flash(secret: string | undefined, key: FlashKey, text: string, params = new URLSearchParams()): string {
  params.set(key, text);
  if (secret) params.set('sig', tag(secret, key, text));
  return params.toString();
}

/** The notices of a page's query that the front put there for this session; any other is not shown. */
export function flashOf(c: Context, secret: string | undefined): { msg?: string; err?: string } {
  const sig = Buffer.from(c.req.query('sig') ?? '');
  const out: { msg?: string; err?: string } = {};
  if (!secret) return out;
  for (const key of ['msg', 'err'] as const) {
    const text = c.req.query(key);
    if (text === undefined) continue;
    const want = Buffer.from(tag(secret, key, text));
    if (sig.length === want.length && timingSafeEqual(sig, want)) out[key] = text;
  }
  return out;
}
