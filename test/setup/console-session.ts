/**
 * A person signed in to the web function in process (docs/console.md): a user of the role made in the
 * database, the sign-in form read for its token and cookie, posted, and the session cookie returned.
 */
import { expect } from 'vitest';
import type pg from 'pg';
import { createUser, type Role } from '../../shared/console/index.js';
import type { FaasFunction } from '../../shared/fn/index.js';

export async function signedInToWeb(
  web: FaasFunction,
  db: pg.Pool,
  o: { role: Role; host: Record<string, string>; next: string; orgs?: string[]; password?: string },
): Promise<string> {
  const password = o.password ?? 'a-long-test-password';
  const username = `${o.role.slice(0, 3)}${Math.random().toString(36).slice(2, 9)}`;
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
