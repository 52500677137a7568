/**
 * The web function (the console, docs/console.md) in process on the test database, for the page
 * tests: its environment set before the handler is loaded (a secrets directory of its own, the
 * database, the Host allow-list), initialised before the file's own `beforeAll` hooks and closed after
 * its tests. Call it at the top of the file: `const { web, db, host } = await webInProcess('cases-page')`.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import type { FaasFunction } from '../../shared/fn/index.js';
import { databaseUrl, testDb } from './db.js';

export async function webInProcess(name: string): Promise<{ web: FaasFunction; db: pg.Pool; host: { host: string } }> {
  process.env.CDC_SECRETS_DIR = mkdtempSync(join(tmpdir(), `${name}-`));
  process.env.DATABASE_URL = databaseUrl();
  process.env.WEB_ALLOWED_HOSTS = 'front.local,localhost';
  const { default: web } = await import('../../functions/web/handler.js');
  beforeAll(async () => {
    await web.init?.();
  });
  afterAll(async () => {
    await web.close?.();
  });
  return { web, db: testDb(), host: { host: 'front.local:8884' } };
}
