/**
 * A person signed in to the web function in process (docs/console.md): a user of the role made in the
 * database (named `username`, or at random), the sign-in form read for its token and cookie, posted,
 * and the session cookie returned.
 */
import { expect } from 'vitest';
import type pg from 'pg';
import { createUser, type Role } from '../../shared/console/index.js';
import type { FaasFunction } from '../../shared/fn/index.js';
import { NAV } from '../../functions/web/console-layout.js';

export async function signedInToWeb(
  web: FaasFunction,
  db: pg.Pool,
  o: { role: Role; host: Record<string, string>; next: string; orgs?: string[]; password?: string; username?: string },
): Promise<string> {
  const password = o.password ?? 'a-long-test-password';
  const username = o.username ?? `${o.role.slice(0, 3)}${Math.random().toString(36).slice(2, 9)}`;
  await createUser(db as never, { username, role: o.role, password, ...(o.orgs ? { orgs: o.orgs } : {}) }, 'test');
  const form = await web.app.request('/login', { headers: o.host });
  const token = /name="_csrf" value="([^"]+)"/.exec(await form.text())![1]!;
  const loginCookie = /cdc_login=([^;]+)/.exec(form.headers.get('set-cookie') ?? '')![1]!;
  const res = await web.app.request('/login', {
    method: 'POST',
    headers: { ...o.host, cookie: `cdc_login=${loginCookie}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username, password, next: o.next, _csrf: token }).toString(),
  });
  expect(res.status).toBe(303);
  return /cdc_console=([^;]+)/.exec(res.headers.getSetCookie().find((c) => c.startsWith('cdc_console=')) ?? '')![1]!;
}

/**
 * What a page shows of the console's frame (functions/web/console-layout.ts): how many headers and
 * console navigations it has, the navigation's links in order, the one marked current, and the
 * sign-out form's CSRF token (null: no sign-out form).
 */
export function consoleFrame(html: string): { headers: number; navs: number; links: string[]; current: string | null; signOutCsrf: string | null } {
  const navs = [...html.matchAll(/<nav aria-label="控制台">([\s\S]*?)<\/nav>/g)].map((m) => m[1]!);
  const nav = navs[0] ?? '';
  return {
    headers: (html.match(/<header>/g) ?? []).length,
    navs: navs.length,
    links: [...nav.matchAll(/<a href="([^"]+)"/g)].map((m) => m[1]!),
    current: /<a href="([^"]+)" class="on" aria-current="page">/.exec(nav)?.[1] ?? null,
    signOutCsrf: /<form method="post" action="\/logout" class="inline"><input type="hidden" name="_csrf" value="([^"]+)">/.exec(html)?.[1] ?? null,
  };
}

/**
 * Asserts the page is in the console's frame for `role`: one header, one navigation holding exactly
 * the pages NAV opens to the role (`path` marked when it is one of them), a sign-out form with the
 * session's token.
 */
export function expectConsoleFrame(html: string, role: Role, path: string, csrf?: string): void {
  const f = consoleFrame(html);
  const mine = NAV.filter((n) => n.roles.includes(role)).map((n) => n.path);
  expect(f.headers, 'one header').toBe(1);
  expect(f.navs, 'one console navigation').toBe(1);
  expect(f.links).toEqual(mine);
  expect(f.current).toBe(mine.includes(path) ? path : null);
  expect(f.signOutCsrf).toMatch(/^[A-Za-z0-9_-]{20,}$/);
  if (csrf) expect(f.signOutCsrf).toBe(csrf);
}
