// A mapping saved through the web function's code API nudges the push function (docs/code-mapping.md),
// so the records held for that code leave in seconds, not at the next cron minute: a listener standing
// in for the push function's URL receives the nudge after a save, and none after a refused one or a read.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { databaseUrl, testDb, uniqueOrg } from '../setup/db.js';
import { generateApiKey } from '../../shared/http/auth.js';
import { insertCaller } from '../../shared/http/auth-store.js';

const nudges: string[] = [];
const listener: Server = createServer((req, res) => {
  nudges.push(`${req.method} ${req.headers['x-nudge'] ?? ''}`);
  res.end('{}');
});
await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
process.env.DATABASE_URL = databaseUrl();
process.env.WEB_ALLOWED_HOSTS = 'front.local,localhost';
process.env.PUSH_NUDGE_URL = `http://127.0.0.1:${(listener.address() as AddressInfo).port}/function/push`;
const { default: web } = await import('../../functions/web/handler.js');
const db = testDb();
const org = uniqueOrg();
const key = generateApiKey();

beforeAll(async () => {
  await insertCaller(db, { kind: 'apikey', name: '信息科', orgs: [org], ratePerMin: 0, keyPrefix: key.prefix, keyHash: key.hash });
  await web.init?.();
});
afterAll(async () => {
  await web.close?.();
  listener.close();
});

const headers = { 'x-api-key': key.key, host: 'front.local:8884', 'content-type': 'application/json' };
const settle = () => new Promise((r) => setTimeout(r, 600));

it('nudges the push function after a mapping is saved, and not after a read or a refused save', async () => {
  expect((await web.app.request(`/api/codes/mappings?org=${org}`, { headers })).status).toBe(200);
  const bad = await web.app.request('/api/codes/mappings', {
    method: 'POST',
    headers,
    body: JSON.stringify({ org, domain: 'sex', localCode: 'M', nationalCode: '9Z' }),
  });
  expect(bad.status).toBe(400);
  await settle();
  expect(nudges).toEqual([]);
  const ok = await web.app.request('/api/codes/mappings', {
    method: 'POST',
    headers,
    body: JSON.stringify({ org, domain: 'sex', localCode: 'M', nationalCode: '1' }),
  });
  expect(ok.status).toBeLessThan(300);
  await settle();
  expect(nudges).toEqual(['POST ingest']);
});
