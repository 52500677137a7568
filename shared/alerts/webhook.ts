/**
 * A group-robot webhook: WeCom (企业微信) and DingTalk (钉钉) both take
 * `{"msgtype":"text","text":{"content":"..."}}` and answer HTTP 200 with `{"errcode":0,...}`; a
 * non-zero errcode (bad key, rate limit, keyword filter) is a failure too. With a DingTalk 加签
 * secret, the URL gets `timestamp` and `sign` = base64(HMAC-SHA256(secret, timestamp + "\n" + secret)).
 */
import { createHmac } from 'node:crypto';

export class WebhookError extends Error {}

export function signedUrl(url: string, secret: string | undefined, now = Date.now()): string {
  if (!secret) return url;
  const sign = createHmac('sha256', secret).update(`${now}\n${secret}`).digest('base64');
  const u = new URL(url);
  u.searchParams.set('timestamp', String(now));
  u.searchParams.set('sign', sign);
  return u.toString();
}

export async function postWebhook(w: { url: string; secret?: string }, content: string, timeoutMs = 10_000): Promise<void> {
  let res: Response;
  try {
    res = await fetch(signedUrl(w.url, w.secret), {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify({ msgtype: 'text', text: { content } }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw new WebhookError(`webhook ${new URL(w.url).host}: ${(err as Error).message}`);
  }
  const text = await res.text().catch(() => '');
  if (!res.ok) throw new WebhookError(`webhook ${new URL(w.url).host} answered HTTP ${res.status} ${text.slice(0, 200)}`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return; // a plain 2xx (a generic receiver) is taken as delivered
  }
  const code = (body as { errcode?: unknown } | null)?.errcode;
  if (code !== undefined && code !== 0 && code !== '0') {
    throw new WebhookError(
      `webhook ${new URL(w.url).host} refused the message: errcode ${String(code)} ${String((body as { errmsg?: unknown }).errmsg ?? '')}`.slice(0, 300),
    );
  }
}
